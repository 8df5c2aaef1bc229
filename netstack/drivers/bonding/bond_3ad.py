"""IEEE 802.3ad / 802.1AX link aggregation (drivers/net/bonding/bond_3ad.c,
include/net/bond_3ad.h).

What is reproduced, function by function, from bond_3ad.c:

- the LACPDU and Marker PDU layouts (``struct lacpdu``/``struct bond_marker``, 110 bytes
  after the Ethernet header, sent to 01:80:c2:00:00:02 with EtherType 0x8809 from the
  slave's permanent address) — :class:`Lacpdu`, :func:`lacpdu_frame`;
- the per-port state machines run every ``AD_TIMER_INTERVAL`` (100 ms) by
  ``bond_3ad_state_machine_handler`` in the order rx, periodic, port selection, mux, tx,
  churn, with the timers counted in those 100 ms ticks (``__ad_timer_to_ticks``);
- aggregator selection (``ad_agg_selection_logic``/``ad_agg_selection_test``) for
  ad_select stable, bandwidth and count; carrier from the active aggregator and
  ``min_links`` (``bond_3ad_set_carrier``);
- link changes (``bond_3ad_handle_link_change``: keys from speed/duplex, a speed change
  restarts the port), bind/unbind of slaves (``bond_3ad_bind_slave``/``unbind_slave``).
- the 6.17 passive-LACP rules (``lacp_active off``: the Actor LACP_Activity bit follows
  the option, the partner admin template and EXPIRED no longer make the partner active,
  so the periodic machine idles only while both ends are passive) and the independent
  control mux machine (``coupled_control off``: ATTACHED → COLLECTING → DISTRIBUTING,
  IEEE 802.1AX-2008 5.4.15).

Receive (``bond_3ad_lacpdu_recv``): a frame shorter than a LACPDU counts
``lacpdu_illegal_rx`` and is not consumed; unknown subtypes count ``unknown_rx``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netstack.packet.errors import ParseError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.drivers.bonding.bond_main import BondDevice, Slave

# ---------------------------------------------------------------- constants (bond_3ad.h)
LACPDU_MCAST = bytes.fromhex("0180c2000002")
PKT_TYPE_LACPDU = 0x8809
AD_TYPE_LACPDU = 1
AD_TYPE_MARKER = 2
AD_MARKER_INFORMATION_SUBTYPE = 1
AD_MARKER_RESPONSE_SUBTYPE = 2
LACPDU_LEN = 110
TC_PRIO_CONTROL = 7

LACP_STATE_LACP_ACTIVITY = 0x1
LACP_STATE_LACP_TIMEOUT = 0x2
LACP_STATE_AGGREGATION = 0x4
LACP_STATE_SYNCHRONIZATION = 0x8
LACP_STATE_COLLECTING = 0x10
LACP_STATE_DISTRIBUTING = 0x20
LACP_STATE_DEFAULTED = 0x40
LACP_STATE_EXPIRED = 0x80

AD_PORT_BEGIN = 0x1
AD_PORT_LACP_ENABLED = 0x2
AD_PORT_ACTOR_CHURN = 0x4
AD_PORT_PARTNER_CHURN = 0x8
AD_PORT_READY = 0x10
AD_PORT_READY_N = 0x20
AD_PORT_MATCHED = 0x40
AD_PORT_STANDBY = 0x80
AD_PORT_SELECTED = 0x100
AD_PORT_MOVED = 0x200
AD_PORT_CHURNED = AD_PORT_ACTOR_CHURN | AD_PORT_PARTNER_CHURN

# rx_states_t
AD_RX_DUMMY, AD_RX_INITIALIZE, AD_RX_PORT_DISABLED, AD_RX_LACP_DISABLED, AD_RX_EXPIRED, \
    AD_RX_DEFAULTED, AD_RX_CURRENT = range(7)
# periodic_states_t
AD_PERIODIC_DUMMY, AD_NO_PERIODIC, AD_FAST_PERIODIC, AD_SLOW_PERIODIC, AD_PERIODIC_TX = range(5)
# mux_states_t
AD_MUX_DUMMY, AD_MUX_DETACHED, AD_MUX_WAITING, AD_MUX_ATTACHED, AD_MUX_COLLECTING, \
    AD_MUX_DISTRIBUTING, AD_MUX_COLLECTING_DISTRIBUTING = range(7)
# churn_state_t
AD_CHURN_MONITOR, AD_CHURN, AD_NO_CHURN = range(3)
CHURN_DESC = {AD_CHURN_MONITOR: "monitoring", AD_CHURN: "churned", AD_NO_CHURN: "none"}

AD_TICKS_PER_SEC = 10            # ad_ticks_per_sec with AD_TIMER_INTERVAL = 100 ms
AD_TIMER_INTERVAL_NS = 100_000_000
AD_FAST_PERIODIC_TIME = 1
AD_SLOW_PERIODIC_TIME = 30
AD_SHORT_TIMEOUT_TIME = 3 * AD_FAST_PERIODIC_TIME
AD_LONG_TIMEOUT_TIME = 3 * AD_SLOW_PERIODIC_TIME
AD_CHURN_DETECTION_TIME = 60
AD_AGGREGATE_WAIT_TIME = 2
AD_AGGREGATOR_SELECTION_TIMER = 8
AD_MAX_TX_IN_SECOND = 3
AD_COLLECTOR_MAX_DELAY = 0

AD_DUPLEX_KEY_MASKS = 0x1
AD_SPEED_KEY_MASKS = 0x3E
AD_USER_KEY_MASKS = 0xFFC0

BOND_AD_STABLE, BOND_AD_BANDWIDTH, BOND_AD_COUNT = 0, 1, 2

#: enum ad_link_speed_type: Mbit/s → code (AD_LINK_SPEED_1MBPS = 1 …)
_SPEED_CODES = {1: 1, 10: 2, 100: 3, 1000: 4, 2500: 5, 5000: 6, 10000: 7, 14000: 8,
                20000: 9, 25000: 10, 40000: 11, 50000: 12, 56000: 13, 100000: 14,
                200000: 15, 400000: 16, 800000: 17}
_CODE_MBPS = {v: k for k, v in _SPEED_CODES.items()}

BOND_LINK_UP = 0

# ------------------------------------------------------------------ the PDU codecs
_LACPDU = struct.Struct("!BBBBH6sHHHB3sBBH6sHHHB3sBBH12sBB50s")


@dataclass
class Lacpdu:
    """``struct lacpdu`` (include/net/bond_3ad.h), fields in host order."""

    actor_system_priority: int = 0
    actor_system: bytes = b"\0" * 6
    actor_key: int = 0
    actor_port_priority: int = 0
    actor_port: int = 0
    actor_state: int = 0
    partner_system_priority: int = 0
    partner_system: bytes = b"\0" * 6
    partner_key: int = 0
    partner_port_priority: int = 0
    partner_port: int = 0
    partner_state: int = 0
    collector_max_delay: int = AD_COLLECTOR_MAX_DELAY
    subtype: int = AD_TYPE_LACPDU
    version_number: int = 1
    #: TLV type/length octets as received (the kernel does not check them)
    tlvs: tuple[int, ...] = (1, 0x14, 2, 0x14, 3, 0x10, 0, 0)

    def build(self) -> bytes:
        t = self.tlvs
        return _LACPDU.pack(
            self.subtype, self.version_number, t[0], t[1],
            self.actor_system_priority, self.actor_system, self.actor_key,
            self.actor_port_priority, self.actor_port, self.actor_state, b"\0" * 3,
            t[2], t[3], self.partner_system_priority, self.partner_system,
            self.partner_key, self.partner_port_priority, self.partner_port,
            self.partner_state, b"\0" * 3, t[4], t[5], self.collector_max_delay,
            b"\0" * 12, t[6], t[7], b"\0" * 50)

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> "Lacpdu":
        """``skb_header_pointer(skb, 0, sizeof(struct lacpdu))``: only the length is
        checked; ParseError when shorter."""
        if len(data) < LACPDU_LEN:
            raise ParseError("PKT_TOO_SMALL")
        f = _LACPDU.unpack_from(bytes(data[:LACPDU_LEN]))
        return cls(actor_system_priority=f[4], actor_system=f[5], actor_key=f[6],
                   actor_port_priority=f[7], actor_port=f[8], actor_state=f[9],
                   partner_system_priority=f[13], partner_system=f[14], partner_key=f[15],
                   partner_port_priority=f[16], partner_port=f[17], partner_state=f[18],
                   collector_max_delay=f[22], subtype=f[0], version_number=f[1],
                   tlvs=(f[2], f[3], f[11], f[12], f[20], f[21], f[24], f[25]))


_MARKER = struct.Struct("!BBBBH6sI2sBB90s")


@dataclass
class Marker:
    """``struct bond_marker``."""

    tlv_type: int = AD_MARKER_INFORMATION_SUBTYPE
    requester_port: int = 0
    requester_system: bytes = b"\0" * 6
    requester_transaction_id: int = 0
    raw: bytes = b""

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> "Marker":
        if len(data) < LACPDU_LEN:
            raise ParseError("PKT_TOO_SMALL")
        b = bytes(data[:LACPDU_LEN])
        f = _MARKER.unpack_from(b)
        return cls(tlv_type=f[2], requester_port=f[4], requester_system=f[5],
                   requester_transaction_id=f[6], raw=b)


def lacpdu_frame(src: bytes, payload: bytes) -> bytes:
    """``ad_lacpdu_send``/``ad_marker_send``: Ethernet header + the 110-byte PDU."""
    return LACPDU_MCAST + src + PKT_TYPE_LACPDU.to_bytes(2, "big") + payload


# ------------------------------------------------------------------ state objects
@dataclass
class PortParams:
    """``struct port_params``."""

    system: bytes = b"\0" * 6
    system_priority: int = 0xFFFF
    key: int = 1
    port_number: int = 1
    port_priority: int = 0xFF
    #: ``ad_initialize_port``'s template: 0 since 6.17 (a defaulted partner is not
    #: assumed to be LACP-active — "send LACPDUs periodically in passive mode")
    port_state: int = 0

    def copy(self) -> "PortParams":
        return PortParams(self.system, self.system_priority, self.key, self.port_number,
                          self.port_priority, self.port_state)


@dataclass(eq=False)
class Aggregator:
    """``struct aggregator``: one per slave, the one of the slave's id."""

    slave: Any = None
    aggregator_identifier: int = 0
    aggregator_mac_address: bytes = b"\0" * 6
    is_individual: bool = False
    actor_admin_aggregator_key: int = 0
    actor_oper_aggregator_key: int = 0
    partner_system: bytes = b"\0" * 6
    partner_system_priority: int = 0
    partner_oper_aggregator_key: int = 0
    receive_state: int = 0
    transmit_state: int = 0
    lag_ports: "Port | None" = None
    is_active: int = 0
    num_of_ports: int = 0

    def clear(self) -> None:
        """``ad_clear_agg``."""
        self.is_individual = False
        self.actor_admin_aggregator_key = 0
        self.actor_oper_aggregator_key = 0
        self.partner_system = b"\0" * 6
        self.partner_system_priority = 0
        self.partner_oper_aggregator_key = 0
        self.receive_state = 0
        self.transmit_state = 0
        self.lag_ports = None
        self.is_active = 0
        self.num_of_ports = 0

    def ports(self) -> list["Port"]:
        out, p = [], self.lag_ports
        while p is not None:
            out.append(p)
            p = p.next_port_in_aggregator
        return out

    def has_partner(self) -> bool:
        """``__agg_has_partner``."""
        return self.partner_system != b"\0" * 6

    def active_ports(self) -> int:
        """``__agg_active_ports``: ports whose link is enabled."""
        return sum(1 for p in self.ports() if p.is_enabled)

    def device_up(self) -> bool:
        """``agg_device_up``."""
        return any(p.slave.dev.running() for p in self.ports())

    def bandwidth(self) -> int:
        """``__get_agg_bandwidth``: ports × the first port's speed in Mbit/s."""
        if not self.num_of_ports or self.lag_ports is None:
            return 0
        return self.num_of_ports * _CODE_MBPS.get(self.lag_ports.link_speed(), 0)


