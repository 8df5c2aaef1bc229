"""The wireless AP model (netstack/drivers/wireless): hostapd-style snooping from a pcap
of DHCP/ARP/ND, Proxy ARP answered by the bridge, disassociation cleanup, ap_isolate
with and without hairpin, group-key delivery and the station-side drop_* knobs."""

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import dpkt
import pytest

_TESTS = Path(__file__).resolve().parents[2]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from kernel.cases import (arp, eth, eth_arp, eth_ip, eth_ip6, icmp4_echo, icmp6_na, ip4,  # noqa: E402
                          ip6, mac, udp4)
from netstack.api import Stack  # noqa: E402
from netstack.core.neighbour import NUD_PERMANENT, neigh_lookup  # noqa: E402
from netstack.drivers.bridge.br_private import BR_HAIRPIN_MODE, BR_PROXYARP_WIFI  # noqa: E402
from netstack.drivers.wireless.ap import create_ap  # noqa: E402
from netstack.drivers.wireless.snoop import x_snoop_init  # noqa: E402
from netstack.errors import KernelError  # noqa: E402
from netstack.packet.pcap import PcapWriter, open_capture  # noqa: E402

AP_MAC = "02:00:00:00:aa:01"
SRV_MAC = "02:00:00:00:0f:01"
STA = {1: "02:00:00:00:5a:01", 2: "02:00:00:00:5a:02"}
STA_IP = {1: "10.0.0.11", 2: "10.0.0.12"}
STA_IP6 = {1: "2001:db8::11", 2: "2001:db8::12"}
BCAST = "ff:ff:ff:ff:ff:ff"

SCRIPT = """ip netns add ap
ip netns add srv
ip netns add s1
ip netns add s2
ip netns exec srv sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec s1 sysctl -qw net.ipv6.conf.default.accept_dad=0
ip netns exec s2 sysctl -qw net.ipv6.conf.default.accept_dad=0
ip netns exec ap sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec ap sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip -n ap link add br0 address 02:00:00:00:aa:b0 type bridge mcast_snooping 0
ip -n ap link add eth0 address 02:00:00:00:aa:02 type veth peer name eth0 address 02:00:00:00:0f:01 netns srv
ip -n ap link set eth0 master br0
ip -n ap link set br0 up
ip -n ap link set eth0 up
ip -n srv link set eth0 up
ip -n srv addr add 10.0.0.1/24 dev eth0
"""


def build(ap_isolate: bool = True, snoop: bool = True, mc2uc: bool = False):  # type: ignore[no-untyped-def]
    s = Stack()
    s.run_script(SCRIPT, name="ap.sh")
    w = s.world
    ap = create_ap(w.netns("ap"), "wlan0", mac(AP_MAC), ap_isolate=ap_isolate,
                   multicast_to_unicast=mc2uc)
    s.run_script("ip -n ap link set wlan0 master br0\nip -n ap link set wlan0 up\n", name="ap2.sh")
    for i in (1, 2):
        ap.associate(w.netns(f"s{i}"), "wlan0", mac(STA[i]))
        s.run_script(f"ip -n s{i} link set wlan0 up\nip -n s{i} addr add {STA_IP[i]}/24 dev wlan0\n"
                     f"ip -n s{i} addr add {STA_IP6[i]}/64 dev wlan0 nodad\n", name="sta.sh")
    sn = x_snoop_init(ap) if snoop else None
    return s, ap, sn


def br0(s: Stack):  # type: ignore[no-untyped-def]
    return s.world.netns("ap").get("br0")


def neigh(s: Stack, family: int, addr: str):  # type: ignore[no-untyped-def]
    net = s.world.netns("ap")
    tbl = net.ipv4.arp_tbl if family == 4 else net.ipv6.nd_tbl
    return neigh_lookup(tbl, br0(s), ip4(addr) if family == 4 else ip6(addr))


