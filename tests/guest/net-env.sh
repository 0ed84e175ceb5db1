# Host side of the Linux guest network checks (sourced by tests/guest/run):
# what the guest's tests/guest/scripts/net.sh talks to, all on loopback or
# in a network namespace made here and removed by net_env_stop:
#   - an HTTP server on 127.0.0.1 (hello.txt, big.bin of NET_BIG bytes),
#     reached through user NAT (10.0.2.2) and through passt (its gateway);
#   - a port forward 127.0.0.1:NET_FWD_PORT -> guest:80 (busybox httpd),
#     fetched once the guest says net_httpd_up;
#   - tap: a bridge joining kvisor's tap device and a veth whose peer sits in
#     a test namespace at 10.99.0.1 with a TCP sink that hashes what it gets;
#   - internal: two firmware responders (ARP + ICMP echo), one on the guest's
#     segment and one on another segment.
# shellcheck shell=bash

# The big transfer, through user NAT and through passt: every 1500-byte frame
# costs the guest's emulated kernel tens of thousands of instructions on
# kvm-pvm hosts (10 MB through libslirp took over 19 minutes at load 14), so
# make check moves 2 MB; NET_BIG_MB=10 for the full-size check by hand.
NET_BIG=$((${NET_BIG_MB:-2} * 1024 * 1024))
NET_RESPONDER=${NET_RESPONDER:-${FW_DIR:-build/firmware}/netecho.elf}
NET_DIR=
NET_PIDS=()
NET_SUF=$$
NET_NS=kvt-ns$NET_SUF
NET_BR=kvtb$NET_SUF
NET_TAP=kvtt$NET_SUF
NET_VETH=kvtv$NET_SUF
NET_TAP_ADDR=10.99.0.2
NET_TAP_PEER=10.99.0.1
NET_SEG_A=kvt-a$NET_SUF
NET_SEG_B=kvt-b$NET_SUF
NET_SEG_ADDR=10.98.0.2
NET_SEG_PEER=10.98.0.3
NET_SEG_OTHER=10.98.0.4

net_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# net_env_start OUTDIR: start everything; sets NET_ENV_FILE (the guest's
# /net.env), NET_KVISOR_ARGS (the --net flags), NET_BIG_SHA, NET_TAP_OK.
net_env_start() {
	NET_DIR=$1/net
	rm -rf "$NET_DIR" && mkdir -p "$NET_DIR/www"
	echo "hello-from-host" >"$NET_DIR/www/hello.txt"
	head -c "$NET_BIG" /dev/urandom >"$NET_DIR/www/big.bin"
	NET_BIG_SHA=$(sha256sum <"$NET_DIR/www/big.bin" | cut -d' ' -f1)
	NET_HTTP_PORT=$(net_free_port)
	NET_FWD_PORT=$(net_free_port)
	NET_TCP_PORT=5201
	python3 -m http.server --bind 127.0.0.1 --directory "$NET_DIR/www" "$NET_HTTP_PORT" \
		>"$NET_DIR/http.log" 2>&1 &
	NET_PIDS+=($!)

	# tap bridged to a veth whose peer is in the test namespace
	NET_TAP_OK=
	if ip netns add "$NET_NS" && ip tuntap add "$NET_TAP" mode tap &&
		ip link add "$NET_BR" type bridge && ip link add "$NET_VETH" type veth peer name eth0 netns "$NET_NS" &&
		ip link set "$NET_TAP" master "$NET_BR" && ip link set "$NET_VETH" master "$NET_BR" &&
		ip link set "$NET_BR" up && ip link set "$NET_TAP" up && ip link set "$NET_VETH" up &&
		ip -n "$NET_NS" addr add "$NET_TAP_PEER/24" dev eth0 && ip -n "$NET_NS" link set eth0 up &&
		ip -n "$NET_NS" link set lo up; then
		NET_TAP_OK=1
		ip netns exec "$NET_NS" python3 -c '
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(3600)
c, _ = s.accept(); h = hashlib.sha256()
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b)
open(sys.argv[3], "w").write(h.hexdigest() + "\n")
' "$NET_TAP_PEER" "$NET_TCP_PORT" "$NET_DIR/tap-sink.sha" &
		NET_PIDS+=($!)
	else
		echo "   net: could not set up the tap test network (needs root, iproute2, bridge and veth)"
	fi

	# internal segments: a responder firmware on each
	NET_SEG_OK=
	if [ -f "$NET_RESPONDER" ]; then
		"$KVISOR" run --kernel "$NET_RESPONDER" --cmdline "net.ip=$NET_SEG_PEER" \
			--net "internal,name=$NET_SEG_A,mac=02:00:00:00:0a:03" </dev/null >"$NET_DIR/resp-a.log" 2>&1 &
		NET_PIDS+=($!)
		"$KVISOR" run --kernel "$NET_RESPONDER" --cmdline "net.ip=$NET_SEG_OTHER" \
			--net "internal,name=$NET_SEG_B,mac=02:00:00:00:0b:04" </dev/null >"$NET_DIR/resp-b.log" 2>&1 &
		NET_PIDS+=($!)
		NET_SEG_OK=1
	fi

	NET_ENV_FILE=$NET_DIR/net.env
	cat >"$NET_ENV_FILE" <<-ENV
		HTTP_PORT=$NET_HTTP_PORT
		BIG=$NET_BIG
		TAP_ADDR=$NET_TAP_ADDR
		TAP_PEER=$NET_TAP_PEER
		TCP_PORT=$NET_TCP_PORT
		SEG_ADDR=$NET_SEG_ADDR
		SEG_PEER=$NET_SEG_PEER
		SEG_OTHER=$NET_SEG_OTHER
	ENV
	NET_KVISOR_ARGS=(--net "user,hostfwd=tcp:127.0.0.1:$NET_FWD_PORT-:80" --net passt
		--net "tap,ifname=$NET_TAP" --net "internal,name=$NET_SEG_A,mac=02:00:00:00:0a:02")
}

