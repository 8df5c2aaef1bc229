"""pcapng: round trips, hand-built files (both byte orders, several sections and
interfaces with different if_tsresol/if_tsoffset, SPB, obsolete PB, unknown blocks),
dpkt cross-checks and malformed-input errors with their byte offsets."""

from __future__ import annotations

import io
import pathlib
import struct

import dpkt
import pytest

from netstack.packet.pcap import (
    LINKTYPE_EN10MB,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_RAW,
    CapturedFrame,
    PcapError,
    PcapngReader,
    PcapngWriter,
    PcapUnsupported,
    open_capture,
)

T0 = 1_700_000_000_123_456_789


# ----------------------------------------------------------------------------- builders


def block(o: str, btype: int, body: bytes) -> bytes:
    """Frame a pcapng block: type, total length, body padded to 32 bits, length again."""
    body += b"\0" * (-len(body) % 4)
    blen = 12 + len(body)
    return struct.pack(o + "II", btype, blen) + body + struct.pack(o + "I", blen)


def opt(o: str, code: int, value: bytes) -> bytes:
    return struct.pack(o + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def opts(o: str, *items: bytes) -> bytes:
    return b"".join(items) + opt(o, 0, b"") if items else b""


def shb(o: str, version: tuple[int, int] = (1, 0), options: bytes = b"") -> bytes:
    return block(o, 0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, *version, -1) + options)


def idb(o: str, linktype: int, snaplen: int = 0, tsresol: int | None = None,
        tsoffset: int | None = None, name: str | None = None) -> bytes:
    items = []
    if name is not None:
        items.append(opt(o, 2, name.encode()))
    if tsresol is not None:
        items.append(opt(o, 9, bytes([tsresol])))
    if tsoffset is not None:
        items.append(opt(o, 14, struct.pack(o + "q", tsoffset)))
    return block(o, 1, struct.pack(o + "HHI", linktype, 0, snaplen) + opts(o, *items))


def epb(o: str, ifid: int, ticks: int, data: bytes, orig: int | None = None,
        options: bytes = b"") -> bytes:
    orig = len(data) if orig is None else orig
    body = struct.pack(o + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(data), orig)
    return block(o, 6, body + data + b"\0" * (-len(data) % 4) + options)


def spb(o: str, orig: int, data: bytes) -> bytes:
    return block(o, 3, struct.pack(o + "I", orig) + data)


