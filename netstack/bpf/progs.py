"""Loaded programs, their run environment, and ``BPF_PROG_TEST_RUN`` (net/bpf/test_run.c).

:class:`Program` is what ``bpf(BPF_PROG_LOAD)`` returns: the instructions
after the structural checks, linked against the helper table of the program
type, with ``lddw`` map references resolved through the fd table of
:mod:`netstack.bpf.maps` (``BPF_PSEUDO_MAP_FD`` -> map pointer,
``BPF_PSEUDO_MAP_VALUE`` -> pointer into a one-element array).  Every map the
program references has its value storage mapped once into the program's
address space, so lookups return real pointers.

:func:`prog_test_run` reproduces ``bpf_prog_test_run_xdp`` and
``bpf_prog_test_run_skb``: frame-size limits, headroom, the ``eth_type_trans``
view of the frame, SOCKET_FILTER seeing the packet from the network header
(and returning it with the 14 link-layer bytes zeroed), ``ctx_in``/``ctx_out``
rules, ``retval`` as the low 32 bits of R0, and ``-ENOSPC`` for a short output
buffer.  ``duration`` is the measured wall time per run in ns (the kernel's is
too); repeated runs do not reset the packet, as in the kernel.
"""
from __future__ import annotations

import errno as E
import itertools
import random
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from . import context as C
from . import helpers as H
from . import insn as I
from . import maps as M
from .check import verify
from .errors import BpfError, BpfRuntimeError, BpfVerifyError, NotSupported
from .insn import Insn
from .interp import Packet, Vm

_prog_ids = itertools.count(1)
_fds = itertools.count(1000)


def register_fd(obj: object) -> int:
    """Give ``obj`` (a map, program, XskSocket or PerfEvent) a model fd usable in map values and ``lddw``."""
    fd = next(_fds)
    M.FD_TABLE[fd] = obj
    return fd


def close_fd(fd: int) -> None:
    """Forget a model fd (``close(2)``); objects still referenced elsewhere stay alive."""
    M.FD_TABLE.pop(fd, None)


def new_map(map_type: int, key_size: int, value_size: int, max_entries: int, map_flags: int = 0,
            **kw: Any) -> M.BpfMap:
    """:func:`maps.create_map` plus an fd (``m.fd``), like ``bpf(BPF_MAP_CREATE)``."""
    m = M.create_map(map_type, key_size, value_size, max_entries, map_flags, **kw)
    m.fd = register_fd(m)
    return m


class VirtualClock:
    """A monotonic nanosecond counter that advances by ``step`` on every read (deterministic ktime)."""

    def __init__(self, start: int = 1_000_000_000, step: int = 1000) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


@dataclass
class RunEnv:
    """What helpers see of the world: CPU, clock, RNG, trace log, devices, redirect result, FIB."""

    cpu: int = 0
    clock: Callable[[], int] = field(default_factory=VirtualClock)
    seed: int = 0
    trace_log: list[str] = field(default_factory=list)
    #: ``ifindex -> number of RX queues`` of the devices test_run may name (lo is 1 with one queue).
    devices: dict[int, int] = field(default_factory=lambda: {1: 1})
    fib_lookup: Callable[[bytearray, int, object], int] | None = None
    redirect: tuple[Any, ...] | None = None
    tail_calls: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


