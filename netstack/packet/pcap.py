"""Streamed reading and writing of classic pcap and pcapng capture files.

Why this module exists: the dataplane is tested by feeding it the same frames the
kernel saw (``tcpdump -w`` output, AF_PACKET captures) and by writing what it
emits in a form ``tshark``/``tcpdump`` can diff against the kernel's own capture
(see /work/shared/reference/kernel-as-oracle.md).  Captures can be very large,
so everything here is *streamed*: a reader holds one record (one pcapng block)
at a time and a writer holds at most one output buffer, whatever the file size.

Formats reproduced:

* classic pcap, as written by libpcap's ``pcap_dump`` and by the kernel-side
  tools (draft-ietf-opsawg-pcap): microsecond magic 0xa1b2c3d4 and nanosecond
  magic 0xa1b23c4d, in either byte order, version 2.4 (2.3 is identical);
* pcapng (draft-ietf-opsawg-pcapng): Section Header Block, Interface
  Description Block (``if_tsresol`` as power of 10 or of 2, ``if_tsoffset``),
  Enhanced Packet Block, Simple Packet Block and the obsolete Packet Block;
  several sections, each in its own byte order, each with several interfaces;
  every other block type is skipped (its framing is still checked).

Malformed input never escapes as ``struct.error``/``IndexError``: every defect
is a :class:`PcapError` naming the file and the byte offset of the offending
header, so a caller feeding the datapath can turn it into a counted drop.
"""

from __future__ import annotations

import os
import struct
from enum import IntEnum
from types import TracebackType
from typing import BinaryIO, NamedTuple, Self, Union

__all__ = [
    "LinkType",
    "LINKTYPE_EN10MB",
    "LINKTYPE_RAW",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "PcapError",
    "PcapUnsupported",
    "CapturedFrame",
    "InterfaceInfo",
    "CaptureReader",
    "PcapReader",
    "PcapngReader",
    "PcapWriter",
    "PcapngWriter",
    "open_capture",
    "MAX_RECORD_LEN",
]


class LinkType(IntEnum):
    """LINKTYPE_* values (tcpdump.org link-layer header types registry).

    Only the types the netstack datapath produces or consumes are named; any
    other 16-bit value is still read and written verbatim as a plain ``int``.
    """

    EN10MB = 1  # Ethernet II / 802.3 (kernel ARPHRD_ETHER)
    RAW = 101  # raw IPv4 or IPv6, version nibble decides (tun devices)
    LINUX_SLL = 113  # Linux "cooked" capture v1 (AF_PACKET on "any")
    IPV4 = 228  # raw IPv4 only
    IPV6 = 229  # raw IPv6 only
    LINUX_SLL2 = 276  # Linux "cooked" capture v2 (carries ifindex)


LINKTYPE_EN10MB = LinkType.EN10MB
LINKTYPE_RAW = LinkType.RAW
LINKTYPE_LINUX_SLL = LinkType.LINUX_SLL
LINKTYPE_LINUX_SLL2 = LinkType.LINUX_SLL2
LINKTYPE_IPV4 = LinkType.IPV4
LINKTYPE_IPV6 = LinkType.IPV6

#: Largest captured length accepted for one record/block.  libpcap's largest
#: per-linktype maximum snapshot length is 128 MiB (DLT_DBUS); anything beyond
#: it is a corrupt length field, and refusing it keeps a bogus header from
#: making the reader buffer an arbitrary part of a huge file.
MAX_RECORD_LEN = 128 * 1024 * 1024

_READ_CHUNK = 1 << 20  # largest single read(); bigger payloads are read in pieces
_LOOKAHEAD = 1 << 16  # readers keep at most this much read ahead of the parser
_WRITE_FLUSH = 1 << 18  # writers hand the OS at least this much at a time

PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]


# --------------------------------------------------------------------------- errors


class PcapError(Exception):
    """A capture file cannot be opened or is malformed.

    ``source`` names the file (path, or the file object's ``name``),
    ``offset`` is the byte offset of the header found wanting (``None`` when the
    file could not be opened at all) and ``reason`` is the bare description.
    """

    def __init__(self, source: str, offset: int | None, reason: str) -> None:
        self.source = source
        self.offset = offset
        self.reason = reason
        where = "" if offset is None else f" at offset {offset}"
        super().__init__(f"{source}: {reason}{where}")


class PcapUnsupported(PcapError):
    """A well-formed capture uses a format variant this module does not read."""

    def __init__(self, source: str, offset: int | None, reason: str) -> None:
        super().__init__(source, offset, f"not supported: {reason}")


# --------------------------------------------------------------------------- records


class CapturedFrame(NamedTuple):
    """One captured packet as stored in the file.

    ``ts_ns`` is nanoseconds since the Unix epoch (pcapng ``if_tsoffset``
    already applied), ``data`` the captured bytes (possibly cut to the snap
    length), ``orig_len`` the length on the wire, ``ifindex`` the capture
    interface: always 0 for classic pcap; for pcapng the file-wide ordinal of
    the Interface Description Block (IDBs of the 2nd section are numbered after
    those of the 1st, as Wireshark's ``frame.interface_id`` does).
    """

    ts_ns: int
    data: bytes
    linktype: int
    orig_len: int
    ifindex: int


class InterfaceInfo(NamedTuple):
    """An interface declared by a pcapng IDB (or the implicit one of a pcap file).

    ``ts_units_per_s`` is the timestamp resolution as ticks per second (10**n or
    2**n from ``if_tsresol``; 10**6 when absent, per the pcapng draft);
    ``tsoffset_s`` is ``if_tsoffset`` in seconds; ``snaplen`` 0 means unlimited.
    """

    ifindex: int
    section: int
    local_id: int
    linktype: int
    snaplen: int
    ts_units_per_s: int
    tsoffset_s: int
    name: str | None


# --------------------------------------------------------------------------- input


class _Source:
    """A binary stream that counts the bytes consumed, for error offsets.

    Works on non-seekable streams (pipes, sockets): offsets are counted, never
    asked of the file.  Loops on short reads so raw (unbuffered) files work.

    Reads go through one bounded look-ahead buffer (at most :data:`_LOOKAHEAD` bytes
    beyond what was asked, taken with ``read1`` where the stream has it so a pipe is
    never waited on for more than it has): a record is then two slices of that buffer
    instead of two calls into the file object, which is what per-packet replay costs.
    """

    __slots__ = ("f", "name", "offset", "owned", "buf", "pos", "_read")

    def __init__(self, f: BinaryIO, name: str, owned: bool) -> None:
        self.f = f
        self.name = name
        self.offset = 0
        self.owned = owned
        #: look-ahead: bytes read from ``f`` and not yet consumed start at ``pos``
        self.buf = b""
        self.pos = 0
        read1 = getattr(f, "read1", None)
        self._read = read1 if read1 is not None else f.read

    def read_upto(self, n: int) -> bytes:
        """Return exactly ``n`` bytes, or fewer only at end of file."""
        pos = self.pos
        end = pos + n
        buf = self.buf
        if end <= len(buf):
            self.pos = end
            self.offset += n
            return buf[pos:end]
        return self._read_slow(n)

    def _read_slow(self, n: int) -> bytes:
        """Take what is buffered and read on until ``n`` bytes (or end of file), keeping
        up to :data:`_LOOKAHEAD` bytes beyond them for the next reads."""
        parts = [self.buf[self.pos:]] if self.pos < len(self.buf) else []
        got = len(parts[0]) if parts else 0
        self.buf = b""
        self.pos = 0
        while got < n:
            more = self._read(min(max(n - got, _LOOKAHEAD), _READ_CHUNK))
            if more is None:
                if parts:
                    self.buf = b"".join(parts)
                raise PcapError(self.name, self.offset, "non-blocking stream has no data ready")
            if not isinstance(more, (bytes, bytearray)):
                raise TypeError(f"{self.name}: capture files must be opened in binary mode")
            if not more:
                break
            parts.append(bytes(more))
            got += len(more)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if got > n:
            self.buf = data
            self.pos = n
            data = data[:n]
        self.offset += len(data)
        return data

    def read_exact(self, n: int, what: str, start: int) -> bytes:
        """Read ``n`` bytes of ``what``; a short read is a truncation error at ``start``."""
        data = self.read_upto(n)
        if len(data) != n:
            raise PcapError(
                self.name, start, f"truncated {what}: need {n} bytes, file has {len(data)}"
            )
        return data

    def skip(self, n: int, what: str, start: int) -> None:
        """Discard ``n`` bytes in bounded chunks (no whole-block buffering)."""
        left = n
        while left:
            got = len(self.read_upto(min(left, _READ_CHUNK)))
            if got == 0:
                raise PcapError(
                    self.name, start, f"truncated {what}: need {n} bytes, file has {n - left}"
                )
            left -= got

    def close(self) -> None:
        if self.owned:
            self.f.close()


