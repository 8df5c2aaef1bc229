"""MLD message formats, host side (net/ipv6/mcast.c; RFC 2710 MLDv1, RFC 3810 MLDv2).

This module holds the wire part of MLD: the frames a Linux host sends (MLDv2 reports,
MLDv1 reports and dones) built byte for byte as ``mld_newpack``/``igmp6_send`` build
them, and the query parser that ``igmp6_event_query``/``mld_process_v1``/
``mld_process_v2`` apply to what they receive.  Every builder here was compared with
frames captured from Linux 6.18 (tests/ipv6/test_mld_codec.py).

What a kernel MLD frame looks like (``ip6_mc_hdr`` + ``mld_newpack``/``igmp6_send``):

* IPv6 header with traffic class 0, flow label 0, hop limit 1, next header 0;
* a hop-by-hop header ``3a 00 05 02 00 00 01 00``: next header ICMPv6, a Router Alert
  option with value 0 (MLD, RFC 2711) and a 2-byte PadN (``ra`` in ``mld_newpack``);
* the ICMPv6 message, its checksum over the pseudo-header with next header 58;
* source: the device's first non-tentative link-local address (``ipv6_get_lladdr(dev,
  …, IFA_F_TENTATIVE)``), else ``::`` — so reports sent while DAD runs come from ``::``;
* destination ``ff02::16`` for an MLDv2 report, the group for an MLDv1 report,
  ``ff02::2`` for a done; Ethernet destination 33:33 + the low 32 bits (``ipv6_eth_mc_map``).

The second half is the host state machine of mcast.c for any-source (EXCLUDE, {})
memberships — the only kind netstack creates (addrconf's all-nodes, solicited-node and
all-routers groups):

* :func:`igmp6_group_added` / :func:`igmp6_group_dropped` (called by addrconf's
  ``mc_inc``/``mc_dec``): MLDv2 CHANGE_TO_EXCLUDE / CHANGE_TO_INCLUDE records through the
  interface-change work (``mld_ifc_event``: first after 2 jiffies, repeated ``mc_qrv``
  times after a random delay below ``mldv2_unsolicited_report_interval``); in MLDv1 mode a
  report at once and one more after a random delay below
  ``mldv1_unsolicited_report_interval``, a done to ff02::2 if we sent the last report;
* :func:`ipv6_mc_up` (``ipv6_find_idev`` on an up device — at link configuration and at
  every ``ip -6 addr add``): every reportable group gets ``mc_qrv`` change records again;
  :func:`ipv6_mc_down` stops everything;
* :func:`ipv6_mc_dad_complete` (the first usable link-local address): the initial report
  with every group, ``mc_qrv`` times;
* queries (:func:`igmp6_event_query`) and other hosts' reports
  (:func:`igmp6_event_report`), with the MLDv1-querier-present timer and
  ``net.ipv6.conf.{all,DEV}.force_mld_version``.

Random delays are ``world.rng.getrandbits(32) % n`` jiffies (HZ 1000), so runs repeat.
Frames go straight to the neighbour layer as ndisc's do (``ndisc_send_skb``); the kernel
passes them through NF_INET_LOCAL_OUT/POST_ROUTING first (docs/multicast.md, known
differences).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netstack.packet.checksum import csum_ipv6_magic, csum_partial
from netstack.packet.errors import ParseError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

ICMPV6_MGM_QUERY = 130
ICMPV6_MGM_REPORT = 131
ICMPV6_MGM_REDUCTION = 132
ICMPV6_MLD2_REPORT = 143

#: include/uapi/linux/icmpv6.h / include/net/mld.h record types (RFC 3810 §5.2.12)
MLD2_MODE_IS_INCLUDE = 1
MLD2_MODE_IS_EXCLUDE = 2
MLD2_CHANGE_TO_INCLUDE = 3
MLD2_CHANGE_TO_EXCLUDE = 4
MLD2_ALLOW_NEW_SOURCES = 5
MLD2_BLOCK_OLD_SOURCES = 6

IPPROTO_HOPOPTS = 0
IPPROTO_ICMPV6 = 58

ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
ALL_ROUTERS = bytes.fromhex("ff020000000000000000000000000002")
MLD2_ALL_MCR = bytes.fromhex("ff020000000000000000000000000016")
UNSPECIFIED = bytes(16)

#: ``mld_newpack``'s ``ra[8]``: nexthdr ICMPv6, hdrlen 0, IPV6_TLV_ROUTERALERT len 2
#: value IPV6_OPT_ROUTERALERT_MLD (0), IPV6_TLV_PADN len 0.
HBH_ROUTER_ALERT = bytes((IPPROTO_ICMPV6, 0, 5, 2, 0, 0, 1, 0))

MLD_V1_QUERY_LEN = 24   # struct mld_msg
MLD_V2_QUERY_LEN = 28   # struct mld2_query without sources
_GREC_LEN = 20          # struct mld2_grec without sources


def ipv6_eth_mc_map(group: bytes) -> bytes:
    """``ipv6_eth_mc_map``: 33:33 followed by the group's low 32 bits (RFC 2464 §7)."""
    return b"\x33\x33" + bytes(group[12:16])


