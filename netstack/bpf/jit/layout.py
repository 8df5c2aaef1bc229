"""Memory layout shared by the generated code and the Python side of the JIT.

The native code never sees Python objects.  It gets one ``state`` block of
64-bit slots (below) and a *region table*: for every region of the program's
:class:`~netstack.bpf.memory.AddressSpace` (same ids as the interpreter) three
u64s ``base, size, wsize`` -- the raw address of the buffer, its length, and
its length again if it is writable (0 if read-only).  A pointer keeps the
interpreter's encoding ``region_id << 32 | offset`` so pointer values, their
arithmetic and comparisons are the interpreter's bit for bit.

Slots of ``state`` (all u64):
"""
from __future__ import annotations

import ctypes

S_REGIONS = 0        # address of the region table (u64[3 * capacity])
S_NREGIONS = 1       # number of valid table entries (region ids 0 .. n-1)
S_BUDGET = 2         # remaining taken-backward-jump/call budget (signed)
S_FAULT = 3          # 0, or one of the FAULT_* codes below
S_FAULT_PC = 4       # instruction index of the fault
S_SLOW_MEM = 5       # CFUNCTYPE slow path for accesses the fast checks refuse
S_HELPER = 6         # CFUNCTYPE helper trampoline
S_LDPKT = 7          # CFUNCTYPE legacy LD_ABS/LD_IND loader
S_CTX_RID = 8        # region id of an XDP context served natively (NO_RID if none)
S_XDP = 9            # 9..13: data, data_end, data_meta, ingress_ifindex, rx_queue_index (xdp_md order / 4)
S_PKT_RID = 14       # region id of the batch packet buffer (NO_RID if none)
S_PKT_DIRTY = 15     # set when a store (or a helper) may have touched the packet buffer
S_PREV_LEN = 16      # length of the previous frame in batch mode (area to re-zero)
S_STACK0 = 17        # region id of the frame-0 stack
S_FRAMES_LEN = 18    # batch mode: size of the frames buffer
S_MAX_FRAME = 19     # batch mode: longest frame the packet buffer takes
S_OUT_ON = 20        # batch mode: copy each frame's [data_meta, data_end) out after its run
S_OUT_ARENA = 21     # ... into this buffer (address)
S_OUT_CAP = 22       # ... of this size
S_OUT_POS = 23       # ... at this position (advanced per frame)
S_OUT_OFFS = 24      # ... recording offset (u32[]) ...
S_OUT_LENS = 25      # ... and length (u32[]) per frame
STATE_SLOTS = 32

FAULT_PY = 1         # a Python callback raised; the exception is kept on the Python side
FAULT_BUDGET = 2     # budget exhausted
FAULT_DEPTH = 3      # more than MAX_CALL_FRAMES frames
FAULT_INVALID = 4    # an instruction the interpreter also refuses when reached (message by pc)
FAULT_FRAME = 5      # batch mode: a frame outside the buffer or longer than the packet buffer takes
FAULT_OUTPUT = 6     # batch mode: the frame ran (result stored) but the output arena is full

NO_RID = (1 << 64) - 1

SLOW_LOAD = 0
SLOW_STORE = 1

# slow_mem(kind, addr, size, value, pc) -> loaded value
SLOW_MEM_CFUNC = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64,
                                  ctypes.c_uint64, ctypes.c_uint64)
# helper(hid, r0, r1, r2, r3, r4, r5, pc) -> new r0
HELPER_CFUNC = ctypes.CFUNCTYPE(ctypes.c_uint64, *([ctypes.c_uint64] * 8))
# ldpkt(offset as signed 64, size, pc) -> value
LDPKT_CFUNC = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64)

# void bpf_fN(u64 *state, u64 *regs, u64 depth)
FUNC_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64)
# u64 bpf_batch(state, frames, offsets(u32*), lens(u32*), start, n, results(u32*), regs, pktbuf, budget,
#               pkt_vaddr, ctx_vaddr, pkt_buf_len, headroom)
BATCH_CFUNC = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p,
                               ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                               ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64)
