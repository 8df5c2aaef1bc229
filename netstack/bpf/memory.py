"""A checked 64-bit address space for the eBPF interpreter.

The kernel interpreter (kernel/bpf/core.c) dereferences raw pointers and
relies on the verifier for safety.  We run programs the verifier never saw,
so every access is checked here instead: memory is a set of *regions*
(context, packet, one stack per call frame, map values, test memory), each a
Python buffer, and a pointer is the integer ``region_id << 32 | offset``.

Pointers therefore stay ordinary 64-bit scalars -- programs may add, subtract,
compare and even store them, as on the real machine -- but a load or store
resolves the region from the high 32 bits and bounds-checks the low 32 bits.
Anything outside a mapped region (NULL, freed, out of range, wrapped) raises
:class:`BpfRuntimeError`; no Python object outside the region buffers is ever
written.  Region 0 is never mapped, so NULL and small integers always fault.
"""
from __future__ import annotations

import struct
from typing import Any, Callable

from .errors import BpfRuntimeError

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_STRUCTS = {1: _U8, 2: _U16, 4: _U32, 8: _U64}
_OFF_MASK = 0xFFFFFFFF

Loader = Callable[[int], int]
Storer = Callable[[int, int], None]


class SpecialRegion:
    """A region whose loads and stores are computed rather than read from bytes.

    The kernel verifier rewrites context accesses (``convert_ctx_access``), so
    e.g. a 4-byte load of ``xdp_md.data`` yields a 64-bit packet pointer.  A
    region mapped with :meth:`AddressSpace.map_special` is backed by an empty
    buffer, so the fast path's bounds check always fails and the access falls
    through to :meth:`load` / :meth:`store` here: ordinary regions pay nothing.
    """

    def load(self, off: int, size: int) -> int:
        raise BpfRuntimeError(f"invalid read of {size} bytes at offset {off}")

    def store(self, off: int, size: int, value: int) -> None:
        raise BpfRuntimeError(f"invalid write of {size} bytes at offset {off}")


class AddressSpace:
    """Regions addressed as ``id << 32 | offset``; see the module docstring."""

    def __init__(self) -> None:
        # Parallel lists indexed by region id; index 0 is the unmapped NULL page.
        self.bufs: list[Any] = [None]
        self.writable: list[bool] = [False]
        self.names: list[str] = ["null"]
        self.objects: list[object] = [None]
        self._pinned = 1
        self.special: dict[int, SpecialRegion] = {}
        self.load: dict[int, Loader] = {n: self._make_loader(n) for n in _STRUCTS}
        self.store: dict[int, Storer] = {n: self._make_storer(n) for n in _STRUCTS}

    # --- mapping -----------------------------------------------------------------
    def map(self, buf: bytearray | bytes | memoryview, *, writable: bool | None = None, name: str = "",
            obj: object = None) -> int:
        """Map ``buf`` and return its base address.  ``bytes`` are read-only."""
        if len(buf) > _OFF_MASK:
            raise BpfRuntimeError(f"region {name!r} larger than 4 GiB")
        if writable is None:
            writable = not isinstance(buf, bytes)
        if writable and isinstance(buf, bytes):
            raise BpfRuntimeError(f"region {name!r}: bytes cannot be mapped writable")
        self.bufs.append(buf)
        self.writable.append(writable)
        self.names.append(name)
        self.objects.append(obj)
        return (len(self.bufs) - 1) << 32

    def map_special(self, handler: SpecialRegion, *, name: str = "", obj: object = None) -> int:
        """Map a :class:`SpecialRegion` (a program context) and return its base address."""
        base = self.map(b"", writable=False, name=name, obj=obj if obj is not None else handler)
        self.special[base >> 32] = handler
        return base

    def pin(self) -> None:
        """Make the regions mapped so far survive :meth:`reset` (the VM's stacks)."""
        self._pinned = len(self.bufs)

    def reset(self) -> None:
        """Unmap every region mapped after :meth:`pin`, between program runs."""
        del self.bufs[self._pinned:], self.writable[self._pinned:]
        del self.names[self._pinned:], self.objects[self._pinned:]
        for rid in [r for r in self.special if r >= self._pinned]:
            del self.special[rid]

    def replace(self, base: int, buf: bytearray) -> None:
        """Swap the buffer behind an existing region (used to give a call frame a fresh stack)."""
        self.bufs[base >> 32] = buf

    def object_at(self, addr: int) -> object:
        """The Python object registered with the region ``addr`` points into (maps, ctx)."""
        rid = addr >> 32
        if 0 < rid < len(self.bufs) and self.objects[rid] is not None:
            return self.objects[rid]
        raise BpfRuntimeError(f"0x{addr:x} is not a pointer to a known object")

    # --- access --------------------------------------------------------------------
    def _fault(self, kind: str, addr: int, size: int) -> BpfRuntimeError:
        rid = addr >> 32
        where = self.names[rid] if 0 < rid < len(self.names) else "unmapped"
        return BpfRuntimeError(f"invalid {kind} of {size} bytes at 0x{addr:x} ({where})")

    def _make_loader(self, size: int) -> Loader:
        bufs = self.bufs
        unpack = _STRUCTS[size].unpack_from

        def load(addr: int) -> int:
            rid = addr >> 32
            if 0 < rid < len(bufs):
                buf = bufs[rid]
                off = addr & _OFF_MASK
                if off + size <= len(buf):
                    return unpack(buf, off)[0]
                handler = self.special.get(rid)
                if handler is not None:
                    return handler.load(off, size)
            raise self._fault("read", addr, size)

        return load

    def _make_storer(self, size: int) -> Storer:
        bufs, writable = self.bufs, self.writable
        pack = _STRUCTS[size].pack_into
        mask = (1 << (8 * size)) - 1

        def store(addr: int, value: int) -> None:
            rid = addr >> 32
            if 0 < rid < len(bufs) and writable[rid]:
                buf = bufs[rid]
                off = addr & _OFF_MASK
                if off + size <= len(buf):
                    pack(buf, off, value & mask)
                    return
            handler = self.special.get(rid)
            if handler is not None:
                handler.store(addr & _OFF_MASK, size, value & mask)
                return
            raise self._fault("write", addr, size)

        return store

    def read_bytes(self, addr: int, n: int) -> bytes:
        """Copy ``n`` bytes out (for helpers such as map lookups)."""
        rid, off = addr >> 32, addr & _OFF_MASK
        if n >= 0 and 0 < rid < len(self.bufs) and off + n <= len(self.bufs[rid]):
            return bytes(self.bufs[rid][off:off + n])
        raise self._fault("read", addr, n)

    def write_bytes(self, addr: int, data: bytes) -> None:
        """Copy ``data`` in (for helpers that fill program memory)."""
        rid, off = addr >> 32, addr & _OFF_MASK
        if 0 < rid < len(self.bufs) and self.writable[rid] and off + len(data) <= len(self.bufs[rid]):
            self.bufs[rid][off:off + len(data)] = data
            return
        raise self._fault("write", addr, len(data))
