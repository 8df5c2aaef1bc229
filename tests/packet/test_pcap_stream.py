"""Streaming behaviour (bounded memory, short-read streams, pipes) and, when the
Wireshark tools are installed, that they read the files we write."""

from __future__ import annotations

import io
import os
import pathlib
import shutil
import subprocess
import threading
import tracemalloc

import pytest

from netstack.packet.pcap import (
    LINKTYPE_EN10MB,
    LINKTYPE_RAW,
    PcapngWriter,
    PcapWriter,
    open_capture,
)

T0 = 1_700_000_000_123_456_789
# tracemalloc makes reading ~6x slower; pcapng (slower per block) gets fewer
# records to keep the suite fast, yet still a file several times the bound.
N_RECORDS = {PcapWriter: 200_000, PcapngWriter: 80_000}


def _peak_while_reading(path: pathlib.Path) -> tuple[int, int, int]:
    """Iterate the whole file under tracemalloc: (frames, sum of lengths, peak bytes)."""
    count = total = 0
    tracemalloc.start()
    try:
        with open_capture(path) as r:
            for frame in r:
                count += 1
                total += len(frame.data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, total, peak


@pytest.mark.parametrize("writer", [PcapWriter, PcapngWriter])
def test_reader_memory_is_bounded_by_one_record(tmp_path: pathlib.Path, writer: type) -> None:
    path = tmp_path / "big.cap"
    payload = bytes(range(64))
    n = N_RECORDS[writer]
    with writer(path) as w:
        for i in range(n):
            w.write(payload, T0 + i)
    size = path.stat().st_size
    assert size > 7_000_000
    count, total, peak = _peak_while_reading(path)
    assert (count, total) == (n, n * len(payload))
    # One read buffer (1 MiB) plus a record: far below the multi-megabyte file.
    assert peak < 1_500_000 < size // 4, (peak, size)


class Trickle(io.RawIOBase):
    """A raw stream that returns at most 3 bytes per read, like a slow pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        n = min(3, len(b), len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("writer", [PcapWriter, PcapngWriter])
def test_short_reads_are_reassembled(writer: type) -> None:
    buf = io.BytesIO()
    with writer(buf, linktype=LINKTYPE_RAW) as w:
        for i in range(50):
            w.write(b"\x45" * (20 + i), T0 + i)
    buf.seek(0)
    want = list(open_capture(buf))
    trickle = Trickle(buf.getvalue())
    got = list(open_capture(trickle))
    assert got == want and len(got) == 50


def test_reads_from_a_pipe_without_seeking() -> None:
    rfd, wfd = os.pipe()
    with os.fdopen(wfd, "wb") as wf, os.fdopen(rfd, "rb") as rf:
        def produce() -> None:
            with PcapngWriter(wf) as w:
                for i in range(2000):
                    w.write(i.to_bytes(4, "big") * 10, T0 + i)
            wf.close()

        t = threading.Thread(target=produce)
        t.start()
        frames = list(open_capture(rf))
        t.join()
    assert len(frames) == 2000
    assert frames[-1].data == (1999).to_bytes(4, "big") * 10 and frames[-1].ts_ns == T0 + 1999


# ----------------------------------------------------------------------------- wireshark tools


def _write_samples(tmp_path: pathlib.Path) -> list[pathlib.Path]:
    pcap = tmp_path / "ns.pcap"
    with PcapWriter(pcap, linktype=LINKTYPE_EN10MB) as w:
        for i in range(7):
            w.write(b"\xff" * 6 + b"\x02" * 6 + b"\x08\x00" + b"\0" * 46, T0 + i * 1000)
    pcapng = tmp_path / "ns.pcapng"
    with PcapngWriter(pcapng, linktype=LINKTYPE_EN10MB, if_name="veth0") as w:
        raw = w.add_interface(LINKTYPE_RAW)
        for i in range(7):
            w.write(b"\x45" + b"\0" * 19, T0 + i * 1000, ifindex=raw if i % 2 else 0)
    return [pcap, pcapng]


FIRST_TS = f"{T0 // 10**9}.{T0 % 10**9:09d}"


def test_tshark_reads_our_files(tmp_path: pathlib.Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark not installed: cannot cross-check our files with Wireshark")
    for path in _write_samples(tmp_path):
        out = subprocess.run(
            [tshark, "-n", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.split()
        assert len(out) == 7, (path, out)
        assert out[0] == FIRST_TS


def test_capinfos_reads_our_files(tmp_path: pathlib.Path) -> None:
    capinfos = shutil.which("capinfos")
    if capinfos is None:
        pytest.skip("capinfos not installed: cannot cross-check our files with Wireshark")
    paths = _write_samples(tmp_path)
    out = subprocess.run(
        [capinfos, "-T", "-r", "-M", "-c", "-a", "-S", *map(str, paths)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()
    assert out == [f"{p}\t7\t{FIRST_TS}" for p in paths]