def dhcp_ack(sta: int, yiaddr: str, *, broadcast: bool = True) -> bytes:
    d = dpkt.dhcp.DHCP(op=dpkt.dhcp.DHCP_OP_REPLY, chaddr=mac(STA[sta]), xid=0x77,
                       yiaddr=struct.unpack("!I", ip4(yiaddr))[0],
                       opts=[(dpkt.dhcp.DHCP_OPT_MSGTYPE, bytes([dpkt.dhcp.DHCPACK])),
                             (dpkt.dhcp.DHCP_OPT_NETMASK, ip4("255.255.255.0")),
                             (dpkt.dhcp.DHCP_OPT_SERVER_ID, ip4("10.0.0.1"))])
    u = udp4("10.0.0.1", "255.255.255.255" if broadcast else yiaddr, 67, 68, bytes(d))
    return eth_ip(BCAST if broadcast else STA[sta], SRV_MAC, u)


def ns_from(sta: int, target: str) -> bytes:
    t = ip6(target)
    body = struct.pack("!4x16s", t) + struct.pack("!BB6s", 1, 1, mac(STA[sta]))
    msg = dpkt.icmp6.ICMP6(type=135, code=0, data=body)
    dst = ip6("ff02::1:ff00:0")[:13] + t[13:]
    ip = dpkt.ip6.IP6(v=6, fc=0, flow=0, nxt=58, hlim=255, src=ip6(STA_IP6[sta]), dst=dst,
                      plen=len(bytes(msg)), data=msg)
    return eth("33:33:ff:" + ":".join(f"{b:02x}" for b in t[13:]), STA[sta], 0x86DD, bytes(ip))


def garp(sta: int, lladdr: str | None = None) -> bytes:
    m = lladdr or STA[sta]
    return eth_arp(BCAST, m, arp(1, m, STA_IP[sta], "00:00:00:00:00:00", STA_IP[sta]))


def una(sta: int, lladdr: str | None = None) -> bytes:
    m = lladdr or STA[sta]
    return eth_ip6("33:33:00:00:00:01", m, icmp6_na(STA_IP6[sta], "ff02::1", STA_IP6[sta], m,
                                                    solicited=False, override=True))


def write_pcap(frames: list[bytes]) -> bytes:
    buf = io.BytesIO()
    w = PcapWriter(buf)
    for i, f in enumerate(frames):
        w.write(f, ts_ns=1_700_000_000_000_000_000 + i * 1000)
    w.close()
    return buf.getvalue()


def test_x_snoop_requires_ap_isolate_and_sets_port_flags() -> None:
    s, ap, _ = build(ap_isolate=False, snoop=False)
    with pytest.raises(KernelError):
        x_snoop_init(ap)
    s, ap, sn = build()
    p = br0(s).br.port_of(ap)
    assert p.flags & BR_HAIRPIN_MODE and p.flags & BR_PROXYARP_WIFI
    assert s.world.netns("ap").sysctl.get("net.ipv4.conf.br0.arp_accept") == 1


def test_snooping_from_a_pcap() -> None:
    s, ap, sn = build()
    bad_dhcp = dhcp_ack(1, "10.0.0.99")[:-1] + bytes([53, 5])  # drop END, truncated option
    bad_ipv4 = bytearray(bad_dhcp)
    bad_nd = bytearray(ns_from(2, STA_IP6[2]))
    bad_nd[14 + 40 + 24 + 1] = 0  # option length 0
    frames = [dhcp_ack(1, STA_IP[1]), ns_from(2, STA_IP6[2]), garp(2), una(1), bytes(bad_ipv4),
              bytes(bad_nd), dhcp_ack(1, STA_IP[1]),
              eth_arp(BCAST, "02:00:00:00:77:77", arp(1, "02:00:00:00:77:77", "10.0.0.77",
                                                       "00:00:00:00:00:00", "10.0.0.77"))]
    data = write_pcap(frames)
    sn.feed(f.data for f in open_capture(io.BytesIO(data)))
    assert sn.bindings() == {mac(STA[1]): (ip4(STA_IP[1]), (ip6(STA_IP6[1]),)),
                             mac(STA[2]): (ip4(STA_IP[2]), (ip6(STA_IP6[2]),))}
    for fam, addr, sta in ((4, STA_IP[1], 1), (4, STA_IP[2], 2), (6, STA_IP6[1], 1), (6, STA_IP6[2], 2)):
        n = neigh(s, fam, addr)
        assert n is not None and n.nud_state == NUD_PERMANENT and n.lladdr == mac(STA[sta])
    assert neigh(s, 4, "10.0.0.77") is None  # not a station
    assert sn.errors == {"HDR_TRUNC": 1, "IPV6_NDISC_BAD_OPTIONS": 1}
    assert s.drops("ap")["HDR_TRUNC"] == 1 and s.drops("ap")["IPV6_NDISC_BAD_OPTIONS"] == 1
    out = s.command("ip -n ap neigh show dev br0").stdout
    assert f"{STA_IP[1]} lladdr {STA[1]} PERMANENT" in out