@dataclass
class AdStats:
    """``struct bond_3ad_stats``."""

    lacpdu_rx: int = 0
    lacpdu_tx: int = 0
    lacpdu_unknown_rx: int = 0
    lacpdu_illegal_rx: int = 0
    marker_rx: int = 0
    marker_tx: int = 0
    marker_resp_rx: int = 0
    marker_resp_tx: int = 0
    marker_unknown_rx: int = 0


@dataclass(eq=False)
class Port:
    """``struct port``: the per-slave LACP state."""

    slave: Any
    actor_port_number: int = 1
    actor_port_priority: int = 0xFF
    actor_system: bytes = b"\0" * 6
    actor_system_priority: int = 0xFFFF
    actor_port_aggregator_identifier: int = 0
    ntt: bool = False
    actor_admin_port_key: int = 0
    actor_oper_port_key: int = 0
    actor_admin_port_state: int = 0
    actor_oper_port_state: int = 0
    partner_admin: PortParams = field(default_factory=PortParams)
    partner_oper: PortParams = field(default_factory=PortParams)
    is_enabled: bool = True
    sm_vars: int = 0
    sm_rx_state: int = 0
    sm_rx_timer_counter: int = 0
    sm_periodic_state: int = 0
    sm_periodic_timer_counter: int = 0
    sm_mux_state: int = 0
    sm_mux_timer_counter: int = 0
    sm_tx_state: int = 0
    sm_tx_timer_counter: int = 0
    sm_churn_actor_timer_counter: int = 0
    sm_churn_partner_timer_counter: int = 0
    churn_actor_count: int = 0
    churn_partner_count: int = 0
    sm_churn_actor_state: int = 0
    sm_churn_partner_state: int = 0
    aggregator: Aggregator | None = None
    next_port_in_aggregator: "Port | None" = None
    stats: AdStats = field(default_factory=AdStats)

    def link_speed(self) -> int:
        """``__get_link_speed``: the ad_link_speed_type code, 0 when down/unknown."""
        s = self.slave
        if s.link != BOND_LINK_UP or s.speed is None:
            return 0
        return _SPEED_CODES.get(s.speed, 0)

    def duplex(self) -> int:
        """``__get_duplex``."""
        s = self.slave
        return 1 if s.link == BOND_LINK_UP and s.duplex == 1 else 0


