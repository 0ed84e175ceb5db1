# Default tiny guest kernel + initramfs (see tools/guest/README.md).
#   make guest        -> build/guest/{bzImage,vmlinux,initramfs.cpio}
#   make guest-bench  -> build/guest-bench/{bzImage,vmlinux} (QEMU-bootable
#                        on kvm_pvm hosts: tools/guest/qemu-bench.patch) and
#                        build/guest/initramfs.cpio
# The scripts cache their results (stamp files with a hash of the inputs), so
# these phony targets are cheap when nothing changed.
# Not under $(BUILD): the guest does not depend on kvisor's build flags, so
# every build variant (BUILD=..., SANITIZE=...) shares one guest.
GUEST_DIR       := build/guest
GUEST_BENCH_DIR := build/guest-bench

.PHONY: guest guest-bench guest-kernel guest-bench-kernel guest-initramfs guest-qemu-smoke
guest: guest-kernel guest-initramfs
guest-bench: guest-bench-kernel guest-initramfs

guest-kernel:
	@tools/guest/build-kernel default $(GUEST_DIR)

guest-bench-kernel:
	@tools/guest/build-kernel bench $(GUEST_BENCH_DIR)

guest-initramfs:
	@tools/guest/mkinitramfs $(GUEST_DIR)/initramfs.cpio

# Boot the default guest under QEMU TCG (software emulation) and check the
# init markers; not part of `make check`.
guest-qemu-smoke: guest
	@tools/guest/qemu-smoke
