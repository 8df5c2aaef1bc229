"""ARP receive/transmit (net/ipv4/arp.c) against a fake control plane: frames byte for
byte, every conf knob with a case that fails if its check is removed."""
from __future__ import annotations

from test_arp_env import (BCAST, MAC_G, MAC_H, MAC_R0, MAC_R1, arp_frame, arp_pkt, eth, ip,
                          make_env)

from netstack.core.neighbour import (NUD_DELAY, NUD_FAILED, NUD_INCOMPLETE, NUD_NOARP, NUD_PROBE,
                                     NUD_REACHABLE, NUD_STALE, NTF_PROXY, neigh_add,
                                     neigh_lookup, neigh_output, neigh_update_entry,
                                     NEIGH_UPDATE_F_OVERRIDE)
from netstack.core.netdevice import IFF_NOARP
from netstack.ipv4 import arp

S = 1_000_000_000
Z6 = bytes(6)
REQ, REP = 1, 2


def setup(monkeypatch, **kw):  # type: ignore[no-untyped-def]
    e = make_env(monkeypatch, **kw)
    e.add_addr(e.r0, "10.0.0.1", 24)
    e.add_addr(e.r1, "10.0.1.1", 24)
    return e


def request(e, sip: str, tip: str, src=MAC_H, dst=BCAST):  # type: ignore[no-untyped-def]
    return arp_frame(dst, src, REQ, src, sip, Z6, tip)


def reply_to_us(sip: str, tip: str = "10.0.0.1", sha=MAC_H, tha=MAC_R0):  # type: ignore[no-untyped-def]
    return arp_frame(MAC_R0, sha, REP, sha, sip, tha, tip)


def ip_pkt(e, src: str, dst: str, tag: int = 0):  # type: ignore[no-untyped-def]
    hdr = bytearray(20)
    hdr[0] = 0x45
    hdr[12:16] = ip(src)
    hdr[16:20] = ip(dst)
    p = e.world.new_packet(bytes(hdr) + bytes([tag]))
    p.protocol = 0x0800
    p.reset_network_header()
    return p


# ------------------------------------------------------------------ frames
def test_arp_create_layout() -> None:
    """42 bytes: Ethernet + 28-byte ARP, no padding."""
    from netstack.core.world import World
    from netstack.drivers.dummy import DummyDevice
    w = World(subsystems=[])
    d = w.init_net.register_netdevice(DummyDevice("d0", MAC_R0))
    p = arp.arp_create(REQ, 0x0806, ip("10.0.0.2"), d, ip("10.0.0.1"), None, None, None)
    assert p.bytes() == (BCAST + MAC_R0 + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x01"
                         + MAC_R0 + ip("10.0.0.1") + Z6 + ip("10.0.0.2"))
    assert p.protocol == 0x0806 and p.dev is d and len(p) == 42


