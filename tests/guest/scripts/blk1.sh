# Guest side of tests/guest/blk, boot 1 (three virtio-blk disks):
#   vda  writable, serial kvisor-a, blank: busybox mke2fs makes an ext2 file
#        system that the ext4 driver mounts (busybox has no mkfs.ext4)
#   vdb  readonly=on, serial kvisor-ro, a random pattern written by the host
#   vdc  writable, cache=none, an ext4 file system made by the host's
#        mkfs.ext4 (journal, extents, metadata_csum) holding from-host.txt
# Every result is a "T <name> <value>" line that the host compares. Every
# fork+exec costs seconds of emulated kernel code on kvm-pvm hosts: prefer
# shell built-ins (read, echo, [ ], loops) to commands.
# shellcheck disable=SC2046,SC2086 # word splitting of $(sha256sum) and $line is wanted
t() { echo "T $*"; }
# For information only: the guest's clock at each phase.
mark() {
	read -r up _ </proc/uptime
	echo "I ${up}s: $*"
}

for d in vda vdb vdc; do
	if [ -e /sys/block/$d ]; then
		read -r size </sys/block/$d/size
		read -r ro </sys/block/$d/ro
		serial=
		[ -r /sys/block/$d/serial ] && read -r serial </sys/block/$d/serial
		t "${d}_size $size"
		t "${d}_ro $ro"
		t "${d}_serial $serial"
		# For information only (not compared): what the device offers.
		read -r v </sys/block/$d/queue/discard_max_bytes
		read -r w </sys/block/$d/queue/write_zeroes_max_bytes
		read -r c </sys/block/$d/queue/write_cache
		echo "I ${d} discard_max_bytes=$v write_zeroes_max_bytes=$w write_cache=$c"
	else
		t "${d}_size missing"
	fi
done
# All disks are open in kvisor: the host runs its lock checks now, while
# this script goes on.
t "disks_open"
mark "disks open"

# The read-only disk: its content, and writes refused (6.1 refuses them in
# blkdev_write_iter, EPERM, for a disk the driver marked read-only because
# the device offers VIRTIO_BLK_F_RO).
set -- $(sha256sum </dev/vdb)
t "vdb_sha $1"
if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=notrunc,fsync 2>/dev/null; then
	t "vdb_write accepted"
else
	t "vdb_write refused"
fi
if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 seek=1 conv=notrunc oflag=direct 2>/dev/null; then
	t "vdb_write_direct accepted"
else
	t "vdb_write_direct refused"
fi

# vda: a file system made here, files written, synced, unmounted, then read
# back after a fresh mount (the file's pages come from the disk again).
mkdir -p /mnt/a /mnt/c
mark "mke2fs"
mke2fs -F -b 4096 -i 65536 -L kvisor-a /dev/vda >/dev/null 2>&1
t "mke2fs $?"
mount -t ext4 /dev/vda /mnt/a
t "mount_a $?"
while read -r _dev mnt fs _rest; do
	[ "$mnt" = /mnt/a ] && t "a_fstype $fs"
done </proc/mounts
echo "hello from the kvisor guest" >/mnt/a/hello.txt
mkdir /mnt/a/dir
i=0
while [ $i -lt 20 ]; do
	echo "file number $i" >/mnt/a/dir/f$i
	i=$((i + 1))
done
# 896 KiB, every 512-byte sector different (131072 lines of 7 bytes), made in
# tmpfs and written 1 MiB at a time: system calls are what costs here (tens
# of milliseconds each on a loaded kvm-pvm host), not bytes. The host knows
# its SHA-256; the guest reads it back from the disk after a new mount.
mark "write 896 KiB"
seq -w 1 131072 >/tmp/big
dd if=/tmp/big of=/mnt/a/big bs=1M 2>/dev/null
t "a_big_write $?"
mark "sync"
sync
t "a_sync $?"
# Discard the free space (kvisor punches holes): the data read back below
# must not suffer.
fstrim /mnt/a
t "a_fstrim $?"
umount /mnt/a
t "a_umount $?"
mount -t ext4 -o ro /dev/vda /mnt/a
t "a_remount $?"
mark "read back 896 KiB"
set -- $(sha256sum </mnt/a/big)
t "a_big_reread $1"
read -r line </mnt/a/hello.txt
t "a_hello $line"
read -r line </mnt/a/dir/f19
t "a_f19 $line"
umount /mnt/a
t "a_umount2 $?"

# vdc: the host's ext4 (journaled), read and written here.
mark "vdc"
mount -t ext4 /dev/vdc /mnt/c
t "mount_c $?"
read -r line </mnt/c/from-host.txt
t "c_from_host $line"
echo "written by the guest on a journaled ext4" >/mnt/c/from-guest.txt
seq -w 1 65536 >/tmp/medium
dd if=/tmp/medium of=/mnt/c/medium bs=1M 2>/dev/null
t "c_medium_write $?"
rm /mnt/c/delete-me
t "c_rm $?"
sync
t "c_sync $?"
fstrim /mnt/c
t "c_fstrim $?"
umount /mnt/c
t "c_umount $?"
# MSI-X: the request queues' vectors and how many interrupts they took.
n=0
total=0
while read -r line; do
	case $line in
	*MSI*virtio*-req*)
		n=$((n + 1))
		set -- $line
		shift
		while [ $# -gt 0 ]; do
			case $1 in *[!0-9]*) break ;; esac
			total=$((total + $1))
			shift
		done
		;;
	esac
done </proc/interrupts
t "msix_req_vectors $n"
t "msix_req_interrupts $total"
mark "end"
t "done"