def mld_scope_reportable(group: bytes) -> bool:
    """Groups MLD never reports: ``igmp6_group_added``/``mld_send_report`` skip
    ``ipv6_addr_is_ll_all_nodes`` (ff02::1) and anything below link-local scope
    (``IPV6_ADDR_MC_SCOPE(addr) < IPV6_ADDR_SCOPE_LINKLOCAL``, e.g. ff01::1)."""
    if len(group) != 16 or group[0] != 0xFF:
        return False
    if group == ALL_NODES:
        return False
    return (group[1] & 0x0F) >= 2


def _icmp6_csum(saddr: bytes, daddr: bytes, msg: bytes | bytearray) -> int:
    return csum_ipv6_magic(saddr, daddr, len(msg), IPPROTO_ICMPV6, csum_partial(bytes(msg)))


def _with_csum(saddr: bytes, daddr: bytes, msg: bytearray) -> bytes:
    msg[2] = msg[3] = 0
    c = _icmp6_csum(saddr, daddr, msg)
    msg[2], msg[3] = c >> 8, c & 0xFF
    return bytes(msg)


@dataclass(frozen=True)
class Mld2Record:
    """One ``struct mld2_grec`` (RFC 3810 §5.2.4); auxiliary data is never sent."""

    rtype: int
    group: bytes
    sources: tuple[bytes, ...] = ()

    def build(self) -> bytes:
        return (bytes((self.rtype, 0)) + len(self.sources).to_bytes(2, "big") + self.group
                + b"".join(self.sources))


def mld2_report(saddr: bytes, records: list[Mld2Record]) -> bytes:
    """The ICMPv6 part of an MLDv2 report to ``ff02::16`` (``mld_newpack`` +
    ``mld_sendpack``: type 143, reserved 0, number of records, the records)."""
    body = bytearray(b"\x8f\x00\x00\x00\x00\x00" + len(records).to_bytes(2, "big")
                     + b"".join(r.build() for r in records))
    return _with_csum(saddr, MLD2_ALL_MCR, body)


def mld1_message(saddr: bytes, type_: int, group: bytes) -> tuple[bytes, bytes]:
    """``igmp6_send``: an MLDv1 report (131, to the group) or done (132, to ff02::2);
    max response delay and reserved are 0.  Returns (destination, ICMPv6 message)."""
    if type_ not in (ICMPV6_MGM_REPORT, ICMPV6_MGM_REDUCTION):
        raise ValueError(f"not an MLDv1 host message type: {type_}")
    daddr = ALL_ROUTERS if type_ == ICMPV6_MGM_REDUCTION else group
    body = bytearray(bytes((type_, 0, 0, 0, 0, 0, 0, 0)) + group)
    return daddr, _with_csum(saddr, daddr, body)


def mld_ipv6_frame(saddr: bytes, daddr: bytes, icmp: bytes) -> bytes:
    """``ip6_mc_hdr`` + the hop-by-hop Router Alert header + ``icmp``: the IPv6 packet
    exactly as mcast.c hands it to ``NF_INET_LOCAL_OUT`` (no Ethernet header)."""
    plen = len(HBH_ROUTER_ALERT) + len(icmp)
    hdr = (b"\x60\x00\x00\x00" + plen.to_bytes(2, "big") + bytes((IPPROTO_HOPOPTS, 1))
           + saddr + daddr)
    return hdr + HBH_ROUTER_ALERT + icmp


