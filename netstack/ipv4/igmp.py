"""IPv4 multicast group membership, host side (net/ipv4/igmp.c; RFC 1112, 2236, 3376).

What a host does:

* per device (``struct in_device``'s multicast part, :class:`IgmpDev`) a list of joined
  groups (``ip_mc_list``: ``users``, filter mode, timer, ``reporter``), newest first;
  all-hosts 224.0.0.1 is joined at NETDEV_UP (``ip_mc_up``) and never reported;
  each group puts its 01:00:5e MAC into the device's multicast list (``ip_mc_filter_add``
  → ``dev_mc_add``, netstack/core/dev_addr_lists.py);
* joins come from sockets (:func:`ip_mc_join_group`, ``IP_ADD_MEMBERSHIP``; at most
  ``net.ipv4.igmp_max_memberships`` per socket) and from ``ip addr add GROUP dev D
  autojoin`` (``ip_mc_autojoin_config``: the namespace's autojoin socket);
* unsolicited reports on the virtual clock: IGMPv3 state-change reports (CHANGE_TO_EXCLUDE
  on join, CHANGE_TO_INCLUDE on leave) repeated ``igmp_qrv`` times through the
  interface-change timer (``igmp_ifc_event``, first after 2 jiffies, then a random
  delay below ``igmpv3_unsolicited_report_interval``); in v1/v2 mode a report to the group
  per join, repeated with ``igmpv2_unsolicited_report_interval``, and (v2) a leave to
  224.0.0.2 when this host sent the last report;
* queries: v1/v2 queries set the querier-present timers (400 s) that put the device in
  v1/v2 mode (``IGMP_V1_SEEN``/``IGMP_V2_SEEN``, or ``force_igmp_version``); a v3 general
  query arms the general-query timer (one report with every group, random delay below
  Max Resp Time), group(-and-source) queries and v1/v2 queries the per-group timers
  (``igmp_mod_timer``); a report heard from another host stops the group's timer
  (v1/v2 suppression);
* every IGMP frame as igmp.c builds it: TOS 0xc0, DF, TTL 1, a Router Alert option, IP ID
  0, source = the route's source (v3: that address only if it is on the device, else
  0.0.0.0), destination 224.0.0.22 (v3), the group (v1/v2 report) or 224.0.0.2 (leave).

Random delays use the world's seeded RNG (``prandom_u32() % max``), so a run is
reproducible.  Source filters (``IP_ADD_SOURCE_MEMBERSHIP``, ``MCAST_MSFILTER``, INCLUDE
mode) are not modelled: they raise ``NotSupported``; group-and-source queries are
answered as the kernel answers them for (EXCLUDE, {}) groups.  Only Ethernet-type devices
get a link-layer filter entry (``arp_mc_map`` with dir 0 fails for others, e.g. lo).
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core.dev_addr_lists import dev_mc_add, dev_mc_del
from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.errors import KernelError, NotSupported
from netstack.packet.checksum import csum_fold, csum_partial
from netstack.packet.igmp import (CHANGE_TO_EXCLUDE, CHANGE_TO_INCLUDE,
                                  IGMP_HOST_LEAVE_MESSAGE, IGMP_HOST_MEMBERSHIP_QUERY,
                                  IGMP_HOST_MEMBERSHIP_REPORT, IGMPV2_HOST_MEMBERSHIP_REPORT,
                                  IGMPV3_HOST_MEMBERSHIP_REPORT, MODE_IS_EXCLUDE,
                                  MODE_IS_INCLUDE)
from netstack.packet.skb import PACKET_BROADCAST, PACKET_MULTICAST

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.core.world import World
    from netstack.packet.skb import Packet

IPPROTO_IGMP = 2
IGMP_ALL_HOSTS = 0xE0000001
IGMP_ALL_ROUTER = 0xE0000002
IGMPV3_ALL_MCR = 0xE0000016
MCAST_EXCLUDE = 0
MCAST_INCLUDE = 1

HZ = 1000
IGMP_V1_ROUTER_PRESENT_TIMEOUT = 400 * HZ
IGMP_V2_ROUTER_PRESENT_TIMEOUT = 400 * HZ
IGMP_QUERY_RESPONSE_INTERVAL = 10 * HZ
IGMP_INITIAL_REPORT_DELAY = 1
IGMP_TIMER_SCALE = 10
NS_PER_JIFFY = 1_000_000_000 // HZ
ARPHRD_ETHER = 1
IPV4_MIN_MTU = 68
TC_PRIO_CONTROL = 7
#: iphdr + Router Alert option + igmpv3_report header
_V3_HDR = 24 + 8
_GREC = 8

CONF = "net.ipv4.conf"


def ipv4_is_local_multicast(a: int) -> bool:
    """224.0.0.0/24."""
    return (a & 0xFFFFFF00) == 0xE0000000


def ipv4_is_multicast(a: int) -> bool:
    return (a & 0xF0000000) == 0xE0000000


def ip_eth_mc_map(a: int) -> bytes:
    """``ip_eth_mc_map``: 01:00:5e + the low 23 bits (RFC 1112 §6.4)."""
    return bytes((0x01, 0x00, 0x5E, (a >> 16) & 0x7F, (a >> 8) & 0xFF, a & 0xFF))


def igmpv3_mrc(code: int) -> int:
    """``IGMPV3_MRC``: the v3 Max Resp Code (RFC 3376 §4.1.1)."""
    if code < 0x80:
        return code
    return ((code & 0x0F) | 0x10) << (((code >> 4) & 7) + 3)


class McGroup:
    """``struct ip_mc_list`` for an any-source (EXCLUDE, {}) membership."""

    def __init__(self, mdev: "IgmpDev", addr: int) -> None:
        self.mdev = mdev
        self.multiaddr = addr
        self.users = 1
        self.sfmode = MCAST_EXCLUDE
        self.sfcount = [1, 0]  # indexed by MCAST_EXCLUDE / MCAST_INCLUDE
        self.timer = mdev.clock.timer(igmp_timer_expire, self)
        self.tm_running = False
        self.reporter = False
        self.unsolicit_count = 0
        self.crcount = 0
        self.gsquery = False
        self.loaded = False


class Tomb:
    """A deleted group still owing CHANGE_TO_INCLUDE records (``igmpv3_add_delrec``)."""

    def __init__(self, addr: int, crcount: int) -> None:
        self.multiaddr = addr
        self.crcount = crcount
        self.sfmode = MCAST_EXCLUDE


class IgmpDev:
    """The multicast state of one ``in_device``."""

    def __init__(self, dev: "NetDevice") -> None:
        net = dev.net
        assert net is not None
        self.dev = dev
        self.net = net
        self.clock = net.world.clock
        self.mc_list: list[McGroup] = []   # newest first (rcu_assign_pointer at the head)
        self.mc_tomb: list[Tomb] = []
        self.mr_v1_seen = 0
        self.mr_v2_seen = 0
        self.mr_qrv = _qrv(net)
        self.mr_maxdelay = 0
        self.mr_ifc_count = 0
        self.mr_gq_running = False
        self.ifc_timer = self.clock.timer(igmp_ifc_timer_expire, self)
        self.gq_timer = self.clock.timer(igmp_gq_timer_expire, self)
        self.dead = False

    # ------------------------------------------------------------------ helpers
    def jiffies(self) -> int:
        return self.clock.now // NS_PER_JIFFY

    def conf(self, name: str) -> int:
        v = self.net.sysctl.values
        return int(v.get(f"{CONF}.{self.dev.name}.{name}", 0))

    def _force(self, version: int) -> bool:
        v = self.net.sysctl.values
        return v.get(f"{CONF}.all.force_igmp_version", 0) == version or \
            self.conf("force_igmp_version") == version

    def v1_seen(self) -> bool:
        """``IGMP_V1_SEEN``."""
        return self._force(1) or bool(self.mr_v1_seen and self.jiffies() < self.mr_v1_seen)

    def v2_seen(self) -> bool:
        """``IGMP_V2_SEEN``."""
        return self._force(2) or bool(self.mr_v2_seen and self.jiffies() < self.mr_v2_seen)

    def qrv(self) -> int:
        """``in_dev->mr_qrv ?: sysctl_igmp_qrv``."""
        return self.mr_qrv or _qrv(self.net)

    def unsolicited_report_interval(self) -> int:
        """``unsolicited_report_interval`` in jiffies (at least 1)."""
        name = "igmpv2_unsolicited_report_interval" if self.v1_seen() or self.v2_seen() \
            else "igmpv3_unsolicited_report_interval"
        return max(1, self.conf(name) * HZ // 1000)

    def rand_below(self, n: int) -> int:
        """``prandom_u32() % n`` from the world's seeded RNG."""
        return self.net.world.rng.getrandbits(32) % n

    def querier(self) -> str:
        return "V1" if self.v1_seen() else "V2" if self.v2_seen() else "V3"

    def find(self, addr: int) -> McGroup | None:
        for im in self.mc_list:
            if im.multiaddr == addr:
                return im
        return None

    def reportable(self, addr: int) -> bool:
        return addr != IGMP_ALL_HOSTS and not (ipv4_is_local_multicast(addr) and
                                               not _llm_reports(self.net))


