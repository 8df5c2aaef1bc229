"""nf_defrag_ipv6 (netstack/netfilter/defrag6.py) on the ipv6_router topology, netstack only:
hooks registered with conntrack only (-400, PRE_ROUTING and LOCAL_OUT, counted), its own
queues and sysctls, any arrival order, duplicates, fragment-header walk, and a fuzz of
the gather function (never raises)."""
from __future__ import annotations

import random
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from netstack.netfilter import conntrack as nfct  # noqa: E402
from netstack.netfilter import core as nfc  # noqa: E402
from netstack.netfilter import defrag6  # noqa: E402
from test_defrag import forwarded, router_stack  # noqa: E402
from test_nfa_defrag6_kernel import PAYLOAD, atomic6, frag6, to_h2  # noqa: E402

from kernel.cases import IP6_H1, IP6_H2, udp6  # noqa: E402


def _stack(ct: bool = True):
    return router_stack("ipv6_router", nfc.NFPROTO_IPV6, "nf6.sh", ct)


def _send(s, frames: list[bytes]) -> list[bytes]:
    return forwarded(s, [to_h2(f) for f in frames])


def _hooks(net, hook: int) -> list[str]:
    return [o.name for o in nfc.nf_hook_entries(net, nfc.NFPROTO_IPV6, hook)]


def test_hooks_only_with_conntrack_and_counted():
    s, net = _stack(ct=False)
    assert "ipv6_defrag" not in _hooks(net, nfc.NF_INET_PRE_ROUTING)
    nfct.nf_ct_netns_get(net, nfc.NFPROTO_IPV6)
    nfct.nf_ct_netns_get(net, nfc.NFPROTO_INET)
    for h in (nfc.NF_INET_PRE_ROUTING, nfc.NF_INET_LOCAL_OUT):
        names = _hooks(net, h)
        assert names.count("ipv6_defrag") == 1
        assert names.index("ipv6_defrag") < names.index("ipv4_conntrack_in" if h == 0
                                                         else "ipv4_conntrack_local")
    ops = nfc.nf_net(net).defrag6_ops
    assert {o.priority for o in ops} == {-400}
    nfct.nf_ct_netns_put(net, nfc.NFPROTO_IPV6)
    assert defrag6.nf_defrag6_enabled(net)
    nfct.nf_ct_netns_put(net, nfc.NFPROTO_INET)
    assert not defrag6.nf_defrag6_enabled(net)
    assert "ipv6_defrag" not in _hooks(net, nfc.NF_INET_PRE_ROUTING)


def test_sysctls_with_kernel_defaults():
    s, net = _stack(ct=False)
    v = net.sysctl.values
    assert v["net.netfilter.nf_conntrack_frag6_timeout"] == 60
    assert v["net.netfilter.nf_conntrack_frag6_high_thresh"] == 4194304
    assert v["net.netfilter.nf_conntrack_frag6_low_thresh"] == 3145728
    r = s.command("ip netns exec r sysctl net.netfilter.nf_conntrack_frag6_timeout")
    assert r.stdout.strip() == "net.netfilter.nf_conntrack_frag6_timeout = 60"


def test_any_order_gives_one_tracked_flow_and_own_queues():
    d = udp6(IP6_H1, IP6_H2, 40000, 7000, PAYLOAD)
    fr = frag6(d, 600, 0x99)
    for seed in range(4):
        s, net = _stack()
        order = fr[:]
        random.Random(seed).shuffle(order)
        got = _send(s, order[:-1])
        assert not got and net.nf.frag6.frags and not net.ipv6.frags
        got = _send(s, order[-1:])
        assert len(got) == len(fr)
        assert len(nfct.nf_ct_iterate(net)) == 1
        assert not net.nf.frag6.frags and net.nf.frag6.mem == 0


def test_duplicate_fragment_is_dropped_alone():
    d = udp6(IP6_H1, IP6_H2, 40000, 7000, PAYLOAD)
    fr = frag6(d, 1280, 0x42)
    s, net = _stack()
    got = _send(s, [fr[0], fr[0], fr[1]])
    assert len(got) == 2
    assert net.drops["DUP_FRAG"] == 1


def test_atomic_fragment_completes_immediately():
    d = udp6(IP6_H1, IP6_H2, 40003, 7003, b"atomic")
    s, net = _stack()
    (got,) = _send(s, [atomic6(d, 7)])
    assert got == d[:7] + bytes([63]) + d[8:]  # hop limit decremented, no fragment header


def test_overlap_kills_queue_and_drops_with_netfilter_drop():
    d = udp6(IP6_H1, IP6_H2, 40000, 7000, PAYLOAD)
    fr, fr2 = frag6(d, 1000, 0x44), frag6(d, 1200, 0x44)
    s, net = _stack()
    assert not _send(s, [fr[0], fr2[0]])
    assert net.drops["NETFILTER_DROP"] == 1 and net.drops["FRAG_REASM_TIMEOUT"] == 1
    assert not net.nf.frag6.frags


