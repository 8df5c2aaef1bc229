"""nf_defrag_ipv4 (netstack/netfilter/defrag.py) on the ipv4_router topology, netstack only:
reassembly before conntrack in any arrival order, its own queues (not local delivery's),
overlaps and timeouts, and the hook's enable/disable counting."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import dpkt
from hypothesis import given, settings
from hypothesis import strategies as st

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from netstack.netfilter import conntrack as nfct  # noqa: E402
from netstack.netfilter import core as nfc  # noqa: E402
from netstack.netfilter import defrag  # noqa: E402
from test_defrag_kernel import frag4  # noqa: E402

from kernel.cases import H1, H2, IP_H1, IP_H2, V1H, V2H, script, udp4  # noqa: E402
from test_ct_kernel import to_h2  # noqa: E402

R1 = "10.0.1.254"


def router_stack(base: str, pf: int, name: str, ct: bool = True):
    """A netstack ``Stack`` running scenario ``base`` (ipv4_router/ipv6_router) and
    its router namespace ``r``, conntrack (so defrag) enabled for family ``pf``
    unless ``ct`` is false."""
    from netstack import Stack
    s = Stack()
    s.run_script(script(base), name=name)
    net = s.world.netns("r")
    if ct:
        nfct.nf_ct_netns_get(net, pf)
    return s, net


def forwarded(s, sends: list) -> list[bytes]:
    """Inject ``sends`` (kernel.oracle.Send, h1 towards h2) and return the IP packets
    h2 receives within 50 ms, Ethernet header stripped; the router's timer-driven IPv6
    control traffic (MLD reports, router solicitations: kernel.compare.is_noise) is not
    what these tests look at and is left out."""
    from kernel.compare import is_noise
    cap = s.capture(H2, V2H)
    for snd in sends:
        s.inject(snd.ns, snd.dev, [snd.frame])
    s.advance(0.05)
    return [bytes(f.data)[14:] for f in cap if not is_noise(bytes(f.data))]


def _stack(ct: bool = True):
    return router_stack("ipv4_router", nfc.NFPROTO_IPV4, "nf.sh", ct)


def _forwarded(s, frames: list[bytes]) -> list[bytes]:
    return forwarded(s, [to_h2(f) for f in frames])


def _payload(frags: list[bytes]) -> bytes:
    """Reassemble what h2 got (the test's own simple reassembler)."""
    parts = {}
    for f in frags:
        ip = dpkt.ip.IP(f)
        parts[ip.offset] = bytes(ip.data) if not isinstance(ip.data, bytes) \
            else ip.data
    return b"".join(parts[k] for k in sorted(parts))


def test_fragments_are_tracked_as_one_flow():
    s, net = _stack()
    dgram = udp4(IP_H1, IP_H2, 40000, 7000, bytes(3000), ident=0x77)
    frags = frag4(dgram, 1000)
    out = _forwarded(s, frags)
    # Refragmented on output at the largest original fragment (IPCB(skb)->frag_max_size
    # caps the MTU in ip_do_fragment), not at the 1500-byte link MTU.
    assert len(out) == len(frags)
    assert max(len(f) for f in out) == max(len(f) for f in frags)
    assert _payload(out) == _payload(frags)
    cts = nfct.nf_ct_iterate(net)
    assert len(cts) == 1 and cts[0].tuplehash[0].sport == 40000
    assert net.ipv4.mib["IpReasmOKs"] == 1 and net.ipv4.frags == {}


@given(st.permutations(range(5)), st.integers(0, 2 ** 16 - 1))
@settings(max_examples=20, deadline=None)
def test_any_arrival_order_reassembles_the_same_datagram(order, ident):
    s, net = _stack()
    body = random.Random(ident).randbytes(2000)
    dgram = udp4(IP_H1, IP_H2, 1234, 5678, body, ident=ident)
    frags = frag4(dgram, 440)
    out = _forwarded(s, [frags[i] for i in order])
    assert _payload(out) == dgram[20:]
    assert len(nfct.nf_ct_iterate(net)) == 1


def test_overlap_kills_the_queue_and_nothing_is_tracked():
    s, net = _stack()
    dgram = udp4(IP_H1, IP_H2, 40000, 7000, bytes(2000), ident=0x99)
    frags = frag4(dgram, 600)
    bad = bytearray(frags[1])
    bad[6:8] = ((0x2000 | (600 - 20 - 8) // 8)).to_bytes(2, "big")  # starts 8 bytes early
    bad[10:12] = b"\0\0"
    c = sum(int.from_bytes(bad[i:i + 2], "big") for i in range(0, 20, 2))
    while c >> 16:
        c = (c & 0xFFFF) + (c >> 16)
    bad[10:12] = (~c & 0xFFFF).to_bytes(2, "big")
    out = _forwarded(s, [frags[0], bytes(bad)] + frags[2:])
    assert net.ipv4.mib["IpExtReasmOverlaps"] == 1
    # the remaining fragments start a new queue that never completes
    assert out == [] and nfct.nf_ct_iterate(net) == []


def test_forwarded_queue_times_out_without_icmp():
    s, net = _stack()
    frags = frag4(udp4(IP_H1, IP_H2, 1, 2, bytes(2000), ident=5), 1000)
    cap1 = s.capture(H1, V1H)
    _forwarded(s, frags[:1])
    s.advance(31)
    assert net.ipv4.mib["IpReasmTimeout"] == 1 and net.ipv4.frags == {}
    assert [f for f in cap1 if bytes(f.data)[23] == 1] == []  # no ICMP back to h1


def test_local_queue_times_out_with_icmp_reassembly_time_exceeded():
    s, net = _stack()
    frags = frag4(udp4(IP_H1, R1, 1, 2, bytes(2000), ident=6), 1000)
    cap1 = s.capture(H1, V1H)
    _forwarded(s, frags[:1])
    s.advance(31)
    icmp = [dpkt.ip.IP(bytes(f.data)[14:]) for f in cap1 if bytes(f.data)[23] == 1]
    assert len(icmp) == 1 and icmp[0].data.type == 11 and icmp[0].data.code == 1


def test_local_delivery_sees_the_whole_datagram_once():
    """Reassembled at PRE_ROUTING by conntrack's defrag user; ip_local_deliver then has
    nothing to reassemble, so ReasmOKs counts one datagram."""
    s, net = _stack()
    frags = frag4(udp4(IP_H1, R1, 1, 2, bytes(2000), ident=7), 1000)
    _forwarded(s, frags)
    assert net.ipv4.mib["IpReasmOKs"] == 1 and net.ipv4.mib["IpReasmReqds"] == 3


def test_without_conntrack_fragments_pass_untouched():
    s, net = _stack(ct=False)
    frags = frag4(udp4(IP_H1, IP_H2, 1, 2, bytes(2000), ident=8), 700)
    out = _forwarded(s, frags)
    assert len(out) == 3 and net.ipv4.mib["IpReasmReqds"] == 0


def test_enable_disable_counting():
    s, net = _stack(ct=False)
    defrag.nf_defrag_ipv4_enable(net)
    defrag.nf_defrag_ipv4_enable(net)
    names = [o.name for o in nfc.nf_hook_entries(net, nfc.NFPROTO_IPV4, nfc.NF_INET_LOCAL_OUT)]
    assert names == ["ipv4_conntrack_defrag"]
    defrag.nf_defrag_ipv4_disable(net)
    assert defrag.nf_defrag_enabled(net)
    defrag.nf_defrag_ipv4_disable(net)
    assert not defrag.nf_defrag_enabled(net)
    assert nfc.nf_hook_entries(net, nfc.NFPROTO_IPV4, nfc.NF_INET_PRE_ROUTING) == []


def test_defrag_user_per_hook_and_zone():
    s, net = _stack()
    p = net.world.new_packet(b"")
    assert defrag.nf_ct_defrag_user(nfc.NF_INET_PRE_ROUTING, p) == defrag.IP_DEFRAG_CONNTRACK_IN
    nfct.nf_ct_set_zone_template(p, 7)
    assert defrag.nf_ct_defrag_user(nfc.NF_INET_LOCAL_OUT, p) == \
        defrag.IP_DEFRAG_CONNTRACK_OUT + 7