def _qrv(net: "Net") -> int:
    return int(net.sysctl.values.get("net.ipv4.igmp_qrv", 2))


def _llm_reports(net: "Net") -> bool:
    return bool(net.sysctl.values.get("net.ipv4.igmp_link_local_mcast_reports", 1))


def igmp_dev(dev: "NetDevice", create: bool = True) -> IgmpDev | None:
    """The device's multicast state, attached to its ``in_device`` (``ip_mc_init_dev``)."""
    idev = getattr(dev, "ip_ptr", None)
    if idev is None:
        return None
    mdev = getattr(idev, "igmp", None)
    if mdev is None and create and dev.net is not None:
        mdev = idev.igmp = IgmpDev(dev)
    return mdev


# ------------------------------------------------------------------- timers
def _start_timer(im: McGroup, max_delay: int) -> None:
    """``igmp_start_timer``."""
    tv = im.mdev.rand_below(max_delay)
    im.tm_running = True
    im.timer.mod((im.mdev.jiffies() + tv + 2) * NS_PER_JIFFY)


def _stop_timer(im: McGroup) -> None:
    """``igmp_stop_timer``."""
    im.timer.cancel()
    im.tm_running = False
    im.reporter = False
    im.unsolicit_count = 0


def _mod_timer(im: McGroup, max_delay: int) -> None:
    """``igmp_mod_timer``: keep a pending timer that fires sooner than ``max_delay``."""
    im.unsolicit_count = 0
    if im.timer.active:
        if im.timer.expires // NS_PER_JIFFY - im.mdev.jiffies() < max_delay:
            im.tm_running = True
            return
        im.timer.cancel()
    _start_timer(im, max_delay)