def _open_source(path_or_file: PathOrFile) -> _Source:
    if isinstance(path_or_file, (str, os.PathLike)):
        name = os.fspath(path_or_file)
        try:
            # unbuffered: _Source does its own (bounded) look-ahead
            f = open(name, "rb", buffering=0)  # noqa: SIM115 - closed by reader
        except OSError as exc:
            raise PcapError(name, None, f"cannot open capture file: {exc.strerror or exc}") from exc
        return _Source(f, name, owned=True)
    if not hasattr(path_or_file, "read"):
        raise TypeError(f"expected a path or a binary file object, got {type(path_or_file)!r}")
    name = getattr(path_or_file, "name", None)
    return _Source(path_or_file, str(name) if name is not None else "<stream>", owned=False)


class CaptureReader:
    """Base of the streamed readers: an iterator of :class:`CapturedFrame`.

    Single pass: iterating twice continues where the first loop stopped.
    A context manager; closes the file only if it opened it (given a path).
    """

    format: str = ""

    def __init__(self, src: _Source) -> None:
        self._src = src
        self._closed = False
        self._error: PcapError | None = None

    @property
    def name(self) -> str:
        """The file's path, or the file object's ``name``."""
        return self._src.name

    @property
    def offset(self) -> int:
        """Bytes consumed so far (the offset of the next record or block)."""
        return self._src.offset

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> CapturedFrame:
        if self._closed:
            raise ValueError(f"{self.name}: read from a closed capture reader")
        if self._error is not None:
            # The stream is now positioned inside a broken record: parsing on
            # would misread payload as headers, so the first error is final.
            raise self._error
        try:
            return self._next_frame()
        except PcapError as exc:
            self._error = exc
            raise

    def _next_frame(self) -> CapturedFrame:
        raise NotImplementedError  # every concrete reader overrides it

    def close(self) -> None:
        """Release the file (if the reader opened it); further reads fail."""
        if not self._closed:
            self._closed = True
            self._src.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------- classic pcap

