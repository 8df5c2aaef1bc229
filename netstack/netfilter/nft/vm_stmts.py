"""VM expressions for the nft statements that hand packets elsewhere: ``queue``
(net/netfilter/nft_queue.c), ``dup`` (nft_dup_ipv4.c / nft_dup_ipv6.c / nft_dup_netdev.c
with net/ipv4/netfilter/nf_dup_ipv4.c, net/ipv6/netfilter/nf_dup_ipv6.c), ``fwd``
(nft_fwd_netdev.c) and the ``ct helper`` object reference (nft_ct.c
``nft_ct_helper_obj_eval``).

Why separate from :mod:`.vm`: these are the only expressions that create or consume
packets outside the rule's own verdict, and their side effects (a copy sent through
``ip_local_out``, a packet stolen to another device) need the IPv4/IPv6 output paths."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from netstack.netfilter.nft.vm import NF_STOLEN, PktInfo, Regs, VmExpr, _get, reg_name

# include/uapi/linux/netfilter/nf_tables.h NFT_QUEUE_FLAG_*; netfilter.h verdict bits
NFT_QUEUE_FLAG_BYPASS = 0x01
NFT_QUEUE_FLAG_CPU_FANOUT = 0x02
NF_QUEUE = 3
NF_VERDICT_QBITS = 16
NF_VERDICT_FLAG_QUEUE_BYPASS = 0x00008000
QUEUE_FLAG_BITS = {"bypass": NFT_QUEUE_FLAG_BYPASS, "fanout": NFT_QUEUE_FLAG_CPU_FANOUT}

# include/uapi/linux/netfilter.h hook numbers (NF_INET_*)
_PRE_ROUTING, _LOCAL_IN = 0, 1


@dataclass
class Queue(VmExpr):
    """``nft_queue_eval``: the verdict NF_QUEUE with the queue number in the upper 16
    bits and NF_VERDICT_FLAG_QUEUE_BYPASS for ``bypass``.  With a range, ``fanout``
    picks ``first + cpu % total`` (netstack runs on CPU 0) and otherwise the flow hash
    spreads packets (``nfqueue_hash``); which queue is chosen is not observable here,
    because netstack has no nfnetlink_queue listener (see :func:`nf_queue`)."""

    num: int
    total: int = 1
    flags: int = 0
    sreg: int | None = None            # queue number from a register (nft_queue_sreg)

    def netlink(self) -> str:
        fl = (" bypass" if self.flags & NFT_QUEUE_FLAG_BYPASS else "") + \
            (" fanout" if self.flags & NFT_QUEUE_FLAG_CPU_FANOUT else "")
        if self.sreg is not None:
            return f"[ queue sreg_qnum {reg_name(self.sreg)}{fl} ]"
        num = f"{self.num}" if self.total == 1 else f"{self.num}-{self.num + self.total - 1}"
        return f"[ queue num {num}{fl} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        queue = self.num
        if self.sreg is not None:
            queue = struct.unpack("<I", _get(regs, self.sreg, 4))[0] & 0xFFFF
        elif self.total > 1:
            if self.flags & NFT_QUEUE_FLAG_CPU_FANOUT:
                queue = self.num                         # CPU 0 % total
            else:
                h = getattr(info.pkt, "hash", 0) or 0
                queue = self.num + ((h & 0xFFFFFFFF) * self.total >> 32)
        code = NF_QUEUE | (queue << NF_VERDICT_QBITS)
        if self.flags & NFT_QUEUE_FLAG_BYPASS:
            code |= NF_VERDICT_FLAG_QUEUE_BYPASS
        regs.code = code


def nf_queue(net: Any, pkt: Any, verdict: int) -> int:
    """``nf_queue`` (net/netfilter/nf_queue.c) as it behaves without a listener:
    ``__nf_queue`` finds no queue handler / no instance bound to the queue number and
    returns -ESRCH; with NF_VERDICT_FLAG_QUEUE_BYPASS the packet goes on to the next hook
    (returned here as NF_ACCEPT for this hook), otherwise ``kfree_skb`` drops it (drop
    reason NOT_SPECIFIED) and the traversal ends (NF_STOLEN: the packet is consumed)."""
    if verdict & NF_VERDICT_FLAG_QUEUE_BYPASS:
        return 1                                        # NF_ACCEPT
    from netstack.core.drop_reason import kfree_skb_reason
    kfree_skb_reason(pkt, "NOT_SPECIFIED", net=net)
    return NF_STOLEN


@dataclass
class Dup(VmExpr):
    """``nft_dup_ipv4_eval`` / ``nft_dup_ipv6_eval``: a copy of the packet goes to the
    gateway in ``sreg_addr`` (optionally through the device whose ifindex is in
    ``sreg_dev``); the original continues unchanged.  ``nft_dup_netdev_eval`` (netdev
    family, ``sreg_addr`` None) transmits a copy on the device."""

    family: str                        # ip | ip6 | netdev
    sreg_addr: int | None
    sreg_dev: int | None = None

    def netlink(self) -> str:
        if self.sreg_addr is None:
            return f"[ dup sreg_dev {reg_name(self.sreg_dev)} ]"
        dev = f" sreg_dev {reg_name(self.sreg_dev)}" if self.sreg_dev is not None else ""
        return f"[ dup sreg_addr {reg_name(self.sreg_addr)}{dev} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        oif = -1
        if self.sreg_dev is not None:
            oif = struct.unpack("<I", _get(regs, self.sreg_dev, 4))[0]
        if self.family == "netdev":
            netdev_egress(info, oif, clone=True)
            return
        hook = getattr(info.state, "hook", -1)
        if self.family == "ip":
            nf_dup_ipv4(info.net, info.pkt, hook, _get(regs, self.sreg_addr, 4), oif)
        else:
            nf_dup_ipv6(info.net, info.pkt, hook, _get(regs, self.sreg_addr, 16), oif)


def nf_dup_ipv4(net: Any, pkt: Any, hook: int, gw: bytes, oif: int) -> None:
    """net/ipv4/netfilter/nf_dup_ipv4.c: copy, detach from conntrack (the copy is
    untracked so it does not count towards the connection), set DF, decrement the TTL
    in PREROUTING/INPUT, route to ``gw`` with FLOWI_FLAG_KNOWN_NH (the uncached route's
    gateway is ``gw``, so the copy's next hop is the gateway whatever its destination),
    ``ip_local_out``.  ``nf_skb_duplicated`` stops a copy from being copied again."""
    c = _dup_copy(net, pkt, hook, 20, 8)
    if c is None:
        return
    from netstack.errors import KernelError
    from netstack.ipv4.fib import FLOWI_FLAG_KNOWN_NH, Flowi4
    from netstack.ipv4.ip_output import ip_local_out
    from netstack.ipv4.route import ip_route_output
    nh = c.data
    b = c.buf
    b[nh + 6] |= 0x40                                   # IP_DF
    fl4 = Flowi4(daddr=gw, tos=b[nh + 1] & 0x1C, flags=FLOWI_FLAG_KNOWN_NH,
                 oif=oif if oif != -1 else 0)
    try:
        rt = ip_route_output(net, fl4)
    except KernelError:
        from netstack.core.drop_reason import kfree_skb_reason
        kfree_skb_reason(c, "NOT_SPECIFIED", net=net)
        return
    if rt.gateway is None:
        rt.gateway = bytes(gw)                          # rt_set_nexthop, uncached route
    _dup_xmit(net, c, rt, ip_local_out)


def nf_dup_ipv6(net: Any, pkt: Any, hook: int, gw: bytes, oif: int) -> None:
    """net/ipv6/netfilter/nf_dup_ipv6.c: as IPv4 with the hop limit; the route to
    ``gw`` is an output route with FLOWI_FLAG_KNOWN_NH."""
    c = _dup_copy(net, pkt, hook, 40, 7)
    if c is None:
        return
    from netstack.errors import KernelError
    from netstack.ipv6.ip6_output import ip6_local_out
    from netstack.ipv6.route import Flowi6, ip6_route_output
    nh = c.data
    b = c.buf
    fl6 = Flowi6(bytes(gw), b"\0" * 16, oif=oif if oif != -1 else 0,
                 flowlabel=int.from_bytes(b[nh:nh + 4], "big") & 0x0FFFFFFF)
    try:
        dst = ip6_route_output(net, fl6)
    except KernelError:
        from netstack.core.drop_reason import kfree_skb_reason
        kfree_skb_reason(c, "NOT_SPECIFIED", net=net)
        return
    if dst.gateway is None:
        # rt6_nexthop of the uncached KNOWN_NH route is the address asked for (a private
        # copy: the dst lookups hand out is shared by other packets)
        import copy
        dst = copy.copy(dst)
        dst.gateway = bytes(gw)
    _dup_xmit(net, c, dst, ip6_local_out)


def _dup_copy(net: Any, pkt: Any, hook: int, hlen: int, ttl_off: int) -> Any:
    """The copy nf_dup_ipv4 and nf_dup_ipv6 both start from: none while a duplicate
    is being sent (``nf_skb_duplicated``) or without a whole network header of
    ``hlen`` bytes; else a clone at the network header, detached from conntrack
    (untracked), its TTL / hop limit (at ``ttl_off``) decremented in PREROUTING and
    INPUT as forwarding would."""
    if net is None or getattr(net, "_nf_skb_duplicated", False):
        return None
    nh = pkt.network_header
    if nh < 0 or nh + hlen > pkt.tail:
        return None
    c = pkt.clone()
    c.data = nh
    _untrack(c)
    if hook in (_PRE_ROUTING, _LOCAL_IN):
        b = c.buf
        b[nh + ttl_off] = (b[nh + ttl_off] - 1) & 0xFF
    return c


def _dup_xmit(net: Any, c: Any, dst: Any, local_out: Any) -> None:
    """Send the routed copy as nf_dup_ipv{4,6} do: ``local_out`` with the per-CPU
    ``nf_skb_duplicated`` flag (here per namespace) set, so the copy's own trip through
    the hooks is not duplicated again."""
    c.dst = dst
    c.dev = dst.dev
    net._nf_skb_duplicated = True
    try:
        local_out(net, c)
    finally:
        net._nf_skb_duplicated = False


def _untrack(pkt: Any) -> None:
    """``nf_reset_ct`` + ``nf_ct_set(skb, NULL, IP_CT_UNTRACKED)``."""
    try:
        from netstack.netfilter.conntrack import nf_ct_set_untracked
    except ImportError:                                 # pragma: no cover - in tree
        return
    nf_ct_set_untracked(pkt)


def netdev_egress(info: PktInfo, oif: int, clone: bool) -> bool:
    """``nf_fwd_netdev_egress`` / ``nf_dup_netdev_egress`` (net/netfilter/nf_dup_netdev.c):
    push the link-layer header back, set the device and ``dev_queue_xmit``.  False when
    the device does not exist (the packet is then left alone)."""
    net = info.net
    dev = net.get_by_index(oif) if net is not None else None
    if dev is None:
        return False
    if getattr(net, "_nf_dup_skb_recursion", 0) > 4:   # NF_RECURSION_LIMIT
        return False
    pkt = info.pkt.clone() if clone else info.pkt
    mac = pkt.mac_header
    if mac is not None and 0 <= mac < pkt.data:
        pkt.data = mac
    pkt.dev = dev
    from netstack.core.dev import dev_queue_xmit
    net._nf_dup_skb_recursion = getattr(net, "_nf_dup_skb_recursion", 0) + 1
    try:
        dev_queue_xmit(pkt, dev)
    finally:
        net._nf_dup_skb_recursion -= 1
    return True


@dataclass
class Fwd(VmExpr):
    """``nft_fwd_netdev_eval``: the packet leaves through the device in ``sreg_dev``
    (verdict NF_STOLEN).  ``fwd ip|ip6 to ADDR device DEV`` (``nft_fwd_neigh_eval``)
    resolves ADDR with the neighbour table of DEV."""

    sreg_dev: int
    sreg_addr: int | None = None
    nfproto: int = 0

    def netlink(self) -> str:
        if self.sreg_addr is None:
            return f"[ fwd sreg_dev {reg_name(self.sreg_dev)} ]"
        return (f"[ fwd sreg_dev {reg_name(self.sreg_dev)} sreg_addr "
                f"{reg_name(self.sreg_addr)} nfproto {self.nfproto} ]")

    def eval(self, regs: Regs, info: PktInfo) -> None:
        oif = struct.unpack("<I", _get(regs, self.sreg_dev, 4))[0]
        if self.sreg_addr is not None:
            self._neigh(regs, info, oif)
            return
        netdev_egress(info, oif, clone=False)
        regs.code = NF_STOLEN

    def _neigh(self, regs: Regs, info: PktInfo, oif: int) -> None:
        """``nft_fwd_neigh_eval``: only a packet of the configured family (else
        NFT_BREAK); the TTL / hop limit is decremented (``ip_decrease_ttl`` keeps the
        header checksum right incrementally), then ``neigh_xmit`` to ADDR on the device
        — ARP/ND resolve it as for routed traffic.  A missing device leaves the rule
        running without a verdict."""
        from netstack.netfilter.nft.vm import NFT_BREAK
        pkt, net = info.pkt, info.net
        v4 = self.nfproto == 2
        if pkt.protocol != (0x0800 if v4 else 0x86DD):
            regs.code = NFT_BREAK
            return
        nh = pkt.network_header
        b = pkt.buf
        if v4:
            b[nh + 8] = (b[nh + 8] - 1) & 0xFF
            # ip_decrease_ttl: check += htons(0x0100); check + (check >= 0xFFFF)
            check = (b[nh + 10] << 8 | b[nh + 11]) + 0x0100
            check = (check + (check >= 0xFFFF)) & 0xFFFF
            b[nh + 10], b[nh + 11] = check >> 8, check & 0xFF
        else:
            b[nh + 7] = (b[nh + 7] - 1) & 0xFF
        dev = net.get_by_index(oif) if net is not None else None
        if dev is None:
            return
        pkt.dev = dev
        pkt.data = nh
        addr = _get(regs, self.sreg_addr, 4 if v4 else 16)
        from netstack.core.neighbour import neigh_output
        tbl = net.ipv4.arp_tbl if v4 else net.ipv6.nd_tbl
        neigh_output(tbl, dev, addr, [pkt])
        regs.code = NF_STOLEN


@dataclass
class CtHelperObj:
    """The state of a ``ct helper`` object (``struct nft_ct_helper_obj``): the helper
    for IPv4 and/or IPv6 found when the object was created, and the L4 protocol."""

    name: str
    l3num: int                         # NFPROTO_IPV4 2, NFPROTO_IPV6 10, 0 for inet
    l4proto: int
    helper4: Any = None
    helper6: Any = None


@dataclass
class CtHelperRef(VmExpr):
    """``objref type 3``: ``nft_ct_helper_obj_eval`` attaches the object's helper to a
    new, unconfirmed connection of the object's L4 protocol (nothing happens for
    packets without a connection, confirmed ones, templates, or another protocol)."""

    name: str
    obj: Any = None

    def netlink(self) -> str:
        return f"[ objref type 3 name {self.name} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        from netstack.netfilter.nft.vm import _conntrack
        ctmod = _conntrack()
        o: CtHelperObj | None = getattr(self.obj, "expr", None)
        if ctmod is None or o is None:
            return
        ct, _ = ctmod.nf_ct_get(info.pkt)
        if ct is None or ct.protonum != o.l4proto:
            return
        helper = o.helper6 if ct.l3num == 10 else o.helper4
        from netstack.netfilter.conntrack_helper import ct_set_helper
        ct_set_helper(ct, helper)


@dataclass
class ObjrefMap(VmExpr):
    """``objref sreg N set __objmap%d`` (nft_objref_map_eval, net/netfilter/nft_objref.c):
    look the key up in an object map and run the element's object (a ``CtHelperRef`` or
    ``CtExpectRef`` bound at compile time); no element ends the rule (NFT_BREAK)."""

    sreg: int
    set: Any

    def netlink(self) -> str:
        return f"[ objref sreg {reg_name(self.sreg)} set {self.set.nl_name} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        from netstack.netfilter.nft.vm import NFT_BREAK
        found = self.set.lookup(_get(regs, self.sreg, self.set.klen), info.now_ns)
        if found is None:
            regs.code = NFT_BREAK
            return
        found.data.eval(regs, info)


@dataclass
class XtSpec:
    """What iptables-nft hands nf_tables for an extension it does not express natively:
    ``kind`` match|target, the extension ``name`` and ``rev``ision (NFTA_MATCH_REV), the
    text nft 1.0.6 lists for it (the extension's xlate, or ``xt match NAME``), the
    native nft statements with the same effect (compiled into the expression, None: no
    effect) and an optional ``evaluate(regs, info)`` for effects the nft language lacks."""

    kind: str
    name: str
    rev: int
    text: str
    native: str | None = None
    evaluate: Any = None


@dataclass
class XtCompat(VmExpr):
    """``nft_match`` / ``nft_target`` (net/netfilter/nft_compat.c): the extension runs
    inside the rule; a match that does not match ends the rule (NFT_BREAK), a target's
    verdict is the rule's."""

    spec: XtSpec
    inner: list = None  # type: ignore[assignment]

    def netlink(self) -> str:
        return f"[ {self.spec.kind} name {self.spec.name} rev {self.spec.rev} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        from netstack.netfilter.nft.vm import NFT_CONTINUE
        for e in self.inner or ():
            e.eval(regs, info)
            if regs.code != NFT_CONTINUE:
                return
        if self.spec.evaluate is not None:
            self.spec.evaluate(regs, info)


@dataclass
class CtExpectObj:
    """``struct nft_ct_expect_obj``: what expectation to create."""

    l3num: int                         # 0: the table's family (NFPROTO_INET: the ct's)
    l4proto: int
    dport: int
    timeout: int                       # as configured (ms; see CtExpectRef.eval)
    size: int


@dataclass
class CtExpectRef(VmExpr):
    """``objref type 9``: ``nft_ct_expect_obj_eval`` — on a new, unconfirmed connection
    (else the rule ends) with room for another expectation (``size``, else the rule
    ends), expect a connection in the reply direction (the peer to this host, any
    source port) to ``dport``; the conntrack helper extension is added if missing; a
    refused expectation drops the packet.  The timer is ``timeout * HZ`` jiffies with the
    configured millisecond value, i.e. that many seconds (as the kernel computes it)."""

    name: str
    obj: Any = None

    def netlink(self) -> str:
        return f"[ objref type 9 name {self.name} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        from netstack.netfilter.nft.vm import NF_DROP, NFT_BREAK, _conntrack
        ctmod = _conntrack()
        o: CtExpectObj | None = getattr(self.obj, "expr", None)
        if ctmod is None or o is None:
            return
        ct, ctinfo = ctmod.nf_ct_get(info.pkt)
        from netstack.netfilter.conntrack import IPS_CONFIRMED, IPS_TEMPLATE
        if ct is None or ct.status & (IPS_CONFIRMED | IPS_TEMPLATE):
            regs.code = NFT_BREAK
            return
        from netstack.netfilter.conntrack_expect import (NF_CT_EXPECT_CLASS_DEFAULT,
                                                         nf_ct_expect_init,
                                                         nf_ct_expect_related)
        from netstack.netfilter.conntrack_helper import nf_ct_helper_ext_add
        help_ = ct.help if ct.help is not None else nf_ct_helper_ext_add(ct, None)
        if help_.expecting[NF_CT_EXPECT_CLASS_DEFAULT] >= o.size:
            regs.code = NFT_BREAK
            return
        d = ctmod.ctinfo2dir(ctinfo)
        rt = ct.tuplehash[1 - d]
        l3 = o.l3num if o.l3num not in (0, 1) else ct.l3num
        exp = nf_ct_expect_init(ct, NF_CT_EXPECT_CLASS_DEFAULT, l3, bytes(rt.src),
                                bytes(rt.dst), o.l4proto, None, o.dport)
        exp.timeout_ns = o.timeout * 1_000_000_000
        if nf_ct_expect_related(exp, 0) != 0:
            regs.code = NF_DROP