def _gq_start_timer(mdev: IgmpDev) -> None:
    """``igmp_gq_start_timer``."""
    tv = mdev.rand_below(mdev.mr_maxdelay)
    exp = (mdev.jiffies() + tv + 2) * NS_PER_JIFFY
    if mdev.mr_gq_running and exp >= mdev.gq_timer.expires:
        return
    mdev.mr_gq_running = True
    mdev.gq_timer.mod(exp)


def _ifc_start_timer(mdev: IgmpDev, delay: int) -> None:
    """``igmp_ifc_start_timer``."""
    tv = mdev.rand_below(delay)
    mdev.ifc_timer.mod((mdev.jiffies() + tv + 2) * NS_PER_JIFFY)


def igmp_ifc_event(mdev: IgmpDev) -> None:
    """``igmp_ifc_event``: (re)start the v3 state-change reports."""
    if mdev.v1_seen() or mdev.v2_seen():
        return
    mdev.mr_ifc_count = mdev.qrv()
    _ifc_start_timer(mdev, 1)


def igmp_ifc_timer_expire(mdev: IgmpDev) -> None:
    """``igmp_ifc_timer_expire``."""
    igmpv3_send_cr(mdev)
    if mdev.mr_ifc_count:
        mdev.mr_ifc_count -= 1
        _ifc_start_timer(mdev, mdev.unsolicited_report_interval())


def igmp_gq_timer_expire(mdev: IgmpDev) -> None:
    """``igmp_gq_timer_expire``: the answer to a v3 general query."""
    mdev.mr_gq_running = False
    igmpv3_send_report(mdev, None)


def igmp_timer_expire(im: McGroup) -> None:
    """``igmp_timer_expire``: a per-group report (unsolicited or answering a query)."""
    mdev = im.mdev
    im.tm_running = False
    if im.unsolicit_count:
        im.unsolicit_count -= 1
        if im.unsolicit_count:
            _start_timer(im, mdev.unsolicited_report_interval())
    im.reporter = True
    if mdev.v1_seen():
        igmp_send_report(mdev, im, IGMP_HOST_MEMBERSHIP_REPORT)
    elif mdev.v2_seen():
        igmp_send_report(mdev, im, IGMPV2_HOST_MEMBERSHIP_REPORT)
    else:
        igmp_send_report(mdev, im, IGMPV3_HOST_MEMBERSHIP_REPORT)


# --------------------------------------------------------------- transmit
def _igmp_csum(msg: bytes | bytearray) -> int:
    return csum_fold(csum_partial(bytes(msg)))


def _route(mdev: IgmpDev, dst: int) -> Any:
    """``ip_route_output_ports(net, &fl4, NULL, dst, 0, 0, 0, IPPROTO_IGMP, 0, ifindex)``;
    None when there is no route (a down device: the report is lost as in the kernel)."""
    from netstack.ipv4.fib import Flowi4
    from netstack.ipv4.route import ip_route_output
    fl4 = Flowi4(daddr=dst, oif=mdev.dev.ifindex, proto=IPPROTO_IGMP)
    try:
        rt = ip_route_output(mdev.net, fl4)
    except KernelError:
        return None
    return rt, fl4


def _send(mdev: IgmpDev, rt: Any, saddr: int, daddr: int, igmp: bytes) -> None:
    """Build the IP header as ``igmp_send_report``/``igmpv3_newpack`` do and hand it to
    ``ip_local_out``."""
    from netstack.ipv4.ip_output import ip_local_out
    idev = getattr(mdev.dev, "ip_ptr", None)
    if mdev.dead or idev is None or idev.__dict__.get("igmp") is not mdev:
        return  # a timer of an in_device that has been destroyed (MTU < 68, unregister)
    net = mdev.net
    tot = 24 + len(igmp)
    ip = bytearray(24)
    ip[0] = 0x46
    ip[1] = 0xC0
    ip[2:4] = tot.to_bytes(2, "big")
    ip[6] = 0x40  # DF; ip_select_ident gives 0 to a DF packet without a socket
    ip[8] = 1
    ip[9] = IPPROTO_IGMP
    ip[12:16] = saddr.to_bytes(4, "big")
    ip[16:20] = daddr.to_bytes(4, "big")
    ip[20:24] = b"\x94\x04\x00\x00"  # IPOPT_RA
    pkt = net.world.new_packet(b"")
    pkt.put(tot)
    o = pkt.data
    pkt.buf[o:o + tot] = bytes(ip) + igmp
    pkt.network_header = o
    pkt.transport_header = o + 24
    pkt.protocol = 0x0800
    pkt.priority = TC_PRIO_CONTROL
    pkt.dst = rt
    pkt.dev = mdev.dev
    if pkt.trace is not None:
        pkt.trace.event(pkt, "igmp_send_report", info=f"type 0x{igmp[0]:02x}")
    ip_local_out(net, pkt)


