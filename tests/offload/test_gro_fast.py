"""The batch GRO path (netstack/core/gro_fast.py) against the per-packet chain it shortcuts:
the same receive list through both must deliver the same packets — every byte of every
buffer, every skb field — in the same order, with the same NAPI counters.  Lists are
trains of TCP/IPv4 and TCP/IPv6 segments, interleaved, with the things that break a train
injected: header bytes changed, bad checksums, ID modes, flags, short segments, other
hashes/devices/tags/checksum states, and sequence/ID/checksum values about to wrap."""
from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core import gro_fast
from netstack.core.gro import Napi
from netstack.packet.checksum import csum_partial_many
from netstack.packet.skb import (CHECKSUM_COMPLETE, CHECKSUM_NONE, CHECKSUM_PARTIAL,
                                 CHECKSUM_UNNECESSARY, Packet)

from .pktbuild import eth, ipv6, pseudo4, pseudo6, rfc1071, tcp

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
IP_A = bytes([10, 0, 0, 1])
IP_B = bytes([10, 0, 0, 2])
IP6_A = bytes.fromhex("fd000000000000000000000000000001")
IP6_B = bytes.fromhex("fd000000000000000000000000000002")
PAY = bytes((i * 37 + 11) & 0xFF for i in range(120000))


class _Net:
    def __init__(self) -> None:
        self.proto: dict = {}


class _VxNet(_Net):
    """A namespace with a VXLAN socket on 4789 (and a FOU-like one on 5555: a UDP
    tunnel whose GRO is not VXLAN's, which the batch must leave to the chain)."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        from netstack.drivers.vxlan.gro import vxlan_gro_complete, vxlan_gro_receive
        from netstack.ipv4.udp_tunnel import UdpTunnelSock
        super().__init__()
        vx = UdpTunnelSock(net=self, family=2, port=4789,  # type: ignore[arg-type]
                           encap_rcv=lambda s, p: 0,
                           user_data=SimpleNamespace(devs={}, flags=(0, 0, 0)),
                           gro_receive=vxlan_gro_receive, gro_complete=vxlan_gro_complete)
        other = UdpTunnelSock(net=self, family=2, port=5555,  # type: ignore[arg-type]
                              encap_rcv=lambda s, p: 0,
                              user_data=SimpleNamespace(devs={}, flags=(0, 0, 0)),
                              gro_receive=lambda sk, napi, head, pkt: _flush(pkt),
                              gro_complete=vxlan_gro_complete)
        self.proto = {"udp_tunnel": {(2, 4789): [vx], (2, 5555): [other]},
                      "udp_encap_needed": True}


def _flush(pkt: Packet) -> None:
    pkt.cb.flush |= 1
    return None


class Dev:
    hw_enc_features = None
    gso_partial_features: frozenset = frozenset()

    def __init__(self, ifindex: int = 3) -> None:
        self.ifindex = ifindex
        self.features = {"rx-gro"}
        self.net = _VxNet()


def ipv4_hdr(plen: int, ident: int, ttl: int = 64, tos: int = 0, frag: int = 0x4000,
             src: bytes = IP_A, dst: bytes = IP_B) -> bytes:
    h = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + plen, ident & 0xFFFF, frag, ttl, 6, 0,
                    src, dst)
    return h[:10] + struct.pack("!H", rfc1071(h)) + h[12:]


def frame(v6: bool, sport: int, seq: int, ident: int, payload: bytes, flags: int = 0x10,
          options: bytes = b"", ttl: int = 64, src: bytes | None = None) -> bytes:
    """One TCP segment with valid checksums."""
    if v6:
        s = src or IP6_A
        seg = tcp(sport, 80, seq & 0xFFFFFFFF, 7, flags, payload,
                  pseudo6(s, IP6_B, 6, 20 + len(options) + len(payload)), options)
        return eth(MAC_B, MAC_A, 0x86DD) + ipv6(len(seg), 6, src=s, hlim=ttl) + seg
    s = src or IP_A
    seg = tcp(sport, 80, seq & 0xFFFFFFFF, 7, flags, payload,
              pseudo4(s, IP_B, 6, 20 + len(options) + len(payload)), options)
    return eth(MAC_B, MAC_A, 0x0800) + ipv4_hdr(len(seg), ident, ttl=ttl, src=s) + seg


IN_A = bytes([192, 168, 0, 1])
IN_B = bytes([192, 168, 0, 2])


def vxlan_frame(sport: int, seq: int, ident: int, oident: int, payload: bytes,
                flags: int = 0x10, options: bytes = b"", csum: bool = True, vni: int = 42,
                dport: int = 4789, vxflags: int = 0x08) -> bytes:
    """One VXLAN-encapsulated TCP segment, every checksum valid (outer UDP's if ``csum``)."""
    seg = tcp(sport, 80, seq & 0xFFFFFFFF, 7, flags, payload,
              pseudo4(IN_A, IN_B, 6, 20 + len(options) + len(payload)), options)
    inner = (eth(bytes.fromhex("0a0000000002"), bytes.fromhex("0a0000000001"), 0x0800)
             + ipv4_hdr(len(seg), ident, src=IN_A, dst=IN_B)[:12] + IN_A + IN_B + seg)
    ih = bytearray(inner[14:34])
    ih[10:12] = b"\0\0"
    ih[10:12] = struct.pack("!H", rfc1071(bytes(ih)))
    inner = inner[:14] + bytes(ih) + inner[34:]
    vx = struct.pack("!II", vxflags << 24, vni << 8)
    ulen = 8 + len(vx) + len(inner)
    uh = struct.pack("!HHHH", 49152 + sport % 7, dport, ulen, 0)
    if csum:
        c = rfc1071(pseudo4(IP_A, IP_B, 17, ulen) + uh + vx + inner) or 0xFFFF
        uh = uh[:6] + struct.pack("!H", c)
    return eth(MAC_B, MAC_A, 0x0800) + ipv4_hdr(ulen, oident)[:9] + b"\x11" \
        + _fix_outer(ulen, oident) + uh + vx + inner


def _fix_outer(ulen: int, oident: int) -> bytes:
    """Bytes 10..19 of the outer IPv4 header (checksum, addresses) for protocol 17."""
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, oident & 0xFFFF, 0x4000, 64, 17, 0,
                    IP_A, IP_B)
    return struct.pack("!H", rfc1071(h)) + h[12:]