def mld_eth_frame(src_mac: bytes, saddr: bytes, daddr: bytes, icmp: bytes) -> bytes:
    """The Ethernet frame a veth/Ethernet device puts on the wire for an MLD packet."""
    return ipv6_eth_mc_map(daddr) + src_mac + b"\x86\xdd" + mld_ipv6_frame(saddr, daddr, icmp)


def mldv2_mrc(code: int) -> int:
    """``mldv2_mrc``: Maximum Response Code → milliseconds (RFC 3810 §5.1.3)."""
    if code < 0x8000:
        return code
    return ((code & 0x0FFF) | 0x1000) << (((code >> 12) & 7) + 3)


def mldv2_qqi(code: int) -> int:
    """``mldv2_qqi``: QQIC → seconds (RFC 3810 §5.1.9)."""
    if code < 0x80:
        return code
    return ((code & 0x0F) | 0x10) << (((code >> 4) & 7) + 3)


@dataclass(frozen=True)
class MldQuery:
    """A parsed query: version 1 (24 bytes) or 2 (at least 28 bytes)."""

    version: int
    group: bytes
    max_resp_ms: int
    s_flag: bool = False
    qrv: int = 0
    qqi: int = 0
    sources: tuple[bytes, ...] = field(default=())

    @property
    def general(self) -> bool:
        return self.group == UNSPECIFIED


def parse_mld_query(msg: bytes | bytearray | memoryview) -> MldQuery:
    """``igmp6_event_query`` → ``__mld_query_work``: the query's version comes from its
    length (24: MLDv1, ≥ 28: MLDv2, anything else is dropped); the group must be ``::``
    or multicast; an MLDv2 query must carry all its sources.  Malformed queries raise
    :class:`ParseError`: ``PKT_TOO_SMALL`` below 24 bytes, ``HDR_TRUNC`` for missing
    sources, ``INVALID_PROTO`` for the rest (the kernel frees those with ``kfree_skb``,
    i.e. ``NOT_SPECIFIED``, which the codec reason set does not include)."""
    b = bytes(msg)
    if len(b) < MLD_V1_QUERY_LEN:
        raise ParseError("PKT_TOO_SMALL", "MLD query shorter than 24 bytes")
    if b[0] != ICMPV6_MGM_QUERY:
        raise ParseError("UNHANDLED_PROTO", f"ICMPv6 type {b[0]} is not an MLD query")
    group = b[8:24]
    if group != UNSPECIFIED and group[0] != 0xFF:
        raise ParseError("INVALID_PROTO", "MLD query group is not multicast")
    if len(b) == MLD_V1_QUERY_LEN:
        return MldQuery(1, group, int.from_bytes(b[4:6], "big"))
    if len(b) < MLD_V2_QUERY_LEN:
        raise ParseError("INVALID_PROTO", "MLD query length between v1 and v2")
    nsrcs = int.from_bytes(b[26:28], "big")
    if len(b) < MLD_V2_QUERY_LEN + 16 * nsrcs:
        raise ParseError("HDR_TRUNC", "MLDv2 query truncated in its sources")
    if nsrcs and group == UNSPECIFIED:
        raise ParseError("INVALID_PROTO", "MLDv2 general query with sources")
    srcs = tuple(b[28 + 16 * i:44 + 16 * i] for i in range(nsrcs))
    return MldQuery(2, group, mldv2_mrc(int.from_bytes(b[4:6], "big")),
                    s_flag=bool(b[24] & 0x08), qrv=b[24] & 0x07, qqi=mldv2_qqi(b[25]),
                    sources=srcs)