def igmp_send_report(mdev: IgmpDev, pmc: McGroup | None, type_: int) -> None:
    """``igmp_send_report``: v1/v2 report to the group, leave to all-routers; v3 goes to
    :func:`igmpv3_send_report`."""
    if type_ == IGMPV3_HOST_MEMBERSHIP_REPORT:
        igmpv3_send_report(mdev, pmc)
        return
    group = pmc.multiaddr if pmc is not None else 0
    if ipv4_is_local_multicast(group) and not _llm_reports(mdev.net):
        return
    dst = IGMP_ALL_ROUTER if type_ == IGMP_HOST_LEAVE_MESSAGE else group
    r = _route(mdev, dst)
    if r is None:
        return
    rt, fl4 = r
    msg = bytearray(bytes((type_, 0, 0, 0)) + group.to_bytes(4, "big"))
    c = _igmp_csum(msg)
    msg[2], msg[3] = c >> 8, c & 0xFF
    _send(mdev, rt, fl4.saddr, dst, bytes(msg))


class _V3Pack:
    """One IGMPv3 report under construction (``igmpv3_newpack``)."""

    def __init__(self, mdev: IgmpDev) -> None:
        self.mdev = mdev
        self.records: list[bytes] = []
        self.mtu = mdev.dev.mtu

    def avail(self) -> int:
        return self.mtu - _V3_HDR - sum(len(r) for r in self.records)


def _v3_sendpack(mdev: IgmpDev, pack: _V3Pack) -> None:
    """``igmpv3_newpack`` + ``igmpv3_sendpack``: source = the route's source if it is one
    of the device's addresses (``igmpv3_get_srcaddr``), else 0.0.0.0."""
    r = _route(mdev, IGMPV3_ALL_MCR)
    if r is None:
        return
    rt, fl4 = r
    from netstack.ipv4.devinet import inet_addrs
    saddr = fl4.saddr if any(a.local_int == fl4.saddr for a in inet_addrs(mdev.dev)) else 0
    body = bytearray(b"\x22\x00\x00\x00\x00\x00" + len(pack.records).to_bytes(2, "big")
                     + b"".join(pack.records))
    c = _igmp_csum(body)
    body[2], body[3] = c >> 8, c & 0xFF
    _send(mdev, rt, saddr, IGMPV3_ALL_MCR, bytes(body))


def _add_grec(mdev: IgmpDev, pack: _V3Pack | None, multiaddr: int, crcount: int,
              type_: int) -> _V3Pack | None:
    """``add_grec`` for a group without sources: a record is added for a filter-mode
    change (``crcount``) or a query answer; ALLOW/BLOCK records need sources."""
    if not mdev.reportable(multiaddr):
        return pack
    if mdev.dev.mtu < IPV4_MIN_MTU:
        return pack
    isquery = type_ in (MODE_IS_INCLUDE, MODE_IS_EXCLUDE)
    if not (crcount or isquery):
        return pack
    if pack is not None and pack.avail() < _GREC:
        _v3_sendpack(mdev, pack)
        pack = None
    if pack is None:
        pack = _V3Pack(mdev)
    pack.records.append(bytes((type_, 0, 0, 0)) + multiaddr.to_bytes(4, "big"))
    return pack


def igmpv3_send_report(mdev: IgmpDev, pmc: McGroup | None) -> None:
    """``igmpv3_send_report``: current-state records (MODE_IS_EXCLUDE for any-source
    memberships) for every reportable group, or for ``pmc`` only."""
    pack: _V3Pack | None = None
    targets = [pmc] if pmc is not None else list(mdev.mc_list)
    for im in targets:
        if pmc is None and not mdev.reportable(im.multiaddr):
            continue
        t = MODE_IS_EXCLUDE if im.sfcount[MCAST_EXCLUDE] else MODE_IS_INCLUDE
        pack = _add_grec(mdev, pack, im.multiaddr, im.crcount, t)
        im.gsquery = False
    if pack is not None:
        _v3_sendpack(mdev, pack)


def igmpv3_send_cr(mdev: IgmpDev) -> None:
    """``igmpv3_send_cr``: state-change records, deleted groups first (TO_IN), then the
    joined groups still owing a filter-mode change (TO_EX)."""
    pack: _V3Pack | None = None
    keep: list[Tomb] = []
    for t in mdev.mc_tomb:
        if t.crcount:
            pack = _add_grec(mdev, pack, t.multiaddr, t.crcount, CHANGE_TO_INCLUDE)
            t.crcount -= 1
        if t.crcount:
            keep.append(t)
    mdev.mc_tomb = keep
    for im in mdev.mc_list:
        if im.crcount:
            t_ = CHANGE_TO_EXCLUDE if im.sfmode == MCAST_EXCLUDE else CHANGE_TO_INCLUDE
            pack = _add_grec(mdev, pack, im.multiaddr, im.crcount, t_)
            im.crcount -= 1
    if pack is not None:
        _v3_sendpack(mdev, pack)


# ------------------------------------------------------------- group list
def _add_delrec(mdev: IgmpDev, im: McGroup) -> None:
    """``igmpv3_add_delrec``."""
    mdev.mc_tomb.insert(0, Tomb(im.multiaddr, mdev.qrv()))


def _del_delrec(mdev: IgmpDev, im: McGroup) -> None:
    """``igmpv3_del_delrec``: a rejoined group takes over its pending change count."""
    for i, t in enumerate(mdev.mc_tomb):
        if t.multiaddr == im.multiaddr:
            del mdev.mc_tomb[i]
            im.crcount = mdev.qrv()
            return


def _filter_add(mdev: IgmpDev, addr: int) -> None:
    """``ip_mc_filter_add``: ``arp_mc_map(addr, buf, dev, 0)`` succeeds for Ethernet."""
    if getattr(mdev.dev, "type", ARPHRD_ETHER) == ARPHRD_ETHER:
        dev_mc_add(mdev.dev, ip_eth_mc_map(addr))