def vxlan_train(n: int, mss: int, last: int, *, sport: int = 4000, seq0: int = 1000,
                id0: int = 0x1234, oid0: int = 0x2000, fixed: bool = False,
                ofixed: bool = False, flags_last: int = 0x10, csum: bool = True,
                **kw: object) -> list[bytes]:
    out = []
    off = 0
    for k in range(n):
        ln = mss if k < n - 1 else last
        out.append(vxlan_frame(sport, seq0 + off, id0 if fixed else id0 + k,
                               oid0 if ofixed else oid0 + k, PAY[off:off + ln],
                               flags_last if k == n - 1 else 0x10, csum=csum, **kw))  # type: ignore[arg-type]
        off += ln
    return out


def rx(raw: bytes, dev: Dev, summed: int = CHECKSUM_UNNECESSARY, h: int = 0) -> Packet:
    p = Packet(raw)
    p.dev = dev
    p.mac_header = p.data
    p.protocol = struct.unpack("!H", raw[12:14])[0]
    p.data += 14
    p.ip_summed = summed
    p.hash = h & 0xFFFF  # the bits above say how to build the skb
    if h & 0x10000:
        # an out-of-band priority tag (VLAN 0): only vlan_proto tells it apart
        p.vlan_proto = 0x8100
    if summed == CHECKSUM_COMPLETE:
        p.csum = csum_partial_many([memoryview(p.buf)[p.data:p.tail]])[0]
    elif summed == CHECKSUM_PARTIAL:
        # what a veth passes on from a local sender: csum_start at the TCP header, or
        # (h & 0x20000) earlier, at the IP header — then GRO must validate
        l4 = 40 if p.protocol == 0x86DD else 20
        if len(raw) > 23 and raw[23] == 17:
            l4 = 20 + 8 + 8 + 14 + 20  # the inner TCP header of a VXLAN frame
        p.csum_start = p.data + (0 if h & 0x20000 else l4)
        p.csum_offset = 16
    if h & 0x40000:
        p.csum_level = 1  # the device verified two levels (outer UDP and inner TCP)
    return p


