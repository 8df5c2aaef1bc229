"""An ipvlan topology for the mode × traffic matrix, and dpkt frame builders.

``ipm`` holds the master ``eth0`` (10.0.0.254/24, 2001:db8::fe/64); its veth peer ``ext``
in ``ipx`` is the outside host 10.0.0.9 / 2001:db8::9 (the harness sends from it and
captures on it).  Slaves ``s1`` (10.0.0.1, 2001:db8::1) and ``s2`` (10.0.0.2, 2001:db8::2)
live in namespaces ``ipa`` and ``ipb``.  Neighbours are permanent so that the only frames
are the injected ones and their consequences; IPv6 addresses are ``nodad``.
"""
from __future__ import annotations

import socket

import dpkt

MAC_M = "02:00:00:00:aa:01"
MAC_X = "02:00:00:00:bb:01"
BCAST = "ff:ff:ff:ff:ff:ff"
IP = {"s1": "10.0.0.1", "s2": "10.0.0.2", "x": "10.0.0.9", "m": "10.0.0.254"}
IP6 = {"s1": "2001:db8::1", "s2": "2001:db8::2", "x": "2001:db8::9", "m": "2001:db8::fe"}


def script(mode: str, flag: str) -> str:
    """The setup for ``type ipvlan mode MODE FLAG`` (bash; also runs on a kernel with
    the ipvlan module)."""
    lines = [
        "ip netns add ipm", "ip netns add ipa", "ip netns add ipb", "ip netns add ipx",
        "ip netns exec ipx sysctl -w net.ipv6.conf.all.disable_ipv6=1",
        "ip netns exec ipx sysctl -w net.ipv6.conf.default.disable_ipv6=1",
        f"ip -n ipm link add eth0 address {MAC_M} type veth peer name ext address {MAC_X} netns ipx",
        f"ip -n ipm link add link eth0 name s1 type ipvlan mode {mode} {flag}",
        f"ip -n ipm link add link eth0 name s2 type ipvlan mode {mode} {flag}",
        "ip -n ipm link set s1 netns ipa", "ip -n ipm link set s2 netns ipb",
    ]
    for ns in ("ipm", "ipa", "ipb"):
        lines.append(f"ip netns exec {ns} sysctl -w net.ipv6.conf.default.accept_dad=0")
        lines.append(f"ip netns exec {ns} sysctl -w net.ipv6.conf.all.accept_dad=0")
    lines += [
        "ip -n ipm link set eth0 up", "ip -n ipx link set ext up",
        "ip -n ipa link set s1 up", "ip -n ipb link set s2 up",
        "ip -n ipm addr add 10.0.0.254/24 dev eth0",
        "ip -n ipm addr add 2001:db8::fe/64 dev eth0 nodad",
        "ip -n ipa addr add 10.0.0.1/24 dev s1", "ip -n ipb addr add 10.0.0.2/24 dev s2",
        "ip -n ipa addr add 2001:db8::1/64 dev s1 nodad",
        "ip -n ipb addr add 2001:db8::2/64 dev s2 nodad",
        f"ip -n ipm neigh add 10.0.0.9 lladdr {MAC_X} dev eth0 nud permanent",
        f"ip -n ipm neigh add 2001:db8::9 lladdr {MAC_X} dev eth0 nud permanent",
        # the outside router a VEPA port's sibling traffic goes through in l3/l3s
        f"ip -n ipm neigh add 10.0.0.2 lladdr {MAC_X} dev eth0 nud permanent",
        f"ip -n ipm neigh add 2001:db8::2 lladdr {MAC_X} dev eth0 nud permanent",
        f"ip -n ipa neigh add 10.0.0.9 lladdr {MAC_X} dev s1 nud permanent",
        f"ip -n ipb neigh add 10.0.0.9 lladdr {MAC_X} dev s2 nud permanent",
        f"ip -n ipa neigh add 2001:db8::9 lladdr {MAC_X} dev s1 nud permanent",
        f"ip -n ipb neigh add 2001:db8::9 lladdr {MAC_X} dev s2 nud permanent",
        f"ip -n ipa neigh add 10.0.0.2 lladdr {MAC_M} dev s1 nud permanent",
        f"ip -n ipa neigh add 2001:db8::2 lladdr {MAC_M} dev s1 nud permanent",
    ]
    if mode != "l2":
        # NOARP slaves cannot take neighbour entries with an address: drop those lines
        lines = [ln for ln in lines if not (ln.startswith("ip -n ipa neigh")
                                            or ln.startswith("ip -n ipb neigh"))]
    return "\n".join(lines) + "\n"


def mac(text: str) -> bytes:
    return bytes(int(b, 16) for b in text.split(":"))


def ip4(t: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, t)


def ip6(t: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, t)


def eth(dst: str, src: str, etype: int, payload: bytes) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(dst=mac(dst), src=mac(src), type=etype, data=payload))


def udp4(src: str, dst: str, tag: bytes, ttl: int = 64) -> bytes:
    u = dpkt.udp.UDP(sport=4000, dport=5000, ulen=8 + len(tag), data=tag)
    p = dpkt.ip.IP(src=ip4(src), dst=ip4(dst), p=17, ttl=ttl, id=7, data=u)
    return bytes(p)


def echo4(src: str, dst: str, tag: bytes) -> bytes:
    e = dpkt.icmp.ICMP.Echo(id=0x77, seq=1, data=tag)
    m = dpkt.icmp.ICMP(type=8, code=0, data=e)
    return bytes(dpkt.ip.IP(src=ip4(src), dst=ip4(dst), p=1, ttl=64, id=9, data=m))


def udp6(src: str, dst: str, tag: bytes) -> bytes:
    u = dpkt.udp.UDP(sport=4000, dport=5000, ulen=8 + len(tag), data=tag)
    p = dpkt.ip6.IP6(v=6, fc=0, flow=0, nxt=17, hlim=64, src=ip6(src), dst=ip6(dst),
                     plen=len(bytes(u)), data=u)
    return bytes(p)


def echo6(src: str, dst: str, tag: bytes) -> bytes:
    body = b"\x00\x77\x00\x01" + tag
    m = dpkt.icmp6.ICMP6(type=128, code=0, data=body)
    p = dpkt.ip6.IP6(v=6, fc=0, flow=0, nxt=58, hlim=64, src=ip6(src), dst=ip6(dst),
                     plen=len(bytes(m)), data=m)
    p.data.sum = 0
    raw = bytes(p)
    return raw


def arp_req(spa: str, tpa: str, sha: str = MAC_X) -> bytes:
    a = dpkt.arp.ARP(hrd=1, pro=0x0800, hln=6, pln=4, op=1, sha=mac(sha), spa=ip4(spa),
                     tha=b"\0" * 6, tpa=ip4(tpa))
    return bytes(a)


def ns6(src: str, target: str, sha: str = MAC_X) -> tuple[str, bytes]:
    """A Neighbour Solicitation for ``target`` (RFC 4861 4.3) with a source link-layer
    option, to the solicited-node group; returns (destination MAC, IPv6 packet)."""
    t = ip6(target)
    group = b"\xff\x02" + bytes(9) + b"\x01\xff" + t[13:]
    body = bytes(4) + t + b"\x01\x01" + mac(sha)
    m = dpkt.icmp6.ICMP6(type=135, code=0, data=body)
    p = dpkt.ip6.IP6(v=6, fc=0, flow=0, nxt=58, hlim=255, src=ip6(src), dst=group,
                     plen=len(bytes(m)), data=m)
    return "33:33:" + ":".join(f"{b:02x}" for b in group[12:]), bytes(p)
