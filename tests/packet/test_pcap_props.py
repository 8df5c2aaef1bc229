"""Hypothesis properties of the pcap/pcapng codecs:

* write-then-read is the identity (up to the declared timestamp resolution and
  snap length) for both formats;
* cutting a valid file anywhere yields either exactly the records before the
  cut (cut on a record boundary) or a PcapError at the offset of the cut record;
* arbitrary corruption never raises anything but PcapError;
* if_tsresol conversion equals the exact rational floor.
"""

from __future__ import annotations

import io
import struct
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netstack.packet.pcap import (
    PcapError,
    PcapngWriter,
    PcapWriter,
    _tsresol_ratio,
    open_capture,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

frames_st = st.lists(
    st.tuples(
        st.binary(max_size=90),
        st.integers(min_value=0, max_value=2**32 * 10**9 - 1),
        st.integers(min_value=0, max_value=2000),  # bytes beyond the capture on the wire
    ),
    max_size=12,
)


def write(fmt: type, frames, nano: bool, snaplen: int, linktype: int = 1) -> bytes:
    buf = io.BytesIO()
    with fmt(buf, linktype=linktype, snaplen=snaplen, nanosecond=nano) as w:
        for data, ts, extra in frames:
            w.write(data, ts, orig_len=len(data) + extra)
    return buf.getvalue()


@FAST
@given(frames=frames_st, fmt=st.sampled_from([PcapWriter, PcapngWriter]), nano=st.booleans(),
       snaplen=st.integers(min_value=1, max_value=100), linktype=st.integers(0, 0xFFFF))
def test_round_trip_identity(frames, fmt, nano, snaplen, linktype) -> None:
    raw = write(fmt, frames, nano, snaplen, linktype)
    got = list(open_capture(io.BytesIO(raw)))
    assert len(got) == len(frames)
    for f, (data, ts, extra) in zip(got, frames):
        assert f.data == data[:snaplen]
        assert f.orig_len == len(data) + extra
        assert f.ts_ns == (ts if nano else ts - ts % 1000)
        assert (f.linktype, f.ifindex) == (linktype, 0)


def _boundaries(raw: bytes, fmt: type) -> list[int]:
    """Offsets at which a record starts (and the end of the file)."""
    out = []
    if fmt is PcapWriter:
        pos = 24
        while pos < len(raw):
            out.append(pos)
            pos += 16 + struct.unpack_from("<I", raw, pos + 8)[0]
    else:
        pos = 0
        while pos < len(raw):
            out.append(pos)
            pos += struct.unpack_from("<I", raw, pos + 4)[0]
    out.append(len(raw))
    return out


@FAST
@given(frames=frames_st.filter(bool), fmt=st.sampled_from([PcapWriter, PcapngWriter]),
       data=st.data())
def test_truncation_is_prefix_or_error_at_record_start(frames, fmt, data) -> None:
    raw = write(fmt, frames, True, 262144)
    bounds = _boundaries(raw, fmt)
    header_end = bounds[0] if fmt is PcapWriter else bounds[2]  # pcapng: SHB + IDB
    cut = data.draw(st.integers(min_value=header_end, max_value=len(raw) - 1))
    reader = open_capture(io.BytesIO(raw[:cut]))
    got = []
    try:
        got.extend(reader)
    except PcapError as exc:
        assert cut not in bounds
        assert exc.offset == max(b for b in bounds if b < cut)
        assert "truncated" in exc.reason
    else:
        assert cut in bounds
    # every record that ends at or before the cut is delivered, intact
    first = 0 if fmt is PcapWriter else 2  # pcapng: skip the SHB and IDB
    complete = sum(1 for end in bounds[first + 1 :] if end <= cut)
    whole = list(open_capture(io.BytesIO(raw)))
    assert got == whole[:complete]


@settings(max_examples=150, deadline=None)
@given(frames=frames_st, fmt=st.sampled_from([PcapWriter, PcapngWriter]), data=st.data())
def test_corruption_only_raises_pcap_error(frames, fmt, data) -> None:
    raw = bytearray(write(fmt, frames, data.draw(st.booleans()), 64))
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    try:
        with open_capture(io.BytesIO(bytes(raw))) as r:
            for f in r:
                assert isinstance(f.data, bytes) and f.ts_ns >= -(2**63) * 10**9
    except PcapError as exc:
        assert exc.offset is None or 0 <= exc.offset < len(raw)


@settings(max_examples=200, deadline=None)
@given(code=st.integers(0, 255), ticks=st.integers(0, 2**64 - 1))
def test_tsresol_conversion_is_exact_floor(code: int, ticks: int) -> None:
    units, num, den = _tsresol_ratio(code)
    exp = code & 0x7F
    assert units == (2 if code & 0x80 else 10) ** exp
    assert ticks * num // den == (Fraction(ticks, units) * 10**9).__floor__()
