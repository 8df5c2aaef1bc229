"""MVRP (``ip link … type vlan mvrp on``): the MRP applicant of net/802/mrp.c with the
vlan_mvrp.c application, on the virtual clock.

PDU bytes are checked against IEEE 802.1Q-2011 §10.8 built by hand here (ProtocolVersion 0,
Message AttributeType 1 = VID / AttributeLength 2, VectorAttribute NumberOfValues +
FirstValue + events packed three to a byte, EndMarks).  The kernel here has no 8021q/mrp
modules, so there is no differential; the state machine is the one of Table 10-3 as
net/802/mrp.c encodes it."""
from __future__ import annotations

import io
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.cli import run_command
from netstack.core.world import World
from netstack.net802 import mrp as M
from netstack.net802.mvrp import VLAN_MRP_APP, vlan_mvrp_state

GROUP = bytes.fromhex("0180c2000021")
JOIN_IN, NEW, LV = M.EV_JOIN_IN, M.EV_NEW, M.EV_LV


def pdu(*vectors: tuple[int, list[int]], leave_all: bool = False) -> bytes:
    """An MVRP PDU payload: one VID message with VectorAttributes ``(first_vid, events)``."""
    out = b"\x00" + b"\x01\x02"
    for first, events in vectors:
        out += struct.pack(">HH", (0x2000 if leave_all else 0) | len(events), first)
        for i in range(0, len(events), 3):
            chunk = events[i:i + 3] + [0] * (3 - len(events[i:i + 3]))
            out += bytes([(chunk[0] * 6 + chunk[1]) * 6 + chunk[2]])
    return out + b"\x00\x00" + b"\x00\x00"


class Host:
    """Two namespaces a/b joined by a veth e0<->e0, frames arriving at b:e0 recorded."""

    def __init__(self) -> None:
        self.world = World(subsystems=[])
        self.sh("ip netns add a")
        self.sh("ip netns add b")
        self.sh("ip -n a link add e0 type veth peer name e0 netns b")
        self.sh("ip -n a link set e0 up")
        self.sh("ip -n b link set e0 up")
        self.a, self.b = self.world.netns("a"), self.world.netns("b")
        self.wire: list[tuple[int, bytes]] = []
        self.b.add_rx_tap(self.b.get("e0"), lambda p: self.wire.append(
            (self.world.clock.now, bytes(p.buf[p.mac_header:p.tail]))))

    def sh(self, line: str) -> None:
        out, err = io.StringIO(), io.StringIO()
        assert run_command(self.world, line, out, err) == 0, (line, err.getvalue())

    def mvrp(self) -> list[bytes]:
        """Payloads of the MVRP frames seen so far (header checked)."""
        src = self.a.get("e0").address
        out = []
        for _, f in self.wire:
            if f[12:14] == b"\x88\xf5":
                assert f[:6] == GROUP and f[6:12] == src
                out.append(f[14:])
        return out

    def state(self, vid: int) -> str | None:
        return vlan_mvrp_state(self.a.get("e0"), vid)

    def tick(self) -> None:
        """Run to the next expiry of a's join timer (the delays are random 0..199 ms)."""
        app = M.mrp_applicant(self.a.get("e0"), VLAN_MRP_APP)
        assert app is not None and app.join_timer.active
        self.world.run_until(app.join_timer.expires)


