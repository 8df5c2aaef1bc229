"""The template GSO fast path (netstack/core/gso_fast.py) against the layered path.

The layered path (``skb_gso_segment`` with ``gso_fast.ENABLED = False``: skb_segment →
tcp_gso_segment → inet/ipv6_gso_segment, each layer rewriting every segment) is the
reference.  For plain TCP over IPv4 (header options included) and IPv6 the fast path
must produce the same segments — every byte of every buffer and every skb field, the
``__dict__`` included — and leave the super-packet in the same state: hypothesis draws
IPv4/IPv6, device/software checksums, FIXEDID, ECN/CWR with and without AccECN, any flag
byte (FIN/PSH/URG …), TCP and IPv4 options, payloads that divide gso_size or not, a
payload of gso_size + 1, seq and IP ID near their wrap, DODGY, non-PARTIAL packets,
headroom/tailroom, cold skb fields.  Explicit cases hit the checksum edge values (0 in a
TCP and an IPv4 checksum field) and every fallback: a fallback leaves the packet
untouched and ``skb_gso_segment`` then returns what the layered path returns (or raises
the same error)."""
from __future__ import annotations

import random
import struct
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core import gso_fast
from netstack.core.gso import (SKB_GSO_DODGY, SKB_GSO_PARTIAL, SKB_GSO_TCP_ACCECN, SKB_GSO_TCP_ECN,
                               SKB_GSO_TCP_FIXEDID, SKB_GSO_TCP_FIXEDID_INNER, SKB_GSO_TCPV4,
                               SKB_GSO_TCPV6, SKB_GSO_UDP, SKB_GSO_UDP_L4, GsoError,
                               skb_gso_segment)
from netstack.packet.checksum import pseudo_sum_v4, pseudo_sum_v6
from netstack.packet.skb import CHECKSUM_NONE, CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, Packet

from .pktbuild import (IP6_A, IP6_B, IP_A, IP_B, MAC_A, MAC_B, eth, gre_gso_packet, ipv4, pseudo4,
                       pseudo6, rfc1071, tcp, udp, vxlan_gso_packet)

HW = frozenset({"tx-checksum-ip-generic"})
FEATURES = [frozenset(), HW, frozenset({"tx-checksum-ipv4"}), frozenset({"tx-checksum-ipv6"}),
            frozenset({"tx-checksum-ip-generic", "tx-scatter-gather", "tx-tcp-ecn-segmentation",
                       "tx-gso-robust", "tx-tcp-mangleid-segmentation"})]
SLOTS = [n for n in Packet.__slots__ if n != "__dict__"]


class Dev:
    """A device as GSO sees it."""

    net = None
    hw_enc_features = None
    gso_partial_features: frozenset = frozenset()
    ifindex = 3

    def __init__(self, features: frozenset = frozenset()) -> None:
        self.features = set(features)


DEV = Dev()
CT = object()
DST = object()
SK = object()


# ------------------------------------------------------------------ builders
def frame4(payload: bytes, *, seq: int = 1000, ack: int = 1, flags: int = 0x18, window: int = 512,
           topts: bytes = b"", ipopts: bytes = b"", ident: int = 0x1234, df: bool = True,
           ttl: int = 64, tos: int = 0) -> bytes:
    """Ethernet + IPv4 (options allowed) + TCP with valid checksums."""
    ihl = 20 + len(ipopts)
    seg = tcp(4000, 80, seq, ack, flags, payload, pseudo4(IP_A, IP_B, 6, 20 + len(topts) + len(payload)),
              topts, window)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl // 4, tos, ihl + len(seg), ident,
                    0x4000 if df else 0, ttl, 6, 0, IP_A, IP_B) + ipopts
    h = h[:10] + struct.pack("!H", rfc1071(h)) + h[12:]
    return eth(MAC_B, MAC_A, 0x0800) + h + seg