def test_new_dhcp_address_replaces_old_and_disassoc_cleans_up() -> None:
    s, ap, sn = build()
    sn.feed([dhcp_ack(1, STA_IP[1]), ns_from(1, STA_IP6[1])])
    sn.feed([dhcp_ack(1, "10.0.0.21")])
    assert neigh(s, 4, STA_IP[1]) is None and neigh(s, 4, "10.0.0.21") is not None
    ap.disassociate(mac(STA[1]))
    assert neigh(s, 4, "10.0.0.21") is None and neigh(s, 6, STA_IP6[1]) is None
    assert mac(STA[1]) not in sn.bindings()


def test_live_snooping_then_proxy_arp_spares_the_stations() -> None:
    """A broadcast DHCPACK from the server and a station's NS/GARP cross the bridge; the
    snooper sees them on br0 like hostapd's packet socket; afterwards the server's ARP
    request for a station is answered by the bridge and never reaches the air."""
    s, ap, sn = build()
    s.inject("srv", "eth0", [dhcp_ack(1, STA_IP[1])])
    s.inject("s2", "wlan0", [garp(2)])
    assert neigh(s, 4, STA_IP[1]).lladdr == mac(STA[1])
    assert neigh(s, 4, STA_IP[2]).lladdr == mac(STA[2])
    s.inject("s1", "wlan0", [garp(1)])  # the bridge learns where STA1 lives
    air1 = s.capture("s1", "wlan0")
    air2 = s.capture("s2", "wlan0")
    srv = s.capture("srv", "eth0")
    req = eth_arp(BCAST, SRV_MAC, arp(1, SRV_MAC, "10.0.0.1", "00:00:00:00:00:00", STA_IP[1]))
    s.inject("srv", "eth0", [req])
    assert [f.data for f in srv] == [eth_arp(SRV_MAC, STA[1], arp(2, STA[1], STA_IP[1], SRV_MAC,
                                                                   "10.0.0.1"))]
    assert air1 == [] and air2 == []


def test_unicast_to_unknown_station_dropped() -> None:
    s, ap, _ = build()
    before = ap.stats.tx_dropped
    s.inject("srv", "eth0", [eth_ip("02:00:00:00:5a:09", SRV_MAC, udp4("10.0.0.1", "10.0.0.9", 1, 2, b"x"))])
    # unknown unicast floods to wlan0, which has no such station
    assert ap.stats.tx_dropped == before + 1


def _udp_to(sta_from: int, sta_to: int, dst_mac: str, payload: bytes) -> bytes:
    return eth_ip(dst_mac, STA[sta_from], udp4(STA_IP[sta_from], STA_IP[sta_to], 1000, 2000, payload))


def test_ap_isolate_hairpin_and_internal_relay() -> None:
    # relay inside the AP: the bridge never sees the frame
    s, ap, _ = build(ap_isolate=False, snoop=False)
    air2 = s.capture("s2", "wlan0")
    wired = s.capture("srv", "eth0")
    f = _udp_to(1, 2, STA[2], b"relayed")
    s.inject("s1", "wlan0", [f])
    # STA2's ICMP port unreachable needs STA1's address: that ARP exchange is relayed too
    assert [x.data for x in air2 if x.data[12:14] == b"\x08\x00"] == [f]
    assert [x.data for x in wired if x.data == f] == []  # never reached the bridge
    # isolated without hairpin: up to the bridge, which may not send it back
    s, ap, _ = build(ap_isolate=True, snoop=False)
    s.inject("s2", "wlan0", [garp(2)])  # FDB: STA2 behind wlan0
    air2 = s.capture("s2", "wlan0")
    s.inject("s1", "wlan0", [f])
    assert air2 == []
    # hairpin (what x_snoop_init turns on) returns it through the bridge
    br0(s).br.port_of(ap).flags |= BR_HAIRPIN_MODE
    s.inject("s1", "wlan0", [f])
    # (STA2 then answers with ICMP port unreachable, resolving STA1 via the AP as well)
    assert [x.data for x in air2 if x.data[12:14] == b"\x08\x00"] == [f]


