"""OFF3: the llvmlite-compiled checksum loop (netstack/packet/csum_native.py) and the
csum_partial path that uses it give exactly the big-integer reference's results — odd
lengths (RFC 1071 §4.1 zero padding), any start offset, chained seeds, 0 only for all-zero
data, 0xffff ("negative zero") otherwise — and the numpy fallback is used when the JIT is
off."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netstack.packet.checksum as C
from netstack.errors import NotSupported
from netstack.packet import csum_native
from netstack.packet.checksum import NATIVE_MIN, csum_partial, csum_partial_bigint

from .pktbuild import rfc1071

NATIVE = csum_native.load()
needs_jit = pytest.mark.skipif(NATIVE is None, reason=f"llvmlite JIT unavailable: "
                               f"{csum_native._state.get('error')}")


def _ref_le(b: bytes) -> int:
    """Independent little-endian 32-bit word sum, tail zero-padded (slow, obvious)."""
    b = bytes(b)
    return sum(int.from_bytes(b[i:i + 4].ljust(4, b"\0"), "little") for i in range(0, len(b), 4))


@needs_jit
@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=3000), st.integers(0, 15), st.sampled_from(["b", "ba", "mv", "romv"]))
def test_sum_le_equals_word_reference(data: bytes, start: int, kind: str) -> None:
    raw = os.urandom(start) + data
    obj = {"b": bytes(data), "ba": bytearray(data), "mv": memoryview(bytearray(raw))[start:],
           "romv": memoryview(raw)[start:]}[kind]
    assert csum_native.sum_le(obj) == _ref_le(data)


@needs_jit
@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=5000), st.integers(0, 7),
       st.one_of(st.integers(0, 0xFFFF), st.integers(0, 2**40)))
def test_csum_partial_native_equals_bigint(data: bytes, start: int, seed: int) -> None:
    buf = bytearray(os.urandom(start)) + data
    mv = memoryview(buf)[start:]
    assert csum_partial(mv, seed) == csum_partial_bigint(mv, seed)
    assert csum_partial(bytes(mv), seed) == csum_partial_bigint(bytes(mv), seed)
    assert csum_partial(memoryview(bytes(buf))[start:]) == csum_partial_bigint(data)


@needs_jit
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, NATIVE_MIN - 1, NATIVE_MIN,
                               NATIVE_MIN + 1, 1499, 1500, 65535, 65536, 65537, 65539, 200_003])
@pytest.mark.parametrize("fill", [0x00, 0xFF, None])
def test_edges(n: int, fill: int | None) -> None:
    data = os.urandom(n) if fill is None else bytes([fill]) * n
    v = csum_native.sum_le(data)
    assert (v == 0) == (not any(data))          # 0 only for all-zero data
    if n <= 70000:
        assert v == _ref_le(data)
    got = csum_partial(data)
    assert got == csum_partial_bigint(data)
    if fill == 0:
        assert got == 0
    if fill == 0xFF and n and not n & 1:
        assert got == 0xFFFF                      # negative zero, never 0
    assert (~got & 0xFFFF) == rfc1071(data) or (got == 0xFFFF and rfc1071(data) == 0)


@needs_jit
def test_all_ff_words_do_not_lose_carries() -> None:
    """2**18 words of 0xffffffff: any 32-bit accumulator would wrap."""
    data = b"\xff" * (1 << 20)
    assert csum_native.sum_le(data) == (1 << 18) * 0xFFFFFFFF
    assert csum_partial(data) == 0xFFFF


@needs_jit
def test_native_path_is_used_and_non_buffers_fall_back(monkeypatch) -> None:
    """The properties above only prove something if csum_partial calls the native loop."""
    csum_partial(bytes(NATIVE_MIN))
    assert C._vec_sum is NATIVE and C._vec_min == NATIVE_MIN
    calls = []

    def spy(d):
        calls.append(len(d))
        return NATIVE(d)
    monkeypatch.setattr(C, "_vec_sum", spy)
    csum_partial(bytes(NATIVE_MIN - 1))
    csum_partial(bytes(NATIVE_MIN))
    assert calls == [NATIVE_MIN]
    monkeypatch.undo()
    ints = list(range(256)) * 2                   # not a buffer: TypeError inside, bigint out
    assert csum_partial(ints) == csum_partial_bigint(bytes(ints))
    buf = bytes(range(256)) * 4
    strided = memoryview(buf)[::2]                # non-contiguous: BufferError inside
    assert csum_partial(strided, 5) == csum_partial_bigint(bytes(strided), 5)
    with pytest.raises(TypeError):
        NATIVE([1, 2, 3])
    with pytest.raises(BufferError):
        NATIVE(strided)


@needs_jit
def test_machine_code_is_vectorised() -> None:
    text = csum_native.asm()
    assert any(r in text for r in ("%zmm", "%ymm", "%xmm")), "LLVM did not vectorise the loop"


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=3000), st.integers(0, 3))
def test_numpy_fallback_twin_equals_reference(data: bytes, start: int) -> None:
    mv = memoryview(bytearray(os.urandom(start)) + data)[start:]
    assert C._numpy_sum_le(mv) == _ref_le(data)


def test_jit_disabled_falls_back_to_numpy() -> None:
    """NETSTACK_CSUM_JIT=0: load() is None, sum_le raises NotSupported, csum_partial uses numpy
    from NUMPY_MIN and stays exact (fresh interpreter: the choice is made once per process)."""
    code = ("import os\n"
            "import netstack.packet.checksum as C\n"
            "from netstack.packet import csum_native as N\n"
            "from netstack.errors import NotSupported\n"
            "assert N.load() is None and 'NETSTACK_CSUM_JIT' in N._state['error']\n"
            "try:\n    N.sum_le(b'x')\nexcept NotSupported as e:\n    assert 'not supported' in str(e)\n"
            "else:\n    raise SystemExit('no NotSupported')\n"
            "for n in (0, 1, 200, 1023, 1024, 1025, 65537):\n"
            "    d = os.urandom(n)\n"
            "    assert C.csum_partial(d, 7) == C.csum_partial_bigint(d, 7)\n"
            "assert C._vec_sum is C._numpy_sum_le and C._vec_min == C.NUMPY_MIN\n"
            "d = os.urandom(70000)\n"
            "assert N.sum_le_rows(d, 3, 40, 1448) is None and N.sum_le_many([d, d]) is None\n"
            "assert C.csum_partial_rows(d, 3, 40, 1448) == "
            "[C.csum_partial_bigint(d[3 + i * 1448:3 + (i + 1) * 1448]) for i in range(40)]\n"
            "assert C.csum_partial_many([d[:1501], d[5:3000]]) == "
            "[C.csum_partial_bigint(d[:1501]), C.csum_partial_bigint(d[5:3000])]\n"
            "print('ok')\n")
    env = dict(os.environ, NETSTACK_CSUM_JIT="0")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_sum_le_not_supported_message(monkeypatch) -> None:
    monkeypatch.setattr(csum_native, "_state", {"fn": None, "error": "X: y"})
    with pytest.raises(NotSupported, match="native checksum: X: y"):
        csum_native.sum_le(b"ab")


@needs_jit
@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=20000), st.integers(0, 40), st.integers(0, 60),
       st.integers(0, 2000))
def test_rows_in_one_call(data: bytes, start: int, count: int, size: int) -> None:
    """``sum_le_rows``: every block's sum in one native call, or None when the blocks do
    not lie inside the buffer; ``csum_partial_rows`` through it equals the reference."""
    buf = bytearray(data)
    got = csum_native.sum_le_rows(buf, start, count, size)
    if start + count * size > len(buf):
        assert got is None
        return
    blocks = [bytes(buf[start + i * size:start + (i + 1) * size]) for i in range(count)]
    assert got == [_ref_le(b) for b in blocks]
    assert C.csum_partial_rows(memoryview(buf), start, count, size) == \
        [csum_partial_bigint(b) for b in blocks]


@needs_jit
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=0, max_size=1600), st.integers(0, 7),
                          st.sampled_from(["b", "ba", "mv", "romv"])), min_size=0, max_size=50))
def test_many_in_one_call(items: list) -> None:
    """``sum_le_many``: the sums of a list of buffers of every kind in one native call;
    ``csum_partial_many`` through it equals the reference (empty and odd buffers too)."""
    objs = []
    for data, start, kind in items:
        raw = os.urandom(start) + data
        objs.append({"b": bytes(data), "ba": bytearray(data),
                     "mv": memoryview(bytearray(raw))[start:],
                     "romv": memoryview(raw)[start:]}[kind])
    got = csum_native.sum_le_many(objs)
    if not objs:
        assert got is None
    else:
        assert got == [_ref_le(bytes(o)) for o in objs]
    assert C.csum_partial_many(objs) == [csum_partial_bigint(o) for o in objs]


@needs_jit
def test_batches_refuse_bad_arguments() -> None:
    buf = bytearray(100)
    assert csum_native.sum_le_rows(buf, 10, 10, 10) is None      # one byte past the end
    assert csum_native.sum_le_rows(buf, 0, 10, 10) == [0] * 10
    assert csum_native.sum_le_rows(buf, -1, 1, 10) is None       # negative start
    assert csum_native.sum_le_rows(bytes(8), 0, 2, 4) == [0, 0]
    with pytest.raises(TypeError):
        csum_native.sum_le_many([buf, 5])
    assert csum_native.sum_le_many((buf,)) is None                 # not a list
    with pytest.raises(TypeError):
        C.csum_partial_many([b"ab" * 800, 5])
