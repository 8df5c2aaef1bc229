"""veth/loopback/dummy through the core RX/TX paths: batching, doorbells, scrub, drops."""
from netstack.core.dev import dev_queue_xmit_list
from netstack.core.netdevice import IFF_UP
from netstack.core.world import World
from netstack.drivers.dummy import DummyDevice
from netstack.drivers.veth import create_pair
from netstack.packet.skb import PACKET_BROADCAST, PACKET_HOST, PACKET_OTHERHOST

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def frame(dst: bytes, src: bytes = MAC_A, etype: int = 0x88B5) -> bytes:
    return dst + src + etype.to_bytes(2, "big") + bytes(46)


def pair(w: World):
    a, b = w.netns_add("a"), w.netns_add("b")
    x, y = create_pair(a, "v0", MAC_A, b, "v1", MAC_B)
    return a, b, x, y


def test_ifindex_order_matches_kernel() -> None:
    w = World(subsystems=[])
    n = w.netns_add("n")
    v0, v1 = create_pair(n, "v0", MAC_A, n, "v1", MAC_B)
    assert n.get("lo").ifindex == 1
    assert (v1.ifindex, v0.ifindex) == (2, 3)   # the peer registers first


def test_batch_rings_one_doorbell_and_classifies() -> None:
    w = World(subsystems=[])
    a, b, x, y = pair(w)
    a.dev_open(x)
    b.dev_open(y)
    seen = []
    b.add_rx_tap(y, lambda p: seen.append(p.pkt_type))
    pkts = [w.new_packet(frame(MAC_B)), w.new_packet(frame(b"\xff" * 6)),
            w.new_packet(frame(bytes.fromhex("020000000099")))]
    dev_queue_xmit_list(x, pkts)
    w.run_until_idle()
    assert x.doorbells == 1
    assert seen == [PACKET_HOST, PACKET_BROADCAST, PACKET_OTHERHOST]
    # veth does not count multicast (measured on 6.18: ip -s link shows mcast 0).
    assert (x.stats.tx_packets, y.stats.rx_packets, y.stats.multicast) == (3, 3, 0)
    # Nobody handles EtherType 0x88B5, but the tap (an AF_PACKET socket) took the frames:
    # __netif_receive_skb_core counts no drop then.
    assert b.drops["UNHANDLED_PROTO"] == 0 and y.stats.rx_dropped == 0


def test_unhandled_ethertype_without_tap_is_rx_dropped() -> None:
    w = World(subsystems=[])
    a, b, x, y = pair(w)
    a.dev_open(x)
    b.dev_open(y)
    dev_queue_xmit_list(x, [w.new_packet(frame(MAC_B)) for _ in range(2)])
    w.run_until_idle()
    assert b.drops["UNHANDLED_PROTO"] == 2 and y.stats.rx_dropped == 2
    assert y.stats.rx_nohandler == 0


def test_peer_down_drops_and_carrier() -> None:
    w = World(subsystems=[])
    a, b, x, y = pair(w)
    a.dev_open(x)
    assert not x.carrier_ok() and x.operstate() == "LOWERLAYERDOWN"
    dev_queue_xmit_list(x, [w.new_packet(frame(MAC_B))])
    w.run_until_idle()
    assert x.stats.tx_dropped == 1 and y.stats.rx_dropped == 1
    assert a.drops["NOT_SPECIFIED"] == 1
    b.dev_open(y)
    assert x.carrier_ok() and x.operstate() == "UP"
    # veth_close drops carrier on both ends before the closing end loses IFF_UP.
    seen = []
    w.netdev_notifiers.append(lambda ev, d: seen.append((ev, d.name, d.carrier_ok())))
    a.dev_close(x)
    assert ("CHANGE", "v1", False) in seen and not y.carrier_ok()


def test_oversize_frame_dropped_by_is_skb_forwardable() -> None:
    w = World(subsystems=[])
    a, b, x, y = pair(w)
    a.dev_open(x)
    b.dev_open(y)
    y.mtu = 100
    dev_queue_xmit_list(x, [w.new_packet(frame(MAC_B) + bytes(100 + 4 - 46 + 1))])
    dev_queue_xmit_list(x, [w.new_packet(frame(MAC_B) + bytes(100 + 4 - 46))])
    w.run_until_idle()
    # one refused by is_skb_forwardable (rx_dropped on the peer, counted in the sender's
    # namespace), one delivered (and then dropped as UNHANDLED_PROTO: nobody takes 0x88B5)
    assert y.stats.rx_packets == 1 and a.drops["NOT_SPECIFIED"] == 1
    assert b.drops["UNHANDLED_PROTO"] == 1


def test_cross_netns_scrub_clears_mark() -> None:
    w = World(subsystems=[])
    a, b, x, y = pair(w)
    a.dev_open(x)
    b.dev_open(y)
    marks = []
    b.add_rx_tap(y, lambda p: marks.append((p.mark, p.priority)))
    p = w.new_packet(frame(MAC_B))
    p.mark, p.priority = 5, 3
    dev_queue_xmit_list(x, [p])
    w.run_until_idle()
    assert marks == [(0, 0)]


def test_down_device_drops_tx_and_dummy_consumes() -> None:
    w = World(subsystems=[])
    n = w.netns_add("n")
    d = n.register_netdevice(DummyDevice("d0", MAC_A))
    dev_queue_xmit_list(d, [w.new_packet(frame(MAC_B))])
    assert d.stats.tx_dropped == 1 and n.drops["DEV_READY"] == 1
    n.dev_open(d)
    assert d.flags & IFF_UP and d.operstate() == "UNKNOWN"
    dev_queue_xmit_list(d, [w.new_packet(frame(MAC_B)) for _ in range(5)])
    assert d.stats.tx_packets == 5 and d.doorbells == 1


def test_netns_del_destroys_veth_pair() -> None:
    w = World(subsystems=[])
    a, b, x, y = pair(w)
    w.netns_del("a")
    assert "v1" not in b.devices
