"""Hook registration and traversal (net/netfilter/core.c semantics)."""
from __future__ import annotations

import errno

import pytest

from netstack.core.world import World
from netstack.errors import KernelError, NotSupported
from netstack.netfilter import core as nfc
from netstack.packet.skb import Packet


@pytest.fixture()
def net():
    w = World(subsystems=[])
    return w.netns_add("h")


def _pkt() -> Packet:
    p = Packet(b"\x45" + bytes(19))
    p.network_header = p.data
    p.protocol = 0x0800
    return p


def _rec(log: list, name: str, verdict: int = nfc.NF_ACCEPT):
    def fn(priv, pkt, state):
        log.append((name, state.hook, state.pf))
        return verdict
    return fn


def test_priority_order_and_stable_ties(net):
    log: list = []
    for name, prio in (("filter", 0), ("raw", -300), ("nat_src", 100), ("filter2", 0),
                       ("mangle", -150), ("first", nfc.NF_IP_PRI_FIRST)):
        nfc.nf_register_net_hook(net, nfc.NfHookOps(_rec(log, name), nfc.NFPROTO_IPV4,
                                                    nfc.NF_INET_FORWARD, prio))
    assert nfc.nf_hook(net, nfc.NFPROTO_IPV4, nfc.NF_INET_FORWARD, _pkt(), None, None) == 1
    assert [n for n, _, _ in log] == ["first", "raw", "mangle", "filter", "filter2", "nat_src"]


def test_drop_stops_and_counts_netfilter_drop(net):
    log: list = []
    nfc.nf_register_net_hook(net, nfc.NfHookOps(_rec(log, "a"), nfc.NFPROTO_IPV4,
                                                nfc.NF_INET_LOCAL_IN, -10))
    nfc.nf_register_net_hook(net, nfc.NfHookOps(_rec(log, "drop", nfc.NF_DROP),
                                                nfc.NFPROTO_IPV4, nfc.NF_INET_LOCAL_IN, 0))
    nfc.nf_register_net_hook(net, nfc.NfHookOps(_rec(log, "never"), nfc.NFPROTO_IPV4,
                                                nfc.NF_INET_LOCAL_IN, 10))
    called = []
    r = nfc.NF_HOOK(nfc.NFPROTO_IPV4, nfc.NF_INET_LOCAL_IN, net, None, _pkt(), None, None,
                    lambda n, sk, p: called.append(p))
    assert r is None and not called
    assert [n for n, _, _ in log] == ["a", "drop"]
    assert net.drops.counts["NETFILTER_DROP"] == 1


def test_stolen_is_not_a_drop_and_okfn_runs_on_accept(net):
    nfc.nf_register_net_hook(net, nfc.NfHookOps(lambda pr, p, s: nfc.NF_STOLEN,
                                                nfc.NFPROTO_IPV4, nfc.NF_INET_PRE_ROUTING, 0))
    called = []
    nfc.NF_HOOK(nfc.NFPROTO_IPV4, nfc.NF_INET_PRE_ROUTING, net, None, _pkt(), None, None,
                lambda n, sk, p: called.append(p))
    assert not called and not net.drops.counts
    # another hook point has no entries: okfn runs and its result is returned
    assert nfc.NF_HOOK(nfc.NFPROTO_IPV4, nfc.NF_INET_LOCAL_OUT, net, None, _pkt(), None, None,
                       lambda n, sk, p: "sent") == "sent"


def test_inet_registers_both_families_and_unregisters(net):
    log: list = []
    ops = nfc.NfHookOps(_rec(log, "inet"), nfc.NFPROTO_INET, nfc.NF_INET_POST_ROUTING, 0)
    nfc.nf_register_net_hook(net, ops)
    nfc.nf_hook(net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, _pkt(), None, None)
    nfc.nf_hook(net, nfc.NFPROTO_IPV6, nfc.NF_INET_POST_ROUTING, _pkt(), None, None)
    assert [(h, pf) for _, h, pf in log] == [(4, nfc.NFPROTO_IPV4), (4, nfc.NFPROTO_IPV6)]
    nfc.nf_unregister_net_hook(net, ops)
    assert nfc.nf_hook_entries(net, nfc.NFPROTO_IPV6, nfc.NF_INET_POST_ROUTING) == []
    with pytest.raises(KernelError) as ei:
        nfc.nf_unregister_net_hook(net, ops)
    assert ei.value.errno == errno.ENOENT