_SLOTS = [s for s in Packet.__slots__ if s not in ("__dict__", "buf", "dev", "cb")]


def snapshot(p: Packet) -> tuple:
    return (bytes(p.buf), tuple(getattr(p, s) for s in _SLOTS), getattr(p.dev, "ifindex", None),
            p.cb, sorted(p.__dict__.items()))


def run(spec: list[tuple], fast: bool) -> tuple[list, dict]:
    """Build the receive list from ``spec`` (fresh packets each time) and GRO it.  The
    stats get ``chain``: how many packets took the per-packet chain."""
    devs = {3: Dev(3), 4: Dev(4)}
    pkts = [rx(raw, devs[d], summed, h) for raw, d, summed, h in spec]
    out: list[Packet] = []
    napi = Napi(devs[3], out.extend)
    chain = [0]
    receive = napi.receive

    def counting(p: Packet) -> str:
        chain[0] += 1
        return receive(p)

    napi.receive = counting  # type: ignore[method-assign]
    old = gro_fast.ENABLED
    gro_fast.ENABLED = fast
    try:
        napi.receive_list(pkts)
    finally:
        gro_fast.ENABLED = old
    return [snapshot(p) for p in out], dict(napi.stats, chain=chain[0])


def same(spec: list[tuple]) -> tuple[list, dict]:
    """Both paths give the same result; returns it with the fast path's ``chain`` count."""
    a, sa = run(spec, False)
    b, sb = run(spec, True)
    assert b == a
    assert sb.pop("chain") <= sa.pop("chain")
    assert sb == sa
    return b, dict(sb, chain=run(spec, True)[1]["chain"])


def train(v6: bool, n: int, mss: int, last: int, *, sport: int = 4000, seq0: int = 1000,
          id0: int = 0x1234, fixed: bool = False, flags_last: int = 0x10,
          options: bytes = b"", ttl: int = 64) -> list[bytes]:
    out = []
    off = 0
    for k in range(n):
        ln = mss if k < n - 1 else last
        out.append(frame(v6, sport, seq0 + off, id0 if fixed else id0 + k,
                         PAY[off:off + ln], flags_last if k == n - 1 else 0x10, options, ttl))
        off += ln
    return out


# ---------------------------------------------------------------- explicit cases
def test_train_merges_in_one_run():
    raws = train(False, 40, 1448, 1000, flags_last=0x18)
    out, stats = same([(r, 3, CHECKSUM_UNNECESSARY, 0) for r in raws])
    assert len(out) == 1 and stats["merged"] == 39
    assert stats["chain"] == 1  # the first segment only: the short last one ends the run


def test_train_v6_and_software_checksums():
    raws = train(True, 30, 1400, 1400)
    out, stats = same([(r, 3, CHECKSUM_NONE, 0) for r in raws])
    assert len(out) == 1 and stats["merged"] == 29 and stats["chain"] == 1


def test_bad_tcp_checksum_ends_the_run():
    raws = train(False, 20, 1000, 1000)
    b = bytearray(raws[9])
    b[-1] ^= 0xFF
    raws[9] = bytes(b)
    out, stats = same([(r, 3, CHECKSUM_NONE, 0) for r in raws])
    # the first, the bad one (goes up alone), the next (a sequence gap: starts a new train)
    assert len(out) == 3 and stats["chain"] == 3


def test_fixed_ids_and_size_limit():
    raws = train(False, 60, 1448, 1448, fixed=True)
    out, stats = same([(r, 3, CHECKSUM_UNNECESSARY, 0) for r in raws])
    assert len(out) == 2  # the GRO size limit splits 60 segments in two
    assert stats["chain"] == 2  # the first of each


def test_wraps_take_the_chain():
    # sequence number wrapping inside the run
    raws = train(False, 20, 1000, 1000, seq0=0xFFFFFFFF - 5000)
    same([(r, 3, CHECKSUM_UNNECESSARY, 0) for r in raws])
    # IP ID wrapping
    raws = train(False, 20, 1000, 1000, id0=0xFFF8)
    same([(r, 3, CHECKSUM_UNNECESSARY, 0) for r in raws])
    # header checksum about to wrap: find an ID whose header checksum is small
    for ident in range(0, 0x10000, 7):
        h = ipv4_hdr(1020, ident)
        if struct.unpack("!H", h[10:12])[0] < 10:
            break
    raws = train(False, 20, 1000, 1000, id0=ident)
    out, stats = same([(r, 3, CHECKSUM_UNNECESSARY, 0) for r in raws])
    assert len(out) == 1 and stats["chain"] > 2
    # and a run whose checksums just fit
    raws = train(False, 20, 1000, 1000, id0=ident - 40)
    out, stats = same([(r, 3, CHECKSUM_UNNECESSARY, 0) for r in raws])
    assert len(out) == 1 and stats["chain"] == 1


