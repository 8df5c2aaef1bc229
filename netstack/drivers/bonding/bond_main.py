"""The bonding device (drivers/net/bonding/bond_main.c).

A :class:`BondDevice` enslaves devices through ``ip link set DEV master BOND``
(:meth:`BondDevice.add_slave` = ``bond_enslave``, :meth:`del_slave` = ``bond_release``),
transmits per mode (``__bond_start_xmit``), owns its slaves' ``rx_handler``
(``bond_handle_frame``) and monitors their links on the world's virtual clock:
miimon (``bond_mii_monitor``: inspect, then commit with up/downdelay counted in miimon
ticks), the ARP monitor (``bond_loadbalance_arp_mon`` / ``bond_activebackup_arp_mon``),
the 802.3ad state machines every 100 ms (:mod:`.bond_3ad`) and the tlb/alb monitor
(:mod:`.bond_alb`).  The ARP monitor also probes IPv6 ``ns_ip6_target`` targets and
validates NS/NA (:mod:`.bond_ns`); 802.3ad with ``broadcast_neighbor`` sends ARP and
NS/NA on every usable slave.

Failover (``bond_select_active_slave`` → ``bond_change_active_slave``) honours primary,
primary_reselect and slave prio, moves MAC addresses as fail_over_mac none/active/follow
say (``bond_do_fail_over_mac``), and in active-backup notifies peers
``num_peer_notif`` times (``NETDEV_NOTIFY_PEERS``: one gratuitous ARP request per IPv4
address, ``inetdev_send_gratuitous_arp``, and one unsolicited NA to ff02::1 per IPv6
address, ``ndisc_send_unsol_na``).

Counters: the bond's ``rtnl_link_stats64`` are its slaves' summed (``bond_get_stats``),
plus what released slaves had contributed and the bond's own drops.
"""
from __future__ import annotations

import errno
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from netstack.core.dev import dev_queue_xmit, dev_queue_xmit_list
from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.core.netdevice import (ARPHRD_ETHER, IFF_MASTER, IFF_SLAVE, IFF_UP, LinkStats,
                                     NetDevice, RxHandlerResult)
from netstack.drivers.bonding import bond_3ad as ad
from netstack.drivers.bonding import bond_ns
from netstack.drivers.bonding.bond_alb import AlbInfo
from netstack.drivers.bonding.bond_hash import pkt_xmit_hash
from netstack.drivers.bonding.bond_options import (
    BOND_MODE_8023AD, BOND_MODE_ACTIVEBACKUP, BOND_MODE_ALB, BOND_MODE_BROADCAST,
    BOND_MAX_ARP_TARGETS, BOND_MODE_ROUNDROBIN, BOND_MODE_TLB, BOND_MODE_XOR, BondParams,
    bond_mode_uses_primary,
)
from netstack.errors import KernelError, NotSupported
from netstack.packet.errors import ParseError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

BOND_LINK_UP, BOND_LINK_FAIL, BOND_LINK_DOWN, BOND_LINK_BACK = 0, 1, 2, 3
BOND_LINK_NOCHANGE = -1
BOND_STATE_ACTIVE, BOND_STATE_BACKUP = 0, 1
BOND_FOM_NONE, BOND_FOM_ACTIVE, BOND_FOM_FOLLOW = 0, 1, 2
BOND_PRI_RESELECT_ALWAYS, BOND_PRI_RESELECT_BETTER, BOND_PRI_RESELECT_FAILURE = 0, 1, 2
NET_ADDR_PERM, NET_ADDR_RANDOM, NET_ADDR_STOLEN, NET_ADDR_SET = 0, 1, 2, 3
NSEC_PER_MSEC = 1_000_000
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ARPOP_REPLY = 2
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")

#: bonding's default features (bond_setup: hw_features of a fresh bond)
BOND_FEATURES = frozenset({
    "tx-checksum-ip-generic", "tx-scatter-gather", "tx-scatter-gather-fraglist",
    "tx-generic-segmentation", "tx-tcp-segmentation", "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation", "rx-checksum", "highdma",
    "tx-vlan-hw-insert", "rx-vlan-hw-parse", "rx-vlan-filter", "tx-gso-list",
    "tx-udp-segmentation",
})


def slave_speed_duplex(dev: NetDevice) -> tuple[int | None, int | None]:
    """``bond_update_speed_duplex``: what ``ethtool`` reports — a veth says 10000 Mb/s
    full duplex (veth_get_link_ksettings); a device may carry ``speed``/``duplex``
    attributes; otherwise SPEED_UNKNOWN/DUPLEX_UNKNOWN (None)."""
    if dev.kind == "veth":
        return 10000, 1
    return getattr(dev, "speed", None), getattr(dev, "duplex", None)


class Slave:
    """``struct slave``."""

    def __init__(self, bond: "BondDevice", dev: NetDevice) -> None:
        self.bond = bond
        self.dev = dev
        self.link = BOND_LINK_DOWN
        self.link_new_state = BOND_LINK_NOCHANGE
        self.backup = BOND_STATE_ACTIVE
        self.inactive = False
        #: ``rx_disabled`` (802.3ad, independent control: collecting off)
        self.rx_disabled = False
        self.delay = 0
        self.link_failure_count = 0
        self.perm_hwaddr = dev.address
        self.original_mtu = dev.mtu
        self.speed, self.duplex = slave_speed_duplex(dev)
        self.queue_id = 0
        self.prio = 0
        self.last_link_up = 0
        self.last_rx = 0
        self.last_tx = 0
        self.target_last_arp_rx: list[int] = []
        self.stats_base = LinkStats(**dev.stats.as_dict())
        # 802.3ad
        self.ad_id = 0
        self.ad_port: ad.Port | None = None
        self.ad_agg: ad.Aggregator | None = None
        # tlb
        self.tlb_head: list[int] = []
        self.tlb_load = 0

    def is_active(self) -> bool:
        """``bond_is_active_slave``."""
        return self.backup == BOND_STATE_ACTIVE

    def is_up(self) -> bool:
        """``bond_slave_is_up``: netif_running."""
        return self.dev.is_up

    def can_tx(self) -> bool:
        """``bond_slave_can_tx``."""
        return self.dev.is_up and self.link == BOND_LINK_UP and self.is_active()


