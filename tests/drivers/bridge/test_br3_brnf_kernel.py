"""br_netfilter beyond validation (issue #5 leftovers), kernel-differential: frames on
Linux 6.18 and on netstack from the same script must match byte for byte (see
kernel_helpers.py for the topology and the normalisations).

* ``ip_sabotage_in``: a bridged IPv4 packet for the bridge's own address runs the ``ip``
  PRE_ROUTING chains once, inside the bridge — a chain that drops what it already marked
  would otherwise eat the ping.
* DNAT of bridged traffic (``br_nf_pre_routing_finish``): to the bridge's own address
  (re-routed as local: the frame goes up the bridge, not flooded) and to another host on
  the bridge (``br_nf_pre_routing_finish_bridge``: still bridged, the destination MAC
  becomes the new address's neighbour), with forwarding off as on a plain bridge.
"""
from __future__ import annotations

import struct

from kernel_helpers import BR_MAC, MAC, Send, compare, got, script, send

UNKNOWN = "02:00:00:00:09:09"
Q_FDB = "ip netns exec b bridge -j fdb show br br0"
NAT_CHAIN = ("ip netns exec b nft add chain ip nat pre "
             "'{ type nat hook prerouting priority -100; }'\n")
IFACE = ("ip netns exec b sysctl -w net.ipv4.conf.all.rp_filter=0\n"
         "ip netns exec b sysctl -w net.ipv4.conf.default.rp_filter=0\n"
         "ip netns exec b sysctl -w net.ipv4.icmp_ratemask=0\n"
         "ip -n b addr add 10.9.0.254/24 dev br0\n")


def _csum(b: bytes) -> int:
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ping(dst_mac: str, dst_ip: str, src_ip: str = "10.9.0.1", h: int = 1,
         seq: int = 1) -> bytes:
    """An ICMP echo request from host ``h`` (an Ethernet frame)."""
    icmp = bytearray(b"\x08\x00\x00\x00\x12\x34" + seq.to_bytes(2, "big") + b"bridge ping!")
    icmp[2:4] = _csum(bytes(icmp)).to_bytes(2, "big")
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 7, 0, 64, 1, 0,
                               bytes(map(int, src_ip.split("."))),
                               bytes(map(int, dst_ip.split(".")))))
    ip[10:12] = _csum(bytes(ip)).to_bytes(2, "big")
    return (bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(MAC[h].replace(":", ""))
            + b"\x08\x00" + bytes(ip) + bytes(icmp))


def arp_request(target: str, h: int = 1, sender: str = "10.9.0.1") -> bytes:
    mac = bytes.fromhex(MAC[h].replace(":", ""))
    return (b"\xff" * 6 + mac + b"\x08\x06" + bytes.fromhex("0001080006040001") + mac
            + bytes(map(int, sender.split("."))) + bytes(6)
            + bytes(map(int, target.split("."))))


def test_ip_sabotage_in_prerouting_runs_once() -> None:
    """``meta mark 1 drop`` before ``meta mark set 1`` in an ``ip`` prerouting chain: the
    ping to the bridge's address is answered, so the chain did not see it a second time
    in ip_rcv."""
    frag = ("ip netns exec b nft add table ip f\n"
            "ip netns exec b nft add chain ip f pre '{ type filter hook prerouting priority 0; }'\n"
            "ip netns exec b nft add rule ip f pre meta mark 1 drop\n"
            "ip netns exec b nft add rule ip f pre meta mark set 1\n")
    k, _ = compare("br3_sabotage", script("base", "\n" + IFACE + frag),
                   [Send("h1", "e1", arp_request("10.9.0.254")),
                    Send("h1", "e1", ping(BR_MAC, "10.9.0.254"))],
                   [Q_FDB], originators=frozenset({"10.9.0.254"}))
    assert len(got(k, 1)) == 2  # ARP reply + echo reply


def test_bridged_dnat_to_local_address() -> None:
    """DNAT to the bridge's own address: an unknown-unicast frame that would have been
    flooded is re-routed as local, goes up the bridge and is answered (from the
    original address, conntrack reverses the NAT); no other port sees the ping."""
    frag = ("ip netns exec b nft add table ip nat\n"
            + NAT_CHAIN +
            "ip netns exec b nft add rule ip nat pre ip daddr 10.9.0.99 dnat to 10.9.0.254\n")
    k, _ = compare("br3_dnat_local", script("base", "\n" + IFACE + frag),
                   [Send("h1", "e1", arp_request("10.9.0.254")),
                    Send("h1", "e1", ping(UNKNOWN, "10.9.0.99"))],
                   [Q_FDB], originators=frozenset({"10.9.0.254", "10.9.0.99"}))
    assert len(got(k, 1)) == 2 and len(got(k, 2)) == 1 and len(got(k, 3)) == 1


