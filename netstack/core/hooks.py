"""eBPF attachment points in the device layer: generic XDP, tc clsact, packet-socket filters,
tracing programs.

Why a separate module: the kernel keeps these hooks behind static keys
(``generic_xdp_needed_key``, ``ingress_needed_key``/``egress_needed_key``) so a host without
programs pays one predictable branch per packet.  Here the keys are the module counters
:data:`generic_xdp_needed`, :data:`tcx_ingress_needed` and :data:`tcx_egress_needed`; the
datapath (``netstack/core/dev.py``) tests one of them and only then calls in.  Per-device
state lives on the device as ``dev.xdp_prog`` (an :class:`XdpAttachment`), ``dev.tcx_ingress``
/ ``dev.tcx_egress`` (a :class:`TcChain`), read with ``getattr(dev, name, None)`` so devices
that never had a program carry nothing.

What each hook reproduces:

* :func:`do_xdp_generic_list` -- net/core/dev.c ``do_xdp_generic`` /
  ``netif_receive_generic_xdp`` / ``bpf_prog_run_generic_xdp`` / ``generic_xdp_tx`` and
  net/core/filter.c ``xdp_do_generic_redirect`` (ifindex and devmap targets): the program
  sees the frame from the MAC header with 256 bytes of headroom; head/tail/meta adjustments
  are written back into the skb (``__skb_pull``/``__skb_push``, ``skb_set_tail_pointer``,
  ``skb_metadata_set``), a changed Ethernet header re-runs ``eth_type_trans``; XDP_TX and
  XDP_REDIRECT call the driver's ``start_xmit`` directly (no qdisc, no taps -- as
  ``netdev_start_xmit``), drops are ``kfree_skb_reason(skb, SKB_DROP_REASON_XDP)``.
* :func:`sch_handle_ingress` / :func:`sch_handle_egress` -- net/core/dev.c functions of the
  same names with ``tc_run``/``tcf_classify`` and net/sched/cls_bpf.c ``cls_bpf_classify``
  (direct-action opcodes: ``cls_bpf_exec_opcode``), filter.c ``skb_do_redirect``,
  ``__bpf_rx_skb``/``__bpf_tx_skb`` (``XMIT_RECURSION_LIMIT``).  The program runs on the skb
  itself, so afterwards the skb is what the helpers left: bytes, length and header offsets
  after ``bpf_skb_vlan_push``/``_pop``, ``protocol``, the out-of-band tag, the flow hash.
* :func:`attach_socket_filter` -- net/packet/af_packet.c ``packet_rcv``/``run_filter``:
  ``SO_ATTACH_BPF`` on the packet sockets (captures) bound to a device; 0 drops the frame
  for that socket only, ``n`` truncates it to ``n`` bytes.
* :func:`attach_trace_program` -- a program run at a named trace stage (``kfree_skb``,
  ``ip_rcv_core`` ... the names ``--trace`` prints) with :class:`TraceContext` as ctx.

A fault in a program (any :class:`~netstack.bpf.errors.BpfError`: what the kernel verifier
would have refused at load) never escapes: XDP treats it as XDP_ABORTED, tc as TC_ACT_SHOT,
a socket filter as 0, a tracing program as a skipped run; each is counted on the attachment.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from netstack.bpf import context as C
from netstack.bpf import helpers as H
from netstack.bpf import maps as M
from netstack.bpf.errors import BpfError, BpfRuntimeError, NotSupported
from netstack.bpf.memory import SpecialRegion
from netstack.bpf.progs import Program, RunEnv, _exec_skb
from netstack.core.drop_reason import DROP_REASONS, consume_skb, kfree_skb_reason
from netstack.core.eth import ETH_HLEN, eth_type_trans
from netstack.core.netdevice import IFF_UP
from netstack.packet.skb import DEFAULT_HEADROOM, UNSET

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.core.trace import Tracer
    from netstack.core.world import World
    from netstack.packet.skb import Packet

#: True once ``/tmp/bpf_hooks.patch`` (the three call sites in dev.py) is applied; tests that
#: need the real datapath (and the kernel differential) skip, saying so, while it is False.
DATAPATH_WIRED = True

#: Static keys (counts of attached programs, all worlds): the datapath's one test per packet.
generic_xdp_needed = 0
tcx_ingress_needed = 0
tcx_egress_needed = 0

VLAN_HLEN = 4
#: include/linux/netdevice.h: nested dev_queue_xmit calls before "recursion limit reached".
XMIT_RECURSION_LIMIT = 8
#: uapi bpf.h
BPF_F_INGRESS = 1
#: uapi if_packet.h
PACKET_OUTGOING = 4
XDP_ACTION_NAMES = {C.XDP_ABORTED: "XDP_ABORTED", C.XDP_DROP: "XDP_DROP", C.XDP_PASS: "XDP_PASS",
                    C.XDP_TX: "XDP_TX", C.XDP_REDIRECT: "XDP_REDIRECT"}
TC_ACT_NAMES = {C.TC_ACT_UNSPEC: "TC_ACT_UNSPEC", C.TC_ACT_OK: "TC_ACT_OK",
                C.TC_ACT_RECLASSIFY: "TC_ACT_RECLASSIFY", C.TC_ACT_SHOT: "TC_ACT_SHOT",
                C.TC_ACT_PIPE: "TC_ACT_PIPE", C.TC_ACT_STOLEN: "TC_ACT_STOLEN",
                C.TC_ACT_QUEUED: "TC_ACT_QUEUED", C.TC_ACT_REPEAT: "TC_ACT_REPEAT",
                C.TC_ACT_REDIRECT: "TC_ACT_REDIRECT", C.TC_ACT_TRAP: "TC_ACT_TRAP"}
#: The verdicts a direct-action cls_bpf program may return (``cls_bpf_exec_opcode``); any
#: other value is TC_ACT_UNSPEC: "continue with the next filter".
_DA_OPCODES = frozenset({C.TC_ACT_OK, C.TC_ACT_SHOT, C.TC_ACT_STOLEN, C.TC_ACT_TRAP,
                         C.TC_ACT_REDIRECT, C.TC_ACT_UNSPEC})

_xmit_recursion = 0


def _envs(world: Any) -> RunEnv:
    """A run environment whose ``bpf_ktime_get_ns`` is the world's virtual clock."""
    clock = world.clock
    return RunEnv(cpu=0, clock=lambda: clock.now)


