"""Kernel-differential traffic for ``vlan … set`` and ``arp … set`` (nft_payload_set_eval
with ``nft_payload_set_vlan``, net/netfilter/nft_payload.c).

The netdev ingress hook runs after ``skb_vlan_untag``: the tag is out of band, so
``vlan id set`` rewrites ``skb->vlan_tci``, ``ether type set`` ``skb->vlan_proto``,
``vlan type set`` the packet 4 bytes earlier, and a one-byte write (``vlan pcp set``)
ends the rule.  ``fwd`` sends the result out of v2r where h2's capture shows the tag.
A VID rewritten to 0 makes the packet priority-tagged: the stack clears the tag and
routes it.  ARP rewrites happen before ``arp_process`` answers."""
from __future__ import annotations

import dpkt

from test_ct_kernel import kernel_result, netstack_result, require_oracle  # noqa: F401
from test_nat_kernel import _no_setup
from test_nfb_kernel import NFT_LIST, assert_same, nft

from kernel.cases import H1, H2, IP_H1, IP_H2, V1H, V2H, script, udp4  # noqa: E402

VLANSET = nft(
    "add table netdev n",
    "add chain netdev n ing { type filter hook ingress device \"v1r\" priority 0; }",
    "add rule netdev n ing vlan id 10 vlan id set 20 fwd to \"v2r\"",
    "add rule netdev n ing vlan id 11 vlan pcp set 5 fwd to \"v2r\"",
    "add rule netdev n ing vlan id 11 counter",
    "add rule netdev n ing vlan id 12 vlan pcp { 3, 6 } counter",
    "add rule netdev n ing vlan id 12 vlan pcp { 1, 2 } counter",
    "add rule netdev n ing vlan id 12 vlan type set ip6 fwd to \"v2r\"",
    "add rule netdev n ing vlan id 13 vlan id set 0 counter",
    "add rule netdev n ing vlan id 14 ether type set 8021ad fwd to \"v2r\"",
    "add rule netdev n ing vlan id 15 vlan dei set 1 counter",
    "add rule netdev n ing vlan id 15 vlan id set 4094 vlan pcp 3 fwd to \"v2r\"",
)


def _tagged(vid: int, ident: int, tpid: int = 0x8100) -> bytes:
    from kernel.cases import MAC_H1, MAC_R1, mac
    ip = udp4(IP_H1, IP_H2, 40000, 7000, b"v", ident=ident)
    return mac(MAC_R1) + mac(MAC_H1) + tpid.to_bytes(2, "big") + \
        ((3 << 13) | vid).to_bytes(2, "big") + b"\x08\x00" + ip


def _vlan_sends():
    from kernel.oracle import Send
    return [Send(H1, V1H, _tagged(v, 0x2c00 + v)) for v in (10, 11, 12, 13, 14, 15)]


def _tags(frames: list[bytes]) -> list[tuple[int, int, int]]:
    """(TPID, TCI, inner type) of each tagged frame."""
    return [(int.from_bytes(f[12:14], "big"), int.from_bytes(f[14:16], "big"),
             int.from_bytes(f[16:18], "big")) for f in frames
            if f[12:14] in (b"\x81\x00", b"\x88\xa8")]


def test_vlan_set_kernel_half():
    require_oracle()
    k = kernel_result("nfd_vlanset", script("ipv4_router") + VLANSET, _vlan_sends(),
                      [NFT_LIST])
    out = k.frames[(H2, V2H)]
    assert _tags(out) == [(0x8100, 0x6014, 0x0800), (0x8100, 0x600C, 0x86DD),
                          (0x88A8, 0x600E, 0x0800), (0x8100, 0x6FFE, 0x0800)]
    routed = [dpkt.ethernet.Ethernet(f).data for f in out if f[12:14] == b"\x08\x00"]
    assert [(ip.id, ip.ttl) for ip in routed] == [(0x2c00 + 13, 63)]
    text = k.queries[NFT_LIST]
    assert "vlan id 11 counter packets 1 " in text
    assert "vlan id 12 vlan pcp { 3, 6 } counter packets 1 " in text
    assert "vlan id 12 vlan pcp { 1, 2 } counter packets 0 " in text
    assert "vlan id 15 vlan dei set 1 counter packets 0 " in text


def test_vlan_set_matches_kernel():
    require_oracle()
    assert_same(*both("nfd_vlanset", VLANSET, _vlan_sends()))


ARPSET = nft(
    "add table arp a",
    "add chain arp a in { type filter hook input priority 0; }",
    "add rule arp a in arp operation request arp saddr ip 10.0.1.7 arp saddr ip set 10.0.1.77"
    " counter",
    "add rule arp a in arp saddr ip 10.0.1.8 arp operation set reply counter",
    "add rule arp a in arp saddr ip 10.0.1.9 arp saddr ether set 02:00:00:00:01:09 counter",
    "add rule arp a in arp saddr ip 10.0.1.10 arp daddr ip set 10.0.2.254 counter",
)


def _arp_sends():
    from kernel.cases import MAC_H1, arp, eth_arp
    from kernel.oracle import Send
    bcast = "ff:ff:ff:ff:ff:ff"
    return [Send(H1, V1H, eth_arp(bcast, MAC_H1, arp(1, MAC_H1, f"10.0.1.{n}",
                                                     "00:00:00:00:00:00", "10.0.1.254")))
            for n in (7, 8, 9, 10, 11)]


NEIGH = "ip -n r neigh show dev v1r"


def test_arp_set_kernel_half():
    require_oracle()
    k = kernel_result("nfd_arpset", script("ipv4_router") + ARPSET, _arp_sends(),
                      [NFT_LIST, NEIGH])
    replies = [dpkt.ethernet.Ethernet(f) for f in k.frames[(H1, V1H)]]
    got = [(e.dst, e.data.tpa, e.data.spa) for e in replies if e.type == 0x0806]
    assert (bytes.fromhex("020000000109"), bytes([10, 0, 1, 9]), bytes([10, 0, 1, 254])) in got
    assert all(tpa != bytes([10, 0, 1, 7]) for _, tpa, _ in got)
    assert "10.0.1.77 " in k.queries[NEIGH]


def test_arp_set_matches_kernel():
    require_oracle()
    k, n = both("nfd_arpset", ARPSET, _arp_sends(), (NFT_LIST, NEIGH))
    # the neighbour table is listed in hash order: compare the entries
    assert sorted(n.queries.pop(NEIGH).splitlines()) == \
        sorted(k.queries.pop(NEIGH).splitlines())
    assert_same(k, n)


def both(name: str, rules: str, sends, queries=(NFT_LIST,)):
    text = script("ipv4_router") + rules
    k = kernel_result(name, text, list(sends), list(queries))
    n = netstack_result(text, _no_setup, list(sends), list(queries))
    return k, n
