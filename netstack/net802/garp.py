"""The Generic Attribute Registration Protocol applicant (IEEE 802.1D-2004 §12;
net/802/garp.c) and the LLC demultiplexing of net/802/stp.c that hands it its PDUs.

Like MRP (:mod:`netstack.net802.mrp`) Linux is a pure applicant: per device and
application a GID of declared attributes with their applicant state (VA, AA, QA, LA, VP,
AP, QP, VO, AO, QO), a join timer (random 0..``garp_join_time`` = 200 ms, re-armed after
every expiry) whose expiry is a transmitPDU! event for every attribute, and a receive side.
GARP has no periodic timer and no LeaveAll of its own.

PDU layout (802.1D §12.11): LLC UI (DSAP = SSAP = 0x42, control 0x03) in an 802.3 frame
(length field) to the application's group address, Protocol ID 0x0001, Messages of
AttributeType + Attributes (Length incl. the 2 header bytes, Event, Value), an EndMark
(0x00) after each message's attributes and one after the messages.  Events on the wire:
LeaveAll 0, JoinEmpty 1, JoinIn 2, LeaveEmpty 3, LeaveIn 4, Empty 5.

Receive: the attribute data length is ``Length - 2`` (the 6.18-stable fix "net: garp: fix
unsigned integer underflow in garp_pdu_parse_attr"; before it the reversed subtraction made
every received Join/Leave miss its attribute).  LeaveIn is not acted upon (the kernel's
parser has no case for it).

Differences from the kernel, unobservable on the wire: the join timer runs only while the
GID has attributes; the join delays come from a per-applicant RNG seeded by the device; the
PDU is limited to the MTU minus the LLC header.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netstack.core.drop_reason import kfree_skb_reason

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice
    from netstack.core.world import World
    from netstack.packet.skb import Packet

GARP_JOIN_TIME_MS = 200
NSEC_PER_MSEC = 1_000_000
GARP_PROTOCOL_ID = 0x0001
GARP_END_MARK = 0x00
LLC_SAP_BSPAN = 0x42
LLC_PDU_CMD_UI = 0x03
ETH_P_802_2 = 0x0004
#: group addresses 01:80:c2:00:00:20..2f are GARP applications (net/802/stp.c)
GARP_ADDR_MIN, GARP_ADDR_MAX = 0x20, 0x2F

# enum garp_attr_event (on the wire)
LEAVE_ALL, JOIN_EMPTY, JOIN_IN, LEAVE_EMPTY, LEAVE_IN, EMPTY = range(6)

# enum garp_applicant_state
VA, AA, QA, LA, VP, AP, QP, VO, AO, QO = range(10)
STATE_NAMES = ("VA", "AA", "QA", "LA", "VP", "AP", "QP", "VO", "AO", "QO")

# enum garp_event
TRANSMIT_PDU, R_JOIN_IN, R_JOIN_EMPTY, R_EMPTY, R_LEAVE_IN, R_LEAVE_EMPTY, REQ_JOIN, \
    REQ_LEAVE = range(8)

# enum garp_action
NONE, S_JOIN_IN, S_LEAVE_EMPTY = range(3)


def _row(text: str) -> tuple[tuple[int, int] | None, ...]:
    """One state's transitions: ``-`` is GARP_APPLICANT_INVALID (the event is ignored),
    ``XX`` a new state, ``XX+J`` / ``XX+L`` with the sJoinIn / sLeaveEmpty action."""
    out: list[tuple[int, int] | None] = []
    for w in text.split():
        if w == "-":
            out.append(None)
            continue
        name, _, act = w.partition("+")
        out.append((STATE_NAMES.index(name), {"": NONE, "J": S_JOIN_IN, "L": S_LEAVE_EMPTY}[act]))
    return tuple(out)


#: ``garp_applicant_state_table`` (802.1D Table 12-3 restricted to the applicant-only
#: participant); columns: transmitPDU! rJoinIn rJoinEmpty rEmpty rLeaveIn rLeaveEmpty
#: ReqJoin ReqLeave
STATE_TABLE = (
    _row("AA+J AA VA VA VA VP - LA"),     # VA
    _row("QA+J QA VA VA VA VP - LA"),     # AA
    _row("- QA VA VA VP VP - LA"),        # QA
    _row("VO+L LA VO LA LA VO VA -"),     # LA
    _row("AA+J AP VP VP VP VP - VO"),     # VP
    _row("QA+J QP VP VP VP VP - AO"),     # AP
    _row("- QP VP VP VP VP - QO"),        # QP
    _row("- AO VO VO VO VO VP -"),        # VO
    _row("- QO VO VO VO VO AP -"),        # AO
    _row("- QO VO VO VO VO QP -"),        # QO
)

_RX_EVENT = {JOIN_EMPTY: R_JOIN_EMPTY, JOIN_IN: R_JOIN_IN, LEAVE_EMPTY: R_LEAVE_EMPTY,
             EMPTY: R_EMPTY}


@dataclass(frozen=True)
class GarpApplication:
    """``struct garp_application``: GVRP (GMRP is not used by Linux)."""

    type: int
    maxattr: int
    group_address: bytes


@dataclass
class GarpAttr:
    type: int
    data: bytes
    state: int = VO

    @property
    def key(self) -> tuple[int, int, bytes]:
        """``garp_attr_cmp`` order: type, length, bytes."""
        return (self.type, len(self.data), self.data)


class GarpApplicant:
    """``struct garp_applicant`` of one application on one device."""

    def __init__(self, dev: "NetDevice", appl: GarpApplication) -> None:
        self.dev = dev
        self.app = appl
        self.gid: dict[tuple[int, int, bytes], GarpAttr] = {}
        self.pdu: bytearray | None = None
        self.cur_type = 0
        self.queue: list[bytes] = []
        self.world = dev.net.world  # type: ignore[union-attr]
        self.clock = self.world.clock
        self.rng = random.Random(f"garp:{appl.type}:{dev.name}:{dev.ifindex}")
        self.join_timer = self.clock.timer(self._join_timer)
        self.active = True
        self.tx_pdus = 0

    # ------------------------------------------------------------------ GID
    def lookup(self, data: bytes, atype: int) -> GarpAttr | None:
        return self.gid.get((atype, len(data), bytes(data)))

    def state_of(self, data: bytes, atype: int) -> str | None:
        a = self.lookup(data, atype)
        return None if a is None else STATE_NAMES[a.state]

    def request_join(self, data: bytes, atype: int) -> None:
        """``garp_request_join``: the attribute (created in VO, or re-used), ReqJoin."""
        key = (atype, len(data), bytes(data))
        attr = self.gid.get(key)
        if attr is None:
            attr = self.gid[key] = GarpAttr(atype, bytes(data))
        self.attr_event(attr, REQ_JOIN)
        if self.active and self.gid and not self.join_timer.active:
            self._join_timer_arm()

    def request_leave(self, data: bytes, atype: int) -> None:
        """``garp_request_leave``."""
        attr = self.lookup(data, atype)
        if attr is not None:
            self.attr_event(attr, REQ_LEAVE)

    def gid_event(self, event: int) -> None:
        """``garp_gid_event``: the event for every attribute in GID order."""
        for k in sorted(self.gid):
            attr = self.gid.get(k)
            if attr is not None:
                self.attr_event(attr, event)

    def attr_event(self, attr: GarpAttr, event: int) -> None:
        """``garp_attr_event``: an invalid transition is ignored; sJoinIn that does not fit
        leaves the state for the next transmitPDU!; sLeaveEmpty ends the attribute."""
        tr = STATE_TABLE[attr.state][event]
        if tr is None:
            return
        state, action = tr
        if action == S_JOIN_IN:
            if not self._append_attr(attr, JOIN_IN):
                return
        elif action == S_LEAVE_EMPTY:
            self._append_attr(attr, LEAVE_EMPTY)
            del self.gid[attr.key]
            return
        attr.state = state

    # ------------------------------------------------------------------ PDU
    def _tailroom(self) -> int:
        assert self.pdu is not None
        return self.dev.mtu - 3 - len(self.pdu)  # LLC_RESERVE taken from the room

    def _pdu_init(self) -> None:
        self.pdu = bytearray(GARP_PROTOCOL_ID.to_bytes(2, "big"))
        self.cur_type = 0

    def _append_end_mark(self) -> bool:
        if self._tailroom() < 1:
            return False
        self.pdu.append(GARP_END_MARK)  # type: ignore[union-attr]
        return True

    def _append_attr(self, attr: GarpAttr, event: int) -> bool:
        """``garp_pdu_append_attr``: a new Message when the type changes (after the
        previous one's EndMark), then Length/Event/Value; a full PDU is queued and the
        attribute goes into a new one."""
        while True:
            if self.pdu is None:
                self._pdu_init()
            if self.cur_type != attr.type:
                if self.cur_type and not self._append_end_mark():
                    self.pdu_queue()
                    continue
                if self._tailroom() < 1:
                    self.pdu_queue()
                    continue
                self.pdu.append(attr.type)  # type: ignore[union-attr]
                self.cur_type = attr.type
            n = 2 + len(attr.data)
            if self._tailroom() < n:
                self.pdu_queue()
                continue
            self.pdu += bytes((n & 0xFF, event)) + attr.data  # type: ignore[operator]
            return True

    def pdu_queue(self) -> None:
        """``garp_pdu_queue``: two EndMarks (where they fit), the LLC UI header and the
        802.3 header (``llc_mac_hdr_init``: length field) from the device's address."""
        if self.pdu is None:
            return
        self._append_end_mark()
        self._append_end_mark()
        llc = bytes((LLC_SAP_BSPAN, LLC_SAP_BSPAN, LLC_PDU_CMD_UI)) + bytes(self.pdu)
        frame = self.app.group_address + self.dev.address + len(llc).to_bytes(2, "big") + llc
        self.queue.append(frame)
        self.pdu = None
        self.cur_type = 0

    def queue_xmit(self) -> None:
        from netstack.core.dev import dev_queue_xmit
        while self.queue:
            frame = self.queue.pop(0)
            pkt = self.world.new_packet(frame)
            pkt.protocol = ETH_P_802_2
            pkt.mac_header = pkt.data
            pkt.network_header = pkt.data + 14
            pkt.dev = self.dev
            self.tx_pdus += 1
            dev_queue_xmit(pkt, self.dev)

    # ---------------------------------------------------------------- timer
    def _join_timer_arm(self) -> None:
        self.join_timer.mod_in(self.rng.randrange(GARP_JOIN_TIME_MS) * NSEC_PER_MSEC)

    def _join_timer(self) -> None:
        """``garp_join_timer``: transmitPDU! for every attribute, send, re-arm."""
        self.gid_event(TRANSMIT_PDU)
        self.pdu_queue()
        self.queue_xmit()
        if self.active and self.gid:
            self._join_timer_arm()

    def uninit(self) -> None:
        """``garp_uninit_applicant``: stop the timer, a last transmitPDU!, send."""
        self.active = False
        self.join_timer.cancel()
        self.gid_event(TRANSMIT_PDU)
        self.pdu_queue()
        self.queue_xmit()

    # -------------------------------------------------------------- receive
    def rcv(self, data: bytes) -> None:
        """``garp_pdu_rcv`` after the LLC header: Protocol ID, then Messages until an
        EndMark or a malformed one."""
        if len(data) < 2 or int.from_bytes(data[:2], "big") != GARP_PROTOCOL_ID:
            return
        off = 2
        while len(data) > off:
            off, ok = self._parse_msg(data, off)
            if not ok:
                break
            off, stop = _parse_end_mark(data, off)
            if stop:
                break

    def _parse_msg(self, data: bytes, off: int) -> tuple[int, bool]:
        if off >= len(data) or data[off] == 0:
            return off, False
        atype = data[off]
        off += 1
        while len(data) > off:
            off, ok = self._parse_attr(data, off, atype)
            if not ok:
                return off, False
            off, stop = _parse_end_mark(data, off)
            if stop:
                break
        return off, True

    def _parse_attr(self, data: bytes, off: int, atype: int) -> tuple[int, bool]:
        """``garp_pdu_parse_attr``."""
        if off + 2 > len(data):
            return off, False
        alen, event = data[off], data[off + 1]
        if alen < 2 or off + alen > len(data):
            return off, False
        value = bytes(data[off + 2:off + alen])
        off += alen
        if atype > self.app.maxattr:
            return off, True
        if event == LEAVE_ALL:
            if value:
                return off, False
            self.gid_event(R_LEAVE_EMPTY)
            return off, True
        if event not in _RX_EVENT:
            return off, True
        if not value:
            return off, False
        attr = self.lookup(value, atype)
        if attr is not None:
            self.attr_event(attr, _RX_EVENT[event])
        return off, True


def _parse_end_mark(data: bytes, off: int) -> tuple[int, bool]:
    """``garp_pdu_parse_end_mark``: (offset, stop)."""
    if off >= len(data):
        return off, True
    if data[off] == GARP_END_MARK:
        return off + 1, True
    return off, False


# ------------------------------------------------------------------ per device
def garp_applicant(dev: "NetDevice", appl: GarpApplication) -> GarpApplicant | None:
    port = getattr(dev, "garp_port", None)
    return port.get(appl.type) if port else None


def garp_init_applicant(dev: "NetDevice", appl: GarpApplication) -> GarpApplicant:
    """``garp_init_applicant``; the first one also binds the LLC demux (``stp_proto_register``
    when the application registers)."""
    world = dev.net.world  # type: ignore[union-attr]
    stp_register(world)
    port = getattr(dev, "garp_port", None)
    if port is None:
        port = {}
        dev.garp_port = port  # type: ignore[attr-defined]
    app = GarpApplicant(dev, appl)
    port[appl.type] = app
    return app


def garp_uninit_applicant(dev: "NetDevice", appl: GarpApplication) -> None:
    port = getattr(dev, "garp_port", None)
    if port and appl.type in port:
        port.pop(appl.type).uninit()


# ------------------------------------------------------- LLC SAP 0x42 (stp.c)
def stp_register(world: "World") -> None:
    """Make :func:`stp_pdu_rcv_list` the ETH_P_802_2 handler: the bridge's BPDU handler
    (``netstack.drivers.bridge.br_stp_bpdu.llc_rcv_list``) keeps every frame that is not
    for a GARP group address, as ``stp_pdu_rcv`` hands those to the STP proto."""
    if world.ptype_base.get(ETH_P_802_2) is not stp_pdu_rcv_list:
        world.ptype_base[ETH_P_802_2] = stp_pdu_rcv_list


def stp_pdu_rcv_list(pkts: list["Packet"]) -> None:
    """net/802/stp.c ``stp_pdu_rcv`` for GARP addresses (01:80:c2:00:00:2X): LLC UI with
    SAP 0x42, trimmed to the 802.3 length (``llc_fixup_skb``), to the applicant of the
    application registered for that address on the receiving device; GARP frames nobody
    handles are freed (``kfree_skb``).  Everything else goes to the bridge's LLC handler."""
    rest: list["Packet"] = []
    for pkt in pkts:
        mac = pkt.mac_header
        buf = pkt.buf
        dst = bytes(buf[mac:mac + 6])
        if not (dst[:5] == b"\x01\x80\xc2\x00\x00" and GARP_ADDR_MIN <= dst[5] <= GARP_ADDR_MAX):
            rest.append(pkt)
            continue
        d = pkt.data
        length = (buf[mac + 12] << 8) | buf[mac + 13]
        end = d + length
        if pkt.tail - d < 3 or buf[d] != LLC_SAP_BSPAN or buf[d + 1] != LLC_SAP_BSPAN \
                or buf[d + 2] != LLC_PDU_CMD_UI or length < 3 or end > pkt.tail:
            kfree_skb_reason(pkt, "NOT_SPECIFIED")
            continue
        port = getattr(pkt.dev, "garp_port", None)
        app = next((a for a in (port or {}).values() if a.app.group_address == dst), None)
        if app is not None:
            app.rcv(bytes(buf[d + 3:end]))
        kfree_skb_reason(pkt, "NOT_SPECIFIED")
    if rest:
        from netstack.drivers.bridge.br_stp_bpdu import llc_rcv_list
        llc_rcv_list(rest)