def _group_udp(sysctl: int, mc2uc: bool = False):  # type: ignore[no-untyped-def]
    s, ap, _ = build(ap_isolate=False, snoop=False, mc2uc=mc2uc)
    s.run_script(f"ip netns exec s2 sysctl -qw net.ipv4.conf.all.drop_unicast_in_l2_multicast={sysctl}\n"
                 f"ip -n s2 neigh add {STA_IP[1]} lladdr {STA[1]} dev wlan0 nud permanent\n")
    air1 = s.capture("s1", "wlan0")
    # "Hole 196": STA1 wraps an echo request for STA2 in a group-addressed frame
    s.inject("s1", "wlan0", [eth_ip(BCAST, STA[1], icmp4_echo(STA_IP[1], STA_IP[2], 7, 1, b"hole196"))])
    replies = [x.data for x in air1 if x.data[12:14] == b"\x08\x00" and x.data[34] == 0]
    return s, replies


def test_unicast_in_l2_multicast_dropped_on_station() -> None:
    s, replies = _group_udp(0)
    assert len(replies) == 1 and s.drops("s2")["UNICAST_IN_L2_MULTICAST"] == 0
    s, replies = _group_udp(1)
    assert replies == [] and s.drops("s2")["UNICAST_IN_L2_MULTICAST"] == 1


def test_multicast_to_unicast_conversion_makes_it_unicast() -> None:
    s, replies = _group_udp(1, mc2uc=True)
    assert len(replies) == 1  # converted to STA2's own address: PACKET_HOST, answered


@pytest.mark.parametrize("knob", [0, 1])
def test_gratuitous_arp_through_the_ap(knob: int) -> None:
    s, ap, _ = build(ap_isolate=False, snoop=False)
    s.run_script(f"ip netns exec s2 sysctl -qw net.ipv4.conf.wlan0.drop_gratuitous_arp={knob}\n"
                 f"ip -n s2 neigh add {STA_IP[1]} lladdr 02:00:00:00:99:99 dev wlan0 nud stale\n")
    s.inject("s1", "wlan0", [garp(1)])
    n = neigh_lookup(s.world.netns("s2").ipv4.arp_tbl, s.world.netns("s2").get("wlan0"), ip4(STA_IP[1]))
    assert n.lladdr == (mac("02:00:00:00:99:99") if knob else mac(STA[1]))


@pytest.mark.parametrize("knob", [0, 1])
def test_unsolicited_na_through_the_ap(knob: int) -> None:
    s, ap, _ = build(ap_isolate=False, snoop=False)
    s.run_script(f"ip netns exec s2 sysctl -qw net.ipv6.conf.wlan0.drop_unsolicited_na={knob}\n"
                 f"ip -n s2 -6 neigh add {STA_IP6[1]} lladdr 02:00:00:00:99:99 dev wlan0 nud stale\n")
    s.inject("s1", "wlan0", [una(1)])
    n = neigh_lookup(s.world.netns("s2").ipv6.nd_tbl, s.world.netns("s2").get("wlan0"), ip6(STA_IP6[1]))
    assert n.lladdr == (mac("02:00:00:00:99:99") if knob else mac(STA[1]))


def test_group_frame_not_echoed_to_sender_and_unassociated_dropped() -> None:
    s, ap, _ = build(ap_isolate=False, snoop=False)
    air1, air2 = s.capture("s1", "wlan0"), s.capture("s2", "wlan0")
    s.inject("s1", "wlan0", [garp(1)])
    assert air1 == [] and [x.data for x in air2] == [garp(1)]
    dev1 = s.world.netns("s1").get("wlan0")
    ap.disassociate(mac(STA[1]))
    assert not dev1.carrier_ok()
    with pytest.raises(KernelError):
        ap.disassociate(mac(STA[1]))