class BondDevice(NetDevice):
    """``ip link add NAME type bond …``."""

    kind = "bond"
    default_features = BOND_FEATURES
    hw_features = BOND_FEATURES
    qdisc_up = "noqueue"
    #: bond_setup: "Don't allow bond devices to change network namespaces."
    netns_local = True

    def __init__(self, name: str, address: bytes) -> None:
        self._stats = LinkStats()
        super().__init__(name, address)
        self.addr_assign_type = NET_ADDR_RANDOM
        self.flags |= IFF_MASTER
        self.max_mtu = 65535
        self.carrier = False
        self.params = BondParams()
        self.slaves: list[Slave] = []
        self.curr_active: Slave | None = None
        self.primary_slave: Slave | None = None
        self.current_arp_slave: Slave | None = None
        self.force_primary = False
        self.usable_slaves: list[Slave] = []
        self.all_slaves: list[Slave] = []
        self.rr_tx_counter = 0
        self.send_peer_notif = 0
        self.update_needed = False
        self.ad = ad.Bond3ad(self)
        self.alb: AlbInfo | None = None
        self._alb_rebalance_counter = 0
        self.released_stats = LinkStats()
        self._mii_timer: Any = None
        self._arp_timer: Any = None
        self._ad_timer: Any = None
        self._alb_timer: Any = None

    # ----------------------------------------------------------- stats
    @property
    def stats(self) -> LinkStats:  # type: ignore[override]
        """``bond_get_stats``: own counters + each slave's delta since it joined + what
        released slaves contributed."""
        out = LinkStats(**self._stats.as_dict())
        for f in fields(LinkStats):
            n = f.name
            v = getattr(out, n) + getattr(self.released_stats, n)
            for s in self.slaves:
                v += getattr(s.dev.stats, n) - getattr(s.stats_base, n)
            setattr(out, n, v)
        return _BondStats(self, out)

    @stats.setter
    def stats(self, value: LinkStats) -> None:
        self._stats = value

    # ----------------------------------------------------------- state
    def carrier_ok(self) -> bool:
        return self.carrier

    def operstate_up(self) -> str:
        return "UP"

    def _set_carrier(self, on: bool) -> bool:
        if self.carrier == on:
            return False
        self.carrier = on
        if self.net is not None:
            self.net.world.linkwatch_fire_event(self)
            self.net.world.linkwatch_run()
        return True

    def bond_set_carrier(self) -> bool:
        """``bond_set_carrier``."""
        if not self.slaves:
            return self._set_carrier(False)
        if self.params.mode == BOND_MODE_8023AD:
            return self.ad_set_carrier()
        return self._set_carrier(any(s.link == BOND_LINK_UP for s in self.slaves))

    def ad_set_carrier(self, exclude: Slave | None = None) -> bool:
        """``bond_3ad_set_carrier`` (for other modes ``min_links`` has no effect)."""
        if self.params.mode != BOND_MODE_8023AD:
            return False
        slaves = [s for s in self.slaves if s is not exclude]
        if not slaves:
            return self._set_carrier(False)
        active = self.ad.active_agg()
        if active is not None:
            if active.active_ports() < self.params.min_links:
                return self._set_carrier(False)
            return self._set_carrier(True)
        return self._set_carrier(False)

    @property
    def world(self):  # type: ignore[no-untyped-def]
        return self.net.world  # type: ignore[union-attr]

    def _now(self) -> int:
        return self.world.clock.now if self.net is not None else 0

    def now_ns(self) -> int:
        """The virtual clock (jiffies), 0 before the bond is in a namespace."""
        return self._now()

    # ----------------------------------------------------------- open/close
    def open(self) -> None:
        """``bond_open``."""
        uses_primary = bond_mode_uses_primary(self.params.mode)
        for s in self.slaves:
            if uses_primary and s is not self.curr_active:
                self.set_slave_inactive(s)
            elif self.params.mode != BOND_MODE_8023AD:
                self.set_slave_active(s)
        if self.is_lb():
            self.alb = AlbInfo(self, self.params.mode == BOND_MODE_ALB)
            # bond_alb_init_slave ordered a rebalance "ASAP" for each enslaved slave
            self.alb.tx_rebalance_counter = self._alb_rebalance_counter
            if self.params.tlb_dynamic_lb or self.params.mode == BOND_MODE_ALB:
                self._alb_timer = self.world.clock.timer(self._alb_tick)
                self._alb_timer.mod_in(0)
        self._start_monitors()
        if self.params.mode == BOND_MODE_8023AD:
            self._ad_timer = self.world.clock.timer(self._ad_tick)
            self._ad_timer.mod_in(NSEC_PER_MSEC)  # queue_delayed_work(.., 1)
            self.ad.agg_select_timer = 1
        self.update_slave_arr()

    def stop(self) -> None:
        """``bond_close``: the works stop."""
        for t in (self._mii_timer, self._arp_timer, self._ad_timer, self._alb_timer):
            if t is not None:
                t.cancel()
        self._mii_timer = self._arp_timer = self._ad_timer = self._alb_timer = None
        if self.alb is not None:
            for s in self.slaves:
                self.alb.tlb_clear_slave(s, False)
            self.alb = None

    def _start_monitors(self) -> None:
        clock = self.world.clock
        if self.params.miimon:
            self._mii_timer = clock.timer(self._mii_tick)
            self._mii_timer.mod_in(0)
        if self.params.arp_interval:
            self._arp_timer = clock.timer(self._arp_tick)
            self._arp_timer.mod_in(0)

    def monitors_changed(self) -> None:
        """miimon/arp_interval changed while up: restart the works."""
        if not self.is_up or self.net is None:
            return
        for t in (self._mii_timer, self._arp_timer):
            if t is not None:
                t.cancel()
        self._mii_timer = self._arp_timer = None
        self._start_monitors()

    # ----------------------------------------------------------- helpers
    def is_lb(self) -> bool:
        """``bond_is_lb``."""
        return self.params.mode in (BOND_MODE_TLB, BOND_MODE_ALB)

    def uses_primary(self) -> bool:
        return bond_mode_uses_primary(self.params.mode)

    def set_slave_inactive(self, s: Slave) -> None:
        """``bond_set_slave_inactive_flags`` (802.3ad also disables collecting:
        ``rx_disabled``)."""
        if not self.is_lb():
            s.backup = BOND_STATE_BACKUP
        if not self.params.all_slaves_active:
            s.inactive = True
        if self.params.mode == BOND_MODE_8023AD:
            s.rx_disabled = True

    def set_slave_active(self, s: Slave) -> None:
        """``bond_set_slave_active_flags``."""
        s.backup = BOND_STATE_ACTIVE
        s.inactive = False
        if self.params.mode == BOND_MODE_8023AD:
            s.rx_disabled = False

    def slave_of(self, dev: NetDevice) -> Slave | None:
        for s in self.slaves:
            if s.dev is dev:
                return s
        return None

    def slave_has_mac(self, mac: bytes) -> bool:
        return mac == self.address or any(s.dev.address == mac for s in self.slaves)

    def has_ip(self, ip: bytes) -> bool:
        """``bond_has_this_ip``: an IPv4 address of the bond."""
        from netstack.ipv4.devinet import inet_addrs
        if self.ip_ptr is None:
            return False
        return any(a.local == ip for a in inet_addrs(self))

    def _set_mac(self, dev: NetDevice, mac: bytes) -> None:
        """``dev_set_mac_address`` done by the driver itself."""
        if dev.address == mac:
            return
        dev.address = mac
        if dev.net is not None:
            dev.net.notify("CHANGEADDR", dev)

    def _swap_mac(self, a: Slave, b: Slave, learn: bool) -> None:
        """Two slaves exchange addresses: ``alb_swap_mac_addr`` (bond_alb.c, and the same
        exchange in ``bond_do_fail_over_mac``'s BOND_FOM_FOLLOW, bond_main.c); with
        ``learn``, ``alb_fasten_mac_swap``'s learning packets from each running slave,
        ``b`` first."""
        from netstack.drivers.bonding.bond_alb import send_learning_packet
        tmp = a.dev.address
        self._set_mac(a.dev, b.dev.address)
        self._set_mac(b.dev, tmp)
        if learn:
            for s in (b, a):
                if s.dev.running():
                    send_learning_packet(s)

    def update_slave_arr(self, skip: Slave | None = None) -> None:
        """``bond_update_slave_arr``."""
        self.update_needed = False
        agg_id = None
        if self.params.mode == BOND_MODE_8023AD:
            info = self.ad.active_agg_info()
            if info is None:
                self.usable_slaves = []
                self.all_slaves = [s for s in self.slaves if s is not skip]
                return
            agg_id = info["aggregator_id"]
        alls, usable = [], []
        for s in self.slaves:
            if s is skip:
                continue
            alls.append(s)
            if agg_id is not None:
                agg = s.ad_port.aggregator if s.ad_port is not None else None
                if agg is None or agg.aggregator_identifier != agg_id:
                    continue
            if not s.can_tx():
                continue
            usable.append(s)
        self.all_slaves, self.usable_slaves = alls, usable

    # ----------------------------------------------------------- enslave
    def add_slave(self, slave_dev: NetDevice) -> None:
        """``bond_enslave``, its refusals in its order."""
        if slave_dev.rx_handler is not None:
            raise KernelError(errno.EBUSY, "Device is in use and cannot be enslaved")
        if slave_dev is self:
            raise KernelError(errno.EPERM, "Cannot enslave bond to itself.")
        if slave_dev.flags & IFF_UP:
            raise KernelError(errno.EPERM, "Device can not be enslaved while up")
        if slave_dev.type != ARPHRD_ETHER:
            # bond_setup_by_slave for non-Ethernet slaves (loopback, ipip, …)
            raise NotSupported(f"enslaving a non-Ethernet device ({slave_dev.name})")
        if isinstance(slave_dev, BondDevice) and self.master is slave_dev:
            raise KernelError(errno.EBUSY)
        net = self.net
        assert net is not None
        p = self.params
        if not self.slaves and self.addr_assign_type == NET_ADDR_RANDOM:
            self._set_mac(self, slave_dev.address)
            self.addr_assign_type = NET_ADDR_STOLEN
        s = Slave(self, slave_dev)
        if slave_dev.mtu != self.mtu:
            slave_dev.mtu = self.mtu
            net.notify("CHANGEMTU", slave_dev)
        if not p.fail_over_mac or p.mode != BOND_MODE_ACTIVEBACKUP:
            self._set_mac(slave_dev, self.address)
        elif p.fail_over_mac == BOND_FOM_FOLLOW and slave_dev.address == self.address:
            self._set_mac(slave_dev, self.world.random_mac())
        slave_dev.flags |= IFF_SLAVE
        # IFF_NO_ADDRCONF before the open: IPv6 addrconf leaves slaves alone
        slave_dev.no_addrconf = True  # type: ignore[attr-defined]
        slave_dev.master = self
        net.dev_open(slave_dev)
        if self.is_lb():
            from netstack.drivers.bonding.bond_alb import BOND_TLB_REBALANCE_TICKS
            self._alb_rebalance_counter = BOND_TLB_REBALANCE_TICKS
            if self.alb is not None:
                self.alb.tx_rebalance_counter = BOND_TLB_REBALANCE_TICKS
        if self.is_lb():
            # bond_alb_init_slave: back to its own address; on a collision with the
            # bond's (not for the first slave) it gets another one
            # (alb_handle_addr_collision_on_attach)
            self._set_mac(slave_dev, s.perm_hwaddr)
            if self.slaves and slave_dev.address == self.address:
                self._set_mac(slave_dev, self.world.random_mac())
        slave_dev.rx_handler = self._handle_frame
        slave_dev.rx_handler_data = s
        prev = self.slaves[-1] if self.slaves else None
        s.speed, s.duplex = slave_speed_duplex(slave_dev)
        now = self._now()
        s.last_rx = now - (p.arp_interval * NSEC_PER_MSEC + NSEC_PER_MSEC)
        # bond_enslave: every one of the BOND_MAX_ARP_TARGETS slots (shared by the ARP
        # and the NS targets)
        s.target_last_arp_rx = [s.last_rx] * BOND_MAX_ARP_TARGETS
        if p.miimon:
            if slave_dev.running():
                if p.updelay:
                    s.link = BOND_LINK_BACK
                    s.delay = p.updelay
                else:
                    s.link = BOND_LINK_UP
            else:
                s.link = BOND_LINK_DOWN
        elif p.arp_interval:
            s.link = BOND_LINK_UP if slave_dev.carrier_ok() else BOND_LINK_DOWN
        else:
            s.link = BOND_LINK_UP
        if s.link != BOND_LINK_DOWN:
            s.last_link_up = now
        self.slaves.append(s)
        if self.uses_primary() and p.primary and p.primary == slave_dev.name:
            self.primary_slave = s
            self.force_primary = True
        mode = p.mode
        if mode == BOND_MODE_ACTIVEBACKUP:
            self.set_slave_inactive(s)
        elif mode == BOND_MODE_8023AD:
            self.set_slave_inactive(s)
            if prev is None:
                s.ad_id = 1
                self.ad.initialize()
            else:
                s.ad_id = prev.ad_id + 1
            self.ad.bind_slave(s)
        elif mode in (BOND_MODE_TLB, BOND_MODE_ALB):
            s.backup = BOND_STATE_ACTIVE
            self.set_slave_inactive(s)
        else:
            s.backup = BOND_STATE_ACTIVE
            if self.curr_active is None and s.link == BOND_LINK_UP:
                self.curr_active = s
        self.bond_set_carrier()
        if self.uses_primary():
            self.select_active_slave()
        self.update_slave_arr()

    # ----------------------------------------------------------- release
    def del_slave(self, slave_dev: NetDevice) -> None:
        """``bond_release`` → ``__bond_release_one``."""
        s = self.slave_of(slave_dev)
        if s is None:
            raise KernelError(errno.EINVAL)
        self._release(s)

    def _release(self, s: Slave, unregister: bool = False) -> None:
        net = self.net
        slave_dev = s.dev
        self.set_slave_inactive(s)
        slave_dev.rx_handler = None
        slave_dev.rx_handler_data = None
        if self.params.mode == BOND_MODE_8023AD and s.ad_port is not None:
            self.ad.unbind_slave(s)
            self.ad_set_carrier(exclude=s)
        # fold the slave's traffic into the bond's counters (bond_get_stats)
        for f in fields(LinkStats):
            n = f.name
            setattr(self.released_stats, n, getattr(self.released_stats, n)
                    + getattr(slave_dev.stats, n) - getattr(s.stats_base, n))
        self.update_slave_arr(skip=s)
        old = self.curr_active
        self.current_arp_slave = None
        if self.primary_slave is s:
            self.primary_slave = None
        if old is s:
            self.change_active_slave(None)
        if self.alb is not None:
            self.alb.tlb_clear_slave(s, False)
            if self.alb.rlb_enabled:
                self.alb.rlb_clear_slave(s)
        self.slaves.remove(s)
        slave_dev.flags &= ~IFF_SLAVE
        slave_dev.no_addrconf = False  # type: ignore[attr-defined]
        slave_dev.master = None
        if old is s:
            self.select_active_slave()
        self.bond_set_carrier()
        self.update_slave_arr()
        if not self.slaves:
            self._set_mac(self, self.world.random_mac())
            self.addr_assign_type = NET_ADDR_RANDOM
        if net is not None and not unregister:
            net.dev_close(slave_dev)
        if self.params.fail_over_mac != BOND_FOM_ACTIVE \
                or self.params.mode != BOND_MODE_ACTIVEBACKUP:
            self._set_mac(slave_dev, s.perm_hwaddr)
        if slave_dev.mtu != s.original_mtu:
            slave_dev.mtu = s.original_mtu
            if slave_dev.net is not None and not unregister:
                slave_dev.net.notify("CHANGEMTU", slave_dev)

    def dellink(self) -> None:
        """``bond_uninit``: release every slave, then unregister."""
        for s in list(self.slaves):
            self._release(s)
        if self.net is not None:
            self.net.unregister_netdevice(self)

    def slave_event(self, event: str, dev: NetDevice) -> None:
        """``bond_slave_netdev_event``."""
        s = self.slave_of(dev)
        if s is None:
            return
        if event == "UNREGISTER":
            self._release(s, unregister=True)
        elif event in ("UP", "CHANGE"):
            s.speed, s.duplex = slave_speed_duplex(dev)
            if self.params.mode == BOND_MODE_8023AD and s.ad_port is not None:
                self.ad.update_actor_keys(s.ad_port, False)
            self.update_slave_arr()
        elif event == "DOWN":
            self.update_slave_arr()
        elif event == "CHANGENAME":
            if self.uses_primary() and self.params.primary == dev.name:
                self.primary_slave = s
                self.select_active_slave()

    def change_rx_flags(self, changed: int) -> None:
        """``bond_change_rx_flags``: promiscuity/allmulti go to the active slave in the
        modes that use one (``bond_set_promiscuity``/``bond_set_allmulti``), else to
        every slave."""
        targets = ([self.curr_active] if self.curr_active is not None else []) \
            if self.uses_primary() else list(self.slaves)
        for s in targets:
            s.dev.flags = (s.dev.flags & ~changed) | (self.flags & changed)

    def master_event(self, event: str) -> None:
        """The bond's own CHANGEMTU (``ip link set BOND mtu``): ``bond_change_mtu`` gives
        every slave the new MTU."""
        if event == "CHANGEMTU":
            for s in self.slaves:
                if s.dev.mtu != self.mtu:
                    s.dev.mtu = self.mtu
                    if s.dev.net is not None:
                        s.dev.net.notify("CHANGEMTU", s.dev)

    def set_mac_address(self, mac: bytes) -> None:
        """``ip link set BOND address``: ``dev_set_mac_address`` → ``bond_set_mac_address``
        — balance-alb: ``bond_alb_set_mac_address`` (the bond takes it and the active
        slave follows, swapping with a slave that had it); active-backup with
        fail_over_mac: nothing changes (success, "returning an error causes ifenslave to
        fail"); otherwise every slave, then the bond.  NETDEV_CHANGEADDR and
        NET_ADDR_SET follow in any case (dev_set_mac_address)."""
        from netstack.drivers.bonding.bond_alb import send_learning_packet
        p = self.params
        if p.mode == BOND_MODE_ALB:
            self.address = mac
            cur = self.curr_active
            if cur is not None:
                swap = next((s for s in self.slaves if s.dev.address == mac), None)
                if swap is not None and swap is not cur:
                    self._swap_mac(cur, swap, learn=True)
                elif swap is None:
                    self._set_mac(cur.dev, mac)
                    if cur.dev.running():
                        send_learning_packet(cur)
        elif not (p.fail_over_mac and p.mode == BOND_MODE_ACTIVEBACKUP):
            for s in self.slaves:
                self._set_mac(s.dev, mac)
            self.address = mac
        self.addr_assign_type = NET_ADDR_SET
        if self.net is not None:
            self.net.notify("CHANGEADDR", self)

    # ------------------------------------------------------ active slave
    def _choose_primary_or_current(self) -> Slave | None:
        """``bond_choose_primary_or_current`` (with slave prio, 6.0+)."""
        prim, curr = self.primary_slave, self.curr_active
        if prim is None or prim.link != BOND_LINK_UP:
            hprio = None
            for s in self.slaves:
                if s.link == BOND_LINK_UP:
                    if hprio is None or s.prio > hprio.prio:
                        hprio = s
            if hprio is not None and hprio is not curr:
                prim = hprio
            else:
                if curr is None or curr.link != BOND_LINK_UP:
                    return None
                return curr
        elif self.force_primary:
            self.force_primary = False
            return prim
        if curr is None or curr.link != BOND_LINK_UP:
            return prim
        rs = self.params.primary_reselect
        if rs == BOND_PRI_RESELECT_ALWAYS:
            return prim
        if rs == BOND_PRI_RESELECT_BETTER:
            ps, cs = prim.speed or 0, curr.speed or 0
            if ps < cs or (ps == cs and (prim.duplex or 0) <= (curr.duplex or 0)):
                return curr
            return prim
        return curr

    def find_best_slave(self) -> Slave | None:
        """``bond_find_best_slave``."""
        s = self._choose_primary_or_current()
        if s is not None:
            return s
        best, mintime = None, self.params.updelay
        for s in self.slaves:
            if s.link == BOND_LINK_UP:
                return s
            if s.link == BOND_LINK_BACK and s.is_up() and s.delay < mintime:
                mintime = s.delay
                best = s
        return best

    def select_active_slave(self) -> None:
        """``bond_select_active_slave``."""
        best = self.find_best_slave()
        if best is not self.curr_active:
            self.change_active_slave(best)
            self.bond_set_carrier()

    def set_active_slave_by_name(self, name: str) -> None:
        """``bond_option_active_slave_set``: "" clears the active slave and reselects;
        a slave becomes active only if there is an active one now and its link is up
        (else EINVAL)."""
        if not name:
            self.curr_active = None
            self.select_active_slave()
            return
        s = next((x for x in self.slaves if x.dev.name == name), None)
        if s is None:
            raise KernelError(errno.EINVAL, "invalid option value")
        if s is self.curr_active:
            return
        if self.curr_active is None or not s.is_up() or s.link != BOND_LINK_UP:
            raise KernelError(errno.EINVAL, "invalid option value")
        self.change_active_slave(s)

    def primary_changed(self) -> None:
        """``bond_option_primary_set``: find the slave by name, reselect."""
        self.primary_slave = next((s for s in self.slaves
                                   if s.dev.name == self.params.primary), None)
        if self.primary_slave is not None:
            self.force_primary = True
        if self.uses_primary():
            self.select_active_slave()

    def change_active_slave(self, new: Slave | None) -> None:
        """``bond_change_active_slave``."""
        old = self.curr_active
        if old is new:
            return
        p = self.params
        if new is not None:
            new.last_link_up = self._now()
            if new.link == BOND_LINK_BACK:
                new.delay = 0
                new.link = BOND_LINK_UP
                if p.mode == BOND_MODE_8023AD:
                    self.ad.handle_link_change(new, True)
        if self.uses_primary():
            # bond_hw_addr_swap: the bond's promiscuity/allmulti move to the new active
            bits = self.flags & 0x300
            if old is not None and bits:
                old.dev.flags &= ~bits
            if new is not None and bits:
                new.dev.flags |= bits
        if self.is_lb():
            self._alb_handle_active_change(new)
            self.curr_active = new
            if old is not None:
                self.set_slave_inactive(old)
            if new is not None:
                self.set_slave_active(new)
        else:
            self.curr_active = new
        if p.mode == BOND_MODE_ACTIVEBACKUP:
            if old is not None:
                self.set_slave_inactive(old)
            if new is not None:
                self.set_slave_active(new)
                if p.fail_over_mac:
                    self._do_fail_over_mac(new, old)
                if self.is_up:
                    self.send_peer_notif = p.num_peer_notif * max(1, p.peer_notif_delay)
                    if self._should_notify_peers():
                        self.send_peer_notif -= 1
                        self.notify_peers()
        # resend IGMP joins since the active slave changed (or all went out on the old
        # one): mcast_work one jiffy later, then every HZ/5, resend_igmp times in all
        if self.is_up and p.resend_igmp > 0 and \
                ((self.uses_primary() and new is not None) or p.mode == BOND_MODE_ROUNDROBIN):
            self.igmp_retrans = p.resend_igmp
            self._igmp_timer().mod_in(1_000_000)

    def _igmp_timer(self) -> Any:
        t = self.__dict__.get("_mcast_work")
        if t is None:
            t = self.__dict__["_mcast_work"] = self.world.clock.timer(self._resend_igmp)
        return t

    def _resend_igmp(self) -> None:
        """``bond_resend_igmp_join_requests_delayed``: NETDEV_RESEND_IGMP on the bond
        (netstack/ipv4/igmp.py ``ip_mc_rejoin_groups`` answers it)."""
        if self.net is not None:
            self.net.notify("RESEND_IGMP", self)
        if self.igmp_retrans > 1:
            self.igmp_retrans -= 1
            self._igmp_timer().mod_in(200_000_000)

    def _do_fail_over_mac(self, new: Slave, old: Slave | None) -> None:
        """``bond_do_fail_over_mac``."""
        fom = self.params.fail_over_mac
        if fom == BOND_FOM_ACTIVE:
            self._set_mac(self, new.dev.address)
        elif fom == BOND_FOM_FOLLOW:
            if old is None:
                old = next((s for s in self.slaves
                            if s is not new and s.dev.address == self.address), None)
            if old is not None:
                self._swap_mac(new, old, learn=False)
            else:
                self._set_mac(new.dev, self.address)

    def _alb_handle_active_change(self, new: Slave | None) -> None:
        """``bond_alb_handle_active_change``: the new active slave takes the bond MAC; the
        slave that had it takes the new one's (``alb_swap_mac_addr``); learning packets
        announce both."""
        from netstack.drivers.bonding.bond_alb import send_learning_packet
        if new is None:
            return
        swap = self.curr_active
        if swap is None or swap.dev.address != self.address:
            swap = next((s for s in self.slaves
                         if s is not new and s.dev.address == self.address), None)
        if self.alb is not None:
            if swap is not None:
                self.alb.tlb_clear_slave(swap, True)
            self.alb.tlb_clear_slave(new, True)
        if swap is not None:
            self._swap_mac(new, swap, learn=True)
        else:
            self._set_mac(new.dev, self.address)
            if new.dev.running():
                send_learning_packet(new)

    def _should_notify_peers(self) -> bool:
        """``bond_should_notify_peers``."""
        if not self.send_peer_notif \
                or self.send_peer_notif % max(1, self.params.peer_notif_delay) != 0 \
                or not self.carrier:
            return False
        if self.params.mode == BOND_MODE_8023AD:
            return bool(self.usable_slaves)
        return self.curr_active is not None

    def notify_peers(self) -> None:
        """``NETDEV_NOTIFY_PEERS``: gratuitous ARP per IPv4 address
        (``inetdev_send_gratuitous_arp``) and an unsolicited NA per usable IPv6 address
        (``ndisc_send_unsol_na``)."""
        net = self.net
        if net is None:
            return
        if self.ip_ptr is not None:
            from netstack.ipv4.arp import inetdev_send_gratuitous_arp
            inetdev_send_gratuitous_arp(self)
        if self.ip6_ptr is not None:
            from netstack.ipv6.addrconf import IFA_F_OPTIMISTIC, IFA_F_TENTATIVE, inet6_addrs
            from netstack.ipv6.ndisc import ndisc_send_na
            router = bool(self.ip6_ptr.cnf("forwarding"))
            for ifa in inet6_addrs(self):
                if ifa.flags & IFA_F_TENTATIVE and not ifa.flags & IFA_F_OPTIMISTIC:
                    continue
                ndisc_send_na(net, self, ALL_NODES, ifa.local, router, False, True, True)

    def ad_cond_set_peer_notif(self) -> None:
        """``ad_cond_set_peer_notif`` (6.17): a port entering collecting/distributing
        re-arms the peer notifications when broadcast_neighbor is on
        (``bond_peer_notify_reset``); the miimon work sends them."""
        if self.params.broadcast_neighbor:
            p = self.params
            self.send_peer_notif = p.num_peer_notif * max(1, p.peer_notif_delay)

    def ad_actor_changed(self) -> None:
        if self.params.mode == BOND_MODE_8023AD:
            self.ad.update_actor_system()

    # ------------------------------------------------------------- xmit
    def _tx_drop(self, pkt: "Packet") -> None:
        """``bond_tx_drop``."""
        self._stats.tx_dropped += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)

    def _slave_by_id(self, slave_id: int) -> Slave | None:
        """``bond_get_slave_by_id``."""
        n = len(self.slaves)
        for i in list(range(slave_id, n)) + list(range(0, min(slave_id, n))):
            if self.slaves[i].can_tx():
                return self.slaves[i]
        return None

    def _rr_slave(self, pkt: "Packet") -> Slave | None:
        """``bond_xmit_roundrobin_slave_get``: IGMP on the active slave."""
        buf, off = pkt.buf, pkt.data
        proto = pkt.protocol or ((buf[off + 12] << 8) | buf[off + 13])
        if proto == 0x0800 and pkt.tail - off >= 34 and buf[off + 23] == 2:
            if self.curr_active is not None:
                return self.curr_active
            return self._slave_by_id(0)
        n = len(self.slaves)
        if not n:
            return None
        pps = self.params.packets_per_slave
        if pps == 0:
            slave_id = self.world.rng.getrandbits(32)
        else:
            self.rr_tx_counter = (self.rr_tx_counter + 1) & 0xFFFFFFFF
            slave_id = self.rr_tx_counter // pps
        return self._slave_by_id(slave_id % n)

    def select_tx(self, pkt: "Packet") -> list[Slave]:
        """The slave(s) ``__bond_start_xmit`` sends one packet on ([] = drop)."""
        mode = self.params.mode
        if mode == BOND_MODE_ROUNDROBIN:
            s = self._rr_slave(pkt)
        elif mode == BOND_MODE_ACTIVEBACKUP:
            s = self.curr_active
        elif mode in (BOND_MODE_XOR, BOND_MODE_8023AD):
            if bond_ns.should_broadcast_neighbor(self, pkt):
                # bond_xmit_broadcast(skb, dev, false): the usable slaves that are up
                return [x for x in self.usable_slaves
                        if x.is_up() and x.link == BOND_LINK_UP]
            arr = self.usable_slaves
            s = arr[pkt_xmit_hash(self.params.xmit_policy, pkt) % len(arr)] if arr else None
        elif mode == BOND_MODE_BROADCAST:
            return [x for x in self.slaves if x.is_up() and x.link == BOND_LINK_UP]
        else:
            alb = self.alb
            s = alb.do_xmit(pkt, alb.xmit_slave(pkt)) if alb is not None else None
        return [s] if s is not None else []

    def start_xmit(self, pkt: "Packet", more: bool) -> None:
        self.start_xmit_list([pkt])

    def start_xmit_list(self, pkts: list["Packet"]) -> None:
        """``bond_start_xmit`` for a batch: per-slave sublists keep the batch (one
        ``dev_queue_xmit_list`` per slave)."""
        if not self.slaves:
            for p in pkts:
                self._tx_drop(p)
            return
        per: dict[int, tuple[Slave, list[Packet]]] = {}
        for p in pkts:
            if p.trace is not None:
                p.trace.event(p, "bond_start_xmit", info=f"dev={self.name}")
            targets = self.select_tx(p)
            if not targets:
                if self.params.mode == BOND_MODE_BROADCAST:
                    self._stats.tx_dropped += 1
                    kfree_skb_reason(p, "NOT_SPECIFIED", self.net)
                else:
                    self._tx_drop(p)
                continue
            for i, s in enumerate(targets):
                q = p if i == len(targets) - 1 else p.clone()
                q.dev = s.dev
                per.setdefault(id(s), (s, []))[1].append(q)
        for s, lst in per.values():
            dev_queue_xmit_list(s.dev, lst)

    # ------------------------------------------------------------- receive
    def _handle_frame(self, pkt: "Packet") -> tuple[RxHandlerResult, "Packet"]:
        """``bond_handle_frame``: recv_probe (LACPDUs / ARP validation / RLB), the
        exact-match rule for inactive slaves, then the packet becomes the bond's."""
        s: Slave = pkt.dev.rx_handler_data  # type: ignore[union-attr]
        mode = self.params.mode
        if self.is_up:
            if mode == BOND_MODE_8023AD:
                if self._lacp_recv(pkt, s):
                    return RxHandlerResult.CONSUMED, pkt
            elif self.params.arp_interval:
                self._rcv_validate(pkt, s)
            elif mode == BOND_MODE_ALB and self.alb is not None and pkt.protocol == ETH_P_ARP:
                self.alb.rlb_arp_recv(pkt)
        if s.inactive and not (mode == BOND_MODE_ALB and pkt.pkt_type not in (1, 2)):
            buf, m = pkt.buf, pkt.mac_header
            if buf[m:m + 5] == b"\x01\x80\xc2\x00\x00" and not buf[m + 5] & 0xF0:
                return RxHandlerResult.PASS, pkt
            # RX_HANDLER_EXACT: only ptype handlers bound to the slave itself would get it;
            # netstack's protocol handlers are all device-less.
            dev = pkt.dev
            if not dev.net.rx_taps.get(dev.ifindex):  # type: ignore[union-attr]
                dev.stats.rx_nohandler += 1  # type: ignore[union-attr]
                kfree_skb_reason(pkt, "UNHANDLED_PROTO", dev.net)  # type: ignore[union-attr]
            else:
                consume_skb(pkt, "bond_handle_frame")
            return RxHandlerResult.CONSUMED, pkt
        pkt.dev = self
        return RxHandlerResult.ANOTHER, pkt

    def _lacp_recv(self, pkt: "Packet", s: Slave) -> bool:
        """``bond_3ad_lacpdu_recv``; malformed PDUs are counted and passed on."""
        if pkt.protocol != ad.PKT_TYPE_LACPDU:
            return False
        m = pkt.mac_header
        if bytes(pkt.buf[m:m + 6]) != ad.LACPDU_MCAST or s.ad_port is None:
            return False
        data = memoryview(pkt.buf)[pkt.data:pkt.tail]
        try:
            if len(data) < 1:
                raise ParseError("PKT_TOO_SMALL")
            consumed = self.ad.rx_indication(data, s)
        except ParseError:
            s.ad_port.stats.lacpdu_illegal_rx += 1
            self.ad.stats.lacpdu_illegal_rx += 1
            return False
        finally:
            data.release()
        if consumed:
            consume_skb(pkt, "bond_3ad_lacpdu_recv")
        return consumed

    def ad_send(self, s: Slave, frame: bytes) -> bool:
        """``ad_lacpdu_send``/``ad_marker_send``: priority TC_PRIO_CONTROL on the slave."""
        dev = s.dev
        if dev.net is None:
            return False
        pkt = dev.net.world.new_packet(frame)
        pkt.mac_header = pkt.data
        pkt.network_header = pkt.data + 14
        pkt.protocol = ad.PKT_TYPE_LACPDU
        pkt.priority = ad.TC_PRIO_CONTROL
        dev_queue_xmit(pkt, dev)
        return True

    # ------------------------------------------------------------- monitors
    def _ad_tick(self) -> None:
        self.ad.state_machine_handler()
        if self.update_needed:
            self.update_slave_arr()
        if self._ad_timer is not None:
            self._ad_timer.mod_in(ad.AD_TIMER_INTERVAL_NS)

    def _alb_tick(self) -> None:
        if self.alb is not None:
            self.alb.monitor()
        if self._alb_timer is not None:
            self._alb_timer.mod_in(100 * NSEC_PER_MSEC)

    def _mii_tick(self) -> None:
        """``bond_mii_monitor``."""
        if self.slaves:
            notify = self._should_notify_peers()
            commit = self._miimon_inspect()
            if self.send_peer_notif:
                self.send_peer_notif -= 1
            if commit:
                for s in self.slaves:
                    if s.link_new_state != BOND_LINK_NOCHANGE:
                        s.link = s.link_new_state
                self._miimon_commit()
            if notify:
                self.notify_peers()
        if self._mii_timer is not None and self.params.miimon:
            self._mii_timer.mod_in(self.params.miimon * NSEC_PER_MSEC)

    def _miimon_inspect(self) -> int:
        """``bond_miimon_inspect``."""
        p = self.params
        if p.mode == BOND_MODE_ACTIVEBACKUP:
            ignore_updelay = self.curr_active is None
        else:
            ignore_updelay = not self.usable_slaves and p.mode in (BOND_MODE_XOR,
                                                                   BOND_MODE_8023AD,
                                                                   BOND_MODE_TLB,
                                                                   BOND_MODE_ALB)
        commit = 0
        for s in self.slaves:
            s.link_new_state = BOND_LINK_NOCHANGE
            link = s.dev.running()
            st = s.link
            if st == BOND_LINK_UP:
                if link:
                    continue
                s.link_new_state = BOND_LINK_FAIL
                commit += 1
                s.delay = p.downdelay
                st = BOND_LINK_FAIL
            if st == BOND_LINK_FAIL:
                if link:
                    s.link_new_state = BOND_LINK_UP
                    s.last_link_up = self._now()
                    commit += 1
                    continue
                if s.delay <= 0:
                    s.link_new_state = BOND_LINK_DOWN
                    commit += 1
                    continue
                s.delay -= 1
                continue
            if st == BOND_LINK_DOWN:
                if not link:
                    continue
                s.link_new_state = BOND_LINK_BACK
                commit += 1
                s.delay = p.updelay
                st = BOND_LINK_BACK
            if st == BOND_LINK_BACK:
                if not link:
                    s.link_new_state = BOND_LINK_DOWN
                    commit += 1
                    continue
                if ignore_updelay:
                    s.delay = 0
                if s.delay <= 0:
                    s.link_new_state = BOND_LINK_UP
                    commit += 1
                    ignore_updelay = False
                    continue
                s.delay -= 1
        return commit

    def _miimon_commit(self) -> None:
        """``bond_miimon_commit``."""
        p = self.params
        mode = p.mode
        do_failover = False
        for s in self.slaves:
            st = s.link_new_state
            if st == BOND_LINK_NOCHANGE:
                if mode == BOND_MODE_8023AD and s.link == BOND_LINK_UP and s.ad_port:
                    self.ad.update_actor_keys(s.ad_port, False)
                continue
            if st == BOND_LINK_UP:
                s.speed, s.duplex = slave_speed_duplex(s.dev)
                if (s.speed is None or s.duplex is None) and \
                        (mode == BOND_MODE_8023AD or self.is_lb()):
                    s.link = BOND_LINK_DOWN  # "failed to get link speed/duplex"
                    continue
                s.link = BOND_LINK_UP
                s.last_link_up = self._now()
                if mode == BOND_MODE_8023AD:
                    s.backup = BOND_STATE_BACKUP
                elif mode != BOND_MODE_ACTIVEBACKUP:
                    s.backup = BOND_STATE_ACTIVE
                if mode == BOND_MODE_8023AD:
                    self.ad.handle_link_change(s, True)
                if self.is_lb():
                    self._alb_link_change(s, True)
                if mode == BOND_MODE_XOR:
                    self.update_slave_arr()
                active = self.curr_active
                if active is None or s is self.primary_slave or s.prio > active.prio:
                    do_failover = True
            elif st == BOND_LINK_DOWN:
                s.link_failure_count += 1
                s.link = BOND_LINK_DOWN
                if mode in (BOND_MODE_ACTIVEBACKUP, BOND_MODE_8023AD):
                    self.set_slave_inactive(s)
                if mode == BOND_MODE_8023AD:
                    self.ad.handle_link_change(s, False)
                if self.is_lb():
                    self._alb_link_change(s, False)
                if mode == BOND_MODE_XOR:
                    self.update_slave_arr()
                if s is self.curr_active:
                    do_failover = True
        if do_failover:
            self.select_active_slave()
        self.bond_set_carrier()
        self.update_slave_arr()

    def _alb_link_change(self, s: Slave, up: bool) -> None:
        """``bond_alb_handle_link_change``."""
        if self.alb is None:
            return
        if not up:
            self.alb.tlb_clear_slave(s, False)
            if self.alb.rlb_enabled:
                self.alb.rlb_clear_slave(s)
        else:
            self.alb.tx_rebalance_counter = 100
            if self.alb.rlb_enabled:
                self.alb.rlb_update_delay_counter = 0

    # ------------------------------------------------------------ ARP monitor
    def _in_interval(self, last: int, mod: int) -> bool:
        """``bond_time_in_interval`` on the nanosecond clock (jiffies at HZ=1000)."""
        d = self.params.arp_interval * NSEC_PER_MSEC
        now = self._now()
        return last - d <= now <= last + mod * d + d // 2

    def _arp_validate_slave(self, s: Slave) -> bool:
        """``slave_do_arp_validate``."""
        return bool(self.params.arp_validate & (1 << s.backup))

    def _last_rx(self, s: Slave) -> int:
        """``slave_last_rx``: with arp_all_targets all, ``slave_oldest_target_arp_rx`` —
        slot 0 and every further slot that holds an ARP target (the NS monitor writes
        the same slots but is not consulted here, as in the kernel)."""
        if self.params.arp_all_targets == 1 and self._arp_validate_slave(s) \
                and s.target_last_arp_rx:
            n = max(1, len(self.params.arp_targets))
            return min(s.target_last_arp_rx[:n])
        return s.last_rx

    def _rcv_validate(self, pkt: "Packet", s: Slave) -> None:
        """``bond_rcv_validate``: one logic for ARP and NS/NA — without validation any
        frame (with ``filter``: any ARP or IPv6 frame) counts as traffic; with it, ARP
        goes to ``bond_arp_rcv`` and IPv6 to ``bond_na_rcv``."""
        is_arp = pkt.protocol == ETH_P_ARP
        is_ipv6 = pkt.protocol == ETH_P_IPV6
        only = bool(self.params.arp_validate & 4)
        if not self._arp_validate_slave(s):
            if (only and (is_arp or is_ipv6)) or not only:
                s.last_rx = self._now()
            return
        if is_ipv6:
            bond_ns.na_rcv(self, pkt, s)
            return
        if not is_arp:
            return
        buf, a = pkt.buf, pkt.data
        if pkt.tail - a < 28 or buf[a + 4] != 6 or buf[a + 5] != 4 \
                or buf[a:a + 4] != b"\x00\x01\x08\x00" or pkt.pkt_type in (3, 5):
            return
        op = int.from_bytes(buf[a + 6:a + 8], "big")
        sip, tip = bytes(buf[a + 14:a + 18]), bytes(buf[a + 24:a + 28])
        ca, cas = self.curr_active, self.current_arp_slave
        if s.is_active():
            self._validate_arp(s, sip, tip)
        elif ca is not None and self._last_rx(ca) > ca.last_link_up:
            self._validate_arp(s, tip, sip)
        elif cas is not None and op == ARPOP_REPLY and self._in_interval(cas.last_tx, 1):
            self._validate_arp(s, sip, tip)

    def _validate_arp(self, s: Slave, sip: bytes, tip: bytes) -> None:
        """``bond_validate_arp``."""
        if sip == b"\0\0\0\0" or not self.has_ip(tip):
            return
        if sip not in self.params.arp_targets:
            return
        now = self._now()
        s.last_rx = now
        i = self.params.arp_targets.index(sip)
        while len(s.target_last_arp_rx) <= i:
            s.target_last_arp_rx.append(0)
        s.target_last_arp_rx[i] = now

    def _send_validate(self, s: Slave) -> None:
        """``bond_send_validate``: the ARP probes, then the NS probes."""
        self._arp_send_all(s)
        bond_ns.ns_send_all(self, s)

    def _arp_send_all(self, s: Slave) -> None:
        """``bond_arp_send_all``: one request per target whose route leaves by the bond
        (or that has no route), from ``inet_confirm_addr``'s address."""
        from netstack.ipv4.arp import arp_send
        from netstack.ipv4.fib import Flowi4
        from netstack.ipv4.route import ip_route_output
        net = self.net
        assert net is not None
        for t in self.params.arp_targets:
            src = b"\0\0\0\0"
            try:
                rt = ip_route_output(net, Flowi4(daddr=t))
            except KernelError:
                rt = None
            if rt is not None:
                if rt.dev is not self:
                    continue
                src = self._confirm_addr(t)
            arp_send(1, ETH_P_ARP, t, s.dev, src, None, s.dev.address, None)
            s.last_tx = self._now()

    def _confirm_addr(self, dst: bytes) -> bytes:
        """``bond_confirm_addr``: an address of the bond in the target's subnet, else
        the first."""
        from netstack.ipv4.devinet import inet_addrs
        if self.ip_ptr is None:
            return b"\0\0\0\0"
        addrs = inet_addrs(self)
        d = int.from_bytes(dst, "big")
        for a in addrs:
            m = (0xFFFFFFFF << (32 - a.prefixlen)) & 0xFFFFFFFF if a.prefixlen else 0
            if int.from_bytes(a.local, "big") & m == d & m:
                return a.local
        return addrs[0].local if addrs else b"\0\0\0\0"

    def _arp_tick(self) -> None:
        if self.slaves:
            if self.params.mode == BOND_MODE_ACTIVEBACKUP:
                self._ab_arp_mon()
            else:
                self._lb_arp_mon()
        if self._arp_timer is not None and self.params.arp_interval:
            self._arp_timer.mod_in(self.params.arp_interval * NSEC_PER_MSEC)

    def _lb_arp_mon(self) -> None:
        """``bond_loadbalance_arp_mon``."""
        old = self.curr_active
        changed = failover = False
        mm = self.params.missed_max
        for s in self.slaves:
            s.link_new_state = BOND_LINK_NOCHANGE
            if s.link != BOND_LINK_UP:
                if self._in_interval(s.last_tx, 1) and self._in_interval(s.last_rx, 1):
                    s.link_new_state = BOND_LINK_UP
                    changed = True
                    if old is None:
                        failover = True
            elif not self._in_interval(s.last_tx, mm) or not self._in_interval(s.last_rx, mm):
                s.link_new_state = BOND_LINK_DOWN
                changed = True
                s.link_failure_count += 1
                if s is old:
                    failover = True
            if s.is_up():
                self._send_validate(s)
        if changed or failover:
            for s in self.slaves:
                if s.link_new_state != BOND_LINK_NOCHANGE:
                    s.link = s.link_new_state
            if changed:
                self.bond_set_carrier()
                self.update_slave_arr()
            if failover:
                self.select_active_slave()

    def _ab_arp_mon(self) -> None:
        """``bond_activebackup_arp_mon``: inspect, commit, probe."""
        notify = self._should_notify_peers()
        if self._ab_arp_inspect():
            self._ab_arp_commit()
        self._ab_arp_probe()
        if notify:
            self.send_peer_notif -= 1
            self.notify_peers()

    def _ab_arp_inspect(self) -> int:
        """``bond_ab_arp_inspect``."""
        commit = 0
        mm = self.params.missed_max
        for s in self.slaves:
            s.link_new_state = BOND_LINK_NOCHANGE
            last_rx = self._last_rx(s)
            if s.link != BOND_LINK_UP:
                if self._in_interval(last_rx, 1):
                    s.link_new_state = BOND_LINK_UP
                    commit += 1
                elif s.link == BOND_LINK_BACK:
                    s.link_new_state = BOND_LINK_FAIL
                    commit += 1
                continue
            if self._in_interval(s.last_link_up, 2):
                continue
            if not s.is_active() and self.current_arp_slave is None \
                    and not self._in_interval(last_rx, mm + 1):
                s.link_new_state = BOND_LINK_DOWN
                commit += 1
            if s.is_active() and (not self._in_interval(s.last_tx, mm)
                                  or not self._in_interval(last_rx, mm)):
                s.link_new_state = BOND_LINK_DOWN
                commit += 1
        return commit

    def _ab_arp_commit(self) -> None:
        """``bond_ab_arp_commit``."""
        failover = False
        for s in self.slaves:
            st = s.link_new_state
            if st == BOND_LINK_UP:
                cur = self.curr_active
                if cur is not s or (cur is None and self._in_interval(s.last_tx, 1)):
                    s.link = BOND_LINK_UP
                    if self.current_arp_slave is not None:
                        self.set_slave_inactive(self.current_arp_slave)
                        self.current_arp_slave = None
                    if cur is None or s is self.primary_slave or s.prio > cur.prio:
                        failover = True
            elif st == BOND_LINK_DOWN:
                s.link_failure_count += 1
                s.link = BOND_LINK_DOWN
                self.set_slave_inactive(s)
                if s is self.curr_active:
                    self.current_arp_slave = None
                    failover = True
            elif st == BOND_LINK_FAIL:
                s.link = BOND_LINK_FAIL
                self.set_slave_inactive(s)
                if self.curr_active is not None:
                    self.current_arp_slave = None
        if failover:
            self.select_active_slave()
        self.bond_set_carrier()

    def _ab_arp_probe(self) -> None:
        """``bond_ab_arp_probe``: probe on the active slave, or try the next backup."""
        if self.curr_active is not None:
            self._send_validate(self.curr_active)
            return
        cas = self.current_arp_slave or (self.slaves[0] if self.slaves else None)
        if cas is None:
            return
        before = new = None
        found = False
        for s in self.slaves:
            if not found and before is None and s.is_up():
                before = s
            if found and new is None and s.is_up():
                new = s
            if not s.is_up() and s.link == BOND_LINK_UP:
                s.link = BOND_LINK_DOWN
                s.link_failure_count += 1
                self.set_slave_inactive(s)
            if s is cas:
                found = True
        if new is None:
            new = before
        if new is None:
            return
        new.link = BOND_LINK_BACK
        self.set_slave_active(new)
        self._send_validate(new)
        new.last_link_up = self._now()
        self.current_arp_slave = new

    # ------------------------------------------------------------- status
    def slave_info(self, slave: NetDevice) -> tuple[str, str, dict[str, Any]] | None:
        """``bond_fill_slave_info`` printed by iproute2's ``bond_slave_print_opt``."""
        from netstack.cli.iplink_bond_slave import slave_info_output
        s = self.slave_of(slave)
        if s is None:
            return None
        text, js = slave_info_output(self, s)
        return "bond_slave", text, js


