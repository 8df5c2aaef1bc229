"""balance-tlb and balance-alb (drivers/net/bonding/bond_alb.c, bond_alb.h).

- TLB transmit (``bond_xmit_tlb_slave_get``): unicast IPv4/IPv6 (not NS/NA) is spread by
  ``bond_xmit_hash & 0xFF`` over a 256-entry hash table whose entries are bound to the
  least loaded slave (``tlb_choose_channel``: largest ``speed << 20 - load << 3`` gap);
  every 10 s the loads are rebalanced (``tlb_clear_slave`` with load history).  Frames not
  balanced go out of the active slave; a frame leaving another slave has its source MAC
  rewritten to that slave's (``bond_do_alb_xmit``).  ``tlb_dynamic_lb 0`` uses the usable
  slave array and the hash instead.
- ALB adds receive load balancing (``rlb_*``): outgoing ARP replies are sent from the slave
  chosen for the client (``rlb_choose_channel``: 256 entries keyed by ``_simple_hash`` of
  the client IP, slaves taken round-robin by ``__rlb_next_rx_slave``) with the ARP sender
  MAC rewritten to it; received ARP replies update the client MAC (``rlb_arp_recv``) and
  clients to be told of a new MAC get ``RLB_UPDATE_RETRY`` ARP replies after
  ``RLB_UPDATE_DELAY`` ticks (``rlb_update_rx_clients``).  The ALB transmit hash is
  ``_simple_hash`` of the destination IP.
- Both send a learning packet (dst = src = the slave MAC, EtherType 0x9000, 60 bytes) per
  slave every ``lp_interval`` seconds, and the active slave always holds the bond's MAC
  (``bond_alb_handle_active_change`` swaps addresses).
The monitor runs every 100 ms (``ALB_TIMER_TICKS_PER_SEC``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from netstack.drivers.bonding.bond_main import BondDevice, Slave
    from netstack.packet.skb import Packet

ALB_TIMER_TICKS_PER_SEC = 10
BOND_TLB_REBALANCE_INTERVAL = 10
BOND_TLB_REBALANCE_TICKS = BOND_TLB_REBALANCE_INTERVAL * ALB_TIMER_TICKS_PER_SEC
TLB_HASH_TABLE_SIZE = 256
RLB_HASH_TABLE_SIZE = 256
RLB_UPDATE_DELAY = 2 * ALB_TIMER_TICKS_PER_SEC
RLB_UPDATE_RETRY = 3
RLB_ARP_BURST_SIZE = 2
ETH_P_LOOPBACK = 0x9000
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_ARP = 0x0806
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
NDISC_NS, NDISC_NA = 135, 136
MAC_V6_ALLMCAST = bytes.fromhex("333300000001")


def simple_hash(data: bytes) -> int:
    """``_simple_hash``: the XOR of the bytes."""
    h = 0
    for b in data:
        h ^= b
    return h


@dataclass
class TlbEntry:
    """``struct tlb_client_info`` (the linked lists are kept as a per-slave list)."""

    tx_slave: Any = None
    tx_bytes: int = 0
    load_history: int = 0


@dataclass
class RlbEntry:
    """``struct rlb_client_info``."""

    ip_src: bytes = b"\0" * 4
    ip_dst: bytes = b"\0" * 4
    mac_src: bytes = b"\0" * 6
    mac_dst: bytes = b"\0" * 6
    slave: Any = None
    assigned: bool = False
    ntt: bool = False


class AlbInfo:
    """``struct alb_bond_info``."""

    def __init__(self, bond: "BondDevice", rlb: bool) -> None:
        self.bond = bond
        self.rlb_enabled = rlb
        self.tx_hashtbl = [TlbEntry() for _ in range(TLB_HASH_TABLE_SIZE)]
        self.rx_hashtbl = [RlbEntry() for _ in range(RLB_HASH_TABLE_SIZE)]
        self.unbalanced_load = 0
        self.tx_rebalance_counter = 0
        self.lp_counter = 0
        self.rx_slave: Any = None
        self.rx_ntt = False
        self.rlb_update_delay_counter = 0
        self.rlb_update_retry_counter = 0

    # ------------------------------------------------------------- TLB
    def _compute_gap(self, slave: "Slave") -> int:
        return ((slave.speed or 0) << 20) - (slave.tlb_load << 3)

    def least_loaded(self) -> "Slave | None":
        """``tlb_get_least_loaded_slave``."""
        best, gap = None, None
        for s in self.bond.slaves:
            if s.can_tx():
                g = self._compute_gap(s)
                if gap is None or gap < g:
                    best, gap = s, g
        return best

    def tlb_choose_channel(self, index: int, length: int) -> "Slave | None":
        """``__tlb_choose_channel``."""
        e = self.tx_hashtbl[index]
        if e.tx_slave is None:
            s = self.least_loaded()
            if s is not None:
                e.tx_slave = s
                s.tlb_head.insert(0, index)
                s.tlb_load += e.load_history
        if e.tx_slave is not None:
            e.tx_bytes += length
        return e.tx_slave

    def tlb_clear_slave(self, slave: "Slave", save_load: bool) -> None:
        """``__tlb_clear_slave`` + ``tlb_init_slave``."""
        for idx in slave.tlb_head:
            e = self.tx_hashtbl[idx]
            if save_load:
                e.load_history = 1 + e.tx_bytes // BOND_TLB_REBALANCE_INTERVAL
                e.tx_bytes = 0
            e.tx_slave = None
        slave.tlb_head = []
        slave.tlb_load = 0

    # ------------------------------------------------------------- xmit
    def xmit_slave(self, pkt: "Packet") -> "Slave | None":
        """``bond_xmit_tlb_slave_get`` / ``bond_xmit_alb_slave_get``."""
        from netstack.drivers.bonding.bond_hash import pkt_xmit_hash
        bond = self.bond
        buf, off = pkt.buf, pkt.data
        frame = bytes(buf[off:pkt.tail])
        if len(frame) < 14:
            return None
        proto = pkt.protocol or int.from_bytes(frame[12:14], "big")
        dst = frame[0:6]
        if not self.rlb_enabled:
            if dst[0] & 1:
                return None
            if proto == ETH_P_IPV6 and _is_nd(frame):
                return None
            if proto not in (ETH_P_IP, ETH_P_IPV6):
                return None
            h = pkt_xmit_hash(bond.params.xmit_policy, pkt)
            return self._balanced(h & 0xFF, h, len(frame))
        # ALB
        hash_start: bytes | None = None
        if proto == ETH_P_IP:
            if dst == b"\xff" * 6 or len(frame) < 34:
                return None
            if frame[30:34] == b"\xff" * 4 or frame[23] == 2:  # broadcast / IGMP
                return None
            hash_start = frame[30:34]
        elif proto == ETH_P_IPV6:
            if dst == b"\xff" * 6 or dst == MAC_V6_ALLMCAST or _is_nd(frame) \
                    or len(frame) < 54 or frame[22:38] == b"\0" * 16:
                return None
            hash_start = frame[38:54]
        elif proto == ETH_P_ARP:
            return self.rlb_arp_xmit(pkt) if self.rlb_enabled else None
        else:
            return None
        h = pkt_xmit_hash(bond.params.xmit_policy, pkt)
        return self._balanced(simple_hash(hash_start), h, len(frame))

    def _balanced(self, index: int, h: int, length: int) -> "Slave | None":
        if self.bond.params.tlb_dynamic_lb:
            return self.tlb_choose_channel(index, length)
        arr = self.bond.usable_slaves
        return arr[h % len(arr)] if arr else None

    def do_xmit(self, pkt: "Packet", tx_slave: "Slave | None") -> "Slave | None":
        """``bond_do_alb_xmit``: the slave to send on (None: drop); rewrites the source
        MAC when that is not the active slave."""
        bond = self.bond
        if tx_slave is None:
            tx_slave = bond.curr_active
            if bond.params.tlb_dynamic_lb:
                self.unbalanced_load += len(pkt)
        if tx_slave is not None and tx_slave.can_tx():
            if tx_slave is not bond.curr_active:
                pkt.buf[pkt.data + 6:pkt.data + 12] = tx_slave.dev.address
            return tx_slave
        if tx_slave is not None and bond.params.tlb_dynamic_lb:
            self.tlb_clear_slave(tx_slave, False)
        return None

    # ------------------------------------------------------------- RLB
    def _next_rx_slave(self) -> "Slave | None":
        """``__rlb_next_rx_slave``: round robin, faster slaves first."""
        before = rx = None
        found = False
        for s in self.bond.slaves:
            if not s.can_tx():
                continue
            sp = s.speed or 0
            if not found:
                if before is None or (before.speed or 0) < sp:
                    before = s
            elif rx is None or (rx.speed or 0) < sp:
                rx = s
            if s is self.rx_slave:
                found = True
        if rx is None or (before is not None and (rx.speed or 0) < (before.speed or 0)):
            rx = before
        if rx is not None:
            self.rx_slave = rx
        return rx

    def rlb_choose_channel(self, ip_src: bytes, ip_dst: bytes, mac_src: bytes,
                           mac_dst: bytes) -> "Slave | None":
        """``rlb_choose_channel``."""
        bond = self.bond
        e = self.rx_hashtbl[simple_hash(ip_dst)]
        if e.assigned:
            if e.ip_src == ip_src and e.ip_dst == ip_dst:
                if mac_dst != b"\xff" * 6:
                    e.mac_dst = mac_dst
                e.mac_src = mac_src
                if e.slave is not None:
                    return e.slave
            elif bond.curr_active is not None and e.slave is not bond.curr_active:
                e.slave = bond.curr_active
                self._update_client(e)
        s = self._next_rx_slave()
        if s is not None:
            e.ip_src, e.ip_dst, e.mac_dst, e.mac_src, e.slave = (ip_src, ip_dst, mac_dst,
                                                                 mac_src, s)
            if not mac_dst[0] & 1 and mac_dst != b"\0" * 6:
                e.ntt = True
                self.rx_ntt = True
            else:
                e.ntt = False
            e.assigned = True
        return s

    def rlb_arp_xmit(self, pkt: "Packet") -> "Slave | None":
        """``rlb_arp_xmit``: replies leave from (and name) the client's slave."""
        buf, off = pkt.buf, pkt.data
        if pkt.tail - off < 42:
            return None
        a = off + 14
        op = int.from_bytes(buf[a + 6:a + 8], "big")
        mac_src = bytes(buf[a + 8:a + 14])
        ip_src = bytes(buf[a + 14:a + 18])
        mac_dst = bytes(buf[a + 18:a + 24])
        ip_dst = bytes(buf[a + 24:a + 28])
        bond = self.bond
        # "Don't modify or load balance ARPs that do not originate locally"
        if not bond.slave_has_mac(mac_src):
            return None
        if op == ARPOP_REPLY:
            s = self.rlb_choose_channel(ip_src, ip_dst, mac_src, mac_dst)
            if s is not None:
                buf[a + 8:a + 14] = s.dev.address
            return s
        if op == ARPOP_REQUEST:
            s = self.rlb_choose_channel(ip_src, ip_dst, mac_src, mac_dst)
            self.rlb_update_delay_counter = RLB_UPDATE_DELAY
            # rlb_req_update_subnet_clients
            for e in self.rx_hashtbl:
                if e.assigned and e.ip_src == ip_src and e.slave is not None:
                    e.ntt = True
                    self.rx_ntt = True
            return s
        return None

    def rlb_arp_recv(self, pkt: "Packet") -> None:
        """``rlb_arp_recv``: purge entries for the sender's IP with another MAC, learn the
        client MAC from replies."""
        buf, a = pkt.buf, pkt.data
        if pkt.tail - a < 28:
            return
        op = int.from_bytes(buf[a + 6:a + 8], "big")
        mac_src = bytes(buf[a + 8:a + 14])
        ip_src = bytes(buf[a + 14:a + 18])
        ip_dst = bytes(buf[a + 24:a + 28])
        for e in self.rx_hashtbl:  # rlb_purge_src_ip
            if e.assigned and e.ip_src == ip_src and e.mac_src != mac_src:
                e.assigned = False
                e.slave = None
                e.ntt = False
        if op == ARPOP_REPLY:
            e = self.rx_hashtbl[simple_hash(ip_src)]
            if e.assigned and e.ip_src == ip_dst and e.ip_dst == ip_src \
                    and e.mac_dst != mac_src:
                e.mac_dst = mac_src
                e.ntt = True
                self.rx_ntt = True

    def _update_client(self, e: RlbEntry) -> None:
        """``rlb_update_client``: ARP replies telling the client the slave's MAC."""
        if e.slave is None or not e.mac_dst or e.mac_dst[0] & 1 or e.mac_dst == b"\0" * 6:
            return
        from netstack.ipv4.arp import arp_create
        from netstack.core.dev import dev_queue_xmit
        dev = e.slave.dev
        for _ in range(RLB_ARP_BURST_SIZE):
            pkt = arp_create(ARPOP_REPLY, ETH_P_ARP, e.ip_dst, dev, e.ip_src, e.mac_dst,
                             dev.address, e.mac_dst)
            dev_queue_xmit(pkt, dev)

    def rlb_clear_slave(self, slave: "Slave") -> None:
        """``rlb_clear_slave``: its clients move to the active slave and are told."""
        cur = self.bond.curr_active
        for e in self.rx_hashtbl:
            if e.slave is slave:
                nxt = self._next_rx_slave() if cur is None or cur is slave else cur
                e.slave = nxt
                if nxt is not None and e.assigned:
                    e.ntt = True
                    self.rx_ntt = True
        if self.rx_slave is slave:
            self.rx_slave = None

    # ---------------------------------------------------------- monitor
    def monitor(self) -> None:
        """``bond_alb_monitor``: learning packets, TLB rebalance, RLB client updates."""
        bond = self.bond
        self.tx_rebalance_counter += 1
        self.lp_counter += 1
        if self.lp_counter >= bond.params.lp_interval * ALB_TIMER_TICKS_PER_SEC:
            for s in bond.slaves:
                send_learning_packet(s)
            self.lp_counter = 0
        if self.tx_rebalance_counter >= BOND_TLB_REBALANCE_TICKS:
            for s in bond.slaves:
                self.tlb_clear_slave(s, True)
                if s is bond.curr_active:
                    s.tlb_load = self.unbalanced_load // BOND_TLB_REBALANCE_INTERVAL
                    self.unbalanced_load = 0
            self.tx_rebalance_counter = 0
        if self.rlb_enabled and self.rx_ntt:
            if self.rlb_update_delay_counter:
                self.rlb_update_delay_counter -= 1
            else:
                for e in self.rx_hashtbl:
                    if e.assigned and e.ntt:
                        self._update_client(e)
                        if self.rlb_update_retry_counter == 0:
                            e.ntt = False
                if self.rlb_update_retry_counter:
                    self.rlb_update_retry_counter -= 1
                else:
                    self.rx_ntt = False


def _is_nd(frame: bytes) -> bool:
    """``alb_determine_nd``: NS/NA (or a cut-off header) are not balanced."""
    if len(frame) < 54:
        return True
    if frame[20] != 58:
        return False
    if len(frame) < 58:
        return True
    return frame[54] in (NDISC_NS, NDISC_NA)


def learning_packet(mac: bytes) -> bytes:
    """``struct learning_pkt``: dst = src = mac, ETH_P_LOOPBACK, padded to ETH_ZLEN."""
    return mac + mac + ETH_P_LOOPBACK.to_bytes(2, "big") + bytes(46)


def send_learning_packet(slave: "Slave") -> None:
    """``alb_send_lp_vid`` without VLANs (priority TC_PRIO_CONTROL)."""
    from netstack.core.dev import dev_queue_xmit
    dev = slave.dev
    if dev.net is None:
        return
    pkt = dev.net.world.new_packet(learning_packet(dev.address))
    pkt.mac_header = pkt.data
    pkt.network_header = pkt.data + 14
    pkt.protocol = ETH_P_LOOPBACK
    pkt.priority = 7
    dev_queue_xmit(pkt, dev)
