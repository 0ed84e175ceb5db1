# default tiny guest kernel + initramfs
.PHONY: guest
guest:
