"""Packet tracing in the manner of pwru: one record per stage a packet passes.

Why a per-packet tracer reference rather than a global flag: with tracing off,
``skb.trace`` is None and every call site pays one attribute test; with tracing on, clones
(flooding, ICMP quoting, fragmentation) inherit the tracer and keep the packet id lineage.
Stage names are the kernel functions that do the same job (``ip_rcv_core``,
``ip_forward``, ``neigh_resolve_output``, ``dev_hard_start_xmit``, ``kfree_skb`` …) so a
trace reads like ``pwru --output-meta`` from a real machine.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet


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
        #: stage name -> callables ``(pkt, stage, verdict, reason, info, dev)`` run at every
        #: event of that stage before it is recorded: tracing eBPF programs
        #: (:func:`netstack.core.hooks.attach_trace_program`), which run even when ``limit``
        #: stops the recording, as a BPF program on a tracepoint runs without a reader.
        self.hooks: dict[str, list[Callable[..., None]]] = {}

    def event(self, pkt: "Packet", stage: str, verdict: str = "", reason: str = "",
              info: str = "", dev: object | None = None) -> None:
        """Record that ``pkt`` passed ``stage``; ``dev`` overrides ``pkt.dev``."""
        if self.hooks:
            for hook in self.hooks.get(stage, ()):
                hook(pkt, stage, verdict, reason, info, dev)
        if self.limit is not None and self.count >= self.limit:
            self.dropped += 1
            return
        d = dev if dev is not None else pkt.dev
        rec = TraceRecord(self._now(), pkt.id, getattr(getattr(d, "net", None), "name", ""),
                          getattr(d, "name", ""), stage, verdict, reason, info)
        self.count += 1
        if self.sink is not None:
            self.sink(rec.format())
        else:
            self.records.append(rec)
