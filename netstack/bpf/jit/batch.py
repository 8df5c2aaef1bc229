"""JIT-backed programs and the XDP batch entry point.

:func:`jit_program` swaps a loaded :class:`~netstack.bpf.progs.Program`'s
interpreter for a :class:`JitProgVm`, so ``run_xdp``, ``run_tc`` and
``prog_test_run`` run native code with unchanged results.

:class:`XdpBatch` runs an XDP program over many frames in one native call
(``bpf_batch`` in codegen.py): each frame is laid out exactly as
``Program.run_xdp`` lays it out (256 bytes of zeroed headroom in a
3776-byte buffer -- ``PacketBuf.build(frame, XDP_PACKET_HEADROOM, 4096 -
SKB_SHARED_INFO_SIZE)``), so actions are the interpreter's frame for frame.
Helpers still work (through the Python trampoline, which keeps the
``XdpContext`` in step with the native data pointers); programs that can
``bpf_tail_call`` run frame by frame through ``run_xdp`` because a tail call
replaces the running program.
"""
from __future__ import annotations

import array
import ctypes
import itertools
from typing import Sequence

from .. import context as C
from .. import insn as I
from ..errors import BpfError, NotSupported
from ..progs import Program, ProgVm, RunEnv
from . import layout as L
from .vm import JitVm

MAX_FRAME = 4096 - C.SKB_SHARED_INFO_SIZE - C.XDP_PACKET_HEADROOM  # 3520: what run_xdp keeps linear
_TAIL_CALL = 12


class JitProgVm(ProgVm, JitVm):
    """:class:`~netstack.bpf.progs.ProgVm` (maps, helpers, context) on the native engine."""

    def __init__(self, prog: Program, insns: list[I.Insn], opt: int = 2) -> None:
        self._jit_opt = opt
        self._jit_batch = prog.prog_type == C.BPF_PROG_TYPE_XDP
        super().__init__(prog, insns)

    def _jit_setup(self, opt: int) -> None:  # called from JitVm.__init__ with the default opt
        super()._jit_setup(self._jit_opt)


def jit_program(prog: Program, *, opt: int = 2) -> Program:
    """Compile ``prog`` to native code and make it run there; returns ``prog``.

    The new engine resolves the same map references, so map pointers and the
    program's address-space layout are the interpreter's.
    """
    if not isinstance(prog.vm, JitProgVm):
        prog.vm = JitProgVm(prog, prog.insns, opt)
    return prog


def _calls_helper(insns: Sequence[I.Insn], hid: int) -> bool:
    return any(ins.opcode == (I.BPF_JMP | I.BPF_CALL) and (ins.src == 0 and ins.imm == hid) or
               ins.opcode == (I.BPF_JMP | I.BPF_CALL | I.BPF_X) for ins in insns)