def _ticks_current_while(short: bool) -> int:
    return (AD_SHORT_TIMEOUT_TIME if short else AD_LONG_TIMEOUT_TIME) * AD_TICKS_PER_SEC


class Bond3ad:
    """``struct ad_bond_info`` plus the machines that run over the bond's ports."""

    def __init__(self, bond: "BondDevice") -> None:
        self.bond = bond
        self.aggregator_identifier = 0
        self.sys_priority = 0xFFFF
        self.sys_mac = b"\0" * 6
        self.agg_select_timer = 0
        self.stats = AdStats()

    # ------------------------------------------------------------- set-up
    def initialize(self) -> None:
        """``bond_3ad_initialize`` (first slave): only when the system MAC is not the
        bond's already ("not initialized yet")."""
        p = self.bond.params
        if self.sys_mac == self.bond.address:
            return
        self.aggregator_identifier = 0
        self.sys_priority = p.ad_actor_sys_prio
        self.sys_mac = p.ad_actor_system if p.ad_actor_system != b"\0" * 6 \
            else self.bond.address
        self.agg_select_timer = AD_AGGREGATOR_SELECTION_TIMER * AD_TICKS_PER_SEC

    def update_actor_system(self) -> None:
        """``bond_3ad_update_ad_actor_settings``: ports follow the system id/priority."""
        p = self.bond.params
        self.sys_priority = p.ad_actor_sys_prio
        self.sys_mac = p.ad_actor_system if p.ad_actor_system != b"\0" * 6 \
            else self.bond.address
        for s in self.bond.slaves:
            port = s.ad_port
            port.actor_system = self.sys_mac
            port.actor_system_priority = self.sys_priority
            port.ntt = True

    def update_lacp_rate(self) -> None:
        """``bond_3ad_update_lacp_rate``: the ports' Timeout bit follows lacp_rate."""
        for s in self.bond.slaves:
            if s.ad_port is None:
                continue
            if self.bond.params.lacp_fast:
                s.ad_port.actor_oper_port_state |= LACP_STATE_LACP_TIMEOUT
            else:
                s.ad_port.actor_oper_port_state &= ~LACP_STATE_LACP_TIMEOUT

    def update_lacp_active(self) -> None:
        """``bond_3ad_update_lacp_active`` (6.17): the ports' Actor LACP_Activity bit
        follows lacp_active."""
        for s in self.bond.slaves:
            if s.ad_port is None:
                continue
            if self.bond.params.lacp_active:
                s.ad_port.actor_oper_port_state |= LACP_STATE_LACP_ACTIVITY
            else:
                s.ad_port.actor_oper_port_state &= ~LACP_STATE_LACP_ACTIVITY

    def bind_slave(self, slave: "Slave") -> None:
        """``bond_3ad_bind_slave``: port and aggregator initialisation."""
        params = self.bond.params
        port = Port(slave)
        slave.ad_port = port
        port.actor_admin_port_state = LACP_STATE_AGGREGATION
        if params.lacp_active:
            port.actor_admin_port_state |= LACP_STATE_LACP_ACTIVITY
        port.actor_oper_port_state = port.actor_admin_port_state
        if params.lacp_fast:
            port.actor_oper_port_state |= LACP_STATE_LACP_TIMEOUT
        port.sm_vars = AD_PORT_BEGIN | AD_PORT_LACP_ENABLED
        port.actor_port_number = slave.ad_id
        port.actor_admin_port_key = params.ad_user_port_key << 6
        self.update_actor_keys(port, False)
        port.actor_system = self.sys_mac
        port.actor_system_priority = self.sys_priority
        port.sm_tx_timer_counter = AD_TICKS_PER_SEC // AD_MAX_TX_IN_SECOND
        self.bond.set_slave_inactive(slave)
        self.aggregator_identifier += 1
        slave.ad_agg = Aggregator(slave=slave, aggregator_identifier=self.aggregator_identifier,
                                  aggregator_mac_address=self.bond.address)

    def update_actor_keys(self, port: Port, reset: bool) -> None:
        """``ad_update_actor_keys``: speed (bits 1-5) and duplex (bit 0) in the key; a
        speed change on a full-duplex link restarts the port's machines."""
        old = port.actor_oper_port_key
        port.actor_admin_port_key &= ~(AD_SPEED_KEY_MASKS | AD_DUPLEX_KEY_MASKS)
        speed = duplex = 0
        if not reset:
            speed = port.link_speed()
            duplex = port.duplex()
            port.actor_admin_port_key |= (speed << 1) | duplex
        port.actor_oper_port_key = port.actor_admin_port_key
        if old != port.actor_oper_port_key:
            # only a full-duplex port takes part in LACP
            if duplex:
                port.sm_vars |= AD_PORT_LACP_ENABLED
            else:
                port.sm_vars &= ~AD_PORT_LACP_ENABLED
            if not reset and speed and duplex and ((old & AD_SPEED_KEY_MASKS) >> 1) != speed:
                port.sm_vars |= AD_PORT_BEGIN

    def unbind_slave(self, slave: "Slave") -> None:
        """``bond_3ad_unbind_slave``: a last LACPDU tells the partner the port is not
        aggregatable; other ports of the slave's aggregator move to the first aggregator
        that is empty or holds only this port (parameters copied); the port leaves its
        aggregator, which is cleared when no enabled port is left; an active aggregator
        removed triggers a new selection."""
        port: Port = slave.ad_port
        agg: Aggregator = slave.ad_agg
        port.actor_oper_port_state &= ~(LACP_STATE_SYNCHRONIZATION | LACP_STATE_COLLECTING
                                        | LACP_STATE_DISTRIBUTING | LACP_STATE_AGGREGATION)
        self._send_lacpdu(port)
        slaves = self.bond.slaves
        first = slaves[0].ad_agg if slaves else None
        if agg.lag_ports is not None:
            if agg.lag_ports is not port or agg.lag_ports.next_port_in_aggregator is not None:
                new = next((s.ad_agg for s in slaves
                            if s.ad_agg.lag_ports is None
                            or (s.ad_agg.lag_ports is port
                                and port.next_port_in_aggregator is None)), None)
                if new is not None:
                    select = new.lag_ports is port and bool(new.is_active)
                    for name in ("is_individual", "actor_admin_aggregator_key",
                                 "actor_oper_aggregator_key", "partner_system",
                                 "partner_system_priority", "partner_oper_aggregator_key",
                                 "receive_state", "transmit_state", "lag_ports", "is_active",
                                 "num_of_ports"):
                        setattr(new, name, getattr(agg, name))
                    for p in new.ports():
                        p.aggregator = new
                        p.actor_port_aggregator_identifier = new.aggregator_identifier
                    agg.clear()
                    if select and first is not None:
                        self.agg_selection_logic(first)
            else:
                select = bool(agg.is_active)
                agg.clear()
                if select and first is not None:
                    self.agg_selection_logic(first)
        for s in slaves:
            a = s.ad_agg
            prev, cur = None, a.lag_ports
            while cur is not None:
                if cur is port:
                    if prev is None:
                        a.lag_ports = cur.next_port_in_aggregator
                    else:
                        prev.next_port_in_aggregator = cur.next_port_in_aggregator
                    a.num_of_ports -= 1
                    port.aggregator = None
                    port.next_port_in_aggregator = None
                    if a.active_ports() == 0:
                        select = bool(a.is_active)
                        a.clear()
                        if select and first is not None:
                            self.agg_selection_logic(first)
                    break
                prev, cur = cur, cur.next_port_in_aggregator

    # ------------------------------------------------------------ helpers
    def _aggs(self) -> list[Aggregator]:
        return [s.ad_agg for s in self.bond.slaves]

    def active_agg(self) -> Aggregator | None:
        """``__get_active_agg``."""
        for a in self._aggs():
            if a.is_active:
                return a
        return None

    def active_agg_info(self) -> dict[str, Any] | None:
        """``__bond_3ad_get_active_agg_info``."""
        a = self.active_agg()
        if a is None:
            return None
        return {"aggregator_id": a.aggregator_identifier, "ports": a.active_ports(),
                "actor_key": a.actor_oper_aggregator_key,
                "partner_key": a.partner_oper_aggregator_key,
                "partner_system": a.partner_system}

    def _set_agg_ports_ready(self, agg: Aggregator | None, val: bool) -> None:
        if agg is None:
            return
        for p in agg.ports():
            if val:
                p.sm_vars |= AD_PORT_READY
            else:
                p.sm_vars &= ~AD_PORT_READY

    @staticmethod
    def _agg_ports_are_ready(agg: Aggregator | None) -> bool:
        if agg is None:
            return True
        return all(p.sm_vars & AD_PORT_READY_N for p in agg.ports())

    def _enable_port(self, port: Port) -> None:
        """``__enable_port``."""
        s = port.slave
        if s.link == BOND_LINK_UP and s.dev.is_up:
            self.bond.set_slave_active(s)

    def _disable_port(self, port: Port) -> None:
        self.bond.set_slave_inactive(port.slave)

    @staticmethod
    def _enable_collecting_port(port: Port) -> None:
        """``__enable_collecting_port``: ``bond_set_slave_rx_enabled_flags`` (only
        ``rx_disabled``; the slave's ``inactive`` flag is left as it is)."""
        s = port.slave
        if s.link == BOND_LINK_UP and s.dev.is_up:
            s.rx_disabled = False

    def _enable_collecting(self, port: Port) -> None:
        """``ad_enable_collecting``: in an active aggregator only."""
        if port.aggregator is not None and port.aggregator.is_active:
            self._enable_collecting_port(port)

    def _disable_distributing(self, port: Port) -> bool:
        """``ad_disable_distributing``: ``bond_set_slave_tx_disabled_flags`` (backup
        state) when the aggregator has a partner; returns update_slave_arr."""
        if port.aggregator is not None and port.aggregator.has_partner():
            port.slave.backup = 1  # BOND_STATE_BACKUP
            return True
        return False

    # ------------------------------------------------------------ the tick
    def state_machine_handler(self) -> None:
        """``bond_3ad_state_machine_handler``: one 100 ms tick over all ports."""
        bond = self.bond
        if not bond.slaves:
            return
        update = False
        if self.agg_select_timer:
            self.agg_select_timer -= 1
            if self.agg_select_timer == 0:
                self.agg_selection_logic(bond.slaves[0].ad_agg)
                bond.ad_set_carrier()
        for s in list(bond.slaves):
            port = s.ad_port
            self.rx_machine(None, port)
            self.periodic_machine(port)
            update |= self.port_selection_logic(port)
            update |= self.mux_machine(port)
            self.tx_machine(port)
            self.churn_machine(port)
            port.sm_vars &= ~AD_PORT_BEGIN
        if update:
            bond.update_slave_arr()

    # ------------------------------------------------------------ rx machine
    def rx_indication(self, data: bytes | bytearray | memoryview, slave: "Slave") -> bool:
        """``bond_3ad_rx_indication``: True when the PDU was consumed."""
        port: Port = slave.ad_port
        subtype = data[0]
        if subtype == AD_TYPE_LACPDU:
            lacpdu = Lacpdu.parse(data)
            self.rx_machine(lacpdu, port)
            if self.bond.update_needed:
                self.bond.update_slave_arr()
            return True
        if subtype == AD_TYPE_MARKER:
            m = Marker.parse(data)
            if m.tlv_type == AD_MARKER_INFORMATION_SUBTYPE:
                port.stats.marker_rx += 1
                self.stats.marker_rx += 1
                resp = bytearray(m.raw)
                resp[2] = AD_MARKER_RESPONSE_SUBTYPE
                if self.bond.ad_send(slave, lacpdu_frame(slave.perm_hwaddr, bytes(resp))):
                    port.stats.marker_resp_tx += 1
                    self.stats.marker_resp_tx += 1
            elif m.tlv_type == AD_MARKER_RESPONSE_SUBTYPE:
                port.stats.marker_resp_rx += 1
                self.stats.marker_resp_rx += 1
            else:
                port.stats.marker_unknown_rx += 1
                self.stats.marker_unknown_rx += 1
            return True
        port.stats.lacpdu_unknown_rx += 1
        self.stats.lacpdu_unknown_rx += 1
        return False

    def rx_machine(self, lacpdu: Lacpdu | None, port: Port) -> None:
        """``ad_rx_machine``."""
        last = port.sm_rx_state
        if lacpdu is not None:
            port.stats.lacpdu_rx += 1
            self.stats.lacpdu_rx += 1
        if port.sm_vars & AD_PORT_BEGIN:
            port.sm_rx_state = AD_RX_INITIALIZE
            port.sm_vars |= AD_PORT_CHURNED
        elif not port.is_enabled:
            port.sm_rx_state = AD_RX_PORT_DISABLED
        elif lacpdu is not None and port.sm_rx_state in (AD_RX_EXPIRED, AD_RX_DEFAULTED,
                                                         AD_RX_CURRENT):
            if port.sm_rx_state != AD_RX_CURRENT:
                port.sm_vars |= AD_PORT_CHURNED
            port.sm_rx_timer_counter = 0
            port.sm_rx_state = AD_RX_CURRENT
        elif port.sm_rx_timer_counter:
            port.sm_rx_timer_counter -= 1
            if port.sm_rx_timer_counter == 0:
                if port.sm_rx_state == AD_RX_EXPIRED:
                    port.sm_rx_state = AD_RX_DEFAULTED
                elif port.sm_rx_state == AD_RX_CURRENT:
                    port.sm_rx_state = AD_RX_EXPIRED
        elif port.sm_rx_state == AD_RX_PORT_DISABLED:
            if port.sm_vars & AD_PORT_MOVED:
                port.sm_rx_state = AD_RX_INITIALIZE
            elif port.is_enabled and port.sm_vars & AD_PORT_LACP_ENABLED:
                port.sm_rx_state = AD_RX_EXPIRED
            elif port.is_enabled:
                port.sm_rx_state = AD_RX_LACP_DISABLED
        if port.sm_rx_state == last and lacpdu is None:
            return
        st = port.sm_rx_state
        if st == AD_RX_INITIALIZE:
            if not port.actor_oper_port_key & AD_DUPLEX_KEY_MASKS:
                port.sm_vars &= ~AD_PORT_LACP_ENABLED
            else:
                port.sm_vars |= AD_PORT_LACP_ENABLED
            port.sm_vars &= ~AD_PORT_SELECTED
            self._record_default(port)
            port.actor_oper_port_state &= ~LACP_STATE_EXPIRED
            port.sm_rx_state = st = AD_RX_PORT_DISABLED
        if st == AD_RX_PORT_DISABLED:
            port.sm_vars &= ~AD_PORT_MATCHED
        elif st == AD_RX_LACP_DISABLED:
            port.sm_vars &= ~AD_PORT_SELECTED
            self._record_default(port)
            port.partner_oper.port_state &= ~LACP_STATE_AGGREGATION
            port.sm_vars |= AD_PORT_MATCHED
            port.actor_oper_port_state &= ~LACP_STATE_EXPIRED
        elif st == AD_RX_EXPIRED:
            port.partner_oper.port_state &= ~LACP_STATE_SYNCHRONIZATION
            port.sm_vars &= ~AD_PORT_MATCHED
            # 6.17: the partner is no longer assumed LACP-active here
            port.partner_oper.port_state |= LACP_STATE_LACP_TIMEOUT
            port.sm_rx_timer_counter = _ticks_current_while(True)
            port.actor_oper_port_state |= LACP_STATE_EXPIRED
            port.sm_vars |= AD_PORT_CHURNED
        elif st == AD_RX_DEFAULTED:
            self._update_default_selected(port)
            self._record_default(port)
            port.sm_vars |= AD_PORT_MATCHED
            port.actor_oper_port_state &= ~LACP_STATE_EXPIRED
        elif st == AD_RX_CURRENT and lacpdu is not None:
            if lacpdu.actor_system == port.actor_system:
                # "An illegal loopback occurred on slave": ignored
                return
            self._update_selected(lacpdu, port)
            self._update_ntt(lacpdu, port)
            self._record_pdu(lacpdu, port)
            port.sm_rx_timer_counter = _ticks_current_while(
                bool(port.actor_oper_port_state & LACP_STATE_LACP_TIMEOUT))
            port.actor_oper_port_state &= ~LACP_STATE_EXPIRED

    @staticmethod
    def _record_default(port: Port) -> None:
        """``__record_default``."""
        port.partner_oper = port.partner_admin.copy()
        port.actor_oper_port_state |= LACP_STATE_DEFAULTED

    @staticmethod
    def _choose_matched(pdu: Lacpdu, port: Port) -> None:
        """``__choose_matched``."""
        if (pdu.partner_port == port.actor_port_number
                and pdu.partner_port_priority == port.actor_port_priority
                and pdu.partner_system == port.actor_system
                and pdu.partner_system_priority == port.actor_system_priority
                and pdu.partner_key == port.actor_oper_port_key
                and (pdu.partner_state & LACP_STATE_AGGREGATION)
                == (port.actor_oper_port_state & LACP_STATE_AGGREGATION)) \
                or not pdu.actor_state & LACP_STATE_AGGREGATION:
            port.sm_vars |= AD_PORT_MATCHED
        else:
            port.sm_vars &= ~AD_PORT_MATCHED

    def _record_pdu(self, pdu: Lacpdu, port: Port) -> None:
        """``__record_pdu``."""
        self._choose_matched(pdu, port)
        p = port.partner_oper
        p.port_number = pdu.actor_port
        p.port_priority = pdu.actor_port_priority
        p.system = pdu.actor_system
        p.system_priority = pdu.actor_system_priority
        p.key = pdu.actor_key
        p.port_state = pdu.actor_state
        port.actor_oper_port_state &= ~LACP_STATE_DEFAULTED
        if port.sm_vars & AD_PORT_MATCHED and pdu.actor_state & LACP_STATE_SYNCHRONIZATION:
            p.port_state |= LACP_STATE_SYNCHRONIZATION
        else:
            p.port_state &= ~LACP_STATE_SYNCHRONIZATION

    @staticmethod
    def _update_selected(pdu: Lacpdu, port: Port) -> None:
        """``__update_selected``."""
        p = port.partner_oper
        if (pdu.actor_port != p.port_number or pdu.actor_port_priority != p.port_priority
                or pdu.actor_system != p.system
                or pdu.actor_system_priority != p.system_priority
                or pdu.actor_key != p.key
                or (pdu.actor_state & LACP_STATE_AGGREGATION)
                != (p.port_state & LACP_STATE_AGGREGATION)):
            port.sm_vars &= ~AD_PORT_SELECTED

    @staticmethod
    def _update_default_selected(port: Port) -> None:
        """``__update_default_selected``."""
        a, o = port.partner_admin, port.partner_oper
        if (a.port_number != o.port_number or a.port_priority != o.port_priority
                or a.system != o.system or a.system_priority != o.system_priority
                or a.key != o.key
                or (a.port_state & LACP_STATE_AGGREGATION)
                != (o.port_state & LACP_STATE_AGGREGATION)):
            port.sm_vars &= ~AD_PORT_SELECTED

    @staticmethod
    def _update_ntt(pdu: Lacpdu, port: Port) -> None:
        """``__update_ntt``."""
        mask = (LACP_STATE_LACP_ACTIVITY | LACP_STATE_LACP_TIMEOUT
                | LACP_STATE_SYNCHRONIZATION | LACP_STATE_AGGREGATION)
        if (pdu.partner_port != port.actor_port_number
                or pdu.partner_port_priority != port.actor_port_priority
                or pdu.partner_system != port.actor_system
                or pdu.partner_system_priority != port.actor_system_priority
                or pdu.partner_key != port.actor_oper_port_key
                or (pdu.partner_state & mask) != (port.actor_oper_port_state & mask)):
            port.ntt = True

    # ------------------------------------------------------- periodic machine
    def periodic_machine(self, port: Port) -> None:
        """``ad_periodic_machine``."""
        last = port.sm_periodic_state
        if (port.sm_vars & AD_PORT_BEGIN or not port.sm_vars & AD_PORT_LACP_ENABLED
                or not port.is_enabled
                or (not port.actor_oper_port_state & LACP_STATE_LACP_ACTIVITY
                    and not port.partner_oper.port_state & LACP_STATE_LACP_ACTIVITY)):
            port.sm_periodic_state = AD_NO_PERIODIC
        elif port.sm_periodic_timer_counter:
            port.sm_periodic_timer_counter -= 1
            if port.sm_periodic_timer_counter == 0:
                port.sm_periodic_state = AD_PERIODIC_TX
            elif port.sm_periodic_state == AD_FAST_PERIODIC:
                if not port.partner_oper.port_state & LACP_STATE_LACP_TIMEOUT:
                    port.sm_periodic_state = AD_SLOW_PERIODIC
            elif port.sm_periodic_state == AD_SLOW_PERIODIC:
                if port.partner_oper.port_state & LACP_STATE_LACP_TIMEOUT:
                    port.sm_periodic_timer_counter = 0
                    port.sm_periodic_state = AD_PERIODIC_TX
        elif port.sm_periodic_state == AD_NO_PERIODIC:
            port.sm_periodic_state = AD_FAST_PERIODIC
        elif port.sm_periodic_state == AD_PERIODIC_TX:
            if not port.partner_oper.port_state & LACP_STATE_LACP_TIMEOUT:
                port.sm_periodic_state = AD_SLOW_PERIODIC
            else:
                port.sm_periodic_state = AD_FAST_PERIODIC
        if port.sm_periodic_state == last:
            return
        st = port.sm_periodic_state
        if st == AD_NO_PERIODIC:
            port.sm_periodic_timer_counter = 0
        elif st == AD_FAST_PERIODIC:
            # one tick is lost in the PERIODIC_TX cycle
            port.sm_periodic_timer_counter = AD_FAST_PERIODIC_TIME * AD_TICKS_PER_SEC - 1
        elif st == AD_SLOW_PERIODIC:
            port.sm_periodic_timer_counter = AD_SLOW_PERIODIC_TIME * AD_TICKS_PER_SEC - 1
        elif st == AD_PERIODIC_TX:
            port.ntt = True

    # ------------------------------------------------------- selection logic
    def _detach(self, port: Port) -> None:
        agg = port.aggregator
        if agg is None:
            return
        prev, cur = None, agg.lag_ports
        while cur is not None:
            if cur is port:
                agg.num_of_ports -= 1
                if prev is None:
                    agg.lag_ports = port.next_port_in_aggregator
                else:
                    prev.next_port_in_aggregator = port.next_port_in_aggregator
                port.aggregator = None
                port.next_port_in_aggregator = None
                port.actor_port_aggregator_identifier = 0
                if agg.lag_ports is None:
                    agg.clear()
                break
            prev, cur = cur, cur.next_port_in_aggregator

    def port_selection_logic(self, port: Port) -> bool:
        """``ad_port_selection_logic``; returns update_slave_arr."""
        if port.sm_vars & AD_PORT_SELECTED:
            return False
        self._detach(port)
        free = None
        found = False
        for s in self.bond.slaves:
            agg = s.ad_agg
            if agg.lag_ports is None:
                if free is None:
                    free = agg
                continue
            if (agg.actor_oper_aggregator_key == port.actor_oper_port_key
                    and agg.partner_system == port.partner_oper.system
                    and agg.partner_system_priority == port.partner_oper.system_priority
                    and agg.partner_oper_aggregator_key == port.partner_oper.key
                    and agg.has_partner() and not agg.is_individual):
                port.aggregator = agg
                port.actor_port_aggregator_identifier = agg.aggregator_identifier
                port.next_port_in_aggregator = agg.lag_ports
                agg.num_of_ports += 1
                agg.lag_ports = port
                port.sm_vars |= AD_PORT_SELECTED
                found = True
                break
        if not found:
            if free is None:
                return False  # "Port %d did not find a suitable aggregator"
            agg = free
            port.aggregator = agg
            port.actor_port_aggregator_identifier = agg.aggregator_identifier
            agg.is_individual = not port.actor_oper_port_key & AD_DUPLEX_KEY_MASKS
            agg.actor_admin_aggregator_key = port.actor_admin_port_key
            agg.actor_oper_aggregator_key = port.actor_oper_port_key
            agg.partner_system = port.partner_oper.system
            agg.partner_system_priority = port.partner_oper.system_priority
            agg.partner_oper_aggregator_key = port.partner_oper.key
            agg.receive_state = 1
            agg.transmit_state = 1
            agg.lag_ports = port
            agg.num_of_ports += 1
            port.sm_vars |= AD_PORT_SELECTED
        self._set_agg_ports_ready(port.aggregator, self._agg_ports_are_ready(port.aggregator))
        update = self.agg_selection_logic(self.bond.slaves[0].ad_agg)
        if port.aggregator is not None and not port.aggregator.is_active:
            port.actor_oper_port_state &= ~LACP_STATE_SYNCHRONIZATION
        return update

    def _selection_test(self, best: Aggregator | None, curr: Aggregator) -> Aggregator:
        """``ad_agg_selection_test``."""
        if best is None:
            return curr
        if not curr.is_individual and best.is_individual:
            return curr
        if curr.is_individual and not best.is_individual:
            return best
        if curr.has_partner() and not best.has_partner():
            return curr
        if not curr.has_partner() and best.has_partner():
            return best
        mode = self.bond.params.ad_select
        if mode == BOND_AD_COUNT:
            if curr.active_ports() > best.active_ports():
                return curr
            if curr.active_ports() < best.active_ports():
                return best
        if curr.bandwidth() > best.bandwidth():
            return curr
        return best

    def agg_selection_logic(self, origin: Aggregator | None) -> bool:
        """``ad_agg_selection_logic``; returns update_slave_arr."""
        update = False
        active = self.active_agg()
        best = active if active is not None and active.device_up() else None
        for agg in self._aggs():
            agg.is_active = 0
            if agg.active_ports() and agg.device_up():
                best = self._selection_test(best, agg)
        if best is not None and self.bond.params.ad_select == BOND_AD_STABLE:
            if (active is not None and active.lag_ports is not None and active.active_ports()
                    and (active.has_partner() or not best.has_partner())):
                if not (not active.actor_oper_aggregator_key
                        and best.actor_oper_aggregator_key):
                    best = None
                    active.is_active = 1
        if best is not None and best is active:
            best = None
            active.is_active = 1  # type: ignore[union-attr]
        if best is not None:
            best.is_active = 1
            if active is not None:
                for p in active.ports():
                    self._disable_port(p)
            update = True
        active = self.active_agg()
        if active is not None and not active.has_partner():
            for p in active.ports():
                self._enable_port(p)
            update = True
        self.bond.ad_set_carrier()
        if update:
            self.bond.update_needed = True
        return update

    # ------------------------------------------------------------ mux machine
    def _port_move_to_attached(self, port: Port) -> bool:
        if (not port.sm_vars & AD_PORT_SELECTED or port.sm_vars & AD_PORT_STANDBY
                or not port.partner_oper.port_state & LACP_STATE_SYNCHRONIZATION
                or not port.actor_oper_port_state & LACP_STATE_SYNCHRONIZATION):
            port.sm_mux_state = AD_MUX_ATTACHED
        return port.sm_mux_state == AD_MUX_ATTACHED

    def mux_machine(self, port: Port) -> bool:
        """``ad_mux_machine``, coupled (COLLECTING_DISTRIBUTING) or independent control
        (COLLECTING, then DISTRIBUTING once the partner collects); returns
        update_slave_arr."""
        update = False
        last = port.sm_mux_state
        agg = port.aggregator
        if port.sm_vars & AD_PORT_BEGIN:
            port.sm_mux_state = AD_MUX_DETACHED
        elif last == AD_MUX_DETACHED:
            if port.sm_vars & (AD_PORT_SELECTED | AD_PORT_STANDBY):
                port.sm_mux_state = AD_MUX_WAITING
        elif last == AD_MUX_WAITING:
            if not port.sm_vars & AD_PORT_SELECTED:
                port.sm_vars &= ~AD_PORT_READY_N
                self._set_agg_ports_ready(agg, self._agg_ports_are_ready(agg))
                port.sm_mux_state = AD_MUX_DETACHED
            else:
                if port.sm_mux_timer_counter:
                    port.sm_mux_timer_counter -= 1
                    if port.sm_mux_timer_counter == 0:
                        port.sm_vars |= AD_PORT_READY_N
                self._set_agg_ports_ready(agg, self._agg_ports_are_ready(agg))
                if port.sm_vars & AD_PORT_READY and not port.sm_mux_timer_counter:
                    port.sm_mux_state = AD_MUX_ATTACHED
        elif last == AD_MUX_ATTACHED:
            if (port.sm_vars & AD_PORT_SELECTED
                    and port.partner_oper.port_state & LACP_STATE_SYNCHRONIZATION
                    and not self.agg_select_timer):
                if agg is not None and agg.is_active:
                    port.sm_mux_state = AD_MUX_COLLECTING_DISTRIBUTING \
                        if self.bond.params.coupled_control else AD_MUX_COLLECTING
            elif not port.sm_vars & AD_PORT_SELECTED or port.sm_vars & AD_PORT_STANDBY:
                port.sm_vars &= ~AD_PORT_READY_N
                self._set_agg_ports_ready(agg, self._agg_ports_are_ready(agg))
                port.sm_mux_state = AD_MUX_DETACHED
            elif agg is not None and agg.is_active:
                port.actor_oper_port_state |= LACP_STATE_SYNCHRONIZATION
        elif last == AD_MUX_COLLECTING_DISTRIBUTING:
            if not self._port_move_to_attached(port):
                if agg is not None and agg.is_active and not port.slave.is_active():
                    self._enable_port(port)
                    update = True
        elif last == AD_MUX_COLLECTING:
            # independent control (coupled_control off), IEEE 802.1AX-2008 5.4.15
            if not self._port_move_to_attached(port):
                if (port.sm_vars & AD_PORT_SELECTED
                        and port.partner_oper.port_state & LACP_STATE_SYNCHRONIZATION
                        and port.partner_oper.port_state & LACP_STATE_COLLECTING):
                    port.sm_mux_state = AD_MUX_DISTRIBUTING
                elif agg is not None and agg.is_active and port.slave.rx_disabled:
                    self._enable_collecting(port)
                    update = True
        elif last == AD_MUX_DISTRIBUTING:
            if (not port.sm_vars & AD_PORT_SELECTED or port.sm_vars & AD_PORT_STANDBY
                    or not port.partner_oper.port_state & LACP_STATE_COLLECTING
                    or not port.partner_oper.port_state & LACP_STATE_SYNCHRONIZATION
                    or not port.actor_oper_port_state & LACP_STATE_SYNCHRONIZATION):
                port.sm_mux_state = AD_MUX_COLLECTING
            elif agg is not None and agg.is_active and not port.slave.is_active():
                self._enable_port(port)
                update = True
        if port.sm_mux_state == last:
            return update
        st = port.sm_mux_state
        if st == AD_MUX_DETACHED:
            port.actor_oper_port_state &= ~LACP_STATE_SYNCHRONIZATION
            update |= self._disable_collecting_distributing(port)
            port.actor_oper_port_state &= ~(LACP_STATE_COLLECTING | LACP_STATE_DISTRIBUTING)
            port.ntt = True
        elif st == AD_MUX_WAITING:
            port.sm_mux_timer_counter = AD_AGGREGATE_WAIT_TIME * AD_TICKS_PER_SEC
        elif st == AD_MUX_ATTACHED:
            if agg is not None and agg.is_active:
                port.actor_oper_port_state |= LACP_STATE_SYNCHRONIZATION
            else:
                port.actor_oper_port_state &= ~LACP_STATE_SYNCHRONIZATION
            port.actor_oper_port_state &= ~(LACP_STATE_COLLECTING | LACP_STATE_DISTRIBUTING)
            update |= self._disable_collecting_distributing(port)
            port.ntt = True
        elif st == AD_MUX_COLLECTING_DISTRIBUTING:
            port.actor_oper_port_state |= (LACP_STATE_COLLECTING | LACP_STATE_DISTRIBUTING
                                           | LACP_STATE_SYNCHRONIZATION)
            update |= self._enable_collecting_distributing(port)
            port.ntt = True
        elif st == AD_MUX_COLLECTING:
            port.actor_oper_port_state |= LACP_STATE_COLLECTING | LACP_STATE_SYNCHRONIZATION
            port.actor_oper_port_state &= ~LACP_STATE_DISTRIBUTING
            self._enable_collecting(port)
            update |= self._disable_distributing(port)
            port.ntt = True
        elif st == AD_MUX_DISTRIBUTING:
            # no ntt here, as in the kernel
            port.actor_oper_port_state |= LACP_STATE_DISTRIBUTING | LACP_STATE_SYNCHRONIZATION
            update |= self._enable_collecting_distributing(port)
        return update

    def _enable_collecting_distributing(self, port: Port) -> bool:
        """``ad_enable_collecting_distributing``: in an active aggregator the port is
        enabled (and peers are re-notified with broadcast_neighbor)."""
        agg = port.aggregator
        if agg is not None and agg.is_active:
            self._enable_port(port)
            self.bond.ad_cond_set_peer_notif()
            return True
        return False

    def _disable_collecting_distributing(self, port: Port) -> bool:
        """``ad_disable_collecting_distributing``."""
        if port.aggregator is not None and port.aggregator.has_partner():
            self._disable_port(port)
            return True
        return False

    # ------------------------------------------------------------- tx machine
    def tx_machine(self, port: Port) -> None:
        """``ad_tx_machine``: the tx timer fires every ``ad_ticks_per_sec /
        AD_MAX_TX_IN_SECOND`` (3) ticks and only then may a pending LACPDU (ntt) go out —
        at most 3 a second; the timer restarts whether or not one was sent."""
        if port.sm_tx_timer_counter:
            port.sm_tx_timer_counter -= 1
            if not port.sm_tx_timer_counter:
                if port.ntt and port.sm_vars & AD_PORT_LACP_ENABLED:
                    if self._send_lacpdu(port):
                        port.ntt = False
                port.sm_tx_timer_counter = AD_TICKS_PER_SEC // AD_MAX_TX_IN_SECOND

    def lacpdu_of(self, port: Port) -> Lacpdu:
        """``__update_lacpdu_from_port``."""
        p = port.partner_oper
        return Lacpdu(actor_system_priority=port.actor_system_priority,
                      actor_system=port.actor_system, actor_key=port.actor_oper_port_key,
                      actor_port_priority=port.actor_port_priority,
                      actor_port=port.actor_port_number, actor_state=port.actor_oper_port_state,
                      partner_system_priority=p.system_priority, partner_system=p.system,
                      partner_key=p.key, partner_port_priority=p.port_priority,
                      partner_port=p.port_number, partner_state=p.port_state)

    def _send_lacpdu(self, port: Port) -> bool:
        """``ad_lacpdu_send``."""
        frame = lacpdu_frame(port.slave.perm_hwaddr, self.lacpdu_of(port).build())
        if not self.bond.ad_send(port.slave, frame):
            return False
        port.stats.lacpdu_tx += 1
        self.stats.lacpdu_tx += 1
        return True

    # ---------------------------------------------------------- churn machine
    @staticmethod
    def churn_machine(port: Port) -> None:
        """``ad_churn_machine``."""
        if port.sm_vars & AD_PORT_CHURNED:
            port.sm_vars &= ~AD_PORT_CHURNED
            port.sm_churn_actor_state = AD_CHURN_MONITOR
            port.sm_churn_partner_state = AD_CHURN_MONITOR
            port.sm_churn_actor_timer_counter = AD_CHURN_DETECTION_TIME * AD_TICKS_PER_SEC
            port.sm_churn_partner_timer_counter = AD_CHURN_DETECTION_TIME * AD_TICKS_PER_SEC
            return
        if port.sm_churn_actor_timer_counter:
            port.sm_churn_actor_timer_counter -= 1
            if not port.sm_churn_actor_timer_counter \
                    and port.sm_churn_actor_state == AD_CHURN_MONITOR:
                if port.actor_oper_port_state & LACP_STATE_SYNCHRONIZATION:
                    port.sm_churn_actor_state = AD_NO_CHURN
                else:
                    port.churn_actor_count += 1
                    port.sm_churn_actor_state = AD_CHURN
        if port.sm_churn_partner_timer_counter:
            port.sm_churn_partner_timer_counter -= 1
            if not port.sm_churn_partner_timer_counter \
                    and port.sm_churn_partner_state == AD_CHURN_MONITOR:
                if port.partner_oper.port_state & LACP_STATE_SYNCHRONIZATION:
                    port.sm_churn_partner_state = AD_NO_CHURN
                else:
                    port.churn_partner_count += 1
                    port.sm_churn_partner_state = AD_CHURN

    # ------------------------------------------------------------ link change
    def handle_link_change(self, slave: "Slave", up: bool) -> None:
        """``bond_3ad_handle_link_change``."""
        port: Port = slave.ad_port
        port.is_enabled = up
        self.update_actor_keys(port, not up)
        self.agg_selection_logic(self.bond.slaves[0].ad_agg)
        self.bond.update_slave_arr()
