"""A thin ctypes binding of bpf(2), used as the oracle in differential tests.

Only the commands the tests need: MAP_CREATE, MAP_LOOKUP/UPDATE/DELETE_ELEM,
MAP_GET_NEXT_KEY, PROG_LOAD (with a verifier log buffer) and PROG_TEST_RUN,
plus mmap of a ring buffer map.  The ``union bpf_attr`` layouts are those of
include/uapi/linux/bpf.h; each command's struct is packed by hand with
:mod:`struct` so no header is needed.  Every failure is a :class:`KernelBpfError`
carrying the errno, so a test can compare it with the model's errno.

This module never runs unless a caller asks for it; importing it has no side
effects (it only looks up ``syscall`` in libc lazily).
"""
from __future__ import annotations

import ctypes
import mmap
import os
import platform
import struct
from typing import Sequence

from .errors import BpfError
from .insn import Insn, encode

# bpf(2) command numbers (enum bpf_cmd).
BPF_MAP_CREATE = 0
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_PROG_LOAD = 5
BPF_PROG_TEST_RUN = 10

_SYSCALL_NR = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
_ATTR_SIZE = 160  # large enough for every command used here; the kernel checks the tail is zero


class KernelBpfError(BpfError):
    """bpf(2) failed with ``errno``; ``log`` is the verifier log for PROG_LOAD."""

    def __init__(self, cmd: int, errno_: int, log: str = "") -> None:
        super().__init__(f"bpf(cmd={cmd}) failed: {os.strerror(errno_)} (errno {errno_})"
                         + (f"\n{log}" if log else ""))
        self.errno = errno_
        self.log = log


_libc: ctypes.CDLL | None = None


def _sys_bpf(cmd: int, attr: ctypes.Array) -> int:  # type: ignore[type-arg]
    global _libc
    nr = _SYSCALL_NR.get(platform.machine())
    if nr is None:
        raise KernelBpfError(cmd, 38)  # ENOSYS
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    ret = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), attr, ctypes.c_uint(_ATTR_SIZE))
    if ret < 0:
        raise KernelBpfError(cmd, ctypes.get_errno())
    return int(ret)


def _attr(layout: bytes) -> ctypes.Array:  # type: ignore[type-arg]
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    ctypes.memmove(buf, layout, len(layout))
    return buf


def _ptr(buf: ctypes.Array | None) -> int:  # type: ignore[type-arg]
    return 0 if buf is None else ctypes.addressof(buf)


def possible_cpus() -> int:
    """``num_possible_cpus()`` from /sys/devices/system/cpu/possible (per-CPU value layout)."""
    try:
        text = open("/sys/devices/system/cpu/possible").read().strip()
    except OSError:
        return os.cpu_count() or 1
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n += (int(hi) if hi else int(lo)) - int(lo) + 1
    return n