def _filter_del(mdev: IgmpDev, addr: int) -> None:
    if getattr(mdev.dev, "type", ARPHRD_ETHER) == ARPHRD_ETHER:
        try:
            dev_mc_del(mdev.dev, ip_eth_mc_map(addr))
        except KernelError:
            pass


def igmp_group_added(im: McGroup) -> None:
    """``igmp_group_added``."""
    mdev = im.mdev
    if not im.loaded:
        im.loaded = True
        _filter_add(mdev, im.multiaddr)
    if not mdev.reportable(im.multiaddr) or mdev.dead:
        return
    im.unsolicit_count = _qrv(mdev.net)
    if mdev.v1_seen() or mdev.v2_seen():
        _start_timer(im, IGMP_INITIAL_REPORT_DELAY)
        return
    if im.sfmode == MCAST_EXCLUDE:
        im.crcount = mdev.qrv()
    igmp_ifc_event(mdev)


def igmp_group_dropped(im: McGroup) -> None:
    """``igmp_group_dropped``: v2 leave if we were the last reporter; v3 change record."""
    mdev = im.mdev
    if im.loaded:
        im.loaded = False
        _filter_del(mdev, im.multiaddr)
    if not mdev.reportable(im.multiaddr):
        return
    reporter = im.reporter
    _stop_timer(im)
    if mdev.dead:
        return
    if mdev.v1_seen():
        return
    if mdev.v2_seen():
        if reporter:
            igmp_send_report(mdev, im, IGMP_HOST_LEAVE_MESSAGE)
        return
    _add_delrec(mdev, im)
    igmp_ifc_event(mdev)


def ip_mc_inc_group(dev: "NetDevice", addr: int) -> None:
    """``ip_mc_inc_group``/``____ip_mc_inc_group`` (mode EXCLUDE)."""
    mdev = igmp_dev(dev)
    if mdev is None:
        raise KernelError(errno.ENODEV)
    im = mdev.find(addr)
    if im is not None:
        im.users += 1
        im.sfcount[MCAST_EXCLUDE] += 1
        return
    im = McGroup(mdev, addr)
    mdev.mc_list.insert(0, im)
    _del_delrec(mdev, im)
    igmp_group_added(im)


def ip_mc_dec_group(dev: "NetDevice", addr: int) -> None:
    """``ip_mc_dec_group`` (with ``ip_mc_del_src``'s sfcount decrement)."""
    mdev = igmp_dev(dev, create=False)
    if mdev is None:
        return
    im = mdev.find(addr)
    if im is None:
        return
    im.sfcount[MCAST_EXCLUDE] = max(0, im.sfcount[MCAST_EXCLUDE] - 1)
    im.users -= 1
    if im.users == 0:
        mdev.mc_list.remove(im)
        igmp_group_dropped(im)
        im.timer.cancel()


def ip_mc_up(dev: "NetDevice") -> None:
    """``ip_mc_up`` (NETDEV_UP): join all-hosts, re-add every group."""
    mdev = igmp_dev(dev)
    if mdev is None:
        return
    mdev.mr_qrv = _qrv(mdev.net)
    ip_mc_inc_group(dev, IGMP_ALL_HOSTS)
    for im in list(mdev.mc_list):
        _del_delrec(mdev, im)
        igmp_group_added(im)


def ip_mc_down(dev: "NetDevice") -> None:
    """``ip_mc_down`` (NETDEV_DOWN): drop every group's filter and timers (v2 leaves /
    v3 delete records as for a leave), leave all-hosts."""
    mdev = igmp_dev(dev, create=False)
    if mdev is None:
        return
    for im in list(mdev.mc_list):
        igmp_group_dropped(im)
    mdev.mr_ifc_count = 0
    mdev.ifc_timer.cancel()
    mdev.mr_gq_running = False
    mdev.gq_timer.cancel()
    ip_mc_dec_group(dev, IGMP_ALL_HOSTS)


def ip_mc_destroy_dev(dev: "NetDevice") -> None:
    """``ip_mc_destroy_dev`` (in_device destroyed)."""
    mdev = igmp_dev(dev, create=False)
    if mdev is None:
        return
    mdev.dead = True  # inetdev_destroy marks the in_device dead first: nothing is sent
    ip_mc_down(dev)
    mdev.mc_tomb.clear()
    for im in mdev.mc_list:
        im.timer.cancel()
    mdev.mc_list.clear()


def ip_mc_rejoin_groups(dev: "NetDevice") -> None:
    """``ip_mc_rejoin_groups`` (NETDEV_RESEND_IGMP, e.g. bonding failover): one report
    per reportable group, at once."""
    mdev = igmp_dev(dev, create=False)
    if mdev is None:
        return
    for im in list(mdev.mc_list):
        if not mdev.reportable(im.multiaddr):
            continue
        t = IGMP_HOST_MEMBERSHIP_REPORT if mdev.v1_seen() else \
            IGMPV2_HOST_MEMBERSHIP_REPORT if mdev.v2_seen() else IGMPV3_HOST_MEMBERSHIP_REPORT
        igmp_send_report(mdev, im, t)


def ip_check_mc(dev: "NetDevice", daddr: int, saddr: int, proto: int) -> bool:
    """``ip_check_mc_rcu`` for (EXCLUDE, {}) groups: joined → accepted."""
    mdev = igmp_dev(dev, create=False)
    return mdev is not None and mdev.find(daddr) is not None