_PCAP_MAGICS: dict[bytes, tuple[str, bool]] = {
    # file bytes -> (struct byte-order prefix, nanosecond timestamps)
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}
# Kuznetzov's "modified" pcap (24-byte record headers, old Red Hat tcpdump).
_PCAP_MODIFIED_MAGICS = (b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34")
_PCAP_REC_LEN = 16
_new_tuple = tuple.__new__
_LT_FCS_PRESENT = 0x04000000  # draft-ietf-opsawg-pcap: "P" bit of the LinkType field


class PcapReader(CaptureReader):
    """Reader for classic pcap (obtain one with :func:`open_capture`).

    Attributes from the file header: ``linktype``, ``snaplen``, ``nanosecond``,
    ``byteorder`` ("little"/"big"), ``version`` (major, minor) and ``fcs_len``
    (bytes of FCS on each frame when the header announces it, else ``None``).
    ``thiszone``/``sigfigs`` are ignored, as libpcap does (they are always 0).
    """

    format = "pcap"

    def __init__(self, src: _Source, magic: bytes) -> None:
        super().__init__(src)
        order, self.nanosecond = _PCAP_MAGICS[magic]
        self.byteorder = "little" if order == "<" else "big"
        rest = src.read_exact(20, "pcap file header", 0)
        major, minor, _zone, _sigfigs, snaplen, network = struct.unpack(order + "HHiIII", rest)
        # libpcap (sf-pcap.c) refuses major versions other than 2; versions
        # before 2.3 stored caplen/len swapped and are not produced since 1996.
        if major != 2 or minor < 3:
            raise PcapUnsupported(src.name, 4, f"pcap version {major}.{minor} (want 2.3 or 2.4)")
        self.version = (major, minor)
        self.snaplen = snaplen
        self.linktype = network & 0xFFFF
        self.fcs_len: int | None = (
            ((network >> 28) & 0xF) * 2 if network & _LT_FCS_PRESENT else None
        )
        self._rec = struct.Struct(order + "IIII")
        self._frac_ns = 1 if self.nanosecond else 1000

    @property
    def interfaces(self) -> list[InterfaceInfo]:
        """The single implicit interface of a classic pcap file."""
        units = 10**9 if self.nanosecond else 10**6
        return [InterfaceInfo(0, 0, 0, self.linktype, self.snaplen, units, 0, None)]

    def _next_frame(self) -> CapturedFrame:
        src = self._src
        buf = src.buf
        pos = src.pos
        if pos + _PCAP_REC_LEN <= len(buf):
            # Fast path: the whole record is in the look-ahead buffer.
            sec, frac, caplen, orig_len = self._rec.unpack_from(buf, pos)
            end = pos + _PCAP_REC_LEN + caplen
            if end <= len(buf) and caplen <= MAX_RECORD_LEN:
                src.pos = end
                src.offset += _PCAP_REC_LEN + caplen
                # tuple.__new__ builds the same CapturedFrame without the NamedTuple's
                # Python-level __new__ (a third of a replayed frame's reading cost).
                return _new_tuple(CapturedFrame, (sec * 1_000_000_000 + frac * self._frac_ns,
                                  buf[pos + _PCAP_REC_LEN:end], self.linktype, orig_len, 0))
        start = src.offset
        hdr = src.read_upto(_PCAP_REC_LEN)
        if len(hdr) != _PCAP_REC_LEN:
            if not hdr:
                raise StopIteration
            raise PcapError(
                src.name, start, f"truncated record header: need 16 bytes, file has {len(hdr)}"
            )
        sec, frac, caplen, orig_len = self._rec.unpack(hdr)
        if caplen > MAX_RECORD_LEN:
            raise PcapError(
                src.name, start, f"record captured length {caplen} exceeds {MAX_RECORD_LEN}"
            )
        data = src.read_exact(caplen, "packet data of record", start)
        return CapturedFrame(
            sec * 1_000_000_000 + frac * self._frac_ns, data, self.linktype, orig_len, 0
        )


# --------------------------------------------------------------------------- pcapng

_SHB_TYPE = b"\x0a\x0d\x0d\x0a"  # palindromic: readable before the byte order is known
_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"
_BT_IDB = 0x00000001
_BT_PB = 0x00000002  # obsolete Packet Block
_BT_SPB = 0x00000003
_BT_EPB = 0x00000006
_OPT_ENDOFOPT = 0
_OPT_SHB_USERAPPL = 4
_OPT_IF_NAME = 2
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14
_SHB_MIN_LEN = 28
_IDB_MIN_BODY = 8
_EPB_FIXED = 20  # interface id, ts high, ts low, captured len, original len
_PB_FIXED = 20  # interface id (16), drops (16), ts high, ts low, captured len, original len
_SPB_FIXED = 4  # original len


class _Iface:
    """Per-interface state a section needs to decode packet blocks quickly."""

    __slots__ = ("info", "num", "den", "offset_ns")

    def __init__(self, info: InterfaceInfo, num: int, den: int) -> None:
        self.info = info
        self.num = num  # ns = ticks * num // den + offset_ns
        self.den = den
        self.offset_ns = info.tsoffset_s * 1_000_000_000

    def ts_ns(self, ticks: int) -> int:
        if self.den == 1:
            return ticks * self.num + self.offset_ns
        return ticks * self.num // self.den + self.offset_ns


def _tsresol_ratio(code: int) -> tuple[int, int, int]:
    """Decode ``if_tsresol``: (units per second, ns numerator, ns denominator).

    MSB clear: resolution 10**-n s; MSB set: 2**-n s (pcapng draft, if_tsresol).
    Conversion to ns floors, which for 10**-n with n <= 9 is exact.
    """
    exp = code & 0x7F
    units = (2 if code & 0x80 else 10) ** exp
    if units <= 10**9 and 10**9 % units == 0:
        return units, 10**9 // units, 1
    return units, 10**9, units


class PcapngReader(CaptureReader):
    """Reader for pcapng (obtain one with :func:`open_capture`).

    ``interfaces`` lists every IDB seen so far (file-wide ``ifindex`` order);
    ``sections`` counts the Section Header Blocks seen; ``byteorder`` is the
    current section's byte order.  Blocks other than SHB/IDB/EPB/SPB/PB are
    skipped after their framing (length fields) is checked.
    """

    format = "pcapng"

    def __init__(self, src: _Source, magic: bytes) -> None:
        super().__init__(src)
        self.interfaces: list[InterfaceInfo] = []
        self.sections = 0
        self.byteorder = "little"
        self._order = "<"
        self._hdr = struct.Struct("<II")
        self._u32 = struct.Struct("<I")
        self._epb = struct.Struct("<IIIII")
        self._section: list[_Iface] = []
        self._read_shb_from(magic + src.read_exact(4, "section header block", 0), 0)

    # -- framing -----------------------------------------------------------

    def _read_body(self, blen: int, what: str, start: int) -> bytes:
        """Read the rest of a block (body and trailing length) and check the trailer.

        Returns the body *with* its 4 trailing length bytes, so that the hot
        packet path can slice the payload without copying the body first;
        callers treat ``len(raw) - 4`` as the end of the body.
        """
        src = self._src
        raw = src.read_exact(blen - 8, what, start)
        (trailer,) = self._u32.unpack_from(raw, blen - 12)
        if trailer != blen:
            raise PcapError(
                src.name, start, f"block length mismatch: header says {blen}, trailer {trailer}"
            )
        return raw

    def _skip_block(self, blen: int, btype: int, start: int) -> None:
        src = self._src
        what = f"block of type 0x{btype:08x}"
        src.skip(blen - 12, what, start)
        (trailer,) = self._u32.unpack(src.read_exact(4, what, start))
        if trailer != blen:
            raise PcapError(
                src.name, start, f"block length mismatch: header says {blen}, trailer {trailer}"
            )

    # -- blocks ------------------------------------------------------------

    def _parse_idb(self, body: bytes, start: int) -> None:
        name = self._src.name
        if len(body) < _IDB_MIN_BODY:
            raise PcapError(name, start, f"interface description block too short ({len(body)})")
        linktype, _reserved, snaplen = struct.unpack_from(self._order + "HHI", body, 0)
        units, num, den = 10**6, 1000, 1
        tsoffset = 0
        if_name: str | None = None
        for code, value in self._options(body, _IDB_MIN_BODY, start):
            if code == _OPT_IF_TSRESOL:
                if len(value) != 1:
                    raise PcapError(name, start, f"if_tsresol option of length {len(value)}")
                units, num, den = _tsresol_ratio(value[0])
            elif code == _OPT_IF_TSOFFSET:
                if len(value) != 8:
                    raise PcapError(name, start, f"if_tsoffset option of length {len(value)}")
                (tsoffset,) = struct.unpack(self._order + "q", value)
            elif code == _OPT_IF_NAME:
                if_name = value.rstrip(b"\0").decode("utf-8", "replace")
        info = InterfaceInfo(
            ifindex=len(self.interfaces),
            section=self.sections - 1,
            local_id=len(self._section),
            linktype=linktype,
            snaplen=snaplen,
            ts_units_per_s=units,
            tsoffset_s=tsoffset,
            name=if_name,
        )
        self.interfaces.append(info)
        self._section.append(_Iface(info, num, den))

    def _options(self, body: bytes, pos: int, start: int) -> list[tuple[int, bytes]]:
        """Split a TLV option list (values padded to 32 bits; pcapng draft §3.5)."""
        out: list[tuple[int, bytes]] = []
        end = len(body)
        hdr = struct.Struct(self._order + "HH")
        while pos < end:
            if end - pos < 4:
                raise PcapError(self._src.name, start, "truncated option header in block")
            code, olen = hdr.unpack_from(body, pos)
            if code == _OPT_ENDOFOPT:
                break
            pos += 4
            if pos + olen > end:
                raise PcapError(
                    self._src.name, start, f"option {code} of length {olen} overruns its block"
                )
            out.append((code, body[pos : pos + olen]))
            pos += (olen + 3) & ~3
        return out

    def _iface(self, local_id: int, kind: str, start: int) -> _Iface:
        if local_id >= len(self._section):
            raise PcapError(
                self._src.name,
                start,
                f"{kind} refers to interface {local_id} but the section defines "
                f"{len(self._section)}",
            )
        return self._section[local_id]

    def _packet(self, raw: bytes, fixed: int, caplen: int, kind: str, start: int) -> bytes:
        """Slice ``caplen`` payload bytes that follow ``fixed`` header bytes of a block body."""
        room = len(raw) - 4 - fixed
        if caplen > room:
            raise PcapError(
                self._src.name,
                start,
                f"{kind} captured length {caplen} exceeds its block ({room} bytes)",
            )
        return raw[fixed : fixed + caplen]

    def _next_frame(self) -> CapturedFrame:
        src = self._src
        while True:
            start = src.offset
            head = src.read_upto(8)
            if len(head) != 8:
                if not head:
                    raise StopIteration
                raise PcapError(
                    src.name, start, f"truncated block header: need 8 bytes, file has {len(head)}"
                )
            if head[:4] == _SHB_TYPE:
                # A new section: interfaces and byte order start afresh.
                self._read_shb_from(head, start)
                continue
            btype, blen = self._hdr.unpack(head)
            if blen < 12 or blen % 4 or blen > MAX_RECORD_LEN:
                raise PcapError(src.name, start, f"bad block length {blen} (type 0x{btype:08x})")
            if btype == _BT_EPB:
                raw = self._read_body(blen, "enhanced packet block", start)
                if blen < 12 + _EPB_FIXED:
                    raise PcapError(src.name, start, "enhanced packet block too short")
                ifid, hi, lo, caplen, orig = self._epb.unpack_from(raw, 0)
                iface = self._iface(ifid, "enhanced packet block", start)
                data = self._packet(raw, _EPB_FIXED, caplen, "enhanced packet block", start)
                info = iface.info
                return CapturedFrame(
                    iface.ts_ns((hi << 32) | lo), data, info.linktype, orig, info.ifindex
                )
            if btype == _BT_SPB:
                raw = self._read_body(blen, "simple packet block", start)
                if blen < 12 + _SPB_FIXED:
                    raise PcapError(src.name, start, "simple packet block too short")
                (orig,) = self._u32.unpack_from(raw, 0)
                iface = self._iface(0, "simple packet block", start)
                # The draft: captured length = min(original length, IDB snaplen);
                # the block carries no timestamp, so ts_ns is 0 (as in Wireshark).
                caplen = min(orig, blen - 12 - _SPB_FIXED)
                if iface.info.snaplen:
                    caplen = min(caplen, iface.info.snaplen)
                info = iface.info
                return CapturedFrame(
                    0, raw[_SPB_FIXED : _SPB_FIXED + caplen], info.linktype, orig, info.ifindex
                )
            if btype == _BT_PB:
                raw = self._read_body(blen, "packet block", start)
                if blen < 12 + _PB_FIXED:
                    raise PcapError(src.name, start, "packet block too short")
                ifid, _drops, hi, lo, caplen, orig = struct.unpack_from(
                    self._order + "HHIIII", raw, 0
                )
                iface = self._iface(ifid, "packet block", start)
                data = self._packet(raw, _PB_FIXED, caplen, "packet block", start)
                info = iface.info
                return CapturedFrame(
                    iface.ts_ns((hi << 32) | lo), data, info.linktype, orig, info.ifindex
                )
            if btype == _BT_IDB:
                raw = self._read_body(blen, "interface description block", start)
                self._parse_idb(raw[:-4], start)
                continue
            self._skip_block(blen, btype, start)

    def _read_shb_from(self, head: bytes, start: int) -> None:
        """Finish a Section Header Block of which 8 bytes (type, length) were read.

        The byte-order magic that follows decides the byte order of everything up
        to the next SHB, including this block's own length fields.
        """
        src = self._src
        bom = src.read_exact(4, "section header block", start)
        if bom == _BOM_LE:
            order = "<"
        elif bom == _BOM_BE:
            order = ">"
        else:
            raise PcapError(
                src.name, start, f"bad pcapng byte-order magic 0x{bom.hex()} in section header"
            )
        (blen,) = struct.unpack(order + "I", head[4:])
        if blen < _SHB_MIN_LEN or blen % 4 or blen > MAX_RECORD_LEN:
            raise PcapError(src.name, start, f"bad section header block length {blen}")
        body = src.read_exact(blen - 12, "section header block", start)
        major, minor = struct.unpack_from(order + "HH", body, 0)
        if major != 1 or minor not in (0, 2):
            # Wireshark accepts 1.0 and the 1.2 some early writers emitted; any
            # other version means an incompatible layout (pcapng draft §4.1).
            raise PcapUnsupported(src.name, start, f"pcapng version {major}.{minor} (want 1.0)")
        (trailer,) = struct.unpack_from(order + "I", body, len(body) - 4)
        if trailer != blen:
            raise PcapError(
                src.name, start, f"block length mismatch: header says {blen}, trailer {trailer}"
            )
        self._order = order
        self.byteorder = "little" if order == "<" else "big"
        self._hdr = struct.Struct(order + "II")
        self._u32 = struct.Struct(order + "I")
        self._epb = struct.Struct(order + "IIIII")
        self._section = []
        self.sections += 1


# --------------------------------------------------------------------------- open


def open_capture(path_or_file: PathOrFile) -> CaptureReader:
    """Open a pcap or pcapng capture, choosing the reader from the magic number.

    ``path_or_file`` is a path or a readable binary file object (pipes work: no
    seeking is done).  A file object is not closed by the reader.  Raises
    :class:`PcapError` for a missing/unreadable, empty or unrecognised file.
    """
    src = _open_source(path_or_file)
    try:
        magic = src.read_upto(4)
        if not magic:
            raise PcapError(src.name, 0, "empty file")
        if len(magic) < 4:
            raise PcapError(
                src.name, 0, f"truncated file header: need 4 bytes, file has {len(magic)}"
            )
        if magic in _PCAP_MAGICS:
            return PcapReader(src, magic)
        if magic == _SHB_TYPE:
            return PcapngReader(src, magic)
        if magic in _PCAP_MODIFIED_MAGICS:
            raise PcapUnsupported(src.name, 0, "Kuznetzov modified pcap format")
        raise PcapError(src.name, 0, f"not a pcap or pcapng file (magic 0x{magic.hex()})")
    except BaseException:
        src.close()
        raise


# --------------------------------------------------------------------------- output


class _Sink:
    """Accumulates output and hands it to the file in large writes."""

    __slots__ = ("f", "name", "owned", "buf", "closed")

    def __init__(self, path_or_file: PathOrFile) -> None:
        if isinstance(path_or_file, (str, os.PathLike)):
            self.name = os.fspath(path_or_file)
            self.f: BinaryIO = open(self.name, "wb", buffering=0)  # noqa: SIM115 - closed below
            self.owned = True
        elif hasattr(path_or_file, "write"):
            self.f = path_or_file
            name = getattr(path_or_file, "name", None)
            self.name = str(name) if name is not None else "<stream>"
            self.owned = False
        else:
            raise TypeError(f"expected a path or a binary file object, got {type(path_or_file)!r}")
        self.buf = bytearray()
        self.closed = False

    def flush(self) -> None:
        if self.buf:
            view = memoryview(self.buf)
            while view:
                n = self.f.write(view)
                view = view[n if n is not None else len(view) :]
            view.release()
            self.buf.clear()
        if hasattr(self.f, "flush"):
            self.f.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.flush()
        finally:
            self.closed = True
            if self.owned:
                self.f.close()


def _check_u32(value: int, what: str) -> None:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{what} {value} does not fit in 32 bits")


def _captured(data: bytes, snaplen: int, orig_len: int | None) -> tuple[bytes | memoryview, int]:
    """Apply the snap length and validate ``orig_len`` (>= bytes actually captured)."""
    if isinstance(data, memoryview):
        if data.format != "B" or data.ndim != 1:
            data = data.cast("B")  # len() must count bytes, not items
    elif not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"packet data must be bytes-like, not {type(data).__name__}")
    full = len(data)
    orig = full if orig_len is None else orig_len
    if orig < full:
        raise ValueError(f"orig_len {orig} is smaller than the {full} bytes of data")
    _check_u32(orig, "orig_len")
    if snaplen and full > snaplen:
        data = memoryview(data)[:snaplen]
    return data, orig


