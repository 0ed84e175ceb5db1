# Guest side of tests/guest/blk, boot 2 (kill -9 after sync):
#   vda  writable raw disk (cache=writeback): a pattern written with dd
#   vdb  writable, the host's ext4: a file written, not unmounted
# After `sync` the script prints "T SYNCED" and sleeps; the host kills
# kvisor with SIGKILL as soon as it sees that line and checks the images.
t() { echo "T $*"; }

read -r size </sys/block/vda/size
t "vda_size $size"
read -r size </sys/block/vdb/size
t "vdb_size $size"
# A 896 KiB pattern (131072 lines of 7 bytes), every sector different.
seq -w 1 131072 >/tmp/pattern
# Buffered writes to the raw disk at offset 1 MiB, no fsync: only the
# `sync` below pushes them out.
dd if=/tmp/pattern of=/dev/vda bs=65536 seek=16 conv=notrunc 2>/dev/null
t "raw_dd $?"
# The same pattern at 4 MiB, discarded after the sync below (kvisor punches
# a hole: the host then reads zeros there).
dd if=/tmp/pattern of=/dev/vda bs=65536 seek=64 conv=notrunc 2>/dev/null
t "raw_dd2 $?"
mkdir -p /mnt/b
mount -t ext4 /dev/vdb /mnt/b
t "mount_b $?"
echo "this line survives kill -9" >/mnt/b/crash.txt
seq -w 1 65536 >/tmp/crash.bin
dd if=/tmp/crash.bin of=/mnt/b/crash.bin bs=64k 2>/dev/null
t "crash_bin_write $?"
sync
t "sync $?"
blkdiscard -o 4194304 -l 1048576 /dev/vda
t "blkdiscard $?"
t "SYNCED"
# Wait for SIGKILL of the whole VM; do not power off.
sleep 900
t "not killed"
