"""Kernel-differential: ICMP errors the router itself generates are RELATED to the flow that
provoked them (``nf_ct_attach`` from ``icmp_glue_bits``, net/ipv4/icmp.c), so NAT rewrites
the quoted header before the error leaves.  Frames compared byte for byte, plus
``conntrack -L``, on tests/kernel/scenarios/ipv4_router.sh."""
from __future__ import annotations

import dpkt

from test_ct_kernel import (CT_QUERY, compare, kernel_result, netstack_result,  # noqa: F401
                            require_oracle, to_h1, to_h2)
from test_nat_kernel import NFT_DNAT, NFT_MASQ, R1, R2, dnat_setup, masq_setup

from kernel.cases import IP_H1, IP_H2, script, udp4  # noqa: E402


def _quoted(frames: list[bytes]) -> list[bytes]:
    """The quoted IP header + 8 bytes of every ICMP time-exceeded among ``frames``."""
    out = []
    for f in frames:
        ip = dpkt.ethernet.Ethernet(f).data
        if isinstance(ip, dpkt.ip.IP) and ip.p == 1 and ip.data.type == 11:
            out.append(bytes(ip.data.data.data)[:28])
    return out


def test_ttl_exceeded_in_masqueraded_reply_quotes_the_public_address():
    """The reply of a masqueraded flow expires at the router after de-masquerading: the
    time-exceeded to h2 must quote what h2 sent (to 10.0.2.254:40000), not h1's address.
    (Here conntrack would also find the flow from the quoted, already de-NATed tuple at
    LOCAL_OUT; the DNAT case below is the one only ``nf_ct_attach`` gets right.)"""
    require_oracle()
    sends = [to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"out", ident=0x601)),
             to_h1(udp4(IP_H2, R2, 7000, 40000, b"back", ident=0x602)),
             to_h1(udp4(IP_H2, R2, 7000, 40000, b"ttl1", ident=0x603, ttl=1))]
    k = kernel_result("nat_masq_ttl", script("ipv4_router") + NFT_MASQ, sends, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), masq_setup, sends, [CT_QUERY])
    compare(k, n)
    from kernel.cases import H2, V2H
    q = _quoted(n.frames[(H2, V2H)])
    assert len(q) == 1 and dpkt.ip.IP(q[0]).dst == bytes(map(int, R2.split(".")))


def test_ttl_exceeded_for_dnat_flow_quotes_the_original_destination():
    """A DNATed datagram whose TTL expires at the router: the error to h1 quotes the
    destination h1 used (10.0.1.254:7777), not the internal server."""
    require_oracle()
    sends = [to_h2(udp4(IP_H1, R1, 40000, 7777, b"ttl1", ident=0x701, ttl=1)),
             to_h2(udp4(IP_H1, R1, 40001, 7777, b"ok", ident=0x702)),
             to_h2(udp4(IP_H1, R1, 40001, 7777, b"ttl1b", ident=0x703, ttl=1))]
    k = kernel_result("nat_dnat_ttl", script("ipv4_router") + NFT_DNAT, sends, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), dnat_setup, sends, [CT_QUERY])
    compare(k, n)
    from kernel.cases import H1, V1H
    q = _quoted(n.frames[(H1, V1H)])
    assert len(q) == 2
    for hdr in q:
        ip = dpkt.ip.IP(hdr)
        assert ip.dst == bytes(map(int, R1.split("."))) and hdr[22:24] == (7777).to_bytes(2, "big")


NFT_DNAT6 = """\
ip netns exec r nft add table ip6 nat
ip netns exec r nft 'add chain ip6 nat cpre { type nat hook prerouting priority -100; }'
ip netns exec r nft 'add rule ip6 nat cpre iifname v1r udp dport 7777 dnat to [2001:db8:2::1]:7000'
"""


def test_hop_limit_exceeded_for_ipv6_dnat_flow_quotes_the_original_destination():
    """The IPv6 twin (icmp6_send → icmpv6_getfrag → nf_ct_attach), with the bracketed
    ``dnat to [ADDR]:PORT`` syntax on both sides."""
    require_oracle()
    from kernel.cases import (H1, IP6_H1, IP6_R1, MAC_H1, MAC_R1, V1H, eth,  # noqa: F401
                              udp6)
    from kernel.oracle import Send
    frame = eth(MAC_R1, MAC_H1, 0x86DD, udp6(IP6_H1, IP6_R1, 40000, 7777, b"hl1", hlim=1))
    sends = [Send(H1, V1H, frame)]
    text = script("ipv6_router") + NFT_DNAT6
    from test_nat_kernel import _no_setup
    k = kernel_result("nat_dnat6_hlim", text, sends, [CT_QUERY])
    n = netstack_result(text, _no_setup, sends, [CT_QUERY])
    compare(k, n)
    errs = [f for f in n.frames[(H1, V1H)] if f[12:14] == b"\x86\xdd" and f[20] == 58]
    assert len(errs) == 1
    quoted = errs[0][14 + 48:]
    assert quoted[24:40] == dpkt_ip6(IP6_R1) and quoted[42:44] == (7777).to_bytes(2, "big")


def dpkt_ip6(a: str) -> bytes:
    import ipaddress
    return ipaddress.IPv6Address(a).packed