_DNAT_H2 = ("ip -n b neigh add 10.9.0.2 lladdr 02:00:00:00:02:01 dev br0 nud permanent\n"
            "ip netns exec b nft add table ip nat\n"
            + NAT_CHAIN +
            "ip netns exec b nft add rule ip nat pre ip daddr 10.9.0.99 dnat to 10.9.0.2\n")


def test_bridged_dnat_to_other_host_forwarding() -> None:
    """DNAT to a host behind another port on a forwarding bridge: the input route leaves
    through the bridge itself, so the packet stays bridged with the destination MAC of
    the neighbour entry — whatever MAC it arrived with — and is learned/forwarded as
    usual (the ``ip`` FORWARD chain sees it, as br_nf_forward does)."""
    frag = ("ip netns exec b sysctl -w net.ipv4.ip_forward=1\n" + _DNAT_H2
            + "ip netns exec b nft add table ip f\n"
            "ip netns exec b nft add chain ip f fw '{ type filter hook forward priority 0; }'\n"
            "ip netns exec b nft add rule ip f fw ip daddr 10.9.0.2 icmp type echo-request "
            "meta mark set 7 accept\n")
    sends = [send(2, MAC[3]), Send("h1", "e1", ping(BR_MAC, "10.9.0.99")),
             Send("h1", "e1", ping(UNKNOWN, "10.9.0.99", seq=2))]
    k, _ = compare("br3_dnat_bridged_fwd", script("base", "\n" + IFACE + frag), sends,
                   [Q_FDB])
    assert len(got(k, 2)) == 2 and got(k, 2)[0][:6] == bytes.fromhex("020000000201")
    assert len(got(k, 3)) == 1  # only h2's own first frame, flooded


def test_bridged_dnat_to_other_host_no_forwarding() -> None:
    """The same without forwarding: the input route is ``ip_error``'s (not through the
    bridge), so the frame goes up the bridge and dies there (IpInAddrErrors, no ICMP on a
    non-forwarding device) — nothing is bridged, but the sender is still learned."""
    sends = [send(2, MAC[3]), Send("h1", "e1", ping(BR_MAC, "10.9.0.99")),
             Send("h1", "e1", ping(UNKNOWN, "10.9.0.99", seq=2))]
    k, _ = compare("br3_dnat_bridged_nofwd", script("base", "\n" + IFACE + _DNAT_H2),
                   sends, [Q_FDB])
    assert len(got(k, 2)) == 0 and len(got(k, 3)) == 1


def arp_reply(h: int, ip: str, to_mac: str, to_ip: str) -> bytes:
    mac = bytes.fromhex(MAC[h].replace(":", ""))
    dst = bytes.fromhex(to_mac.replace(":", ""))
    return (dst + mac + b"\x08\x06" + bytes.fromhex("0001080006040002") + mac
            + bytes(map(int, ip.split("."))) + dst + bytes(map(int, to_ip.split("."))))


def test_bridged_dnat_unresolved_neighbour() -> None:
    """DNAT to a host the bridge has no neighbour entry for: the bridge ARPs for it
    (flooded from br0), the packet waits in the neighbour queue, and once the reply is
    in it re-enters the bridge on its original port (br_dev_xmit's bridged_dnat hook):
    h2 gets it with h1's source MAC."""
    frag = ("ip netns exec b sysctl -w net.ipv4.ip_forward=1\n"
            "ip netns exec b nft add table ip nat\n" + NAT_CHAIN +
            "ip netns exec b nft add rule ip nat pre ip daddr 10.9.0.99 dnat to 10.9.0.2\n")
    sends = [send(2, MAC[3]), Send("h1", "e1", ping(BR_MAC, "10.9.0.99")),
             Send("h2", "e2", arp_reply(2, "10.9.0.2", BR_MAC, "10.9.0.254"), 0.05)]
    k, _ = compare("br3_dnat_unresolved", script("base", "\n" + IFACE + frag), sends,
                   [Q_FDB, "ip -n b -j neigh show"], originators=frozenset({"10.9.0.254"}))
    pings = [f for f in got(k, 2) if f[12:14] == b"\x08\x00"]
    assert len(pings) == 1 and pings[0][:12] == bytes.fromhex("020000000201020000000101")


