"""The Multiple Registration Protocol applicant (IEEE 802.1Q-2011 §10; net/802/mrp.c).

Linux implements MRP as a *pure applicant*: it declares attributes (for MVRP, the VIDs of
its vlan devices) to the link and never registers anyone else's.  Per device and per
application (``struct mrp_applicant``) it keeps:

* the MAD: the declared attributes, each with its applicant state (VO, VP, VN, AN, AA, QA,
  LA, AO, QO, AP, QP), ordered by (type, length, value) -- the kernel's rb-tree order,
  which is what lets consecutive values share one VectorAttribute in a PDU;
* the join timer (a random 0..``mrp_join_time`` = 200 ms, re-armed after every expiry):
  each expiry is a ``tx!`` event for every attribute, whose transmit action appends
  New / JoinIn / Lv to the PDU being built (``mrp_pdu_append_vecattr_event``), then the
  PDU is closed with its EndMarks and sent on the device;
* the periodic timer (``mrp_periodic_time`` = 1 s): a ``periodic!`` event (QA -> AA,
  QP -> AP) so the declarations are repeated once a second;
* the receive side (``mrp_rcv``): PDUs of the application's EtherType arriving on the
  device move the attributes by the received events (rNew!, rJoinIn!, rIn!, rJoinMt!,
  rMt!, rLv!, rLA!).

PDU layout (802.1Q §10.8): ProtocolVersion, then Messages: AttributeType, AttributeLength,
VectorAttributes (LeaveAllEvent/NumberOfValues 16 bits, FirstValue, events packed three to
a byte as ``((e1 * 6) + e2) * 6 + e3``), an EndMark (0x0000) after each message's
attribute list and one after the messages.

Where netstack differs from the kernel, unobservably: the timers run only while the MAD
has attributes (an idle applicant's expiries do nothing); the periodic timer keeps the
phase it has in the kernel (multiples of 1 s from the applicant's creation); the join
delays come from a per-applicant RNG seeded from the device (deterministic, and the
world's RNG is not consumed); a PDU is closed when it would exceed the device MTU (the
kernel's limit is the skb tailroom, at least the MTU).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netstack.core.drop_reason import kfree_skb_reason
from netstack.packet.skb import PACKET_OTHERHOST

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb import Packet

#: module parameters of net/802/mrp.c (ms)
MRP_JOIN_TIME_MS = 200
MRP_PERIODIC_TIME_MS = 1000
NSEC_PER_MSEC = 1_000_000

MRP_END_MARK = b"\x00\x00"
MRP_VECATTR_HDR_LEN_MASK = 0x1FFF
MRP_VECATTR_HDR_FLAG_LA = 0x2000

# enum mrp_vecattr_event (include/net/mrp.h)
EV_NEW, EV_JOIN_IN, EV_IN, EV_JOIN_MT, EV_MT, EV_LV = range(6)
VECATTR_EVENT_MAX = 6

# enum mrp_applicant_state
VO, VP, VN, AN, AA, QA, LA, AO, QO, AP, QP = range(11)
STATE_NAMES = ("VO", "VP", "VN", "AN", "AA", "QA", "LA", "AO", "QO", "AP", "QP")

# enum mrp_event
(NEW, JOIN, LV, TX, R_NEW, R_JOIN_IN, R_IN, R_JOIN_MT, R_MT, R_LV, R_LA, REDECLARE,
 PERIODIC) = range(13)

# enum mrp_tx_action
S_NEW, S_JOIN_IN, S_JOIN_IN_OPTIONAL, S_IN_OPTIONAL, S_LV = range(5)


def _row(text: str) -> tuple[int, ...]:
    return tuple(STATE_NAMES.index(w) for w in text.split())


#: The applicant state machine (802.1Q-2011 Table 10-3, as ``mrp_applicant_state_table``
#: encodes it); columns: New Join Lv tx! rNew! rJoinIn! rIn! rJoinMt! rMt! rLv! rLA!
#: Re-declare! periodic!
STATE_TABLE: tuple[tuple[int, ...], ...] = (
    _row("VN VP VO VO VO AO VO VO VO VO VO VO VO"),   # VO
    _row("VN VP VO AA VP AP VP VP VP VP VP VP VP"),   # VP
    _row("VN VN LA AN VN VN VN VN VN VN VN VN VN"),   # VN
    _row("AN AN LA QA AN AN AN AN AN VN VN VN AN"),   # AN
    _row("VN AA LA QA AA QA AA AA AA VP VP VP AA"),   # AA
    _row("VN QA LA QA QA QA QA AA AA VP VP VP AA"),   # QA
    _row("VN AA LA VO LA LA LA LA LA LA LA LA LA"),   # LA
    _row("VN AP AO AO AO QO AO AO AO VO VO VO AO"),   # AO
    _row("VN QP QO QO QO QO QO AO AO VO VO VO QO"),   # QO
    _row("VN AP AO QA AP QP AP AP AP VP VP VP AP"),   # AP
    _row("VN QP QO QP QP QP QP AP AP VP VP VP AP"),   # QP
)

#: ``mrp_tx_action_table``: what a tx! event sends from each state
TX_ACTION = (S_IN_OPTIONAL, S_JOIN_IN, S_NEW, S_NEW, S_JOIN_IN, S_JOIN_IN_OPTIONAL, S_LV,
             S_IN_OPTIONAL, S_IN_OPTIONAL, S_JOIN_IN, S_IN_OPTIONAL)

#: received VectorAttribute event -> state machine event (``mrp_pdu_parse_vecattr_event``)
_RX_EVENT = {EV_NEW: R_NEW, EV_JOIN_IN: R_JOIN_IN, EV_IN: R_IN, EV_JOIN_MT: R_JOIN_MT,
             EV_MT: R_MT, EV_LV: R_LV}

#: ``sizeof(struct mrp_skb_cb)``'s room for an attribute value in ``skb->cb`` (48 - 16)
_MAX_ATTR_LEN = 32


@dataclass(frozen=True)
class MrpApplication:
    """``struct mrp_application``: one MRP application (MVRP, MMRP)."""

    type: int
    maxattr: int
    ethertype: int
    group_address: bytes
    version: int = 0


@dataclass
class MrpAttr:
    """``struct mrp_attr``: one declared attribute and its applicant state."""

    type: int
    value: bytes
    state: int = VO

    @property
    def key(self) -> tuple[int, int, bytes]:
        """``mrp_attr_cmp`` order: type, then length, then the value's bytes."""
        return (self.type, len(self.value), self.value)