def test_request_for_local_address_gets_reply_and_stale_entry(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.0.1"))
    (rep,) = e.take("r0")
    assert rep == arp_frame(MAC_H, MAC_R0, REP, MAC_R0, "10.0.0.1", MAC_H, "10.0.0.2")
    n = neigh_lookup(e.tbl, e.r0, ip("10.0.0.2"))
    assert n.nud_state == NUD_STALE and n.ha == MAC_H


def test_request_for_other_host_is_ignored_without_entry(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.0.3"))
    assert e.take("r0") == []
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")) is None


def test_request_from_known_host_refreshes_entry(monkeypatch) -> None:
    e = setup(monkeypatch)
    neigh_add(e.tbl, e.r0, ip("10.0.0.2"), MAC_G, NUD_REACHABLE)
    e.world.advance(2)
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.0.3"))
    n = neigh_lookup(e.tbl, e.r0, ip("10.0.0.2"))
    assert n.ha == MAC_H and n.nud_state == NUD_STALE


def test_dad_probe_gets_reply_to_broadcast_ip_zero(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.inject(e.h0, request(e, "0.0.0.0", "10.0.0.1"))
    (rep,) = e.take("r0")
    assert rep == arp_frame(MAC_H, MAC_R0, REP, MAC_R0, "10.0.0.1", MAC_H, "0.0.0.0")
    assert not e.tbl.entries


# ------------------------------------------------------------ arp_rcv checks
def test_short_and_malformed_are_counted_drops(monkeypatch) -> None:
    e = setup(monkeypatch)
    good = request(e, "10.0.0.2", "10.0.0.1")
    e.inject(e.h0, good[:14 + 27])
    assert e.r.drops["PKT_TOO_SMALL"] == 1
    e.inject(e.h0, eth(BCAST, MAC_H, 0x0806, arp_pkt(REQ, MAC_H + b"\0", "10.0.0.2",
                                                     Z6 + b"\0", "10.0.0.1", hln=7)))
    e.inject(e.h0, eth(BCAST, MAC_H, 0x0806, arp_pkt(REQ, MAC_H, "10.0.0.2", Z6, "10.0.0.1",
                                                     hrd=0x18)))
    e.inject(e.h0, eth(BCAST, MAC_H, 0x0806, arp_pkt(REQ, MAC_H, "10.0.0.2", Z6, "10.0.0.1",
                                                     pro=0x86DD)))
    e.inject(e.h0, eth(BCAST, MAC_H, 0x0806, arp_pkt(3, MAC_H, "10.0.0.2", Z6, "10.0.0.1")))
    e.inject(e.h0, request(e, "10.0.0.2", "224.0.0.1"))
    e.inject(e.h0, request(e, "10.0.0.2", "127.0.0.1"))
    assert e.r.drops["NOT_SPECIFIED"] == 6
    assert e.take("r0") == [] and not e.tbl.entries
    # IEEE 802 hardware type 6 is accepted on Ethernet
    e.inject(e.h0, eth(BCAST, MAC_H, 0x0806, arp_pkt(REQ, MAC_H, "10.0.0.2", Z6, "10.0.0.1",
                                                     hrd=6)))
    assert len(e.take("r0")) == 1


def test_route_localnet_allows_loopback_target(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.add_addr(e.r0, "127.0.0.5", 8)
    e.inject(e.h0, request(e, "10.0.0.2", "127.0.0.5"))
    assert e.take("r0") == []
    e.sysctl("net.ipv4.conf.r0.route_localnet", 1)
    e.inject(e.h0, request(e, "10.0.0.2", "127.0.0.5"))
    assert len(e.take("r0")) == 1


def test_otherhost_and_noarp_device_are_consumed(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.0.1", dst=bytes.fromhex("020000001234")))
    e.r0.flags |= IFF_NOARP
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.0.1"))
    assert e.take("r0") == [] and e.r.drops.total() == 0


def test_no_in_device_drops(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.r0.ip_ptr = None
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.0.1"))
    assert e.take("r0") == [] and e.r.drops["NOT_SPECIFIED"] == 1


# ------------------------------------------------------------------ knobs
def test_arp_ignore(monkeypatch) -> None:
    e = setup(monkeypatch)
    # 0: answer for an address of another interface
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.1.1"))
    assert len(e.take("r0")) == 1
    # 1: only for addresses configured on the incoming interface
    e.sysctl("net.ipv4.conf.all.arp_ignore", 1)
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.1.1"))
    assert e.take("r0") == []
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.0.1"))
    assert len(e.take("r0")) == 1
    # 2: and the sender must be in that address's subnet
    e.sysctl("net.ipv4.conf.r0.arp_ignore", 2)
    e.inject(e.h0, request(e, "10.9.0.2", "10.0.0.1"))
    assert e.take("r0") == []
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.0.1"))
    assert len(e.take("r0")) == 1
    # 8: never; the max of all/dev applies
    e.sysctl("net.ipv4.conf.r0.arp_ignore", 8)
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.0.1"))
    assert e.take("r0") == []


def test_arp_ignore_3_skips_host_scope(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.add_addr(e.r1, "10.0.5.1", 24, scope=254)
    e.sysctl("net.ipv4.conf.r0.arp_ignore", 3)
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.5.1"))
    assert e.take("r0") == []
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.1.1"))
    assert len(e.take("r0")) == 1


def test_arp_filter(monkeypatch) -> None:
    e = setup(monkeypatch)
    # the reply to 10.0.1.7 would leave through r1: with arp_filter, r0 stays silent
    e.inject(e.h0, request(e, "10.0.1.7", "10.0.0.1"))
    assert len(e.take("r0")) == 1
    e.sysctl("net.ipv4.conf.r0.arp_filter", 1)
    e.inject(e.h0, request(e, "10.0.1.7", "10.0.0.1"))
    assert e.take("r0") == []
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.0.1"))
    assert len(e.take("r0")) == 1


def test_drop_gratuitous_arp(monkeypatch) -> None:
    e = setup(monkeypatch)
    neigh_add(e.tbl, e.r0, ip("10.0.0.2"), MAC_G, NUD_STALE)
    garp = arp_frame(BCAST, MAC_H, REQ, MAC_H, "10.0.0.2", Z6, "10.0.0.2")
    e.sysctl("net.ipv4.conf.r0.drop_gratuitous_arp", 1)
    e.inject(e.h0, garp)
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")).ha == MAC_G
    assert e.r.drops["NOT_SPECIFIED"] == 1
    e.sysctl("net.ipv4.conf.r0.drop_gratuitous_arp", 0)
    e.inject(e.h0, garp)
    n = neigh_lookup(e.tbl, e.r0, ip("10.0.0.2"))
    assert n.ha == MAC_H and n.nud_state == NUD_STALE


def test_locktime_first_reply_wins(monkeypatch) -> None:
    """An ARP reply changes the address only after locktime since the last update."""
    e = setup(monkeypatch)
    neigh_output(e.tbl, e.r0, ip("10.0.0.2"), [ip_pkt(e, "10.0.0.1", "10.0.0.2")])
    e.inject(e.h0, reply_to_us("10.0.0.2"))
    n = neigh_lookup(e.tbl, e.r0, ip("10.0.0.2"))
    assert n.nud_state == NUD_REACHABLE and n.ha == MAC_H
    e.world.advance(0.5)
    e.inject(e.h0, reply_to_us("10.0.0.2", sha=MAC_G))
    assert n.ha == MAC_H
    e.world.advance(0.6)
    e.inject(e.h0, reply_to_us("10.0.0.2", sha=MAC_G))
    assert n.ha == MAC_G


def test_locktime_sysctl(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.sysctl("net.ipv4.neigh.r0.locktime", 300)   # 3 s in USER_HZ
    neigh_add(e.tbl, e.r0, ip("10.0.0.2"), MAC_H, NUD_STALE)
    e.world.advance(2)
    e.inject(e.h0, reply_to_us("10.0.0.2", sha=MAC_G))
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")).ha == MAC_H
    e.world.advance(1.5)
    e.inject(e.h0, reply_to_us("10.0.0.2", sha=MAC_G))
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")).ha == MAC_G


def test_gratuitous_reply_overrides_within_locktime_only_if_tha_equals_sha(monkeypatch) -> None:
    e = setup(monkeypatch)
    neigh_add(e.tbl, e.r0, ip("10.0.0.2"), MAC_H, NUD_STALE)
    # sip == tip but tha != sha: not gratuitous, locktime applies
    e.inject(e.h0, arp_frame(BCAST, MAC_G, REP, MAC_G, "10.0.0.2", Z6, "10.0.0.2"))
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")).ha == MAC_H
    e.inject(e.h0, arp_frame(BCAST, MAC_G, REP, MAC_G, "10.0.0.2", MAC_G, "10.0.0.2"))
    n = neigh_lookup(e.tbl, e.r0, ip("10.0.0.2"))
    assert n.ha == MAC_G and n.nud_state == NUD_STALE   # broadcast: STALE, not REACHABLE


def test_arp_accept(monkeypatch) -> None:
    e = setup(monkeypatch)
    unsolicited = reply_to_us("10.0.0.2")
    e.inject(e.h0, unsolicited)
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")) is None
    e.sysctl("net.ipv4.conf.r0.arp_accept", 1)
    e.inject(e.h0, unsolicited)
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")).nud_state == NUD_REACHABLE
    # a gratuitous request creates a STALE entry
    e.inject(e.h0, arp_frame(BCAST, MAC_H, REQ, MAC_H, "10.0.0.3", Z6, "10.0.0.3"))
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.3")).nud_state == NUD_STALE
    # 2: only senders inside a subnet of the receiving device
    e.sysctl("net.ipv4.conf.r0.arp_accept", 2)
    e.inject(e.h0, reply_to_us("10.9.0.2"))
    assert neigh_lookup(e.tbl, e.r0, ip("10.9.0.2")) is None
    e.inject(e.h0, reply_to_us("10.0.0.4"))
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.4")) is not None


def test_arp_accept_ignores_non_unicast_senders(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.sysctl("net.ipv4.conf.r0.arp_accept", 1)
    e.inject(e.h0, reply_to_us("10.0.0.255"))
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.255")) is None


def test_broadcast_reply_is_stale_unicast_reply_reachable(monkeypatch) -> None:
    e = setup(monkeypatch)
    neigh_add(e.tbl, e.r0, ip("10.0.0.2"), None, NUD_INCOMPLETE)
    neigh_add(e.tbl, e.r0, ip("10.0.0.3"), None, NUD_INCOMPLETE)
    e.inject(e.h0, arp_frame(BCAST, MAC_H, REP, MAC_H, "10.0.0.2", MAC_R0, "10.0.0.1"))
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")).nud_state == NUD_STALE
    e.inject(e.h0, reply_to_us("10.0.0.3"))
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.3")).nud_state == NUD_REACHABLE


def test_stale_resolution_with_queue_goes_delay(monkeypatch) -> None:
    """A broadcast reply makes the entry STALE; releasing the queue uses it → DELAY."""
    e = setup(monkeypatch)
    neigh_output(e.tbl, e.r0, ip("10.0.0.2"), [ip_pkt(e, "10.0.0.1", "10.0.0.2")])
    e.take("r0")
    e.inject(e.h0, arp_frame(BCAST, MAC_H, REP, MAC_H, "10.0.0.2", MAC_R0, "10.0.0.1"))
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")).nud_state == NUD_DELAY
    assert len(e.take("r0")) == 1


# ------------------------------------------------------------------ proxy
def test_proxy_arp_and_forwarding(monkeypatch) -> None:
    e = setup(monkeypatch)
    req = request(e, "10.0.0.2", "10.0.1.9", dst=MAC_R0)  # unicast: no proxy_delay
    e.sysctl("net.ipv4.conf.r0.proxy_arp", 1)
    e.inject(e.h0, req)
    assert e.take("r0") == []          # forwarding off
    e.sysctl("net.ipv4.conf.r0.forwarding", 1)
    e.inject(e.h0, req)
    (rep,) = e.take("r0")
    assert rep == arp_frame(MAC_H, MAC_R0, REP, MAC_R0, "10.0.1.9", MAC_H, "10.0.0.2")
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")).nud_state == NUD_STALE
    # a target on the same segment is not proxied
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.0.9", dst=MAC_R0))
    assert e.take("r0") == []
    e.sysctl("net.ipv4.conf.r0.proxy_arp", 0)
    e.inject(e.h0, req)
    assert e.take("r0") == []


def test_medium_id(monkeypatch) -> None:
    e = setup(monkeypatch)
    req = request(e, "10.0.0.2", "10.0.1.9", dst=MAC_R0)
    for k in ("net.ipv4.conf.r0.forwarding", "net.ipv4.conf.r0.proxy_arp"):
        e.sysctl(k, 1)
    e.sysctl("net.ipv4.conf.r0.medium_id", -1)
    e.inject(e.h0, req)
    assert e.take("r0") == []
    e.sysctl("net.ipv4.conf.r0.medium_id", 5)
    e.sysctl("net.ipv4.conf.r1.medium_id", 5)     # same medium: the target hears it itself
    e.inject(e.h0, req)
    assert e.take("r0") == []
    e.sysctl("net.ipv4.conf.r1.medium_id", 6)
    e.inject(e.h0, req)
    assert len(e.take("r0")) == 1


def test_proxy_arp_pvlan(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.sysctl("net.ipv4.conf.r0.forwarding", 1)
    req = request(e, "10.0.0.2", "10.0.0.9", dst=MAC_R0)
    e.inject(e.h0, req)
    assert e.take("r0") == []
    e.sysctl("net.ipv4.conf.r0.proxy_arp_pvlan", 1)
    e.inject(e.h0, req)
    assert len(e.take("r0")) == 1
    e.inject(e.h0, request(e, "10.0.0.9", "10.0.0.9", dst=MAC_R0))  # self probe: no
    assert e.take("r0") == []


def test_pneigh_entry_and_proxy_delay(monkeypatch) -> None:
    e = setup(monkeypatch, seed=5)
    e.sysctl("net.ipv4.conf.r0.forwarding", 1)
    neigh_add(e.tbl, e.r0, ip("10.0.1.9"), flags=NTF_PROXY)
    # a broadcast request waits a random time below proxy_delay (0.8 s)
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.1.9"))
    assert e.take("r0") == []
    e.world.advance(0.8)
    (rep,) = e.take("r0")
    assert rep[28:32] == ip("10.0.1.9") and rep[6:12] == MAC_R0
    # proxy_delay 0: at once
    e.sysctl("net.ipv4.neigh.r0.proxy_delay", 0)
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.1.9"))
    assert len(e.take("r0")) == 1
    # a pneigh entry for another device does not apply
    neigh_add(e.tbl, e.r1, ip("10.0.1.8"), flags=NTF_PROXY)
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.1.8"))
    assert e.take("r0") == []


def test_proxy_qlen(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.sysctl("net.ipv4.conf.r0.forwarding", 1)
    e.sysctl("net.ipv4.neigh.r0.proxy_qlen", 1)
    neigh_add(e.tbl, e.r0, ip("10.0.1.9"), flags=NTF_PROXY)
    for _ in range(4):
        e.inject(e.h0, request(e, "10.0.0.2", "10.0.1.9"))
    e.world.advance(1)
    assert len(e.take("r0")) == 2   # the queue admits while len <= proxy_qlen


# ---------------------------------------------------------------- solicit
def test_unanswered_resolution_end_to_end(monkeypatch) -> None:
    e = setup(monkeypatch)
    pkt = ip_pkt(e, "10.0.0.1", "10.0.0.2")
    neigh_output(e.tbl, e.r0, ip("10.0.0.2"), [pkt])
    req = arp_frame(BCAST, MAC_R0, REQ, MAC_R0, "10.0.0.1", Z6, "10.0.0.2")
    assert e.take("r0") == [req]
    e.world.advance(2)
    assert e.take("r0") == [req, req]
    e.world.advance(1)
    assert e.icmp.sent == [(pkt.id, 3, 1, 0)]
    assert e.r.drops["NEIGH_FAILED"] == 1
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")).nud_state == NUD_FAILED


def test_resolution_releases_queue(monkeypatch) -> None:
    e = setup(monkeypatch)
    pkts = [ip_pkt(e, "10.0.0.1", "10.0.0.2", i) for i in range(3)]
    neigh_output(e.tbl, e.r0, ip("10.0.0.2"), pkts)
    e.take("r0")
    e.inject(e.h0, reply_to_us("10.0.0.2"))
    out = e.take("r0")
    assert [f[34] for f in out] == [0, 1, 2]
    assert all(f[:14] == MAC_H + MAC_R0 + b"\x08\x00" for f in out)


def test_probe_state_sends_unicast_requests(monkeypatch) -> None:
    e = setup(monkeypatch)
    n = e.tbl.create(e.r0, ip("10.0.0.2"))
    neigh_update_entry(n, MAC_H, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE)
    neigh_output(e.tbl, e.r0, ip("10.0.0.2"), [ip_pkt(e, "10.0.0.1", "10.0.0.2")])
    e.take("r0")
    e.world.advance(5)
    assert n.nud_state == NUD_PROBE
    uni = arp_frame(MAC_H, MAC_R0, REQ, MAC_R0, "10.0.0.1", Z6, "10.0.0.2")
    e.world.advance(2.5)
    assert e.take("r0") == [uni, uni, uni]
    e.world.advance(1)
    assert n.nud_state == NUD_FAILED


def test_arp_announce(monkeypatch) -> None:
    """The request's sender address: 0 = the packet's source if local; 1 = only if in the
    target's subnet; 2 = always inet_select_addr."""
    e = setup(monkeypatch)
    e.add_addr(e.r0, "10.0.0.100", 24)

    def sender(src: str, dst: str) -> bytes:
        neigh_output(e.tbl, e.r0, ip(dst), [ip_pkt(e, src, dst)])
        (req,) = e.take("r0")
        return req[28:32]

    assert sender("10.0.1.1", "10.0.0.2") == ip("10.0.1.1")
    assert sender("10.0.0.100", "10.0.0.3") == ip("10.0.0.100")
    assert sender("10.7.7.7", "10.0.0.4") == ip("10.0.0.1")   # not local
    e.sysctl("net.ipv4.conf.all.arp_announce", 1)
    assert sender("10.0.1.1", "10.0.0.5") == ip("10.0.0.1")
    assert sender("10.0.0.100", "10.0.0.6") == ip("10.0.0.100")
    e.sysctl("net.ipv4.conf.r0.arp_announce", 2)
    assert sender("10.0.0.100", "10.0.0.7") == ip("10.0.0.1")
    assert e.devinet.select_calls[-1] == ("r0", ip("10.0.0.7"), 253)


def test_app_solicit_asks_user_space_not_the_wire(monkeypatch) -> None:
    e = setup(monkeypatch)
    seen = []
    e.tbl.notifiers.append(lambda n: seen.append(n.nud_state))
    e.sysctl("net.ipv4.neigh.r0.mcast_solicit", 0)
    e.sysctl("net.ipv4.neigh.r0.app_solicit", 1)
    neigh_output(e.tbl, e.r0, ip("10.0.0.2"), [ip_pkt(e, "10.0.0.1", "10.0.0.2")])
    assert e.take("r0") == [] and e.tbl.stats["app_requests"] == 1


# ----------------------------------------------------------- constructor
def test_constructor_noarp_cases(monkeypatch) -> None:
    e = setup(monkeypatch)
    out = []
    for dst in ("224.1.2.3", "239.129.2.3", "10.0.0.255", "255.255.255.255"):
        neigh_output(e.tbl, e.r0, ip(dst), [ip_pkt(e, "10.0.0.1", dst)])
        n = neigh_lookup(e.tbl, e.r0, ip(dst))
        assert n.nud_state == NUD_NOARP
        out.extend(e.take("r0"))
    assert [f[:6] for f in out] == [bytes.fromhex("01005e010203"), bytes.fromhex("01005e010203"),
                                    BCAST, BCAST]
    e.r1.flags |= IFF_NOARP
    neigh_output(e.tbl, e.r1, ip("10.0.1.2"), [ip_pkt(e, "10.0.1.1", "10.0.1.2")])
    assert neigh_lookup(e.tbl, e.r1, ip("10.0.1.2")).ha == MAC_R1
    assert e.take("r1")[0][:6] == MAC_R1


def test_loopback_uses_one_noarp_entry(monkeypatch) -> None:
    e = setup(monkeypatch)
    lo = e.r.get("lo")
    e.r.dev_open(lo)
    neigh_output(e.tbl, lo, ip("10.0.0.1"), [ip_pkt(e, "10.0.0.1", "10.0.0.1")])
    neigh_output(e.tbl, lo, ip("10.0.1.1"), [ip_pkt(e, "10.0.0.1", "10.0.1.1")])
    keys = [n.key for n in e.tbl.entries.values() if n.dev is lo]
    assert keys == [b"\0\0\0\0"]
    assert e.tbl.entries[(b"\0\0\0\0", lo.ifindex)].nud_state == NUD_NOARP


# --------------------------------------------------------------- events
def test_arp_notify_on_up(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.r.dev_close(e.r0)
    e.r.dev_open(e.r0)
    assert e.take("r0") == []
    e.sysctl("net.ipv4.conf.r0.arp_notify", 1)
    e.r.dev_close(e.r0)
    e.r.dev_open(e.r0)
    assert e.take("r0") == [arp_frame(BCAST, MAC_R0, REQ, MAC_R0, "10.0.0.1", Z6, "10.0.0.1")]


def test_device_down_flushes_including_permanent(monkeypatch) -> None:
    e = setup(monkeypatch)
    neigh_add(e.tbl, e.r0, ip("10.0.0.2"), MAC_H)
    neigh_add(e.tbl, e.r1, ip("10.0.1.2"), MAC_G)
    e.r.dev_close(e.r0)
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")) is None
    assert neigh_lookup(e.tbl, e.r1, ip("10.0.1.2")) is not None


def test_carrier_loss_evicts_unless_disabled(monkeypatch) -> None:
    e = setup(monkeypatch)
    neigh_add(e.tbl, e.r0, ip("10.0.0.2"), MAC_H)
    neigh_add(e.tbl, e.r0, ip("10.0.0.3"), MAC_H, NUD_STALE)
    # r0 loses carrier.  (The core's veth_close notifies the peer before clearing
    # IFF_UP, so the linkwatch-style CHANGE is delivered again here once it is down.)
    e.h.dev_close(e.h0)
    arp.arp_netdev_event("CHANGE", e.r0)
    assert [n.key for n in e.tbl.entries.values()] == [ip("10.0.0.2")]
    e.h.dev_open(e.h0)
    e.sysctl("net.ipv4.conf.r0.arp_evict_nocarrier", 0)
    neigh_add(e.tbl, e.r0, ip("10.0.0.3"), MAC_H, NUD_STALE)
    e.h.dev_close(e.h0)
    arp.arp_netdev_event("CHANGE", e.r0)
    assert len(e.tbl.entries) == 2


def test_unresolved_entry_left_incomplete_by_admin(monkeypatch) -> None:
    e = setup(monkeypatch)
    neigh_add(e.tbl, e.r0, ip("10.0.0.2"), None, NUD_INCOMPLETE)
    e.inject(e.h0, reply_to_us("10.0.0.2"))
    assert neigh_lookup(e.tbl, e.r0, ip("10.0.0.2")).nud_state == NUD_REACHABLE


def test_arp_conf_defaults(monkeypatch) -> None:
    e = setup(monkeypatch)
    for name, v in arp.ARP_CONF_SYSCTLS:
        for d in ("all", "default", "r0"):
            assert e.r.sysctl.get(f"net.ipv4.conf.{d}.{name}") == v
    assert e.r.sysctl.set("net.ipv4.conf.r0.arp_ignore", "-5") == -5  # no range check


def test_changeaddr_flushes_and_notifies_with_new_mac(monkeypatch) -> None:
    """Measured on 6.18 (arp_notify=1): a MAC change sends one gratuitous request per
    address from the new MAC; entries are flushed (cached headers hold the old MAC)."""
    e = setup(monkeypatch)
    e.add_addr(e.r0, "10.0.0.5", 24)
    neigh_add(e.tbl, e.r0, ip("10.0.0.2"), MAC_H)
    new = bytes.fromhex("02000000aa09")
    e.r0.address = new
    e.r.notify("CHANGEADDR", e.r0)
    assert not e.tbl.entries
    assert e.take("r0") == []          # arp_notify off
    e.sysctl("net.ipv4.conf.r0.arp_notify", 1)
    e.r.notify("CHANGEADDR", e.r0)
    assert e.take("r0") == [arp_frame(BCAST, new, REQ, new, a, Z6, a)
                            for a in ("10.0.0.1", "10.0.0.5")]


def test_error_report_without_icmp_module_still_drops(monkeypatch) -> None:
    e = setup(monkeypatch)
    monkeypatch.setattr(arp, "icmp", None)
    neigh_output(e.tbl, e.r0, ip("10.0.0.2"), [ip_pkt(e, "10.0.0.1", "10.0.0.2")])
    e.world.advance(3)
    assert e.r.drops["NEIGH_FAILED"] == 1 and e.icmp.sent == []


def test_device_down_purges_delayed_proxy_requests(monkeypatch) -> None:
    e = setup(monkeypatch)
    e.sysctl("net.ipv4.conf.r0.forwarding", 1)
    neigh_add(e.tbl, e.r0, ip("10.0.1.9"), flags=NTF_PROXY)
    e.inject(e.h0, request(e, "10.0.0.2", "10.0.1.9"))
    assert len(e.tbl.proxy_queue) == 1
    e.r.dev_close(e.r0)
    assert e.tbl.proxy_queue == [] and not e.tbl.proxy_timer.active
    assert e.tbl.pentries == []   # neigh_ifdown removes proxy entries of the device too
