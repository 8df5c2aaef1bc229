"""Packet tracing in the manner of pwru: one record per stage a packet passes.

Why a per-packet tracer reference rather than a global flag: with tracing off,
``skb.trace`` is None and every call site pays one attribute test; with tracing on, clones
(flooding, ICMP quoting, fragmentation) inherit the tracer and keep the packet id lineage.
Stage names are the kernel functions that do the same job (``ip_rcv_core``,
``ip_forward``, ``neigh_resolve_output``, ``dev_hard_start_xmit``, ``kfree_skb`` …) so a
trace reads like ``pwru --output-meta`` from a real machine.

Records may carry ``attrs``: structured fields of the event (the nft table/chain/rule
handle of an ``nft_trace_packet`` event as ``nft monitor trace`` reports them
— net/netfilter/nf_tables_trace.c —, the conntrack state of ``nf_conntrack_in``, the NAT
mapping of ``nf_nat_setup_info``, the bridge port of ``br_fdb_update`` …).  The text line
shows them in ``info``; the JSON line (``netstack run --trace --json``) has them under the
stable key ``attrs`` so a script need not parse ``info``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

#: The keys of a JSON trace record, in output order (a script's contract: never renamed).
JSON_KEYS = ("ts_ns", "pkt_id", "netns", "dev", "stage", "verdict", "reason", "info", "attrs")


@dataclass(slots=True)
class TraceRecord:
    """One stage of one packet's journey."""

    ts_ns: int
    pkt_id: int
    netns: str
    dev: str
    stage: str
    verdict: str
    reason: str
    info: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def format(self) -> str:
        """One line, pwru-like: time, packet id, namespace, device, stage, verdict, reason."""
        sec, ns = divmod(self.ts_ns, 1_000_000_000)
        parts = [f"[{sec:5d}.{ns:09d}]", f"#{self.pkt_id:<4d}", f"netns={self.netns or '-'}",
                 f"dev={self.dev or '-'}", self.stage]
        if self.verdict:
            parts.append(self.verdict)
        if self.reason:
            parts.append(f"reason={self.reason}")
        if self.info:
            parts.append(self.info)
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """The JSON record: every key of :data:`JSON_KEYS`, always present (empty string /
        empty object when unset), namespace ``-`` for the initial one as in the text."""
        return {"ts_ns": self.ts_ns, "pkt_id": self.pkt_id, "netns": self.netns or "-",
                "dev": self.dev or "-", "stage": self.stage, "verdict": self.verdict,
                "reason": self.reason, "info": self.info, "attrs": dict(self.attrs)}

    def format_json(self) -> str:
        """One JSON object per line (``jq -c`` friendly)."""
        return json.dumps(self.as_dict(), separators=(",", ":"))


def _where(pkt: "Packet", dev: object | None, net: object | None) -> tuple[str, str]:
    """Namespace and device names of an event.

    A locally generated packet (``icmp_push_reply``, ``__ip_local_out``) has no
    ``skb->dev`` yet: the kernel sets it in ``ip_output`` from the route, so its output
    device is the route's (``skb_dst(skb)->dev``); with neither, the namespace the caller
    names (``net``) is still shown."""
    d = dev if dev is not None else pkt.dev
    if d is None:
        dst = getattr(pkt, "dst", None)
        d = getattr(dst, "dev", None)
    if d is None:
        return getattr(net, "name", "") or "", ""
    return getattr(getattr(d, "net", None), "name", "") or "", getattr(d, "name", "") or ""


class Tracer:
    """Collects :class:`TraceRecord` s; ``sink`` (if set) also receives each formatted line."""

    def __init__(self, now: Callable[[], int], sink: Callable[[str], None] | None = None,
                 limit: int | None = None) -> None:
        self._now = now
        #: kept only without a sink: a streamed trace of a million-packet replay must not
        #: sit in memory (``count`` still says how many events were recorded).
        self.records: list[TraceRecord] = []
        self.count = 0
        self.dropped = 0
        self.sink = sink
        self.limit = limit
        #: the sink receives JSON lines (:meth:`TraceRecord.format_json`) instead of text
        self.json = False
        #: stage name -> callables ``(pkt, stage, verdict, reason, info, dev)`` run at every
        #: event of that stage before it is recorded: tracing eBPF programs
        #: (:func:`netstack.core.hooks.attach_trace_program`), which run even when ``limit``
        #: stops the recording, as a BPF program on a tracepoint runs without a reader.
        self.hooks: dict[str, list[Callable[..., None]]] = {}

    def event(self, pkt: "Packet", stage: str, verdict: str = "", reason: str = "",
              info: str = "", dev: object | None = None, attrs: dict[str, Any] | None = None,
              net: object | None = None) -> None:
        """Record that ``pkt`` passed ``stage``; ``dev`` overrides ``pkt.dev``; ``net``
        names the namespace when the packet has no device at all."""
        if self.hooks:
            for hook in self.hooks.get(stage, ()):
                hook(pkt, stage, verdict, reason, info, dev)
        if self.limit is not None and self.count >= self.limit:
            self.dropped += 1
            return
        netns, devname = _where(pkt, dev, net)
        rec = TraceRecord(self._now(), pkt.id, netns, devname, stage, verdict, reason, info,
                          attrs or {})
        self.count += 1
        if self.sink is not None:
            self.sink(rec.format_json() if self.json else rec.format())
        else:
            self.records.append(rec)


# ---- text of netfilter objects in trace events (duck-typed: no netfilter import) -------
_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp", 47: "gre"}
#: enum ip_conntrack_info → (nft ``ct state`` name, ``ct direction`` name)
CTINFO_NAMES = {0: ("established", "original"), 1: ("related", "original"),
                2: ("new", "original"), 3: ("established", "reply"),
                4: ("related", "reply"), 7: ("untracked", "")}


def fmt_addr(a: bytes) -> str:
    """An IPv4 or IPv6 address as ``ip``/``conntrack`` print it."""
    import ipaddress
    if len(a) == 4:
        return str(ipaddress.IPv4Address(a))
    if len(a) == 16:
        return str(ipaddress.IPv6Address(a))
    return a.hex()


def fmt_tuple(t: Any) -> str:
    """A conntrack tuple in ``conntrack -L`` words: ``icmp src=… dst=… type=8 code=0 id=…``
    or ``udp src=… dst=… sport=… dport=…``."""
    proto = _PROTO_NAMES.get(t.protonum, str(t.protonum))
    s = f"{proto} src={fmt_addr(t.src)} dst={fmt_addr(t.dst)}"
    if t.protonum in (1, 58):
        return s + f" type={t.dport >> 8} code={t.dport & 0xFF} id={t.sport}"
    if t.protonum in (6, 17, 132, 136):
        return s + f" sport={t.sport} dport={t.dport}"
    return s
