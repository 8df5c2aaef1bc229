"""Internet checksum arithmetic (RFC 1071, RFC 1624) with kernel semantics.

Reproduces include/net/checksum.h, include/asm-generic/checksum.h and the
``ip_decrease_ttl`` trick of include/net/ip.h.

Conventions (why: one representation everywhere avoids byte-order bugs):

* a *sum* is an uninverted 16-bit ones'-complement sum, an ``int`` in
  ``0..0xffff``; it is 0 only when every summed word was 0, exactly like the
  kernel's end-around-carry accumulation, which never yields 0 from a non-zero
  input;
* a *checksum* is the inverted, folded value as it is stored in a header,
  read as a big-endian 16-bit integer (``int.from_bytes(field, "big")``).

Speed: ones'-complement addition is addition modulo 0xffff (2**16 == 1 mod
0xffff), so summing a short byte string is ``int.from_bytes(b, "big") % 0xffff`` —
one C-level operation in CPython instead of a loop over words.  From
:data:`NATIVE_MIN` bytes on, :func:`csum_partial` sums the buffer as native
little-endian 32-bit words into a 64-bit accumulator with a loop compiled by the
llvmlite JIT (netstack/packet/csum_native.py; numpy from :data:`NUMPY_MIN` bytes
if the JIT cannot initialise) and byte-swaps the result: the ones'-complement sum is
byte-order independent (RFC 1071 §2(B)), i.e. the big-endian sum is 256 × the
little-endian one modulo 0xffff.  That is what the kernel's x86 ``csum_partial``
does with 64-bit adds (arch/x86/lib/csum-partial_64.c); the JIT loop runs at
tens of GB/s, numpy at ~12 GB/s, the big-integer path at ~0.6 GB/s
(bench/offload.py, docs/performance.md).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "csum_partial",
    "csum_fold",
    "csum_unfold",
    "csum_add",
    "csum_sub",
    "ip_fast_csum",
    "ip_compute_csum",
    "pseudo_sum_v4",
    "pseudo_sum_v6",
    "csum_tcpudp_magic",
    "csum_ipv6_magic",
    "csum_replace2",
    "csum_replace4",
    "csum_replace_bytes",
    "ip_decrease_ttl_csum",
    "ipv4_change_dsfield_csum",
    "csum_block_add",
    "csum_block_sub",
]

_M = 0xFFFF

#: Buffers at least this long are summed with numpy: below it the ~1.5 µs of
#: numpy call overhead costs more than ``int.from_bytes`` + modulo (measured
#: crossover 1.0–1.4 KB on the project machine, docs/performance.md).
NUMPY_MIN = 1024

#: Buffers at least this long are summed by the llvmlite-compiled loop
#: (netstack/packet/csum_native.py) when it initialises: its ctypes call (~0.3 µs, flat
#: up to 1.5 KB) costs as much as ``int.from_bytes`` + modulo of 100–130 bytes
#: (measured on the project machine, docs/performance.md).
NATIVE_MIN = 128

# The vector sum chosen on first use (_pick_vec_sum) and the length it starts at; the
# threshold starts at NATIVE_MIN so the first long buffer makes the choice.
_vec_sum: Any = None
_vec_min = NATIVE_MIN

# numpy is imported on the first buffer that needs it (CLI commands that never sum 1 KB
# do not pay its ~65 ms import).
_np: Any = None
_frombuffer: Any = None
_U64: Any = None


def _load_numpy() -> Any:
    """Import numpy and bind the names the vector paths use; returns ``frombuffer``."""
    global _np, _frombuffer, _U64
    import numpy

    _np = numpy
    _U64 = numpy.uint64
    _frombuffer = numpy.frombuffer
    return _frombuffer


def _reduce(n: int) -> int:
    """Reduce a non-negative integer to a 16-bit ones'-complement sum.

    End-around-carry addition yields 0 only for an all-zero input, and 0xffff
    ("negative zero") for any other multiple of 0xffff.
    """
    r = n % _M
    if r == 0 and n:
        return _M
    return r


def _numpy_sum_le(data: bytes | bytearray | memoryview) -> int:
    """The numpy twin of :func:`netstack.packet.csum_native.sum_le`: the buffer as
    little-endian 32-bit words summed into a uint64, the last 1–3 bytes as one
    little-endian word (zero padding at the end is implicit).  Used when the JIT is
    unavailable; raises TypeError/ValueError for non-buffers."""
    n = len(data)
    n4 = n & ~3
    fb = _frombuffer or _load_numpy()
    v = int(fb(data, "<u4", n4 >> 2).sum(dtype=_U64))
    if n4 != n:
        v += int.from_bytes(data[n4:], "little")
    return v


def _pick_vec_sum() -> Any:
    """Choose the vector sum once per process: the llvmlite-compiled loop
    (netstack/packet/csum_native.py) from :data:`NATIVE_MIN` bytes, or numpy from
    :data:`NUMPY_MIN` bytes if the JIT cannot initialise."""
    global _vec_sum, _vec_min
    from . import csum_native

    fn = csum_native.load()
    if fn is None:
        _vec_sum, _vec_min = _numpy_sum_le, NUMPY_MIN
    else:
        _vec_sum, _vec_min = fn, NATIVE_MIN
    return _vec_sum


def csum_partial(data: bytes | bytearray | memoryview, csum: int = 0) -> int:
    """Ones'-complement sum of ``data`` (big-endian words), added to ``csum``.

    Odd lengths are padded with a zero byte at the end (RFC 1071 §4.1).  The
    result is the folded, *uninverted* 16-bit sum.  ``csum`` may be any
    non-negative sum (it is folded first), so calls can be chained.
    """
    n = len(data)
    if n >= _vec_min:
        # Little-endian 32-bit words: x ≡ (b0 + 256·b1) + (b2 + 256·b3), the
        # byte-swapped 16-bit words, so ×256 turns the sum into the big-endian one.
        try:
            v = (_vec_sum or _pick_vec_sum())(data) << 8
        except (TypeError, ValueError, BufferError):  # not a contiguous buffer
            return csum_partial_bigint(data, csum)
    elif n & 1:
        v = int.from_bytes(data, "big") << 8
    else:
        v = int.from_bytes(data, "big")
    if csum < 0:
        return _reduce(_reduce(v) + _reduce(csum))
    # == _reduce(_reduce(v) + _reduce(csum)): same residue, and 0 only when both are 0
    v += csum
    r = v % _M
    return _M if r == 0 and v else r


def csum_partial_bigint(data: bytes | bytearray | memoryview, csum: int = 0) -> int:
    """The big-integer :func:`csum_partial` for every length: the reference the
    numpy and llvmlite paths are property-tested against (tests/offload/test_off2_csum.py,
    tests/offload/test_off3_csum_native.py)."""
    if len(data) & 1:
        v = int.from_bytes(data, "big") << 8
    else:
        v = int.from_bytes(data, "big")
    return _reduce(_reduce(v) + _reduce(csum))


def csum_fold(csum: int) -> int:
    """Fold a (possibly 32-bit or wider) sum to 16 bits and invert it.

    Mirrors ``csum_fold()``: the result is what goes in a checksum field.
    (Inlined :func:`_reduce`: these helpers run several times per GRO segment.)
    """
    r = csum % _M
    if r == 0 and csum:
        return 0
    return _M - r


def csum_unfold(check: int) -> int:
    """A checksum field value as a sum (``csum_unfold``: plain widening)."""
    return check & _M


def csum_add(a: int, b: int) -> int:
    """Ones'-complement addition of two sums (``csum_add``)."""
    if not 0 <= a <= _M:   # a 16-bit sum is its own reduction
        a = _reduce(a)
    if not 0 <= b <= _M:
        b = _reduce(b)
    n = a + b
    r = n % _M
    return _M if r == 0 and n else r


def csum_sub(a: int, b: int) -> int:
    """Ones'-complement subtraction ``a - b`` (``csum_sub`` = add ``~b``)."""
    if not 0 <= a <= _M:
        a = _reduce(a)
    if not 0 <= b <= _M:
        b = _reduce(b)
    n = a + _M - b
    r = n % _M
    return _M if r == 0 and n else r


def ip_fast_csum(hdr: bytes | bytearray | memoryview) -> int:
    """Checksum of an IPv4 header including its check field.

    As in the kernel, 0 means the header is valid; over a header whose check
    field is zero it returns the value to store.
    """
    v = int.from_bytes(hdr, "big") << (8 * (len(hdr) & 1))
    r = v % _M
    return 0 if r == 0 and v else _M - r  # ~_reduce(v) & 0xffff


def ip_compute_csum(data: bytes | bytearray | memoryview) -> int:
    """``ip_compute_csum``: ``csum_fold(csum_partial(data, 0))`` (ICMP, IGMP)."""
    return csum_fold(csum_partial(data))


def pseudo_sum_v4(saddr: bytes, daddr: bytes, length: int, proto: int) -> int:
    """Uninverted sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768).

    Equals ``csum_tcpudp_nofold(saddr, daddr, len, proto, 0)`` folded.
    ``length`` is the L4 length (header plus payload).
    """
    v = (
        int.from_bytes(saddr, "big")
        + int.from_bytes(daddr, "big")
        + proto
        + length
    )
    r = v % _M  # _reduce, inlined (per GRO segment and per GSO completion)
    return _M if r == 0 and v else r


def pseudo_sum_v6(saddr: bytes, daddr: bytes, length: int, proto: int) -> int:
    """Uninverted sum of the IPv6 pseudo-header (RFC 8200 §8.1).

    The upper-layer length is a 32-bit field, so lengths above 0xffff (jumbo
    payloads) are summed correctly.
    """
    v = int.from_bytes(saddr, "big") + int.from_bytes(daddr, "big") + length + proto
    return _reduce(v)


def csum_tcpudp_magic(saddr4: bytes, daddr4: bytes, length: int, proto: int, csum: int) -> int:
    """Final TCP/UDP checksum over IPv4: ``csum_fold(pseudo + csum)``.

    ``csum`` is the uninverted sum of the L4 header and payload (with the
    check field zeroed when computing, or included when verifying: a valid
    packet then gives 0).
    """
    return csum_fold(_reduce(pseudo_sum_v4(saddr4, daddr4, length, proto) + _reduce(csum)))


def csum_ipv6_magic(saddr16: bytes, daddr16: bytes, length: int, proto: int, csum: int) -> int:
    """Final upper-layer checksum over IPv6 (net/ipv6/ip6_checksum.c)."""
    return csum_fold(_reduce(pseudo_sum_v6(saddr16, daddr16, length, proto) + _reduce(csum)))


def csum_replace2(check: int, old16: int, new16: int) -> int:
    """Incrementally update ``check`` when a 16-bit word changes.

    RFC 1624 eqn. 3, ``HC' = ~(~HC + ~m + m')``, exactly as the kernel's
    ``csum_replace2`` (``~csum16_add(csum16_sub(~(*sum), old), new)``) whose
    16-bit end-around-carry arithmetic this reproduces bit for bit.
    """
    return ~_reduce((~check & _M) + (~old16 & _M) + (new16 & _M)) & _M


def csum_replace4(check: int, old32: int, new32: int) -> int:
    """Incrementally update ``check`` when a 32-bit word changes.

    Kernel ``csum_replace4``: ``csum_fold(csum_add(csum_sub(~csum_unfold(sum),
    from), to))`` in 32-bit arithmetic.  ``~csum_unfold`` sets the upper 16
    bits, so the intermediate is never zero and the result is never 0xffff.
    """
    v = (0xFFFF0000 | (~check & _M)) + (~old32 & 0xFFFFFFFF) + (new32 & 0xFFFFFFFF)
    return ~_reduce(v) & _M


def csum_replace_bytes(check: int, old: bytes, new: bytes) -> int:
    """Update ``check`` when an even-aligned byte run changes (e.g. an address).

    Used for 16-byte IPv6 or 6-byte MAC rewrites; equivalent to repeated
    ``csum_replace4``/``csum_replace2`` over the words (``inet_proto_csum_replace16``).
    """
    if len(old) != len(new) or len(old) & 1:
        raise ValueError("old/new must have the same even length")
    v = (0xFFFF0000 | (~check & _M)) + (~_reduce(int.from_bytes(old, "big")) & _M) + int.from_bytes(
        new, "big"
    )
    return ~_reduce(v) & _M


def ip_decrease_ttl_csum(check: int) -> int:
    """New IPv4 header checksum after ``ttl -= 1`` (include/net/ip.h).

    The kernel adds ``htons(0x0100)`` to the check field *as a native
    little-endian u16* and folds the carry with ``check + (check >= 0xFFFF)``.
    On x86 that is: byte-swap, +1, end-around carry, truncate, swap back.
    """
    n = ((check & 0xFF) << 8) | ((check >> 8) & 0xFF)
    n += 1
    n = (n + (1 if n >= 0xFFFF else 0)) & _M
    return ((n & 0xFF) << 8) | (n >> 8)


def ipv4_change_dsfield_csum(check: int, old_tos: int, new_tos: int) -> int:
    """New IPv4 header checksum after TOS ``old_tos`` → ``new_tos``.

    Transcribes ``ipv4_change_dsfield`` (include/net/inet_ecn.h / dsfield.h)
    in its own u32 arithmetic, which the ECN marking and DSCP rewrite paths use.
    """
    c = check & _M
    c += old_tos & 0xFF
    if (c + 1) >> 16:
        c = (c + 1) & _M
    c = (c - (new_tos & 0xFF)) & 0xFFFFFFFF
    c = (c + (c >> 16)) & 0xFFFFFFFF
    return c & _M


def _swab16(s: int) -> int:
    return ((s & 0xFF) << 8) | (s >> 8)


def csum_block_add(csum: int, csum2: int, offset: int) -> int:
    """Add the sum ``csum2`` of a block that starts ``offset`` bytes in.

    ``csum_block_add``: a block at an odd offset has its bytes in the other
    lane, so its sum is byte-swapped (the kernel's ``ror32(csum2, 8)``).
    """
    s2 = _reduce(csum2)
    if offset & 1:
        s2 = _swab16(s2)
    return csum_add(csum, s2)


def csum_block_sub(csum: int, csum2: int, offset: int) -> int:
    """Remove a block's sum (``csum_block_sub``), e.g. on ``pskb_trim_rcsum``."""
    s2 = _reduce(csum2)
    if offset & 1:
        s2 = _swab16(s2)
    return csum_sub(csum, s2)


def csum_partial_rows(data: bytes | bytearray | memoryview, start: int, count: int,
                      size: int) -> list[int]:
    """``csum_partial`` of each of ``count`` consecutive ``size``-byte blocks from
    ``start``: ``[csum_partial(data[start + i*size : start + (i+1)*size]) ...]``.

    Why: software GSO needs every segment's payload sum (``skb_segment`` with
    ``csum_partial_copy`` per frag).  With the JIT, one native call sums every block
    (``csum_native.sum_le_rows``: ~3 µs for 45 × 1448 bytes, 46 separate calls cost
    ~15×); without it, viewing the payload as a ``count × size/2``
    matrix of little-endian 16-bit words gives all of them in one numpy reduction
    (a row of ≤ 32767 words cannot overflow the uint32 accumulator; ×256 maps the
    little-endian sum onto the big-endian one, RFC 1071 §2(B)).  Odd sizes and
    small totals use :func:`csum_partial` per block.
    """
    if count <= 0:
        return []
    if (_vec_sum or _pick_vec_sum()) is not _numpy_sum_le:
        # the llvmlite loop over every block in one call (csum_native.sum_le_rows)
        from . import csum_native
        sums = csum_native.sum_le_rows(data, start, count, size)
        if sums is not None:
            return [r if (r := (x << 8) % _M) or not x else _M for x in sums]
    if size & 1 or size > 0xFFFF or count * size < NUMPY_MIN:
        return [csum_partial(data[start + i * size:start + (i + 1) * size])
                for i in range(count)]
    fb = _frombuffer or _load_numpy()
    rows = fb(data, "<u2", count * (size >> 1), start).reshape(count, size >> 1)
    out = []
    for x in rows.sum(axis=1, dtype=_np.uint32).tolist():
        # _reduce(x << 8), inlined: 0 only for an all-zero block
        r = (x << 8) % _M
        out.append(r if r or not x else _M)
    return out


def csum_partial_many(bufs: list) -> list[int]:
    """``[csum_partial(b) for b in bufs]`` in one vectorised pass.

    Why: GRO validates the checksum of every segment of a NAPI poll (``__skb_gro_checksum_
    validate`` → ``__skb_checksum_complete``).  With the JIT the whole list is summed in
    one native call (``csum_native.sum_le_many``); without it: numpy's per-call overhead is about the cost
    of summing one 1500-byte frame, so the frames are laid end to end (each odd one padded
    with the zero byte RFC 1071 §4.1 pads it with, which keeps every block 16-bit
    aligned) and summed with one ``add.reduceat``.  Short batches and empty buffers use
    :func:`csum_partial` per buffer.
    """
    if len(bufs) > 1 and (_vec_sum or _pick_vec_sum()) is not _numpy_sum_le:
        # every buffer through the llvmlite loop in one call (csum_native.sum_le_many)
        from . import csum_native
        try:
            sums = csum_native.sum_le_many(bufs)
        except (TypeError, ValueError, BufferError):
            sums = None
        if sums is not None:
            return [r if (r := (x << 8) % _M) or not x else _M for x in sums]
    total = 0
    for b in bufs:
        n = len(b)
        if not n:
            return [csum_partial(x) for x in bufs]
        total += n
    if total < NUMPY_MIN or len(bufs) < 2:
        return [csum_partial(x) for x in bufs]
    parts = []
    starts = []
    pos = 0
    for b in bufs:
        n = len(b)
        starts.append(pos >> 1)
        parts.append(b)
        if n & 1:
            parts.append(b"\0")
            n += 1
        pos += n
    fb = _frombuffer or _load_numpy()
    words = fb(b"".join(parts), "<u2")
    out = []
    for x in _np.add.reduceat(words, starts, dtype=_U64).tolist():
        r = (x << 8) % _M
        out.append(r if r or not x else _M)
    return out
