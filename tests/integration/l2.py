#!/usr/bin/env python3
"""Raw Ethernet frames for hvnet's integration tests (no scapy here).

  l2.py send IFACE --dst MAC [--src MAC] [--vlan V] [--count N] [--tag T]
                   [--inner-vlan V] [--tags TPID:TCI,...]
                   [--kind plain|dhcp-offer|dhcpv6-reply|ra|ra-hbh|redirect]
  l2.py recv IFACE [--timeout S] [--tag T] [--min N]

send writes frames straight onto an interface (an 802.1Q tag in the frame
with --vlan, a second one inside it with --inner-vlan; --tags gives the
whole stack instead, outermost first, as TPID (hex):TCI, e.g. 8100:0,8100:20
for a priority tag in front of VLAN 20, 8100:0xa000 for a priority tag with
priority 5, 88a8:20 for an 802.1ad tag). recv counts frames carrying the tag text and prints one line
per VLAN seen: "vlan V frames N" (vlan 0: untagged). It reads VLAN tags from
PACKET_AUXDATA, where the kernel puts them after stripping (it does so even
without 802.1Q support, which this machine's kernel lacks). recv exits when
--min frames arrived or after --timeout seconds.
"""
import argparse
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def udp4(src, dst, sport, dport, data):
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return ipv4(src, dst, 17, u)


def ipv6(src, dst, nh, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, 255,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + payload


def build(kind, tag):
    """(ethertype, L3 payload) for a frame kind."""
    t = tag.encode()
    if kind == "plain":
        return 0x88B5, t + b"\0" * max(0, 46 - len(t))
    if kind == "dhcp-offer":
        # BOOTREPLY (op 2): what a DHCP server sends, 67 -> 68.
        bootp = struct.pack("!BBBB", 2, 1, 6, 0) + b"\0" * 232 + b"\x63\x82\x53\x63\x35\x01\x02\xff" + t
        return 0x0800, udp4("10.99.99.1", "255.255.255.255", 67, 68, bootp)
    if kind == "dhcpv6-reply":
        return 0x86DD, ipv6("fe80::1", "ff02::1:2", 17,
                            struct.pack("!HHHH", 547, 546, 8 + 4 + len(t), 0) + b"\x07\0\0\x01" + t)
    if kind == "ra":
        icmp = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0) + t
        return 0x86DD, ipv6("fe80::1", "ff02::1", 58, icmp)
    if kind == "ra-hbh":
        # The same RA behind a hop-by-hop options header (PadN): the RA-guard
        # evasion of RFC 7113.
        icmp = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0) + t
        hbh = struct.pack("!BBBB", 58, 0, 1, 4) + b"\0" * 4
        return 0x86DD, ipv6("fe80::1", "ff02::1", 0, hbh + icmp)
    if kind == "redirect":
        icmp = struct.pack("!BBHI", 5, 1, 0, 0x0a630101) + t
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        return 0x0800, ipv4("10.99.99.1", "10.99.99.2", 1, icmp)
    raise SystemExit("unknown kind " + kind)


def cmd_send(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    src = mac_bytes(a.src) if a.src else s.getsockname()[4][:6]
    ethertype, payload = build(a.kind, a.tag)
    hdr = mac_bytes(a.dst) + src
    if a.vlan:
        hdr += struct.pack("!HH", 0x8100, a.vlan & 0xFFF)
    if a.inner_vlan:
        hdr += struct.pack("!HH", 0x8100, a.inner_vlan & 0xFFF)
    for t in a.tags.split(",") if a.tags else []:
        tpid, tci = t.split(":")
        hdr += struct.pack("!HH", int(tpid, 16), int(tci, 0))
    frame = hdr + struct.pack("!H", ethertype) + payload
    for _ in range(a.count):
        s.send(frame)
        if a.interval:
            time.sleep(a.interval)
    print("sent %d" % a.count)


def cmd_recv(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((a.iface, ETH_P_ALL))
    tag = a.tag.encode()
    seen = {}
    total = 0
    end = time.time() + a.timeout
    while time.time() < end and (not a.min or total < a.min):
        r, _, _ = select.select([s], [], [], max(0.0, end - time.time()))
        if not r:
            break
        data, anc, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(64))
        if addr[2] == socket.PACKET_OUTGOING or tag not in data:
            continue
        vlan = 0
        for level, typ, d in anc:
            if level == SOL_PACKET and typ == PACKET_AUXDATA and len(d) >= 20:
                status = struct.unpack_from("I", d, 0)[0]
                tci = struct.unpack_from("H", d, 16)[0]
                if status & TP_STATUS_VLAN_VALID:
                    vlan = tci & 0xFFF
        if len(data) >= 16 and data[12:14] == b"\x81\x00":
            vlan = struct.unpack_from("!H", data, 14)[0] & 0xFFF
        seen[vlan] = seen.get(vlan, 0) + 1
        total += 1
    if not seen:
        print("none")
    for v in sorted(seen):
        print("vlan %d frames %d" % (v, seen[v]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("send")
    sp.add_argument("iface")
    sp.add_argument("--dst", required=True)
    sp.add_argument("--src")
    sp.add_argument("--vlan", type=int, default=0)
    sp.add_argument("--inner-vlan", type=int, default=0)
    sp.add_argument("--tags", default="")
    sp.add_argument("--count", type=int, default=1)
    sp.add_argument("--interval", type=float, default=0.0)
    sp.add_argument("--tag", default="hvnet-l2")
    sp.add_argument("--kind", default="plain")
    rp = sub.add_parser("recv")
    rp.add_argument("iface")
    rp.add_argument("--timeout", type=float, default=3.0)
    rp.add_argument("--tag", default="hvnet-l2")
    rp.add_argument("--min", type=int, default=0)
    a = p.parse_args()
    {"send": cmd_send, "recv": cmd_recv}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