# -------------------------------------------------------------- receive
def igmp_heard_report(mdev: IgmpDev, group: int) -> None:
    """``igmp_heard_report``: another member answered; stop our timer (v1/v2)."""
    if not mdev.reportable(group):
        return
    im = mdev.find(group)
    if im is not None:
        _stop_timer(im)


def igmp_heard_query(mdev: IgmpDev, msg: bytes) -> bool:
    """``igmp_heard_query``; True means "drop" (a bogus query)."""
    n = len(msg)
    group = int.from_bytes(msg[4:8], "big")
    code = msg[1]
    mark = False
    now = mdev.jiffies()
    if n == 8:
        if code == 0:
            max_delay = IGMP_QUERY_RESPONSE_INTERVAL
            mdev.mr_v1_seen = now + IGMP_V1_ROUTER_PRESENT_TIMEOUT
            group = 0
        else:
            max_delay = code * (HZ // IGMP_TIMER_SCALE)
            mdev.mr_v2_seen = now + IGMP_V2_ROUTER_PRESENT_TIMEOUT
        mdev.mr_ifc_count = 0
        mdev.ifc_timer.cancel()
        mdev.mc_tomb.clear()  # igmpv3_clear_delrec
    elif n < 12:
        return True
    elif mdev.v1_seen():
        max_delay = IGMP_QUERY_RESPONSE_INTERVAL
        group = 0
    elif mdev.v2_seen():
        max_delay = igmpv3_mrc(code) * (HZ // IGMP_TIMER_SCALE) or 1
    else:
        nsrcs = int.from_bytes(msg[10:12], "big")
        if 12 + 4 * nsrcs > n:
            return True
        max_delay = igmpv3_mrc(code) * (HZ // IGMP_TIMER_SCALE) or 1
        mdev.mr_maxdelay = max_delay
        if msg[8] & 7:
            mdev.mr_qrv = msg[8] & 7
        if not group:
            if nsrcs:
                return True
            _gq_start_timer(mdev)
            return False
        mark = nsrcs != 0
    for im in list(mdev.mc_list):
        if group and group != im.multiaddr:
            continue
        if not mdev.reportable(im.multiaddr):
            continue
        im.gsquery = (im.gsquery and mark) if im.tm_running else mark
        # igmp_marksources on an (EXCLUDE, {}) group: igmp_xmarksources finds none of
        # the queried sources excluded → "changed", gsquery cleared.
        if im.gsquery:
            im.gsquery = False
        _mod_timer(im, max_delay)
    return False


def igmp_rcv(pkt: "Packet") -> None:
    """``igmp_rcv``: the inet protocol handler for IPPROTO_IGMP.  A missing in_device, a
    short header or a bad checksum is a drop; v3 reports, leaves and unknown types are
    freed (``kfree_skb``) as the kernel does, handled queries and reports consumed."""
    dev = pkt.dev
    net = dev.net
    mdev = igmp_dev(dev, create=False)
    msg = bytes(pkt.buf[pkt.data:pkt.tail])
    if mdev is None or mdev.dead:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    if len(msg) < 8:
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return
    if _igmp_csum(msg) != 0:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    t = msg[0]
    dropped = True
    if pkt.trace is not None:
        pkt.trace.event(pkt, "igmp_rcv", info=f"type 0x{t:02x}")
    if t == IGMP_HOST_MEMBERSHIP_QUERY:
        dropped = igmp_heard_query(mdev, msg)
    elif t in (IGMP_HOST_MEMBERSHIP_REPORT, IGMPV2_HOST_MEMBERSHIP_REPORT):
        rt = pkt.dst
        if (rt is None or getattr(rt, "is_input", True)) and \
                pkt.pkt_type in (PACKET_MULTICAST, PACKET_BROADCAST):
            igmp_heard_report(mdev, int.from_bytes(msg[4:8], "big"))
            dropped = False
    if dropped:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
    else:
        consume_skb(pkt, "igmp_rcv")


# --------------------------------------------------------- socket API
class Membership:
    """``struct ip_mc_socklist`` (any-source)."""

    __slots__ = ("multiaddr", "ifindex", "address")

    def __init__(self, multiaddr: int, ifindex: int, address: int) -> None:
        self.multiaddr = multiaddr
        self.ifindex = ifindex
        self.address = address


def _sock_mc_list(sk: Any) -> list[Membership]:
    lst = sk.__dict__.get("ip_mc_list")
    if lst is None:
        lst = sk.__dict__["ip_mc_list"] = []
    return lst


def _find_dev(net: "Net", group: int, ifindex: int, address: int) -> tuple[Any, int]:
    """``ip_mc_find_dev``: by index, by local address, else the route to the group."""
    if ifindex:
        dev = net.get_by_index(ifindex)
        return (dev if dev is not None and getattr(dev, "ip_ptr", None) is not None
                else None), ifindex
    dev = None
    if address:
        from netstack.ipv4.devinet import ip_dev_find
        dev = ip_dev_find(net, address)
        if dev is None:
            return None, 0
    if dev is None:
        from netstack.ipv4.fib import Flowi4
        from netstack.ipv4.route import ip_route_output
        try:
            dev = ip_route_output(net, Flowi4(daddr=group)).dev
        except KernelError:
            dev = None
    if dev is None or getattr(dev, "ip_ptr", None) is None:
        return None, 0
    return dev, dev.ifindex


def ip_mc_join_group(net: "Net", sk: Any, group: int, ifindex: int = 0,
                     address: int = 0) -> None:
    """``IP_ADD_MEMBERSHIP`` (``ip_mc_join_group``): EINVAL for a non-multicast group,
    ENODEV without a device, EADDRINUSE when the socket is already a member there,
    ENOBUFS beyond ``igmp_max_memberships``."""
    if getattr(net.ipv4, "igmp", None) is None:
        raise NotSupported("IP_ADD_MEMBERSHIP: netstack.ipv4.igmp is not registered in this world")
    if not ipv4_is_multicast(group):
        raise KernelError(errno.EINVAL)
    dev, ifindex = _find_dev(net, group, ifindex, address)
    if dev is None:
        raise KernelError(errno.ENODEV)
    lst = _sock_mc_list(sk)
    for m in lst:
        if m.multiaddr == group and m.ifindex == ifindex:
            raise KernelError(errno.EADDRINUSE)
    if len(lst) >= int(net.sysctl.values.get("net.ipv4.igmp_max_memberships", 20)):
        raise KernelError(errno.ENOBUFS)
    lst.insert(0, Membership(group, ifindex, address))
    ip_mc_inc_group(dev, group)


def ip_mc_leave_group(net: "Net", sk: Any, group: int, ifindex: int = 0,
                      address: int = 0) -> None:
    """``IP_DROP_MEMBERSHIP`` (``ip_mc_leave_group``): EADDRNOTAVAIL when not a member."""
    dev, found_index = _find_dev(net, group, ifindex, address)
    if not ifindex and not address and dev is None:
        raise KernelError(errno.ENODEV)
    ifindex = found_index if not ifindex else ifindex
    lst = _sock_mc_list(sk)
    for m in lst:
        if m.multiaddr != group:
            continue
        if ifindex:
            if m.ifindex != ifindex:
                continue
        elif address and address != m.address:
            continue
        lst.remove(m)
        if dev is not None:
            ip_mc_dec_group(dev, group)
        return
    raise KernelError(errno.EADDRNOTAVAIL)


def ip_mc_drop_socket(net: "Net", sk: Any) -> None:
    """``ip_mc_drop_socket``: a closing socket leaves all its groups."""
    lst = _sock_mc_list(sk)
    while lst:
        m = lst.pop(0)
        dev = net.get_by_index(m.ifindex)
        if dev is not None:
            ip_mc_dec_group(dev, m.multiaddr)


def ip_mc_source(*_a: Any, **_k: Any) -> None:
    """``IP_ADD_SOURCE_MEMBERSHIP`` & co."""
    raise NotSupported("IGMP source filters (IP_ADD_SOURCE_MEMBERSHIP/MCAST_MSFILTER)")


# ------------------------------------------------------------ autojoin
def ip_mc_autojoin_config(net: "Net", join: bool, dev: "NetDevice", address: bytes) -> None:
    """``ip_mc_autojoin_config`` (net/ipv4/devinet.c), called by ``inet_add_addr`` for an
    IFA_F_MCAUTOJOIN address before it is inserted (a failure refuses the address:
    "ipv4: Multicast auto join failed", e.g. ENOBUFS past ``igmp_max_memberships`` on
    the namespace's one autojoin socket, EADDRINUSE for the same group twice) and by
    ``inet_del_addr`` for any multicast address (errors ignored)."""
    state = net.ipv4.igmp
    group = int.from_bytes(address, "big")
    key = (dev.ifindex, group)
    if join:
        try:
            ip_mc_join_group(net, state.autojoin_sk, group, dev.ifindex)
        except KernelError as e:
            raise KernelError(e.errno, "ipv4: Multicast auto join failed") from None
        state.autojoined.add(key)
    else:
        try:
            ip_mc_leave_group(net, state.autojoin_sk, group, dev.ifindex)
        except KernelError:
            return
        state.autojoined.discard(key)


def _autojoin_event(event: str, dev: "NetDevice", address: bytes) -> None:
    """The inetaddr chain's view of autojoin, for a devinet that does not call
    :func:`ip_mc_autojoin_config` itself: an IFA_F_MCAUTOJOIN address joins its group
    when added and leaves when deleted.  Joins already made by ``inet_add_addr`` are
    recognised (``autojoined``), so the two paths never count twice."""
    net = dev.net
    if net is None or getattr(net.ipv4, "igmp", None) is None:
        return
    from netstack.ipv4.devinet import IFA_F_MCAUTOJOIN, inet_addrs
    group = int.from_bytes(address, "big")
    sk = net.ipv4.igmp.autojoin_sk
    if event == "UP":
        flagged = any(a.local_int == group and a.flags & IFA_F_MCAUTOJOIN
                      for a in inet_addrs(dev))
        if flagged and ipv4_is_multicast(group):
            key = (dev.ifindex, group)
            if key not in net.ipv4.igmp.autojoined:
                try:
                    ip_mc_join_group(net, sk, group, dev.ifindex)
                except KernelError:
                    return
                net.ipv4.igmp.autojoined.add(key)
    elif event == "DOWN":
        key = (dev.ifindex, group)
        still = any(a.local_int == group and a.flags & IFA_F_MCAUTOJOIN
                    for a in inet_addrs(dev))
        if key in net.ipv4.igmp.autojoined and not still:
            net.ipv4.igmp.autojoined.discard(key)
            try:
                ip_mc_leave_group(net, sk, group, dev.ifindex)
            except KernelError:
                pass


# ------------------------------------------------------------ procfs
def proc_igmp_text(net: "Net") -> str:
    """``/proc/net/igmp`` (``igmp_mc_seq_show``)."""
    out = ["Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"]
    now = None
    for dev in net.devices.values():
        mdev = igmp_dev(dev, create=False)
        if mdev is None or not mdev.mc_list:
            continue
        now = mdev.jiffies()
        out.append(f"{dev.ifindex}\t{dev.name:<10s}: {len(mdev.mc_list):5d} "
                   f"{mdev.querier():>7s}\n")
        for im in mdev.mc_list:
            delta = (im.timer.expires // NS_PER_JIFFY - now) // 10 if im.tm_running else 0
            le = int.from_bytes(im.multiaddr.to_bytes(4, "big"), "little")
            out.append(f"\t\t\t\t{le:08X} {im.users:5d} {int(im.tm_running)}:"
                       f"{delta & 0xFFFFFFFFFFFFFFFF:08X}\t\t{int(im.reporter)}\n")
    return "".join(out)


def ip_mc_groups(dev: "NetDevice") -> list[tuple[bytes, int]]:
    """(group, users) of a device, newest first, as /proc/net/igmp lists them."""
    mdev = igmp_dev(dev, create=False)
    if mdev is None:
        return []
    return [(im.multiaddr.to_bytes(4, "big"), im.users) for im in mdev.mc_list]


# ------------------------------------------------------------ registration
class IgmpNet:
    """Per-namespace IGMP state: the autojoin socket's memberships."""

    def __init__(self) -> None:
        self.autojoin_sk = _AutojoinSock()
        self.autojoined: set[tuple[int, int]] = set()


class _AutojoinSock:
    """``net->ipv4.mc_autojoin_sk``: a kernel socket holding the autojoin memberships."""


def _sysctls(net: "Net") -> None:
    s = net.sysctl
    for key, default, lo in (("net.ipv4.igmp_max_memberships", 20, None),
                             ("net.ipv4.igmp_max_msf", 10, None),
                             ("net.ipv4.igmp_qrv", 2, 1),
                             ("net.ipv4.igmp_link_local_mcast_reports", 1, None)):
        if key not in s:
            s.register(key, default, lo)
    for name, default in (("force_igmp_version", 0),
                          ("igmpv2_unsolicited_report_interval", 10000),
                          ("igmpv3_unsolicited_report_interval", 1000)):
        if f"{CONF}.all.{name}" not in s:
            s.register_conf(CONF, name, default)


def igmp_pernet_init(net: "Net") -> None:
    """``igmp_net_init`` + ``inet_add_protocol(&igmp_protocol, IPPROTO_IGMP)``."""
    if net.ipv4 is None:
        return
    net.ipv4.igmp = IgmpNet()
    net.ipv4.protos[IPPROTO_IGMP] = igmp_rcv
    net.ipv4.ip_check_mc = ip_check_mc
    net.ipv4.mc_autojoin = ip_mc_autojoin_config
    _sysctls(net)


def igmp_netdev_event(event: str, dev: "NetDevice") -> None:
    """The multicast part of ``inetdev_event`` (NETDEV_UP → ``ip_mc_up``, NETDEV_DOWN →
    ``ip_mc_down``, unregister → ``ip_mc_destroy_dev``) and ``igmp_netdev_event``
    (NETDEV_RESEND_IGMP)."""
    net = dev.net
    if net is None or getattr(net.ipv4, "igmp", None) is None:
        return
    if event == "UP":
        if getattr(dev, "ip_ptr", None) is not None and dev.mtu >= IPV4_MIN_MTU:
            ip_mc_up(dev)
    elif event == "DOWN":
        ip_mc_down(dev)
    elif event == "UNREGISTER":
        ip_mc_destroy_dev(dev)
        for key in [k for k in net.ipv4.igmp.autojoined if k[0] == dev.ifindex]:
            net.ipv4.igmp.autojoined.discard(key)
        sk = net.ipv4.igmp.autojoin_sk
        lst = _sock_mc_list(sk)
        lst[:] = [m for m in lst if m.ifindex != dev.ifindex]
    elif event == "RESEND_IGMP":
        ip_mc_rejoin_groups(dev)


def register(world: "World") -> None:
    """``igmp_mc_init`` and the IGMP parts of ``inet_init`` (once per world, however
    often the module is listed)."""
    if igmp_pernet_init in world.pernet_inits:
        return
    world.pernet_inits.append(igmp_pernet_init)
    # ip_mc_up/ip_mc_down are part of inetdev_event, which the kernel runs before
    # addrconf's notifier: sit right behind IPv4's notifier, ahead of IPv6's
    from netstack.ipv4.af_inet import inet_netdev_event
    chain = world.netdev_notifiers
    pos = chain.index(inet_netdev_event) + 1 if inet_netdev_event in chain else len(chain)
    chain.insert(pos, igmp_netdev_event)
    world.inetaddr_chain.append(_autojoin_event)


__all__ = ["ip_mc_inc_group", "ip_mc_dec_group", "ip_mc_up", "ip_mc_down",
           "ip_mc_rejoin_groups", "ip_mc_join_group", "ip_mc_leave_group",
           "ip_mc_drop_socket", "ip_check_mc", "igmp_rcv", "proc_igmp_text", "ip_mc_groups",
           "igmp_dev", "register", "IgmpDev", "McGroup"]
