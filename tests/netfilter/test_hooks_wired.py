"""The NF_HOOK call sites of the datapath (after /tmp/nf_hooks.patch): which hooks a
forwarded, a locally delivered and a locally generated IPv4 packet traverse, in order, with
which devices; ARP in/out; netdev ingress/egress.  Skips until the datapath is wired."""
from __future__ import annotations

import sys

import pytest

from netstack.netfilter import core as nfc
from test_flowtable import H1, H2, R1, Router, udp4
from test_ct_core import icmp4

NAMES = {0: "pre", 1: "in", 2: "fwd", 3: "out", 4: "post"}


@pytest.fixture()
def rt(monkeypatch):
    if not nfc.DATAPATH_WIRED:
        reason = "netfilter hooks not wired into the datapath yet"
        print(f"\nSKIP: {reason}", file=sys.stderr)
        pytest.skip(reason)
    r = Router(monkeypatch)
    r.seen = []
    for pf in (nfc.NFPROTO_IPV4, nfc.NFPROTO_ARP):
        for h in range(5 if pf == nfc.NFPROTO_IPV4 else 2):
            nfc.nf_register_net_hook(r.r, nfc.NfHookOps(
                lambda pr, p, s: r.seen.append((s.pf, NAMES[s.hook] if s.pf == 2 else s.hook,
                                                getattr(s.in_dev, "name", None),
                                                getattr(s.out_dev, "name", None)))
                or nfc.NF_ACCEPT, pf, h, 1000))
    return r


def test_forwarded_local_and_reply_paths(rt):
    rt.send(True, udp4(H1, H2, 1, 2))
    assert [(n, i, o) for pf, n, i, o in rt.seen if pf == 2] == [
        ("pre", "v1r", None), ("fwd", "v1r", "v2r"), ("post", "v1r", "v2r")]
    rt.seen.clear()
    rt.send(True, icmp4(H1, R1, 9))  # echo to the router: in, then the reply goes out
    assert [(n, i, o) for pf, n, i, o in rt.seen if pf == 2] == [
        ("pre", "v1r", None), ("in", "v1r", None), ("out", None, "v1r"),
        ("post", None, "v1r")]


def test_drop_in_forward_stops_forwarding(rt):
    nfc.nf_register_net_hook(rt.r, nfc.NfHookOps(lambda pr, p, s: nfc.NF_DROP,
                                                 nfc.NFPROTO_IPV4, nfc.NF_INET_FORWARD, 0))
    before = len(rt.out["v2r"])
    rt.send(True, udp4(H1, H2, 1, 2))
    assert len(rt.out["v2r"]) == before and rt.r.drops.counts["NETFILTER_DROP"] == 1


def test_egress_drop_and_arp_hooks(rt):
    nfc.nf_register_net_hook(rt.r, nfc.NfHookOps(lambda pr, p, s: nfc.NF_DROP,
                                                 nfc.NFPROTO_NETDEV, nfc.NF_NETDEV_EGRESS, 0,
                                                 dev=rt.v2r))
    rt.send(True, udp4(H1, H2, 1, 2))
    assert rt.out["v2r"] == []
    from netstack.ipv4.arp import arp_send
    arp_send(1, 0x0806, H1, rt.v1r, R1, None, None, None)
    assert (nfc.NFPROTO_ARP, nfc.NF_ARP_OUT, None, "v1r") in rt.seen