class ProgVm(Vm):
    """A :class:`Vm` that knows its program, run environment and context (for helpers)."""

    def __init__(self, prog: "Program", insns: list[Insn]) -> None:
        self.prog = prog
        self.env: RunEnv = RunEnv()
        self.ctx: object = None
        self._map_refs: dict[int, int] = {}    # id(map) -> map pointer
        self._map_bases: dict[int, int] = {}   # id(map) -> storage base
        super().__init__(insns, H.table_for(prog.prog_type), ld_imm64=self._resolve)
        self.mem.pin()  # map regions made while compiling survive between runs

    def _resolve(self, src: int, lo: int, hi: int) -> int:
        m = M.FD_TABLE.get(lo)
        if not isinstance(m, M.BpfMap):
            raise BpfRuntimeError(f"fd {lo} is not a map")
        if id(m) not in self._map_refs:
            self.prog.maps.append(m)
            self._map_refs[id(m)] = self.mem.map(b"", name=f"map {m.name or lo}", obj=H.MapRef(m))
            if m.has_values:
                self._map_bases[id(m)] = self.mem.map(m.storage, name=f"map {m.name or lo} values", obj=m)
        if src == I.BPF_PSEUDO_MAP_FD:
            return self._map_refs[id(m)]
        if src == I.BPF_PSEUDO_MAP_VALUE:
            if not isinstance(m, M.ArrayMap) or m.percpu or m.max_entries != 1 or hi >= m.value_size:
                raise BpfRuntimeError("BPF_PSEUDO_MAP_VALUE needs a 1-element array and an offset inside it")
            return self._map_bases[id(m)] + hi
        raise NotSupported(f"lddw pseudo source {src}")

    def map_base(self, m: M.BpfMap) -> int:
        return self._map_bases[id(m)]

    def _call_helper(self, hid: int) -> None:
        if hid not in self.helpers:
            raise BpfRuntimeError(f"helper {hid} is not available to program type {self.prog.prog_type}")
        super()._call_helper(hid)


#: Verify every :class:`Program` built without an explicit ``verifier=`` flag with the
#: path-sensitive verifier (:func:`netstack.bpf.verifier.verify_program`), as
#: ``bpf(BPF_PROG_LOAD)`` always runs ``bpf_check`` (kernel/bpf/syscall.c ``bpf_prog_load``):
#: the datapath never runs a program the kernel would refuse.  ``verifier=False`` is the opt-out
#: for the conformance suite and for tests of the interpreter's own run-time safety.
VERIFY_ON_LOAD = True


def verify_on_load(code: Sequence[Insn], prog_type: int) -> None:
    """``bpf_check`` at load: raise :class:`BpfVerifyError` carrying the kernel's errno and log.

    The path-sensitive verifier includes the structural checks of :mod:`netstack.bpf.check`
    (through :class:`~netstack.bpf.check.StructuralChecker`) but decides ``R%d !read_ok`` per
    path, as the kernel does, rather than with check.py's all-paths must-analysis.
    """
    from .verifier import verify_program
    res = verify_program(code, prog_type)
    if not res.accepted:
        res = verify_program(code, prog_type, log_level=1)  # again, for the kernel-style log
        raise BpfVerifyError(res.error or E.errorcode.get(res.errno, str(res.errno)), errno=res.errno,
                             log=res.log)


class Program:
    """A loaded program (``bpf(BPF_PROG_LOAD)``); see the module docstring.

    ``verifier=None`` follows :data:`VERIFY_ON_LOAD`; ``verifier=False`` runs only the structural
    checks of :func:`netstack.bpf.check.verify` (the interpreter stays memory-safe and refuses at
    run time, with :class:`BpfRuntimeError`, what the kernel verifier would refuse at load).
    """

    def __init__(self, prog_type: int, insns: Sequence[Insn] | bytes, *, name: str = "",
                 verifier: bool | None = None) -> None:
        if prog_type not in H.ALLOWED:
            raise NotSupported(f"program type {prog_type}")
        code = I.decode(insns) if isinstance(insns, (bytes, bytearray)) else list(insns)
        if VERIFY_ON_LOAD if verifier is None else verifier:
            verify_on_load(code, prog_type)
        else:
            verify(code, entry_regs=(1,))
        self.prog_type = prog_type
        self.name = name
        self.insns = code
        self.maps: list[M.BpfMap] = []
        self.prog_id = next(_prog_ids)
        self.vm = ProgVm(self, code)
        self.fd = register_fd(self)

    # -- running --------------------------------------------------------------------------------
    def _exec(self, ctx: C.XdpContext | C.SkbContext, env: RunEnv, packet: Packet | None) -> int:
        """Run on ``ctx`` (following tail calls); return R0."""
        return self._exec_chain(ctx, env, packet)[0]

    def _exec_chain(self, ctx: C.XdpContext | C.SkbContext, env: RunEnv, packet: Packet | None
                    ) -> tuple[int, Packet | None]:
        """Run on ``ctx`` following tail calls: (R0, the LD_ABS/LD_IND view of the skb at the end).

        In the kernel a tail call (kernel/bpf/core.c ``___bpf_prog_run`` ``JMP_TAIL_CALL``, or
        the JITs' equivalent) jumps into the next program with the same ``ctx``: the one
        ``struct sk_buff``.  So the next program's LD_ABS/LD_IND (net/core/filter.c
        ``bpf_skb_load_helper_*`` -> ``skb->data``, ``skb_network_header``, ``skb_mac_header``)
        see the skb as the previous one left it -- after a ``bpf_skb_vlan_push``/``_pop`` moved
        its data and headers -- not as it was when the chain began.  The view a helper replaced
        (``vm.packet``) is therefore what the next program starts with."""
        prog: Program = self
        while True:
            vm = prog.vm
            vm.env, vm.ctx = env, ctx
            vm.mem.reset()
            ctx.pkt.base = vm.mem.map(ctx.pkt.buf, name="packet")
            ctx_ptr = vm.mem.map_special(ctx, name="ctx")
            try:
                r0 = vm.run((ctx_ptr,), packet=packet)
                return r0, vm.packet
            except H.TailCall as tc:
                target = tc.prog
                if not isinstance(target, Program) or target.prog_type != self.prog_type:
                    raise BpfRuntimeError("tail call to a program of another type") from None
                packet = vm.packet  # the skb as the helpers of this program left it
                prog = target

    def run_xdp(self, frame: bytes, env: RunEnv | None = None, *, ingress_ifindex: int = 1,
                rx_queue_index: int = 0) -> tuple[int, bytes]:
        """Run an XDP program on ``frame`` in a test_run-shaped buffer: (action, frame after the run)."""
        env = env or RunEnv()
        pkt = C.PacketBuf.build(frame, C.XDP_PACKET_HEADROOM, 4096 - C.SKB_SHARED_INFO_SIZE)
        ctx = C.XdpContext(pkt, ingress_ifindex, rx_queue_index)
        r0 = self._exec(ctx, env, None)
        return r0 & 0xFFFFFFFF, bytes(pkt.buf[pkt.data_meta:pkt.data_end])


    def run_tc(self, frame: bytes, env: RunEnv | None = None, fields: C.SkbFields | None = None
               ) -> tuple[int, bytes, C.SkbFields]:
        """Run a SCHED_CLS/ACT program on an skb whose data starts at the MAC header.

        Returns the verdict as a signed 32-bit value (``TC_ACT_UNSPEC`` is -1), the frame after
        the run and the (possibly rewritten) sk_buff fields: what a tc ingress/egress hook needs.
        :meth:`run_tc_headers` also reports where the helpers left the MAC/network headers.
        """
        r = self.run_tc_headers(frame, env, fields)
        return r.verdict, r.frame, r.fields

    def run_tc_headers(self, frame: bytes, env: RunEnv | None = None,
                       fields: C.SkbFields | None = None, mac_len: int = C.ETH_HLEN
                       ) -> "TcRunResult":
        """:meth:`run_tc` on an skb whose network header sits ``mac_len`` bytes behind the MAC
        header (``skb->network_header - skb->mac_header``; 14 after ``eth_type_trans``, 18 on
        a QinQ egress skb whose inner tag ``validate_xmit_vlan`` wrote into the packet).

        Why the offsets come back: ``bpf_skb_vlan_push``/``_pop`` move the MAC and network
        headers by rules that depend on where they were (net/core/skbuff.c ``skb_vlan_push``
        moves the network header back with the MAC header; ``__skb_vlan_pop`` leaves it on its
        bytes but at least ``ETH_HLEN`` past the new MAC header), so a run mixing pushes and
        pops cannot be reconstructed from the length change alone.  The helpers already keep
        the skb's header offsets up to date in the LD_ABS view of the context (the view the
        last helper left, :class:`~netstack.bpf.helpers._SkbAsPacket`), and that view is what
        is reported here.  Its ``SKF_NET_OFF`` loads see the network header at ``mac_len``
        from the start, as ``bpf_skb_load_helper_*`` (net/core/filter.c) would."""
        if self.prog_type not in (C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_PROG_TYPE_SCHED_ACT):
            raise NotSupported(f"run_tc on program type {self.prog_type}")
        if mac_len < 0:
            raise BpfRuntimeError(f"run_tc: network header {mac_len} bytes before the MAC header")
        env = env or RunEnv()
        if fields is None:
            fields = C.SkbFields()
            _eth_type_trans(frame, fields)
        pkt = C.PacketBuf.build(frame, C.NET_SKB_PAD, max(4096, C.NET_SKB_PAD + len(frame)))
        ctx = C.SkbContext(pkt, fields, self.prog_type)
        mac = pkt.data
        view = Packet(H.LegacyWindow(pkt), mac, mac, mac + mac_len)  # type: ignore[arg-type]
        r0, view_after = self._exec_chain(ctx, env, view)
        r0 &= 0xFFFFFFFF
        verdict = r0 - (1 << 32) if r0 & 0x80000000 else r0
        end = view_after if view_after is not None else view
        mac_after = end.mac_off if end.mac_off is not None else pkt.data
        return TcRunResult(verdict, pkt.bytes(), fields, mac_after - pkt.data,
                           end.net_off - pkt.data)


