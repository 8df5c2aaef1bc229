"""The neighbour subsystem (net/core/neighbour.c, include/net/neighbour.h).

Why it is built like the kernel's: one family-independent core — the NUD state machine,
the unresolved-packet queue, the table with its garbage collector, proxy entries and the
``ip neigh`` admin operations — parameterised by a protocol's :class:`NeighOps` (``struct
neigh_ops`` + the ``neigh_table`` callbacks: key length, hash, constructor, solicit,
error_report).  ARP (net/ipv4/arp.c) supplies one, IPv6 ND will supply another.

Time is the world's virtual nanosecond clock; the kernel's jiffies comparisons
(``time_after``/``time_before_eq``) become plain integer comparisons on ns, and the minimum
re-arm delay ``HZ/100`` is 10 ms.

Per-device parameters are the sysctls ``net.ipv4.neigh.{default,DEV}.*`` read live on every
use (``NEIGH_VAR``).  Units are what ``/proc`` shows: ``*_ms`` in ms, ``locktime``,
``proxy_delay``, ``anycast_delay``, ``retrans_time`` in USER_HZ (1/100 s),
``delay_first_probe_time``/``gc_stale_time``/``base_reachable_time`` in seconds.

Documented choices where the kernel is not reproducible:

* ``reachable_time`` is ``neigh_rand_reach_time``: uniform in [base/2, 3·base/2) drawn from
  the world's seeded RNG (the kernel uses ``get_random_u32_below``), re-drawn per parms on
  a write of base_reachable_time and every 300 s by the periodic work.
* Dump order: the kernel walks hash buckets (``arp_hashfn`` with a per-boot random
  ``hash_rnd``), newest first inside a bucket.  We do the same with ``hash_rnd`` derived
  from the namespace's ``hash_secret``, so the order is hash-like but reproducible.
* The kernel's neighbour tables are global across namespaces (gc thresholds count all of
  them, ``neigh.default`` exists only in init_net); netstack keeps one table per namespace.
* The periodic GC work is armed only while the table holds GC-able entries, so an idle
  world has no perpetual timer.
* ``used`` is refreshed only on the resolve path (``neigh_event_send``), never by the
  connected fast path — measured on 6.18: a REACHABLE entry in steady use goes STALE
  when reachable_time runs out, and DELAY only on the next packet.
* ``truesize`` of a queued packet is ``SKB_TRUESIZE(len + ETH_HLEN)`` = len + 14 + 576, the
  same unit ``unres_qlen`` converts with (``SKB_TRUESIZE(ETH_FRAME_LEN)`` = 2090 measured on
  6.18), so ``unres_qlen=N`` holds exactly N full-size frames.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Protocol

from netstack.core.clock import NSEC_PER_SEC
from netstack.core.dev import dev_queue_xmit_list
from netstack.core.drop_reason import kfree_skb_reason
from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb import Packet

# --------------------------------------------------------------- constants
# include/uapi/linux/neighbour.h
NUD_NONE = 0x00
NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
# include/net/neighbour.h
NUD_IN_TIMER = NUD_INCOMPLETE | NUD_REACHABLE | NUD_DELAY | NUD_PROBE
NUD_VALID = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY
NUD_CONNECTED = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE
#: iproute2's pseudo-bit for "nud none" in a filter mask (``ip neigh show nud all``).
NUD_FILTER_NONE = 0x100

NUD_NAMES: dict[int, str] = {
    NUD_INCOMPLETE: "INCOMPLETE", NUD_REACHABLE: "REACHABLE", NUD_STALE: "STALE",
    NUD_DELAY: "DELAY", NUD_PROBE: "PROBE", NUD_FAILED: "FAILED", NUD_NOARP: "NOARP",
    NUD_PERMANENT: "PERMANENT",
}
#: ``ip neigh ... nud NAME`` words.
NUD_BY_NAME: dict[str, int] = {
    "permanent": NUD_PERMANENT, "noarp": NUD_NOARP, "reachable": NUD_REACHABLE,
    "stale": NUD_STALE, "none": NUD_NONE, "incomplete": NUD_INCOMPLETE, "delay": NUD_DELAY,
    "probe": NUD_PROBE, "failed": NUD_FAILED,
}

NTF_USE = 0x01
NTF_SELF = 0x02
NTF_MASTER = 0x04
NTF_PROXY = 0x08
NTF_EXT_LEARNED = 0x10
NTF_OFFLOADED = 0x20
NTF_STICKY = 0x40
NTF_ROUTER = 0x80
# ndm_flags_ext bits, kept in the same int above the u8 flags
NTF_MANAGED = 0x100
NTF_EXT_VALIDATED = 0x200

NEIGH_UPDATE_F_OVERRIDE = 1 << 0
NEIGH_UPDATE_F_WEAK_OVERRIDE = 1 << 1
NEIGH_UPDATE_F_OVERRIDE_ISROUTER = 1 << 2
NEIGH_UPDATE_F_USE = 1 << 3
NEIGH_UPDATE_F_MANAGED = 1 << 4
NEIGH_UPDATE_F_EXT_LEARNED = 1 << 5
NEIGH_UPDATE_F_ISROUTER = 1 << 6
NEIGH_UPDATE_F_ADMIN = 1 << 7

#: ``LOCALLY_ENQUEUED`` in NEIGH_CB(skb)->flags: a proxied request re-run from the queue.
LOCALLY_ENQUEUED = 0x1

MS = 1_000_000
USER_HZ_NS = NSEC_PER_SEC // 100
#: ``HZ/100``: the smallest re-arm delay of neigh_timer_handler.
MIN_TIMER_NS = 10 * MS
ETH_HLEN = 14
#: ``SKB_DATA_ALIGN(sizeof(struct sk_buff)) + SKB_DATA_ALIGN(sizeof(struct skb_shared_info))``
SKB_TRUESIZE_OVERHEAD = 576
ETH_FRAME_LEN = 1514
REACHABLE_RECOMPUTE_NS = 300 * NSEC_PER_SEC
INT_MAX = 2**31 - 1


def skb_truesize_of(length: int) -> int:
    """``SKB_TRUESIZE(X)`` (include/linux/skbuff.h)."""
    return length + SKB_TRUESIZE_OVERHEAD


def pkt_truesize(pkt: "Packet") -> int:
    """The truesize netstack charges a queued packet: see the module docstring."""
    return skb_truesize_of(len(pkt) + ETH_HLEN)


#: (name, default, min, max) in /proc units — net/core/neighbour.c neigh_sysctl_template,
#: defaults from arp_tbl.parms (net/ipv4/arp.c) and the NEIGH_VAR_INIT of ndisc.
NEIGH_PARM_SYSCTLS: tuple[tuple[str, int, int | None, int | None], ...] = (
    ("mcast_solicit", 3, 0, INT_MAX),
    ("ucast_solicit", 3, 0, INT_MAX),
    ("app_solicit", 0, 0, INT_MAX),
    ("mcast_resolicit", 0, 0, INT_MAX),
    ("retrans_time", 100, None, None),
    ("retrans_time_ms", 1000, None, None),
    ("base_reachable_time", 30, None, None),
    ("base_reachable_time_ms", 30000, None, None),
    ("delay_first_probe_time", 5, None, None),
    ("gc_stale_time", 60, None, None),
    ("unres_qlen", 101, 0, INT_MAX),
    ("unres_qlen_bytes", 212992, 0, INT_MAX),
    ("proxy_qlen", 64, 0, INT_MAX),
    ("anycast_delay", 100, None, None),
    ("proxy_delay", 80, None, None),
    ("locktime", 100, None, None),
    ("interval_probe_time_ms", 5000, 1, INT_MAX),
)
#: Table-wide knobs that exist only under ``neigh.default``.
NEIGH_TABLE_SYSCTLS: tuple[tuple[str, int], ...] = (
    ("gc_interval", 30), ("gc_thresh1", 128), ("gc_thresh2", 512), ("gc_thresh3", 1024),
)


# ------------------------------------------------------------- protocol ops
class NeighOps(Protocol):
    """What a protocol gives the core (``struct neigh_ops`` + ``neigh_table`` hooks)."""

    family: int
    key_len: int
    #: sysctl directory, e.g. ``net.ipv4.neigh``
    sysctl_prefix: str
    #: optional (attribute may be absent): per-family defaults that differ from ARP's,
    #: e.g. ND's ``{"locktime": 0}`` (net/ipv6/ndisc.c nd_tbl.parms)
    parm_defaults: dict[str, int]

    def hash(self, key: bytes, dev: "NetDevice", hash_rnd: int) -> int:
        """32-bit hash of (key, dev) (``tbl->hash``, e.g. ``arp_hashfn``)."""
        ...

    def constructor(self, n: "Neighbour") -> None:
        """Initialise a new entry (``arp_constructor``): may set NUD_NOARP and ``ha``."""
        ...

    def solicit(self, n: "Neighbour", pkt: "Packet | None") -> None:
        """Send one probe for ``n`` (``arp_solicit``); ``n.probes`` is the count so far."""
        ...

    def error_report(self, n: "Neighbour", pkt: "Packet") -> None:
        """A queued packet whose resolution failed: report and free it."""
        ...

    def is_multicast(self, key: bytes) -> bool:
        """``tbl->is_multicast`` (forced GC evicts such entries first)."""
        ...

    def proxy_redo(self, pkt: "Packet") -> None:
        """Re-process a delayed proxied solicitation (``parp_redo``)."""
        ...

    def output_key(self, dev: "NetDevice", key: bytes) -> bytes:
        """The key the output path looks up (``__ipv4_neigh_lookup_noref`` maps every
        destination on loopback / point-to-point devices to one entry)."""
        ...


# ------------------------------------------------------------------ entries
class Neighbour:
    """``struct neighbour``."""

    __slots__ = ("tbl", "key", "dev", "ha", "nud_state", "flags", "arp_queue",
                 "arp_queue_len_bytes", "probes", "updated", "confirmed", "used", "timer",
                 "dead", "hh", "hh_proto", "protocol", "gc_listed", "seq", "type",
                 "direct")

    def __init__(self, tbl: "NeighTable", key: bytes, dev: "NetDevice") -> None:
        now = tbl.clock.now
        self.tbl = tbl
        self.key = key
        self.dev = dev
        self.ha: bytes = bytes(6)
        self.nud_state = NUD_NONE
        self.flags = 0
        self.arp_queue: list[Packet] = []
        self.arp_queue_len_bytes = 0
        self.probes = 0
        self.updated = now
        self.used = now
        # neigh_alloc: confirmed = now - 2 * base_reachable_time (never confirmed)
        self.confirmed = now - 2 * tbl.parm_ns(dev, "base_reachable_time_ms", MS)
        self.timer = tbl.clock.timer(neigh_timer_handler, self)
        self.dead = False
        self.hh: bytes | None = None
        self.hh_proto = 0
        self.protocol = 0
        self.gc_listed = False
        self.seq = 0
        #: address type the constructor found (RTN_*), protocol-defined
        self.type = 0
        #: no link-layer header (``neigh_direct_output``: devices without header_ops)
        self.direct = False

    @property
    def lladdr(self) -> bytes | None:
        """The link-layer address as ``ip neigh`` shows it: only while NUD_VALID."""
        return self.ha if self.nud_state & NUD_VALID else None

    def __repr__(self) -> str:  # pragma: no cover
        return f"<Neighbour {self.key.hex()} dev={self.dev.name} state={self.nud_state:#x}>"


@dataclass
class PneighEntry:
    """``struct pneigh_entry``: an ``ip neigh add proxy`` entry; dev None = any device."""

    key: bytes
    dev: "NetDevice | None"
    flags: int = NTF_PROXY
    permanent: bool = False
    protocol: int = 0


# -------------------------------------------------------------------- table
class NeighTable:
    """``struct neigh_table`` for one namespace and family."""

    def __init__(self, net: "Net", ops: NeighOps) -> None:
        self.net = net
        self.ops = ops
        self.clock = net.world.clock
        self.rng = net.world.rng
        self.prefix = ops.sysctl_prefix
        #: (key, ifindex) -> Neighbour
        self.entries: dict[tuple[bytes, int], Neighbour] = {}
        #: gc_list: entries that count against the thresholds, oldest first
        self.gc_list: dict[tuple[bytes, int], Neighbour] = {}
        self.pentries: list[PneighEntry] = []
        self.proxy_queue: list[tuple[int, int, Packet]] = []
        self.proxy_timer = self.clock.timer(self._proxy_process)
        self.gc_timer = self.clock.timer(self._periodic_work)
        self.last_flush = self.clock.now
        self.last_rand = self.clock.now
        self.hash_rnd = int.from_bytes(net.hash_secret[:4], "little") | 1
        self.hash_shift = 3
        self._seq = 0
        #: parms name ("default" or device name) -> reachable_time in ns
        self.reachable_time: dict[str, int] = {}
        #: neigh_update notifications (RTM_NEWNEIGH), ``fn(neigh)``
        self.notifiers: list[Callable[[Neighbour], None]] = []
        self.stats = {"allocs": 0, "destroys": 0, "res_failed": 0, "unres_discards": 0,
                      "forced_gc_runs": 0, "table_fulls": 0, "periodic_gc_runs": 0}
        self._register_sysctls()

    # ---------------------------------------------------------------- parms
    def _register_sysctls(self) -> None:
        st = self.net.sysctl
        overrides: dict[str, int] = dict(getattr(self.ops, "parm_defaults", None) or {})
        for name, default, lo, hi in NEIGH_PARM_SYSCTLS:
            st.register_conf(self.prefix, name, overrides.get(name, default), lo, hi,
                             on_write=self._on_write, has_all=False)
        for name, default in NEIGH_TABLE_SYSCTLS:
            st.register(f"{self.prefix}.default.{name}", default, None, None)

    #: coarse view -> (fine knob, factor): two /proc views of one NEIGH_VAR
    _COARSE = {"retrans_time": ("retrans_time_ms", 10),
               "base_reachable_time": ("base_reachable_time_ms", 1000),
               "unres_qlen": ("unres_qlen_bytes", ETH_FRAME_LEN + SKB_TRUESIZE_OVERHEAD)}
    _FINE = {fine: (coarse, f) for coarse, (fine, f) in _COARSE.items()}

    def _on_write(self, key: str, old: int | str, new: int | str) -> None:
        """Twin knobs are two views of one ``NEIGH_VAR`` (neigh_proc_dointvec_userhz_jiffies,
        neigh_proc_unres_qlen …): the fine-grained one is stored, the coarse one derived."""
        st = self.net.sysctl
        base, _, name = key.rpartition(".")
        if name in self._COARSE:
            fine, f = self._COARSE[name]
            st.set(f"{base}.{fine}", int(new) * f)
            return
        if name in self._FINE:
            coarse, f = self._FINE[name]
            suffix = "." + name
            head = self.prefix + "."
            for k in [k for k in st.values if k.startswith(head) and k.endswith(suffix)]:
                st.values[k[:-len(name)] + coarse] = int(st.values[k]) // f
        if name == "base_reachable_time_ms":
            # neigh_proc_base_reachable_time: re-randomise this parms' reachable_time.
            parms = base.rpartition(".")[2]
            self.reachable_time[parms] = self._rand_reach_time(int(new) * MS)

    def parm(self, dev: "NetDevice | None", name: str) -> int:
        """``NEIGH_VAR(parms, NAME)`` in /proc units for ``dev`` (None = default)."""
        sub = "default" if dev is None else dev.name
        return int(self.net.sysctl.values[f"{self.prefix}.{sub}.{name}"])

    def parm_ns(self, dev: "NetDevice | None", name: str, unit: int) -> int:
        return self.parm(dev, name) * unit

    def table_parm(self, name: str) -> int:
        return int(self.net.sysctl.values[f"{self.prefix}.default.{name}"])

    def _rand_reach_time(self, base_ns: int) -> int:
        """``neigh_rand_reach_time``: uniform in [base/2, 3*base/2)."""
        return self.rng.randrange(base_ns) + (base_ns >> 1) if base_ns > 0 else 0

    def reachable_time_ns(self, dev: "NetDevice") -> int:
        """``neigh->parms->reachable_time`` for ``dev`` (drawn on first use)."""
        rt = self.reachable_time.get(dev.name)
        if rt is None:
            rt = self._rand_reach_time(self.parm_ns(dev, "base_reachable_time_ms", MS))
            self.reachable_time[dev.name] = rt
        return rt

    # ---------------------------------------------------------------- hash
    def bucket_of(self, n: Neighbour) -> int:
        return (self.ops.hash(n.key, n.dev, self.hash_rnd) & 0xFFFFFFFF) >> (32 - self.hash_shift)

    # -------------------------------------------------------------- lookup
    def lookup(self, dev: "NetDevice", key: bytes) -> Neighbour | None:
        """``neigh_lookup``."""
        return self.entries.get((bytes(key), dev.ifindex))

    def create(self, dev: "NetDevice", key: bytes, flags: int = 0,
               exempt_from_gc: bool = False) -> Neighbour:
        """``___neigh_create``: allocate (forced GC when over thresholds), construct,
        insert.  Raises KernelError(ENOBUFS) on table overflow."""
        key = bytes(key)
        k = (key, dev.ifindex)
        old = self.entries.get(k)
        if old is not None:
            return old
        exempt = exempt_from_gc or bool(flags & NTF_EXT_LEARNED)
        if not exempt:
            entries = len(self.gc_list)
            thresh3 = self.table_parm("gc_thresh3")
            now = self.clock.now
            if entries >= thresh3 or (entries >= self.table_parm("gc_thresh2")
                                      and now > self.last_flush + 5 * NSEC_PER_SEC):
                if not self.forced_gc() and entries >= thresh3:
                    self.stats["table_fulls"] += 1
                    raise KernelError(errno.ENOBUFS)
        n = Neighbour(self, key, dev)
        n.flags = flags & (NTF_EXT_LEARNED | NTF_MANAGED | NTF_EXT_VALIDATED)
        self.ops.constructor(n)
        if n.key != key:
            # the constructor may rewrite the key (arp_constructor on loopback/p2p)
            k = (n.key, dev.ifindex)
            old = self.entries.get(k)
            if old is not None:
                return old
        self._seq += 1
        n.seq = self._seq
        self.entries[k] = n
        self.stats["allocs"] += 1
        if not exempt:
            self.gc_list[k] = n
            n.gc_listed = True
            self._arm_gc()
        if len(self.entries) > (1 << self.hash_shift):
            self.hash_shift += 1  # neigh_hash_grow
        return n

    def lookup_or_create(self, dev: "NetDevice", key: bytes, create: bool = True) -> Neighbour | None:
        """``__neigh_lookup(tbl, key, dev, creat)``; None if creation failed."""
        n = self.lookup(dev, key)
        if n is not None or not create:
            return n
        try:
            return self.create(dev, key)
        except KernelError:
            return None

    def remove(self, n: Neighbour) -> None:
        """``neigh_remove_one`` + destroy: unlink, stop the timer, purge the queue."""
        k = (n.key, n.dev.ifindex)
        if self.entries.get(k) is not n:
            return
        del self.entries[k]
        self.gc_list.pop(k, None)
        n.gc_listed = False
        n.timer.cancel()
        n.dead = True
        self._purge_queue(n, "NEIGH_DEAD")
        self.stats["destroys"] += 1

    def _purge_queue(self, n: Neighbour, reason: str) -> None:
        q, n.arp_queue = n.arp_queue, []
        n.arp_queue_len_bytes = 0
        for p in q:
            kfree_skb_reason(p, reason, self.net)

    def _update_gc_list(self, n: Neighbour) -> None:
        """``neigh_update_gc_list``: PERMANENT / externally learned entries are exempt."""
        k = (n.key, n.dev.ifindex)
        exempt = bool(n.nud_state & NUD_PERMANENT) or bool(n.flags & NTF_EXT_LEARNED)
        if exempt and n.gc_listed:
            self.gc_list.pop(k, None)
            n.gc_listed = False
        elif not exempt and not n.gc_listed:
            self.gc_list[k] = n
            n.gc_listed = True
            self._arm_gc()

    # ------------------------------------------------------------------ gc
    def forced_gc(self) -> int:
        """``neigh_forced_gc``: evict FAILED/NOARP/multicast/not-updated-for-5s entries,
        oldest first, down to gc_thresh2.  Returns how many were removed."""
        self.stats["forced_gc_runs"] += 1
        max_clean = len(self.gc_list) - self.table_parm("gc_thresh2")
        now = self.clock.now
        tref = now - 5 * NSEC_PER_SEC
        shrunk = 0
        for n in list(self.gc_list.values()):
            if max_clean <= 0 or shrunk >= max_clean:
                break
            if (n.nud_state in (NUD_FAILED, NUD_NOARP) or self.ops.is_multicast(n.key)
                    or not (tref <= n.updated <= now)):
                self.remove(n)
                shrunk += 1
        self.last_flush = now
        return shrunk

    def _arm_gc(self) -> None:
        if not self.gc_timer.active:
            base = self.parm_ns(None, "base_reachable_time_ms", MS)
            self.gc_timer.mod_in(max(base >> 1, MIN_TIMER_NS))

    def _periodic_work(self) -> None:
        """``neigh_periodic_work``: every base_reachable_time/2, drop unused entries
        (FAILED or not used for gc_stale_time) once the table is above gc_thresh1;
        every 300 s re-draw each parms' reachable_time."""
        now = self.clock.now
        self.stats["periodic_gc_runs"] += 1
        if now - self.last_rand > REACHABLE_RECOMPUTE_NS:
            self.last_rand = now
            for parms in list(self.reachable_time):
                dev = None if parms == "default" else self.net.get(parms)
                if parms != "default" and dev is None:
                    del self.reachable_time[parms]
                    continue
                self.reachable_time[parms] = self._rand_reach_time(
                    self.parm_ns(dev, "base_reachable_time_ms", MS))
        if len(self.gc_list) >= self.table_parm("gc_thresh1"):
            for n in list(self.gc_list.values()):
                st = n.nud_state
                if st & (NUD_PERMANENT | NUD_IN_TIMER) or n.flags & NTF_EXT_LEARNED:
                    continue
                if n.used < n.confirmed <= now:
                    n.used = n.confirmed
                stale = self.parm_ns(n.dev, "gc_stale_time", NSEC_PER_SEC)
                if st == NUD_FAILED or not (n.used <= now < n.used + stale):
                    self.remove(n)
        if self.gc_list:
            base = self.parm_ns(None, "base_reachable_time_ms", MS)
            self.gc_timer.mod_in(max(base >> 1, MIN_TIMER_NS))

    # --------------------------------------------------------------- proxy
    def pneigh_lookup(self, key: bytes, dev: "NetDevice | None", create: bool = False) -> PneighEntry | None:
        """``pneigh_lookup``: an entry for ``key`` on ``dev`` or on any device."""
        key = bytes(key)
        for pn in self.pentries:
            if pn.key == key and (pn.dev is None or pn.dev is dev):
                return pn
        if not create:
            return None
        pn = PneighEntry(key, dev)
        # pneigh_create: the protocol's pconstructor (ND joins the solicited-node group).
        pcons = getattr(self.ops, "pconstructor", None)
        if pcons is not None:
            pcons(pn)
        self.pentries.insert(0, pn)
        return pn

    def pneigh_enqueue(self, pkt: "Packet") -> None:
        """``pneigh_enqueue``: hold a proxied request for a random time below proxy_delay
        (drop if more than proxy_qlen are waiting), then run ``ops.proxy_redo``."""
        dev = pkt.dev
        now = self.clock.now
        delay = self.parm_ns(dev, "proxy_delay", USER_HZ_NS)
        sched = now + (self.rng.randrange(delay) if delay > 0 else 0)
        if len(self.proxy_queue) > self.parm(dev, "proxy_qlen"):
            kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)
            return
        self._seq += 1
        self.proxy_queue.append((sched, self._seq, pkt))
        self.proxy_queue.sort(key=lambda e: (e[0], e[1]))
        first = self.proxy_queue[0][0]
        if not self.proxy_timer.active or self.proxy_timer.expires > first:
            self.proxy_timer.mod(first)

    def _proxy_process(self) -> None:
        """``neigh_proxy_process``."""
        now = self.clock.now
        due = [e for e in self.proxy_queue if e[0] <= now]
        self.proxy_queue = [e for e in self.proxy_queue if e[0] > now]
        for _, _, pkt in due:
            dev = pkt.dev
            if dev is not None and dev.is_up:
                pkt.cb = LOCALLY_ENQUEUED
                self.ops.proxy_redo(pkt)
            else:
                kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)
        if self.proxy_queue:
            self.proxy_timer.mod(self.proxy_queue[0][0])


# ------------------------------------------------------------ state machine
def _add_timer(n: Neighbour, when_ns: int) -> None:
    """``neigh_add_timer``."""
    n.timer.mod(when_ns)


def _max_probes(n: Neighbour) -> int:
    """``neigh_max_probes``."""
    tbl, dev = n.tbl, n.dev
    return (tbl.parm(dev, "ucast_solicit") + tbl.parm(dev, "app_solicit")
            + (tbl.parm(dev, "mcast_resolicit") if n.nud_state & NUD_PROBE
               else tbl.parm(dev, "mcast_solicit")))


def _retrans_ns(n: Neighbour) -> int:
    return max(n.tbl.parm_ns(n.dev, "retrans_time_ms", MS), MIN_TIMER_NS)


def _probe(n: Neighbour) -> None:
    """``neigh_probe``: solicit with the newest queued packet, then count the probe."""
    pkt = n.arp_queue[-1] if n.arp_queue else None
    n.tbl.ops.solicit(n, pkt)
    n.probes += 1


def _notify(n: Neighbour) -> None:
    for fn in n.tbl.notifiers:
        fn(n)


def _invalidate(n: Neighbour) -> None:
    """``neigh_invalidate``: every queued packet goes to the protocol's error_report."""
    n.tbl.stats["res_failed"] += 1
    n.updated = n.tbl.clock.now
    while n.nud_state == NUD_FAILED and n.arp_queue:
        pkt = n.arp_queue.pop(0)
        n.arp_queue_len_bytes -= pkt_truesize(pkt)
        n.tbl.ops.error_report(n, pkt)
    n.tbl._purge_queue(n, "NEIGH_FAILED")


def neigh_timer_handler(n: Neighbour) -> None:
    """``neigh_timer_handler``: REACHABLE→DELAY/STALE, DELAY→REACHABLE/PROBE, and the
    retransmits of INCOMPLETE/PROBE until neigh_max_probes, then FAILED."""
    if n.dead:
        return
    tbl = n.tbl
    dev = n.dev
    now = tbl.clock.now
    state = n.nud_state
    nxt = now + NSEC_PER_SEC
    notify = False
    if not state & NUD_IN_TIMER:
        return
    delay_probe = tbl.parm_ns(dev, "delay_first_probe_time", NSEC_PER_SEC)
    if state & NUD_REACHABLE:
        reach = tbl.reachable_time_ns(dev)
        if now <= n.confirmed + reach:
            nxt = n.confirmed + reach
        elif now <= n.used + delay_probe:
            n.nud_state = NUD_DELAY
            n.updated = now
            nxt = now + delay_probe
        else:
            n.nud_state = NUD_STALE
            n.updated = now
            notify = True
    elif state & NUD_DELAY:
        if now <= n.confirmed + delay_probe:
            n.nud_state = NUD_REACHABLE
            n.updated = now
            notify = True
            nxt = n.confirmed + tbl.reachable_time_ns(dev)
        else:
            n.nud_state = NUD_PROBE
            n.updated = now
            n.probes = 0
            notify = True
            nxt = now + _retrans_ns(n)
    else:
        nxt = now + _retrans_ns(n)

    if n.nud_state & (NUD_INCOMPLETE | NUD_PROBE) and n.probes >= _max_probes(n):
        if n.nud_state == NUD_PROBE and n.flags & NTF_EXT_VALIDATED:
            n.nud_state = NUD_STALE
            n.updated = now
        else:
            n.nud_state = NUD_FAILED
            _invalidate(n)
        _notify(n)
        return
    if n.nud_state & NUD_IN_TIMER:
        if nxt < now + MIN_TIMER_NS:
            nxt = now + MIN_TIMER_NS
        _add_timer(n, nxt)
    if n.nud_state & (NUD_INCOMPLETE | NUD_PROBE):
        _probe(n)
    if notify:
        _notify(n)


def neigh_event_send(n: Neighbour, pkt: "Packet | None", immediate_ok: bool = True) -> bool:
    """``neigh_event_send`` → ``__neigh_event_send``.  Returns False when the caller may
    transmit now, True when ``pkt`` was queued (INCOMPLETE) or dropped."""
    tbl = n.tbl
    now = tbl.clock.now
    n.used = now
    state = n.nud_state
    if state & (NUD_CONNECTED | NUD_DELAY | NUD_PROBE):
        return False
    if n.dead:
        if state & NUD_STALE:
            return False
        if pkt is not None:
            kfree_skb_reason(pkt, "NEIGH_DEAD", tbl.net)
        return True
    dev = n.dev
    immediate_probe = False
    if not state & (NUD_STALE | NUD_INCOMPLETE):
        if tbl.parm(dev, "mcast_solicit") + tbl.parm(dev, "app_solicit"):
            n.probes = tbl.parm(dev, "ucast_solicit")
            n.timer.cancel()
            n.nud_state = NUD_INCOMPLETE
            n.updated = now
            if not immediate_ok:
                nxt = now + 1
            else:
                immediate_probe = True
                nxt = now + _retrans_ns(n)
            _add_timer(n, nxt)
        else:
            n.nud_state = NUD_FAILED
            n.updated = now
            if pkt is not None:
                kfree_skb_reason(pkt, "NEIGH_FAILED", tbl.net)
            return True
    elif state & NUD_STALE:
        n.timer.cancel()
        n.nud_state = NUD_DELAY
        n.updated = now
        _add_timer(n, now + tbl.parm_ns(dev, "delay_first_probe_time", NSEC_PER_SEC))

    rc = False
    if n.nud_state == NUD_INCOMPLETE:
        if pkt is not None:
            limit = tbl.parm(dev, "unres_qlen_bytes")
            size = pkt_truesize(pkt)
            while n.arp_queue_len_bytes + size > limit and n.arp_queue:
                old = n.arp_queue.pop(0)
                n.arp_queue_len_bytes -= pkt_truesize(old)
                kfree_skb_reason(old, "NEIGH_QUEUEFULL", tbl.net)
                tbl.stats["unres_discards"] += 1
            n.arp_queue.append(pkt)
            n.arp_queue_len_bytes += size
            if pkt.trace is not None:
                pkt.trace.event(pkt, "__neigh_event_send", info="queued (INCOMPLETE)")
        rc = True
    if immediate_probe:
        _probe(n)
    return rc


def neigh_update_entry(n: Neighbour, lladdr: bytes | None, new: int, flags: int) -> int:
    """``__neigh_update``: returns 0 or a negative errno (-EPERM, -EINVAL) like the
    kernel.  Releases the queue as one batch when the entry becomes valid."""
    tbl = n.tbl
    dev = n.dev
    now = tbl.clock.now
    old = n.nud_state
    if n.dead:
        return -errno.EPERM
    if not flags & NEIGH_UPDATE_F_ADMIN and old & (NUD_NOARP | NUD_PERMANENT):
        return -errno.EPERM
    notify = False
    update_isrouter = False
    gc_update = False
    # neigh_update_flags
    if flags & NEIGH_UPDATE_F_ADMIN:
        ext = bool(flags & NEIGH_UPDATE_F_EXT_LEARNED)
        if ext != bool(n.flags & NTF_EXT_LEARNED):
            n.flags ^= NTF_EXT_LEARNED
            notify = gc_update = True
        mgd = bool(flags & NEIGH_UPDATE_F_MANAGED)
        if mgd != bool(n.flags & NTF_MANAGED):
            n.flags ^= NTF_MANAGED
            notify = True
    if flags & (NEIGH_UPDATE_F_USE | NEIGH_UPDATE_F_MANAGED):
        n.nud_state = old & ~NUD_PERMANENT
        if gc_update or (old ^ n.nud_state) & NUD_PERMANENT:
            tbl._update_gc_list(n)
        if notify:
            _notify(n)
        return 0
    if not new & NUD_VALID:
        n.timer.cancel()
        n.nud_state = new
        if old & (NUD_INCOMPLETE | NUD_PROBE) and new & NUD_FAILED:
            _invalidate(n)
            notify = True
        elif old & NUD_VALID:
            notify = True
        if (new ^ old) & NUD_PERMANENT or gc_update:
            tbl._update_gc_list(n)
        if notify:
            _notify(n)
        return 0

    addr_len = len(dev.address)
    if addr_len == 0:
        new_ha = n.ha
    elif lladdr is not None:
        new_ha = bytes(lladdr[:addr_len])
        if old & NUD_VALID and new_ha == n.ha:
            new_ha = n.ha
    else:
        if not old & NUD_VALID:
            return -errno.EINVAL
        new_ha = n.ha
    changed_ha = new_ha != n.ha

    if new & NUD_CONNECTED:
        n.confirmed = now

    update_isrouter = bool(flags & NEIGH_UPDATE_F_OVERRIDE_ISROUTER)
    if old & NUD_VALID:
        if changed_ha and not flags & NEIGH_UPDATE_F_OVERRIDE:
            update_isrouter = False
            if flags & NEIGH_UPDATE_F_WEAK_OVERRIDE and old & NUD_CONNECTED:
                new_ha = n.ha
                changed_ha = False
                new = NUD_STALE
            else:
                _finish_isrouter(n, flags, update_isrouter)
                return 0
        elif not changed_ha and new == NUD_STALE and not flags & NEIGH_UPDATE_F_ADMIN:
            new = old

    if new != old or changed_ha:
        n.updated = now
    if new != old:
        n.timer.cancel()
        if new & NUD_PROBE:
            n.probes = 0
        if new & NUD_IN_TIMER:
            _add_timer(n, now + (tbl.reachable_time_ns(dev) if new & NUD_REACHABLE else 0))
        n.nud_state = new
        notify = True
    if changed_ha:
        n.ha = new_ha
        n.hh = None  # neigh_update_hhs
        if not new & NUD_CONNECTED:
            n.confirmed = now - 2 * tbl.parm_ns(dev, "base_reachable_time_ms", MS)
        notify = True
    _finish_isrouter(n, flags, update_isrouter)
    if new != old and not old & NUD_VALID and n.arp_queue:
        q, n.arp_queue = n.arp_queue, []
        n.arp_queue_len_bytes = 0
        if n.nud_state & NUD_VALID:
            _output(n, q)
        else:
            for p in q:
                kfree_skb_reason(p, "NEIGH_DEAD", tbl.net)
    if (new ^ old) & NUD_PERMANENT or gc_update:
        tbl._update_gc_list(n)
    if notify:
        _notify(n)
    return 0


def _finish_isrouter(n: Neighbour, flags: int, update: bool) -> None:
    """``neigh_update_is_router``."""
    if not update:
        return
    if flags & NEIGH_UPDATE_F_ISROUTER:
        n.flags |= NTF_ROUTER
    else:
        n.flags &= ~NTF_ROUTER


def neigh_event_ns(tbl: NeighTable, lladdr: bytes | None, key: bytes,
                   dev: "NetDevice") -> Neighbour | None:
    """``neigh_event_ns``: a solicitation from ``key`` tells us its address (STALE)."""
    n = tbl.lookup_or_create(dev, key, create=lladdr is not None or not len(dev.address))
    if n is not None:
        neigh_update_entry(n, lladdr, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE)
    return n


def neigh_confirm(n: Neighbour) -> None:
    """``neigh_confirm``: upper-layer reachability confirmation (TCP ACKs, MSG_CONFIRM)."""
    now = n.tbl.clock.now
    if n.confirmed != now:
        n.confirmed = now


# --------------------------------------------------------------- transmit
def _build_hh(n: Neighbour, proto: int) -> bytes:
    """``neigh_hh_init``/``eth_header_cache``: dst MAC, src MAC, EtherType."""
    hh = n.ha + n.dev.address + proto.to_bytes(2, "big")
    n.hh = hh
    n.hh_proto = proto
    return hh


def _xmit(n: Neighbour, pkts: list["Packet"]) -> None:
    """Prepend the cached 14-byte header to each packet (``neigh_hh_output``: one slice
    assignment) and hand the batch to the device once."""
    dev = n.dev
    if n.direct:
        dev_queue_xmit_list(dev, pkts)
        return
    hh = n.hh
    hh_proto = n.hh_proto
    for p in pkts:
        proto = p.protocol
        if hh is None or proto != hh_proto:
            hh = _build_hh(n, proto)
            hh_proto = proto
        if p.data - p.head < ETH_HLEN:
            p.expand_head(ETH_HLEN + 64)
        off = p.data - ETH_HLEN
        p.data = off
        p.buf[off:off + ETH_HLEN] = hh
        p.mac_header = off
        if p.trace is not None:
            p.trace.event(p, "neigh_resolve_output" if not n.nud_state & NUD_CONNECTED
                          else "neigh_hh_output")
    dev_queue_xmit_list(dev, pkts)


def _output(n: Neighbour, pkts: list["Packet"]) -> None:
    """``n->output`` for a batch: the connected fast path (``neigh_hh_output``) or
    ``neigh_resolve_output``.  Only the latter refreshes ``used`` (in neigh_event_send):
    measured on 6.18, a REACHABLE entry in steady use still goes STALE when
    reachable_time runs out (delay_first_probe_time=1, traffic every 0.5 s)."""
    if n.nud_state & NUD_CONNECTED:
        _xmit(n, pkts)
        return
    ready: list[Packet] = []
    for p in pkts:
        if not neigh_event_send(n, p):
            ready.append(p)
    if ready:
        _xmit(n, ready)


def neigh_output(tbl: NeighTable, dev: "NetDevice", key: bytes, pkts: list["Packet"]) -> None:
    """Send ``pkts`` (network header at ``data``, ``protocol`` set) to neighbour ``key``
    on ``dev``: ``ip_finish_output2``'s ``__neigh_create`` + ``neigh_output``."""
    if not pkts:
        return
    key = tbl.ops.output_key(dev, bytes(key))
    n = tbl.entries.get((key, dev.ifindex))
    if n is None:
        try:
            n = tbl.create(dev, key)
        except KernelError:
            for p in pkts:
                kfree_skb_reason(p, "NEIGH_CREATEFAIL", tbl.net)
            return
    _output(n, pkts)


# --------------------------------------------------------------- admin API
def neigh_lookup(tbl: NeighTable, dev: "NetDevice", key: bytes) -> Neighbour | None:
    """``neigh_lookup``."""
    return tbl.lookup(dev, key)


def neigh_update(tbl: NeighTable, dev: "NetDevice", key: bytes, lladdr: bytes | None,
                 new_state: int, flags: int) -> int:
    """Contract form of ``neigh_update``: find (or create, like ``__neigh_lookup(...,
    creat=1)`` in arp_req_set) the entry and apply ``neigh_update_entry``.  Returns 0 or a
    negative errno (-ENOBUFS when the table is full)."""
    try:
        n = tbl.create(dev, key) if tbl.lookup(dev, key) is None else tbl.lookup(dev, key)
    except KernelError as e:
        return -e.errno
    assert n is not None
    return neigh_update_entry(n, lladdr, new_state, flags)


def neigh_add(tbl: NeighTable, dev: "NetDevice | None", key: bytes, lladdr: bytes | None = None,
              state: int = NUD_PERMANENT, flags: int = 0, create: bool = True,
              replace: bool = False, excl: bool = True, protocol: int = 0) -> None:
    """``neigh_add`` (RTM_NEWNEIGH).  ``ip neigh add`` = create+excl, ``replace`` =
    create+replace, ``change`` = replace only (create=False, excl=False).
    ``flags`` are NTF_* (NTF_PROXY for a proxy entry, NTF_ROUTER, NTF_USE …)."""
    upd = NEIGH_UPDATE_F_ADMIN | NEIGH_UPDATE_F_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE_ISROUTER
    if dev is not None and lladdr is not None and len(lladdr) < len(dev.address):
        raise KernelError(errno.EINVAL, "Invalid link address")
    if len(key) < tbl.ops.key_len:
        raise KernelError(errno.EINVAL, "Invalid network address")
    key = bytes(key[:tbl.ops.key_len])
    if flags & NTF_PROXY:
        if flags & (NTF_MANAGED | NTF_EXT_VALIDATED):
            raise KernelError(errno.EINVAL, "Invalid NTF_* flag combination")
        pn = tbl.pneigh_lookup(key, dev, create=True)
        assert pn is not None
        pn.flags = flags
        pn.permanent = bool(state & NUD_PERMANENT)
        if protocol:
            pn.protocol = protocol
        return
    if dev is None:
        raise KernelError(errno.EINVAL, "Device not specified")
    if flags & NTF_MANAGED:
        raise NotSupported("managed neighbour entries (NTF_MANAGED, neigh_managed_work)")
    n = tbl.lookup(dev, key)
    permanent = bool(state & NUD_PERMANENT)
    if n is None:
        if not create:
            raise KernelError(errno.ENOENT)
        if permanent and flags & NTF_MANAGED:
            raise KernelError(errno.EINVAL, "Invalid NTF_* flag for permanent entry")
        n = tbl.create(dev, key, flags, exempt_from_gc=permanent or bool(flags & NTF_EXT_LEARNED))
    else:
        if excl:
            raise KernelError(errno.EEXIST)
        if permanent and flags & NTF_MANAGED:
            raise KernelError(errno.EINVAL, "Invalid NTF_* flag for permanent entry")
        if not replace:
            upd &= ~(NEIGH_UPDATE_F_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE_ISROUTER)
    if protocol:
        n.protocol = protocol
    if flags & NTF_EXT_LEARNED:
        upd |= NEIGH_UPDATE_F_EXT_LEARNED
    if flags & NTF_ROUTER:
        upd |= NEIGH_UPDATE_F_ISROUTER
    if flags & NTF_MANAGED:
        upd |= NEIGH_UPDATE_F_MANAGED
    if flags & NTF_USE:
        upd |= NEIGH_UPDATE_F_USE
    err = neigh_update_entry(n, lladdr, state, upd)
    if err == 0 and flags & (NTF_USE | NTF_MANAGED):
        neigh_event_send(n, None)
    elif err < 0:
        raise KernelError(-err)


def neigh_delete(tbl: NeighTable, dev: "NetDevice | None", key: bytes, proxy: bool = False) -> None:
    """``neigh_delete`` (RTM_DELNEIGH): FAILED update (queued packets are reported) and
    unlink; ENOENT when there is no such entry."""
    key = bytes(key)
    if proxy:
        for pn in tbl.pentries:
            if pn.key == key and pn.dev is dev:
                tbl.pentries.remove(pn)
                return
        raise KernelError(errno.ENOENT)
    if dev is None:
        raise KernelError(errno.EINVAL, "Device not specified")
    n = tbl.lookup(dev, key)
    if n is None:
        raise KernelError(errno.ENOENT)
    neigh_update_entry(n, None, NUD_FAILED, NEIGH_UPDATE_F_OVERRIDE | NEIGH_UPDATE_F_ADMIN)
    tbl.remove(n)


def _dump_sorted(tbl: NeighTable, items: Iterable[Neighbour]) -> list[Neighbour]:
    """Hash-bucket order, newest first inside a bucket (see module docstring)."""
    return sorted(items, key=lambda n: (tbl.bucket_of(n), -n.seq))


def nud_match(state: int, flags: int, nud_mask: int) -> bool:
    """iproute2's show filter: ``nud_mask`` bits plus NUD_FILTER_NONE for state 0."""
    if state & nud_mask:
        return True
    if flags & (NTF_PROXY | NTF_EXT_LEARNED):
        return True
    return state == NUD_NONE and bool(nud_mask & NUD_FILTER_NONE)


#: ``ip neigh show`` default: everything but NOARP (and not "none").
NUD_SHOW_DEFAULT = 0xFF & ~NUD_NOARP
#: ``ip neigh flush`` default: neither PERMANENT nor NOARP.
NUD_FLUSH_DEFAULT = 0xFF & ~(NUD_PERMANENT | NUD_NOARP)


def neigh_dump(tbl: NeighTable, dev: "NetDevice | None" = None,
               nud_mask: int | None = NUD_SHOW_DEFAULT, key: bytes | None = None) -> list[Neighbour]:
    """``neigh_dump_table`` filtered like ``ip neigh show [dev D] [nud …] [ADDR]``
    (``nud_mask=None``: no state filter)."""
    out = []
    for n in tbl.entries.values():
        if dev is not None and n.dev is not dev:
            continue
        if key is not None and n.key != key:
            continue
        if nud_mask is not None and not nud_match(n.nud_state, n.flags, nud_mask):
            continue
        out.append(n)
    return _dump_sorted(tbl, out)


def pneigh_dump(tbl: NeighTable, dev: "NetDevice | None" = None) -> list[PneighEntry]:
    """``pneigh_dump_table`` (``ip neigh show proxy``), newest first."""
    return [pn for pn in tbl.pentries if dev is None or pn.dev is dev]


def neigh_flush(tbl: NeighTable, dev: "NetDevice | None" = None,
                nud_mask: int = NUD_FLUSH_DEFAULT, key: bytes | None = None) -> int:
    """``ip neigh flush``: iproute2 dumps and deletes every matching entry; returns how
    many were deleted."""
    victims = neigh_dump(tbl, dev, nud_mask, key)
    for n in victims:
        neigh_update_entry(n, None, NUD_FAILED, NEIGH_UPDATE_F_OVERRIDE | NEIGH_UPDATE_F_ADMIN)
        tbl.remove(n)
    return len(victims)


def neigh_flush_dev(tbl: NeighTable, dev: "NetDevice | None", skip_perm: bool) -> None:
    """``neigh_flush_dev``: drop the device's entries (kernel: those still referenced
    become dead NOARP/NONE entries; netstack holds no references, so all are freed)."""
    for n in list(tbl.entries.values()):
        if dev is not None and n.dev is not dev:
            continue
        if skip_perm and n.nud_state & NUD_PERMANENT:
            continue
        n.timer.cancel()
        tbl._purge_queue(n, "NEIGH_DEAD")
        tbl.remove(n)


def _ifdown(tbl: NeighTable, dev: "NetDevice | None", skip_perm: bool) -> None:
    """``__neigh_ifdown``: entries, proxy entries and the device's delayed proxy packets."""
    neigh_flush_dev(tbl, dev, skip_perm)
    tbl.pentries = [pn for pn in tbl.pentries
                    if not ((dev is None or pn.dev is dev) and not (skip_perm and pn.permanent))]
    keep = []
    for e in tbl.proxy_queue:
        if dev is None or e[2].dev is dev:
            kfree_skb_reason(e[2], "NOT_SPECIFIED", tbl.net)
        else:
            keep.append(e)
    tbl.proxy_queue = keep
    if not keep:
        tbl.proxy_timer.cancel()


def neigh_ifdown(tbl: NeighTable, dev: "NetDevice | None") -> None:
    """``neigh_ifdown``: device down/unregister — every entry goes, PERMANENT too."""
    _ifdown(tbl, dev, False)


def neigh_carrier_down(tbl: NeighTable, dev: "NetDevice") -> None:
    """``neigh_carrier_down``: carrier lost — PERMANENT entries stay."""
    _ifdown(tbl, dev, True)


def neigh_changeaddr(tbl: NeighTable, dev: "NetDevice") -> None:
    """``neigh_changeaddr``: the device's MAC changed, cached headers are wrong."""
    neigh_flush_dev(tbl, dev, False)