def _dev_env(dev: "NetDevice") -> RunEnv:
    env = _envs(dev.net.world)  # type: ignore[union-attr]
    net = dev.net
    env.devices = {i: 1 for i in net.by_index} if net is not None else {}
    # bpf_fib_lookup (helper 69) answers from this namespace's FIB and neighbour table
    from netstack.bpf.fib_helper import make_fib_lookup  # fib/neighbour import dev: late
    env.fib_lookup = make_fib_lookup(net) if net is not None else None
    return env


def _trace(pkt: "Packet", stage: str, dev: "NetDevice | None" = None, verdict: str = "",
           info: str = "") -> None:
    if pkt.trace is not None:
        pkt.trace.event(pkt, stage, verdict, "", info, dev)


# =========================================================================== XDP (generic)
@dataclass(eq=False)
class XdpAttachment:
    """``dev->xdp_prog`` plus what ``ip link`` reports: mode (``xdpgeneric`` or ``xdp``),
    the object it came from, and counters (runs per action, faults)."""

    prog: Program
    mode: str = "xdpgeneric"
    actions: dict[int, int] = field(default_factory=dict)
    faults: int = 0
    batch: Any = None  # a jit.XdpBatch when the program is JIT-compiled
    maps: dict[str, Any] = field(default_factory=dict)  # the object's maps (ip link ... obj)

    def count(self, act: int) -> None:
        self.actions[act] = self.actions.get(act, 0) + 1


def xdp_attach(dev: "NetDevice", prog: Program, mode: str = "xdpgeneric") -> XdpAttachment:
    """``dev_xdp_attach``: install ``prog`` (replacing any previous one) in ``mode``.

    ``xdp`` (native) is accepted for veth, whose driver has ``ndo_bpf``; the program then runs
    at the same point as generic XDP (what differs in the kernel -- page-pool buffers, the
    per-queue ``xdp_*`` ethtool counters -- is not modelled), which ``ip link`` shows as
    ``xdp``.  Other devices refuse native mode as the kernel does (EOPNOTSUPP)."""
    global generic_xdp_needed
    if prog.prog_type != C.BPF_PROG_TYPE_XDP:
        raise BpfRuntimeError(f"program type {prog.prog_type} is not XDP")
    if mode not in ("xdpgeneric", "xdp"):
        raise NotSupported(f"not supported: XDP mode {mode}")
    if mode == "xdp" and dev.kind != "veth":
        import errno
        from netstack.errors import KernelError
        raise KernelError(errno.EOPNOTSUPP)
    old = getattr(dev, "xdp_prog", None)
    att = XdpAttachment(prog, mode)
    if _is_jitted(prog) and not _calls(prog, (H.BPF_FUNC_xdp_adjust_meta,)):
        from netstack.bpf.jit import XdpBatch
        att.batch = XdpBatch(prog, _dev_env(dev), ingress_ifindex=dev.ifindex)
    dev.xdp_prog = att  # type: ignore[attr-defined]
    if old is None:
        generic_xdp_needed += 1
    return att


def xdp_detach(dev: "NetDevice") -> bool:
    """Remove the device's XDP program; False if there was none."""
    global generic_xdp_needed
    if getattr(dev, "xdp_prog", None) is None:
        return False
    dev.xdp_prog = None  # type: ignore[attr-defined]
    generic_xdp_needed -= 1
    return True


def _is_jitted(prog: Program) -> bool:
    return type(prog.vm).__name__ == "JitProgVm"


def _calls(prog: Program, hids: tuple[int, ...]) -> bool:
    from netstack.bpf import insn as I
    call = I.BPF_JMP | I.BPF_CALL
    return any(i.opcode == call and i.src == 0 and i.imm in hids for i in prog.insns)


def xdp_generic_batch(pkts: list["Packet"]) -> list["Packet"]:
    """The receive-batch entry point: split ``pkts`` into runs of the same device, run
    :func:`do_xdp_generic_list` on runs whose device has a program, keep order."""
    out: list[Packet] = []
    i, n = 0, len(pkts)
    while i < n:
        dev = pkts[i].dev
        j = i + 1
        while j < n and pkts[j].dev is dev:
            j += 1
        if getattr(dev, "xdp_prog", None) is not None:
            out.extend(do_xdp_generic_list(dev, pkts[i:j]))  # type: ignore[arg-type]
        else:
            out.extend(pkts[i:j])
        i = j
    return out


