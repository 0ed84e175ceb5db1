# Guest side of tests/guest/run's network checks (runs after userspace.sh in
# the same boot). The host put its parameters in /net.env:
#   HTTP_PORT  a host HTTP server on 127.0.0.1 (user NAT: 10.0.2.2; passt: the gateway)
#   BIG        the size of big.bin on that server (2 MB in make check)
#   TAP_PEER   the address of the test namespace behind eth2 (tap), TAP_ADDR ours
#   TCP_PORT   a TCP sink in that namespace that hashes what it receives
#   SEG_ADDR   our address on eth3 (internal segment A), SEG_PEER a responder on
#              segment A, SEG_OTHER a responder on segment B (must stay unreachable)
# Every result is a "T <name> <value>" line that the host compares. (No
# wget -T: busybox 1.35's wget segfaults with it, also on the host.)
# shellcheck disable=SC1091,SC2086
. /net.env
t() { echo "T $*"; }
mark() {
	read -r up _ </proc/uptime
	echo "I ${up}s: $*"
}
# ifaddr DEV: its IPv4 address/prefix
ifaddr() { ip -4 -o addr show dev "$1" | sed -n 's/.* inet \([0-9./]*\) .*/\1/p'; }

# --- eth0: user-mode NAT (libslirp), configured by /init's DHCP ---------------
mark "net: user"
t "net_user_ip $(ifaddr eth0)"
t "net_user_route $(ip route show default | sed -n 's/^default via \([0-9.]*\) dev eth0.*/\1/p')"
t "net_user_dns $(sed -n 's/^nameserver //p' /etc/resolv.conf | head -n 1)"
t "net_user_page $(timeout 120 wget -q -O - "http://10.0.2.2:$HTTP_PORT/hello.txt")"
set -- $(timeout 600 wget -q -O - "http://10.0.2.2:$HTTP_PORT/big.bin" | sha256sum)
t "net_user_big $1"
mark "net: big done"

# busybox httpd for the host's port forward (hostfwd=tcp:127.0.0.1:P-:80);
# the host fetches /index.html once it sees net_httpd_up, we wait for it.
mkdir -p /www && echo "kvisor-guest-httpd" >/www/index.html
httpd -f -vv -p 80 -h /www 2>/tmp/httpd.log &
t "net_httpd_up"
i=0
while [ "$i" -lt 240 ] && ! grep -q 'url:/index.html' /tmp/httpd.log; do sleep 1; i=$((i + 1)); done
grep -q 'url:/index.html' /tmp/httpd.log && t "net_httpd_served yes" || t "net_httpd_served no"

# --- eth1: passt (stream framing), DHCP without a default route --------------
mark "net: passt"
ip link set eth1 up
NODEFAULT=1 udhcpc -i eth1 -s /etc/udhcpc.script -q -n -t 4 -T 2 >/dev/null 2>&1
a=$(ifaddr eth1)
[ -n "$a" ] && t "net_passt_dhcp yes" || t "net_passt_dhcp no"
# passt gives the guest the host's own address and maps its gateway to the
# host's loopback: reach the host server there, through eth1.
gw=$(cat /tmp/router.eth1 2>/dev/null)
t "net_passt_page $(timeout 120 wget -q -O - "http://$gw:$HTTP_PORT/hello.txt")"
set -- $(timeout 600 wget -q -O - "http://$gw:$HTTP_PORT/big.bin" | sha256sum)
t "net_passt_big $1"

# --- eth2: tap, bridged to a test namespace -------------------------------------
mark "net: tap"
ip link set eth2 up && ip addr add "$TAP_ADDR/24" dev eth2
ping -c 3 -W 5 "$TAP_PEER" >/dev/null 2>&1 && t "net_tap_ping ok" || t "net_tap_ping failed"
set -- $(dd if=/dev/urandom bs=1024 count=256 2>/dev/null | tee /tmp/tap.bin | sha256sum)
t "net_tap_sent $1"
nc -w 30 "$TAP_PEER" "$TCP_PORT" </tmp/tap.bin && t "net_tap_nc ok" || t "net_tap_nc failed"

# --- eth3: internal segment A -------------------------------------------------
mark "net: internal"
ip link set eth3 up && ip addr add "$SEG_ADDR/24" dev eth3
ping -c 3 -W 5 "$SEG_PEER" >/dev/null 2>&1 && t "net_seg_peer ok" || t "net_seg_peer failed"
ping -c 2 -W 3 "$SEG_OTHER" >/dev/null 2>&1 && t "net_seg_other reachable" || t "net_seg_other unreachable"
mark "net: done"
t "net_done"