@dataclass
class TcRunResult:
    """What a tc classifier run leaves: the verdict, the frame from ``skb->data`` to the tail,
    the ``__sk_buff`` fields, and the MAC / network header offsets from ``skb->data`` (the MAC
    offset is 0 after every helper allowed to a tc program: they all leave ``skb->data`` at the
    MAC header)."""

    verdict: int
    frame: bytes
    fields: C.SkbFields
    mac_off: int
    net_off: int

    @property
    def mac_len(self) -> int:
        """``skb->mac_len`` as ``skb_reset_mac_len`` leaves it (network − MAC header)."""
        return self.net_off - self.mac_off


class TestRunError(BpfError):
    """``BPF_PROG_TEST_RUN`` failed with ``errno``; ``data_out``/``size_out`` are set for -ENOSPC."""

    __test__ = False  # not a pytest class

    def __init__(self, err: int, what: str = "", data_out: bytes = b"", size_out: int = 0) -> None:
        super().__init__(f"{E.errorcode.get(err, err)}: {what}")
        self.errno = err
        self.data_out = data_out
        self.size_out = size_out


@dataclass
class TestRunResult:
    """Everything ``bpf_prog_test_run`` reports back."""

    __test__ = False

    retval: int
    data_out: bytes
    duration: int
    ctx_out: bytes
    env: RunEnv


def _ctx_init(ctx: bytes | None, max_size: int) -> bytearray | None:
    """``bpf_ctx_init``: a shorter ctx is zero-padded, a longer one must be zero beyond ``max_size``."""
    if ctx is None:
        return None
    if len(ctx) > max_size and any(ctx[max_size:]):
        raise TestRunError(E.E2BIG, "ctx_in has non-zero bytes beyond the context")
    return bytearray(bytes(ctx[:max_size]).ljust(max_size, b"\0"))


def _finish(data: bytes, data_size_out: int | None) -> bytes:
    """``bpf_test_finish``: a too small output buffer gives -ENOSPC with the full size reported."""
    if data_size_out is not None and data_size_out < len(data):
        raise TestRunError(E.ENOSPC, "data_out too small", data[:data_size_out], len(data))
    return data