def do_xdp_generic_list(dev: "NetDevice", pkts: list["Packet"]) -> list["Packet"]:
    """``do_xdp_generic`` for a batch received on ``dev``: returns the XDP_PASS packets (as
    the skbs the stack continues with); every other packet was transmitted, redirected or
    freed here."""
    att: XdpAttachment | None = getattr(dev, "xdp_prog", None)
    if att is None or not pkts:
        return pkts
    frames = [bytes(p.buf[p.mac_header:p.tail]) for p in pkts]
    results: list[tuple[int, bytes, int, tuple | None]] = []
    if att.batch is not None:
        batch = att.batch
        env = batch.env
        redirects: list[tuple | None] = []
        # A redirect is remembered per run in env.redirect; a run that does not redirect
        # leaves a stale value, so batches with redirects are run one frame at a time.
        if _calls(att.prog, (H.BPF_FUNC_redirect, H.BPF_FUNC_redirect_map)):
            acts: list[int | None] = []
            outs: list[bytes | None] = []
            for f in frames:
                env.redirect = None
                acts.extend(batch.run([f], frames_out=True))
                outs.extend(batch.frames_out)
                redirects.append(env.redirect)
        else:
            acts = batch.run(frames, frames_out=True)
            outs = batch.frames_out
            redirects = [None] * len(frames)
        for a, o, r in zip(acts, outs, redirects):
            if a is None or o is None:
                att.faults += 1
                results.append((C.XDP_ABORTED, b"", 0, None))
            else:
                results.append((a, o, 0, r))
    else:
        env = _dev_env(dev)
        for f in frames:
            env.redirect = None
            env.tail_calls = 0
            results.append(_run_xdp_one(att, f, env, dev.ifindex))
    passed: list[Packet] = []
    for pkt, frame, (act, out, metalen, redir) in zip(pkts, frames, results):
        att.count(act)
        _trace(pkt, "bpf_prog_run_xdp", dev, XDP_ACTION_NAMES.get(act, str(act)),
               f"prog={att.prog.name or att.prog.prog_id}")
        if act in (C.XDP_PASS, C.XDP_TX, C.XDP_REDIRECT):
            if not _xdp_writeback(pkt, dev, frame, out, metalen, act):
                continue
        if act == C.XDP_PASS:
            passed.append(pkt)
        elif act == C.XDP_TX:
            generic_xdp_tx(pkt, dev, att)
        elif act == C.XDP_REDIRECT:
            _xdp_do_generic_redirect(pkt, dev, att, redir)
        else:
            if act != C.XDP_DROP:
                # bpf_warn_invalid_xdp_action for unknown values, then trace_xdp_exception
                _trace(pkt, "xdp_exception", dev, XDP_ACTION_NAMES.get(act, str(act)))
            kfree_skb_reason(pkt, "XDP", dev.net)
    return passed


def _run_xdp_one(att: XdpAttachment, frame: bytes, env: RunEnv, ifindex: int
                 ) -> tuple[int, bytes, int, tuple | None]:
    """One ``bpf_prog_run_xdp``: (action, [meta|frame] after the run, metalen, redirect)."""
    pkt = C.PacketBuf.build(frame, C.XDP_PACKET_HEADROOM, 4096 - C.SKB_SHARED_INFO_SIZE)
    ctx = C.XdpContext(pkt, ifindex, 0)
    try:
        act = att.prog._exec(ctx, env, None) & 0xFFFFFFFF
    except BpfError:
        att.faults += 1
        return C.XDP_ABORTED, b"", 0, None
    return act, bytes(pkt.buf[pkt.data_meta:pkt.data_end]), pkt.data - pkt.data_meta, env.redirect


def _xdp_writeback(pkt: "Packet", dev: "NetDevice", orig: bytes, out: bytes, metalen: int,
                   act: int) -> bool:
    """The tail of ``bpf_prog_run_generic_xdp``: make the skb what the program left in the
    xdp_buff.  For XDP_PASS ``data`` ends at the network header (mac_len 14 past the new
    start); for XDP_TX/REDIRECT at the MAC header (``__skb_push(skb, mac_len)``)."""
    frame = out[metalen:]
    if len(frame) < ETH_HLEN:
        # The kernel would hand on an skb shorter than its own MAC header; netstack refuses
        # to build one and counts the packet as too small instead.
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", dev.net)
        return False
    if frame != orig or metalen:
        hr = max(pkt.mac_header - pkt.head, 0) + 256
        buf = bytearray(hr) + out
        pkt.buf = buf
        pkt.head = 0
        pkt.mac_header = hr + metalen
        pkt.tail = len(buf)
        pkt.data = pkt.mac_header + ETH_HLEN
        pkt.network_header = pkt.data
        if metalen:
            pkt.xdp_metalen = metalen  # skb_metadata_set
        old = orig[:14]
        new = frame[:14]
        if ((old[0:6] == dev.address) != (new[0:6] == dev.address) or (old[0] & 1) != (new[0] & 1)
                or old[12:14] != new[12:14]):
            pkt.data = pkt.mac_header
            pkt.protocol = eth_type_trans(pkt, dev)
    if act != C.XDP_PASS:
        pkt.data = pkt.mac_header
        pkt.xdp_metalen = 0
    return True


def generic_xdp_tx(pkt: "Packet", dev: "NetDevice", att: XdpAttachment | None = None) -> None:
    """``generic_xdp_tx``: straight to the driver (``netdev_start_xmit``), no qdisc, no taps;
    a stopped queue (device down) is ``trace_xdp_exception`` + tx_dropped + drop."""
    pkt.dev = dev
    if not dev.flags & IFF_UP:
        _trace(pkt, "xdp_exception", dev, "XDP_TX")
        dev.stats.tx_dropped += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", dev.net)
        return
    dev.start_xmit(pkt, False)


def _xdp_ok_fwd_dev(fwd: "NetDevice", length: int) -> str:
    """include/linux/filter.h ``xdp_ok_fwd_dev``: '' or the errno name."""
    if not fwd.flags & IFF_UP:
        return "ENETDOWN"
    if length > fwd.mtu + ETH_HLEN + VLAN_HLEN:
        return "EMSGSIZE"
    return ""


