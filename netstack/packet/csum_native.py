"""A native ones'-complement sum compiled with the llvmlite JIT.

Why: the exact numpy reduction (``frombuffer('<u4').sum(dtype=uint64)``) runs at about a
quarter of an in-cache memcpy; the kernel's ``csum_partial`` (arch/x86/lib/csum-partial_64.c)
is a tight ``adc`` loop that runs near memory bandwidth.  Here one small LLVM IR function
sums the buffer as little-endian 32-bit words zero-extended into a 64-bit accumulator; at
``-O3`` for the host CPU LLVM's loop vectoriser turns it into ``vpmovzxdq`` + ``vpaddq``
over several vector accumulators (AVX-512 on the project machine), which cannot lose a
carry: 2**32 words of at most 2**32 - 1 fit in 64 bits, so buffers below 16 GiB are exact.

The result is the *little-endian* sum: the buffer read as ``<u4`` words, the last 1–3 bytes
padded with zeros at the end (RFC 1071 §4.1's padding of an odd byte: as the low byte of a
little-endian word it is the high byte of the big-endian one).  Since 2**16 == 1 mod 0xffff
the value is congruent to the sum of the little-endian 16-bit words, and ×256 turns that into
the big-endian (network order) sum — the byte-order independence of RFC 1071 §2(B).  It is 0
only when every byte is 0, so callers keep the kernel's "never 0 from non-zero data" rule.

Batches: ``sum_le_rows`` sums equal blocks of one buffer and ``sum_le_many`` every buffer
of a list, each in one call, writing the sums into a bytearray (one ctypes call costs
~0.3–0.9 µs, as much as summing a whole 1.5 KB frame, so a poll of 46 frames summed one
call at a time spends most of its time in the calls).

Calling: ``sum_le(obj)`` takes any C-contiguous buffer object (``bytes``, ``bytearray``,
``memoryview`` at any offset, read-only or not) with no Python-side address juggling: the JIT
wrapper calls ``PyObject_GetBuffer``/``PyBuffer_Release`` itself and is called through
``ctypes.PYFUNCTYPE`` (the GIL stays held, and a Python error set by ``PyObject_GetBuffer`` —
TypeError for a non-buffer, BufferError for a non-contiguous view — is raised by ctypes).

The machine code is compiled once per process on first use (~tens of ms).  :func:`load`
returns ``None`` when llvmlite, the native target or the CPython C-API symbols are
unavailable, or when ``NETSTACK_CSUM_JIT=0`` is set; ``netstack.packet.checksum`` then uses
its numpy path.
"""
from __future__ import annotations

import ctypes
import os
import threading
from typing import Any, Callable

__all__ = ["load", "sum_le", "sum_le_rows", "sum_le_many", "IR", "asm"]