def build_mld_query(q: MldQuery) -> bytes:
    """A query as a router sends it (for tests and the kernel differential); the MRC /
    QQIC must already be encodable as given (values < 0x8000 / < 0x80 are literal)."""
    if q.version == 1:
        return (bytes((ICMPV6_MGM_QUERY, 0, 0, 0)) + q.max_resp_ms.to_bytes(2, "big")
                + b"\x00\x00" + q.group)
    if q.max_resp_ms >= 0x8000 or q.qqi >= 0x80 or not 0 <= q.qrv <= 7:
        raise ValueError("MRC/QQIC exponential forms are not encoded")
    return (bytes((ICMPV6_MGM_QUERY, 0, 0, 0)) + q.max_resp_ms.to_bytes(2, "big")
            + b"\x00\x00" + q.group + bytes(((0x08 if q.s_flag else 0) | q.qrv, q.qqi))
            + len(q.sources).to_bytes(2, "big") + b"".join(q.sources))


def with_query_checksum(saddr: bytes, daddr: bytes, msg: bytes) -> bytes:
    """Fill in the ICMPv6 checksum of a query built by :func:`build_mld_query`."""
    return _with_csum(saddr, daddr, bytearray(msg))


# ======================================================================= state machine
HZ = 1000
NS_PER_JIFFY = 1_000_000_000 // HZ
MLD_QRV_DEFAULT = 2
MLD_QI_DEFAULT = 125 * HZ
MLD_QRI_DEFAULT = 10 * HZ
MLDV1_MRD_MAX_COMPAT = (1 << 15) - 1
IPV6_MIN_MTU = 1280
#: IPv6 header + hop-by-hop header + mld2_report header (``mld_newpack``)
_V2_HDR = 40 + 8 + 8
CONF = "net.ipv6.conf"


class Mca:
    """``struct ifmcaddr6`` for an any-source membership (the flags that matter)."""

    def __init__(self, md: "MldDev", group: bytes) -> None:
        self.md = md
        self.addr = group
        self.noreport = not mld_scope_reportable(group)     # MAF_NOREPORT
        self.timer = md.clock.timer(mld_mca_work, self)      # mca_work
        self.last_reporter = False                          # MAF_LAST_REPORTER
        self.crcount = 0