def _xdp_do_generic_redirect(pkt: "Packet", dev: "NetDevice", att: XdpAttachment,
                             redir: tuple | None) -> None:
    """``xdp_do_generic_redirect``: to an ifindex or a devmap slot (an XSKMAP slot gives the
    frame to the socket stand-in); any failure is ``trace_xdp_redirect_err`` and the skb is
    dropped with reason XDP (``do_xdp_generic``'s out_redir)."""
    net = dev.net
    target: NetDevice | None = None
    err = "EINVAL"
    if redir is not None and redir[0] == "ifindex":
        target = net.get_by_index(redir[1]) if net is not None else None
    elif redir is not None and redir[0] == "map":
        m, key = redir[1], redir[2]
        val = m.get(key) if isinstance(m, M.FdArray) else None
        if m.map_type == M.BPF_MAP_TYPE_XSKMAP and isinstance(val, M.XskSocket):
            val.rx.append(bytes(pkt.buf[pkt.mac_header:pkt.tail]))
            _trace(pkt, "xdp_redirect_map", dev, "XDP_REDIRECT", f"xsk={val.name}")
            consume_skb(pkt)
            return
        if m.map_type == M.BPF_MAP_TYPE_DEVMAP and isinstance(val, int):
            target = net.get_by_index(val) if net is not None else None
    if target is not None:
        err = _xdp_ok_fwd_dev(target, pkt.tail - pkt.mac_header)
        if not err:
            _trace(pkt, "xdp_redirect", dev, "XDP_REDIRECT", f"to_ifindex={target.ifindex}")
            generic_xdp_tx(pkt, target, att)
            return
    _trace(pkt, "xdp_redirect_err", dev, "XDP_REDIRECT", f"err={err}")
    kfree_skb_reason(pkt, "XDP", net)


# =========================================================================== tc clsact
@dataclass(eq=False)
class TcFilter:
    """One ``tc filter ... bpf`` instance (a ``tcf_proto`` with one cls_bpf program)."""

    pref: int
    prog: Program
    direct_action: bool = True
    name: str = ""           # "FILE:[SEC]" as tc shows it
    handle: int = 1
    classid: int = 0         # the filter's own classid (non-da), 0 = none
    protocol: str = "all"
    runs: int = 0
    faults: int = 0
    maps: dict[str, Any] = field(default_factory=dict)  # the object's maps (tc ... obj)


@dataclass(eq=False)
class TcChain:
    """The clsact qdisc's filter list for one direction, in ``pref`` order."""

    filters: list[TcFilter] = field(default_factory=list)
    drops: int = 0

    def add(self, f: TcFilter) -> None:
        """Insert in ``tcf_classify`` order: by pref; within one pref (one cls_bpf
        instance) the newest first (``list_add_rcu`` at the head of ``head->plist``)."""
        same = [x for x in self.filters if x.pref == f.pref]
        taken = {x.handle for x in same}
        f.handle = next(h for h in range(1, len(taken) + 2) if h not in taken)
        at = next((i for i, x in enumerate(self.filters) if x.pref >= f.pref), len(self.filters))
        self.filters.insert(at, f)

    def auto_pref(self) -> int:
        """``tcf_auto_prio``: one below the first pref >= 0x8000 (the insertion point
        ``tc_new_tfilter`` looks up for prio 0x8000), or 0xC000 (49152) if there is none."""
        high = [x.pref for x in self.filters if x.pref >= 0x8000]
        return min(high) - 1 if high else 0xC000


def clsact_add(dev: "NetDevice") -> bool:
    """``tc qdisc add dev X clsact``: create both chains; False if clsact already exists."""
    global tcx_ingress_needed, tcx_egress_needed
    if getattr(dev, "tcx_ingress", None) is not None:
        return False
    dev.tcx_ingress = TcChain()  # type: ignore[attr-defined]
    dev.tcx_egress = TcChain()  # type: ignore[attr-defined]
    tcx_ingress_needed += 1
    tcx_egress_needed += 1
    return True


def clsact_del(dev: "NetDevice") -> bool:
    """``tc qdisc del dev X clsact``: the qdisc and all its filters; False if none."""
    global tcx_ingress_needed, tcx_egress_needed
    if getattr(dev, "tcx_ingress", None) is None:
        return False
    dev.tcx_ingress = None  # type: ignore[attr-defined]
    dev.tcx_egress = None  # type: ignore[attr-defined]
    tcx_ingress_needed -= 1
    tcx_egress_needed -= 1
    return True


def tc_attach(dev: "NetDevice", direction: str, prog: Program, *, pref: int = 0,
              direct_action: bool = True, name: str = "") -> TcFilter:
    """``tc filter add dev X ingress|egress [pref N] bpf [da] ...``; ``pref`` 0 picks the
    kernel's automatic one (49152, then one below the current lowest).  Needs clsact."""
    if prog.prog_type not in (C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_PROG_TYPE_SCHED_ACT):
        raise BpfRuntimeError(f"program type {prog.prog_type} is not a tc classifier")
    chain = _chain(dev, direction)
    if chain is None:
        raise NotSupported("not supported: tc filter without a clsact qdisc")
    if not pref:
        pref = chain.auto_pref()
    f = TcFilter(pref, prog, direct_action, name)
    chain.add(f)
    return f


def _chain(dev: "NetDevice", direction: str) -> TcChain | None:
    if direction not in ("ingress", "egress"):
        raise NotSupported(f"not supported: tc direction {direction}")
    return getattr(dev, "tcx_ingress" if direction == "ingress" else "tcx_egress", None)


def _skb_fields(pkt: "Packet", dev: "NetDevice", ingress: bool = False) -> C.SkbFields:
    """The ``__sk_buff`` view of ``pkt`` (filter.c ``bpf_convert_ctx_access``).  ``wire_len``
    is ``qdisc_skb_cb(skb)->pkt_len`` = ``skb->len`` when ``qdisc_pkt_len_segs_init`` ran:
    without the MAC header at ingress (data at the network header), with it at egress."""
    f = C.SkbFields()
    f.pkt_type = pkt.pkt_type
    f.mark = pkt.mark & 0xFFFFFFFF
    f.queue_mapping = pkt.queue_mapping
    f.protocol = ((pkt.protocol & 0xFF) << 8) | ((pkt.protocol >> 8) & 0xFF)  # __be16
    if pkt.vlan_proto:
        f.vlan_present = 1
        f.vlan_tci = pkt.vlan_tci
        f.vlan_proto = ((pkt.vlan_proto & 0xFF) << 8) | (pkt.vlan_proto >> 8)
    f.priority = pkt.priority & 0xFFFFFFFF
    f.ingress_ifindex = pkt.skb_iif
    f.ifindex = dev.ifindex
    f.tc_index = getattr(pkt, "tc_index", 0)
    cb = getattr(pkt, "qdisc_cb", None)
    if cb is not None:
        f.cb[:] = cb
    f.hash = pkt.hash
    f.tstamp = pkt.tstamp
    f.wire_len = pkt.tail - (pkt.data if ingress else pkt.mac_header)
    f.gso_segs = pkt.gso_segs
    f.gso_size = pkt.gso_size
    return f