def test_bad_length_fragment_kills_queue_and_passes_unchanged():
    d = udp6(IP6_H1, IP6_H2, 40000, 7000, PAYLOAD)
    fr = frag6(d, 1000, 0x45)
    bad = frag6(d, 1000, 0x45, bad_len=True)[0]
    s, net = _stack()
    assert not _send(s, [fr[1]])
    (got,) = _send(s, [bad])
    assert len(got) == len(bad) and not net.nf.frag6.frags
    assert nfct.ct_net(net).stats["invalid"] >= 1


def test_without_conntrack_fragments_are_forwarded_as_is():
    d = udp6(IP6_H1, IP6_H2, 40000, 7000, PAYLOAD)
    fr = frag6(d, 1000, 0x43)
    s, net = _stack(ct=False)
    got = _send(s, fr)
    assert [len(g) for g in got] == [len(f) for f in fr]


def test_find_prev_fhdr_walks_extension_headers():
    hdr = bytearray(40)
    hdr[0] = 0x60
    hdr[6] = 0  # hop-by-hop
    hbh = bytes((60, 0)) + bytes(6)
    dst = bytes((44, 0)) + bytes(6)
    fh = bytes((17, 0, 0, 1)) + bytes(4)
    buf = bytes(hdr) + hbh + dst + fh + bytes(8)
    assert defrag6.find_prev_fhdr(buf, 0, len(buf)) == (48, 56)
    assert defrag6.find_prev_fhdr(bytes(hdr[:6]) + b"\x11" + bytes(33) + bytes(8), 0, 48) \
        is None


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=0, max_size=120))
def test_gather_never_raises(tail):
    s, net = _stack()
    from netstack.packet.skb import Packet
    hdr = bytearray(udp6(IP6_H1, IP6_H2, 1, 2, b"")[:40])
    hdr[6] = 44
    hdr[4:6] = len(tail).to_bytes(2, "big")
    p = Packet(bytes(hdr) + tail)
    p.network_header = p.data
    p.dev = net.get_by_index(11)
    assert defrag6.nf_ct_frag6_gather(net, p, 1) in (0, defrag6.EINPROGRESS, defrag6.EINVAL,
                                                     defrag6.ENOMEM)


def test_fragment_flood_memory_is_bounded_by_high_thresh():
    s, net = _stack()
    net.sysctl.values["net.netfilter.nf_conntrack_frag6_high_thresh"] = 20000
    d = udp6(IP6_H1, IP6_H2, 40000, 7000, PAYLOAD)
    firsts = [frag6(d, 1000, 0x1000 + i)[0] for i in range(60)]
    assert not _send(s, firsts)
    holder = net.nf.frag6
    assert holder.mem <= 20000 + 1000 + 576
    assert len(holder.frags) < 60
    assert net.drops["NETFILTER_DROP"] == 60 - len(holder.frags)
    # the queues expire on the virtual clock (nf_conntrack_frag6_timeout) and free it all
    s.advance(61)
    assert holder.mem == 0 and not holder.frags


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_gather_any_split_any_order_restores_datagram(units, rnd):
    """Property: fragments of any 8-byte-multiple sizes, in any order, reassemble to the
    original datagram, with frag_max_size and the received geometry recorded."""
    from netstack.packet.skb import Packet
    s, net = _stack()
    body = udp6(IP6_H1, IP6_H2, 1, 2, bytes(range(256)) * 2)[40:]
    sizes = [u * 8 for u in units]
    if sum(sizes) >= len(body):
        sizes = [len(body)]
    else:
        sizes.append(len(body) - sum(sizes))
    hdr = bytearray(udp6(IP6_H1, IP6_H2, 1, 2, b"")[:40])
    frags, off = [], 0
    for i, n in enumerate(sizes):
        h = bytearray(hdr)
        h[6] = 44
        h[4:6] = (8 + n).to_bytes(2, "big")
        more = i < len(sizes) - 1
        fh = bytes((17, 0)) + (off | int(more)).to_bytes(2, "big") + (77).to_bytes(4, "big")
        frags.append(bytes(h) + fh + body[off:off + n])
        off += n
    order = list(range(len(frags)))
    rnd.shuffle(order)
    dev = net.get_by_index(11)
    results = []
    for i in order:
        p = Packet(frags[i])
        p.network_header = p.data
        p.dev = dev
        results.append((defrag6.nf_ct_frag6_gather(net, p, 1), p))
    assert [r for r, _ in results[:-1]] == [defrag6.EINPROGRESS] * (len(frags) - 1)
    rc, last = results[-1]
    assert rc == 0
    assert bytes(last.buf[last.network_header:last.tail]) == bytes(hdr[:4]) + \
        len(body).to_bytes(2, "big") + bytes(hdr[6:40]) + body
    assert last.frag_pieces == tuple(sizes)
    assert last.cb.frag_max_size == 40 + 8 + max(sizes)
