"""Netfilter hook infrastructure: per-namespace hook lists and their traversal.

Reproduces net/netfilter/core.c (``nf_register_net_hook``, ``nf_hook_entries_grow``,
``nf_hook_slow``, ``nf_hook_slow_list``) and include/linux/netfilter.h (``NF_HOOK``,
``NF_HOOK_LIST``):

* Hooks are registered per namespace, per protocol family and per hook number, each with a
  priority; a hook list is kept sorted by ascending priority, a new entry going *after*
  existing entries of equal priority (``nf_hook_entries_grow`` inserts before the first
  strictly greater priority).
* ``NFPROTO_INET`` registrations are split into one IPv4 and one IPv6 registration, as
  ``nf_register_net_hook`` does; ``NFPROTO_NETDEV`` (and inet ``ingress``) hooks hang off the
  device.
* Traversal: every hook function returns a verdict.  ``NF_ACCEPT`` moves on to the next entry
  (accept ends only the current base chain — the nft base chain is one entry), ``NF_DROP``
  frees the packet with ``SKB_DROP_REASON_NETFILTER_DROP`` and ends traversal, ``NF_STOLEN``
  ends traversal without freeing (the hook took the packet), ``NF_QUEUE`` is not modelled.
  When every entry accepts, ``okfn`` runs.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb import Packet

#: True once the lead has applied /tmp/nf_hooks.patch (the NF_HOOK call sites in
#: netstack/ipv4 and netstack/ipv6).  Kernel-differential tests that need real traversal
#: skip while this is False.
DATAPATH_WIRED = True

# ---- protocol families (include/uapi/linux/netfilter.h) ---------------------------------
NFPROTO_UNSPEC = 0
NFPROTO_INET = 1
NFPROTO_IPV4 = 2
NFPROTO_ARP = 3
NFPROTO_NETDEV = 5
NFPROTO_BRIDGE = 7
NFPROTO_IPV6 = 10

# ---- hook numbers -----------------------------------------------------------------------
NF_INET_PRE_ROUTING = 0
NF_INET_LOCAL_IN = 1
NF_INET_FORWARD = 2
NF_INET_LOCAL_OUT = 3
NF_INET_POST_ROUTING = 4
NF_INET_INGRESS = 5
NF_INET_NUMHOOKS = 5

NF_NETDEV_INGRESS = 0
NF_NETDEV_EGRESS = 1

NF_ARP_IN = 0
NF_ARP_OUT = 1
NF_ARP_FORWARD = 2

NF_BR_PRE_ROUTING = 0
NF_BR_LOCAL_IN = 1
NF_BR_FORWARD = 2
NF_BR_LOCAL_OUT = 3
NF_BR_POST_ROUTING = 4

HOOK_NAMES = {
    NF_INET_PRE_ROUTING: "prerouting", NF_INET_LOCAL_IN: "input", NF_INET_FORWARD: "forward",
    NF_INET_LOCAL_OUT: "output", NF_INET_POST_ROUTING: "postrouting",
    NF_INET_INGRESS: "ingress",
}

# ---- verdicts ---------------------------------------------------------------------------
NF_DROP = 0
NF_ACCEPT = 1
NF_STOLEN = 2
NF_QUEUE = 3
NF_REPEAT = 4
NF_STOP = 5  # deprecated in the kernel; treated as accept
NF_VERDICT_MASK = 0xFF

VERDICT_NAMES = {NF_DROP: "drop", NF_ACCEPT: "accept", NF_STOLEN: "stolen",
                 NF_QUEUE: "queue", NF_REPEAT: "repeat"}

# ---- priorities (include/uapi/linux/netfilter_ipv4.h enum nf_ip_hook_priorities) --------
INT_MIN = -(2 ** 31)
INT_MAX = 2 ** 31 - 1
NF_IP_PRI_FIRST = INT_MIN
NF_IP_PRI_RAW_BEFORE_DEFRAG = -450
NF_IP_PRI_CONNTRACK_DEFRAG = -400
NF_IP_PRI_RAW = -300
NF_IP_PRI_SELINUX_FIRST = -225
NF_IP_PRI_CONNTRACK = -200
NF_IP_PRI_MANGLE = -150
NF_IP_PRI_NAT_DST = -100
NF_IP_PRI_FILTER = 0
NF_IP_PRI_SECURITY = 50
NF_IP_PRI_NAT_SRC = 100
NF_IP_PRI_SELINUX_LAST = 225
NF_IP_PRI_CONNTRACK_HELPER = 300
NF_IP_PRI_CONNTRACK_CONFIRM = INT_MAX
NF_IP_PRI_LAST = INT_MAX

# IPv6 uses the same numbers (netfilter_ipv6.h).
NF_IP6_PRI_RAW = NF_IP_PRI_RAW
NF_IP6_PRI_CONNTRACK = NF_IP_PRI_CONNTRACK
NF_IP6_PRI_MANGLE = NF_IP_PRI_MANGLE
NF_IP6_PRI_NAT_DST = NF_IP_PRI_NAT_DST
NF_IP6_PRI_FILTER = NF_IP_PRI_FILTER
NF_IP6_PRI_SECURITY = NF_IP_PRI_SECURITY
NF_IP6_PRI_NAT_SRC = NF_IP_PRI_NAT_SRC

# Bridge family (netfilter_bridge.h enum nf_br_hook_priorities).
NF_BR_PRI_FIRST = INT_MIN
NF_BR_PRI_NAT_DST_BRIDGED = -300
NF_BR_PRI_FILTER_BRIDGED = -200
NF_BR_PRI_BRNF = 0
NF_BR_PRI_NAT_DST_OTHER = 100
NF_BR_PRI_FILTER_OTHER = 200
NF_BR_PRI_NAT_SRC = 300
NF_BR_PRI_LAST = INT_MAX

#: ``MAX_HOOK_COUNT`` in net/netfilter/core.c: one more registration fails with E2BIG.
MAX_HOOK_COUNT = 1024

#: Hook function: ``fn(priv, pkt, state) -> verdict`` (``nf_hookfn``).
HookFn = Callable[[Any, "Packet", "NfHookState"], int]
#: ``okfn(net, sk, pkt)`` continuation, as the kernel's ``okfn``.
OkFn = Callable[["Net", Any, "Packet"], Any]
#: A hook's list form: ``fn(priv, pkts, state) -> accepted`` — every packet of ``pkts`` gets
#: the verdict ``hook`` would give it, in order; the accepted ones are returned in order, the
#: others were consumed (stolen, or dropped with their drop reason) by the function.
ListHookFn = Callable[[Any, list["Packet"], "NfHookState"], list["Packet"]]


@dataclass(eq=False)
class NfHookOps:
    """``struct nf_hook_ops``: one registration.  ``dev`` only for netdev/inet ingress."""

    hook: HookFn
    pf: int
    hooknum: int
    priority: int
    priv: Any = None
    dev: "NetDevice | None" = None
    name: str = ""
    #: optional list form of ``hook`` (the flowtable's), used by :func:`nf_hook_ingress_list`.
    list_hook: ListHookFn | None = None


@dataclass(slots=True)
class NfHookState:
    """``struct nf_hook_state``: what every hook function is told about the traversal."""

    hook: int
    pf: int
    net: "Net"
    in_dev: "NetDevice | None" = None
    out_dev: "NetDevice | None" = None
    sk: Any = None
    okfn: OkFn | None = None


@dataclass
class NfNetState:
    """Per-namespace netfilter state (``struct netns_nf`` + ``netns_ct`` hang off ``net.nf``).

    ``hooks[(pf, hooknum)]`` is the sorted entry list for the L3 families; ingress/egress lists
    are keyed by ``(pf, hooknum, ifindex)``."""

    hooks: dict[tuple, list[NfHookOps]] = field(default_factory=dict)
    #: conntrack state (``netstack.netfilter.conntrack.CtNet``), created on first use.
    ct: Any = None
    #: nf_ct_netns_get reference counts per L3 family (lazy conntrack enable).
    ct_users: dict[int, int] = field(default_factory=dict)
    #: flowtables registered in this namespace.
    flowtables: list[Any] = field(default_factory=list)
    #: nf_defrag_ipv4_enable users and the hooks they registered (netfilter/defrag.py).
    defrag4_users: int = 0
    defrag4_ops: list[Any] = field(default_factory=list)
    #: nf_defrag_ipv6_enable users, their hooks and the conntrack reassembly queues
    #: (netfilter/defrag6.py).
    defrag6_users: int = 0
    defrag6_ops: list[Any] = field(default_factory=list)
    frag6: Any = None


def nf_net(net: "Net") -> NfNetState:
    """The namespace's netfilter state, created on first use: a namespace that never
    registers a hook pays nothing (``nf_hook`` checks an empty list and calls ``okfn``)."""
    st = net.__dict__.get("nf")
    if st is None:
        st = NfNetState()
        net.nf = st  # type: ignore[attr-defined]
    return st


def _key(ops: NfHookOps, pf: int) -> tuple:
    if pf == NFPROTO_NETDEV or (ops.hooknum == NF_INET_INGRESS and ops.pf == NFPROTO_INET):
        if ops.dev is None:
            raise KernelError(errno.EINVAL, "ingress/egress hook needs a device")
        return (pf, ops.hooknum, ops.dev.ifindex)
    return (pf, ops.hooknum)


def _check(ops: NfHookOps) -> None:
    if ops.pf in (NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_INET, NFPROTO_BRIDGE):
        limit = NF_INET_INGRESS if ops.pf == NFPROTO_INET else NF_INET_POST_ROUTING
        if not 0 <= ops.hooknum <= limit:
            raise KernelError(errno.EINVAL)
    elif ops.pf == NFPROTO_ARP:
        if not 0 <= ops.hooknum <= NF_ARP_FORWARD:
            raise KernelError(errno.EINVAL)
    elif ops.pf == NFPROTO_NETDEV:
        if ops.hooknum not in (NF_NETDEV_INGRESS, NF_NETDEV_EGRESS):
            raise KernelError(errno.EOPNOTSUPP)
    else:
        raise KernelError(errno.EINVAL)


def _insert(lst: list[NfHookOps], ops: NfHookOps) -> None:
    if len(lst) >= MAX_HOOK_COUNT:
        raise KernelError(errno.E2BIG)
    i = 0
    while i < len(lst) and lst[i].priority <= ops.priority:
        i += 1
    lst.insert(i, ops)


def nf_register_net_hook(net: "Net", ops: NfHookOps) -> None:
    """``nf_register_net_hook``: insert by priority (stable for equal priorities).

    An inet registration is two: IPv4 then IPv6 (inet ``ingress`` is a netdev ingress hook
    restricted to IP, as ``nf_register_net_hook`` maps it)."""
    _check(ops)
    st = nf_net(net)
    if ops.pf == NFPROTO_INET:
        if ops.hooknum == NF_INET_INGRESS:
            _insert(st.hooks.setdefault(_key(ops, NFPROTO_NETDEV), []), ops)
            return
        l4 = st.hooks.setdefault(_key(ops, NFPROTO_IPV4), [])
        l6 = st.hooks.setdefault(_key(ops, NFPROTO_IPV6), [])
        _insert(l4, ops)
        try:
            _insert(l6, ops)
        except KernelError:
            l4.remove(ops)
            raise
        return
    _insert(st.hooks.setdefault(_key(ops, ops.pf), []), ops)


def nf_unregister_net_hook(net: "Net", ops: NfHookOps) -> None:
    """``nf_unregister_net_hook``: remove every list entry of ``ops`` (a missing one is the
    kernel's WARN "hook not found", here ENOENT)."""
    st = nf_net(net)
    found = False
    for lst in st.hooks.values():
        for i, o in enumerate(lst):
            if o is ops:
                del lst[i]
                found = True
                break
    if not found:
        raise KernelError(errno.ENOENT)


def nf_hook_entries(net: "Net", pf: int, hook: int, dev: "NetDevice | None" = None
                    ) -> list[NfHookOps]:
    """The sorted entries a traversal would run (empty list when none)."""
    st = net.__dict__.get("nf")
    if st is None:
        return []
    key = (pf, hook, dev.ifindex) if (pf == NFPROTO_NETDEV and dev is not None) else (pf, hook)
    return st.hooks.get(key) or []


def _drop(net: "Net", pkt: "Packet", state: "NfHookState | None" = None,
          ops: NfHookOps | None = None) -> None:
    from netstack.core.drop_reason import kfree_skb_reason
    if pkt.trace is not None:
        # which hook dropped it: pf/hook/priority and the registrant (an nft base chain
        # names itself; its rule-level story is in the nft_trace_packet events before)
        attrs: dict[str, object] = {}
        info = ""
        if state is not None and ops is not None:
            who = ops.name
            chain = ops.priv if hasattr(ops.priv, "rules") else None
            if chain is not None and getattr(chain, "table", None) is not None:
                who = f"{chain.table.family} {chain.table.name} {chain.name}"
            attrs = {"pf": state.pf, "hook": state.hook, "priority": ops.priority,
                     "by": who or ""}
            info = f"pf={state.pf} hook={state.hook} prio={ops.priority}" + (
                f" by={who}" if who else "")
        pkt.trace.event(pkt, "nf_hook_slow", verdict="drop", reason="NETFILTER_DROP",
                        info=info, attrs=attrs)
    kfree_skb_reason(pkt, "NETFILTER_DROP", net=net)


def nf_hook_slow(pkt: "Packet", state: NfHookState, entries: list[NfHookOps]) -> int:
    """``nf_hook_slow``: run ``entries`` in order; returns 1 when the packet passed every
    hook (the caller runs okfn), 0 when it was dropped or stolen."""
    for ops in entries:
        v = ops.hook(ops.priv, pkt, state) & NF_VERDICT_MASK
        if v == NF_ACCEPT or v == NF_STOP:
            continue
        if v == NF_DROP:
            _drop(state.net, pkt, state, ops)
            return 0
        if v == NF_STOLEN:
            return 0
        if v == NF_QUEUE:
            raise NotSupported("NF_QUEUE (nfqueue userspace queueing)")
        raise NotSupported(f"netfilter verdict {v}")
    return 1


def nf_hook(net: "Net", pf: int, hook: int, pkt: "Packet", indev: "NetDevice | None",
            outdev: "NetDevice | None", okfn: OkFn | None = None, sk: Any = None) -> int:
    """``nf_hook``: 1 if the packet may continue (okfn not called), 0 if consumed."""
    dev = indev if hook in (NF_INET_PRE_ROUTING, NF_INET_INGRESS) else outdev
    entries = nf_hook_entries(net, pf, hook, dev if pf == NFPROTO_NETDEV else None)
    if not entries:
        return 1
    return nf_hook_slow(pkt, NfHookState(hook, pf, net, indev, outdev, sk, okfn), entries)


def NF_HOOK(pf: int, hook: int, net: "Net", sk: Any, pkt: "Packet",
            indev: "NetDevice | None", outdev: "NetDevice | None", okfn: OkFn) -> Any:
    """``NF_HOOK``: traverse, then ``okfn(net, sk, pkt)`` if every hook accepted."""
    if nf_hook(net, pf, hook, pkt, indev, outdev, okfn, sk) == 1:
        return okfn(net, sk, pkt)
    return None


def nf_hook_list(net: "Net", pf: int, hook: int, pkts: list["Packet"],
                 indev: "NetDevice | None", outdev: "NetDevice | None",
                 okfn: Callable[["Net", list["Packet"]], Any] | None = None,
                 sk: Any = None) -> list["Packet"]:
    """``NF_HOOK_LIST`` / ``nf_hook_slow_list``: run the hooks on each packet of ``pkts``
    and keep the survivors, in order.  With ``okfn`` it is called once with the survivor
    list (when non-empty) — list receive keeps batching across the hook.  Returns the
    survivors either way."""
    entries = nf_hook_entries(net, pf, hook,
                              (indev if hook == NF_NETDEV_INGRESS else outdev)
                              if pf == NFPROTO_NETDEV else None)
    if entries:
        state = NfHookState(hook, pf, net, indev, outdev, sk, None)
        out = [p for p in pkts if nf_hook_slow(p, state, entries) == 1]
    else:
        out = pkts
    if okfn is not None and out:
        okfn(net, out)
    return out


def nf_hook_ingress_active(dev: "NetDevice") -> bool:
    """``nf_hook_ingress_active``: does ``dev`` have netdev ingress hooks (flowtables,
    netdev-family base chains)?  Cheap test for the RX path."""
    return bool(nf_hook_entries(dev.net, NFPROTO_NETDEV, NF_NETDEV_INGRESS, dev))


def nf_hook_ingress(pkt: "Packet") -> int:
    """``nf_hook_ingress`` (net/core/dev.c): run netdev ingress hooks before the protocol
    handlers.  1 = continue normal RX, 0 = consumed (dropped or stolen, e.g. by the
    flowtable fast path)."""
    dev = pkt.dev
    entries = nf_hook_entries(dev.net, NFPROTO_NETDEV, NF_NETDEV_INGRESS, dev)
    if not entries:
        return 1
    return nf_hook_slow(pkt, NfHookState(NF_NETDEV_INGRESS, NFPROTO_NETDEV, dev.net, dev,
                                         None), entries)


def nf_hook_ingress_list(dev: "NetDevice", pkts: list["Packet"]) -> list["Packet"]:
    """``nf_hook_ingress`` for a run of packets received on ``dev``: returns the packets
    that continue normal RX, in order.

    The kernel runs every entry on one packet before the next packet (``nf_hook_slow``);
    here each entry runs over the survivors of the previous one — an entry with a list form
    (``list_hook``: the flowtable, which then transmits its hits per output device in one
    batch) on the whole list, any other entry packet by packet.  Every entry still sees the
    packets it would see, in the same order, with the same verdicts: netdev ingress entries
    share no per-packet state (no conntrack at this hook).  Only the moment at which an
    entry's transmits happen relative to another entry's moves (see docs/netfilter.md,
    "Flowtable fast path (batched)")."""
    entries = nf_hook_entries(dev.net, NFPROTO_NETDEV, NF_NETDEV_INGRESS, dev)
    if not entries:
        return pkts
    state = NfHookState(NF_NETDEV_INGRESS, NFPROTO_NETDEV, dev.net, dev, None)
    for ops in entries:
        if ops.list_hook is not None:
            break
    else:
        # no list form anywhere: the kernel's order, every entry on one packet at a time
        return [p for p in pkts if nf_hook_slow(p, state, entries) == 1]
    for ops in entries:
        if not pkts:
            break
        if ops.list_hook is not None:
            pkts = ops.list_hook(ops.priv, pkts, state)
        else:
            one = [ops]
            pkts = [p for p in pkts if nf_hook_slow(p, state, one) == 1]
    return pkts


def nf_hook_egress_active(dev: "NetDevice") -> bool:
    """``nf_hook_egress_active``: does ``dev`` have netdev egress chains?"""
    return bool(nf_hook_entries(dev.net, NFPROTO_NETDEV, NF_NETDEV_EGRESS, dev))


def nf_hook_egress(pkt: "Packet", dev: "NetDevice") -> int:
    """``nf_hook_egress`` (net/core/dev.c ``__dev_queue_xmit``, before tc egress and the
    taps): 1 = transmit, 0 = consumed."""
    entries = nf_hook_entries(dev.net, NFPROTO_NETDEV, NF_NETDEV_EGRESS, dev)
    if not entries:
        return 1
    return nf_hook_slow(pkt, NfHookState(NF_NETDEV_EGRESS, NFPROTO_NETDEV, dev.net, None,
                                         dev), entries)


def pf_of_protocol(protocol: int) -> int:
    """L3 family of an skb by its EtherType (``skb->protocol``)."""
    if protocol == 0x0800:
        return NFPROTO_IPV4
    if protocol == 0x86DD:
        return NFPROTO_IPV6
    if protocol == 0x0806:
        return NFPROTO_ARP
    return NFPROTO_UNSPEC


__all__ = [n for n in dir() if n.isupper() or n.startswith("nf_") or n.startswith("Nf")
           or n in ("NF_HOOK", "pf_of_protocol")]