def frame6(payload: bytes, *, seq: int = 1000, ack: int = 1, flags: int = 0x18, window: int = 512,
           topts: bytes = b"", tclass: int = 0, flow: int = 0, hlim: int = 64) -> bytes:
    """Ethernet + IPv6 (no extension header) + TCP with a valid checksum."""
    seg = tcp(4000, 80, seq, ack, flags, payload,
              pseudo6(IP6_A, IP6_B, 6, 20 + len(topts) + len(payload)), topts, window)
    ip6 = struct.pack("!IHBB16s16s", 0x60000000 | tclass << 20 | flow, len(seg), 6, hlim,
                      IP6_A, IP6_B)
    return eth(MAC_B, MAC_A, 0x86DD) + ip6 + seg


def superpacket(frame: bytes, gso_size: int, gso_type: int, *, headroom: int = 128,
                tailroom: int = 0, ip_summed: int = CHECKSUM_PARTIAL, set_nh: bool = True,
                cold: dict | None = None) -> Packet:
    """A TX super-packet as dev_queue_xmit hands it to GSO (data at the MAC header); when
    PARTIAL, the pseudo sum in the TCP check field and csum_start at the TCP header."""
    p = Packet(frame, headroom=headroom, tailroom=tailroom)
    d = p.data
    b = p.buf
    v6 = frame[12:14] == b"\x86\xdd"
    l4 = 54 if v6 else 14 + (frame[14] & 0x0F) * 4
    p.mac_header = d
    if set_nh:
        p.network_header = d + 14
    p.transport_header = d + l4
    p.protocol = struct.unpack("!H", frame[12:14])[0]
    n = len(frame) - l4
    nh = d + 14
    if ip_summed == CHECKSUM_PARTIAL:
        if v6:
            ps = pseudo_sum_v6(bytes(b[nh + 8:nh + 24]), bytes(b[nh + 24:nh + 40]), n, 6)
        else:
            ps = pseudo_sum_v4(bytes(b[nh + 12:nh + 16]), bytes(b[nh + 16:nh + 20]), n, 6)
        b[d + l4 + 16:d + l4 + 18] = ps.to_bytes(2, "big")
        p.csum_start = d + l4
        p.csum_offset = 16
    p.ip_summed = ip_summed
    p.gso_size = gso_size
    p.gso_type = gso_type
    p.gso_segs = 0
    p.dev = DEV
    for k, v in (cold or {}).items():
        setattr(p, k, v)
    return p


# ------------------------------------------------------------------ comparison
def state(p: Packet) -> dict[str, Any]:
    """Every field of an skb: the slots (the buffer by content and type), the dict."""
    st_ = {n: getattr(p, n) for n in SLOTS if n != "buf"}
    st_["buf"] = (type(p.buf), bytes(p.buf))
    st_["__dict__"] = dict(p.__dict__)
    return st_


def outcome(fn: Callable[[], Any]) -> Any:
    try:
        r = fn()
    except GsoError as e:
        return ("GsoError", e.errno)
    except Exception as e:  # noqa: BLE001 - any other refusal must match too
        return (type(e).__name__, str(e))
    if r is None:
        return None
    return [state(s) for s in r]


def layered(make: Callable[[], Packet], features: frozenset) -> tuple[Any, dict]:
    """The reference: skb_gso_segment with the fast path switched off."""
    p = make()
    old = gso_fast.ENABLED
    gso_fast.ENABLED = False
    try:
        out = outcome(lambda: skb_gso_segment(p, features))
    finally:
        gso_fast.ENABLED = old
    return out, state(p)


def fast(make: Callable[[], Packet], features: frozenset) -> tuple[Any, dict]:
    """The fast path called directly (it must take the packet)."""
    p = make()
    segs = gso_fast.tcp_gso_segment_fast(p, features)
    assert segs is not None, "fast path not taken"
    assert len({id(s.buf) for s in segs} | {id(p.buf)}) == len(segs) + 1  # own buffers
    return [state(s) for s in segs], state(p)


