"""IPVLAN mode × flag × traffic matrix (Linux 6.18 has no ipvlan module, so the expected
outcomes are read from drivers/net/ipvlan/ipvlan_core.c; each row says which code path
decides it).

Traffic, for IPv4 and IPv6:

* ``s2s``: slave s1 sends to slave s2's address (frame to the shared MAC);
* ``s2x``: slave s1 sends to the outside host;
* ``x2s``: the outside host sends an echo request to s1 (the reply is the observable);
* ``bcast``: the outside host broadcasts an ARP request for s1's address.
"""
from __future__ import annotations

import dpkt
import pytest

import ipvlan_topo as T

MODES = ("l2", "l3", "l3s")
FLAGS = ("bridge", "private", "vepa")


class Net:
    """The topology in a fresh Stack with captures on ext, s1 and s2."""

    def __init__(self, mode: str, flag: str) -> None:
        from netstack import Stack
        self.st = Stack()
        self.st.run_script(T.script(mode, flag), name=f"ipvlan-{mode}-{flag}")
        self.ext = self.st.capture("ipx", "ext")
        self.s1 = self.st.capture("ipa", "s1")
        self.s2 = self.st.capture("ipb", "s2")
        self.st.advance(1.0)
        self.ext.clear()
        self.s1.clear()
        self.s2.clear()

    def send(self, ns: str, dev: str, frame: bytes) -> None:
        self.st.inject(ns, dev, [frame])
        self.st.advance(0.01)

    def dev(self, ns: str, name: str):  # type: ignore[no-untyped-def]
        return self.st.world.netns(ns).get(name)


def tagged(frames, tag: bytes) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [f.data for f in frames if tag in f.data]