def test_fuzz_snooper_never_raises() -> None:
    from hypothesis import given, settings, strategies as st

    s, ap, sn = build()
    base = [dhcp_ack(1, STA_IP[1]), ns_from(2, STA_IP6[2]), garp(2), una(1)]

    @settings(max_examples=200, deadline=None)
    @given(st.integers(0, 3), st.integers(0, 400), st.binary(min_size=1, max_size=8))
    def fuzz(i: int, at: int, junk: bytes) -> None:
        f = bytearray(base[i])
        at = at % len(f)
        f[at:at + len(junk)] = junk
        sn.handle_frame(bytes(f))
        sn.handle_frame(bytes(f[:at]))

    fuzz()


def test_per_sta_vif_each_station_is_a_bridge_port_with_proxy_arp_wifi() -> None:
    s = Stack()
    s.run_script(SCRIPT, name="ap.sh")
    w = s.world
    ap = create_ap(w.netns("ap"), "wlan0", mac(AP_MAC), ap_isolate=True, per_sta_vif=True)
    s.run_script("ip -n ap link set wlan0 master br0\nip -n ap link set wlan0 up\n", name="ap2.sh")
    sn = x_snoop_init(ap)
    for i in (1, 2):
        ap.associate(w.netns(f"s{i}"), "wlan0", mac(STA[i]))
        s.run_script(f"ip -n s{i} link set wlan0 up\nip -n s{i} addr add {STA_IP[i]}/24 dev wlan0\n",
                     name="sta.sh")
    out = s.command("ip -n ap -br link show master br0").stdout
    assert "wlan0.sta1" in out and "wlan0.sta2" in out
    br = br0(s).br
    vif1 = w.netns("ap").get("wlan0.sta1")
    assert br.port_of(vif1).flags & BR_PROXYARP_WIFI
    # STA1 → STA2 crosses the bridge port to port (no hairpin needed), nothing else hears it
    s.inject("s2", "wlan0", [garp(2)])
    air1, air2 = s.capture("s1", "wlan0"), s.capture("s2", "wlan0")
    f = _udp_to(1, 2, STA[2], b"via the bridge")
    s.inject("s1", "wlan0", [f])
    assert [x.data for x in air2 if x.data == f] == [f]
    # snooped addresses are answered by the bridge: the station port is proxy_arp_wifi
    assert sn.bindings()[mac(STA[2])][0] == ip4(STA_IP[2])
    s.inject("s1", "wlan0", [garp(1)])
    srv = s.capture("srv", "eth0")
    before2 = len(air2)
    req = eth_arp(BCAST, SRV_MAC, arp(1, SRV_MAC, "10.0.0.1", "00:00:00:00:00:00", STA_IP[2]))
    s.inject("srv", "eth0", [req])
    assert [x.data for x in srv] == [eth_arp(SRV_MAC, STA[2], arp(2, STA[2], STA_IP[2], SRV_MAC,
                                                                   "10.0.0.1"))]
    assert len(air2) == before2
    # every station port is proxy_arp_wifi: a replied request reaches no station at all
    assert [x.data for x in air1 if x.data == req] == []
    # a group frame from the wire reaches each station once, through its own port
    g = eth_ip(BCAST, SRV_MAC, udp4("10.0.0.1", "10.0.0.255", 7, 9, b"group"))
    n1, n2 = len(air1), len(air2)
    s.inject("srv", "eth0", [g])
    assert [x.data for x in air1[n1:] if x.data == g] == [g]
    assert [x.data for x in air2[n2:] if x.data == g] == [g]
    ap.disassociate(mac(STA[1]))
    assert w.netns("ap").get("wlan0.sta1") is None and neigh(s, 4, STA_IP[1]) is None


