"""Drop reasons: the kernel's ``enum skb_drop_reason`` and per-namespace counters.

Every packet netstack frees without consuming it goes through :func:`kfree_skb_reason`
with one of these names, exactly as ``kfree_skb_reason()`` does in the kernel
(include/net/dropreason-core.h), so a user can match netstack's drops with
``perf trace -e skb:kfree_skb`` / pwru output from a real machine.  The names are the
enum's without the ``SKB_DROP_REASON_`` prefix.
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

#: In kernel order (include/net/dropreason-core.h, DEFINE_DROP_REASON), then later additions.
DROP_REASONS: tuple[str, ...] = (
    "NOT_SPECIFIED", "NO_SOCKET", "SOCKET_CLOSE", "SOCKET_FILTER", "SOCKET_RCVBUFF",
    "UNIX_DISCONNECT", "UNIX_SKIP_OOB", "PKT_TOO_SMALL", "TCP_CSUM", "UDP_CSUM",
    "NETFILTER_DROP", "OTHERHOST", "IP_CSUM", "IP_INHDR", "IP_RPFILTER",
    "UNICAST_IN_L2_MULTICAST", "XFRM_POLICY", "IP_NOPROTO", "PROTO_MEM", "TCP_AUTH_HDR",
    "TCP_MD5NOTFOUND", "TCP_MD5UNEXPECTED", "TCP_MD5FAILURE", "TCP_AONOTFOUND",
    "TCP_AOUNEXPECTED", "TCP_AOKEYNOTFOUND", "TCP_AOFAILURE", "SOCKET_BACKLOG", "TCP_FLAGS",
    "TCP_ABORT_ON_DATA", "TCP_ZEROWINDOW", "TCP_OLD_DATA", "TCP_OVERWINDOW", "TCP_OFOMERGE",
    "TCP_RFC7323_PAWS", "TCP_OLD_SEQUENCE", "TCP_INVALID_SEQUENCE", "TCP_INVALID_ACK_SEQUENCE",
    "TCP_RESET", "TCP_INVALID_SYN", "TCP_CLOSE", "TCP_FASTOPEN", "TCP_OLD_ACK",
    "TCP_TOO_OLD_ACK", "TCP_ACK_UNSENT_DATA", "TCP_OFO_QUEUE_PRUNE", "TCP_OFO_DROP",
    "IP_OUTNOROUTES", "BPF_CGROUP_EGRESS", "IPV6DISABLED", "NEIGH_CREATEFAIL",
    "NEIGH_FAILED", "NEIGH_QUEUEFULL", "NEIGH_DEAD", "NEIGH_HH_FILLFAIL", "TC_EGRESS",
    "SECURITY_HOOK", "QDISC_DROP", "QDISC_OVERLIMIT", "QDISC_CONGESTED", "CAKE_FLOOD",
    "FQ_BAND_LIMIT", "FQ_HORIZON_DROP", "FQ_FLOW_LIMIT", "CPU_BACKLOG", "XDP", "TC_INGRESS",
    "UNHANDLED_PROTO", "SKB_CSUM", "SKB_GSO_SEG", "SKB_UCOPY_FAULT", "DEV_HDR", "DEV_READY",
    "FULL_RING", "NOMEM", "HDR_TRUNC", "TAP_FILTER", "TAP_TXFILTER", "ICMP_CSUM",
    "INVALID_PROTO", "IP_INADDRERRORS", "IP_INNOROUTES", "IP_LOCAL_SOURCE",
    "IP_INVALID_SOURCE", "IP_LOCALNET", "IP_INVALID_DEST", "PKT_TOO_BIG", "DUP_FRAG",
    "FRAG_REASM_TIMEOUT", "FRAG_TOO_FAR", "TCP_MINTTL", "IPV6_BAD_EXTHDR",
    "IPV6_NDISC_FRAG", "IPV6_NDISC_HOP_LIMIT", "IPV6_NDISC_BAD_CODE",
    "IPV6_NDISC_BAD_OPTIONS", "IPV6_NDISC_NS_OTHERHOST", "QUEUE_PURGE", "TC_COOKIE_ERROR",
    "PACKET_SOCK_ERROR", "TC_CHAIN_NOTFOUND", "TC_RECLASSIFY_LOOP", "VXLAN_INVALID_HDR",
    "VXLAN_VNI_NOT_FOUND", "MAC_INVALID_SOURCE", "VXLAN_ENTRY_EXISTS", "NO_TX_TARGET",
    "IP_TUNNEL_ECN", "TUNNEL_TXINFO", "LOCAL_MAC", "ARP_PVLAN_DISABLE",
    "MAC_IEEE_MAC_CONTROL", "BRIDGE_INGRESS_STP_STATE",
)
_KNOWN = frozenset(DROP_REASONS)


class DropCounters:
    """Per-namespace drop counters keyed by reason name (``/proc/net/...`` has no such file;
    this is what ``dropwatch``/``perf`` would aggregate for one namespace)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, reason: str, n: int = 1) -> None:
        """Count ``n`` drops for ``reason``; unknown names are a programming error."""
        if reason not in _KNOWN:
            raise ValueError(f"unknown drop reason {reason!r}")
        self.counts[reason] += n

    def __getitem__(self, reason: str) -> int:
        return self.counts.get(reason, 0)

    def total(self) -> int:
        """All drops in this namespace."""
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        """Non-zero counters, in kernel enum order."""
        return {r: self.counts[r] for r in DROP_REASONS if self.counts.get(r)}


def kfree_skb_reason(pkt: "Packet", reason: str, net: object | None = None) -> None:
    """Free ``pkt`` as dropped (net/core/skbuff.c ``kfree_skb_reason``): count the reason in
    the namespace of ``pkt.dev`` (or ``net``) and emit the ``kfree_skb`` trace event."""
    if net is None:
        net = pkt.dev.net if pkt.dev is not None else None
    if net is not None:
        net.drops.add(reason)  # type: ignore[attr-defined]
    if pkt.trace is not None:
        pkt.trace.event(pkt, "kfree_skb", "DROP", reason)


def consume_skb(pkt: "Packet", stage: str = "consume_skb") -> None:
    """Free ``pkt`` as consumed (delivered): only a trace event, no drop counted."""
    if pkt.trace is not None:
        pkt.trace.event(pkt, stage, "CONSUMED")