def s2s_frame(v6: bool, tag: bytes) -> bytes:
    if v6:
        return T.eth(T.MAC_M, T.MAC_M, 0x86DD, T.udp6(T.IP6["s1"], T.IP6["s2"], tag))
    return T.eth(T.MAC_M, T.MAC_M, 0x0800, T.udp4(T.IP["s1"], T.IP["s2"], tag))


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("mode", MODES)
def test_slave_to_slave(chains, mode: str, flag: str, v6: bool) -> None:  # type: ignore[no-untyped-def]
    """bridge: delivered inside the port (``ipvlan_rcv_frame(local)``), never on the
    wire; private: dropped (``consume_skb``, tx_dropped); vepa: no local lookup — l2 sends
    the frame out as is (the switch must hairpin), l3/l3s route it in the master's
    namespace and send it to the neighbour (TTL untouched: it is local output there)."""
    n = Net(mode, flag)
    tag = b"s2s-" + mode.encode() + flag.encode()
    frame = s2s_frame(v6, tag)
    s1 = n.dev("ipa", "s1")
    dropped = s1.stats.tx_dropped
    n.send("ipa", "s1", frame)
    got_s2, got_ext = tagged(n.s2, tag), tagged(n.ext, tag)
    if flag == "bridge":
        assert got_s2 == [frame] and got_ext == []
    elif flag == "private":
        assert got_s2 == [] and got_ext == []
        assert s1.stats.tx_dropped == dropped + 1
    else:
        assert got_s2 == []
        if mode == "l2":
            assert got_ext == [frame]
        else:
            (out,) = got_ext
            assert out[:12] == T.mac(T.MAC_X) + T.mac(T.MAC_M)
            assert out[14:] == frame[14:]


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("mode", MODES)
def test_outside_to_slave_echo(chains, mode: str, flag: str, v6: bool) -> None:  # type: ignore[no-untyped-def]
    """The echo request to s1's address reaches s1's namespace in every mode (l2/l3 by the
    rx_handler, l3s by the l3mdev route + LOCAL_IN hook) and the reply leaves through the
    master; the flags never matter for outside traffic."""
    n = Net(mode, flag)
    tag = b"x2s-" + mode.encode() + flag.encode()
    if v6:
        req = T.eth(T.MAC_M, T.MAC_X, 0x86DD, T.echo6(T.IP6["x"], T.IP6["s1"], tag))
    else:
        req = T.eth(T.MAC_M, T.MAC_X, 0x0800, T.echo4(T.IP["x"], T.IP["s1"], tag))
    n.send("ipx", "ext", req)
    (reply,) = tagged(n.ext, tag)
    e = dpkt.ethernet.Ethernet(reply)
    assert e.dst == T.mac(T.MAC_X) and e.src == T.mac(T.MAC_M)
    if v6:
        assert e.data.src == T.ip6(T.IP6["s1"]) and e.data.data.type == 129
    else:
        assert e.data.src == T.ip4(T.IP["s1"]) and e.data.data.type == 0
    s1 = n.dev("ipa", "s1")
    assert s1.stats.rx_packets >= 1 and s1.stats.tx_packets >= 1
    if mode == "l3s":
        assert tagged(n.s1, tag) == []  # no rx_handler round: s1's taps never see it
    else:
        assert tagged(n.s1, tag) == [req]


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("mode", MODES)
def test_slave_to_outside(chains, mode: str, flag: str, v6: bool) -> None:  # type: ignore[no-untyped-def]
    """l2: the frame leaves through the master unchanged; l3/l3s: re-routed in the
    master's namespace, so the L2 header is the master's neighbour's."""
    n = Net(mode, flag)
    tag = b"s2x-" + mode.encode() + flag.encode()
    dst_mac = T.MAC_X if mode == "l2" else T.MAC_M
    if v6:
        frame = T.eth(dst_mac, T.MAC_M, 0x86DD, T.udp6(T.IP6["s1"], T.IP6["x"], tag))
    else:
        frame = T.eth(dst_mac, T.MAC_M, 0x0800, T.udp4(T.IP["s1"], T.IP["x"], tag))
    n.send("ipa", "s1", frame)
    (out,) = tagged(n.ext, tag)
    assert out[:12] == T.mac(T.MAC_X) + T.mac(T.MAC_M) and out[12:] == frame[12:]


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("mode", MODES)
def test_broadcast_from_outside(chains, mode: str, flag: str) -> None:  # type: ignore[no-untyped-def]
    """l2: the broadcast is queued and every slave gets a copy (``ipvlan_process_multicast``)
    after the master got the original; s1 owns the address and answers.  l3: ARP is
    demuxed by target address like unicast, so s1 receives it but is NOARP and stays
    silent; s2 sees nothing.  l3s: nothing reaches a slave."""
    n = Net(mode, flag)
    req = T.eth(T.BCAST, T.MAC_X, 0x0806, T.arp_req("10.0.0.9", T.IP["s1"]))
    mcast = n.dev("ipb", "s2").stats.multicast
    n.send("ipx", "ext", req)
    s1 = [f.data for f in n.s1 if f.data[12:14] == b"\x08\x06"]
    s2 = [f.data for f in n.s2 if f.data[12:14] == b"\x08\x06"]
    replies = [f.data for f in n.ext if f.data[12:14] == b"\x08\x06"]
    if mode == "l2":
        assert s1 == [req] and s2 == [req]
        (rep,) = replies
        a = dpkt.arp.ARP(rep[14:])
        assert a.op == 2 and a.spa == T.ip4(T.IP["s1"]) and a.sha == T.mac(T.MAC_M)
        assert n.dev("ipb", "s2").stats.multicast == mcast + 1
    elif mode == "l3":
        assert s1 == [req] and s2 == [] and replies == []
    else:
        assert s1 == [] and s2 == [] and replies == []


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("mode", MODES)
def test_ipv6_multicast_from_outside(chains, mode: str, flag: str) -> None:  # type: ignore[no-untyped-def]
    """A Neighbour Solicitation for s1's address to its solicited-node group.  l2: queued
    and given only to the slave whose filter has the group (s1), which answers with a
    Neighbour Advertisement through the master.  l3: the multicast destination is no
    slave's address, the master keeps it.  l3s: the master keeps it."""
    n = Net(mode, flag)
    dmac, pkt = T.ns6(T.IP6["x"], T.IP6["s1"])
    req = T.eth(dmac, T.MAC_X, 0x86DD, pkt)
    n.send("ipx", "ext", req)
    s1 = [f.data for f in n.s1 if f.data == req]
    s2 = [f.data for f in n.s2 if f.data == req]
    na = [dpkt.ethernet.Ethernet(f.data) for f in n.ext
          if f.data[12:14] == b"\x86\xdd" and f.data[14 + 40] == 136]
    if mode == "l2":
        assert s1 == [req] and s2 == []
        (adv,) = na
        assert adv.src == T.mac(T.MAC_M) and adv.dst == T.mac(T.MAC_X)
        assert adv.data.src == T.ip6(T.IP6["s1"])
    else:
        assert s1 == [] and s2 == [] and na == []


@pytest.mark.parametrize("flag", FLAGS)
def test_l2_broadcast_from_slave(chains, flag: str) -> None:  # type: ignore[no-untyped-def]
    """An l2 slave's broadcast goes to the work queue: the other slaves get it (received
    as from a wire, ``dev_forward_skb``), the sender does not, and then it leaves through
    the master — whatever the flags (``ipvlan_process_multicast`` does not look at
    them)."""
    n = Net("l2", flag)
    req = T.eth(T.BCAST, T.MAC_M, 0x0806, T.arp_req(T.IP["s1"], "10.0.0.77", sha=T.MAC_M))
    n.send("ipa", "s1", req)
    assert [f.data for f in n.s2] == [req]
    assert [f.data for f in n.s1] == []
    assert [f.data for f in n.ext] == [req]