def test_partial_from_a_local_sender():
    raws = train(False, 30, 1448, 700, flags_last=0x18)
    out, stats = same([(r, 3, CHECKSUM_PARTIAL, 0) for r in raws])
    assert len(out) == 1 and stats["chain"] == 1
    # csum_start before the TCP header: GRO sums (here: the checksums are valid)
    same([(r, 3, CHECKSUM_PARTIAL, 0x20000 if k == 7 else 0) for k, r in enumerate(raws)])


def test_vxlan_train_merges_in_one_run():
    for csum, summed, h in ((True, CHECKSUM_UNNECESSARY, 0), (True, CHECKSUM_NONE, 0),
                            (True, CHECKSUM_UNNECESSARY, 0x40000),
                            (False, CHECKSUM_UNNECESSARY, 0x40000),
                            (False, CHECKSUM_PARTIAL, 0)):
        raws = vxlan_train(30, 1398, 700, flags_last=0x18, csum=csum)
        out, stats = same([(r, 3, summed, h) for r in raws])
        assert len(out) == 1 and stats["merged"] == 29 and stats["chain"] == 1, (csum, summed)
    # fixed outer / inner IDs
    raws = vxlan_train(20, 1398, 1398, fixed=True, ofixed=True)
    out, stats = same([(r, 3, CHECKSUM_UNNECESSARY, 0) for r in raws])
    assert len(out) == 1 and stats["chain"] == 1


def test_vxlan_not_covered():
    # no outer checksum and only one verified level: the inner sum is the chain's job
    raws = vxlan_train(12, 1398, 1398, csum=False)
    out, stats = same([(r, 3, CHECKSUM_UNNECESSARY, 0) for r in raws])
    assert stats["chain"] == 12
    # ... also for the segment that ends the train (its inner checksum broken here: the
    # chain sums it and refuses it; two verified levels would have let it merge)
    raws = vxlan_train(12, 1398, 600, csum=False)
    b = bytearray(raws[-1])
    b[84 + 16] ^= 0x40
    raws[-1] = bytes(b)
    for h in (0, 0x40000):
        spec = [(r, 3, CHECKSUM_UNNECESSARY, h if k < 11 else 0) for k, r in enumerate(raws)]
        out, stats = same(spec)
        assert len(out) == 2
    # another UDP tunnel's port, an RCO flag
    for kw in ({"dport": 5555}, {"vxflags": 0x28}):
        raws = vxlan_train(8, 1398, 1398, **kw)
        same([(r, 3, CHECKSUM_UNNECESSARY, 0) for r in raws])


def test_disabled_or_not_covered():
    # CHECKSUM_COMPLETE, IPv4 options-free but TCP options, other device in the middle
    raws = train(False, 12, 1000, 1000, options=b"\x01\x01\x08\x0a" + bytes(8))
    same([(r, 3, CHECKSUM_COMPLETE, 0) for r in raws])
    same([(r, 3 if k != 5 else 4, CHECKSUM_UNNECESSARY, 0) for k, r in enumerate(raws)])


# ---------------------------------------------------------------- properties
_MUTATIONS = ("none", "byte", "tcpsum", "evil", "psh", "short", "ttl", "hash", "dev",
              "summed", "complete", "vlan", "csum_start", "udpsum", "trunc", "garbage")