def assert_same(make: Callable[[], Packet], features: frozenset,
                run: "Callable[[Callable[[], Packet], frozenset], Any] | None" = None) -> list[dict]:
    """The fast path (``run``, default :func:`fast`) gives the layered path's segments and
    leaves the super-packet as it does."""
    want = layered(make, features)
    got = (run or fast)(make, features)
    assert got[1] == want[1], "super-packet left differently: " + ", ".join(
        k for k in want[1] if got[1][k] != want[1][k])
    assert isinstance(want[0], list) and len(got[0]) == len(want[0])
    for i, (g, w) in enumerate(zip(got[0], want[0])):
        assert g == w, f"segment {i} of {len(want[0])}: " + ", ".join(
            k for k in w if g[k] != w[k])
    return got[0]


def assert_fallback(make: Callable[[], Packet], features: frozenset) -> Any:
    """The fast path declines without touching the packet, and skb_gso_segment (fast
    path on) returns or raises what the layered path does."""
    p = make()
    before = state(p)
    assert gso_fast.tcp_gso_segment_fast(p, features) is None
    assert state(p) == before
    want = layered(make, features)
    p2 = make()
    got = outcome(lambda: skb_gso_segment(p2, features)), state(p2)
    assert got == want
    return want[0]


# ------------------------------------------------------------------ property
TOPTS = st.sampled_from([b"", b"\x01\x01\x08\x0a" + bytes(range(8)), b"\x02\x04\x05\xb4",
                         bytes(range(40)), b"\x01" * 12])
IPOPTS = st.sampled_from([b"", b"\x01\x01\x01\x00", b"\x07\x07\x04" + bytes(range(5)),
                          bytes([0x94, 4, 0, 0]) * 10])
SEQ = st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32 - 70000, 2**32 - 1))
IDENT = st.one_of(st.integers(0, 0xFFFF), st.integers(0xFFC0, 0xFFFF))
EXTRA = st.sets(st.sampled_from([SKB_GSO_TCP_FIXEDID, SKB_GSO_TCP_ACCECN, SKB_GSO_TCP_ECN,
                                 SKB_GSO_DODGY, SKB_GSO_TCP_FIXEDID_INNER]))