def test_l3_drops_group_frames_from_slave(chains) -> None:  # type: ignore[no-untyped-def]
    """``ipvlan_process_outbound``: l3 never sends a multicast/broadcast frame."""
    n = Net("l3", "bridge")
    frame = T.eth(T.BCAST, T.MAC_M, 0x0800, T.udp4(T.IP["s1"], "10.0.0.255", b"bc"))
    s1 = n.dev("ipa", "s1")
    dropped = s1.stats.tx_dropped
    n.send("ipa", "s1", frame)
    assert [f.data for f in n.ext] == [] and [f.data for f in n.s2] == []
    assert s1.stats.tx_dropped == dropped + 1


def test_l2_hairpinned_own_broadcast_not_requeued(chains) -> None:  # type: ignore[no-untyped-def]
    """``ipvlan_external_frame``: a group frame with the master's source MAC and a
    slave's source address is ours coming back (vepa hairpin) — not queued again."""
    n = Net("l2", "vepa")
    frame = T.eth(T.BCAST, T.MAC_M, 0x0800, T.udp4(T.IP["s1"], "10.0.0.255", b"own"))
    n.send("ipx", "ext", frame)
    assert tagged(n.s1, b"own") == [] and tagged(n.s2, b"own") == []
    other = T.eth(T.BCAST, T.MAC_M, 0x0800, T.udp4("10.0.0.50", "10.0.0.255", b"oth"))
    n.send("ipx", "ext", other)
    assert tagged(n.s1, b"oth") == [other] and tagged(n.s2, b"oth") == [other]


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("mode", ["l2", "l3"])
def test_neighbour_resolution_between_slaves(chains, mode: str, v6: bool) -> None:  # type: ignore[no-untyped-def]
    """s2 answers an echo from s1 without a neighbour entry for s1.  l2: it resolves
    first — the ARP request / Neighbour Solicitation is a group frame, so it goes through
    the queue to s1 (whose filter has broadcast / its solicited-node group) and out of the
    master; s1's reply is to the shared MAC, hence local, demuxed by target address.
    l3: the slaves are NOARP, the reply goes straight back through the port."""
    n = Net(mode, "bridge")
    tag = b"resolve-" + mode.encode()
    if v6:
        req = T.eth(T.MAC_M, T.MAC_M, 0x86DD, T.echo6(T.IP6["s1"], T.IP6["s2"], tag))
    else:
        req = T.eth(T.MAC_M, T.MAC_M, 0x0800, T.echo4(T.IP["s1"], T.IP["s2"], tag))
    n.send("ipa", "s1", req)
    got = [dpkt.ethernet.Ethernet(f.data) for f in n.s1]
    replies = [e for e in got if tag in bytes(e)]
    assert len(replies) == 1
    resolution = [e for e in got if tag not in bytes(e)]
    wire = [dpkt.ethernet.Ethernet(f.data) for f in n.ext]
    if mode == "l3":
        assert resolution == [] and wire == []
        return
    (sol,) = resolution
    (out,) = wire
    assert bytes(out) == bytes(sol)
    if v6:
        assert sol.dst == bytes.fromhex("3333ff000001") and sol.data.data.type == 135
    else:
        assert sol.dst == b"\xff" * 6 and sol.data.op == 1 and sol.data.tpa == T.ip4(T.IP["s1"])


@pytest.mark.parametrize("mode", ["l3", "l3s"])
def test_l3s_is_seen_by_the_masters_netfilter(chains, mode: str) -> None:  # type: ignore[no-untyped-def]
    """The point of l3s (ipvlan_l3s.c): the packet for a slave goes through the master
    namespace's INPUT hooks and conntrack (the reply through its OUTPUT), so a rule there
    counts it and conntrack has the flow; in l3 the rx_handler diverts it before IP."""
    from netstack import Stack
    st = Stack()
    st.run_script(T.script(mode, "bridge")
                  + "ip netns exec ipm nft add table inet t\n"
                  + "ip netns exec ipm nft 'add chain inet t c { type filter hook input "
                    "priority 0; }'\n"
                  + "ip netns exec ipm nft add rule inet t c ip daddr 10.0.0.1 ct state new "
                    "counter\n", name=f"ipvlan-ct-{mode}")
    st.advance(1.0)
    ext = st.capture("ipx", "ext")
    st.inject("ipx", "ext", [T.eth(T.MAC_M, T.MAC_X, 0x0800,
                                   T.echo4(T.IP["x"], T.IP["s1"], b"ct"))])
    st.advance(0.01)
    assert len([f for f in ext if f.data.endswith(b"ct")]) == 1      # answered either way
    rule = st.command("ip netns exec ipm nft list chain inet t c").stdout
    flows = st.command("ip netns exec ipm conntrack -L").stdout
    if mode == "l3s":
        assert "counter packets 1 bytes 30" in rule
        assert "src=10.0.0.9 dst=10.0.0.1 type=8" in flows and "UNREPLIED" not in flows
    else:
        assert "counter packets 0 bytes 0" in rule
        assert flows == ""