def _swap16(v: int) -> int:
    """``__be16`` as :class:`~netstack.bpf.context.SkbFields` keeps it <-> host order."""
    return ((v & 0xFF) << 8) | ((v >> 8) & 0xFF)


def _tc_mac_len(pkt: "Packet", ingress: bool) -> int:
    """``skb->network_header - skb->mac_header`` as the program starts: at ingress netstack's
    receive path has ``data`` where the network header is (``__netif_receive_skb_core``
    resets it there; ``ip_rcv`` sets ``network_header`` later); at egress the network header
    the stack set (18 on a QinQ skb whose inner tag ``validate_xmit_vlan`` wrote into the
    packet), or ``ETH_HLEN`` for a frame that never had one."""
    nh = pkt.data if ingress else pkt.network_header
    if nh == UNSET or not ETH_HLEN <= nh - pkt.mac_header <= pkt.tail - pkt.mac_header:
        return ETH_HLEN  # no usable network header: the LD_ABS view of a fresh skb
    return nh - pkt.mac_header


def _tc_writeback_data(pkt: "Packet", before: bytes, after: bytes, ingress: bool,
                       mac_len: int) -> None:
    """Make ``pkt`` the skb the helpers left: a cls_bpf program runs on the skb itself
    (net/sched/cls_bpf.c ``cls_bpf_classify``), so what ``bpf_skb_store_bytes`` wrote and
    what ``bpf_skb_vlan_push``/``_pop`` inserted or removed is the skb afterwards.

    ``before``/``after`` are the frame from the MAC header to the tail, before and after the
    run (the program always leaves ``skb->data`` at the MAC header); ``mac_len`` is where
    the helpers left the network header, counted from the new MAC header
    (:meth:`~netstack.bpf.progs.Program.run_tc_headers`, which tracks it helper by helper:
    ``skb_vlan_push`` moves it back with the MAC header, ``__skb_vlan_pop`` keeps it on its
    bytes but at least ``ETH_HLEN`` past the new MAC header -- the 6.18 rules pinned by
    tests/core/test_vlan_push_headers.py and tests/bpf/test_vlan_helpers_kernel.py).  The
    only helpers that change the length here are the VLAN ones (``helpers.ALLOWED``), and
    they change it at the front; the tail never moves, so the new MAC header is the old one
    minus the length change.

    ``skb->data`` afterwards: at egress the MAC header (nothing is pulled); at ingress
    ``cls_bpf_classify`` ends with ``__skb_pull(skb, skb->mac_len)`` after the helpers'
    ``skb_reset_mac_len``, i.e. on the network header -- netstack's receive path has ``data``
    at the network header then, so ``data`` is set to it."""
    delta = len(after) - len(before)
    mac = pkt.mac_header
    new_mac = mac - delta
    if new_mac < pkt.head:
        # skb_cow_head in __vlan_insert_tag: more headroom (pskb_expand_head); every header
        # offset moves with the data
        pkt.expand_head(pkt.head - new_mac + DEFAULT_HEADROOM)
        mac = pkt.mac_header
        new_mac = mac - delta
    if delta or after != before:
        pkt.buf[new_mac:pkt.tail] = after
    pkt.mac_header = new_mac
    nh = new_mac + mac_len
    if ingress:
        pkt.data = nh
        if pkt.network_header != UNSET:
            pkt.network_header = nh
    else:
        pkt.data = new_mac
        if pkt.network_header != UNSET:
            pkt.network_header = nh


def _tc_writeback_vlan(pkt: "Packet", fields: C.SkbFields) -> None:
    """The skb fields the VLAN helpers (and ``BPF_F_INVALIDATE_HASH``) change and a program
    cannot write directly: ``protocol`` (``vlan_set_encap_proto`` on a pop, the old TPID
    on a push over a tag), the out-of-band tag (``__vlan_hwaccel_put_tag`` /
    ``__vlan_hwaccel_clear_tag``) and the flow hash (``skb_clear_hash``)."""
    proto = _swap16(fields.protocol)
    if proto != pkt.protocol:
        pkt.protocol = proto
    if fields.vlan_present:
        vproto, tci = _swap16(fields.vlan_proto), fields.vlan_tci
    else:
        vproto = tci = 0
    if vproto != pkt.vlan_proto or tci != pkt.vlan_tci:
        pkt.vlan_proto = vproto
        pkt.vlan_tci = tci
    if pkt.hash and not fields.hash:
        pkt.hash = 0
        pkt.l4_hash = False
        pkt.sw_hash = False