def test_bad_hooknum_and_hook_count_limit(net):
    with pytest.raises(KernelError):
        nfc.nf_register_net_hook(net, nfc.NfHookOps(_rec([], "x"), nfc.NFPROTO_IPV4, 7, 0))
    with pytest.raises(KernelError):
        nfc.nf_register_net_hook(net, nfc.NfHookOps(_rec([], "x"), nfc.NFPROTO_NETDEV,
                                                    nfc.NF_NETDEV_INGRESS, 0))  # no device
    for i in range(nfc.MAX_HOOK_COUNT):
        nfc.nf_register_net_hook(net, nfc.NfHookOps(_rec([], "x"), nfc.NFPROTO_ARP,
                                                    nfc.NF_ARP_IN, i))
    with pytest.raises(KernelError) as ei:
        nfc.nf_register_net_hook(net, nfc.NfHookOps(_rec([], "x"), nfc.NFPROTO_ARP,
                                                    nfc.NF_ARP_IN, 0))
    assert ei.value.errno == errno.E2BIG


def test_hook_list_keeps_survivors_in_order_and_batches_okfn(net):
    def odd_only(priv, pkt, state):
        return nfc.NF_ACCEPT if pkt.mark % 2 else nfc.NF_DROP
    nfc.nf_register_net_hook(net, nfc.NfHookOps(odd_only, nfc.NFPROTO_IPV4,
                                                nfc.NF_INET_FORWARD, 0))
    pkts = []
    for i in range(6):
        p = _pkt()
        p.mark = i
        pkts.append(p)
    batches = []
    out = nfc.nf_hook_list(net, nfc.NFPROTO_IPV4, nfc.NF_INET_FORWARD, pkts, None, None,
                           lambda n, lst: batches.append([p.mark for p in lst]))
    assert [p.mark for p in out] == [1, 3, 5] and batches == [[1, 3, 5]]
    assert net.drops.counts["NETFILTER_DROP"] == 3


def test_ingress_is_per_device(net):
    from netstack.drivers.dummy import DummyDevice
    d1, d2 = DummyDevice("d1", b"\x02" * 6), DummyDevice("d2", b"\x04" * 6)
    net.register_netdevice(d1)
    net.register_netdevice(d2)
    seen = []
    nfc.nf_register_net_hook(net, nfc.NfHookOps(lambda pr, p, s: seen.append(s.in_dev.name)
                                                or nfc.NF_ACCEPT, nfc.NFPROTO_NETDEV,
                                                nfc.NF_NETDEV_INGRESS, 0, dev=d1))
    for d in (d1, d2):
        p = _pkt()
        p.dev = d
        assert nfc.nf_hook_ingress(p) == 1
    assert seen == ["d1"] and nfc.nf_hook_ingress_active(d1) and not nfc.nf_hook_ingress_active(d2)


def test_queue_verdict_is_not_supported(net):
    nfc.nf_register_net_hook(net, nfc.NfHookOps(lambda pr, p, s: nfc.NF_QUEUE,
                                                nfc.NFPROTO_IPV4, nfc.NF_INET_FORWARD, 0))
    with pytest.raises(NotSupported):
        nfc.nf_hook(net, nfc.NFPROTO_IPV4, nfc.NF_INET_FORWARD, _pkt(), None, None)


def test_namespace_without_hooks_allocates_nothing(net):
    assert nfc.nf_hook(net, nfc.NFPROTO_IPV4, nfc.NF_INET_FORWARD, _pkt(), None, None) == 1
    assert "nf" not in net.__dict__


def test_egress_hook_per_device(net):
    from netstack.drivers.dummy import DummyDevice
    d1 = DummyDevice("e1", b"\x02" * 6)
    net.register_netdevice(d1)
    nfc.nf_register_net_hook(net, nfc.NfHookOps(lambda pr, p, s: nfc.NF_DROP,
                                                nfc.NFPROTO_NETDEV, nfc.NF_NETDEV_EGRESS, 0,
                                                dev=d1))
    assert nfc.nf_hook_egress_active(d1)
    assert nfc.nf_hook_egress(_pkt(), d1) == 0
    assert net.drops.counts["NETFILTER_DROP"] == 1