@dataclass
class _Pdu:
    """The PDU being built (``app->pdu`` and its ``mrp_skb_cb``): the bytes after the
    Ethernet header, where the current Message and VectorAttribute headers are, and the
    value the next event of that VectorAttribute would be for."""

    data: bytearray
    mh: int | None = None
    vah: int | None = None
    attrvalue: bytearray = field(default_factory=bytearray)


def attrvalue_inc(value: bytearray) -> None:
    """``mrp_attrvalue_inc``: big-endian increment with carry (wrapping)."""
    i = len(value)
    while i > 0:
        i -= 1
        value[i] = (value[i] + 1) & 0xFF
        if value[i]:
            break


class MrpApplicant:
    """``struct mrp_applicant`` of one application on one device."""

    def __init__(self, dev: "NetDevice", appl: MrpApplication) -> None:
        self.dev = dev
        self.app = appl
        self.mad: dict[tuple[int, int, bytes], MrpAttr] = {}
        self.pdu: _Pdu | None = None
        self.queue: list[bytes] = []
        world = dev.net.world  # type: ignore[union-attr]
        self.clock = world.clock
        self.world = world
        self.created = self.clock.now
        self.rng = random.Random(f"mrp:{appl.type}:{dev.name}:{dev.ifindex}")
        self.join_timer = self.clock.timer(self._join_timer)
        self.periodic_timer = self.clock.timer(self._periodic_timer)
        self.active = True
        #: frames sent (for tests and ``ip -s``-like inspection)
        self.tx_pdus = 0

    # ----------------------------------------------------------------- MAD
    def _sorted(self) -> list[MrpAttr]:
        return [self.mad[k] for k in sorted(self.mad)]

    def lookup(self, value: bytes, atype: int) -> MrpAttr | None:
        return self.mad.get((atype, len(value), bytes(value)))

    def state_of(self, value: bytes, atype: int) -> str | None:
        a = self.lookup(value, atype)
        return None if a is None else STATE_NAMES[a.state]

    def request_join(self, value: bytes, atype: int) -> None:
        """``mrp_request_join``: create the attribute (VO) if new, then Join!."""
        if len(value) > _MAX_ATTR_LEN:
            return  # -ENOMEM in the kernel: the value would not fit skb->cb
        key = (atype, len(value), bytes(value))
        attr = self.mad.get(key)
        if attr is None:
            attr = self.mad[key] = MrpAttr(atype, bytes(value))
        self.attr_event(attr, JOIN)
        self._arm_timers()

    def request_leave(self, value: bytes, atype: int) -> None:
        """``mrp_request_leave``: Lv! on the attribute, if it is declared."""
        attr = self.lookup(value, atype)
        if attr is not None:
            self.attr_event(attr, LV)

    def mad_event(self, event: int) -> None:
        """``mrp_mad_event``: the event for every attribute, in MAD order (an attribute
        destroyed by its own Lv transmission does not disturb the walk)."""
        for attr in self._sorted():
            self.attr_event(attr, event)

    def attr_event(self, attr: MrpAttr, event: int) -> None:
        """``mrp_attr_event``: move the state; on tx!, perform the transmit action of the
        state the attribute is leaving (an append that cannot be made leaves the state
        alone, to retry at the next tx!; a sent Lv ends the attribute)."""
        state = STATE_TABLE[attr.state][event]
        if event == TX:
            action = TX_ACTION[attr.state]
            if action == S_NEW:
                self._append_event(attr, EV_NEW)
            elif action == S_JOIN_IN:
                self._append_event(attr, EV_JOIN_IN)
            elif action == S_LV:
                self._append_event(attr, EV_LV)
                del self.mad[attr.key]
                return
        attr.state = state

    # ----------------------------------------------------------------- PDU
    def _tailroom(self) -> int:
        assert self.pdu is not None
        return self.dev.mtu - len(self.pdu.data)

    def _pdu_init(self) -> None:
        """``mrp_pdu_init``: a new PDU holding the ProtocolVersion."""
        self.pdu = _Pdu(bytearray((self.app.version,)))

    def _append_end_mark(self) -> bool:
        if self._tailroom() < 2:
            return False
        self.pdu.data += MRP_END_MARK  # type: ignore[union-attr]
        return True

    def _append_msg_hdr(self, atype: int, alen: int) -> bool:
        """``mrp_pdu_append_msg_hdr``: close the previous Message, open one for this
        attribute type and length."""
        p = self.pdu
        assert p is not None
        if p.mh is not None:
            if not self._append_end_mark():
                return False
            p.mh = p.vah = None
        if self._tailroom() < 2:
            return False
        p.mh = len(p.data)
        p.data += bytes((atype, alen))
        return True

    def _append_vecattr_hdr(self, value: bytes) -> bool:
        """``mrp_pdu_append_vecattr_hdr``: a VectorAttribute (NumberOfValues 0) starting at
        ``value``."""
        p = self.pdu
        assert p is not None
        if self._tailroom() < 2 + len(value):
            return False
        p.vah = len(p.data)
        p.data += b"\x00\x00" + value
        p.attrvalue = bytearray(value)
        return True

    def _append_event(self, attr: MrpAttr, event: int) -> None:
        """``mrp_pdu_append_vecattr_event``: add ``event`` for ``attr`` to the PDU, in the
        current VectorAttribute when ``attr`` is the next value of it, else in a new one
        (and a new Message when the type/length changes); a full PDU is queued and the
        event goes into a fresh one."""
        alen = len(attr.value)
        while True:
            if self.pdu is None:
                self._pdu_init()
            p = self.pdu
            assert p is not None
            if p.mh is None or p.data[p.mh] != attr.type or p.data[p.mh + 1] != alen:
                if not self._append_msg_hdr(attr.type, alen):
                    self.pdu_queue()
                    continue
            if p.vah is None or bytes(p.attrvalue) != attr.value:
                if not self._append_vecattr_hdr(attr.value):
                    self.pdu_queue()
                    continue
            assert p.vah is not None
            n = int.from_bytes(p.data[p.vah:p.vah + 2], "big")
            pos = n % 3
            if not pos:
                if self._tailroom() < 1:
                    self.pdu_queue()
                    continue
                p.data.append(0)
            if pos == 0:
                p.data[-1] = event * VECATTR_EVENT_MAX * VECATTR_EVENT_MAX
            elif pos == 1:
                p.data[-1] += event * VECATTR_EVENT_MAX
            else:
                p.data[-1] += event
            p.data[p.vah:p.vah + 2] = ((n + 1) & 0xFFFF).to_bytes(2, "big")
            attrvalue_inc(p.attrvalue)
            return

    def pdu_queue(self) -> None:
        """``mrp_pdu_queue``: close the PDU (EndMark of the open Message's attribute list,
        EndMark of the Message list), put the Ethernet header on (``dev_hard_header`` to
        the application's group address from the device's own) and queue it."""
        p = self.pdu
        if p is None:
            return
        if p.mh is not None:
            self._append_end_mark()
        self._append_end_mark()
        eth = self.app.group_address + self.dev.address + self.app.ethertype.to_bytes(2, "big")
        self.queue.append(eth + bytes(p.data))
        self.pdu = None

    def queue_xmit(self) -> None:
        """``mrp_queue_xmit``: ``dev_queue_xmit`` every queued PDU."""
        from netstack.core.dev import dev_queue_xmit
        while self.queue:
            frame = self.queue.pop(0)
            pkt = self.world.new_packet(frame)
            pkt.protocol = self.app.ethertype
            pkt.mac_header = pkt.data
            pkt.network_header = pkt.data + 14
            pkt.dev = self.dev
            self.tx_pdus += 1
            dev_queue_xmit(pkt, self.dev)

    # ---------------------------------------------------------------- timers
    def _arm_timers(self) -> None:
        if not self.active:
            return
        if not self.join_timer.active:
            self._join_timer_arm()
        if not self.periodic_timer.active:
            period = MRP_PERIODIC_TIME_MS * NSEC_PER_MSEC
            k = (self.clock.now - self.created) // period + 1
            self.periodic_timer.mod(self.created + k * period)

    def _join_timer_arm(self) -> None:
        """``mrp_join_timer_arm``: ``get_random_u32_below(msecs_to_jiffies(200))``
        jiffies (HZ 1000: whole milliseconds)."""
        self.join_timer.mod_in(self.rng.randrange(MRP_JOIN_TIME_MS) * NSEC_PER_MSEC)

    def _join_timer(self) -> None:
        """``mrp_join_timer``: tx! for every attribute, send, re-arm."""
        self.mad_event(TX)
        self.pdu_queue()
        self.queue_xmit()
        if self.active and self.mad:
            self._join_timer_arm()

    def _periodic_timer(self) -> None:
        """``mrp_periodic_timer``: periodic! for every attribute (what it makes pending
        goes out at the next join timer)."""
        self.mad_event(PERIODIC)
        self.pdu_queue()
        if self.active and self.mad:
            self.periodic_timer.mod(self.periodic_timer.expires
                                    + MRP_PERIODIC_TIME_MS * NSEC_PER_MSEC)

    def uninit(self) -> None:
        """``mrp_uninit_applicant``: stop the timers and flush with a last tx!."""
        self.active = False
        self.join_timer.cancel()
        self.periodic_timer.cancel()
        self.mad_event(TX)
        self.pdu_queue()
        self.queue_xmit()

    # --------------------------------------------------------------- receive
    def rcv(self, data: bytes) -> None:
        """``mrp_rcv`` after the header checks: the Messages of one PDU (``data`` starts
        at the ProtocolVersion).  Malformed input ends the parse, as in the kernel."""
        if not data or data[0] != self.app.version:
            return
        off = 1
        n = len(data)
        while n > off:
            off, stop = _parse_end_mark(data, off)
            if stop:
                break
            off, ok = self._parse_msg(data, off)
            if not ok:
                break

    def _parse_msg(self, data: bytes, off: int) -> tuple[int, bool]:
        if off + 2 > len(data):
            return off, False
        atype, alen = data[off], data[off + 1]
        off += 2
        if atype == 0 or atype > self.app.maxattr or alen == 0:
            return off, False
        while len(data) > off:
            off, stop = _parse_end_mark(data, off)
            if stop:
                break
            off, ok = self._parse_vecattr(data, off, atype, alen)
            if not ok:
                return off, False
        return off, True

    def _parse_vecattr(self, data: bytes, off: int, atype: int, alen: int) -> tuple[int, bool]:
        """``mrp_pdu_parse_vecattr``: LeaveAll (rLA! for every attribute), then the packed
        events of ``NumberOfValues`` consecutive values."""
        if off + 2 > len(data):
            return off, False
        lenflags = int.from_bytes(data[off:off + 2], "big")
        off += 2
        if lenflags & MRP_VECATTR_HDR_FLAG_LA:
            self.mad_event(R_LA)
        valen = lenflags & MRP_VECATTR_HDR_LEN_MASK
        if alen > _MAX_ATTR_LEN or off + alen > len(data):
            return off, False
        value = bytearray(data[off:off + alen])
        off += alen
        while valen > 0:
            if off >= len(data):
                return off, False
            b = data[off]
            off += 1
            ev = b // (VECATTR_EVENT_MAX * VECATTR_EVENT_MAX)
            if ev >= VECATTR_EVENT_MAX:
                return off, False  # a malformed byte stops the parse
            self._rx_event(value, atype, ev)
            valen -= 1
            if not valen:
                break
            attrvalue_inc(value)
            b %= VECATTR_EVENT_MAX * VECATTR_EVENT_MAX
            self._rx_event(value, atype, b // VECATTR_EVENT_MAX)
            valen -= 1
            if not valen:
                break
            attrvalue_inc(value)
            self._rx_event(value, atype, b % VECATTR_EVENT_MAX)
            valen -= 1
        return off, True

    def _rx_event(self, value: bytearray, atype: int, ev: int) -> None:
        attr = self.lookup(bytes(value), atype)
        if attr is not None and ev in _RX_EVENT:
            self.attr_event(attr, _RX_EVENT[ev])


def _parse_end_mark(data: bytes, off: int) -> tuple[int, bool]:
    """``mrp_pdu_parse_end_mark``: (new offset, stop) -- stop at an EndMark (consumed) or
    when 2 bytes cannot be read."""
    if off + 2 > len(data):
        return off, True
    if data[off:off + 2] == MRP_END_MARK:
        return off + 2, True
    return off, False


# ------------------------------------------------------------------ per device
def mrp_port(dev: "NetDevice") -> dict[int, MrpApplicant]:
    """``dev->mrp_port``: the device's applicants by application type."""
    port = getattr(dev, "mrp_port", None)
    if port is None:
        port = {}
        dev.mrp_port = port  # type: ignore[attr-defined]
    return port


def mrp_init_applicant(dev: "NetDevice", appl: MrpApplication) -> MrpApplicant:
    """``mrp_init_applicant`` (the receive handler for the application's EtherType is bound
    too: ``mrp_register_application`` when the module is loaded)."""
    world = dev.net.world  # type: ignore[union-attr]
    if appl.ethertype not in world.ptype_base:
        world.ptype_base[appl.ethertype] = mrp_rcv_list
    app = MrpApplicant(dev, appl)
    mrp_port(dev)[appl.type] = app
    return app


def mrp_uninit_applicant(dev: "NetDevice", appl: MrpApplication) -> None:
    port = getattr(dev, "mrp_port", None)
    if not port or appl.type not in port:
        return
    app = port.pop(appl.type)
    app.uninit()


def mrp_applicant(dev: "NetDevice", appl: MrpApplication) -> MrpApplicant | None:
    port = getattr(dev, "mrp_port", None)
    return port.get(appl.type) if port else None


def mrp_rcv_list(pkts: list["Packet"]) -> None:
    """``mrp_rcv`` for a batch: a PDU unicast to another host (promiscuous device) or
    arriving on a device without an applicant of its EtherType is dropped; a PDU is
    always freed afterwards (``kfree_skb``)."""
    for pkt in pkts:
        dev = pkt.dev
        port = getattr(dev, "mrp_port", None)
        if pkt.pkt_type != PACKET_OTHERHOST and port:
            app = next((a for a in port.values() if a.app.ethertype == pkt.protocol), None)
            if app is not None:
                app.rcv(bytes(pkt.buf[pkt.data:pkt.tail]))
        kfree_skb_reason(pkt, "NOT_SPECIFIED")
