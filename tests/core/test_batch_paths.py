"""The batched device paths must be observationally identical to the per-packet ones:

* ``VethDevice.start_xmit_list`` (used by ``dev_queue_xmit_list``) against ``start_xmit``
  called per packet with the xmit_more hint (drivers/net/veth.c ``veth_xmit``);
* the per-device-run fast path of ``netif_receive_skb_list`` against ``_receive_core``
  (taps, protocol dispatch, the no-handler drop).
"""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core import dev as devmod
from netstack.core.dev import dev_queue_xmit_list, netif_receive_skb_list
from netstack.core.world import World
from netstack.drivers import veth

MAC_A = bytes.fromhex("020000000a0a")
MAC_B = bytes.fromhex("020000000b0b")
DSTS = [MAC_B, b"\xff" * 6, bytes.fromhex("01005e000001"), bytes.fromhex("020000000c0c")]
TYPES = [0x0800, 0x86DD, 0x0806, 0x0050, 0x05FF, 0x0600, 0xFFFF]
FIELDS = ("protocol", "pkt_type", "mac_header", "data", "tail", "skb_iif", "mark",
          "priority", "tstamp", "dst", "ct")


def _pair(xnet: bool, peer_up: bool):  # type: ignore[no-untyped-def]
    w = World(subsystems=[])
    na = w.netns_add("a")
    nb = w.netns_add("b") if xnet else na
    a, b = veth.create_pair(na, "va", MAC_A, nb, "vb", MAC_B)
    na.dev_open(a)
    if peer_up:
        nb.dev_open(b)
    return w, a, b


frame_st = st.tuples(st.sampled_from(DSTS), st.sampled_from(TYPES),
                     st.sampled_from([0, 1, 13, 14, 20, 60, 1514, 1518, 1519, 1600]),
                     st.integers(0, 3))


def _packets(w: World, frames):  # type: ignore[no-untyped-def]
    pkts = []
    for dst, etype, n, mark in frames:
        data = (dst + MAC_A + etype.to_bytes(2, "big") + bytes(range(256)) * 7)[:n]
        p = w.new_packet(data)
        p.mark = mark
        p.priority = 5
        p.tstamp = 77
        p.dst = object()
        pkts.append(p)
    return pkts


def _observe(w: World, a, b, pkts):  # type: ignore[no-untyped-def]
    return (
        a.stats.as_dict(), b.stats.as_dict(), a.doorbells, b.doorbells,
        sorted(a.net.drops.as_dict().items()), sorted(b.net.drops.as_dict().items()),
        [(p.id, p.dev.name) + tuple(getattr(p, f) for f in FIELDS) for p in w.backlog],
        [(p.id, p.pkt_type) for p in pkts],
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(frame_st, min_size=1, max_size=12), st.booleans(), st.booleans())
def test_veth_list_xmit_equals_per_packet_xmit(frames, xnet, peer_up):
    w1, a1, b1 = _pair(xnet, peer_up)
    p1 = _packets(w1, frames)
    for p in p1:  # mark the dst the way dev_queue_xmit_list would, then the reference
        p.dev = a1
    last = len(p1) - 1
    for i, p in enumerate(p1):
        a1.start_xmit(p, i < last)
    w2, a2, b2 = _pair(xnet, peer_up)
    p2 = _packets(w2, frames)
    dev_queue_xmit_list(a2, p2)
    assert _observe(w1, a1, b1, p1) == _observe(w2, a2, b2, p2)
    assert a2.doorbells == 1


def test_veth_list_xmit_with_a_peerless_device_drops_and_rings_once():
    w, a, b = _pair(False, True)
    b.peer = None
    a.peer = None
    pkts = _packets(w, [(MAC_B, 0x0800, 60, 0)] * 3)
    a.start_xmit_list(pkts)
    assert a.stats.tx_dropped == 3 and a.doorbells == 1 and not w.backlog


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0x0800, 0x86DD, 0x1234]), st.booleans()),
                min_size=1, max_size=16))
def test_receive_fast_path_equals_receive_core(spec):
    """Mixed protocols and devices (one with a tap): same taps seen, same sublists handed
    to the protocol handlers in the same order, same drops as the general path."""
    def run(force_slow: bool):  # type: ignore[no-untyped-def]
        w, a, b = _pair(False, True)
        net = b.net
        seen: list[tuple[str, int]] = []
        calls: list[tuple[str, list[int]]] = []
        w.ptype_base[0x0800] = lambda l: calls.append(("ip", [p.id for p in l]))
        w.ptype_base[0x86DD] = lambda l: calls.append(("ip6", [p.id for p in l]))
        net.add_rx_tap(b, lambda p: seen.append((p.dev.name, p.id)))
        pkts = []
        for proto, on_a in spec:
            p = w.new_packet(bytes(40))
            p.protocol = proto
            p.dev = a if on_a else b
            pkts.append(p)
        if force_slow:
            # the reference: every packet through _receive_core
            handlers = [devmod._receive_core(p, w.ptype_base) for p in pkts]
            sub: list = []
            cur = None
            for p, h in zip(pkts, handlers):
                if h is None:
                    continue
                if h is not cur:
                    if sub:
                        cur(sub)
                    sub, cur = [p], h
                else:
                    sub.append(p)
            if sub:
                cur(sub)
        else:
            netif_receive_skb_list(pkts)
        return (seen, calls, [(p.id, p.skb_iif) for p in pkts], a.stats.rx_dropped,
                b.stats.rx_dropped, sorted(net.drops.as_dict().items()))
    assert run(False) == run(True)


def test_taps_and_rx_handler_changes_between_batches_take_effect():
    """The per-device-run lookups of netif_receive_skb_list live for one call only."""
    from netstack.core.netdevice import RxHandlerResult
    w, a, b = _pair(False, True)
    net = b.net
    got: list[int] = []
    handled: list[int] = []
    w.ptype_base[0x0800] = lambda l: handled.extend(p.id for p in l)

    def batch() -> list[int]:
        pkts = []
        for _ in range(3):
            p = w.new_packet(bytes(40))
            p.protocol = 0x0800
            p.dev = b
            pkts.append(p)
        netif_receive_skb_list(pkts)
        return [p.id for p in pkts]

    first = batch()
    assert got == [] and handled == first
    net.add_rx_tap(b, lambda p: got.append(p.id))
    second = batch()
    assert got == second and handled == first + second
    b.rx_handler = lambda p: (RxHandlerResult.CONSUMED, p)
    batch()
    assert handled == first + second  # consumed by the rx_handler
    b.rx_handler = None
    fourth = batch()
    assert handled == first + second + fourth