def test_malformed_options_seen_live_are_counted_drops() -> None:
    s, ap, sn = build()
    bad_nd = bytearray(ns_from(2, STA_IP6[2]))
    bad_nd[14 + 40 + 24 + 1] = 0
    bad_dhcp = dhcp_ack(1, "10.0.0.99")[:-1] + bytes([53, 5])
    s.inject("s2", "wlan0", [bytes(bad_nd)])
    s.inject("srv", "eth0", [bad_dhcp])
    d = s.drops("ap")
    assert d["IPV6_NDISC_BAD_OPTIONS"] == 1 and d["HDR_TRUNC"] == 1
    assert sn.bindings()[mac(STA[1])] == (bytes(4), ()) and neigh(s, 4, "10.0.0.99") is None


def test_disable_dgaf_converts_dhcp_and_ra_to_unicast() -> None:
    s = Stack()
    s.run_script(SCRIPT, name="ap.sh")
    w = s.world
    ap = create_ap(w.netns("ap"), "wlan0", mac(AP_MAC), ap_isolate=True, disable_dgaf=True,
                   na_mcast_to_ucast=True)
    s.run_script("ip -n ap link set wlan0 master br0\nip -n ap link set wlan0 up\n", name="ap2.sh")
    for i in (1, 2):
        ap.associate(w.netns(f"s{i}"), "wlan0", mac(STA[i]))
        s.run_script(f"ip -n s{i} link set wlan0 up\n", name="sta.sh")
    sn = x_snoop_init(ap)
    for i in (1, 2):  # the bridge learns where the stations are
        s.inject(f"s{i}", "wlan0", [garp(i)])
    air = {i: s.capture(f"s{i}", "wlan0") for i in (1, 2)}
    ack = dhcp_ack(1, STA_IP[1])
    s.inject("srv", "eth0", [ack])
    for i in (1, 2):  # no broadcast copy (undecryptable GTK), one unicast copy each
        assert [f.data for f in air[i]] == [mac(STA[i]) + ack[6:]]
    assert sn.bindings()[mac(STA[1])][0] == ip4(STA_IP[1])
    ra_body = bytes([64, 0, 0, 30]) + bytes(8)
    ra = eth_ip6("33:33:00:00:00:01", SRV_MAC, bytes(dpkt.ip6.IP6(
        v=6, fc=0, flow=0, nxt=58, hlim=255, src=ip6("fe80::1"), dst=ip6("ff02::1"),
        plen=4 + len(ra_body), data=dpkt.icmp6.ICMP6(type=134, code=0, data=ra_body))))
    s.inject("srv", "eth0", [ra])
    for i in (1, 2):
        assert [f.data for f in air[i]][-1] == mac(STA[i]) + ra[6:]
        assert len(air[i]) == 2
    na = una(2)  # from STA2: converted for both (hostapd does not skip the sender)
    s.inject("s2", "wlan0", [na])
    assert [f.data for f in air[1]][-1] == mac(STA[1]) + na[6:]


@pytest.mark.parametrize("knob", [0, 1])
def test_ipv6_unicast_in_l2_multicast_through_the_ap(knob: int) -> None:
    """ip6_rcv_core: a non-multicast IPv6 destination in a group-addressed frame is dropped
    under the receiving station's net.ipv6.conf.wlan0.drop_unicast_in_l2_multicast."""
    s, ap, _ = build(ap_isolate=False, snoop=False)
    s.run_script(f"ip netns exec s2 sysctl -qw net.ipv6.conf.wlan0.drop_unicast_in_l2_multicast={knob}\n"
                 f"ip -n s2 -6 neigh add {STA_IP6[1]} lladdr {STA[1]} dev wlan0 nud permanent\n")
    air1 = s.capture("s1", "wlan0")
    echo = dpkt.icmp6.ICMP6(type=128, code=0, data=struct.pack("!HH", 9, 1) + b"hole196")
    ip = dpkt.ip6.IP6(v=6, fc=0, flow=0, nxt=58, hlim=64, src=ip6(STA_IP6[1]), dst=ip6(STA_IP6[2]),
                      plen=len(bytes(echo)), data=echo)
    s.inject("s1", "wlan0", [eth_ip6("33:33:00:00:00:01", STA[1], bytes(ip))])
    replies = [f.data for f in air1 if f.data[12:14] == b"\x86\xdd" and f.data[54] == 129]
    assert len(replies) == (0 if knob else 1)
    assert s.drops("s2")["UNICAST_IN_L2_MULTICAST"] == knob