def _tc_classify(chain: TcChain, pkt: "Packet", dev: "NetDevice", env: RunEnv,
                 ingress: bool) -> int:
    """``tcf_classify`` over cls_bpf filters.  The program sees data at the MAC header
    (ingress pushes mac_len first, egress is there already).  After each program the skb is
    what the program left (:func:`_tc_writeback_data`, :func:`_tc_writeback_vlan`): bytes,
    length and header offsets, ``protocol``, the out-of-band tag, and the fields it wrote."""
    frame = bytes(pkt.buf[pkt.mac_header:pkt.tail])
    fields = _skb_fields(pkt, dev, ingress)
    mac_len = _tc_mac_len(pkt, ingress)
    for f in chain.filters:
        f.runs += 1
        env.redirect = None
        env.tail_calls = 0
        fields.tc_classid = 0
        try:
            run = f.prog.run_tc_headers(frame, env, fields, mac_len)
        except BpfError:
            f.faults += 1
            return C.TC_ACT_SHOT
        res, out, fields = run.verdict, run.frame, run.fields
        if out != frame or run.mac_len != mac_len:
            _tc_writeback_data(pkt, frame, out, ingress, run.mac_len)
            frame = out
            mac_len = run.mac_len
        _tc_writeback_vlan(pkt, fields)
        pkt.mark = fields.mark
        pkt.priority = fields.priority
        pkt.tstamp = fields.tstamp
        if fields.queue_mapping != pkt.queue_mapping:
            pkt.queue_mapping = fields.queue_mapping
        pkt.qdisc_cb = bytes(fields.cb)
        pkt.tc_index = fields.tc_index
        if f.direct_action:
            classid = fields.tc_classid  # TC_H_MAJ(prog classid 0) | qdisc_skb_cb->tc_classid
            ret = res if res in _DA_OPCODES else C.TC_ACT_UNSPEC
            if ret == C.TC_ACT_UNSPEC:
                continue
        else:
            if res == 0:
                continue
            classid = f.classid if res == -1 else res & 0xFFFFFFFF
            ret = C.TC_ACT_OK  # tcf_exts_exec with no actions
        if ret in (C.TC_ACT_OK, C.TC_ACT_RECLASSIFY):
            pkt.tc_index = classid & 0xFFFF  # tc_run: skb->tc_index = TC_H_MIN(res.classid)
        if ret == C.TC_ACT_REDIRECT:
            pkt.tc_redirect = env.redirect
        return ret
    return C.TC_ACT_UNSPEC


def sch_handle_ingress(pkt: "Packet") -> "Packet | None":
    """net/core/dev.c ``sch_handle_ingress``: run the clsact ingress filters of ``pkt.dev``
    (called after the taps, ``skb->data`` at the network header).  Returns the skb to go on
    with, or None when it was dropped (TC_INGRESS), stolen or redirected."""
    dev = pkt.dev
    chain: TcChain | None = getattr(dev, "tcx_ingress", None)
    if chain is None or not chain.filters:
        return pkt
    env = _dev_env(dev)  # type: ignore[arg-type]
    ret = _tc_classify(chain, pkt, dev, env, True)  # type: ignore[arg-type]
    _trace(pkt, "sch_handle_ingress", dev, TC_ACT_NAMES.get(ret, str(ret)))
    if ret == C.TC_ACT_REDIRECT:
        pkt.data = pkt.mac_header  # __skb_push(skb, skb->mac_len)
        skb_do_redirect(pkt, dev, env.redirect)  # type: ignore[arg-type]
        return None
    if ret == C.TC_ACT_SHOT:
        chain.drops += 1
        kfree_skb_reason(pkt, "TC_INGRESS", dev.net)  # type: ignore[union-attr]
        return None
    if ret in (C.TC_ACT_STOLEN, C.TC_ACT_QUEUED, C.TC_ACT_TRAP):
        consume_skb(pkt)
        return None
    return pkt


def sch_handle_egress(pkt: "Packet", dev: "NetDevice | None" = None) -> "Packet | None":
    """net/core/dev.c ``sch_handle_egress``: run the clsact egress filters of ``dev`` (default
    ``pkt.dev``) on a packet about to be queued (``skb->data`` at the MAC header)."""
    if dev is None:
        dev = pkt.dev
    chain: TcChain | None = getattr(dev, "tcx_egress", None)
    if chain is None or not chain.filters:
        return pkt
    pkt.dev = dev
    pkt.mac_header = pkt.data  # skb_reset_mac_header in __dev_queue_xmit
    env = _dev_env(dev)  # type: ignore[arg-type]
    ret = _tc_classify(chain, pkt, dev, env, False)  # type: ignore[arg-type]
    _trace(pkt, "sch_handle_egress", dev, TC_ACT_NAMES.get(ret, str(ret)))
    if ret == C.TC_ACT_REDIRECT:
        skb_do_redirect(pkt, dev, env.redirect)  # type: ignore[arg-type]
        return None
    if ret == C.TC_ACT_SHOT:
        chain.drops += 1
        kfree_skb_reason(pkt, "TC_EGRESS", dev.net)  # type: ignore[union-attr]
        return None
    if ret in (C.TC_ACT_STOLEN, C.TC_ACT_QUEUED, C.TC_ACT_TRAP):
        consume_skb(pkt)
        return None
    return pkt


def skb_do_redirect(pkt: "Packet", dev: "NetDevice", redir: tuple | None) -> None:
    """filter.c ``skb_do_redirect`` for ``bpf_redirect(ifindex, flags)``: BPF_F_INGRESS
    delivers on the target (``__bpf_rx_skb``: forwardable check, scrub, ``eth_type_trans``,
    ``netif_rx``), otherwise ``dev_queue_xmit`` on it (``__bpf_tx_skb``, with the
    recursion limit).  A missing target is ``kfree_skb`` (NOT_SPECIFIED)."""
    global _xmit_recursion
    from netstack.core.dev import dev_queue_xmit_list, netif_rx
    net = dev.net
    target = net.get_by_index(redir[1]) if redir is not None and net is not None else None
    flags = redir[2] if redir is not None else 0
    if target is None:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    if pkt.tail - pkt.mac_header <= 0:
        # __bpf_redirect_common: no link-layer header / empty skb -> kfree_skb, -ERANGE
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    _trace(pkt, "skb_do_redirect", dev, "", f"to={target.name} flags={flags}")
    if flags & BPF_F_INGRESS:
        if not target.flags & IFF_UP:
            target.stats.rx_dropped += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return
        # skb_scrub_packet(skb, xnet) + priority = 0
        xnet = target.net is not net
        pkt.skb_iif = 0
        pkt.dst = None
        pkt.ct = None
        pkt.priority = 0
        if xnet:
            pkt.mark = 0
            pkt.tstamp = 0
        pkt.data = pkt.mac_header
        pkt.protocol = eth_type_trans(pkt, target)
        netif_rx(pkt)
        return
    if _xmit_recursion >= XMIT_RECURSION_LIMIT:
        # "bpf: recursion limit reached on datapath, buggy bpf program?"
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    pkt.data = pkt.mac_header
    _xmit_recursion += 1
    try:
        dev_queue_xmit_list(target, [pkt])
    finally:
        _xmit_recursion -= 1