@st.composite
def receive_lists(draw: st.DrawFn) -> list[tuple]:
    nflows = draw(st.integers(1, 3))
    flows = []
    for f in range(nflows):
        kind = draw(st.sampled_from(["v4", "v6", "vxlan"]))
        v6 = kind == "v6"
        n = draw(st.integers(1, 30))
        mss = draw(st.sampled_from([536, 1000, 1448]))
        last = draw(st.integers(1, mss))
        seq0 = draw(st.one_of(st.integers(0, 0xFFFFFFFF), st.just(0xFFFFFFFF - 3 * mss)))
        id0 = draw(st.one_of(st.integers(0, 0xFFFF), st.integers(0xFFF0, 0xFFFF)))
        fixed = draw(st.booleans())
        opts = draw(st.sampled_from([b"", b"\x01\x01\x08\x0a" + bytes(8)]))
        flags_last = draw(st.sampled_from([0x10, 0x18, 0x19, 0x11]))
        summed = draw(st.sampled_from([CHECKSUM_UNNECESSARY, CHECKSUM_NONE, CHECKSUM_PARTIAL]))
        if kind == "vxlan":
            csum = draw(st.booleans())
            level = draw(st.sampled_from([0, 0x40000]))
            raws = vxlan_train(n, min(mss, 1398), min(last, 1398), sport=4000 + f, seq0=seq0,
                               id0=id0, oid0=draw(st.integers(0, 0xFFFF)), fixed=fixed,
                               ofixed=draw(st.booleans()), options=opts,
                               flags_last=flags_last, csum=csum)
            flows.append([(r, 3, summed, f | level) for r in raws])
            continue
        raws = train(v6, n, mss, last, sport=4000 + f, seq0=seq0, id0=id0, fixed=fixed,
                     options=opts, flags_last=flags_last)
        flows.append([(r, 3, summed, f) for r in raws])
    # interleave: take from the flows in a drawn order, in bursts
    order = draw(st.lists(st.integers(0, nflows - 1), min_size=1, max_size=200))
    spec: list[tuple] = []
    pos = [0] * nflows
    for f in order + list(range(nflows)) * 60:
        burst = draw(st.integers(1, 16))
        take = flows[f][pos[f]:pos[f] + burst]
        pos[f] += len(take)
        spec.extend(take)
    # break some segments
    for _ in range(draw(st.integers(0, 4))):
        if not spec:
            break
        k = draw(st.integers(0, len(spec) - 1))
        raw, d, summed, h = spec[k]
        b = bytearray(raw)
        m = draw(st.sampled_from(_MUTATIONS))
        if len(raw) < 110:
            continue  # already cut short or garbage: leave it so
        l3 = 14
        l4 = l3 + (40 if raw[12:14] == b"\x86\xdd" else 20)
        if raw[23] == 17 and draw(st.booleans()):
            l3 = 64  # break the inner headers of a VXLAN frame
            l4 = 84
        if m == "byte":
            i = draw(st.integers(0, l4 + 20 - 1))
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif m == "udpsum" and raw[23] == 17:
            b[40] ^= 0x01
        elif m == "trunc":
            del b[draw(st.integers(14, len(b) - 1)):]
        elif m == "garbage":
            b = bytearray(b[:14]) + bytearray(draw(st.binary(min_size=0, max_size=120)))
        elif m == "tcpsum":
            b[l4 + 16] ^= 0x10
        elif m == "evil" and l4 == 34:
            b[l3 + 6] |= 0x80
            b[l3 + 10:l3 + 12] = b"\0\0"
            b[l3 + 10:l3 + 12] = struct.pack("!H", rfc1071(bytes(b[l3:l3 + 20])))
        elif m == "psh":
            b[l4 + 13] |= 0x08
        elif m == "short" and len(b) > l4 + 21:
            del b[-1]
            if l4 == 34:
                b[l3 + 2:l3 + 4] = struct.pack("!H", len(b) - l3)
        elif m == "ttl":
            b[l3 + (8 if l4 == 34 else 7)] ^= 1
        elif m == "hash":
            h ^= 0x100
        elif m == "dev":
            d = 4
        elif m == "summed":
            summed = CHECKSUM_NONE if summed == CHECKSUM_UNNECESSARY else CHECKSUM_UNNECESSARY
        elif m == "complete":
            summed = CHECKSUM_COMPLETE
        elif m == "vlan":
            h |= 0x10000
        elif m == "csum_start":
            h |= 0x20000
        spec[k] = (bytes(b), d, summed, h)
    return spec


@settings(max_examples=300)
@given(receive_lists())
def test_batch_equals_per_packet_chain(spec: list[tuple]) -> None:
    same(spec)