class MldDev:
    """The MLD part of an ``inet6_dev`` (``mc_*`` fields)."""

    def __init__(self, idev: Any) -> None:
        dev = idev.dev
        self.idev = idev
        self.dev = dev
        self.net: "Net" = dev.net
        self.clock = self.net.world.clock
        self.mcas: dict[bytes, Mca] = {}          # join order; the kernel list is reversed
        self.tomb: list[tuple[bytes, int]] = []   # (group, crcount), newest first
        self.qrv = MLD_QRV_DEFAULT
        self.qi = MLD_QI_DEFAULT
        self.qri = MLD_QRI_DEFAULT
        self.v1_seen = 0
        self.maxdelay = 0
        self.ifc_count = 0
        self.dad_count = 0
        self.gq_running = False
        self.ifc_timer = self.clock.timer(mld_ifc_work, self)
        self.dad_timer = self.clock.timer(mld_dad_work, self)
        self.gq_timer = self.clock.timer(mld_gq_work, self)

    def jiffies(self) -> int:
        return self.clock.now // NS_PER_JIFFY

    def rand_below(self, n: int) -> int:
        """``get_random_u32_below(n)`` from the world's seeded RNG."""
        return self.net.world.rng.getrandbits(32) % n if n > 0 else 0

    def mc_list(self) -> list[Mca]:
        """``idev->mc_list``: newest first."""
        return list(reversed(self.mcas.values()))

    def force_version(self) -> int:
        """``mld_force_mld_version``: ``all`` wins when non-zero."""
        v = self.net.sysctl.values
        a = int(v.get(f"{CONF}.all.force_mld_version", 0))
        return a if a else int(v.get(f"{CONF}.{self.dev.name}.force_mld_version", 0))

    def v1_mode(self) -> bool:
        """``mld_in_v1_mode``."""
        f = self.force_version()
        if f == 2:
            return False
        if f == 1:
            return True
        return bool(self.v1_seen) and self.jiffies() < self.v1_seen

    def unsolicited_report_interval(self) -> int:
        """``unsolicited_report_interval`` in jiffies (at least 1)."""
        name = "mldv1_unsolicited_report_interval" if self.v1_mode() \
            else "mldv2_unsolicited_report_interval"
        v = self.net.sysctl.values
        ms = int(v.get(f"{CONF}.{self.dev.name}.{name}",
                       10000 if "v1" in name else 1000))
        return max(1, ms * HZ // 1000)

    def reset(self) -> None:
        """``ipv6_mc_reset``."""
        self.qrv = MLD_QRV_DEFAULT
        self.qi = MLD_QI_DEFAULT
        self.qri = MLD_QRI_DEFAULT
        self.v1_seen = 0
        self.maxdelay = self.unsolicited_report_interval()


def mld_dev(idev: Any, create: bool = True) -> MldDev | None:
    """The MLD state of an inet6_dev (``ipv6_mc_init_dev``), created on first use."""
    if idev is None:
        return None
    md = idev.__dict__.get("mld")
    if md is None and create and idev.dev.net is not None:
        md = MldDev(idev)
        idev.__dict__["mld"] = md
    return md


def _alive(md: MldDev) -> bool:
    idev = md.idev
    return not idev.dead and md.dev.ip6_ptr is idev and idev.__dict__.get("mld") is md


# ------------------------------------------------------------------- transmit
def _saddr(md: MldDev) -> bytes:
    """``ipv6_get_lladdr(dev, &addr_buf, IFA_F_TENTATIVE)`` or ``::``."""
    from netstack.ipv6.addrconf import IFA_F_TENTATIVE, ipv6_get_lladdr
    return ipv6_get_lladdr(md.dev, IFA_F_TENTATIVE) or UNSPECIFIED


def _send(md: MldDev, saddr: bytes, daddr: bytes, icmp: bytes) -> None:
    """``mld_sendpack``/``igmp6_send``: hand the packet to the device's neighbour layer
    (a down device sends nothing, as ``dst_output`` would drop it)."""
    from netstack.core.neighbour import neigh_output
    dev = md.dev
    net = md.net
    if not _alive(md) or not dev.is_up or net.ipv6.nd_tbl is None:
        return
    pkt = net.world.new_packet(mld_ipv6_frame(saddr, daddr, icmp))
    pkt.protocol = 0x86DD
    pkt.dev = dev
    pkt.network_header = pkt.data
    pkt.priority = 7  # TC_PRIO_CONTROL (igmp_sk)
    net.ipv6.mib["OutMsgs"] += 1
    net.ipv6.mib[f"OutType{icmp[0]}"] += 1
    if pkt.trace is not None:
        pkt.trace.event(pkt, "mld_sendpack", info=f"type={icmp[0]}")
    neigh_output(net.ipv6.nd_tbl, dev, daddr, [pkt])


def igmp6_send(md: MldDev, group: bytes, type_: int) -> None:
    """``igmp6_send``: an MLDv1 report or done."""
    saddr = _saddr(md)
    daddr, icmp = mld1_message(saddr, type_, group)
    _send(md, saddr, daddr, icmp)


class _Pack:
    """MLDv2 records being collected (``mld_newpack`` … ``mld_sendpack``)."""

    def __init__(self, md: MldDev) -> None:
        self.md = md
        self.records: list[Mld2Record] = []

    def add(self, rec: Mld2Record) -> None:
        """``add_grec``: a full packet (``AVAILABLE`` < one record) goes out first."""
        mtu = self.md.dev.mtu
        if mtu < IPV6_MIN_MTU:
            return
        if self.records and mtu - _V2_HDR - 20 * len(self.records) < _GREC_LEN:
            self.flush()
        self.records.append(rec)

    def flush(self) -> None:
        if self.records:
            saddr = _saddr(self.md)
            _send(self.md, saddr, MLD2_ALL_MCR, mld2_report(saddr, self.records))
        self.records = []


def mld_send_report(md: MldDev, pmc: Mca | None) -> None:
    """``mld_send_report``: current-state MODE_IS_EXCLUDE records."""
    pack = _Pack(md)
    for m in ([pmc] if pmc is not None else md.mc_list()):
        if m.noreport:
            continue
        pack.add(Mld2Record(MLD2_MODE_IS_EXCLUDE, m.addr))
    pack.flush()


def mld_send_cr(md: MldDev) -> None:
    """``mld_send_cr``: deleted groups' CHANGE_TO_INCLUDE first, then the joined groups
    still owing CHANGE_TO_EXCLUDE (ALLOW/BLOCK records need sources: none here)."""
    pack = _Pack(md)
    keep: list[tuple[bytes, int]] = []
    for group, cr in md.tomb:
        if cr:
            if mld_scope_reportable(group):
                pack.add(Mld2Record(MLD2_CHANGE_TO_INCLUDE, group))
            cr -= 1
        if cr:
            keep.append((group, cr))
    md.tomb = keep
    for m in md.mc_list():
        if m.crcount:
            if not m.noreport:
                pack.add(Mld2Record(MLD2_CHANGE_TO_EXCLUDE, m.addr))
            m.crcount -= 1
    pack.flush()


def mld_send_initial_cr(md: MldDev) -> None:
    """``mld_send_initial_cr``: every reportable group, CHANGE_TO_EXCLUDE, once."""
    if md.v1_mode():
        return
    pack = _Pack(md)
    for m in md.mc_list():
        if not m.noreport:
            pack.add(Mld2Record(MLD2_CHANGE_TO_EXCLUDE, m.addr))
    pack.flush()


# --------------------------------------------------------------------- works
def _start_in(timer: Any, md: MldDev, jiffies: int) -> None:
    timer.mod((md.jiffies() + jiffies) * NS_PER_JIFFY)


def mld_ifc_start_work(md: MldDev, delay: int) -> None:
    """``mld_ifc_start_work``: random below ``delay``, plus 2 jiffies."""
    _start_in(md.ifc_timer, md, md.rand_below(delay) + 2)


def mld_ifc_event(md: MldDev) -> None:
    """``mld_ifc_event``."""
    if md.v1_mode():
        return
    md.ifc_count = md.qrv
    mld_ifc_start_work(md, 1)


def mld_ifc_work(md: MldDev) -> None:
    """``mld_ifc_work``."""
    if not _alive(md):
        return
    mld_send_cr(md)
    if md.ifc_count:
        md.ifc_count -= 1
        if md.ifc_count:
            mld_ifc_start_work(md, md.unsolicited_report_interval())


def mld_dad_work(md: MldDev) -> None:
    """``mld_dad_work``."""
    if not _alive(md):
        return
    mld_send_initial_cr(md)
    if md.dad_count:
        md.dad_count -= 1
        if md.dad_count:
            _start_in(md.dad_timer, md, md.rand_below(md.unsolicited_report_interval()) + 2)


def mld_gq_work(md: MldDev) -> None:
    """``mld_gq_work``: the answer to an MLDv2 general query."""
    md.gq_running = False
    if _alive(md):
        mld_send_report(md, None)


def mld_mca_work(m: Mca) -> None:
    """``mld_mca_work``: a per-group report (v1 unsolicited repeat or query answer)."""
    md = m.md
    if not _alive(md):
        return
    if md.v1_mode():
        igmp6_send(md, m.addr, ICMPV6_MGM_REPORT)
    else:
        mld_send_report(md, m)
    m.last_reporter = True


def ipv6_mc_dad_complete(idev: Any) -> None:
    """``ipv6_mc_dad_complete`` (``addrconf_dad_completed`` for the first usable
    link-local address): the initial report now, ``mc_qrv`` - 1 more."""
    md = mld_dev(idev)
    if md is None:
        return
    md.dad_count = md.qrv
    if md.dad_count:
        mld_send_initial_cr(md)
        md.dad_count -= 1
        if md.dad_count:
            _start_in(md.dad_timer, md, md.rand_below(md.unsolicited_report_interval()) + 2)


# ---------------------------------------------------------------- group list
def igmp6_join_group(m: Mca) -> None:
    """``igmp6_join_group`` (MLDv1): a report now, another within the interval."""
    if m.noreport:
        return
    md = m.md
    igmp6_send(md, m.addr, ICMPV6_MGM_REPORT)
    delay = md.rand_below(md.unsolicited_report_interval())
    if m.timer.active:
        delay = max(0, m.timer.expires // NS_PER_JIFFY - md.jiffies())
    _start_in(m.timer, md, delay)
    m.last_reporter = True


def _del_delrec(md: MldDev, m: Mca) -> None:
    """``mld_del_delrec``: a rejoined group takes its pending change count back."""
    for i, (g, _cr) in enumerate(md.tomb):
        if g == m.addr:
            del md.tomb[i]
            m.crcount = md.qrv
            return


def _group_added(md: MldDev, m: Mca) -> None:
    """``igmp6_group_added`` (the link-layer entry is dev_addr_lists' fold)."""
    if m.noreport or not md.dev.is_up:
        return
    if md.v1_mode():
        igmp6_join_group(m)
        return
    m.crcount = md.qrv
    mld_ifc_event(md)


def igmp6_group_added(idev: Any, group: bytes) -> None:
    """A new membership of ``group`` (``__ipv6_dev_mc_inc`` → ``mca_alloc`` →
    ``mld_del_delrec`` → ``igmp6_group_added``)."""
    md = mld_dev(idev)
    if md is None:
        return
    m = Mca(md, group)
    md.mcas.pop(group, None)
    md.mcas[group] = m
    _del_delrec(md, m)
    _group_added(md, m)


def igmp6_group_dropped(idev: Any, group: bytes) -> None:
    """The last user left (``__ipv6_dev_mc_dec`` → ``igmp6_group_dropped`` →
    ``igmp6_leave_group``): MLDv1 done if we sent the last report, else a tomb with
    ``mc_qrv`` CHANGE_TO_INCLUDE records."""
    md = mld_dev(idev, create=False)
    if md is None:
        return
    m = md.mcas.pop(group, None)
    if m is None:
        return
    m.timer.cancel()
    if m.noreport or not md.dev.is_up or idev.dead:
        return
    if md.v1_mode():
        if m.last_reporter:
            igmp6_send(md, group, ICMPV6_MGM_REDUCTION)
        return
    md.tomb.insert(0, (group, md.qrv))
    mld_ifc_event(md)


def ipv6_mc_up(idev: Any) -> None:
    """``ipv6_mc_up``: reset the querier state and re-add every group (each reportable
    group owes ``mc_qrv`` change records again)."""
    md = mld_dev(idev)
    if md is None:
        return
    md.reset()
    for m in md.mc_list():
        _del_delrec(md, m)
        _group_added(md, m)


def ipv6_mc_down(idev: Any) -> None:
    """``ipv6_mc_down``: stop every work, forget the tombs."""
    md = mld_dev(idev, create=False)
    if md is None:
        return
    for m in md.mcas.values():
        m.timer.cancel()
    md.ifc_count = 0
    md.ifc_timer.cancel()
    md.gq_running = False
    md.gq_timer.cancel()
    md.dad_timer.cancel()
    md.tomb = []


# ------------------------------------------------------------------- receive
def _is_linklocal(a: bytes) -> bool:
    return a[0] == 0xFE and (a[1] & 0xC0) == 0x80


def _group_queried(md: MldDev, m: Mca, resptime: int) -> None:
    """``igmp6_group_queried``: keep a sooner pending timer, else random below
    ``resptime``."""
    if m.noreport:
        return
    delay = resptime
    if m.timer.active:
        delay = max(0, m.timer.expires // NS_PER_JIFFY - md.jiffies())
    if delay >= resptime:
        delay = md.rand_below(resptime)
    _start_in(m.timer, md, delay)


def _set_v1_mode(md: MldDev) -> None:
    """``mld_process_v1``'s side effects: MLDv1 querier present for
    ``qrv * qi + qri``; the v2 works and tombs are dropped."""
    md.v1_seen = md.jiffies() + md.qrv * md.qi + md.qri
    md.gq_running = False
    md.gq_timer.cancel()
    md.ifc_count = 0
    md.ifc_timer.cancel()
    md.tomb = []


def igmp6_event_query(pkt: "Packet", msg: bytes) -> str | None:
    """``igmp6_event_query`` + ``__mld_query_work``.  Returns a drop reason, or None
    when the query was processed."""
    o = pkt.network_header
    saddr = bytes(pkt.buf[o + 8:o + 24])
    if not _is_linklocal(saddr):
        return "NOT_SPECIFIED"        # RFC 3810 §6.2: not from a link-local source
    md = mld_dev(pkt.dev.ip6_ptr)
    if md is None:
        return "NOT_SPECIFIED"
    try:
        q = parse_mld_query(msg)
    except ParseError as e:
        return e.reason
    if q.version == 1:
        if md.force_version() == 2:
            return "NOT_SPECIFIED"    # v2-only mode ignores v1 queries
        max_delay = max(q.max_resp_ms * HZ // 1000, 1)
        _set_v1_mode(md)
    elif md.v1_mode():
        if md.force_version() == 2:
            return "NOT_SPECIFIED"
        mrd = min(int.from_bytes(msg[4:6], "big"), MLDV1_MRD_MAX_COMPAT)
        max_delay = max(mrd * HZ // 1000, 1)
        _set_v1_mode(md)
    else:
        max_delay = max(q.max_resp_ms * HZ // 1000, 1)
        if q.qrv:
            md.qrv = max(q.qrv, MLD_QRV_DEFAULT)
        md.qi = (q.qqi if msg[25] else MLD_QI_DEFAULT // HZ) * HZ
        md.qri = max_delay
        md.maxdelay = max_delay
        if q.general:
            tv = md.rand_below(md.maxdelay)
            md.gq_running = True
            _start_in(md.gq_timer, md, tv + 2)
            return None
    for m in md.mc_list():
        if q.general or m.addr == q.group:
            _group_queried(md, m, max_delay)
            if not q.general:
                break
    return None


def igmp6_event_report(pkt: "Packet", msg: bytes) -> str | None:
    """``igmp6_event_report``: another host's MLDv1 report stops our timer for the
    group (we are no longer the last reporter).  Returns a drop reason or None."""
    from netstack.packet.skb import PACKET_BROADCAST, PACKET_LOOPBACK, PACKET_MULTICAST
    if pkt.pkt_type == PACKET_LOOPBACK:
        return None
    if pkt.pkt_type not in (PACKET_MULTICAST, PACKET_BROADCAST):
        return None
    if len(msg) < MLD_V1_QUERY_LEN:
        return "PKT_TOO_SMALL"
    group = bytes(msg[8:24])
    if group[0] != 0xFF:
        return "NOT_SPECIFIED"
    o = pkt.network_header
    saddr = bytes(pkt.buf[o + 8:o + 24])
    if saddr != UNSPECIFIED and not _is_linklocal(saddr):
        return "NOT_SPECIFIED"
    md = mld_dev(pkt.dev.ip6_ptr, create=False)
    if md is None:
        return "NOT_SPECIFIED"
    m = md.mcas.get(group)
    if m is not None and m.timer.active:
        m.timer.cancel()
        m.last_reporter = False
    return None


def igmp6_event(pkt: "Packet", type_: int, msg: bytes) -> str | None:
    """``icmpv6_rcv``'s MLD cases: queries and v1 reports are processed; v2 reports and
    dones are for routers (a host frees them)."""
    if type_ == ICMPV6_MGM_QUERY:
        return igmp6_event_query(pkt, msg)
    if type_ == ICMPV6_MGM_REPORT:
        return igmp6_event_report(pkt, msg)
    return None


def proc_igmp6_text(net: "Net") -> str:
    """``/proc/net/igmp6`` (``igmp6_mc_seq_show``): ifindex, name, group, users, flags
    (``MAF_TIMER_RUNNING`` 1, ``MAF_LAST_REPORTER`` 2, ``MAF_LOADED`` 4 — every group of
    link-local scope or wider, whatever the device type —,
    ``MAF_NOREPORT`` 8), pending timer in clock ticks (USER_HZ 100)."""
    lines = []
    for dev in net.devices.values():
        idev = dev.ip6_ptr
        if idev is None:
            continue
        md = mld_dev(idev, create=False)
        for group in reversed(list(idev.mc)):
            m = md.mcas.get(group) if md is not None else None
            flags = 0
            left = 0
            noreport = not mld_scope_reportable(group)
            if m is not None and m.timer.active:
                flags |= 1
                left = max(0, m.timer.expires - net.world.clock.now) // 10_000_000
            if m is not None and m.last_reporter:
                flags |= 2
            if (group[1] & 0x0F) >= 2:
                flags |= 4
            if noreport:
                flags |= 8
            lines.append(f"{dev.ifindex:<4d} {dev.name:<15s} {group.hex()} "
                         f"{idev.mc[group]:5d} {flags:08X} {left}\n")
    return "".join(lines)