def _timed(run: Callable[[], int], repeat: int) -> tuple[int, int]:
    repeat = max(repeat, 1)
    t0 = time.perf_counter_ns()
    r0 = 0
    for _ in range(repeat):
        r0 = run()
    return r0 & 0xFFFFFFFF, min((time.perf_counter_ns() - t0) // repeat, 0xFFFFFFFF)


def _test_run_xdp(prog: Program, data: bytes, repeat: int, ctx: bytes | None, env: RunEnv,
                  data_size_out: int | None) -> TestRunResult:
    headroom, tailroom = C.XDP_PACKET_HEADROOM, C.SKB_SHARED_INFO_SIZE
    md = _ctx_init(ctx, C.XDP_MD_SIZE)
    meta = 0
    ingress, rxq = 1, 0
    if md is not None:
        data_meta, d, d_end, ingress, rxq, egress = struct.unpack("<6I", md)
        # Measured on 6.18: ctx_in.data_end must be 0 and ctx_in.data is at most the input size
        # (no alignment rule any more); see the layout note below.
        if data_meta or d_end or d > min(len(data), C.XDP_METALEN_MAX) or len(data) < C.ETH_HLEN:
            raise TestRunError(E.EINVAL, "bad xdp_md in ctx_in")
        meta = d
        if egress:
            raise TestRunError(E.EINVAL, "egress_ifindex must be 0")
        if not ingress and rxq:
            raise TestRunError(E.EINVAL, "rx_queue_index needs an ingress_ifindex")
        if ingress:
            nq = env.devices.get(ingress)
            if nq is None:
                raise TestRunError(E.ENODEV, f"no device {ingress}")
            if rxq >= nq:
                raise TestRunError(E.EINVAL, f"rx queue {rxq} out of range")
        headroom -= meta
    max_data = 4096 - headroom - tailroom
    if len(data) < C.ETH_HLEN or (md is None and len(data) > max_data):
        if len(data) >= C.ETH_HLEN:
            raise NotSupported(f"XDP test_run frames over {max_data} bytes (multi-buffer)")
        raise TestRunError(E.EINVAL, "frame shorter than ETH_HLEN")
    if md is not None:
        # Measured on 6.18 (net/bpf/test_run.c in flux around multi-buffer linear sizes): with an
        # xdp_md ctx_in the program sees no metadata (data_meta == data), a linear part made of
        # the first ctx.data bytes of data_in, and the rest of the frame as fragments it cannot
        # read directly; data_out is all of data_in and ctx_out echoes ctx_in.
        pkt = C.PacketBuf.build(data[:meta], headroom, 4096 - tailroom)
        pkt.frags = data[meta:]
    else:
        pkt = C.PacketBuf.build(data, headroom, 4096 - tailroom)
    xctx = C.XdpContext(pkt, ingress or 1, rxq)
    retval, duration = _timed(lambda: prog._exec(xctx, env, None), repeat)
    out = _finish(bytes(pkt.buf[pkt.data_meta:pkt.data_end]) + pkt.frags, data_size_out)
    ctx_out = bytes(md) if md is not None else b""
    return TestRunResult(retval, out, duration, ctx_out, env)


_SKB_CTX_SETTABLE = {"mark", "priority", "ingress_ifindex", "ifindex", "cb", "tstamp", "wire_len", "gso_segs",
                     "gso_size", "hwtstamp"}
GSO_MAX_SEGS = 65535
GSO_LEGACY_MAX_SIZE = 65536


def _eth_type_trans(frame: bytes, f: C.SkbFields) -> None:
    """net/ethernet/eth.c ``eth_type_trans`` on the loopback device (all-zero address)."""
    dest = frame[0:6]
    if dest[0] & 1:
        # lo's dev->broadcast is all-zero (loopback_setup never calls ether_setup), so even
        # ff:ff:ff:ff:ff:ff is PACKET_MULTICAST here -- measured.
        f.pkt_type = C.PACKET_MULTICAST
    elif dest != bytes(6):
        f.pkt_type = C.PACKET_OTHERHOST
    else:
        f.pkt_type = C.PACKET_HOST
    proto = int.from_bytes(frame[12:14], "big")
    if proto >= 0x600:
        f.protocol = int.from_bytes(frame[12:14], "little")  # skb->protocol is __be16
    elif frame[14:16] == b"\xff\xff":
        f.protocol = 0x0100  # htons(ETH_P_802_3)
    else:
        f.protocol = 0x0400  # htons(ETH_P_802_2)


#: ``sizeof(struct iphdr)`` / ``sizeof(struct ipv6hdr)`` by ``skb->protocol`` (network byte order
#: as :class:`~netstack.bpf.context.SkbFields` stores it, i.e. the little-endian read of the wire).
_L3_MIN_HEADER = {0x0008: 20, 0xDD86: 40}


def _check_l3_header(frame: bytes, f: C.SkbFields) -> None:
    """The L3 length rule of ``bpf_prog_test_run_skb`` (net/bpf/test_run.c), measured on 6.18.

    After ``eth_type_trans`` the kernel sets up the test socket from the IP header
    (``sk_family``, addresses), and refuses with ``-EINVAL`` a frame whose EtherType is IPv4 but
    which holds fewer than ``ETH_HLEN + sizeof(struct iphdr)`` = 34 bytes, or IPv6 and fewer
    than ``ETH_HLEN + sizeof(struct ipv6hdr)`` = 54 bytes -- for every skb program type
    (SCHED_CLS/ACT and SOCKET_FILTER alike), before ``ctx_in`` is converted.  Other EtherTypes
    (VLAN, ARP, MPLS, 802.3 lengths) run from 14 bytes on; the IP header's contents
    (version, IHL) are not looked at.  So a bare Ethernet header with an IP EtherType is refused.
    """
    need = _L3_MIN_HEADER.get(f.protocol)
    if need is not None and len(frame) < C.ETH_HLEN + need:
        raise TestRunError(E.EINVAL, f"frame too short for its L3 header ({len(frame)} < {C.ETH_HLEN + need})")


def _test_run_skb(prog: Program, data: bytes, repeat: int, ctx: bytes | None, env: RunEnv,
                  data_size_out: int | None) -> TestRunResult:
    is_l2 = prog.prog_type in (C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_PROG_TYPE_SCHED_ACT)
    if len(data) < C.ETH_HLEN:
        raise TestRunError(E.EINVAL, "frame shorter than ETH_HLEN")
    if len(data) > 4096 - C.NET_SKB_PAD - C.SKB_SHARED_INFO_SIZE:
        raise NotSupported("skb test_run frames larger than one page")
    raw = _ctx_init(ctx, C.SK_BUFF_SIZE)
    f = C.SkbFields()
    if raw is not None:
        g = lambda name: struct.unpack_from("<I", raw, C.SK_BUFF[name][0])[0]  # noqa: E731
        ifindex = g("ifindex")
        if ifindex > 1:  # dev_get_by_index comes before eth_type_trans and convert___skb_to_skb
            if ifindex not in env.devices:
                raise TestRunError(E.ENODEV, f"no device {ifindex}")
            f.ifindex = ifindex
    pkt = C.PacketBuf.build(data, C.NET_SKB_PAD, 4096 - C.SKB_SHARED_INFO_SIZE)
    mac = pkt.data
    _eth_type_trans(data, f)
    _check_l3_header(data, f)
    if raw is not None:
        for name, (off, size) in C.SK_BUFF.items():
            if name not in _SKB_CTX_SETTABLE and any(raw[off:off + size]):
                raise TestRunError(E.EINVAL, f"__sk_buff.{name} may not be set in ctx_in")
        if any(raw[181:184]):
            raise TestRunError(E.EINVAL, "__sk_buff padding must be zero")
        f.mark, f.priority, f.ingress_ifindex = g("mark"), g("priority"), g("ingress_ifindex")
        f.tstamp = struct.unpack_from("<Q", raw, 152)[0]
        f.cb[:] = raw[48:68]
        wire = g("wire_len")
        skb_len = len(data) - (0 if is_l2 else C.ETH_HLEN)
        if wire and (wire < skb_len or wire > GSO_LEGACY_MAX_SIZE):
            raise TestRunError(E.EINVAL, "wire_len out of range")
        f.wire_len = wire or skb_len
        if g("gso_segs") > GSO_MAX_SEGS:
            raise TestRunError(E.EINVAL, "gso_segs too large")
        f.gso_segs, f.gso_size = g("gso_segs"), g("gso_size")
        f.hwtstamp = struct.unpack_from("<Q", raw, 184)[0]
    if not is_l2:
        pkt.data += C.ETH_HLEN  # skb->data at the network header
    pkt.data_meta = pkt.data
    sctx = C.SkbContext(pkt, f, prog.prog_type)

    # One skb for every repeat (bpf_test_run runs the program ``repeat`` times on it): what a
    # VLAN helper did to its data and headers in one run is what the next run starts from.
    view: list[Packet | None] = [skb_legacy_view(pkt, mac)]

    def once() -> int:
        r0, view[0] = prog._exec_chain(sctx, env, view[0])
        return r0

    retval, duration = _timed(once, repeat)
    body = bytes(pkt.buf[pkt.data:pkt.data_end])
    out = _finish(body if is_l2 else bytes(C.ETH_HLEN) + body, data_size_out)
    return TestRunResult(retval, out, duration, sctx.to_struct() if raw is not None else b"", env)


def skb_legacy_view(pkt: C.PacketBuf, mac: int) -> Packet:
    """The LD_ABS/LD_IND view of a fresh skb: offsets from ``skb->data``, the MAC header at
    ``mac`` and the network header ``ETH_HLEN`` behind it (``eth_type_trans`` +
    ``skb_reset_network_header``), bytes read through to ``data_end`` of the buffer *as it is
    at the time of the load* (:class:`~netstack.bpf.helpers.LegacyWindow`), so a helper that
    writes or moves the packet never leaves a stale copy behind."""
    return Packet(H.LegacyWindow(pkt), pkt.data, mac, mac + C.ETH_HLEN)  # type: ignore[arg-type]


def _exec_skb(prog: Program, sctx: C.SkbContext, env: RunEnv, mac: int) -> int:
    """Run on an skb context; LD_ABS/LD_IND see the packet from ``skb->data`` up to data_end only."""
    return prog._exec_chain(sctx, env, skb_legacy_view(sctx.pkt, mac))[0]


def prog_test_run_full(prog: Program, data: bytes, repeat: int = 1, ctx: bytes | None = None, *,
                       env: RunEnv | None = None, data_size_out: int | None = None) -> TestRunResult:
    """``BPF_PROG_TEST_RUN`` with everything it reports (retval, data_out, duration, ctx_out)."""
    env = env or RunEnv()
    if prog.prog_type == C.BPF_PROG_TYPE_XDP:
        return _test_run_xdp(prog, bytes(data), repeat, ctx, env, data_size_out)
    if prog.prog_type in (C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_PROG_TYPE_SCHED_ACT, C.BPF_PROG_TYPE_SOCKET_FILTER):
        return _test_run_skb(prog, bytes(data), repeat, ctx, env, data_size_out)
    raise NotSupported(f"test_run for program type {prog.prog_type}")


def prog_test_run(prog: Program, data: bytes, repeat: int = 1, ctx: bytes | None = None) -> tuple[int, bytes, int]:
    """``(retval, data_out, duration)`` of ``BPF_PROG_TEST_RUN``; errors raise :class:`TestRunError`."""
    res = prog_test_run_full(prog, data, repeat, ctx)
    return res.retval, res.data_out, res.duration