class _Writer:
    """Shared writer plumbing: buffering, counting, context management."""

    def __init__(self, path_or_file: PathOrFile) -> None:
        self._sink = _Sink(path_or_file)
        self.packets_written = 0

    @property
    def name(self) -> str:
        return self._sink.name

    def _put(self, chunk: bytes | bytearray | memoryview) -> None:
        buf = self._sink.buf
        buf += chunk
        if len(buf) >= _WRITE_FLUSH:
            self._sink.flush()

    def _check_open(self) -> None:
        if self._sink.closed:
            raise ValueError(f"{self.name}: write to a closed capture writer")

    def flush(self) -> None:
        """Push buffered records to the file (and flush the file object)."""
        self._check_open()
        self._sink.flush()

    def close(self) -> None:
        """Flush and close (the file is closed only if the writer opened it)."""
        self._sink.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class PcapWriter(_Writer):
    """Write classic pcap (little-endian, version 2.4), as ``tcpdump -w`` does.

    ``nanosecond=True`` writes the 0xa1b23c4d magic (libpcap's
    PCAP_TSTAMP_PRECISION_NANO files); otherwise microseconds, with the
    sub-microsecond part of ``ts_ns`` truncated.  Data longer than ``snaplen``
    is cut to it, keeping ``orig_len`` (how the kernel's packet socket reports
    truncated captures).
    """

    def __init__(
        self,
        path_or_file: PathOrFile,
        linktype: int = LINKTYPE_EN10MB,
        snaplen: int = 262144,
        nanosecond: bool = True,
    ) -> None:
        if not 0 <= linktype <= 0xFFFF:
            raise ValueError(f"linktype {linktype} does not fit in 16 bits")
        if not 0 < snaplen <= 0xFFFFFFFF:
            raise ValueError(f"snaplen {snaplen} must be in 1..2**32-1")
        super().__init__(path_or_file)
        self.linktype = linktype
        self.snaplen = snaplen
        self.nanosecond = nanosecond
        self._rec = struct.Struct("<IIII")
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        self._put(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write(
        self, data: bytes, ts_ns: int, orig_len: int | None = None, ifindex: int = 0
    ) -> None:
        """Append one record; ``ts_ns`` is nanoseconds since the Unix epoch."""
        sink = self._sink
        if sink.closed:
            raise ValueError(f"{self.name}: write to a closed capture writer")
        if ifindex != 0:
            raise ValueError(f"classic pcap has one interface; ifindex {ifindex} is not 0")
        sec, frac = divmod(ts_ns, 1_000_000_000)
        if ts_ns < 0 or sec > 0xFFFFFFFF:
            raise ValueError(f"timestamp {ts_ns} ns is outside pcap's unsigned 32-bit seconds")
        if not self.nanosecond:
            frac //= 1000
        t = type(data)
        if (t is bytes or t is bytearray) and orig_len is None and len(data) <= self.snaplen:
            # The common case (whole frame, no orig_len): nothing for _captured to check.
            cap = data
            orig = len(data)
        else:
            cap, orig = _captured(data, self.snaplen, orig_len)
        buf = sink.buf
        buf += self._rec.pack(sec, frac, len(cap), orig)
        buf += cap
        if len(buf) >= _WRITE_FLUSH:
            sink.flush()
        self.packets_written += 1


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


class PcapngWriter(_Writer):
    """Write pcapng (little-endian): one SHB, one IDB per interface, then EPBs.

    Interface 0 is declared from ``linktype``/``snaplen``; add more with
    :meth:`add_interface` (each its own linktype), then pass its id as
    ``ifindex`` to :meth:`write`.  With ``nanosecond=True`` every IDB carries
    ``if_tsresol=9``; otherwise the option is omitted (default 10**-6 s) and the
    sub-microsecond part of ``ts_ns`` is truncated.  ``snaplen=0`` means no
    limit, as in the IDB.
    """

    def __init__(
        self,
        path_or_file: PathOrFile,
        linktype: int = LINKTYPE_EN10MB,
        snaplen: int = 262144,
        nanosecond: bool = True,
        *,
        if_name: str | None = None,
        userappl: str | None = "netstack",
    ) -> None:
        super().__init__(path_or_file)
        self.nanosecond = nanosecond
        self._snaplens: list[int] = []
        self._epb = struct.Struct("<IIIIIII")
        opts = b""
        if userappl:
            opts = _option(_OPT_SHB_USERAPPL, userappl.encode()) + _option(_OPT_ENDOFOPT, b"")
        blen = _SHB_MIN_LEN + len(opts)
        self._put(
            struct.pack("<IIIHHq", 0x0A0D0D0A, blen, 0x1A2B3C4D, 1, 0, -1)
            + opts
            + struct.pack("<I", blen)
        )
        self.add_interface(linktype, snaplen, if_name)

    @property
    def interface_count(self) -> int:
        return len(self._snaplens)

    def add_interface(
        self, linktype: int, snaplen: int = 262144, name: str | None = None
    ) -> int:
        """Declare another interface (an IDB) and return its id for :meth:`write`."""
        self._check_open()
        if not 0 <= linktype <= 0xFFFF:
            raise ValueError(f"linktype {linktype} does not fit in 16 bits")
        _check_u32(snaplen, "snaplen")
        opts = b""
        if name is not None:
            opts += _option(_OPT_IF_NAME, name.encode())
        if self.nanosecond:
            opts += _option(_OPT_IF_TSRESOL, b"\x09")
        if opts:
            opts += _option(_OPT_ENDOFOPT, b"")
        blen = 20 + len(opts)
        self._put(
            struct.pack("<IIHHI", _BT_IDB, blen, linktype, 0, snaplen)
            + opts
            + struct.pack("<I", blen)
        )
        self._snaplens.append(snaplen)
        return len(self._snaplens) - 1

    def write(
        self, data: bytes, ts_ns: int, orig_len: int | None = None, ifindex: int = 0
    ) -> None:
        """Append an Enhanced Packet Block on interface ``ifindex``."""
        self._check_open()
        if not 0 <= ifindex < len(self._snaplens):
            raise ValueError(
                f"ifindex {ifindex} is not a declared interface (have {len(self._snaplens)})"
            )
        ticks = ts_ns if self.nanosecond else ts_ns // 1000
        if not 0 <= ticks <= 0xFFFFFFFFFFFFFFFF:
            raise ValueError(f"timestamp {ts_ns} ns is outside pcapng's unsigned 64-bit range")
        cap, orig = _captured(data, self._snaplens[ifindex], orig_len)
        caplen = len(cap)
        pad = -caplen % 4
        blen = 32 + caplen + pad
        self._put(
            self._epb.pack(_BT_EPB, blen, ifindex, ticks >> 32, ticks & 0xFFFFFFFF, caplen, orig)
        )
        self._put(cap)
        self._put(b"\0" * pad + struct.pack("<I", blen))
        self.packets_written += 1