def tc_detach(dev: "NetDevice", direction: str, pref: int = 0) -> int:
    """``tc filter del dev X ingress|egress [pref N]``: how many filters were removed."""
    chain = _chain(dev, direction)
    if chain is None:
        return 0
    before = len(chain.filters)
    chain.filters = [f for f in chain.filters if pref and f.pref != pref]
    return before - len(chain.filters)


# =========================================================================== socket filters
@dataclass(eq=False)
class SocketFilter:
    """``SO_ATTACH_BPF`` on the packet sockets (captures) of one device: counters per verdict."""

    net: "Net"
    dev: "NetDevice"
    prog: Program
    accepted: int = 0
    truncated: int = 0
    filtered: int = 0
    faults: int = 0
    _wrapped: list[tuple[dict, Callable, Callable]] = field(default_factory=list)

    def run(self, pkt: "Packet", outgoing: bool = False) -> int:
        """``run_filter``: the snap length the program allows (0 = not for this socket).
        The program sees the frame from the MAC header (a SOCK_RAW socket pushes it); a
        transmitted frame is the ``PACKET_OUTGOING`` clone ``dev_queue_xmit_nit`` makes."""
        frame = bytes(pkt.buf[_l2_start(pkt, outgoing):pkt.tail])
        pb = C.PacketBuf.build(frame, C.NET_SKB_PAD, max(4096, C.NET_SKB_PAD + len(frame)))
        fields = _skb_fields(pkt, self.dev)
        if outgoing:
            fields.pkt_type = PACKET_OUTGOING
        fields.cb[:] = bytes(20)  # bpf_prog_run_clear_cb
        sctx = C.SkbContext(pb, fields, C.BPF_PROG_TYPE_SOCKET_FILTER)
        env = _dev_env(self.dev)
        try:
            res = _exec_skb(self.prog, sctx, env, pb.data) & 0xFFFFFFFF
        except BpfError:
            self.faults += 1
            return 0
        return res

    def detach(self) -> None:
        """``SO_DETACH_FILTER``: restore the unfiltered taps."""
        for table, orig, wrapper in self._wrapped:
            lst = table.get(self.dev.ifindex)
            if lst is not None and wrapper in lst:
                lst[lst.index(wrapper)] = orig
        self._wrapped.clear()


def _l2_start(pkt: "Packet", outgoing: bool) -> int:
    """Where the frame starts: on transmit ``skb->data`` is at the MAC header (the tx path
    need not have set ``mac_header``); on receive ``mac_header``."""
    return pkt.data if outgoing else pkt.mac_header


def _snapped(pkt: "Packet", snaplen: int, outgoing: bool) -> "Packet":
    """The frame a capture gets when ``snaplen`` < its length: a shallow copy whose tail is
    cut (the socket's copy; the packet itself goes on untouched)."""
    from netstack.packet.skb import Packet
    p = Packet.__new__(Packet)
    for name in Packet._HOT:
        setattr(p, name, getattr(pkt, name))
    p.__dict__.update(pkt.__dict__)
    p.tail = _l2_start(pkt, outgoing) + snaplen
    p.data = min(p.data, p.tail)
    return p


def attach_socket_filter(net: "Net", dev: "NetDevice", prog: Program) -> SocketFilter:
    """Attach a SOCKET_FILTER program to every capture (packet socket) bound to ``dev`` in
    ``net``, received and transmitted frames alike: return value 0 = the socket does not get
    the frame, ``n`` = it gets the first ``min(n, len)`` bytes (packet_rcv ``snaplen``)."""
    if prog.prog_type != C.BPF_PROG_TYPE_SOCKET_FILTER:
        raise BpfRuntimeError(f"program type {prog.prog_type} is not a socket filter")
    sf = SocketFilter(net, dev, prog)
    for table in (net.rx_taps, net.tx_taps):
        lst = table.get(dev.ifindex)
        if not lst:
            continue
        for i, tap in enumerate(lst):
            wrapper = _filtered_tap(sf, tap, table is net.tx_taps)
            lst[i] = wrapper
            sf._wrapped.append((table, tap, wrapper))
    return sf


def _filtered_tap(sf: SocketFilter, tap: Callable[["Packet"], None], outgoing: bool
                  ) -> Callable[["Packet"], None]:
    def filtered(pkt: "Packet") -> None:
        res = sf.run(pkt, outgoing)
        if not res:
            sf.filtered += 1
            return
        n = pkt.tail - _l2_start(pkt, outgoing)
        if res < n:
            sf.truncated += 1
            tap(_snapped(pkt, res, outgoing))
        else:
            sf.accepted += 1
            tap(pkt)
    return filtered


# =========================================================================== tracing
#: ``BPF_PROG_TYPE_TRACEPOINT`` (uapi bpf.h): the type tracing programs are loaded as.
BPF_PROG_TYPE_TRACEPOINT = 5
#: bpf_trace.c ``tp_prog_func_proto`` → ``bpf_tracing_func_proto``, restricted to the helpers
#: netstack models (maps, ktime, trace_printk, prandom, cpu id, tail call, ring buffer, perf).
H.ALLOWED.setdefault(BPF_PROG_TYPE_TRACEPOINT, frozenset(H._BASE))

