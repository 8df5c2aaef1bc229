"""Kernel-differential: IPv6 defragmentation before conntrack (nf_defrag_ipv6_hooks.c,
nf_conntrack_reasm.c) on the router of tests/kernel/scenarios/ipv6_router.sh (v2r MTU
1280) with an ``ip6`` nft ``ct state`` rule.  Fragmented UDP from h1 to h2 is reassembled
at PRE_ROUTING -400, tracked as one flow and refragmented on output with
``frag_max_size`` (at least 1280); the frames h2 and h1 receive are compared byte for byte
with the kernel's, masking only the fragment identification the kernel draws at random
when it refragments (checked to be one value per datagram), plus ``conntrack -L -f ipv6``.

Cases: fragments out of order; fragments smaller than 1280 keep their geometry (the
frag_list fast path of ip6_fragment); fragments larger than the output MTU (packet too
big, although the datagram could be refragmented); a datagram smaller than the MTU
arriving in small fragments (refragmented); the last two need
/tmp/s2/patches/NFA-1.patch (ip6_output.py) and skip without it; an
atomic fragment (its fragment header disappears); a non-final fragment whose length is not
a multiple of 8 (passes unchanged, conntrack calls it invalid); overlapping fragments
(dropped)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from netstack.netfilter import core as nfc

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from test_ct_kernel import canonical_ct, netstack_result, require_oracle  # noqa: E402

from kernel.cases import (H1, H2, IP6_H1, IP6_H2, MAC_H1, MAC_R1, V1H, V2H,  # noqa: E402
                          eth_ip6, script, udp6)
from kernel.compare import strip_noise  # noqa: E402
from kernel.oracle import Result, Send, run_kernel  # noqa: E402

CT6_QUERY = "ip netns exec r conntrack -L -f ipv6"
NFT_CT6 = """\
ip netns exec r nft add table ip6 filt
ip netns exec r nft 'add chain ip6 filt cfwd { type filter hook forward priority 0; }'
ip netns exec r nft add rule ip6 filt cfwd ct state new counter
"""


def frag6(dgram: bytes, size: int, ident: int, *, bad_len: bool = False) -> list[bytes]:
    """Split an extension-less IPv6 datagram into fragments of at most ``size`` bytes."""
    hdr, body = dgram[:40], dgram[40:]
    nxt = hdr[6]
    step = (size - 48) & ~7
    out = []
    for off in range(0, len(body), step):
        part = body[off:off + step]
        more = off + step < len(body)
        if bad_len and more and off == 0:
            part = part[:-3]
        h = bytearray(hdr)
        h[6] = 44
        h[4:6] = (8 + len(part)).to_bytes(2, "big")
        fh = bytes((nxt, 0)) + (off | int(more)).to_bytes(2, "big") + ident.to_bytes(4, "big")
        out.append(bytes(h) + fh + part)
    return out


def atomic6(dgram: bytes, ident: int) -> bytes:
    h = bytearray(dgram[:40])
    nxt = h[6]
    h[6] = 44
    h[4:6] = (len(dgram) - 40 + 8).to_bytes(2, "big")
    return bytes(h) + bytes((nxt, 0, 0, 0)) + ident.to_bytes(4, "big") + dgram[40:]


def to_h2(p: bytes) -> Send:
    return Send(H1, V1H, eth_ip6(MAC_R1, MAC_H1, p))


def _setup(net) -> None:
    from netstack.netfilter import conntrack as nfct
    nfct.nf_ct_netns_get(net, nfc.NFPROTO_IPV6)


def _netstack(sends: list[Send], via_cli: bool) -> Result:
    return netstack_result(script("ipv6_router") + (NFT_CT6 if via_cli else ""),
                           (lambda net: None) if via_cli else _setup, sends, [CT6_QUERY])


_CACHE: dict[str, Result] = {}


def _kernel(name: str, sends: list[Send]) -> Result:
    if name not in _CACHE:
        _CACHE[name] = strip_noise(run_kernel(script("ipv6_router") + NFT_CT6, sends,
                                              [(H1, V1H), (H2, V2H)], [CT6_QUERY], 0.15))
    return _CACHE[name]


def _masked(frames: list[bytes]) -> list[bytes]:
    """Zero the identification of fragments the router made (one value per datagram:
    consecutive fragments up to the one without M)."""
    out, idents = [], []
    for f in frames:
        b = bytearray(f)
        if len(b) >= 62 and b[12:14] == b"\x86\xdd" and b[20] == 44:
            idents.append(bytes(b[58:62]))
            if not b[57] & 1:
                assert len(set(idents)) == 1, "one identification per refragmented datagram"
                idents = []
            b[58:62] = bytes(4)
        out.append(bytes(b))
    return out


def _compare(k: Result, n: Result) -> None:
    for key in ((H1, V1H), (H2, V2H)):
        assert _masked(k.frames.get(key, [])) == _masked(n.frames.get(key, [])), key
    kq, nq = canonical_ct(k.queries[CT6_QUERY]), canonical_ct(n.queries[CT6_QUERY])
    assert [a for a, _ in kq] == [a for a, _ in nq], (k.queries, n.queries)
    for (_, tk), (_, tn) in zip(kq, nq):
        assert abs(tk - tn) <= 2


PAYLOAD = bytes(range(256)) * 8  # 2048 bytes


def _run(name: str, sends: list[Send], cli: bool = False) -> tuple[Result, Result]:
    require_oracle()
    k = _kernel(name, sends)
    n = _netstack(sends, cli)
    _compare(k, n)
    return k, n


def _need_patch() -> None:
    from netstack.ipv6 import ip6_output
    if not hasattr(ip6_output, "_frag_list_geometry"):
        pytest.skip("needs /tmp/s2/patches/NFA-1.patch (ip6_finish_output refragments above "
                    "frag_max_size; ip6_fragment's frag_list fast path)")


def test_out_of_order_mtu_sized_fragments_reassembled_tracked_refragmented():
    d = udp6(IP6_H1, IP6_H2, 40000, 7000, PAYLOAD)
    fr = frag6(d, 1280, 0x1234)
    k, _ = _run("d6_ooo1280", [to_h2(f) for f in fr[::-1]])
    assert [len(f) - 14 for f in k.frames[(H2, V2H)]] == [1280, 872]
    assert "dport=7000" in k.queries[CT6_QUERY]


def test_out_of_order_fragments_via_nft_cli():
    d = udp6(IP6_H1, IP6_H2, 40000, 7000, PAYLOAD)
    fr = frag6(d, 1280, 0x1234)
    _run("d6_ooo1280", [to_h2(f) for f in fr[::-1]], cli=True)


def test_smaller_fragments_keep_their_geometry():
    """Fragments of 1000 bytes leave as fragments of 1000 bytes (frag_list fast path),
    not at the 1280 the slow path would use."""
    _need_patch()
    d = udp6(IP6_H1, IP6_H2, 40000, 7000, PAYLOAD)
    fr = frag6(d, 1000, 0x1234)
    k, _ = _run("d6_ooo1000", [to_h2(f) for f in fr[::-1]])
    assert [len(f) - 14 for f in k.frames[(H2, V2H)]] == [1000, 1000, 200]


def test_fragments_larger_than_output_mtu_get_packet_too_big():
    d = udp6(IP6_H1, IP6_H2, 40001, 7001, PAYLOAD)
    k, _ = _run("d6_ptb", [to_h2(f) for f in frag6(d, 1400, 0x2345)])
    assert not k.frames[(H2, V2H)] and len(k.frames[(H1, V1H)]) == 1


def test_small_fragments_of_a_small_datagram_are_refragmented():
    """1148 bytes fit the 1280 MTU, but arrived in 600-byte fragments: refragmented."""
    _need_patch()
    d = udp6(IP6_H1, IP6_H2, 40002, 7002, PAYLOAD[:1100])
    k, _ = _run("d6_small", [to_h2(f) for f in frag6(d, 600, 0x3456)])
    assert [len(f) - 14 for f in k.frames[(H2, V2H)]] == [600, 600, 52]


def test_atomic_fragment_loses_its_fragment_header():
    d = udp6(IP6_H1, IP6_H2, 40003, 7003, b"atomic")
    k, _ = _run("d6_atomic", [to_h2(atomic6(d, 0x4567))])
    (f,) = k.frames[(H2, V2H)]
    assert f[14 + 6] == 17


def test_non_multiple_of_8_fragment_passes_unchanged_and_invalid():
    d = udp6(IP6_H1, IP6_H2, 40004, 7004, PAYLOAD)
    fr = frag6(d, 1000, 0x5678, bad_len=True)
    k, _ = _run("d6_bad8", [to_h2(fr[0])])
    assert len(k.frames[(H2, V2H)]) == 1 and not k.queries[CT6_QUERY].strip()


def test_overlapping_fragments_are_dropped():
    d = udp6(IP6_H1, IP6_H2, 40005, 7005, PAYLOAD)
    fr = frag6(d, 1000, 0x6789)
    fr2 = frag6(d, 1200, 0x6789)
    k, _ = _run("d6_overlap", [to_h2(fr[0]), to_h2(fr2[1]), to_h2(fr[1]), to_h2(fr[2])])
    assert not k.frames[(H2, V2H)]


def _run_script(name: str, extra: str, sends: list[Send], settle: float) -> None:
    """Kernel vs netstack with extra script lines (sysctls) and a longer settle."""
    require_oracle()
    from netstack import Stack
    text = script("ipv6_router") + NFT_CT6 + extra
    if name not in _CACHE:
        _CACHE[name] = strip_noise(run_kernel(text, sends, [(H1, V1H), (H2, V2H)],
                                              [CT6_QUERY], settle))
    k = _CACHE[name]
    st = Stack()
    st.run_script(text, name="nf6.sh")
    caps = {key: st.capture(*key) for key in ((H1, V1H), (H2, V2H))}
    for s in sends:
        st.inject(s.ns, s.dev, [s.frame])
    st.advance(settle)
    n = Result()
    for key, c in caps.items():
        n.frames[key] = [bytes(f.data) for f in c]
    n.queries[CT6_QUERY] = st.command(CT6_QUERY).stdout
    _compare(k, strip_noise(n))
    return k


def test_queue_timeout_sends_time_exceeded_from_the_router():
    """nf_conntrack_frag6_timeout=1: the queue expires and, the first fragment having
    come, the router answers ICMPv6 time exceeded (fragment reassembly) — unlike IPv4's
    conntrack defrag, IPv6 uses the same expiry as local reassembly."""
    d = udp6(IP6_H1, IP6_H2, 40006, 7006, PAYLOAD)
    k = _run_script("d6_timeout", "ip netns exec r sysctl -w "
                    "net.netfilter.nf_conntrack_frag6_timeout=1\n",
                    [to_h2(frag6(d, 1000, 0x789A)[0])], 1.6)
    (f,) = k.frames[(H1, V1H)]
    assert f[14 + 6] == 58 and f[14 + 40] == 3 and f[14 + 41] == 1


def test_high_thresh_zero_drops_fragments():
    d = udp6(IP6_H1, IP6_H2, 40007, 7007, PAYLOAD)
    k = _run_script("d6_thresh", "ip netns exec r sysctl -w "
                    "net.netfilter.nf_conntrack_frag6_low_thresh=0\n"
                    "ip netns exec r sysctl -w net.netfilter.nf_conntrack_frag6_high_thresh=0\n",
                    [to_h2(f) for f in frag6(d, 1280, 0x89AB)], 0.15)
    assert not k.frames[(H2, V2H)] and not k.frames[(H1, V1H)]
