# firmware test guests (see firmware/README)
.PHONY: firmware
firmware:
