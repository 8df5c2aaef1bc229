"""Connection tracking core: the per-namespace table, ``nf_conntrack_in`` and confirm.

Reproduces net/netfilter/nf_conntrack_core.c and the L4 trackers of
nf_conntrack_proto_{udp,icmp,icmpv6,generic,sctp}.c (TCP lives in conntrack_proto_tcp.py):

* ``nf_conntrack_in`` runs at PRE_ROUTING and LOCAL_OUT (priority -200): it extracts the
  tuple, handles ICMP errors (RELATED, via the quoted inner tuple, ``nf_conntrack_inet_error``),
  looks the tuple up in both directions, creates an *unconfirmed* entry when missing
  (``init_conntrack``), and lets the L4 tracker validate the packet; a rejected packet gets
  no ct (``ct state invalid``) and continues (-NF_ACCEPT semantics).
* ``nf_conntrack_confirm`` at LOCAL_IN / POST_ROUTING (priority INT_MAX) inserts the entry in
  the hash under both tuples and starts its timeout (``__nf_conntrack_confirm``).
* ``nf_conntrack_max``: at the limit, ``early_drop`` evicts one entry that is not ASSURED
  (netstack evicts the oldest such entry; the kernel scans a few hash buckets near the new
  tuple's), otherwise the packet is dropped (NF_DROP → ``NETFILTER_DROP``).
* Timeouts come from the ``net.netfilter.nf_conntrack_*`` sysctls (kernel defaults) and run
  on the virtual clock; expired entries are reaped on lookup and on dump (the kernel's
  ``gc_worker`` equivalent), emitting DESTROY events.
* Conntrack is free until used: the hooks are registered only by ``nf_ct_netns_get`` (an nft
  rule/expression or NAT needing conntrack calls it), as net/netfilter/nf_conntrack_proto.c.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from netstack.netfilter import conntrack_proto_tcp as tcpct
from netstack.netfilter.core import (NF_ACCEPT, NF_DROP, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT,
                                     NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING,
                                     NF_IP_PRI_CONNTRACK, NF_IP_PRI_CONNTRACK_CONFIRM,
                                     NF_REPEAT, NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6,
                                     NfHookOps, NfHookState, nf_net, nf_register_net_hook,
                                     nf_unregister_net_hook)
from netstack.netfilter.conntrack_tuple import (
    DEFAULT_ZONE, ICMP_ERRORS, ICMP_VALID_NEW, ICMPV6_ERRORS, ICMPV6_NOCT, ICMPV6_VALID_NEW,
    IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP,
    IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, CtTuple, CtZone, L3Info, ct_tuple_from_bytes,
    invert, l4_tuple, parse_l3)
from netstack.packet.checksum import (csum_ipv6_magic, csum_partial, csum_tcpudp_magic,
                                      ip_compute_csum)
from netstack.packet.skb import CHECKSUM_UNNECESSARY

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

NSEC = 1_000_000_000
#: How often expired entries are reaped while event listeners exist (virtual time).
GC_INTERVAL_NS = NSEC

# ---- ctinfo (include/uapi/linux/netfilter/nf_conntrack_common.h) ------------------------
IP_CT_ESTABLISHED = 0
IP_CT_RELATED = 1
IP_CT_NEW = 2
IP_CT_IS_REPLY = 3
IP_CT_ESTABLISHED_REPLY = 3
IP_CT_RELATED_REPLY = 4
IP_CT_UNTRACKED = 7
#: No ct attached at all (``nf_ct_get`` returned NULL and the skb carries nothing).
IP_CT_NONE = -1

# nft ``ct state`` bits (NF_CT_STATE_*_BIT).
NF_CT_STATE_INVALID_BIT = 1
NF_CT_STATE_UNTRACKED_BIT = 1 << 6


def nf_ct_state_bit(ctinfo: int) -> int:
    """``NF_CT_STATE_BIT(ctinfo)`` = 1 << (ctinfo % IP_CT_IS_REPLY + 1)."""
    return 1 << (ctinfo % IP_CT_IS_REPLY + 1)


# ---- status bits (enum ip_conntrack_status) ----------------------------------------------
IPS_EXPECTED = 1 << 0
IPS_SEEN_REPLY = 1 << 1
IPS_ASSURED = 1 << 2
IPS_CONFIRMED = 1 << 3
IPS_SRC_NAT = 1 << 4
IPS_DST_NAT = 1 << 5
IPS_NAT_MASK = IPS_SRC_NAT | IPS_DST_NAT
IPS_SEQ_ADJUST = 1 << 6
IPS_SRC_NAT_DONE = 1 << 7
IPS_DST_NAT_DONE = 1 << 8
IPS_NAT_DONE_MASK = IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE
IPS_DYING = 1 << 9
IPS_FIXED_TIMEOUT = 1 << 10
IPS_TEMPLATE = 1 << 11
IPS_NAT_CLASH = 1 << 12
IPS_HELPER = 1 << 13
IPS_OFFLOAD = 1 << 14
IPS_HW_OFFLOAD = 1 << 15

# ---- events (enum ip_conntrack_events, as conntrack -E groups them) ---------------------
EV_NEW = "NEW"
EV_UPDATE = "UPDATE"
EV_DESTROY = "DESTROY"

#: Default value of every conntrack sysctl (measured on Linux 6.18, see module docstring).
SYSCTL_DEFAULTS: dict[str, int] = {
    "nf_conntrack_acct": 0, "nf_conntrack_buckets": 262144, "nf_conntrack_checksum": 1,
    "nf_conntrack_count": 0, "nf_conntrack_events": 2, "nf_conntrack_expect_max": 4096,
    "nf_conntrack_generic_timeout": 600, "nf_conntrack_gre_timeout": 30,
    "nf_conntrack_gre_timeout_stream": 180, "nf_conntrack_icmp_timeout": 30,
    "nf_conntrack_icmpv6_timeout": 30, "nf_conntrack_log_invalid": 0,
    "nf_conntrack_max": 262144,
    "nf_conntrack_sctp_timeout_closed": 10, "nf_conntrack_sctp_timeout_cookie_echoed": 3,
    "nf_conntrack_sctp_timeout_cookie_wait": 3, "nf_conntrack_sctp_timeout_established": 210,
    "nf_conntrack_sctp_timeout_heartbeat_sent": 30,
    "nf_conntrack_sctp_timeout_shutdown_ack_sent": 3,
    "nf_conntrack_sctp_timeout_shutdown_recd": 3,
    "nf_conntrack_sctp_timeout_shutdown_sent": 3,
    "nf_conntrack_tcp_be_liberal": 0, "nf_conntrack_tcp_ignore_invalid_rst": 0,
    "nf_conntrack_tcp_loose": 1, "nf_conntrack_tcp_max_retrans": 3,
    "nf_conntrack_tcp_timeout_close": 10, "nf_conntrack_tcp_timeout_close_wait": 60,
    "nf_conntrack_tcp_timeout_established": 432000, "nf_conntrack_tcp_timeout_fin_wait": 120,
    "nf_conntrack_tcp_timeout_last_ack": 30, "nf_conntrack_tcp_timeout_max_retrans": 300,
    "nf_conntrack_tcp_timeout_syn_recv": 60, "nf_conntrack_tcp_timeout_syn_sent": 120,
    "nf_conntrack_tcp_timeout_time_wait": 120,
    "nf_conntrack_tcp_timeout_unacknowledged": 300,
    "nf_conntrack_timestamp": 0, "nf_conntrack_udp_timeout": 30,
    "nf_conntrack_udp_timeout_stream": 120,
}
_P = "net.netfilter."
#: Sysctls read-only inside a namespace (buckets) or computed (count).
_READ_ONLY = ("nf_conntrack_buckets", "nf_conntrack_count")


def ct_sysctl_init(net: "Net") -> None:
    """Register the conntrack sysctls of ``net`` (idempotent)."""
    tbl = net.sysctl
    if _P + "nf_conntrack_max" in tbl:
        return
    for name, default in SYSCTL_DEFAULTS.items():
        if name in _READ_ONLY:
            continue
        maxv = 1 if name in ("nf_conntrack_acct", "nf_conntrack_checksum",
                             "nf_conntrack_timestamp", "nf_conntrack_tcp_loose",
                             "nf_conntrack_tcp_be_liberal",
                             "nf_conntrack_tcp_ignore_invalid_rst") else None
        tbl.register(_P + name, default, 0, maxv)
    tbl.register(_P + "nf_conntrack_buckets", SYSCTL_DEFAULTS["nf_conntrack_buckets"], 0, None)
    tbl.register(_P + "nf_conntrack_count", 0, 0, None)
    from netstack.netfilter.defrag6 import frag6_sysctl_init
    frag6_sysctl_init(net)


def register(world: Any) -> None:
    """Subsystem hook (``netstack.core.world.SUBSYSTEMS``): the conntrack sysctls exist in
    every namespace, as with the nf_conntrack module loaded.  Conntrack itself stays off
    until ``nf_ct_netns_get``."""
    world.pernet_inits.append(ct_sysctl_init)


# ---------------------------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class NfConn:
    """``struct nf_conn`` (the fields netstack models).

    ``timeout`` is an absolute virtual time (ns) once confirmed and a relative duration
    (ns) before, as the kernel's ``ct->timeout``."""

    tuplehash: list[CtTuple]
    zone: CtZone = DEFAULT_ZONE
    status: int = 0
    timeout: int = 0
    mark: int = 0
    secmark: int = 0
    labels: int = 0
    proto: Any = None
    id: int = 0
    net: Any = None
    #: NAT: output ifindex for masquerade (``nat->masq_index``); 0 = none.
    masq_index: int = 0
    #: per-direction [packets, bytes] (nf_conntrack_acct).
    acct: list[list[int]] | None = None
    #: creation time in ns (nf_conntrack_timestamp).
    start: int = 0
    #: UDP: end of the 2 s window after which a reply makes the flow a stream.
    stream_ts: int = 0
    #: flowtable entry holding this ct (IPS_OFFLOAD).
    flow: Any = None
    #: an UPDATE event is cached for delivery after this packet (nf_conntrack_event_cache).
    ev_pending: bool = False
    #: deleted from userspace (conntrack -D/-F): its DESTROY event says [USERSPACE].
    user_deleted: bool = False
    #: the connection whose expectation created this one (``ct->master``, IPS_EXPECTED).
    master: "NfConn | None" = None
    #: helper extension (``nf_conn_help``): conntrack_helper.ConnHelp or None.
    help: Any = None
    #: sequence adjustment extension (seqadj.SeqAdj) once a NAT helper mangled a segment.
    seqadj: Any = None

    @property
    def l3num(self) -> int:
        return self.tuplehash[0].l3num

    @property
    def protonum(self) -> int:
        return self.tuplehash[0].protonum

    def confirmed(self) -> bool:
        return bool(self.status & IPS_CONFIRMED)

    def expires_in(self, now: int) -> int:
        """Seconds left as ``nf_ct_expires`` / conntrack -L print them (rounded down)."""
        if not self.status & IPS_CONFIRMED:
            return max(0, self.timeout // NSEC)
        return max(0, (self.timeout - now) // NSEC)


#: Packets with ``notrack`` carry this marker (``IP_CT_UNTRACKED``, ct pointer NULL).
UNTRACKED = (None, IP_CT_UNTRACKED)


@dataclass
class CtNet:
    """``struct netns_ct`` + the hash table of one namespace."""

    net: Any
    table: dict[tuple[CtTuple, int], tuple[NfConn, int]] = field(default_factory=dict)
    #: every confirmed ct, oldest first (dump order follows insertion).
    conns: dict[NfConn, None] = field(default_factory=dict)
    #: confirmed and not ASSURED: early-drop candidates, oldest first.
    unassured: dict[NfConn, None] = field(default_factory=dict)
    stats: Counter = field(default_factory=Counter)
    listeners: list[Callable[[str, NfConn], None]] = field(default_factory=list)
    next_id: int = 1
    rng: random.Random = field(default_factory=random.Random)
    hook_ops: dict[int, list[NfHookOps]] = field(default_factory=dict)
    gc_timer: Any = None
    #: expectations (conntrack_expect.ExpectTable)
    expect: Any = None

    def __post_init__(self) -> None:
        from netstack.netfilter.conntrack_expect import ExpectTable
        self.expect = ExpectTable()

    # -- sysctl access
    def sysctl(self, name: str) -> int:
        return int(self.net.sysctl.values[_P + name])

    @property
    def now(self) -> int:
        return self.net.world.clock.now

    @property
    def count(self) -> int:
        return len(self.conns)

    # -- events
    def event(self, kind: str, ct: NfConn) -> None:
        for fn in list(self.listeners):
            fn(kind, ct)
        if kind == EV_NEW and self.listeners:
            self._arm_gc()

    def _arm_gc(self) -> None:
        """While someone listens for events, reap expired entries every virtual second
        (the kernel's gc_worker) so DESTROY events come without a table dump."""
        if self.gc_timer is None:
            self.gc_timer = self.net.world.clock.timer(self._gc_tick)
        if not self.gc_timer.active:
            self.gc_timer.mod_in(GC_INTERVAL_NS)

    def _gc_tick(self) -> None:
        self.gc()
        if self.conns and self.listeners:
            self.gc_timer.mod_in(GC_INTERVAL_NS)

    # -- hash table
    def find(self, t: CtTuple, zone: CtZone, direction: int = 0) -> tuple[NfConn, int] | None:
        """``__nf_conntrack_find_get``: the entry and the direction ``t`` matched, reaping
        it first if it has expired."""
        hit = self.table.get((t, zone.id_for(direction)))
        if hit is None:
            hit = self.table.get((t, zone.id_for(1 - direction)))
            if hit is None:
                return None
        ct = hit[0]
        if ct.timeout <= self.now and not ct.status & IPS_FIXED_TIMEOUT and ct.flow is None:
            self.delete(ct, EV_DESTROY)
            return None
        return hit

    def taken(self, t: CtTuple, zone: CtZone, ignored: NfConn | None) -> bool:
        """``nf_conntrack_tuple_taken``: is ``t`` (a reply tuple) used by another entry?"""
        for d in (IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY):
            hit = self.table.get((t, zone.id_for(d)))
            if hit is not None and hit[0] is not ignored:
                ct = hit[0]
                if ct.timeout <= self.now and ct.flow is None:
                    self.delete(ct, EV_DESTROY)
                    continue
                return True
        return False

    def insert(self, ct: NfConn) -> None:
        o, r = ct.tuplehash
        self.table[(o, ct.zone.id_for(0))] = (ct, IP_CT_DIR_ORIGINAL)
        self.table[(r, ct.zone.id_for(1))] = (ct, IP_CT_DIR_REPLY)
        self.conns[ct] = None
        if not ct.status & IPS_ASSURED:
            self.unassured[ct] = None
        self.net.sysctl.values[_P + "nf_conntrack_count"] = len(self.conns)

    def unhash(self, ct: NfConn) -> None:
        for d, t in enumerate(ct.tuplehash):
            k = (t, ct.zone.id_for(d))
            hit = self.table.get(k)
            if hit is not None and hit[0] is ct:
                del self.table[k]

    def rehash_reply(self, ct: NfConn, new_reply: CtTuple) -> None:
        """``nf_conntrack_alter_reply`` for a confirmed entry (NAT on a confirmed ct)."""
        k = (ct.tuplehash[1], ct.zone.id_for(1))
        if self.table.get(k, (None,))[0] is ct:
            del self.table[k]
        ct.tuplehash[1] = new_reply
        if ct.status & IPS_CONFIRMED:
            self.table[(new_reply, ct.zone.id_for(1))] = (ct, IP_CT_DIR_REPLY)

    def delete(self, ct: NfConn, kind: str = EV_DESTROY) -> None:
        """``nf_ct_delete``: unhash, mark DYING, emit DESTROY."""
        if ct.status & IPS_DYING:
            return
        ct.status |= IPS_DYING
        if ct.help is not None and ct.help.expectations:
            from netstack.netfilter.conntrack_expect import nf_ct_remove_expectations
            nf_ct_remove_expectations(self, ct)
        self.unhash(ct)
        self.conns.pop(ct, None)
        self.unassured.pop(ct, None)
        self.net.sysctl.values[_P + "nf_conntrack_count"] = len(self.conns)
        if ct.flow is not None:
            ct.flow.teardown_by_ct()
        self.event(kind, ct)

    def gc(self) -> int:
        """Reap every expired entry (``gc_worker``); returns how many."""
        now = self.now
        dead = [ct for ct in self.conns
                if ct.timeout <= now and not ct.status & IPS_FIXED_TIMEOUT and ct.flow is None]
        for ct in dead:
            self.delete(ct, EV_DESTROY)
        return len(dead)

    def set_assured(self, ct: NfConn) -> None:
        if not ct.status & IPS_ASSURED:
            ct.status |= IPS_ASSURED
            self.unassured.pop(ct, None)

    def early_drop(self) -> bool:
        """``early_drop``: evict one non-assured entry (expired ones first)."""
        if self.gc():
            return True
        for ct in self.unassured:
            self.delete(ct, EV_DESTROY)
            self.stats["early_drop"] += 1
            return True
        return False


def ct_net(net: "Net") -> CtNet:
    """The namespace's conntrack state, created on first use."""
    st = nf_net(net)
    if st.ct is None:
        ct_sysctl_init(net)
        st.ct = CtNet(net)
        st.ct.rng.seed(int.from_bytes(net.hash_secret[:8], "big"))
    return st.ct


def ct_net_if_enabled(net: "Net") -> CtNet | None:
    st = net.__dict__.get("nf")
    return None if st is None else st.ct


# ---- packet <-> ct -----------------------------------------------------------------------
def nf_ct_get(pkt: "Packet") -> tuple[NfConn | None, int]:
    """``nf_ct_get``: (ct, ctinfo); (None, IP_CT_UNTRACKED) for notrack; (None, IP_CT_NONE)
    when conntrack saw nothing valid (``ct state invalid``)."""
    v = pkt.ct
    if v is None:
        return None, IP_CT_NONE
    ct, ctinfo = v
    if ct is not None and ct.status & IPS_TEMPLATE:
        return None, IP_CT_NONE
    return ct, ctinfo


def nf_ct_set(pkt: "Packet", ct: NfConn | None, ctinfo: int) -> None:
    pkt.ct = (ct, ctinfo)


def nf_ct_attach(new: "Packet", orig: "Packet") -> None:
    """``nf_ct_attach`` / ``__nf_conntrack_attach``: a packet the stack generates in answer
    to ``orig`` (icmp_send, a TCP reset from nft reject) joins ``orig``'s connection as
    RELATED in the opposite direction, so NAT translates it on the way out."""
    ct, ctinfo = nf_ct_get(orig)
    if ct is None or new.ct is not None:
        return
    new.ct = (ct, IP_CT_RELATED_REPLY if ctinfo2dir(ctinfo) == IP_CT_DIR_ORIGINAL
              else IP_CT_RELATED)


def nf_ct_set_untracked(pkt: "Packet") -> None:
    """``notrack`` (nft_notrack_eval): the packet is UNTRACKED unless already tracked."""
    if pkt.ct is None or (pkt.ct[0] is not None and pkt.ct[0].status & IPS_TEMPLATE):
        pkt.ct = UNTRACKED


def nf_ct_set_zone_template(pkt: "Packet", zone_id: int, zdir: int = 3) -> None:
    """``ct zone set`` before conntrack (nft_ct_set_zone_eval): attach a template whose zone
    the new/looked-up entry takes."""
    if pkt.ct is not None and not (pkt.ct[0] is not None and pkt.ct[0].status & IPS_TEMPLATE):
        return
    tmpl = NfConn([], zone=CtZone(zone_id, zdir), status=IPS_TEMPLATE | IPS_CONFIRMED)
    pkt.ct = (tmpl, IP_CT_NEW)


def nf_ct_state(pkt: "Packet") -> int:
    """The nft ``ct state`` bitmask of the packet (nft_ct.c NFT_CT_STATE)."""
    ct, ctinfo = nf_ct_get(pkt)
    if ct is not None:
        return nf_ct_state_bit(ctinfo)
    if ctinfo == IP_CT_UNTRACKED:
        return NF_CT_STATE_UNTRACKED_BIT
    return NF_CT_STATE_INVALID_BIT


def ctinfo2dir(ctinfo: int) -> int:
    return IP_CT_DIR_REPLY if ctinfo >= IP_CT_IS_REPLY else IP_CT_DIR_ORIGINAL


# ---- checksum validation (nf_checksum, only at PRE_ROUTING) ------------------------------
def _l4_csum_bad(pkt: "Packet", l3: L3Info) -> bool:
    if pkt.ip_summed == CHECKSUM_UNNECESSARY:
        return False
    buf = pkt.buf
    seg = buf[l3.l4off:l3.l4off + l3.l4len]
    p = l3.protonum
    if p == IPPROTO_ICMP:
        return ip_compute_csum(seg) != 0
    if p == IPPROTO_UDP and l3.l3num == NFPROTO_IPV4 and seg[6:8] == b"\0\0":
        return False
    if l3.l3num == NFPROTO_IPV4:
        return csum_tcpudp_magic(l3.src, l3.dst, l3.l4len, p, csum_partial(seg)) != 0
    return csum_ipv6_magic(l3.src, l3.dst, l3.l4len, p, csum_partial(seg)) != 0


# ---- timeouts ---------------------------------------------------------------------------
def tcp_timeouts(cn: CtNet) -> list[int]:
    return [0] + [cn.sysctl("nf_conntrack_tcp_timeout_" + n) if n != "syn_sent2"
                  else cn.sysctl("nf_conntrack_tcp_timeout_syn_sent")
                  for n in tcpct.TIMEOUT_SYSCTLS[1:]]


def _refresh(cn: CtNet, ct: NfConn, secs: int) -> None:
    """``nf_ct_refresh``: absolute once confirmed, relative before."""
    if ct.status & IPS_FIXED_TIMEOUT:
        return
    if ct.status & IPS_CONFIRMED:
        ct.timeout = cn.now + secs * NSEC
    else:
        ct.timeout = secs * NSEC


# ---- L4 trackers -------------------------------------------------------------------------
def _l4_new_state(cn: CtNet, ct: NfConn, pkt: "Packet", l3: L3Info) -> bool:
    """Per-protocol initial state for an unconfirmed entry (the ``!nf_ct_is_confirmed``
    branches of each tracker).  False = invalid, the entry is freed."""
    p = l3.protonum
    t = ct.tuplehash[0]
    if p == IPPROTO_TCP:
        st = tcpct.TcpCt()
        seg = tcpct.TcpSeg(pkt.buf, l3.l4off, l3.l4len)
        if not tcpct.tcp_new(st, seg, bool(cn.sysctl("nf_conntrack_tcp_loose"))):
            return False
        ct.proto = st
    elif p == IPPROTO_ICMP and l3.l3num == NFPROTO_IPV4:
        if t.icmp_type not in ICMP_VALID_NEW:
            return False
    elif p == IPPROTO_ICMPV6 and l3.l3num == NFPROTO_IPV6:
        if t.icmp_type not in ICMPV6_VALID_NEW:
            return False
    elif p == IPPROTO_SCTP:
        from netstack.netfilter.conntrack_proto_sctp import sctp_new
        st = sctp_new(pkt.buf, l3.l4off, l3.l4len)
        if st is None:
            return False
        ct.proto = st
    elif p in (IPPROTO_UDP, IPPROTO_UDPLITE):
        ct.stream_ts = cn.now + 2 * NSEC
    return True


def _l4_packet(cn: CtNet, ct: NfConn, ctinfo: int, pkt: "Packet", l3: L3Info) -> int:
    """``nf_conntrack_handle_packet``: NF_ACCEPT, -NF_ACCEPT (invalid), NF_REPEAT or
    NF_DROP."""
    p = l3.protonum
    direction = ctinfo2dir(ctinfo)
    if p == IPPROTO_TCP:
        st: tcpct.TcpCt = ct.proto
        old_state = st.state
        seg = tcpct.TcpSeg(pkt.buf, l3.l4off, l3.l4len)
        seq_offset = None
        if ct.seqadj is not None:
            from netstack.netfilter.seqadj import nf_ct_seq_offset
            seq_offset = lambda d, s, ct=ct: nf_ct_seq_offset(ct, d, s)  # noqa: E731
        res, timeout, assured = tcpct.tcp_packet(
            bool(ct.status & IPS_SEEN_REPLY), bool(ct.status & IPS_ASSURED), st, direction,
            seg, tcp_timeouts(cn), bool(cn.sysctl("nf_conntrack_tcp_be_liberal")),
            cn.sysctl("nf_conntrack_tcp_max_retrans"), seq_offset)
        if res == tcpct.INVALID:
            return -NF_ACCEPT
        if res == tcpct.REPEAT:
            cn.delete(ct)
            return NF_REPEAT
        if res == tcpct.KILL_ACCEPT:
            if ct.status & IPS_CONFIRMED:
                cn.delete(ct)
            else:
                ct.status |= IPS_DYING
            return NF_ACCEPT
        if assured:
            cn.set_assured(ct)
            ct.ev_pending = True
        if st.state != old_state:
            ct.ev_pending = True  # IPCT_PROTOINFO
        if timeout >= 0:
            _refresh(cn, ct, timeout)
        return NF_ACCEPT
    if p in (IPPROTO_UDP, IPPROTO_UDPLITE):
        # SEEN_REPLY is set after the tracker ran (nf_conntrack_in), so the first reply
        # itself still gets the unreplied timeout.
        if ct.status & IPS_SEEN_REPLY:
            extra = cn.sysctl("nf_conntrack_udp_timeout")
            stream = False
            if cn.now > ct.stream_ts:
                extra = cn.sysctl("nf_conntrack_udp_timeout_stream")
                stream = True
            _refresh(cn, ct, extra)
            if ct.status & IPS_NAT_CLASH:
                return NF_ACCEPT
            if stream and not ct.status & IPS_ASSURED:
                cn.set_assured(ct)
                ct.ev_pending = True
        else:
            _refresh(cn, ct, cn.sysctl("nf_conntrack_udp_timeout"))
        return NF_ACCEPT
    if p == IPPROTO_ICMP and l3.l3num == NFPROTO_IPV4:
        _refresh(cn, ct, cn.sysctl("nf_conntrack_icmp_timeout"))
        return NF_ACCEPT
    if p == IPPROTO_ICMPV6 and l3.l3num == NFPROTO_IPV6:
        _refresh(cn, ct, cn.sysctl("nf_conntrack_icmpv6_timeout"))
        return NF_ACCEPT
    if p == IPPROTO_SCTP:
        from netstack.netfilter.conntrack_proto_sctp import sctp_packet
        res, timeout_name, assured = sctp_packet(ct.proto, direction, pkt.buf, l3.l4off,
                                                 l3.l4len)
        if res < 0:
            return -NF_ACCEPT
        if assured:
            cn.set_assured(ct)
            ct.ev_pending = True
        _refresh(cn, ct, cn.sysctl("nf_conntrack_sctp_timeout_" + timeout_name)
                 if timeout_name else 0)
        return NF_ACCEPT
    _refresh(cn, ct, cn.sysctl("nf_conntrack_generic_timeout"))
    return NF_ACCEPT


def _l4_error(cn: CtNet, pkt: "Packet", l3: L3Info, hooknum: int) -> str | None:
    """``l4proto->error`` checks common to all packets: malformed headers and (at
    PRE_ROUTING with nf_conntrack_checksum) bad checksums.  Returns why the packet is
    invalid, or None."""
    p = l3.protonum
    if p == IPPROTO_TCP:
        why = tcpct.tcp_error_check(pkt.buf, l3.l4off, l3.l4len)
        if why:
            return why
    elif p in (IPPROTO_UDP, IPPROTO_UDPLITE):
        if l3.l4len < 8:
            return "short packet"
        ulen = int.from_bytes(pkt.buf[l3.l4off + 4:l3.l4off + 6], "big")
        if p == IPPROTO_UDP and (ulen > l3.l4len or ulen < 8) and \
                not (l3.l3num == NFPROTO_IPV6 and ulen == 0):
            return "truncated/malformed packet"
    elif p in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        if l3.l4len < 8:
            return "short packet"
    if (p in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6)
            and hooknum == NF_INET_PRE_ROUTING and cn.sysctl("nf_conntrack_checksum")
            and _l4_csum_bad(pkt, l3)):
        return "bad checksum"
    return None


# ---- nf_conntrack_in -------------------------------------------------------------------
def _icmp_error(cn: CtNet, pkt: "Packet", l3: L3Info, zone: CtZone) -> tuple[NfConn, int] | None:
    """``nf_conntrack_inet_error``: find the connection the quoted packet belongs to.  The
    quoted tuple is the one the *other* side saw, so it is inverted before the lookup."""
    inner = bytes(pkt.buf[l3.l4off + 8:l3.l4off + l3.l4len])
    it = ct_tuple_from_bytes(inner, l3.l3num)
    if it is None:
        return None
    # (an error quoting an ICMP error is never related: error types have no inverse)
    inv = invert(it)
    if inv is None:
        return None
    hit = cn.find(inv, zone)
    if hit is None:
        return None
    ct, d = hit
    # The quoted packet travelled in direction d^1 of the error; the error itself goes the
    # opposite way of the quoted packet.
    ctinfo = IP_CT_RELATED if d == IP_CT_DIR_ORIGINAL else IP_CT_RELATED_REPLY
    return ct, ctinfo


def nf_conntrack_in(net: "Net", pf: int, hooknum: int, pkt: "Packet") -> int:
    """``nf_conntrack_in``: attach (ct, ctinfo) to ``pkt``.  Returns an NF verdict; invalid
    packets are accepted with no ct."""
    cn = ct_net(net)
    tmpl = None
    if pkt.ct is not None:
        c = pkt.ct[0]
        if c is None or not c.status & IPS_TEMPLATE:
            return NF_ACCEPT  # already tracked / untracked
        tmpl = c
        pkt.ct = None
    zone = tmpl.zone if tmpl is not None else DEFAULT_ZONE
    nh = pkt.network_header if pkt.network_header >= 0 else pkt.data
    l3 = parse_l3(pkt.buf, nh, pkt.tail, pf)
    if l3 is None or l3.fragment:
        cn.stats["invalid"] += 1
        return NF_ACCEPT
    p = l3.protonum
    if p == IPPROTO_ICMPV6 and l3.l3num == NFPROTO_IPV6 and l3.l4len >= 1 and \
            pkt.buf[l3.l4off] in ICMPV6_NOCT:
        pkt.ct = UNTRACKED
        return NF_ACCEPT
    why = _l4_error(cn, pkt, l3, hooknum)
    if why is not None:
        cn.stats["invalid"] += 1
        return NF_ACCEPT
    if (p == IPPROTO_ICMP and l3.l3num == NFPROTO_IPV4 and pkt.buf[l3.l4off] in ICMP_ERRORS) \
            or (p == IPPROTO_ICMPV6 and l3.l3num == NFPROTO_IPV6
                and pkt.buf[l3.l4off] in ICMPV6_ERRORS):
        hit = _icmp_error(cn, pkt, l3, zone)
        if hit is None:
            cn.stats["invalid"] += 1
            return NF_ACCEPT
        ct, ctinfo = hit
        nf_ct_set(pkt, ct, ctinfo)
        _account(cn, ct, ctinfo, pkt)
        return NF_ACCEPT
    for _ in range(3):
        t = l4_tuple(pkt.buf, l3)
        if t is None:
            cn.stats["invalid"] += 1
            return NF_ACCEPT
        hit = cn.find(t, zone)
        if hit is None:
            ct = _init_conntrack(cn, t, zone, pkt, tmpl)
            if ct is None:
                if cn.count >= cn.sysctl("nf_conntrack_max") > 0:
                    cn.stats["drop"] += 1
                    return NF_DROP
                cn.stats["invalid"] += 1
                return NF_ACCEPT
            _init_expected(cn, ct, tmpl)
            if not _l4_new_state(cn, ct, pkt, l3):
                cn.stats["invalid"] += 1
                return NF_ACCEPT
            ctinfo = IP_CT_RELATED if ct.status & IPS_EXPECTED else IP_CT_NEW
        else:
            ct, d = hit
            cn.stats["found"] += 1
            if d == IP_CT_DIR_REPLY:
                ctinfo = IP_CT_ESTABLISHED_REPLY
            elif ct.status & IPS_SEEN_REPLY:
                ctinfo = IP_CT_ESTABLISHED
            elif ct.status & IPS_EXPECTED:
                ctinfo = IP_CT_RELATED
            else:
                ctinfo = IP_CT_NEW
        v = _l4_packet(cn, ct, ctinfo, pkt, l3)
        if v == NF_REPEAT:
            continue
        if v <= 0:
            cn.stats["invalid"] += 1
            if v == NF_DROP:
                cn.stats["drop"] += 1
                return NF_DROP
            return NF_ACCEPT
        if ct.status & IPS_DYING and not ct.status & IPS_CONFIRMED:
            return NF_ACCEPT  # freed before confirmation (RST of an unconfirmed flow)
        nf_ct_set(pkt, ct, ctinfo)
        _account(cn, ct, ctinfo, pkt)
        if ctinfo == IP_CT_ESTABLISHED_REPLY and not ct.status & IPS_SEEN_REPLY:
            ct.status |= IPS_SEEN_REPLY
            ct.ev_pending = True  # IPCT_REPLY
        if ct.ev_pending and ct.status & IPS_CONFIRMED:
            ct.ev_pending = False
            cn.event(EV_UPDATE, ct)
        return NF_ACCEPT
    cn.stats["invalid"] += 1
    return NF_ACCEPT


def _account(cn: CtNet, ct: NfConn, ctinfo: int, pkt: "Packet") -> None:
    if ct.acct is not None:
        a = ct.acct[ctinfo2dir(ctinfo)]
        a[0] += 1
        nh = pkt.network_header if pkt.network_header >= 0 else pkt.data
        a[1] += pkt.tail - nh


def _init_expected(cn: CtNet, ct: NfConn, tmpl: NfConn | None) -> None:
    """The expectation part of ``init_conntrack``: a connection some helper expected
    becomes IPS_EXPECTED with its master (RELATED), inherits the master's mark and
    secmark and the expectation's helper, and NAT's ``expectfn`` runs on it; otherwise
    a template's helper (``-j CT --helper``) is assigned."""
    exp = None
    if cn.expect.count:
        from netstack.netfilter.conntrack_expect import nf_ct_find_expectation
        exp = nf_ct_find_expectation(cn, ct.tuplehash[0], ct.zone,
                                     tmpl is None or bool(tmpl.status & IPS_CONFIRMED))
    if exp is None:
        if tmpl is not None and tmpl.help is not None:
            from netstack.netfilter.conntrack_helper import nf_ct_try_assign_helper
            nf_ct_try_assign_helper(ct, tmpl)
        return
    from netstack.netfilter.conntrack_helper import nf_ct_helper_ext_add
    ct.status |= IPS_EXPECTED
    ct.master = exp.master
    if exp.helper is not None:
        nf_ct_helper_ext_add(ct, exp.helper)
    ct.mark = exp.master.mark
    ct.secmark = exp.master.secmark
    cn.stats["expect_new"] += 1
    if exp.expectfn is not None:
        exp.expectfn(ct, exp)


def _init_conntrack(cn: CtNet, t: CtTuple, zone: CtZone, pkt: "Packet",
                    tmpl: NfConn | None = None) -> NfConn | None:
    """``init_conntrack``: a new unconfirmed entry, or None (no inverse tuple, or the
    table is full and nothing could be early-dropped)."""
    repl = invert(t)
    if repl is None:
        return None
    mx = cn.sysctl("nf_conntrack_max")
    if mx and cn.count >= mx and not cn.early_drop():
        return None
    ct = NfConn([t, repl], zone=zone, net=cn.net)
    ct.id = cn.next_id
    cn.next_id += 1
    ct.start = cn.now
    if cn.sysctl("nf_conntrack_acct"):
        ct.acct = [[0, 0], [0, 0]]
    return ct


def nf_conntrack_confirm(net: "Net", pkt: "Packet") -> int:
    """``nf_conntrack_confirm`` / ``__nf_conntrack_confirm``: insert an unconfirmed entry.

    A clash (another entry took the tuple meanwhile) drops the packet, except that a UDP
    entry identical in both directions is merged (``nf_ct_resolve_clash``)."""
    v = pkt.ct
    if v is None or v[0] is None:
        return NF_ACCEPT
    ct, ctinfo = v
    if ct.status & (IPS_CONFIRMED | IPS_TEMPLATE) or ctinfo2dir(ctinfo) != IP_CT_DIR_ORIGINAL:
        return NF_ACCEPT
    cn = ct_net(net)
    if ct.status & IPS_DYING:
        return NF_ACCEPT
    o, r = ct.tuplehash
    for d, t in ((0, o), (1, r)):
        hit = cn.table.get((t, ct.zone.id_for(d)))
        if hit is not None:
            other = hit[0]
            if other.timeout <= cn.now and other.flow is None:
                cn.delete(other)
                continue
            if (ct.protonum in (IPPROTO_UDP, IPPROTO_UDPLITE)
                    and other.tuplehash == ct.tuplehash and other.zone == ct.zone):
                nf_ct_set(pkt, other, ctinfo)
                cn.stats["clash_resolve"] += 1
                return NF_ACCEPT
            cn.stats["insert_failed"] += 1
            cn.stats["drop"] += 1
            return NF_DROP
    ct.timeout = cn.now + ct.timeout
    ct.status |= IPS_CONFIRMED
    ct.ev_pending = False
    cn.insert(ct)
    cn.stats["insert"] += 1
    cn.event(EV_NEW, ct)
    return NF_ACCEPT


# ---- hooks and lazy enable (nf_ct_netns_get) --------------------------------------------
def _hook_in(priv: Any, pkt: "Packet", state: NfHookState) -> int:
    v = nf_conntrack_in(state.net, state.pf, state.hook, pkt)
    if pkt.trace is not None:
        _trace_ct(pkt, state, v)
    return v


def _trace_ct(pkt: "Packet", state: NfHookState, verdict: int) -> None:
    """Trace event of the conntrack hook: what ``nf_conntrack_in`` attached — ct state
    and direction as nft's ``ct state``/``ct direction`` read them, zone, the connection
    id and its original tuple — or ``invalid`` when it attached nothing."""
    from netstack.core.trace import CTINFO_NAMES, fmt_tuple
    v = pkt.ct
    if v is None or (v[0] is None and v[1] != IP_CT_UNTRACKED):
        attrs: dict[str, Any] = {"state": "invalid"}
        info = "ct state invalid"
    elif v[0] is None:
        attrs = {"state": "untracked"}
        info = "ct state untracked"
    else:
        ct, ctinfo = v
        st, d = CTINFO_NAMES.get(ctinfo, (str(ctinfo), ""))
        zone = ct.zone.id
        orig = fmt_tuple(ct.tuplehash[0])
        attrs = {"state": st, "direction": d, "zone": zone, "id": ct.id,
                 "confirmed": ct.confirmed(), "orig": orig}
        info = f"ct state {st} direction {d} zone {zone} id {ct.id} [{orig}]"
    pkt.trace.event(pkt, "nf_conntrack_in", verdict="drop" if verdict == NF_DROP else "",
                    info=f"hook={state.hook} {info}", attrs=dict(attrs, hook=state.hook))


def _hook_confirm(priv: Any, pkt: "Packet", state: NfHookState) -> int:
    """``nf_confirm`` (nf_conntrack_proto.c): the helper, then the sequence adjustment of
    a connection whose payload a NAT helper resized (decided before the helper ran, so
    the mangled segment itself is not shifted), run before the entry is confirmed; not for
    RELATED_REPLY (helpers never see ICMP errors) nor loopback packets (seqadj)."""
    v = pkt.ct
    if v is not None and v[0] is not None:
        ct, ctinfo = v
        seqadj_needed = bool(ct.status & IPS_SEQ_ADJUST) and not _is_loopback(pkt)
        if (ct.help is not None or seqadj_needed) and ctinfo != IP_CT_RELATED_REPLY:
            nh = pkt.network_header if pkt.network_header >= 0 else pkt.data
            l3 = parse_l3(pkt.buf, nh, pkt.tail, ct.l3num)
            if l3 is not None and not l3.fragment:
                if ct.help is not None:
                    from netstack.netfilter.conntrack_helper import nf_ct_helper_run
                    verdict = nf_ct_helper_run(pkt, ct, ctinfo, l3.l4off)
                    if verdict != NF_ACCEPT:
                        ct_net(state.net).stats["drop"] += 1
                        return verdict
                if seqadj_needed:
                    from netstack.netfilter.seqadj import nf_ct_seq_adjust
                    if not nf_ct_seq_adjust(pkt, ct, ctinfo, l3.l4off):
                        ct_net(state.net).stats["drop"] += 1
                        return NF_DROP
    return nf_conntrack_confirm(state.net, pkt)


def _is_loopback(pkt: "Packet") -> bool:
    """``nf_is_loopback_packet``."""
    dev = pkt.dev
    return dev is not None and bool(getattr(dev, "flags", 0) & 0x8)  # IFF_LOOPBACK


def nf_ct_netns_get(net: "Net", pf: int) -> None:
    """``nf_ct_netns_get``: enable conntrack for ``pf`` (inet = both) in ``net``; counted."""
    st = nf_net(net)
    cn = ct_net(net)
    for fam in ((NFPROTO_IPV4, NFPROTO_IPV6) if pf == NFPROTO_INET else (pf,)):
        n = st.ct_users.get(fam, 0)
        st.ct_users[fam] = n + 1
        if n:
            continue
        if fam == NFPROTO_IPV4:
            # nf_ct_netns_do_get: defragment before tracking (nf_defrag_ipv4.c)
            from netstack.netfilter.defrag import nf_defrag_ipv4_enable
            nf_defrag_ipv4_enable(net)
        else:
            from netstack.netfilter.defrag6 import nf_defrag_ipv6_enable
            nf_defrag_ipv6_enable(net)
        ops = [NfHookOps(_hook_in, fam, NF_INET_PRE_ROUTING, NF_IP_PRI_CONNTRACK,
                         name="ipv4_conntrack_in"),
               NfHookOps(_hook_in, fam, NF_INET_LOCAL_OUT, NF_IP_PRI_CONNTRACK,
                         name="ipv4_conntrack_local"),
               NfHookOps(_hook_confirm, fam, NF_INET_POST_ROUTING, NF_IP_PRI_CONNTRACK_CONFIRM,
                         name="ipv4_confirm"),
               NfHookOps(_hook_confirm, fam, NF_INET_LOCAL_IN, NF_IP_PRI_CONNTRACK_CONFIRM,
                         name="ipv4_confirm")]
        for o in ops:
            nf_register_net_hook(net, o)
        cn.hook_ops[fam] = ops


def nf_ct_netns_put(net: "Net", pf: int) -> None:
    """``nf_ct_netns_put``: drop one user; the hooks go with the last one (entries stay)."""
    st = nf_net(net)
    cn = ct_net(net)
    for fam in ((NFPROTO_IPV4, NFPROTO_IPV6) if pf == NFPROTO_INET else (pf,)):
        n = st.ct_users.get(fam, 0)
        if n <= 0:
            continue
        st.ct_users[fam] = n - 1
        if n == 1:
            for o in cn.hook_ops.pop(fam, []):
                nf_unregister_net_hook(net, o)
            if fam == NFPROTO_IPV4:
                from netstack.netfilter.defrag import nf_defrag_ipv4_disable
                nf_defrag_ipv4_disable(net)
            else:
                from netstack.netfilter.defrag6 import nf_defrag_ipv6_disable
                nf_defrag_ipv6_disable(net)


def nf_ct_enabled(net: "Net", pf: int) -> bool:
    st = net.__dict__.get("nf")
    return bool(st and st.ct_users.get(pf))


# ---- accessors for the nft VM (nft_ct.c NFT_CT_*) -------------------------------------
def nf_ct_expiration_ms(ct: NfConn, now: int) -> int:
    """``ct expiration`` in ms (nft_ct_get_eval NFT_CT_EXPIRATION: jiffies_to_msecs)."""
    if not ct.status & IPS_CONFIRMED:
        return ct.timeout // 1_000_000
    return max(0, (ct.timeout - now) // 1_000_000)


def nf_ct_tuple_field(ct: NfConn, direction: int, name: str) -> Any:
    """``ct original|reply saddr|daddr|proto-src|proto-dst|l3proto|protocol``."""
    t = ct.tuplehash[direction]
    if name == "saddr":
        return t.src
    if name == "daddr":
        return t.dst
    if name == "proto-src":
        return t.sport
    if name == "proto-dst":
        return t.dport
    if name == "l3proto":
        return t.l3num
    if name == "protocol":
        return t.protonum
    raise KeyError(name)


def nf_ct_iterate(net: "Net") -> list[NfConn]:
    """Live entries in insertion order, after reaping expired ones (what a dump sees)."""
    cn = ct_net_if_enabled(net)
    if cn is None:
        return []
    cn.gc()
    return list(cn.conns)


def nf_ct_flush(net: "Net", l3num: int | None = None) -> int:
    """``conntrack -F``: delete every entry (of one family); returns how many."""
    cn = ct_net_if_enabled(net)
    if cn is None:
        return 0
    victims = [c for c in cn.conns if l3num is None or c.l3num == l3num]
    for c in victims:
        cn.delete(c)
    return len(victims)