def test_join_sends_joinin_twice_then_once_per_period() -> None:
    h = Host()
    h.sh("ip -n a link add link e0 name v10 type vlan id 10 mvrp on")
    assert h.state(10) is None                  # not declared while down
    h.sh("ip -n a link set v10 up")
    assert h.state(10) == "VP"
    h.tick()                                    # first join timer expiry: VP -tx!-> AA
    assert h.mvrp() == [pdu((10, [JOIN_IN]))]
    assert h.mvrp()[0].hex() == "000102" "0001" "000a" "24" "0000" "0000"
    assert h.state(10) == "AA"
    h.tick()                                    # AA -tx!-> QA, JoinIn again
    assert h.state(10) == "QA" and len(h.mvrp()) == 2
    for _ in range(3):
        h.tick()                                # QA: JoinIn optional, nothing sent
    assert len(h.mvrp()) == 2 or h.world.clock.now >= 1_000_000_000
    h.world.run_until(3_950_000_000)            # periodic! at 1, 2, 3 s: QA -> AA -> JoinIn
    assert len(h.mvrp()) == 5 and set(h.mvrp()) == {pdu((10, [JOIN_IN]))}
    # the periodic ones follow the periodic timer's 1 s phase (applicant made at t=0),
    # each sent at the first join timer expiry after it (< 200 ms later)
    times = [t for t, f in h.wire if f[12:14] == b"\x88\xf5"][2:]
    assert all(t % 1_000_000_000 < 200_000_000 for t in times)
    assert [t // 1_000_000_000 for t in times] == [1, 2, 3]


def test_consecutive_vids_share_a_vector_and_order_is_by_value() -> None:
    h = Host()
    for vid in (13, 11, 20, 12, 10):
        h.sh(f"ip -n a link add link e0 name v{vid} type vlan id {vid} mvrp on")
        h.sh(f"ip -n a link set v{vid} up")
    h.tick()
    assert h.mvrp() == [pdu((10, [JOIN_IN] * 4), (20, [JOIN_IN]))]
    # 4 events: two vector bytes, (1,1,1) = 43 then (1,0,0) = 36
    assert pdu((10, [JOIN_IN] * 4))[7:9] == bytes([43, 36])


def test_leave_on_down_and_the_attribute_is_gone() -> None:
    h = Host()
    h.sh("ip -n a link add link e0 name v10 type vlan id 10 mvrp on")
    h.sh("ip -n a link add link e0 name v11 type vlan id 11")
    h.sh("ip -n a link set v10 up")
    h.sh("ip -n a link set v11 up")
    h.world.advance(0.5)
    n = len(h.mvrp())
    h.sh("ip -n a link set v10 down")            # vlan_dev_stop: Lv! -> LA
    assert h.state(10) == "LA"
    h.tick()                                      # LA -tx!-> Lv sent, attribute destroyed
    assert h.mvrp()[n:] == [pdu((10, [LV]))]
    assert h.state(10) is None
    h.world.advance(3.0)
    assert len(h.mvrp()) == n + 1                 # nothing declared, nothing sent


def test_switching_mvrp_on_and_off_while_running() -> None:
    h = Host()
    h.sh("ip -n a link add link e0 name v7 type vlan id 7")
    h.sh("ip -n a link set v7 up")
    h.world.advance(1.5)
    assert h.mvrp() == []
    h.sh("ip -n a link set v7 type vlan mvrp on")   # vlan_dev_change_flags: join
    assert h.state(7) == "VP"
    h.tick()
    assert h.mvrp() == [pdu((7, [JOIN_IN]))]
    h.sh("ip -n a link set v7 type vlan mvrp off")  # leave: AA -Lv!-> LA
    assert h.state(7) == "LA"
    h.tick()
    assert h.mvrp() == [pdu((7, [JOIN_IN])), pdu((7, [LV]))] and h.state(7) is None


def test_deleting_the_last_vlan_flushes_the_leave_at_once() -> None:
    """unregister_vlan_dev: Lv!, then (no vlan left) mrp_uninit_applicant's final tx!."""
    h = Host()
    h.sh("ip -n a link add link e0 name v10 type vlan id 10 mvrp on")
    h.sh("ip -n a link set v10 up")
    h.world.advance(0.5)
    n = len(h.mvrp())
    h.sh("ip -n a link del v10")
    h.world.run_until_idle()
    assert h.mvrp()[n:] == [pdu((10, [LV]))]
    assert getattr(h.a.get("e0"), "mrp_port") == {}


def test_8021ad_vlans_never_declare() -> None:
    h = Host()
    h.sh("ip -n a link add link e0 name s10 type vlan protocol 802.1ad id 10 mvrp on")
    h.sh("ip -n a link set s10 up")
    h.world.advance(2.0)
    assert h.mvrp() == [] and h.state(10) is None


def test_received_joinin_and_leaveall_drive_the_applicant() -> None:
    """Both ends declare VID 10: each one's JoinIn is the other's rJoinIn! (AA -> QA: the
    second JoinIn is saved); a LeaveAll (rLA!) sends QA back to VP (re-declare)."""
    h = Host()
    for ns in ("a", "b"):
        h.sh(f"ip -n {ns} link add link e0 name v10 type vlan id 10 mvrp on")
        h.sh(f"ip -n {ns} link set v10 up")
    h.world.advance(3.0)
    sa, sb = h.state(10), vlan_mvrp_state(h.b.get("e0"), 10)
    assert sa in ("QA", "AA") and sb in ("QA", "AA")
    app = M.mrp_applicant(h.a.get("e0"), VLAN_MRP_APP)
    assert app is not None
    app.attr_event(app.lookup(b"\x00\x0a", 1), M.TX)   # whatever it was: to QA
    assert h.state(10) == "QA"
    app.rcv(pdu((10, [M.EV_MT]), leave_all=True))       # rLA! then rMt!
    assert h.state(10) == "VP"
    app.rcv(pdu((10, [JOIN_IN])))                      # rJoinIn! in VP: AP
    assert h.state(10) == "AP"


def test_pdu_full_splits_across_frames() -> None:
    """A PDU is queued when the next event does not fit (here: the MTU, 68) and the event
    goes into a new one; ``mrp_pdu_queue`` adds the EndMarks only where they still fit."""
    h = Host()
    h.sh("ip -n a link set e0 mtu 68")
    for vid in range(2, 60, 2):                      # 29 non-consecutive VIDs: 5 bytes each
        h.sh(f"ip -n a link add link e0 name v{vid} type vlan id {vid} mvrp on")
        h.sh(f"ip -n a link set v{vid} up")
    h.tick()
    frames = h.mvrp()
    # 3 + 13 * 5 = 68: no room for an EndMark in the first two
    assert [len(f) for f in frames] == [68, 68, 3 + 3 * 5 + 4]
    vids = []
    for f in frames:
        assert f[:3] == b"\x00\x01\x02"
        body = f[3:] if len(f) == 68 else f[3:-4]
        assert len(body) % 5 == 0 and (len(f) == 68 or f[-4:] == bytes(4))
        vids += [int.from_bytes(body[i + 2:i + 4], "big") for i in range(0, len(body), 5)]
        assert all(body[i + 4] == 36 for i in range(0, len(body), 5))
    assert vids == list(range(2, 60, 2))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_malformed_pdus_never_raise(data: bytes) -> None:
    h = _FUZZ
    app = M.mrp_applicant(h.a.get("e0"), VLAN_MRP_APP)
    assert app is not None
    app.rcv(data)
    app.rcv(b"\x00\x01\x02" + data)
    assert set(M.STATE_NAMES) >= {h.state(v) or "VO" for v in (10, 11)}


def _fuzz_host() -> Host:
    h = Host()
    for vid in (10, 11):
        h.sh(f"ip -n a link add link e0 name v{vid} type vlan id {vid} mvrp on")
        h.sh(f"ip -n a link set v{vid} up")
    return h


_FUZZ = _fuzz_host()


def test_received_pdus_reach_the_applicant_through_the_stack() -> None:
    """A PDU arriving on the lower device is handed to mrp_rcv (EtherType 0x88f5) and then
    freed; one for another host (PACKET_OTHERHOST) is ignored."""
    h = Host()
    h.sh("ip -n b link add link e0 name v10 type vlan id 10 mvrp on")
    h.sh("ip -n b link set v10 up")
    bdev = h.b.get("e0")
    assert vlan_mvrp_state(bdev, 10) == "VP"
    from netstack.core.dev import dev_queue_xmit
    frame = GROUP + h.a.get("e0").address + b"\x88\xf5" + pdu((10, [JOIN_IN]))
    dev_queue_xmit(h.world.new_packet(frame), h.a.get("e0"))
    h.world.run_until_idle()
    assert vlan_mvrp_state(bdev, 10) == "AP"
    unicast = bytes.fromhex("020000000099") + frame[6:]
    before = vlan_mvrp_state(bdev, 10)
    dev_queue_xmit(h.world.new_packet(unicast[:14] + pdu((10, [LV]), leave_all=True)),
                   h.a.get("e0"))
    h.world.run_until_idle()
    assert vlan_mvrp_state(bdev, 10) == before
