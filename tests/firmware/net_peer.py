#!/usr/bin/env python3
"""A host endpoint on a kvisor internal network segment, for tests/firmware/run.

usage: net_peer.py SEGDIR MYIP TARGETIP
Binds a datagram socket in SEGDIR (the segment's directory, as kvisor's
internal backend lays it out: one unix datagram socket per endpoint, each
datagram one Ethernet frame), sends an ARP request for TARGETIP to every
endpoint there and, given a reply, one ICMP echo request. Prints
"arp-reply MAC", then "echo-reply SEQ", or "no-arp-reply" / "no-echo-reply"
after 5 s of silence. Exit status 0 in all these cases, 2 on a usage error.
"""
import os
import socket
import struct
import sys
import time

MYMAC = bytes.fromhex("020000000099")


def ip(s):
    return socket.inet_aton(s)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def send_all(sock, segdir, me, frame):
    for name in os.listdir(segdir):
        if name == me:
            continue
        try:
            sock.sendto(frame, os.path.join(segdir, name))
        except OSError:
            pass  # a stale endpoint


def wait_for(sock, match, secs=5.0):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            f = sock.recv(70000)
        except socket.timeout:
            break
        r = match(f)
        if r is not None:
            return r
    return None


def main():
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    segdir, myip, target = sys.argv[1], ip(sys.argv[2]), ip(sys.argv[3])
    me = "%016x" % int.from_bytes(os.urandom(8), "big")  # endpoint names: 16 hex digits
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.path.join(segdir, me))
    try:
        arp = (b"\xff" * 6 + MYMAC + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
               + MYMAC + myip + b"\0" * 6 + target)
        send_all(sock, segdir, me, arp)

        def arp_reply(f):
            if len(f) >= 42 and f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02" \
                    and f[28:32] == target and f[0:6] == MYMAC:
                return f[22:28]
            return None
        mac = wait_for(sock, arp_reply)
        if mac is None:
            print("no-arp-reply")
            return 0
        print("arp-reply " + ":".join("%02x" % b for b in mac))
        icmp = struct.pack("!BBHHH", 8, 0, 0, 0x4b56, 7) + b"kvisor-net-test"
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, myip, target)
        iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
        send_all(sock, segdir, me, mac + MYMAC + b"\x08\x00" + iph + icmp)

        def echo_reply(f):
            if len(f) >= 42 and f[12:14] == b"\x08\x00" and f[23] == 1 and f[34] == 0 \
                    and f[26:30] == target and f[30:34] == myip and csum(f[34:]) == 0:
                return struct.unpack("!H", f[40:42])[0]
            return None
        seq = wait_for(sock, echo_reply)
        print("no-echo-reply" if seq is None else "echo-reply %d" % seq)
        return 0
    finally:
        os.unlink(os.path.join(segdir, me))


sys.exit(main())