def pb(o: str, ifid: int, ticks: int, data: bytes) -> bytes:
    body = struct.pack(o + "HHIIII", ifid, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
    return block(o, 2, body + data)


def read_all(src) -> list[CapturedFrame]:
    with open_capture(src) as r:
        return list(r)


def error_of(raw: bytes) -> PcapError:
    with pytest.raises(PcapError) as ei:
        read_all(io.BytesIO(raw))
    return ei.value


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("nano", [True, False])
def test_round_trip_several_interfaces(tmp_path: pathlib.Path, nano: bool) -> None:
    path = tmp_path / "rt.pcapng"
    with PcapngWriter(path, linktype=LINKTYPE_EN10MB, snaplen=64, nanosecond=nano,
                      if_name="eth0") as w:
        tun = w.add_interface(LINKTYPE_RAW, snaplen=0, name="tun0")
        sll = w.add_interface(LINKTYPE_LINUX_SLL)
        assert (tun, sll, w.interface_count) == (1, 2, 3)
        w.write(b"\xee" * 100, T0)
        w.write(b"\x45" * 301, T0 + 1, ifindex=tun)
        w.write(b"\x00\x04" * 9, T0 + 2_000, orig_len=600, ifindex=sll)
        w.write(b"", 0)
    with open_capture(path) as r:
        assert isinstance(r, PcapngReader)
        assert (r.format, r.sections, r.byteorder) == ("pcapng", 1, "little")
        got = list(r)
        assert [(i.name, i.linktype, i.snaplen) for i in r.interfaces] == [
            ("eth0", 1, 64), ("tun0", 101, 0), (None, 113, 262144)]
        assert {i.ts_units_per_s for i in r.interfaces} == {10**9 if nano else 10**6}

    def ts(t: int) -> int:
        return t if nano else t // 1000 * 1000

    assert got == [
        CapturedFrame(ts(T0), b"\xee" * 64, LINKTYPE_EN10MB, 100, 0),  # cut to snaplen 64
        CapturedFrame(ts(T0 + 1), b"\x45" * 301, LINKTYPE_RAW, 301, 1),  # snaplen 0: no limit
        CapturedFrame(ts(T0 + 2_000), b"\x00\x04" * 9, LINKTYPE_LINUX_SLL, 600, 2),
        CapturedFrame(0, b"", LINKTYPE_EN10MB, 0, 0),
    ]


def test_writer_rejects_bad_arguments() -> None:
    w = PcapngWriter(io.BytesIO())
    with pytest.raises(ValueError, match="ifindex 1 is not a declared interface"):
        w.write(b"a", 0, ifindex=1)
    with pytest.raises(ValueError, match="timestamp"):
        w.write(b"a", -5)
    with pytest.raises(ValueError, match="timestamp"):
        w.write(b"a", 2**64)
    with pytest.raises(ValueError, match="orig_len"):
        w.write(b"ab", 0, orig_len=1)
    with pytest.raises(ValueError, match="linktype"):
        w.add_interface(-1)
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.add_interface(1)


def test_writer_output_layout_is_exact() -> None:
    """The bytes must be what the pcapng draft prescribes, not just self-consistent."""
    buf = io.BytesIO()
    with PcapngWriter(buf, linktype=LINKTYPE_RAW, snaplen=1500, userappl=None) as w:
        w.write(b"\x45\x00\x00", 0x1_0000_0002)
    want = (shb("<") + idb("<", LINKTYPE_RAW, 1500, tsresol=9)
            + epb("<", 0, 0x1_0000_0002, b"\x45\x00\x00"))
    assert buf.getvalue() == want


# ----------------------------------------------------------------------------- hand-built


@pytest.mark.parametrize("o", ["<", ">"])
def test_interfaces_with_different_tsresol_and_tsoffset(o: str) -> None:
    raw = (shb(o, options=opts(o, opt(o, 4, b"test")))
           + idb(o, LINKTYPE_EN10MB)  # no if_tsresol: microseconds
           + idb(o, LINKTYPE_RAW, tsresol=3)  # milliseconds
           + idb(o, LINKTYPE_IPV6, tsresol=0x80 | 10)  # 2**-10 s
           + idb(o, LINKTYPE_EN10MB, tsresol=9, tsoffset=-100)  # ns, 100 s earlier
           + idb(o, LINKTYPE_EN10MB, tsresol=12, name="ps")  # picoseconds: floor to ns
           + epb(o, 0, 1_700_000_000_000_001, b"a")
           + epb(o, 1, 1_700_000_000_123, b"b")
           + epb(o, 2, (5 << 10) + 3, b"c")
           + epb(o, 3, 1_000 * 10**9 + 7, b"d")
           + epb(o, 4, 1_234_567_891_999, b"e"))
    with open_capture(io.BytesIO(raw)) as r:
        got = list(r)
        assert r.byteorder == ("little" if o == "<" else "big")
        assert [i.ts_units_per_s for i in r.interfaces] == [10**6, 10**3, 2**10, 10**9, 10**12]
        assert r.interfaces[3].tsoffset_s == -100 and r.interfaces[4].name == "ps"
    assert [(f.ts_ns, f.data, f.linktype, f.ifindex) for f in got] == [
        (1_700_000_000_000_001_000, b"a", LINKTYPE_EN10MB, 0),
        (1_700_000_000_123_000_000, b"b", LINKTYPE_RAW, 1),
        (5_000_000_000 + 3 * 10**9 // 1024, b"c", LINKTYPE_IPV6, 2),
        (900 * 10**9 + 7, b"d", LINKTYPE_EN10MB, 3),
        (1_234_567_891, b"e", LINKTYPE_EN10MB, 4),
    ]


def test_several_sections_each_with_own_byte_order_and_interfaces() -> None:
    raw = (shb("<") + idb("<", LINKTYPE_EN10MB, tsresol=9) + idb("<", LINKTYPE_RAW)
           + epb("<", 1, 5, b"s0-if1") + epb("<", 0, 6, b"s0-if0")
           + shb(">") + idb(">", LINKTYPE_IPV6, tsresol=9)
           + epb(">", 0, 7, b"s1-if0"))
    with open_capture(io.BytesIO(raw)) as r:
        got = list(r)
        assert r.sections == 2 and r.byteorder == "big"
        assert [(i.ifindex, i.section, i.local_id) for i in r.interfaces] == [
            (0, 0, 0), (1, 0, 1), (2, 1, 0)]
    assert [(f.data, f.ifindex, f.linktype, f.ts_ns) for f in got] == [
        (b"s0-if1", 1, LINKTYPE_RAW, 5_000),
        (b"s0-if0", 0, LINKTYPE_EN10MB, 6),
        (b"s1-if0", 2, LINKTYPE_IPV6, 7),
    ]
    # interface ids restart in a new section: local id 1 no longer exists there
    bad = raw + epb(">", 1, 8, b"x")
    err = error_of(bad)
    assert err.offset == len(raw)
    assert "refers to interface 1 but the section defines 1" in str(err)


@pytest.mark.parametrize("o", ["<", ">"])
def test_simple_and_obsolete_packet_blocks(o: str) -> None:
    raw = (shb(o) + idb(o, LINKTYPE_EN10MB, snaplen=8, tsresol=6)
           + spb(o, 1514, b"0123456789ab")  # snaplen 8 < 12 bytes present
           + spb(o, 3, b"xyz")
           + pb(o, 0, 2_000_000, b"pkt"))
    assert read_all(io.BytesIO(raw)) == [
        CapturedFrame(0, b"01234567", LINKTYPE_EN10MB, 1514, 0),  # SPB has no timestamp
        CapturedFrame(0, b"xyz", LINKTYPE_EN10MB, 3, 0),
        CapturedFrame(2_000_000_000, b"pkt", LINKTYPE_EN10MB, 3, 0),
    ]


def test_unknown_blocks_and_packet_options_are_skipped() -> None:
    o = "<"
    raw = (shb(o) + block(o, 4, b"\0" * 4)  # name resolution block
           + idb(o, LINKTYPE_EN10MB)
           + block(o, 0x40000BAD, b"\x01\x02\x03\x04" + b"custom data")  # custom block
           + epb(o, 0, 1, b"keep", options=opts(o, opt(o, 2, b"\0\0\0\1"), opt(o, 1, b"hi")))
           + block(o, 5, b"\0" * 12)  # interface statistics block
           + block(o, 0x12345678, b"\xff" * 3000))
    assert [f.data for f in read_all(io.BytesIO(raw))] == [b"keep"]


def test_shb_version_1_2_is_accepted() -> None:
    raw = shb("<", version=(1, 2)) + idb("<", 1) + epb("<", 0, 1, b"q")
    assert read_all(io.BytesIO(raw))[0].data == b"q"


# ----------------------------------------------------------------------------- dpkt


def test_dpkt_reads_our_pcapng(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ours.pcapng"
    pkts = [(bytes([i]) * (i + 1), 1_650_000_000 * 10**9 + i * 1_000_003) for i in range(25)]
    with PcapngWriter(path, linktype=LINKTYPE_EN10MB, nanosecond=False) as w:
        for data, ts in pkts:
            w.write(data, ts)
    with open(path, "rb") as f:
        rd = dpkt.pcapng.Reader(f)
        assert rd.datalink() == LINKTYPE_EN10MB
        got = list(rd)
    assert [d for _, d in got] == [d for d, _ in pkts]
    assert [round(t * 1e6) for t, _ in got] == [ts // 1000 for _, ts in pkts]


def test_dpkt_reads_our_nanosecond_pcapng(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ns.pcapng"
    with PcapngWriter(path) as w:
        w.write(b"abc", 1_650_000_000 * 10**9 + 250_000_000)
    with open(path, "rb") as f:
        ((ts, data),) = list(dpkt.pcapng.Reader(f))
    assert data == b"abc" and ts == pytest.approx(1_650_000_000.25, abs=1e-6)


def test_we_read_dpkt_pcapng(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "dpkt.pcapng"
    with open(path, "wb") as f:
        w = dpkt.pcapng.Writer(f, snaplen=9000, linktype=LINKTYPE_RAW)
        for i in range(12):
            w.writepkt(b"\x60" * (40 + i), ts=1_600_000_000 + i * 0.5)
    got = read_all(path)
    assert [f.data for f in got] == [b"\x60" * (40 + i) for i in range(12)]
    assert [f.ts_ns for f in got] == [1_600_000_000 * 10**9 + i * 500_000_000 for i in range(12)]
    assert {(f.linktype, f.ifindex) for f in got} == {(LINKTYPE_RAW, 0)}


# ----------------------------------------------------------------------------- errors

GOOD = shb("<") + idb("<", LINKTYPE_EN10MB)  # 28 + 20 bytes
PKT = epb("<", 0, 1, b"0123456789")  # 44 bytes at offset 48


def test_truncated_final_block_is_an_error() -> None:
    for cut in (1, 4, 20, len(PKT) - 1):
        err = error_of(GOOD + PKT + PKT[:cut])
        assert err.offset == len(GOOD) + len(PKT), cut
        assert "truncated" in err.reason


def test_truncated_block_header_and_body_messages() -> None:
    assert error_of(GOOD + PKT[:5]).reason == "truncated block header: need 8 bytes, file has 5"
    assert error_of(GOOD + PKT[:30]).reason == (
        "truncated enhanced packet block: need 36 bytes, file has 22")


def test_block_length_mismatch() -> None:
    bad = PKT[:-4] + struct.pack("<I", len(PKT) + 4)
    err = error_of(GOOD + bad)
    assert err.offset == 48
    assert err.reason == "block length mismatch: header says 44, trailer 48"
    skipped = block("<", 0x99, b"abcd")
    err = error_of(GOOD + skipped[:-4] + b"\0\0\0\0")
    assert (err.offset, err.reason) == (48, "block length mismatch: header says 16, trailer 0")
    shb_bad = shb("<")[:-4] + b"\0\0\0\0"
    assert error_of(shb_bad).reason.startswith("block length mismatch")


@pytest.mark.parametrize("blen", [8, 13, 0xFFFFFFF0])
def test_bad_block_lengths(blen: int) -> None:
    err = error_of(GOOD + struct.pack("<II", 6, blen) + b"\0" * 64)
    assert (err.offset, err.reason) == (48, f"bad block length {blen} (type 0x00000006)")


def test_bad_byte_order_magic_and_version() -> None:
    bad_bom = shb("<").replace(struct.pack("<I", 0x1A2B3C4D), b"\x11\x22\x33\x44")
    assert "bad pcapng byte-order magic 0x11223344" in str(error_of(bad_bom))
    with pytest.raises(PcapUnsupported, match=r"not supported: pcapng version 2.0 .* at offset 0"):
        open_capture(io.BytesIO(shb("<", version=(2, 0))))
    err = error_of(GOOD + shb(">", version=(1, 1)))
    assert isinstance(err, PcapUnsupported) and err.offset == 48


def test_packet_blocks_inconsistent_with_their_interfaces() -> None:
    assert "enhanced packet block refers to interface 0 but the section defines 0" in str(
        error_of(shb("<") + epb("<", 0, 1, b"x")))
    assert "simple packet block refers to interface 0" in str(error_of(shb("<") + spb("<", 1, b"x")))
    # captured length larger than the data the block holds
    body = struct.pack("<IIIII", 0, 0, 1, 500, 500) + b"abcd"
    err = error_of(GOOD + block("<", 6, body))
    assert (err.offset, err.reason) == (
        48, "enhanced packet block captured length 500 exceeds its block (4 bytes)")
    assert "too short" in error_of(GOOD + block("<", 6, b"\0" * 8)).reason


def test_malformed_idb_options() -> None:
    o = "<"
    overrun = block(o, 1, struct.pack(o + "HHI", 1, 0, 0) + struct.pack(o + "HH", 2, 200) + b"ab")
    assert "option 2 of length 200 overruns its block" in str(error_of(shb(o) + overrun))
    resol = block(o, 1, struct.pack(o + "HHI", 1, 0, 0) + opt(o, 9, b"\x06\x06"))
    assert "if_tsresol option of length 2" in str(error_of(shb(o) + resol))
    offs = block(o, 1, struct.pack(o + "HHI", 1, 0, 0) + opt(o, 14, b"\0" * 4))
    assert "if_tsoffset option of length 4" in str(error_of(shb(o) + offs))
    assert "too short" in str(error_of(shb(o) + block(o, 1, b"\0\0\0\0")))


def test_error_is_sticky() -> None:
    """After a malformed block the reader must not resynchronise on payload bytes."""
    bad = GOOD + PKT[:-4] + struct.pack("<I", 0) + PKT
    with open_capture(io.BytesIO(bad)) as r:
        with pytest.raises(PcapError) as first:
            next(r)
        with pytest.raises(PcapError) as again:
            next(r)
    assert again.value is first.value