# net_fetch_forwarded LOG: in the background, wait for the guest's
# net_httpd_up line and fetch its page through the port forward.
net_fetch_forwarded() {
	local log=$1
	(
		for _ in $(seq 1 3600); do
			grep -q '^T net_httpd_up' "$log" 2>/dev/null && break
			grep -qE 'reboot: Power down|Kernel panic' "$log" 2>/dev/null && exit 0
			sleep 1
		done
		python3 -c '
import sys, time, urllib.request
for i in range(60):
    try:
        print(urllib.request.urlopen(sys.argv[1], timeout=60).read().decode().strip()); break
    except Exception as e:
        err = e; time.sleep(2)
else:
    print("error: %s" % err)
' "http://127.0.0.1:$NET_FWD_PORT/index.html" >"$NET_DIR/forwarded.txt" 2>&1
	) &
	NET_PIDS+=($!)
}

net_env_stop() {
	[ ${#NET_PIDS[@]} -gt 0 ] && kill "${NET_PIDS[@]}" 2>/dev/null && wait "${NET_PIDS[@]}" 2>/dev/null
	NET_PIDS=()
	ip link del "$NET_BR" 2>/dev/null
	ip link del "$NET_VETH" 2>/dev/null
	ip tuntap del "$NET_TAP" mode tap 2>/dev/null
	ip netns del "$NET_NS" 2>/dev/null
	return 0
}

# net_expected: the "name|value" lines net.sh must print.
net_expected() {
	cat <<-EOF
		net_user_ip|10.0.2.15/24
		net_user_route|10.0.2.2
		net_user_dns|10.0.2.3
		net_user_page|hello-from-host
		net_user_big|$NET_BIG_SHA
		net_httpd_served|yes
		net_passt_dhcp|yes
		net_passt_page|hello-from-host
		net_passt_big|$NET_BIG_SHA
		net_tap_ping|ok
		net_tap_nc|ok
		net_seg_peer|ok
		net_seg_other|unreachable
		net_done|
	EOF
}

# net_check NAME CLEANLOG: the host-side results.
net_check() {
	local name=$1 clean=$2 got sent
	got=$(cat "$NET_DIR/forwarded.txt" 2>/dev/null)
	if [ "$got" = "kvisor-guest-httpd" ]; then pass "$name: hostfwd reaches the guest's httpd"
	else fail "$name: hostfwd fetch got '$got', want 'kvisor-guest-httpd'"; fi
	sent=$(sed -n 's/^T net_tap_sent //p' "$clean" | head -n 1)
	got=$(cat "$NET_DIR/tap-sink.sha" 2>/dev/null)
	if [ -n "$sent" ] && [ "$got" = "$sent" ]; then pass "$name: tap TCP transfer arrived intact"
	else fail "$name: tap TCP transfer: namespace got '${got}', guest sent '${sent}'"; fi
}