# IPv6 on the bridge only, with its own MLD reports dropped on the way out (netstack's
# IP layer sends none), neither DAD nor router solicitations, and no random flow labels.
IFACE6 = ("ip netns exec b nft add table bridge o\n"
          "ip netns exec b nft add chain bridge o out "
          "'{ type filter hook output priority 0; }'\n"
          "ip netns exec b nft add rule bridge o out icmpv6 type "
          "'{ mld-listener-report, mld2-listener-report }' drop\n"
          "ip netns exec b sysctl -w net.ipv6.auto_flowlabels=0\n"
          "ip netns exec b sysctl -w net.ipv6.conf.br0.accept_dad=0\n"
          "ip netns exec b sysctl -w net.ipv6.conf.br0.router_solicitations=0\n"
          "ip netns exec b sysctl -w net.ipv6.conf.br0.disable_ipv6=0\n"
          "ip -n b addr add 2001:db8::fe/64 dev br0 nodad\n"
          "ip -n b neigh add 2001:db8::1 lladdr 02:00:00:00:01:01 dev br0 nud permanent\n"
          "ip -n b neigh add 2001:db8::2 lladdr 02:00:00:00:02:01 dev br0 nud permanent\n"
          "ip netns exec b nft add table ip6 nat\n"
          "ip netns exec b nft add chain ip6 nat pre "
          "'{ type nat hook prerouting priority -100; }'\n")


def ping6(dst_mac: str, dst: str, src: str = "2001:db8::1", h: int = 1) -> bytes:
    import ipaddress
    s6 = ipaddress.IPv6Address(src).packed
    d6 = ipaddress.IPv6Address(dst).packed
    body = bytearray(b"\x80\x00\x00\x00\x00\x01\x00\x01" + b"bridge ping6")
    pseudo = s6 + d6 + struct.pack("!I3xB", len(body), 58)
    body[2:4] = _csum(pseudo + bytes(body)).to_bytes(2, "big")
    ip6 = struct.pack("!IHBB", 6 << 28, len(body), 58, 64) + s6 + d6
    return (bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(MAC[h].replace(":", ""))
            + b"\x86\xdd" + ip6 + bytes(body))


def test_bridged_dnat_ipv6() -> None:
    """IPv6 (``br_nf_pre_routing_finish_ipv6``): DNAT to a host behind another port stays
    bridged towards the ND neighbour's MAC; DNAT to the bridge's own address goes up
    and is answered from the original address."""
    frag = (IFACE6 + "ip netns exec b nft add rule ip6 nat pre ip6 daddr 2001:db8::99 "
            "dnat to 2001:db8::2\n"
            "ip netns exec b nft add rule ip6 nat pre ip6 daddr 2001:db8::98 "
            "dnat to 2001:db8::fe\n")
    sends = [send(2, MAC[3]), Send("h1", "e1", ping6(BR_MAC, "2001:db8::99")),
             Send("h1", "e1", ping6(UNKNOWN, "2001:db8::98"))]
    k, _ = compare("br3_dnat6", script("base", "\n" + frag), sends, [Q_FDB])
    v6 = [f for f in got(k, 2) if f[12:14] == b"\x86\xdd"]
    assert len(v6) == 1 and v6[0][:6] == bytes.fromhex("020000000201")
    assert [f[54] for f in got(k, 1) if f[12:14] == b"\x86\xdd"] == [129]


def na(h: int, target: str, to_mac: str, to_ip: str) -> bytes:
    """A solicited neighbour advertisement (S+O) with the target link-layer option."""
    import ipaddress
    mac = bytes.fromhex(MAC[h].replace(":", ""))
    s6 = ipaddress.IPv6Address(target).packed
    d6 = ipaddress.IPv6Address(to_ip).packed
    body = bytearray(b"\x88\x00\x00\x00\x60\x00\x00\x00" + s6 + b"\x02\x01" + mac)
    pseudo = s6 + d6 + struct.pack("!I3xB", len(body), 58)
    body[2:4] = _csum(pseudo + bytes(body)).to_bytes(2, "big")
    ip6 = struct.pack("!IHBB", 6 << 28, len(body), 58, 255) + s6 + d6
    return bytes.fromhex(to_mac.replace(":", "")) + mac + b"\x86\xdd" + ip6 + bytes(body)


def test_bridged_dnat_ipv6_unresolved_neighbour() -> None:
    """IPv6 DNAT towards a host without a neighbour entry: the bridge solicits it, the
    packet waits, and after the advertisement re-enters the bridge on its port."""
    frag = (IFACE6.replace("ip -n b neigh add 2001:db8::2 lladdr 02:00:00:00:02:01 dev br0 "
                           "nud permanent\n", "")
            + "ip netns exec b nft add rule ip6 nat pre ip6 daddr 2001:db8::99 "
            "dnat to 2001:db8::2\n")
    sends = [send(2, MAC[3]), Send("h1", "e1", ping6(BR_MAC, "2001:db8::99")),
             Send("h2", "e2", na(2, "2001:db8::2", BR_MAC, "2001:db8::fe"), 0.05)]
    k, _ = compare("br3_dnat6_unresolved", script("base", "\n" + frag), sends, [Q_FDB])
    pings = [f for f in got(k, 2) if f[12:14] == b"\x86\xdd" and f[54] == 128]
    assert len(pings) == 1 and pings[0][:12] == bytes.fromhex("020000000201020000000101")
