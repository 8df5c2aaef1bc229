"""GVRP (``ip link … type vlan gvrp on``): the GARP applicant of net/802/garp.c with the
vlan_gvrp.c application, and the LLC SAP 0x42 demux of net/802/stp.c.

PDU bytes follow IEEE 802.1D-2004 §12.11 built by hand here (802.3 length, LLC UI 42 42 03,
Protocol ID 0x0001, AttributeType 1, Length/Event/Value, EndMarks).  No 8021q/garp module
on the oracle kernel, so no differential."""
from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.cli import run_command
from netstack.core.dev import dev_queue_xmit
from netstack.core.world import World
from netstack.net802 import garp as G
from netstack.net802.gvrp import VLAN_GVRP_APP, vlan_gvrp_state

GROUP = bytes.fromhex("0180c2000021")


def pdu(*attrs: tuple[int, int | None], end: bool = True) -> bytes:
    """GARP PDU (after the LLC header): one VID message with ``(event, vid)`` attributes
    (vid None: LeaveAll, no value)."""
    out = b"\x00\x01" + b"\x01"
    for ev, vid in attrs:
        out += bytes((2, ev)) if vid is None else bytes((4, ev)) + vid.to_bytes(2, "big")
    return out + (b"\x00\x00" if end else b"")


class Pair:
    def __init__(self) -> None:
        self.world = World(subsystems=[])
        for line in ("ip netns add a", "ip netns add b",
                     "ip -n a link add e0 type veth peer name e0 netns b",
                     "ip -n a link set e0 up", "ip -n b link set e0 up"):
            self.sh(line)
        self.a, self.b = self.world.netns("a"), self.world.netns("b")
        self.wire: list[bytes] = []
        self.b.add_rx_tap(self.b.get("e0"), lambda p: self.wire.append(
            bytes(p.buf[p.mac_header:p.tail])))

    def sh(self, line: str) -> None:
        out, err = io.StringIO(), io.StringIO()
        assert run_command(self.world, line, out, err) == 0, (line, err.getvalue())

    def gvrp(self) -> list[bytes]:
        """GARP PDUs seen at b (802.3 + LLC headers checked)."""
        src = self.a.get("e0").address
        out = []
        for f in self.wire:
            if f[:6] == GROUP and f[14:17] == b"\x42\x42\x03":
                assert f[6:12] == src and int.from_bytes(f[12:14], "big") == len(f) - 14
                out.append(f[17:])
        return out

    def tick(self) -> None:
        app = G.garp_applicant(self.a.get("e0"), VLAN_GVRP_APP)
        assert app is not None and app.join_timer.active
        self.world.run_until(app.join_timer.expires)

    def state(self, vid: int) -> str | None:
        return vlan_gvrp_state(self.a.get("e0"), vid)


def test_join_sends_joinin_twice_then_stays_quiet() -> None:
    p = Pair()
    p.sh("ip -n a link add link e0 name v10 type vlan id 10 gvrp on")
    p.sh("ip -n a link set v10 up")
    assert p.state(10) == "VP"
    p.tick()
    assert p.gvrp() == [pdu((G.JOIN_IN, 10))]
    assert p.wire[0].hex() == ("0180c2000021" + p.a.get("e0").address.hex() + "000c"
                               "424203" "0001" "01" "0402000a" "00" "00")
    assert p.state(10) == "AA"
    p.tick()
    assert p.state(10) == "QA" and len(p.gvrp()) == 2
    p.world.advance(5.0)                       # no periodic timer in GARP
    assert len(p.gvrp()) == 2


def test_gid_order_and_leave() -> None:
    p = Pair()
    for vid in (30, 10, 20):
        p.sh(f"ip -n a link add link e0 name v{vid} type vlan id {vid} gvrp on")
        p.sh(f"ip -n a link set v{vid} up")
    p.tick()
    assert p.gvrp() == [pdu((G.JOIN_IN, 10), (G.JOIN_IN, 20), (G.JOIN_IN, 30))]
    p.tick()
    p.sh("ip -n a link set v20 down")          # ReqLeave in QA: LA
    assert p.state(20) == "LA"
    p.tick()                                   # LA -transmitPDU!-> LeaveEmpty, destroyed
    assert p.gvrp()[-1] == pdu((G.LEAVE_EMPTY, 20)) and p.state(20) is None


def test_delete_last_vlan_flushes_leave_and_8021ad_is_silent() -> None:
    p = Pair()
    p.sh("ip -n a link add link e0 name s5 type vlan protocol 802.1ad id 5 gvrp on")
    p.sh("ip -n a link set s5 up")
    p.sh("ip -n a link add link e0 name v10 type vlan id 10 gvrp on")
    p.sh("ip -n a link set v10 up")
    p.tick()
    p.tick()
    assert set(p.gvrp()) == {pdu((G.JOIN_IN, 10))} and p.state(5) is None
    p.sh("ip -n a link del s5")
    p.sh("ip -n a link del v10")               # ReqLeave: LA, then the final transmitPDU!
    p.world.run_until_idle()
    assert p.gvrp()[-1] == pdu((G.LEAVE_EMPTY, 10))
    assert getattr(p.a.get("e0"), "garp_port") == {}


def test_received_pdus_through_the_llc_demux() -> None:
    """b declares VID 10; a's JoinIn reaches b's applicant (rJoinIn: VP -> AP), a LeaveAll
    (rLeaveEmpty for all: AP -> VP); a frame for another SAP still reaches the bridge's
    LLC handler (UNHANDLED_PROTO)."""
    p = Pair()
    p.sh("ip -n b link add link e0 name v10 type vlan id 10 gvrp on")
    p.sh("ip -n b link set v10 up")
    bdev, adev = p.b.get("e0"), p.a.get("e0")
    assert vlan_gvrp_state(bdev, 10) == "VP"

    def send(body: bytes, dst: bytes = GROUP, llc: bytes = b"\x42\x42\x03") -> None:
        payload = llc + body
        dev_queue_xmit(p.world.new_packet(dst + adev.address + len(payload).to_bytes(2, "big")
                                          + payload), adev)
        p.world.run_until_idle()

    send(pdu((G.JOIN_IN, 10)))
    assert vlan_gvrp_state(bdev, 10) == "AP"
    send(pdu((G.LEAVE_ALL, None)))
    assert vlan_gvrp_state(bdev, 10) == "VP"
    send(pdu((G.JOIN_IN, 10)), llc=b"\x42\x42\x13")   # not UI: ignored
    assert vlan_gvrp_state(bdev, 10) == "VP"
    before = p.b.drops.as_dict().get("UNHANDLED_PROTO", 0)
    send(b"\x00" * 20, dst=bytes.fromhex("0180c2000000"), llc=b"\xaa\xaa\x03")
    assert p.b.drops.as_dict().get("UNHANDLED_PROTO", 0) == before + 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=48))
def test_malformed_pdus_never_raise(data: bytes) -> None:
    app = G.garp_applicant(_FUZZ.a.get("e0"), VLAN_GVRP_APP)
    assert app is not None
    app.rcv(data)
    app.rcv(b"\x00\x01" + data)
    app.rcv(b"\x00\x01\x01" + data)
    assert _FUZZ.state(10) in G.STATE_NAMES + (None,)


def _fuzz_pair() -> Pair:
    p = Pair()
    p.sh("ip -n a link add link e0 name v10 type vlan id 10 gvrp on")
    p.sh("ip -n a link set v10 up")
    return p


_FUZZ = _fuzz_pair()
