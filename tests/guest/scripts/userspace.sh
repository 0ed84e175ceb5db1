# Guest side of tests/guest/run's user-space check: many commands, each
# result on a "T <name> <value>" line that the host compares.
echo "T uname $(uname -sr)"
echo "T cpus $(grep -c ^processor /proc/cpuinfo)"
echo "T online $(cat /sys/devices/system/cpu/online)"
echo "T memtotal $(awk '/^MemTotal/ {print $2}' /proc/meminfo)"
echo "T cmdline $(cat /proc/cmdline)"
echo hello-file > /tmp/f && echo "T file $(cat /tmp/f)"
echo "T pipe $(echo abcxyz | tr a-z A-Z | rev)"
echo "T sum $(seq 1 1000 | awk '{ s += $1 } END { print s }')"
echo "T sha $(seq 1 500 | sha256sum | cut -c1-16)"
echo "T sort $(printf '3\n1\n2\n' | sort -n | tr '\n' ,)"
i=0
while [ "$i" -lt 100 ]; do /bin/busybox true || break; i=$((i + 1)); done
echo "T execs $i"
j=0
for k in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	( exit "$((k % 2))" ) || j=$((j + 1))
done
echo "T subshells $j"
sleep 1 && echo "T sleep ok"
mkdir -p /tmp/d/e && touch /tmp/d/e/x && echo "T find $(find /tmp/d -type f)"
dd if=/dev/zero of=/tmp/z bs=1k count=256 2>/dev/null && echo "T dd $(stat -c %s /tmp/z)"
sh -c 'exit 7'; echo "T status $?"
( sleep 30 & wait_pid=$!; kill "$wait_pid"; wait "$wait_pid"; echo "T kill $?" )
echo "T dmesg $(dmesg | grep -c 'Run /init')"
echo "T done"
