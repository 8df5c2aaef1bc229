"""VXLAN l3miss notifications and proxy corner cases on netstack alone (the kernel's
RTM_GETNEIGH miss messages have no listener here: they are recorded on the device)."""
from __future__ import annotations

import ipaddress

from tunnels.test_tun2_proxy_kernel import BASE, PEER, RMAC, RSC_EXTRA, arp_req, ip_to, ns6


def _stack(opts: str, extra: str = ""):  # type: ignore[no-untyped-def]
    from netstack import Stack
    st = Stack()
    st.run_script(BASE.format(opts=opts, extra=extra))
    return st


def _send(st, frame: bytes) -> None:  # type: ignore[no-untyped-def]
    st.inject("h1", "v1h", [frame])
    st.advance(0.05)


def test_l3miss_from_arp_ns_and_rsc() -> None:
    st = _stack("proxy rsc l3miss", RSC_EXTRA)
    vx0 = st._dev("r", "vx0")
    _send(st, arp_req("192.168.0.7"))
    _send(st, ns6("2001:db8:a::9"))
    _send(st, ip_to(RMAC, "192.168.0.9"))
    _send(st, arp_req("192.168.0.1"))          # answered: no miss
    assert vx0.misses == [("l3miss", bytes([192, 168, 0, 7])),
                          ("l3miss", ipaddress.IPv6Address("2001:db8:a::9").packed),
                          ("l3miss", bytes([192, 168, 0, 9]))]
    assert vx0.extra_stats == {"l3miss": 3}


def test_no_miss_without_the_flags() -> None:
    st = _stack("proxy rsc", RSC_EXTRA)
    vx0 = st._dev("r", "vx0")
    _send(st, arp_req("192.168.0.7"))
    _send(st, ip_to(RMAC, "192.168.0.9"))
    assert vx0.misses == [] and vx0.extra_stats == {}


def test_l2miss_not_for_multicast_destinations() -> None:
    from netstack import Stack
    st = Stack()
    st.run_script(BASE.format(opts="l2miss", extra="").replace("remote 10.0.2.1 ", ""))
    vx0 = st._dev("r", "vx0")
    _send(st, ip_to("01:00:5e:00:00:05", "224.0.0.5"))
    _send(st, ip_to(PEER, "192.168.0.1"))
    assert vx0.misses == [("l2miss", bytes.fromhex("020000000a01"))]
    assert vx0.stats.tx_dropped == 2


def test_proxy_reply_is_counted_nowhere_and_short_arp_is_tx_dropped() -> None:
    """A frame shorter than arp_hdr_len (28 bytes from the Ethernet header) is a
    tx_dropped; replies are not counted as vx0 rx (netif_rx only)."""
    st = _stack("proxy")
    vx0 = st._dev("r", "vx0")
    vx0.start_xmit(st._dev("r", "vx0").net.world.new_packet(arp_req("192.168.0.1")[:20]),
                   False)
    assert vx0.stats.tx_dropped == 1
    _send(st, arp_req("192.168.0.1"))
    assert vx0.stats.rx_packets == 0 and vx0.stats.tx_packets == 0


def test_noarp_device_answers_nothing() -> None:
    st = _stack("proxy", "ip -n r link set vx0 arp off\n")
    got: list[bytes] = []
    h1 = st._dev("h1", "v1h")
    h1.net.add_rx_tap(h1, lambda p: got.append(bytes(p.buf[p.mac_header:p.tail])))
    _send(st, arp_req("192.168.0.1"))
    assert [f for f in got if f[12:14] == b"\x08\x06"] == []