class KMap:
    """A kernel map (an fd) with bytes in / bytes out element operations."""

    def __init__(self, map_type: int, key_size: int, value_size: int, max_entries: int,
                 map_flags: int = 0) -> None:
        # struct { u32 map_type, key_size, value_size, max_entries, map_flags, inner_map_fd, numa_node; ... }
        attr = _attr(struct.pack("<7I", map_type, key_size, value_size, max_entries, map_flags, 0, 0))
        self.fd = _sys_bpf(BPF_MAP_CREATE, attr)
        self.map_type, self.key_size, self.value_size = map_type, key_size, value_size
        self.max_entries, self.map_flags = max_entries, map_flags

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "KMap":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _elem(self, cmd: int, key: bytes | None, value: ctypes.Array | None, flags: int = 0) -> None:  # type: ignore[type-arg]
        kbuf = None if key is None else ctypes.create_string_buffer(bytes(key), max(len(key), 1))
        # struct { u32 map_fd; u32 pad; u64 key; u64 value_or_next_key; u64 flags; }
        attr = _attr(struct.pack("<IIQQQ", self.fd, 0, _ptr(kbuf), _ptr(value), flags))
        _sys_bpf(cmd, attr)

    def lookup(self, key: bytes, value_len: int | None = None) -> bytes:
        out = ctypes.create_string_buffer(value_len if value_len is not None else max(self.value_size, 1))
        self._elem(BPF_MAP_LOOKUP_ELEM, key, out)
        return out.raw

    def update(self, key: bytes, value: bytes, flags: int = 0) -> None:
        self._elem(BPF_MAP_UPDATE_ELEM, key, ctypes.create_string_buffer(bytes(value), max(len(value), 1)), flags)

    def delete(self, key: bytes) -> None:
        self._elem(BPF_MAP_DELETE_ELEM, key, None)

    def get_next_key(self, key: bytes | None) -> bytes:
        out = ctypes.create_string_buffer(max(self.key_size, 1))
        self._elem(BPF_MAP_GET_NEXT_KEY, key, out)
        return out.raw[:self.key_size]

    def mmap_ringbuf(self) -> tuple[mmap.mmap, mmap.mmap]:
        """Map a ringbuf the way libbpf does: consumer page (rw), then producer page + 2x data (ro)."""
        page = mmap.PAGESIZE
        cons = mmap.mmap(self.fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        prod = mmap.mmap(self.fd, page + 2 * self.max_entries, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        return cons, prod


class KProg:
    """A loaded kernel program (fd) with its verifier log."""

    def __init__(self, prog_type: int, insns: Sequence[Insn] | bytes, license: str = "GPL",
                 log_level: int = 1, log_size: int = 1 << 16) -> None:
        code = insns if isinstance(insns, (bytes, bytearray)) else encode(list(insns))
        self._code = ctypes.create_string_buffer(bytes(code), len(code))
        self._lic = ctypes.create_string_buffer(license.encode())
        self._log = ctypes.create_string_buffer(log_size)
        # struct { u32 prog_type, insn_cnt; u64 insns, license; u32 log_level, log_size; u64 log_buf;
        #          u32 kern_version, prog_flags; ... }
        attr = _attr(struct.pack("<IIQQIIQII", prog_type, len(code) // 8, _ptr(self._code), _ptr(self._lic),
                                 log_level, log_size, _ptr(self._log), 0, 0))
        try:
            self.fd = _sys_bpf(BPF_PROG_LOAD, attr)
        except KernelBpfError as exc:
            raise KernelBpfError(BPF_PROG_LOAD, exc.errno, self._log.value.decode(errors="replace")) from None
        self.log = self._log.value.decode(errors="replace")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "KProg":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def test_run(self, data: bytes, repeat: int = 1, ctx: bytes | None = None, ctx_out_size: int = 0,
                 data_out_size: int | None = None) -> tuple[int, bytes, int, bytes]:
        """BPF_PROG_TEST_RUN: (retval, data_out, duration, ctx_out)."""
        din = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
        out_size = max(len(data) + 512, 4096) if data_out_size is None else data_out_size
        dout = ctypes.create_string_buffer(max(out_size, 1))
        cin = None if ctx is None else ctypes.create_string_buffer(bytes(ctx), max(len(ctx), 1))
        cout = ctypes.create_string_buffer(max(ctx_out_size, 1)) if ctx_out_size else None
        # struct { u32 prog_fd, retval, data_size_in, data_size_out; u64 data_in, data_out;
        #          u32 repeat, duration, ctx_size_in, ctx_size_out; u64 ctx_in, ctx_out; u32 flags, cpu, batch_size; }
        layout = struct.pack("<IIIIQQIIIIQQIII", self.fd, 0, len(data), out_size, _ptr(din), _ptr(dout),
                             repeat, 0, 0 if ctx is None else len(ctx), ctx_out_size, _ptr(cin), _ptr(cout),
                             0, 0, 0)
        attr = _attr(layout)
        _sys_bpf(BPF_PROG_TEST_RUN, attr)
        raw = bytes(attr)[:len(layout)]
        _fd, retval, _, size_out = struct.unpack_from("<IIII", raw, 0)
        duration = struct.unpack_from("<I", raw, 36)[0]
        ctx_size_out = struct.unpack_from("<I", raw, 44)[0]
        return retval, dout.raw[:size_out], duration, (cout.raw[:ctx_size_out] if cout is not None else b"")


def available() -> str | None:
    """None if bpf(2) map creation works here, else the reason it does not."""
    if platform.machine() not in _SYSCALL_NR:
        return f"bpf(2) syscall number unknown for {platform.machine()}"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "not root"
    try:
        KMap(2, 4, 4, 1).close()
    except KernelBpfError as exc:
        return f"bpf(BPF_MAP_CREATE) refused: {os.strerror(exc.errno)}"
    except OSError as exc:
        return f"bpf(2) unavailable: {exc}"
    return None