#: ``struct netstack_trace_ctx`` (the ctx of a tracing program), little-endian:
#:   u64 pkt_id @0     netstack's packet id (stands in for the skbaddr of skb tracepoints)
#:   u32 len @8        skb->len at the stage
#:   u32 protocol @12  skb->protocol in host order (0x0800), as the skb tracepoints record it
#:   u32 ifindex @16   ifindex of the device of the event (0 if none)
#:   u32 reason @20    enum skb_drop_reason (kfree_skb only, else 0): DROP_REASONS index + 2
#:                     (SKB_NOT_DROPPED_YET = 0, SKB_CONSUMED = 1, NOT_SPECIFIED = 2, ...)
#:   u32 mark @24, u32 pkt_type @28
#:   u64 tstamp @32    virtual time of the event in ns
TRACE_CTX = {"pkt_id": (0, 8), "len": (8, 4), "protocol": (12, 4), "ifindex": (16, 4),
             "reason": (20, 4), "mark": (24, 4), "pkt_type": (28, 4), "tstamp": (32, 8)}
TRACE_CTX_SIZE = 40
_REASON_VALUE = {name: i + 2 for i, name in enumerate(DROP_REASONS)}


def drop_reason_value(name: str) -> int:
    """The ``reason`` a tracing program reads for a drop reason name."""
    return _REASON_VALUE[name]


class TraceContext(SpecialRegion):
    """Read-only ``struct netstack_trace_ctx`` (aligned loads of any size inside it, as
    ``tp_prog_is_valid_access`` allows; stores refused)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def load(self, off: int, size: int) -> int:
        if off < 0 or off + size > TRACE_CTX_SIZE or off % size:
            raise BpfRuntimeError(f"invalid bpf_context access off={off} size={size}")
        return int.from_bytes(self.raw[off:off + size], "little")

    def store(self, off: int, size: int, value: int) -> None:
        raise BpfRuntimeError(f"invalid bpf_context access off={off} size={size} (read-only ctx)")


@dataclass(eq=False)
class TraceAttachment:
    """A program attached to a trace stage; ``runs``/``faults`` count its invocations."""

    world: "World"
    stage: str
    prog: Program
    runs: int = 0
    faults: int = 0
    own_tracer: bool = False

    def __call__(self, pkt: "Packet", stage: str, verdict: str, reason: str, info: str,
                 dev: Any) -> None:
        d = dev if dev is not None else pkt.dev
        raw = struct.pack("<QIIIIIIQ", pkt.id, max(pkt.tail - pkt.data, 0), pkt.protocol & 0xFFFF,
                          getattr(d, "ifindex", 0) or 0,
                          _REASON_VALUE.get(reason, 0) if stage == "kfree_skb" else 0,
                          pkt.mark & 0xFFFFFFFF, pkt.pkt_type, self.world.clock.now)
        ctx = TraceContext(raw)
        env = _envs(self.world)
        prog = self.prog
        self.runs += 1
        while True:  # Program._exec's loop: a tail call replaces the running program
            vm = prog.vm
            vm.env, vm.ctx = env, ctx  # type: ignore[attr-defined]
            vm.mem.reset()
            ptr = vm.mem.map_special(ctx, name="ctx")
            try:
                vm.run((ptr,))
                return
            except H.TailCall as tc:
                if not isinstance(tc.prog, Program) or tc.prog.prog_type != prog.prog_type:
                    self.faults += 1
                    return
                prog = tc.prog
            except BpfError:
                self.faults += 1
                return

    def detach(self) -> None:
        """Remove the program; a tracer created only for tracing programs goes away with the
        last one (new packets then carry no tracer again)."""
        tracer: Tracer | None = self.world.tracer
        if tracer is None:
            return
        hooks = tracer.hooks.get(self.stage, [])
        if self in hooks:
            hooks.remove(self)
        if not hooks:
            tracer.hooks.pop(self.stage, None)
        if self.own_tracer and not tracer.hooks:
            self.world.tracer = None


def load_trace_program(path: str, which: str) -> tuple[Program, dict[str, Any]]:
    """Load the program ``which`` (function or section name) of a clang object as
    ``BPF_PROG_TYPE_TRACEPOINT`` with the object's maps: ``(program, {name: map})``.

    The path-sensitive verifier (netstack.bpf.verifier) has no context rules for this
    netstack-defined ctx, so it is not run here; :class:`TraceContext` enforces the rules
    (in bounds, aligned, read-only) at run time instead."""
    from netstack.bpf import loader
    spec = loader.open_object(path)
    p = spec.program(which)
    maps = {name: loader.create_model_map(ms) for name, ms in spec.maps.items()}
    code = spec.link(p, lambda ms: maps[ms.name].fd)
    return Program(BPF_PROG_TYPE_TRACEPOINT, code, name=p.name[:15], verifier=False), maps


def attach_trace_program(world: "World", stage: str, prog: Program) -> TraceAttachment:
    """Run ``prog`` (``BPF_PROG_TYPE_TRACEPOINT``) each time a packet passes ``stage`` (a
    name ``--trace`` prints, e.g. ``kfree_skb``).  Without ``--trace`` a silent tracer is
    installed on the world so new packets carry it (as attaching a program to a tracepoint
    enables the tracepoint); it records nothing."""
    from netstack.core.trace import Tracer
    if prog.prog_type != BPF_PROG_TYPE_TRACEPOINT:
        raise BpfRuntimeError(f"program type {prog.prog_type} is not a tracing program")
    own = False
    if world.tracer is None:
        clock = world.clock
        world.tracer = Tracer(lambda: clock.now, None, limit=0)
        own = True
    att = TraceAttachment(world, stage, prog, own_tracer=own)
    world.tracer.hooks.setdefault(stage, []).append(att)
    return att