@st.composite
def sizes(draw: Any) -> tuple[int, int]:
    """(payload length, gso_size): any split, exact multiples and gso_size + 1 favoured,
    at most ~80 segments."""
    mss = draw(st.integers(1, 1600))
    kind = draw(st.sampled_from(["any", "exact", "plus1", "minus1"]))
    if kind == "exact":
        n = mss * draw(st.integers(2, max(2, min(80, 20000 // mss))))
    elif kind == "plus1":
        n = mss + 1
    elif kind == "minus1":
        n = mss * draw(st.integers(2, max(2, min(80, 20000 // mss)))) - 1
    else:
        n = draw(st.integers(mss + 1, max(mss + 1, min(mss * 80, 30000))))
    return max(n, mss + 1), mss


@settings(max_examples=300, deadline=None)
@given(v6=st.booleans(), size=sizes(), flags=st.integers(0, 255), topts=TOPTS, ipopts=IPOPTS,
       seq=SEQ, ack=st.integers(0, 2**32 - 1), window=st.integers(0, 0xFFFF), ident=IDENT,
       df=st.booleans(), extra=EXTRA, features=st.sampled_from(FEATURES),
       ip_summed=st.sampled_from([CHECKSUM_PARTIAL, CHECKSUM_PARTIAL, CHECKSUM_NONE,
                                  CHECKSUM_UNNECESSARY]),
       headroom=st.integers(0, 300), tailroom=st.integers(0, 64), set_nh=st.booleans(),
       cold=st.booleans(), other_tso=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_fast_path_equals_layered_path(v6, size, flags, topts, ipopts, seq, ack, window, ident,
                                       df, extra, features, ip_summed, headroom, tailroom,
                                       set_nh, cold, other_tso, seed) -> None:
    n, mss = size
    if other_tso:   # the other family's TSO does not let the device take this packet
        features = features | {"tx-tcp-segmentation" if v6 else "tx-tcp6-segmentation"}
    rng = random.Random(seed)
    pay = rng.randbytes(n)
    gso_type = (SKB_GSO_TCPV6 if v6 else SKB_GSO_TCPV4)
    for b in extra:
        gso_type |= b
    if v6:
        fr = frame6(pay, seq=seq, ack=ack, flags=flags, window=window, topts=topts,
                    tclass=rng.randrange(256), flow=rng.randrange(1 << 20), hlim=rng.randrange(256))
    else:
        fr = frame4(pay, seq=seq, ack=ack, flags=flags, window=window, topts=topts, ipopts=ipopts,
                    ident=ident, df=df, ttl=rng.randrange(256), tos=rng.randrange(256))
    fields = {}
    if cold:
        fields = {"mark": rng.randrange(1 << 32), "priority": 7, "skb_iif": 9, "tstamp": 12345,
                  "ct": CT, "dst": DST, "id": 77, "pkt_type": 4, "sk": SK, "hash": 0xABCD,
                  "l4_hash": True, "vlan_proto": 0x8100, "vlan_tci": 5, "queue_mapping": 1,
                  "inner_network_header": 3, "csum_level": 1}

    def make() -> Packet:
        return superpacket(fr, mss, gso_type, headroom=headroom, tailroom=tailroom,
                           ip_summed=ip_summed, set_nh=set_nh, cold=fields)

    segs = assert_same(make, features)
    assert len(segs) == -(-n // mss)


# ------------------------------------------------------------------ explicit cases
@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("features", [frozenset(), HW])
@pytest.mark.parametrize("n,mss", [(65436, 1448), (1448 * 4, 1448), (1449, 1448), (3000, 1)])
def test_bench_sizes(v6, features, n, mss) -> None:
    """The benchmark's 64 KB case and the edges: exact multiple, gso_size + 1, 1-byte mss."""
    pay = bytes((i * 7 + 1) & 0xFF for i in range(n))
    fr = frame6(pay, flags=0x99) if v6 else frame4(pay, flags=0x99)
    assert_same(lambda: superpacket(fr, mss, SKB_GSO_TCPV6 if v6 else SKB_GSO_TCPV4), features)


@pytest.mark.parametrize("v6", [False, True])
def test_tcp_checksum_zero_and_ffff_edges(v6) -> None:
    """A software TCP checksum whose sum is ≡ 0 (field 0x0000) in chosen segments: the
    payload word that gets it there is computed from the layered result."""
    mss = 1000
    pay = bytearray(random.Random(5).randbytes(mss * 5 + 300))
    gt = SKB_GSO_TCPV6 if v6 else SKB_GSO_TCPV4

    def build(p: bytes) -> Callable[[], Packet]:
        fr = frame6(p) if v6 else frame4(p)
        return lambda: superpacket(fr, mss, gt)

    for i in (0, 2, 5):
        segs = layered(build(bytes(pay)), frozenset())[0]
        s = segs[i]
        b = s["buf"][1]
        t = s["transport_header"]
        c = int.from_bytes(b[t + 16:t + 18], "big")
        r = (0xFFFF - c) % 0xFFFF             # the segment's sum mod 0xffff
        off = i * mss + 10                    # an aligned payload word of segment i
        w = int.from_bytes(pay[off:off + 2], "big")
        pay[off:off + 2] = ((w - r) % 0xFFFF).to_bytes(2, "big")
        got = assert_same(build(bytes(pay)), frozenset())
        g = got[i]
        assert g["buf"][1][t + 16:t + 18] == b"\0\0"


@pytest.mark.parametrize("fixed", [False, True])
def test_ipv4_checksum_zero_edge(fixed) -> None:
    """An IPv4 header whose checksum field is 0 (sum ≡ 0 mod 0xffff) in one segment, and
    the ID/checksum runs around the ID wrap."""
    mss = 500
    pay = bytes(range(256)) * 12
    fr = frame4(pay, ident=0)
    h = bytearray(fr[14:34])
    h[2:4] = (20 + 20 + mss).to_bytes(2, "big")
    h[4:6] = h[10:12] = b"\0\0"
    r = int.from_bytes(h, "big") % 0xFFFF
    for seg_i in (0, 1, 3):
        ident = (-r - (0 if fixed else seg_i)) % 0xFFFF
        fr = frame4(pay, ident=ident)
        gt = SKB_GSO_TCPV4 | (SKB_GSO_TCP_FIXEDID if fixed else 0)
        segs = assert_same(lambda: superpacket(fr, mss, gt), HW)
        b = segs[seg_i]["buf"][1]
        nh = segs[seg_i]["network_header"]
        assert b[nh + 10:nh + 12] == b"\0\0"
    for ident in (0xFFFE, 0xFFFF, 0xFFF0):
        fr = frame4(pay, ident=ident)
        assert_same(lambda: superpacket(fr, mss, SKB_GSO_TCPV4), frozenset())


def test_skb_gso_segment_takes_the_fast_path(monkeypatch) -> None:
    """The hook: skb_gso_segment returns the fast path's segments when it takes the
    packet, and reaches the layered path only when it declines or is switched off."""
    calls = []
    real = gso_fast.tcp_gso_segment_fast

    def spy(p, f, burst=False):
        r = real(p, f, burst)
        calls.append(r is not None)
        return r

    monkeypatch.setattr(gso_fast, "tcp_gso_segment_fast", spy)
    fr = frame4(bytes(5000))
    segs = skb_gso_segment(superpacket(fr, 1448, SKB_GSO_TCPV4), HW)
    assert calls == [True] and len(segs) == 4
    monkeypatch.setattr(gso_fast, "ENABLED", False)
    skb_gso_segment(superpacket(fr, 1448, SKB_GSO_TCPV4), HW)
    assert calls == [True]


def test_row_struct_cache_is_bounded() -> None:
    fr = frame4(bytes(20000))
    for mss in range(200, 200 + 2 * gso_fast._ROW_CACHE_MAX):
        assert gso_fast.tcp_gso_segment_fast(superpacket(fr, mss, SKB_GSO_TCPV4), HW)
    assert len(gso_fast._row_cache) <= gso_fast._ROW_CACHE_MAX


# ------------------------------------------------------------------ fallbacks
def _v4(**kw: Any) -> Callable[[], Packet]:
    fr = frame4(bytes(range(256)) * 20)
    return lambda: superpacket(fr, 1000, SKB_GSO_TCPV4, **kw)


def _mutated(make: Callable[[], Packet], fn: Callable[[Packet], None]) -> Callable[[], Packet]:
    def m() -> Packet:
        p = make()
        fn(p)
        return p
    return m


def _set(**kw: Any) -> Callable[[Packet], None]:
    def f(p: Packet) -> None:
        for k, v in kw.items():
            setattr(p, k, v)
    return f


def _poke(off: int, val: bytes) -> Callable[[Packet], None]:
    def f(p: Packet) -> None:
        p.buf[p.data + off:p.data + off + len(val)] = val
    return f


def test_fallback_vxlan_tunnel() -> None:
    """The plain TCP fast path declines a VXLAN packet; skb_gso_segment then takes the
    tunnel fast path (tests/offload/test_gso_fast_tunnel.py) with the layered result."""
    for outer in (False, True):
        r = assert_fallback(lambda: vxlan_gso_packet(bytes(6000), 1400, outer), HW)
        assert isinstance(r, list) and len(r) == 5


def test_fallback_gre_tunnel() -> None:
    r = assert_fallback(lambda: gre_gso_packet(bytes(6000), 1400, True), frozenset())
    assert isinstance(r, list) and len(r) == 5


def test_fallback_encapsulation_flag_and_remcsum() -> None:
    assert isinstance(assert_fallback(_mutated(_v4(), _set(encapsulation=True)), HW), (list, tuple))
    assert isinstance(assert_fallback(_mutated(_v4(), _set(remcsum_offload=True)), HW), list)


def test_fallback_gso_partial() -> None:
    """GSO_PARTIAL: with ``tx-gso-partial`` the layered path decides (here it drops the
    feature: the device has no TSO to finish a partial packet), and the type bit."""
    r = assert_fallback(_v4(), HW | {"tx-gso-partial", "tx-scatter-gather"})
    assert isinstance(r, list) and len(r) == 6
    r = assert_fallback(_v4(), HW | {"tx-gso-partial", "tx-scatter-gather", "tx-tcp-segmentation"})
    assert r is None   # the device takes it whole (DODGY-less robust check)
    assert_fallback(_mutated(_v4(), _set(gso_type=SKB_GSO_TCPV4 | SKB_GSO_PARTIAL)), HW)


def test_fallback_udp() -> None:
    """UDP_L4 GSO and UFO-typed packets are not TCP."""
    pay = bytes(5000)
    seg = udp(5000, 53, pay, pseudo4(IP_A, IP_B, 17, 8 + len(pay)))
    fr = eth(MAC_B, MAC_A, 0x0800) + ipv4(len(seg), 17) + seg

    def mk() -> Packet:
        p = Packet(fr)
        p.mac_header = p.data
        p.network_header = p.data + 14
        p.transport_header = p.data + 34
        p.protocol = 0x0800
        p.ip_summed = CHECKSUM_PARTIAL
        p.csum_start = p.data + 34
        p.csum_offset = 6
        p.buf[p.data + 40:p.data + 42] = pseudo_sum_v4(IP_A, IP_B, 8 + len(pay), 17).to_bytes(2, "big")
        p.gso_size = 1000
        p.gso_type = SKB_GSO_UDP_L4
        p.dev = DEV
        return p

    r = assert_fallback(mk, HW)
    assert isinstance(r, list) and len(r) == 5
    assert_fallback(_mutated(_v4(), _set(gso_type=SKB_GSO_TCPV4 | SKB_GSO_UDP)), HW)


def test_fallback_not_tcp_in_ip() -> None:
    """A TCPV4-typed packet whose IPv4 protocol is not TCP goes where the layered
    dispatch sends it (here UDP's segmentation refuses it)."""
    assert_fallback(_mutated(_v4(), _poke(23, b"\x11")), HW)


@pytest.mark.parametrize("cut", [14, 20, 33, 40, 53])
def test_fallback_short_headers(cut) -> None:
    """Truncated IPv4 or TCP header: the layered path's EINVAL."""
    def mk() -> Packet:
        p = _v4()()
        p.tail = p.data + cut
        return p

    assert assert_fallback(mk, HW)[0] == "GsoError"


def test_fallback_bad_ihl_and_doff() -> None:
    assert assert_fallback(_mutated(_v4(), _poke(14, b"\x44")), HW)[0] == "GsoError"
    assert assert_fallback(_mutated(_v4(), _poke(46, b"\x40")), HW)[0] == "GsoError"


def test_fallback_payload_not_longer_than_mss() -> None:
    for mss in (5120, 6000):
        fr = frame4(bytes(5120))
        r = assert_fallback(lambda: superpacket(fr, mss, SKB_GSO_TCPV4), HW)
        assert r == ("GsoError", 22)
    assert_fallback(lambda: superpacket(frame4(bytes(5120)), 0, SKB_GSO_TCPV4), HW)


def test_fallback_csum_start_not_tcp_header() -> None:
    assert assert_fallback(_mutated(_v4(), lambda p: setattr(p, "csum_start", p.csum_start + 4)),
                           HW) == ("GsoError", 22)


def test_fallback_wrong_gso_type() -> None:
    """TCPV6 on an IPv4 packet, TCPV4 on an IPv6 packet, both bits, none."""
    assert assert_fallback(_mutated(_v4(), _set(gso_type=SKB_GSO_TCPV6)), HW)[0] == "GsoError"
    fr6 = frame6(bytes(5000))
    assert assert_fallback(lambda: superpacket(fr6, 1000, SKB_GSO_TCPV4), HW)[0] == "GsoError"
    assert_fallback(_mutated(_v4(), _set(gso_type=SKB_GSO_TCPV4 | SKB_GSO_TCPV6)), HW)
    assert_fallback(_mutated(_v4(), _set(gso_type=0)), HW)


def test_fallback_device_segments_itself() -> None:
    """With the family's TSO feature the layered path decides: a DODGY packet the device
    can take only gets gso_segs (None); one it cannot (ECN without the ECN feature) is
    segmented by the layered path."""
    feats = HW | {"tx-tcp-segmentation", "tx-gso-robust"}
    r = assert_fallback(_mutated(_v4(), _set(gso_type=SKB_GSO_TCPV4 | SKB_GSO_DODGY)), feats)
    assert r is None
    r = assert_fallback(_mutated(_v4(), _set(gso_type=SKB_GSO_TCPV4 | SKB_GSO_TCP_ECN)), feats)
    assert isinstance(r, list) and len(r) == 6
    fr6 = frame6(bytes(5000))
    r = assert_fallback(lambda: superpacket(fr6, 1000, SKB_GSO_TCPV6 | SKB_GSO_DODGY),
                        HW | {"tx-tcp6-segmentation", "tx-gso-robust"})
    assert r is None


def test_fallback_ipv6_extension_header() -> None:
    """A hop-by-hop header between IPv6 and TCP: ipv6_gso_segment skips it."""
    pay = bytes(range(256)) * 20
    seg = tcp(4000, 80, 1000, 1, 0x18, pay, pseudo6(IP6_A, IP6_B, 6, 20 + len(pay)))
    hbh = bytes([6, 0, 1, 4, 0, 0, 0, 0])
    fr = (eth(MAC_B, MAC_A, 0x86DD)
          + struct.pack("!IHBB16s16s", 0x60000000, len(hbh) + len(seg), 0, 64, IP6_A, IP6_B)
          + hbh + seg)

    def mk() -> Packet:
        p = Packet(fr)
        d = p.data
        p.mac_header = d
        p.network_header = d + 14
        p.transport_header = d + 62
        p.protocol = 0x86DD
        p.ip_summed = CHECKSUM_PARTIAL
        p.csum_start = d + 62
        p.csum_offset = 16
        ps = pseudo_sum_v6(IP6_A, IP6_B, len(seg), 6)
        p.buf[d + 78:d + 80] = ps.to_bytes(2, "big")
        p.gso_size = 1000
        p.gso_type = SKB_GSO_TCPV6
        p.dev = DEV
        return p

    r = assert_fallback(mk, HW)
    assert isinstance(r, list) and len(r) == 6


def test_fallback_vlan_and_ethertype_mismatch() -> None:
    """Not plain Ethernet: an in-band VLAN tag (protocol 0x8100), an EtherType that is
    not the packet's protocol, a network header that is not at 14, version nibble."""
    pay = bytes(5000)
    inner = frame4(pay)
    tagged = inner[:12] + b"\x81\x00\x00\x05" + inner[12:]

    def vlan() -> Packet:
        p = Packet(tagged)
        d = p.data
        p.mac_header = d
        p.network_header = d + 14     # mac_len: the tag is pulled by skb_network_protocol
        p.transport_header = d + 38
        p.protocol = 0x8100
        p.ip_summed = CHECKSUM_PARTIAL
        p.csum_start = d + 38
        p.csum_offset = 16
        p.buf[d + 54:d + 56] = pseudo_sum_v4(IP_A, IP_B, 20 + len(pay), 6).to_bytes(2, "big")
        p.gso_size = 1000
        p.gso_type = SKB_GSO_TCPV4
        p.dev = DEV
        return p

    r = assert_fallback(vlan, HW)
    assert isinstance(r, list) and len(r) == 5
    assert_fallback(_mutated(_v4(), _poke(12, b"\x86\xdd")), HW)
    assert_fallback(_mutated(_v4(), lambda p: setattr(p, "network_header", p.data + 16)), HW)
    assert_fallback(_mutated(_v4(), _poke(14, b"\x65")), HW)