class XdpBatch:
    """An XDP program bound to one packet buffer and context for batch runs.

    ``run(frames)`` returns one entry per frame: the XDP action (``R0 & 0xffffffff``),
    or ``None`` for a frame whose run faulted (a :class:`BpfError`; the
    datapath counts it as a drop).  The faults are kept in ``errors`` as
    ``(index, exception)``.
    """

    def __init__(self, prog: Program, env: RunEnv | None = None, *, ingress_ifindex: int = 1,
                 rx_queue_index: int = 0) -> None:
        if prog.prog_type != C.BPF_PROG_TYPE_XDP:
            raise NotSupported(f"batch runs of program type {prog.prog_type} (XDP only)")
        jit_program(prog)
        self.prog = prog
        self.env = env or RunEnv()
        self.ingress_ifindex = ingress_ifindex
        self.rx_queue_index = rx_queue_index
        self.errors: list[tuple[int, BpfError]] = []
        self.frames_out: list[bytes | None] = []
        self.per_frame = _calls_helper(prog.insns, _TAIL_CALL)
        self._results = (ctypes.c_uint32 * 0)()
        self._offs = (ctypes.c_uint32 * 0)()
        self._lens = (ctypes.c_uint32 * 0)()

    def run(self, frames: Sequence[bytes], *, frames_out: bool = False) -> list[int | None]:
        """Run over ``frames`` (a list of frames); see the class docstring and :meth:`run_buffer`."""
        n = len(frames)
        if len(self._offs) < n:
            self._offs = (ctypes.c_uint32 * n)()
            self._lens = (ctypes.c_uint32 * n)()
        lens = array.array("I", map(len, frames))
        offs = array.array("I", itertools.accumulate(lens, initial=0))
        if n:
            ctypes.memmove(self._lens, lens.buffer_info()[0], 4 * n)
            ctypes.memmove(self._offs, offs.buffer_info()[0], 4 * n)
        return self.run_buffer(b"".join(frames), self._offs, self._lens, n, frames_out=frames_out)

    def run_buffer(self, buf: bytes | bytearray, offsets: Sequence[int], lengths: Sequence[int],
                   n: int | None = None, *, frames_out: bool = False) -> list[int | None]:
        """Run over ``n`` frames held in one contiguous ``buf`` at ``offsets`` with ``lengths``.

        ``offsets``/``lengths`` may be ctypes ``c_uint32`` arrays (used in place) or sequences.
        A frame longer than :data:`MAX_FRAME` or outside ``buf`` gets ``None`` and a
        :class:`NotSupported` in ``errors`` (checked in the native loop).  With
        ``frames_out``, ``self.frames_out[k]`` is frame ``k`` as the program left it
        (``[data_meta, data_end)``, what ``run_xdp`` returns; None if it faulted),
        copied out natively into an arena.
        """
        n = len(offsets) if n is None else n
        self.errors = []
        self.frames_out = []
        if self.per_frame:
            return self._run_per_frame(buf, offsets, lengths, n, frames_out)
        offs_arr, lens_arr = self._frame_arrays(offsets, lengths, n)
        if len(self._results) < n:
            self._results = (ctypes.c_uint32 * n)()
        vm = self.prog.vm
        assert isinstance(vm, JitProgVm)
        pkt = C.PacketBuf.build(b"", C.XDP_PACKET_HEADROOM, 4096 - C.SKB_SHARED_INFO_SIZE)
        ctx = C.XdpContext(pkt, self.ingress_ifindex, self.rx_queue_index)
        vm.env, vm.ctx = self.env, ctx
        vm.mem.reset()
        pkt.base = vm.mem.map(pkt.buf, name="packet")
        ctx_ptr = vm.mem.map_special(ctx, name="ctx")
        vm.packet = None
        vm.frames.clear()
        vm._pending = None
        st = vm.state
        st[L.S_FAULT] = 0
        vm._sync_regions()
        st[L.S_PKT_RID] = pkt.base >> 32
        st[L.S_PKT_DIRTY] = 1
        st[L.S_PREV_LEN] = 0
        st[L.S_FRAMES_LEN] = len(buf)
        st[L.S_MAX_FRAME] = MAX_FRAME
        keep = buf if type(buf) is bytes else (ctypes.c_char * max(len(buf), 1)).from_buffer_copy(
            bytes(buf).ljust(1, b"\0"))
        frames_addr = (ctypes.cast(ctypes.c_char_p(keep), ctypes.c_void_p).value if type(keep) is bytes
                       else ctypes.addressof(keep)) or 0
        pkt_addr = ctypes.addressof(ctypes.c_char.from_buffer(pkt.buf))
        assert vm._batch_fn is not None  # compiled for every XDP JitProgVm
        out = self._results
        outs: list[bytes | None] = [None] * n if frames_out else []
        if frames_out:
            cap = len(buf) + 4096
            arena = (ctypes.c_char * cap)()
            o_offs, o_lens = (ctypes.c_uint32 * max(n, 1))(), (ctypes.c_uint32 * max(n, 1))()
            st[L.S_OUT_ARENA], st[L.S_OUT_CAP] = ctypes.addressof(arena), cap
            st[L.S_OUT_OFFS], st[L.S_OUT_LENS] = ctypes.addressof(o_offs), ctypes.addressof(o_lens)
        st[L.S_OUT_ON], st[L.S_OUT_POS] = int(frames_out), 0
        faulted: dict[int, int | None] = {}
        start = 0

        def flush(upto: int) -> None:
            """Frames start..upto-1 that completed natively: slice them out of the arena."""
            raw = memoryview(arena).cast("B")
            for k in range(start, upto):
                if k not in faulted:
                    outs[k] = bytes(raw[o_offs[k]:o_offs[k] + o_lens[k]])
            st[L.S_OUT_POS] = 0

        try:
            while start < n:
                stop = vm._batch_fn(ctypes.addressof(st), frames_addr, ctypes.addressof(offs_arr),
                                    ctypes.addressof(lens_arr), start, n, ctypes.addressof(out),
                                    ctypes.addressof(vm._regs_buf), pkt_addr, vm.budget_limit, pkt.base,
                                    ctx_ptr, len(pkt.buf), C.XDP_PACKET_HEADROOM)
                if frames_out:
                    flush(min(stop, n))
                if stop >= n:
                    break
                if st[L.S_FAULT] == L.FAULT_OUTPUT:  # ran to the end; only the arena was full
                    st[L.S_FAULT] = 0
                    result: int | None = out[stop]
                else:
                    result = faulted[stop] = self._fault(vm, stop)
                    st[L.S_PKT_DIRTY] = 1
                if frames_out and result is not None:
                    meta, end = st[L.S_XDP + 2] - pkt.base, st[L.S_XDP + 1] - pkt.base
                    outs[stop] = bytes(pkt.buf[meta:end])
                faulted.setdefault(stop, result)
                start = stop + 1
        finally:
            st[L.S_PKT_RID] = L.NO_RID
            st[L.S_OUT_ON] = 0
        results: list[int | None] = memoryview(out).cast("B").cast("I")[:n].tolist()
        for k, v in faulted.items():
            results[k] = v
        self.frames_out = outs
        return results

    def _fault(self, vm: JitProgVm, k: int) -> int | None:
        """The outcome of frame ``k`` whose run stopped with a fault: its R0, or None (error kept)."""
        if vm.state[L.S_FAULT] == L.FAULT_FRAME:
            vm.state[L.S_FAULT] = 0
            self.errors.append((k, NotSupported(f"batch frame {k}: not 0..{MAX_FRAME} bytes inside the buffer")))
            return None
        try:
            return vm._raise_fault() & 0xFFFFFFFF
        except BpfError as exc:
            self.errors.append((k, exc))
            return None

    def _frame_arrays(self, offsets: Sequence[int], lengths: Sequence[int], n: int
                      ) -> tuple[ctypes.Array[ctypes.c_uint32], ctypes.Array[ctypes.c_uint32]]:
        if isinstance(offsets, ctypes.Array) and isinstance(lengths, ctypes.Array) \
                and len(offsets) >= n and len(lengths) >= n:
            return offsets, lengths
        if len(self._offs) < n:
            self._offs = (ctypes.c_uint32 * n)()
            self._lens = (ctypes.c_uint32 * n)()
        if offsets is not self._offs:
            self._offs[:n] = [o & 0xFFFFFFFF for o in offsets[:n]]
            self._lens[:n] = [x & 0xFFFFFFFF for x in lengths[:n]]
        return self._offs, self._lens

    def _run_per_frame(self, buf: bytes | bytearray, offsets: Sequence[int], lengths: Sequence[int],
                       n: int, frames_out: bool) -> list[int | None]:
        out: list[int | None] = []
        for k in range(n):
            frame = bytes(buf[offsets[k]:offsets[k] + lengths[k]])
            try:
                if not 0 <= lengths[k] <= MAX_FRAME or offsets[k] + lengths[k] > len(buf):
                    raise NotSupported(f"batch frame {k}: not 0..{MAX_FRAME} bytes inside the buffer")
                action, after = self.prog.run_xdp(frame, self.env, ingress_ifindex=self.ingress_ifindex,
                                                  rx_queue_index=self.rx_queue_index)
                out.append(action)
                if frames_out:
                    self.frames_out.append(after)
            except BpfError as exc:
                out.append(None)
                self.errors.append((k, exc))
                if frames_out:
                    self.frames_out.append(None)
        return out


def run_batch(prog: Program, frames: Sequence[bytes] | None = None, env: RunEnv | None = None, *,
              buffer: bytes | bytearray | None = None, offsets: Sequence[int] | None = None,
              lengths: Sequence[int] | None = None, ingress_ifindex: int = 1,
              rx_queue_index: int = 0) -> list[int | None]:
    """One-shot batch run: XDP actions (None where the run faulted) for ``frames``, or for the
    frames of one contiguous ``buffer`` at ``offsets`` with ``lengths``."""
    batch = XdpBatch(prog, env, ingress_ifindex=ingress_ifindex, rx_queue_index=rx_queue_index)
    if frames is not None:
        if buffer is not None:
            raise NotSupported("run_batch takes frames or buffer+offsets+lengths, not both")
        return batch.run(frames)
    if buffer is None or offsets is None or lengths is None:
        raise NotSupported("run_batch needs frames, or buffer with offsets and lengths")
    return batch.run_buffer(buffer, offsets, lengths)
