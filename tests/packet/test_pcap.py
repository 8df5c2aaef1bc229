"""Classic pcap: round trips, hand-built files of both byte orders, dpkt cross-checks
and every malformed-input error (which must name the file and the byte offset)."""

from __future__ import annotations

import decimal
import io
import pathlib
import struct

import dpkt
import pytest

from netstack.packet.pcap import (
    LINKTYPE_EN10MB,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    MAX_RECORD_LEN,
    CapturedFrame,
    LinkType,
    PcapError,
    PcapReader,
    PcapUnsupported,
    PcapWriter,
    open_capture,
)

T0 = 1_700_000_000_123_456_789


def pcap_bytes(order: str, nano: bool, records: list[tuple[int, int, bytes, int]],
               linktype: int = 1, snaplen: int = 65535, version: tuple[int, int] = (2, 4)) -> bytes:
    """Hand-build a classic pcap file: records are (sec, frac, data, orig_len)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, version[0], version[1], 0, 0, snaplen, linktype)
    for sec, frac, data, orig in records:
        out += struct.pack(order + "IIII", sec, frac, len(data), orig) + data
    return out


def read_all(src) -> list[CapturedFrame]:
    with open_capture(src) as r:
        return list(r)


# ----------------------------------------------------------------------------- constants


def test_linktype_values_match_tcpdump_registry() -> None:
    assert (LinkType.EN10MB, LinkType.RAW, LinkType.LINUX_SLL, LinkType.LINUX_SLL2,
            LinkType.IPV4, LinkType.IPV6) == (1, 101, 113, 276, 228, 229)
    assert LINKTYPE_LINUX_SLL2 == 276 and LINKTYPE_IPV4 == 228


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("nano", [True, False])
def test_round_trip_path(tmp_path: pathlib.Path, nano: bool) -> None:
    path = tmp_path / "rt.pcap"
    frames = [(b"\x00" * 60, T0), (bytes(range(200)), T0 + 1_000_001), (b"", T0 + 5)]
    with PcapWriter(path, linktype=LINKTYPE_RAW, snaplen=128, nanosecond=nano) as w:
        for data, ts in frames:
            w.write(data, ts)
        w.write(b"\xab" * 10, T0 + 7, orig_len=1500)
        assert w.packets_written == 4
    with open_capture(path) as r:
        assert isinstance(r, PcapReader)
        assert (r.format, r.linktype, r.snaplen, r.nanosecond, r.byteorder, r.version) == (
            "pcap", LINKTYPE_RAW, 128, nano, "little", (2, 4))
        got = list(r)
    want_ts = [ts if nano else ts // 1000 * 1000 for _, ts in frames] + [
        (T0 + 7) if nano else (T0 + 7) // 1000 * 1000]
    assert [f.ts_ns for f in got] == want_ts
    assert got[0] == CapturedFrame(want_ts[0], b"\x00" * 60, LINKTYPE_RAW, 60, 0)
    # snaplen 128 cuts the 200-byte frame but keeps its original length
    assert got[1].data == bytes(range(128)) and got[1].orig_len == 200
    assert got[2].data == b"" and got[2].orig_len == 0
    assert got[3].data == b"\xab" * 10 and got[3].orig_len == 1500


def test_round_trip_file_objects_are_not_closed() -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf)
    w.write(b"abc", 42)
    w.write(memoryview(b"defg"), 43)
    w.close()
    assert not buf.closed
    buf.seek(0)
    r = open_capture(buf)
    assert r.name == "<stream>"
    assert [(f.data, f.ts_ns) for f in r] == [(b"abc", 42), (b"defg", 43)]
    r.close()
    assert not buf.closed
    with pytest.raises(ValueError, match="closed"):
        next(r)


def test_writer_buffers_and_flush_pushes_to_file() -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf)
    w.write(b"x" * 10, 1)
    assert buf.getvalue() == b""  # nothing written until flush/close/threshold
    w.flush()
    assert len(buf.getvalue()) == 24 + 16 + 10
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write(b"y", 2)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [True, False])
def test_hand_built_both_byte_orders(order: str, nano: bool) -> None:
    frac = 123_456_789 if nano else 123_456
    raw = pcap_bytes(order, nano, [(1_700_000_000, frac, b"\x45" + b"\0" * 19, 20),
                                   (1_700_000_001, 0, b"\x60" * 8, 40)],
                     linktype=LINKTYPE_IPV4)
    with open_capture(io.BytesIO(raw)) as r:
        assert r.byteorder == ("little" if order == "<" else "big")
        assert r.nanosecond is nano
        got = list(r)
    assert got[0] == CapturedFrame(1_700_000_000_123_456_789 if nano else 1_700_000_000_123_456_000,
                                   b"\x45" + b"\0" * 19, LINKTYPE_IPV4, 20, 0)
    assert got[1] == CapturedFrame(1_700_000_001_000_000_000, b"\x60" * 8, LINKTYPE_IPV4, 40, 0)


def test_fcs_bits_are_split_from_linktype() -> None:
    # draft-ietf-opsawg-pcap: P bit (0x04000000) + FCS length in 16-bit words (bits 28-31)
    raw = pcap_bytes("<", False, [], linktype=0x04000000 | (2 << 28) | LINKTYPE_EN10MB)
    with open_capture(io.BytesIO(raw)) as r:
        assert r.linktype == LINKTYPE_EN10MB
        assert r.fcs_len == 4
    with open_capture(io.BytesIO(pcap_bytes("<", False, []))) as r:
        assert r.fcs_len is None
        assert r.interfaces[0].ts_units_per_s == 10**6


def test_version_2_3_is_accepted() -> None:
    raw = pcap_bytes("<", False, [(1, 2, b"z", 1)], version=(2, 3))
    assert read_all(io.BytesIO(raw))[0].ts_ns == 1_000_002_000


# ----------------------------------------------------------------------------- dpkt


@pytest.mark.parametrize("nano", [True, False])
def test_dpkt_reads_our_files(tmp_path: pathlib.Path, nano: bool) -> None:
    path = tmp_path / "ours.pcap"
    pkts = [(bytes([i]) * (i + 14), T0 + i * 1_000_000_007) for i in range(20)]
    with PcapWriter(path, linktype=LINKTYPE_EN10MB, nanosecond=nano) as w:
        for data, ts in pkts:
            w.write(data, ts)
    with open(path, "rb") as f:
        rd = dpkt.pcap.Reader(f)
        assert rd.datalink() == LINKTYPE_EN10MB
        got = list(rd)
    assert [d for _, d in got] == [d for d, _ in pkts]
    for (dpkt_ts, _), (_, ts) in zip(got, pkts):
        if nano:  # dpkt returns an exact Decimal for nanosecond files
            assert dpkt_ts == decimal.Decimal(ts) / 10**9
        else:
            assert round(dpkt_ts * 1e6) == ts // 1000


@pytest.mark.parametrize("nano", [True, False])
def test_we_read_dpkt_files(tmp_path: pathlib.Path, nano: bool) -> None:
    path = tmp_path / "dpkt.pcap"
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, snaplen=9000, linktype=LINKTYPE_RAW, nano=nano)
        for i in range(10):
            w.writepkt(b"\x45" * (20 + i), ts=1_600_000_000 + i * 0.25)
    got = read_all(path)
    assert [f.data for f in got] == [b"\x45" * (20 + i) for i in range(10)]
    assert [f.ts_ns for f in got] == [1_600_000_000 * 10**9 + i * 250_000_000 for i in range(10)]
    assert {f.linktype for f in got} == {LINKTYPE_RAW}


# ----------------------------------------------------------------------------- errors


def test_missing_file_names_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "nope.pcap"
    with pytest.raises(PcapError, match="nope.pcap.*cannot open") as ei:
        open_capture(path)
    assert ei.value.offset is None and ei.value.source == str(path)


def test_empty_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    with pytest.raises(PcapError, match=r"empty.pcap: empty file at offset 0"):
        open_capture(path)


def test_bad_magic(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "junk.bin"
    path.write_bytes(b"GET / HTTP/1.1\r\n")
    with pytest.raises(PcapError, match="junk.bin: not a pcap or pcapng file") as ei:
        open_capture(path)
    assert ei.value.offset == 0


def test_short_magic_and_short_file_header() -> None:
    with pytest.raises(PcapError, match="truncated file header") as ei:
        open_capture(io.BytesIO(b"\xd4\xc3"))
    assert ei.value.offset == 0
    with pytest.raises(PcapError, match="truncated pcap file header: need 20 bytes, file has 6"):
        open_capture(io.BytesIO(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00"))


@pytest.mark.parametrize("version", [(1, 0), (3, 4), (2, 2)])
def test_unsupported_version(version: tuple[int, int]) -> None:
    with pytest.raises(PcapUnsupported, match=r"not supported: pcap version .* at offset 4"):
        open_capture(io.BytesIO(pcap_bytes("<", False, [], version=version)))


def test_modified_pcap_magic_is_reported_unsupported() -> None:
    with pytest.raises(PcapUnsupported, match="Kuznetzov"):
        open_capture(io.BytesIO(b"\x34\xcd\xb2\xa1" + b"\0" * 20))


def test_truncated_record_header_is_an_error_with_offset() -> None:
    good = pcap_bytes("<", True, [(1, 1, b"abcd", 4)])
    with open_capture(io.BytesIO(good + b"\x01\x02\x03")) as r:
        assert next(r).data == b"abcd"
        with pytest.raises(PcapError, match="truncated record header: need 16 bytes, file has 3") as ei:
            next(r)
    assert ei.value.offset == len(good) == 44


def test_truncated_final_packet_data_is_an_error_not_dropped(tmp_path: pathlib.Path) -> None:
    full = pcap_bytes("<", True, [(1, 1, b"abcd", 4), (2, 2, b"0123456789", 10)])
    path = tmp_path / "cut.pcap"
    path.write_bytes(full[:-3])
    with open_capture(path) as r:
        assert next(r).ts_ns == 1_000_000_001
        with pytest.raises(PcapError) as ei:
            next(r)
    assert ei.value.offset == 44  # start of the second record
    assert str(ei.value) == (f"{path}: truncated packet data of record: need 10 bytes, "
                             "file has 7 at offset 44")


def test_absurd_captured_length_is_refused_without_reading() -> None:
    raw = pcap_bytes("<", False, []) + struct.pack("<IIII", 0, 0, MAX_RECORD_LEN + 1, 10)
    with open_capture(io.BytesIO(raw)) as r, pytest.raises(PcapError, match="exceeds") as ei:
        next(r)
    assert ei.value.offset == 24


def test_text_mode_file_is_rejected(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap_bytes("<", False, []))
    with open(path, encoding="latin-1") as f, pytest.raises(TypeError, match="binary"):
        open_capture(f)


# ----------------------------------------------------------------------------- writer validation


def test_writer_argument_checks() -> None:
    w = PcapWriter(io.BytesIO())
    with pytest.raises(ValueError, match="ifindex"):
        w.write(b"a", 0, ifindex=1)
    with pytest.raises(ValueError, match="timestamp"):
        w.write(b"a", -1)
    with pytest.raises(ValueError, match="timestamp"):
        w.write(b"a", 2**32 * 10**9)
    with pytest.raises(ValueError, match="orig_len"):
        w.write(b"abc", 0, orig_len=2)
    with pytest.raises(TypeError, match="bytes-like"):
        w.write("text", 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="linktype"):
        PcapWriter(io.BytesIO(), linktype=70000)
    with pytest.raises(ValueError, match="snaplen"):
        PcapWriter(io.BytesIO(), snaplen=0)
    assert w.packets_written == 0


def test_writer_counts_bytes_of_non_byte_memoryview() -> None:
    buf = io.BytesIO()
    with PcapWriter(buf) as w:
        w.write(memoryview(struct.pack("<4H", 1, 2, 3, 4)).cast("H"), 9)
    buf.seek(0)
    (frame,) = read_all(buf)
    assert frame.data == struct.pack("<4H", 1, 2, 3, 4) and frame.orig_len == 8