#: The IR: ``netstack_csum_le(ptr, len)`` is the loop LLVM vectorises; ``netstack_csum_obj``
#: resolves a Python buffer object (Py_buffer: ``buf`` at offset 0, ``len`` at offset 16 on
#: 64-bit CPython, Include/pybuffer.h) and releases it.  Flags 0 = PyBUF_SIMPLE: contiguous
#: bytes, read-only allowed.
IR = r"""
declare i32 @PyObject_GetBuffer(ptr, ptr, i32)
declare void @PyBuffer_Release(ptr)
declare ptr @PyList_GetItem(ptr, i64)

define internal i64 @netstack_csum_le(ptr noalias readonly %p, i64 %n) nounwind {
entry:
  %n4 = lshr i64 %n, 2
  %any = icmp ne i64 %n4, 0
  br i1 %any, label %loop, label %tail
loop:
  %i = phi i64 [0, %entry], [%i1, %loop]
  %s = phi i64 [0, %entry], [%s1, %loop]
  %q = getelementptr inbounds i32, ptr %p, i64 %i
  %w = load i32, ptr %q, align 1
  %wz = zext i32 %w to i64
  %s1 = add i64 %s, %wz
  %i1 = add nuw i64 %i, 1
  %done = icmp eq i64 %i1, %n4
  br i1 %done, label %tail, label %loop
tail:
  %sb = phi i64 [0, %entry], [%s1, %loop]
  %off = and i64 %n, -4
  %k = and i64 %n, 3
  %more = icmp ne i64 %k, 0
  br i1 %more, label %tl, label %out
tl:
  %j = phi i64 [0, %tail], [%j1, %tl]
  %acc = phi i64 [%sb, %tail], [%acc1, %tl]
  %idx = add i64 %off, %j
  %bp = getelementptr inbounds i8, ptr %p, i64 %idx
  %b = load i8, ptr %bp, align 1
  %bz = zext i8 %b to i64
  %sh = shl i64 %j, 3
  %bs = shl i64 %bz, %sh
  %acc1 = add i64 %acc, %bs
  %j1 = add i64 %j, 1
  %jd = icmp eq i64 %j1, %k
  br i1 %jd, label %out, label %tl
out:
  %r = phi i64 [%sb, %tail], [%acc1, %tl]
  ret i64 %r
}

define i64 @netstack_csum_obj(ptr %obj) {
entry:
  %view = alloca [128 x i8], align 16
  %rc = call i32 @PyObject_GetBuffer(ptr %obj, ptr %view, i32 0)
  %bad = icmp ne i32 %rc, 0
  br i1 %bad, label %fail, label %ok
fail:
  ret i64 0
ok:
  %buf = load ptr, ptr %view, align 8
  %lp = getelementptr inbounds i8, ptr %view, i64 16
  %len = load i64, ptr %lp, align 8
  %s = call i64 @netstack_csum_le(ptr %buf, i64 %len)
  call void @PyBuffer_Release(ptr %view)
  ret i64 %s
}

define i64 @netstack_csum_rows(ptr %obj, i64 %start, i64 %count, i64 %size, ptr %outobj) {
entry:
  %view = alloca [128 x i8], align 16
  %oview = alloca [128 x i8], align 16
  %rc = call i32 @PyObject_GetBuffer(ptr %obj, ptr %view, i32 0)
  %bad = icmp ne i32 %rc, 0
  br i1 %bad, label %fail, label %gotin
gotin:
  %orc = call i32 @PyObject_GetBuffer(ptr %outobj, ptr %oview, i32 1)
  %obad = icmp ne i32 %orc, 0
  br i1 %obad, label %failin, label %gotboth
failin:
  call void @PyBuffer_Release(ptr %view)
  br label %fail
fail:
  ret i64 -1
gotboth:
  %buf = load ptr, ptr %view, align 8
  %lp = getelementptr inbounds i8, ptr %view, i64 16
  %len = load i64, ptr %lp, align 8
  %obuf = load ptr, ptr %oview, align 8
  %olp = getelementptr inbounds i8, ptr %oview, i64 16
  %olen = load i64, ptr %olp, align 8
  %span = mul i64 %count, %size
  %end = add i64 %start, %span
  %need = shl i64 %count, 3
  %inok = icmp ule i64 %end, %len
  %outok = icmp ule i64 %need, %olen
  %neg = or i64 %start, %count
  %neg2 = or i64 %neg, %size
  %pos = icmp sge i64 %neg2, 0
  %ok1 = and i1 %inok, %outok
  %ok = and i1 %ok1, %pos
  br i1 %ok, label %check, label %range
range:
  call void @PyBuffer_Release(ptr %oview)
  call void @PyBuffer_Release(ptr %view)
  ret i64 -2
check:
  %any = icmp sgt i64 %count, 0
  br i1 %any, label %loop, label %done
loop:
  %i = phi i64 [0, %check], [%i1, %loop]
  %o = mul i64 %i, %size
  %o2 = add i64 %start, %o
  %p = getelementptr inbounds i8, ptr %buf, i64 %o2
  %s = call i64 @netstack_csum_le(ptr %p, i64 %size)
  %q = getelementptr inbounds i64, ptr %obuf, i64 %i
  store i64 %s, ptr %q, align 1
  %i1 = add nuw i64 %i, 1
  %fin = icmp eq i64 %i1, %count
  br i1 %fin, label %done, label %loop
done:
  call void @PyBuffer_Release(ptr %oview)
  call void @PyBuffer_Release(ptr %view)
  ret i64 0
}

define i64 @netstack_csum_many(ptr %list, i64 %n, ptr %outobj) {
entry:
  %view = alloca [128 x i8], align 16
  %oview = alloca [128 x i8], align 16
  %orc = call i32 @PyObject_GetBuffer(ptr %outobj, ptr %oview, i32 1)
  %obad = icmp ne i32 %orc, 0
  br i1 %obad, label %fail, label %gotout
fail:
  ret i64 -1
gotout:
  %obuf = load ptr, ptr %oview, align 8
  %olp = getelementptr inbounds i8, ptr %oview, i64 16
  %olen = load i64, ptr %olp, align 8
  %need = shl i64 %n, 3
  %outok = icmp ule i64 %need, %olen
  %pos = icmp sgt i64 %n, 0
  %ok = and i1 %outok, %pos
  br i1 %ok, label %loop, label %range
range:
  call void @PyBuffer_Release(ptr %oview)
  ret i64 -2
loop:
  %i = phi i64 [0, %gotout], [%i1, %next]
  %item = call ptr @PyList_GetItem(ptr %list, i64 %i)
  %null = icmp eq ptr %item, null
  br i1 %null, label %failout, label %getitem
getitem:
  %rc = call i32 @PyObject_GetBuffer(ptr %item, ptr %view, i32 0)
  %bad = icmp ne i32 %rc, 0
  br i1 %bad, label %failout, label %sum
failout:
  call void @PyBuffer_Release(ptr %oview)
  ret i64 -1
sum:
  %buf = load ptr, ptr %view, align 8
  %lp = getelementptr inbounds i8, ptr %view, i64 16
  %len = load i64, ptr %lp, align 8
  %s = call i64 @netstack_csum_le(ptr %buf, i64 %len)
  call void @PyBuffer_Release(ptr %view)
  %q = getelementptr inbounds i64, ptr %obuf, i64 %i
  store i64 %s, ptr %q, align 1
  br label %next
next:
  %i1 = add nuw i64 %i, 1
  %fin = icmp eq i64 %i1, %n
  br i1 %fin, label %done, label %loop
done:
  call void @PyBuffer_Release(ptr %oview)
  ret i64 0
}
"""