class _BondStats(LinkStats):
    """The summed counters; a write (e.g. ``tx_dropped += 1`` by the core when the bond
    is down) lands in the bond's own counters."""

    def __init__(self, bond: BondDevice, total: LinkStats) -> None:
        super().__init__(**total.as_dict())
        object.__setattr__(self, "_bond", bond)

    def __setattr__(self, name: str, value: int) -> None:
        bond = self.__dict__.get("_bond") if hasattr(self, "__dict__") else None
        if bond is not None:
            own = bond._stats
            setattr(own, name, getattr(own, name) + value - getattr(self, name))
        object.__setattr__(self, name, value)


def bond_netdev_event(event: str, dev: NetDevice) -> None:
    """``bond_netdev_event``: a slave's events go to its bond (``bond_slave_netdev_event``);
    a bond's own MTU and address changes reach its slaves as ``bond_change_mtu`` and
    ``bond_set_mac_address`` do."""
    m = dev.master
    if isinstance(m, BondDevice):
        m.slave_event(event, dev)
    if isinstance(dev, BondDevice):
        dev.master_event(event)


def register_bond(net: "Net", dev: BondDevice, ifindex: int = 0) -> None:
    """``bond_newlink``: register (carrier off until a slave is up) and hook the
    world's netdevice notifier once."""
    world = net.world
    if bond_netdev_event not in world.netdev_notifiers:
        world.netdev_notifiers.append(bond_netdev_event)
    net.register_netdevice(dev, ifindex=ifindex)
