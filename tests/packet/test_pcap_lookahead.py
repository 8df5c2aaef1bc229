"""The readers' look-ahead buffer and the classic writer's fast path change nothing
observable: the same frames, the same ``offset`` after each record, the same truncation
errors whatever size the underlying reads come in; and the writer's output for bytes,
bytearray and memoryview data (with and without a snap length) is byte-identical."""
from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.packet.pcap import PcapError, PcapngWriter, PcapWriter, open_capture

T0 = 1_700_000_000_000_000_000


class Chunked(io.RawIOBase):
    """A raw stream whose reads return the sizes given (cycled), like a pipe or socket."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data = memoryview(data)
        self._sizes = sizes
        self._i = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        k = self._sizes[self._i % len(self._sizes)]
        self._i += 1
        n = min(k, len(b), len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def _capture(writer: type, payloads: list[bytes]) -> bytes:
    buf = io.BytesIO()
    with writer(buf) as w:
        for i, p in enumerate(payloads):
            w.write(p, T0 + i * 1000)
    return buf.getvalue()


def _read_all(src) -> tuple[list, list[int]]:  # type: ignore[no-untyped-def]
    frames, offsets = [], []
    with open_capture(src) as rd:
        for fr in rd:
            frames.append(fr)
            offsets.append(rd.offset)
    return frames, offsets


payloads_st = st.lists(st.binary(min_size=0, max_size=300), min_size=0, max_size=30)


@settings(max_examples=60, deadline=None)
@given(payloads_st, st.lists(st.integers(1, 700), min_size=1, max_size=5),
       st.sampled_from([PcapWriter, PcapngWriter]))
def test_frames_and_offsets_do_not_depend_on_read_sizes(payloads, sizes, writer):
    raw = _capture(writer, payloads)
    want = _read_all(io.BytesIO(raw))
    assert [f.data for f in want[0]] == payloads
    assert want[1][-1:] == ([len(raw)] if payloads else [])
    assert _read_all(Chunked(raw, sizes)) == want


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=10),
       st.data())
def test_truncation_error_offset_is_the_cut_record(payloads, data):
    raw = _capture(PcapWriter, payloads)
    bounds = [24]
    for p in payloads:
        bounds.append(bounds[-1] + 16 + len(p))
    cut = data.draw(st.integers(25, len(raw) - 1))
    sizes = data.draw(st.lists(st.integers(1, 400), min_size=1, max_size=3))
    for src in (io.BytesIO(raw[:cut]), Chunked(raw[:cut], sizes)):
        got = []
        if cut in bounds:
            # a cut on a record boundary is a shorter, valid capture
            with open_capture(src) as rd:
                got = [fr.data for fr in rd]
            assert got == payloads[:bounds.index(cut)]
            continue
        with pytest.raises(PcapError) as ei:
            with open_capture(src) as rd:
                for fr in rd:
                    got.append(fr.data)
        start = max(b for b in bounds if b < cut)
        assert ei.value.offset == start
        assert got == payloads[:bounds.index(start)]


def test_reader_of_a_path_sees_what_was_written(tmp_path):
    path = tmp_path / "x.pcap"
    payloads = [bytes([i & 0xFF]) * (i * 37 % 1500) for i in range(3000)]
    with PcapWriter(path) as w:
        for i, p in enumerate(payloads):
            w.write(p, T0 + i)
    frames, offsets = _read_all(str(path))
    assert [f.data for f in frames] == payloads
    assert [f.ts_ns for f in frames] == [T0 + i for i in range(3000)]
    assert offsets[-1] == path.stat().st_size


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=200), st.integers(1, 300), st.booleans(),
       st.one_of(st.none(), st.integers(200, 400)))
def test_writer_output_does_not_depend_on_the_buffer_type(data, snaplen, nano, orig):
    outs = []
    for d in (data, bytearray(data), memoryview(data)):
        buf = io.BytesIO()
        with PcapWriter(buf, snaplen=snaplen, nanosecond=nano) as w:
            w.write(d, T0 + 123_456_789, orig_len=orig)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1] == outs[2]
    rec = outs[0][24:]
    cap = min(len(data), snaplen)
    assert int.from_bytes(rec[8:12], "little") == cap
    assert int.from_bytes(rec[12:16], "little") == (len(data) if orig is None else orig)
    assert rec[16:] == data[:cap]