_lock = threading.Lock()
_state: dict[str, Any] = {}   # "fn", "engine", "tm", "module" once compiled; "error" if not


def _compile() -> Callable[[Any], int]:
    """Compile :data:`IR` for the host CPU at -O3 and return the ctypes-callable wrapper."""
    from llvmlite import binding as llvm

    if ctypes.sizeof(ctypes.c_void_p) != 8:
        raise OSError("the Py_buffer offsets in the IR assume a 64-bit CPython")
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    api = ctypes.pythonapi
    for name in ("PyObject_GetBuffer", "PyBuffer_Release", "PyList_GetItem"):
        llvm.add_symbol(name, ctypes.cast(getattr(api, name), ctypes.c_void_p).value)
    target = llvm.Target.from_default_triple()
    tm = target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                      features=llvm.get_host_cpu_features().flatten(),
                                      opt=3, codemodel="jitdefault")
    mod = llvm.parse_assembly(IR)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    engine = llvm.create_mcjit_compiler(mod, tm)
    engine.finalize_object()
    addr = engine.get_function_address("netstack_csum_obj")
    if not addr:
        raise OSError("netstack_csum_obj missing from the compiled module")
    fn = ctypes.PYFUNCTYPE(ctypes.c_uint64, ctypes.py_object)(addr)
    i64 = ctypes.c_int64
    rows = ctypes.PYFUNCTYPE(i64, ctypes.py_object, i64, i64, i64, ctypes.py_object)(
        engine.get_function_address("netstack_csum_rows"))
    many = ctypes.PYFUNCTYPE(i64, ctypes.py_object, i64, ctypes.py_object)(
        engine.get_function_address("netstack_csum_many"))
    # the engine owns the machine code: it must live as long as fn is callable
    _state.update(engine=engine, tm=tm, module=mod, rows=rows, many=many)
    return fn


def load() -> Callable[[Any], int] | None:
    """The native little-endian sum function, compiled on the first call; ``None`` if the
    JIT is unavailable (the reason is kept in ``_state['error']``) or disabled with
    ``NETSTACK_CSUM_JIT=0``."""
    if "fn" in _state:
        return _state["fn"]
    with _lock:
        if "fn" not in _state:
            fn = None
            if os.environ.get("NETSTACK_CSUM_JIT", "1") == "0":
                _state["error"] = "disabled by NETSTACK_CSUM_JIT=0"
            else:
                try:
                    fn = _compile()
                    # self-check against a known sum before trusting the machine code
                    if fn(b"\x01\x02\x03\x04\x05") != 0x04030201 + 0x05:
                        raise OSError("self-check failed")
                except Exception as exc:  # noqa: BLE001 - any failure to build means "no JIT"
                    _state["error"] = f"{type(exc).__name__}: {exc}"
                    fn = None
            _state["fn"] = fn
    return _state["fn"]


def sum_le(data: Any) -> int:
    """Little-endian 32-bit word sum of a contiguous buffer (tail zero-padded).

    Raises ``NotSupported`` if the JIT is unavailable, TypeError/BufferError for objects
    that are not contiguous buffers.
    """
    fn = load()
    if fn is None:
        from ..errors import NotSupported
        raise NotSupported(f"native checksum: {_state.get('error')}")
    return fn(data)


def sum_le_rows(data: Any, start: int, count: int, size: int) -> list[int] | None:
    """:func:`sum_le` of each of ``count`` consecutive ``size``-byte blocks of ``data``
    from ``start``, in one native call (software GSO's per-segment payload sums); None
    when the JIT is unavailable or the blocks do not lie inside the buffer."""
    if load() is None:
        return None
    out = bytearray(8 * count)
    if _state["rows"](data, start, count, size, out):
        return None
    return memoryview(out).cast("Q").tolist()


def sum_le_many(bufs: list) -> list[int] | None:
    """:func:`sum_le` of every buffer of the list ``bufs`` in one native call (GRO's
    checksum validation of a NAPI poll); None when the JIT is unavailable.  Raises
    TypeError/BufferError if an item is not a contiguous buffer."""
    if load() is None or type(bufs) is not list or not bufs:
        return None
    out = bytearray(8 * len(bufs))
    if _state["many"](bufs, len(bufs), out):
        return None
    return memoryview(out).cast("Q").tolist()


def asm() -> str:
    """The compiled machine code as assembly (to check what LLVM vectorised)."""
    if load() is None:
        from ..errors import NotSupported
        raise NotSupported(f"native checksum: {_state.get('error')}")
    return _state["tm"].emit_assembly(_state["module"])
