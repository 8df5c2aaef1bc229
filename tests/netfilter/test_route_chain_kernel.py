"""Kernel-differential: an nft ``type route hook output`` chain (nft_chain_route.c).  The
router answers a ping from h1; its route chain marks the reply, an ``ip rule fwmark``
sends marked packets by another table, so the reply is routed again
(``ip_route_me_harder``) and leaves towards h2.  Also what iptables-nft's mangle OUTPUT
chain is."""
from __future__ import annotations

from test_ct_kernel import (compare, kernel_result, netstack_result,  # noqa: F401
                            require_oracle, to_h2)
from test_nat_kernel import _no_setup

from kernel.cases import H2, IP_H1, V2H, icmp4_echo, script  # noqa: E402

R1 = "10.0.1.254"
ROUTE = """\
ip -n r rule add fwmark 1 table 100
ip -n r route add 10.0.1.1 via 10.0.2.1 table 100
ip netns exec r nft add table ip m
ip netns exec r nft 'add chain ip m o { type route hook output priority -150; }'
ip netns exec r nft add rule ip m o ip daddr 10.0.1.1 icmp type echo-reply meta mark set 1
"""
NO_MARK = ROUTE.replace(" meta mark set 1", " counter")


def test_route_chain_mark_reroutes_the_echo_reply():
    require_oracle()
    sends = [to_h2(icmp4_echo(IP_H1, R1, 7, 1, b"ping", ident=0x901))]
    text = script("ipv4_router") + ROUTE
    k = kernel_result("route_chain_mark", text, sends, [])
    n = netstack_result(text, _no_setup, sends, [])
    compare(k, n)
    assert len(n.frames[(H2, V2H)]) == 1  # rerouted: the reply left by v2r


def test_route_chain_without_change_keeps_the_route():
    require_oracle()
    sends = [to_h2(icmp4_echo(IP_H1, R1, 7, 2, b"ping", ident=0x902))]
    text = script("ipv4_router") + NO_MARK
    k = kernel_result("route_chain_nomark", text, sends, [])
    n = netstack_result(text, _no_setup, sends, [])
    compare(k, n)
    assert n.frames[(H2, V2H)] == []
