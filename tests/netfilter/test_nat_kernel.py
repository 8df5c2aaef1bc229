"""Kernel-differential NAT scenarios on the ipv4_router topology: masquerade, SNAT with a
port, DNAT, and an ICMP error about a masqueraded flow; frames compared byte for byte in
both directions, plus ``conntrack -L``.  Skips until the datapath is wired (see
test_ct_kernel.py)."""
from __future__ import annotations

import dpkt

from netstack.netfilter import conntrack as nfct
from netstack.netfilter import core as nfc
from netstack.netfilter import nat
from test_ct_kernel import (CT_QUERY, compare, kernel_result, netstack_result,  # noqa: F401
                            require_oracle, to_h1, to_h2)

from kernel.cases import IP_H1, IP_H2, ip4, ipv4, script, udp4  # noqa: E402

NFT_MASQ = """\
ip netns exec r nft add table ip nat
ip netns exec r nft 'add chain ip nat cpost { type nat hook postrouting priority 100; }'
ip netns exec r nft add rule ip nat cpost oifname v2r masquerade
"""
NFT_SNAT_PORT = """\
ip netns exec r nft add table ip nat
ip netns exec r nft 'add chain ip nat cpost { type nat hook postrouting priority 100; }'
ip netns exec r nft add rule ip nat cpost oifname v2r meta l4proto udp snat to 10.0.2.254:2000
"""
NFT_DNAT = """\
ip netns exec r nft add table ip nat
ip netns exec r nft 'add chain ip nat cpre { type nat hook prerouting priority -100; }'
ip netns exec r nft add rule ip nat cpre iifname v1r udp dport 7777 dnat to 10.0.2.1:7000
"""
R1, R2 = "10.0.1.254", "10.0.2.254"


def masq_setup(net) -> None:
    def post(pkt, state):
        if state.out_dev is not None and state.out_dev.name == "v2r":
            return nat.nf_nat_masquerade(pkt, state, nat.NfNatRange())
        return nfc.NF_ACCEPT
    nat.nf_nat_register_fn(net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100, post)


def snat_port_setup(net) -> None:
    r = nat.NfNatRange(nat.NF_NAT_RANGE_MAP_IPS | nat.NF_NAT_RANGE_PROTO_SPECIFIED,
                       ip4(R2), ip4(R2), 2000, 2000)

    def post(pkt, state):
        ct, _ = nfct.nf_ct_get(pkt)
        if state.out_dev is not None and state.out_dev.name == "v2r" and ct.protonum == 17:
            return nat.nf_nat_setup_info(ct, r, nat.NF_NAT_MANIP_SRC)
        return nfc.NF_ACCEPT
    nat.nf_nat_register_fn(net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100, post)


def dnat_setup(net) -> None:
    r = nat.NfNatRange(nat.NF_NAT_RANGE_MAP_IPS | nat.NF_NAT_RANGE_PROTO_SPECIFIED,
                       ip4(IP_H2), ip4(IP_H2), 7000, 7000)

    def pre(pkt, state):
        ct, _ = nfct.nf_ct_get(pkt)
        t = ct.tuplehash[0]
        if state.in_dev.name == "v1r" and t.protonum == 17 and t.dport == 7777:
            return nat.nf_nat_setup_info(ct, r, nat.NF_NAT_MANIP_DST)
        return nfc.NF_ACCEPT
    nat.nf_nat_register_fn(net, nfc.NFPROTO_IPV4, nfc.NF_INET_PRE_ROUTING, -100, pre)


def test_masquerade_both_directions_match_kernel():
    require_oracle()
    sends = [to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"out", ident=0x201)),
             to_h1(udp4(IP_H2, R2, 7000, 40000, b"back", ident=0x202))]
    k = kernel_result("nat_masq", script("ipv4_router") + NFT_MASQ, sends, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), masq_setup, sends, [CT_QUERY])
    compare(k, n)


def test_snat_port_and_clash_match_kernel():
    require_oracle()
    sends = [to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"a", ident=0x301)),
             to_h1(udp4(IP_H2, R2, 7000, 2000, b"b", ident=0x302)),
             # same destination, another source port: 10.0.2.254:2000 is taken for this
             # destination, the single-port range leaves no choice, the insert clashes and
             # the kernel drops it (nothing reaches h2)
             to_h2(udp4(IP_H1, IP_H2, 40001, 7000, b"c", ident=0x303)),
             # another destination port: the same mapping is unique again
             to_h2(udp4(IP_H1, IP_H2, 40002, 7002, b"d", ident=0x304))]
    k = kernel_result("nat_snat_port", script("ipv4_router") + NFT_SNAT_PORT, sends, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), snat_port_setup, sends, [CT_QUERY])
    compare(k, n)


def test_dnat_both_directions_match_kernel():
    require_oracle()
    sends = [to_h2(udp4(IP_H1, R1, 40000, 7777, b"in", ident=0x401)),
             to_h1(udp4(IP_H2, IP_H1, 7000, 40000, b"reply", ident=0x402))]
    k = kernel_result("nat_dnat", script("ipv4_router") + NFT_DNAT, sends, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), dnat_setup, sends, [CT_QUERY])
    compare(k, n)


def test_icmp_error_about_masqueraded_flow_matches_kernel():
    require_oracle()
    out = udp4(IP_H1, IP_H2, 40000, 33434, b"probe", ident=0x501)
    # what h2 saw: the masqueraded datagram (TTL 63)
    seen = bytearray(udp4(R2, IP_H2, 40000, 33434, b"probe", ident=0x501, ttl=63))
    unreach = dpkt.icmp.ICMP(type=3, code=3, data=dpkt.icmp.ICMP.Unreach(data=bytes(seen)))
    err = ipv4(IP_H2, R2, dpkt.ip.IP_PROTO_ICMP, unreach, ident=0x502)
    sends = [to_h2(out), to_h1(err)]
    k = kernel_result("nat_icmp_err", script("ipv4_router") + NFT_MASQ, sends, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), masq_setup, sends, [CT_QUERY])
    compare(k, n)


def _no_setup(net) -> None:
    """The ruleset came from the script's own ``nft`` lines."""


def test_masquerade_via_nft_cli_matches_kernel():
    """The same scenario text on both sides: NF1's nft front end feeding this NAT core."""
    require_oracle()
    sends = [to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"out", ident=0x201)),
             to_h1(udp4(IP_H2, R2, 7000, 40000, b"back", ident=0x202))]
    text = script("ipv4_router") + NFT_MASQ
    k = kernel_result("nat_masq", text, sends, [CT_QUERY])
    n = netstack_result(text, _no_setup, sends, [CT_QUERY])
    compare(k, n)


def test_dnat_via_nft_cli_matches_kernel():
    require_oracle()
    sends = [to_h2(udp4(IP_H1, R1, 40000, 7777, b"in", ident=0x401)),
             to_h1(udp4(IP_H2, IP_H1, 7000, 40000, b"reply", ident=0x402))]
    text = script("ipv4_router") + NFT_DNAT
    k = kernel_result("nat_dnat", text, sends, [CT_QUERY])
    n = netstack_result(text, _no_setup, sends, [CT_QUERY])
    compare(k, n)
