"""Kernel-differential scenarios for the bridge (issue #5): the same script and frames on
Linux 6.18 and on netstack; captured frames must match byte for byte and the bridge's
``bridge -j fdb`` / ``ip -d -j link`` state must match (kernel_helpers.py says what is
normalised and why).  Each test first pins what the kernel did."""
from __future__ import annotations

from kernel_helpers import BR_MAC, MAC, compare, got, script, send

X = "02:00:00:00:01:99"   # a station behind h1
UNKNOWN = "02:00:00:00:09:09"
Q_FDB = "ip netns exec b bridge -j fdb show br br0"


def test_learning_and_flooding() -> None:
    """Unknown unicast floods; the reply is learned and forwarded to one port only."""
    sends = [send(1, MAC[2]), send(2, MAC[1]), send(1, MAC[2]), send(3, UNKNOWN)]
    k, _ = compare("br_learning", script("base"), sends, [Q_FDB])
    assert len(got(k, 2)) == 3 and len(got(k, 3)) == 1 and len(got(k, 1)) == 2


def test_flood_flags() -> None:
    """flood off stops unknown unicast, mcast_flood off multicast, bcast_flood off
    broadcast, each on its own port."""
    frag = ("ip -n b link set p2 type bridge_slave flood off\n"
            "bridge -n b link set dev p3 mcast_flood off\n"
            "ip -n b link set p1 type bridge_slave bcast_flood off\n")
    sends = [send(1, UNKNOWN), send(1, "01:00:5e:01:02:03"), send(2, "ff:ff:ff:ff:ff:ff"),
             send(3, "33:33:00:00:00:09")]
    k, _ = compare("br_flood_flags", script("base", "\n" + frag), sends)
    assert len(got(k, 3)) == 2 and len(got(k, 2)) == 2 and len(got(k, 1)) == 1


def test_hairpin() -> None:
    """A frame for a station behind its own ingress port goes back out only with hairpin."""
    frag = "ip -n b link set p1 type bridge_slave hairpin on\n"
    sends = [send(1, MAC[2], src=X), send(1, X), send(2, X)]
    k, _ = compare("br_hairpin", script("base", "\n" + frag), sends, [Q_FDB])
    # with hairpin even the first (flooded) frame comes back out of p1
    assert len(got(k, 1)) == 3
    k2, _ = compare("br_no_hairpin", script("base"), sends)
    assert len(got(k2, 1)) == 1


def test_group_fwd_mask() -> None:
    """Link-local groups: STP's group floods with STP off, PAUSE is dropped, 802.1X
    (…:03) is forwarded only with group_fwd_mask bit 3, LLDP (…:0e) stays local."""
    frag = "ip -n b link set br0 type bridge group_fwd_mask 0x8\n"
    sends = [send(1, "01:80:c2:00:00:00"), send(1, "01:80:c2:00:00:01", etype=0x8808),
             send(1, "01:80:c2:00:00:03", etype=0x888E), send(1, "01:80:c2:00:00:0e",
                                                              etype=0x88CC),
             send(1, "01:80:c2:00:00:02", etype=0x8809)]
    k, _ = compare("br_group_fwd_mask", script("base", "\n" + frag), sends,
                   ["ip netns exec b ip -d -j link show br0"])
    assert [f[:6].hex() for f in got(k, 2)] == ["0180c2000000", "0180c2000003"]


def test_stp_port_states() -> None:
    """Configured states: a learning port learns but does not forward, a listening or
    disabled one does neither; blocking with STP off is forwarding again at once."""
    frag = ("bridge -n b link set dev p2 state 2\n"
            "bridge -n b link set dev p3 state 1\n")
    sends = [send(1, "ff:ff:ff:ff:ff:ff"), send(2, MAC[1]), send(3, MAC[1]),
             send(1, MAC[2])]
    k, _ = compare("br_stp_states", script("base", "\n" + frag), sends,
                   [Q_FDB, "ip netns exec b bridge -j link show"])
    assert got(k, 2) == [] and got(k, 3) == [] and got(k, 1) == []


def test_fdb_static_entries() -> None:
    """bridge fdb add (static / permanent / dynamic / sticky): a static entry steers
    traffic, and ``bridge -j fdb show`` lists them as the kernel does."""
    frag = ("bridge -n b fdb add 02:00:00:00:0a:01 dev p3 master static\n"
            "bridge -n b fdb add 02:00:00:00:0a:02 dev p2 master\n"
            "bridge -n b fdb add 02:00:00:00:0a:03 dev p2 master dynamic\n"
            "bridge -n b fdb add 02:00:00:00:0a:04 dev p1 master static sticky\n"
            "bridge -n b fdb replace 02:00:00:00:0a:03 dev p3 master static\n"
            "bridge -n b fdb del 02:00:00:00:0a:02 dev p2 master\n"
            "bridge -n b fdb add 02:00:00:00:0a:05 dev br0 self\n")
    sends = [send(1, "02:00:00:00:0a:01"), send(2, "02:00:00:00:0a:03"),
             send(3, "02:00:00:00:0a:05"), send(2, "02:00:00:00:0a:04", src=X)]
    k, _ = compare("br_fdb_static", script("base", "\n" + frag), sends,
                   [Q_FDB, "ip netns exec b bridge -j -s fdb show dev p3"])
    assert len(got(k, 3)) == 2 and got(k, 2) == []


def test_ip_link_details() -> None:
    """``ip -d -j link`` of the bridge and a port after changing options."""
    frag = ("ip -n b link set br0 type bridge ageing_time 1000 hello_time 300 priority 4096 "
            "max_age 1000 forward_delay 400 group_fwd_mask 0x4000 group_address "
            "01:80:c2:00:00:05 no_linklocal_learn 1\n"
            "ip -n b link set p2 type bridge_slave cost 7 priority 5 learning off isolated on "
            "guard on root_block on proxy_arp on group_fwd_mask 0x8\n")
    compare("br_link_details", script("base", "\n" + frag), [],
            ["ip -n b -d -j link show br0", "ip -n b -d -j link show p2",
             "ip -n b -d -j link show p1", "ip netns exec b bridge -d -j link show"])


def test_isolated_ports() -> None:
    """Isolated ports do not talk to each other, only to non-isolated ones."""
    frag = ("bridge -n b link set dev p1 isolated on\n"
            "bridge -n b link set dev p2 isolated on\n")
    sends = [send(1, "ff:ff:ff:ff:ff:ff"), send(3, "ff:ff:ff:ff:ff:ff")]
    k, _ = compare("br_isolated", script("base", "\n" + frag), sends)
    assert len(got(k, 2)) == 1 and len(got(k, 3)) == 1 and len(got(k, 1)) == 1


def test_ageing() -> None:
    """With ageing_time 1 s a learned entry is gone 3 s later: the frame floods again."""
    frag = "ip -n b link set br0 type bridge ageing_time 100\n"
    sends = [send(2, MAC[1]), send(1, MAC[2]), send(1, MAC[2], delay=3.0)]
    k, _ = compare("br_ageing", script("base", "\n" + frag), sends, [Q_FDB], settle=0.3)
    assert len(got(k, 2)) == 2 and len(got(k, 3)) == 2


def test_to_bridge_mac_is_local() -> None:
    """A frame to the bridge's own MAC is delivered locally, never forwarded; a learning
    port with learning off does not learn."""
    frag = "ip -n b link set p3 type bridge_slave learning off\n"
    sends = [send(1, BR_MAC), send(3, MAC[1]), send(1, MAC[3])]
    k, _ = compare("br_local", script("base", "\n" + frag), sends, [Q_FDB])
    assert got(k, 2) == [MAC_FRAME for MAC_FRAME in got(k, 2)]
    assert len(got(k, 3)) == 1 and len(got(k, 2)) == 1


def test_nft_bridge_family_hooks() -> None:
    """nftables bridge-family chains run at the bridge's NF_BR_* hooks: a forward-chain
    drop by source MAC and a prerouting drop by destination, both bridged traffic."""
    frag = ("ip netns exec b nft add table bridge f\n"
            "ip netns exec b nft add chain bridge f fw '{ type filter hook forward priority 0; }'\n"
            "ip netns exec b nft add chain bridge f pr '{ type filter hook prerouting priority 0; }'\n"
            "ip netns exec b nft add rule bridge f fw ether saddr 02:00:00:00:03:01 drop\n"
            "ip netns exec b nft add rule bridge f pr ether daddr 02:00:00:00:09:09 drop\n")
    sends = [send(3, "ff:ff:ff:ff:ff:ff"), send(1, UNKNOWN), send(1, "ff:ff:ff:ff:ff:ff")]
    k, _ = compare("br_nft", script("base", "\n" + frag), sends, [Q_FDB])
    assert got(k, 1) == [] and len(got(k, 2)) == 1 and len(got(k, 3)) == 1


STP = "ip -n b link set br0 type bridge stp_state 1\n"


def bpdu(root: str, cost: int, bridge: str, port: int, age: int = 0, max_age: int = 20,
         hello: int = 2, fd: int = 15, flags: int = 0) -> bytes:
    """A configuration BPDU frame from h1 (802.3 + LLC 42/42/03), built by hand."""
    def bid(s: str) -> bytes:
        prio, mac_ = s.split(".")
        return int(prio, 16).to_bytes(2, "big") + bytes.fromhex(mac_.replace(":", ""))
    body = (b"\x00\x00\x00\x00" + bytes([flags]) + bid(root) + cost.to_bytes(4, "big")
            + bid(bridge) + port.to_bytes(2, "big")
            + b"".join((t * 256).to_bytes(2, "big") for t in (age, max_age, hello, fd)))
    llc = b"\x42\x42\x03" + body
    return (bytes.fromhex("0180c2000000") + bytes.fromhex(MAC[1].replace(":", ""))
            + len(llc).to_bytes(2, "big") + llc)


def test_stp_hello_bpdus() -> None:
    """With kernel STP the root bridge sends configuration BPDUs out of every designated
    port each hello time (one each within 2.5 s of enabling STP)."""
    from kernel_helpers import Send
    sends = [Send("h1", "e1", eth_frame := bytes(12) + b"\x88\xb5" + bytes(46), 2.5)]
    del eth_frame
    k, _ = compare("br_stp_hello", script("base", "\n" + STP), sends, settle=0.2)
    (f,) = [x for x in got(k, 2) if x[:6] == bytes.fromhex("0180c2000000")]
    root = bytes.fromhex("800002000000 0b00".replace(" ", ""))
    assert f[6:12] == bytes.fromhex("020000000b02") and f[12:17] == b"\x00\x26\x42\x42\x03"
    assert f[17:22] == bytes(5) and f[22:30] == root and f[30:34] == bytes(4)
    assert f[34:42] == root and f[42:44] == b"\x80\x02"
    assert f[44:52] == bytes.fromhex("0000140002000f00")   # age 0, 20 s, 2 s, 15 s


def test_stp_superior_bpdu_elects_root_port() -> None:
    """A better root heard on p1: p1 becomes the root port, the bridge stops being root,
    relays the root's information out of its designated ports at once (cost + 2)."""
    from kernel_helpers import Send
    sends = [Send("h1", "e1", bpdu("1000.02:00:00:00:01:01", 0, "1000.02:00:00:00:01:01",
                                   0x8001))]
    k, _ = compare("br_stp_root", script("base", "\n" + STP), sends,
                   ["ip -n b -d -j link show br0", "ip -n b -d -j link show p1",
                    "ip -n b -d -j link show p2"], settle=0.3)
    (f,) = [x for x in got(k, 2) if x[:6] == bytes.fromhex("0180c2000000")]
    assert f[22:30] == bytes.fromhex("1000020000000101") and f[30:34] == b"\0\0\0\2"


def test_stp_tcn_acknowledged_by_root() -> None:
    """A TCN BPDU on a designated port of the root bridge: topology change (FDB ageing
    2×forward_delay), acknowledged at once with a TC+TCA configuration BPDU."""
    from kernel_helpers import Send
    tcn = (bytes.fromhex("0180c2000000") + bytes.fromhex(MAC[2].replace(":", ""))
           + b"\x00\x07\x42\x42\x03\x00\x00\x00\x80")
    k, _ = compare("br_stp_tcn", script("base", "\n" + STP), [Send("h2", "e2", tcn)],
                   ["ip -n b -d -j link show br0"], settle=0.3)
    (f,) = [x for x in got(k, 2) if x[:6] == bytes.fromhex("0180c2000000")]
    assert f[21] == 0x81


def _ip4(dst: str, pad: bytes = b"", bad_csum: bool = False, tot_extra: int = 0) -> bytes:
    import struct
    d = bytes(int(x) for x in dst.split("."))
    h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + tot_extra, 1, 0, 64, 17, 0,
                              bytes([10, 0, 0, 1]), d))
    s = sum(struct.unpack("!10H", bytes(h)))
    s = (s & 0xFFFF) + (s >> 16)
    h[10:12] = ((~s & 0xFFFF) ^ (0xFF if bad_csum else 0)).to_bytes(2, "big")
    return (bytes.fromhex("020000000201020000000101") + b"\x08\x00" + bytes(h)
            + b"\x30\x39\x30\x39\x00\x08\x00\x00" + pad)


def test_br_netfilter_validates_and_trims_bridged_ipv4() -> None:
    """br_netfilter (built in, bridge-nf-call-iptables=1 in every namespace): a bad
    checksum or a truncated datagram is dropped, trailing bytes are trimmed, a good one
    forwarded; an ``ip`` family FORWARD rule filters bridged traffic."""
    from kernel_helpers import Send
    frag = ("ip netns exec b nft add table ip f\n"
            "ip netns exec b nft add chain ip f fw '{ type filter hook forward priority 0; }'\n"
            "ip netns exec b nft add rule ip f fw ip daddr 10.0.0.9 drop\n")
    sends = [Send("h1", "e1", _ip4("10.0.0.2", pad=b"trailing-junk")),
             Send("h1", "e1", _ip4("10.0.0.2", bad_csum=True)),
             Send("h1", "e1", _ip4("10.0.0.2", tot_extra=20)),
             Send("h1", "e1", _ip4("10.0.0.9"))]
    k, _ = compare("br_nf_ipv4", script("base", "\n" + frag), sends,
                   ["ip netns exec b sysctl -n net.bridge.bridge-nf-call-iptables"])
    assert got(k, 2) == [_ip4("10.0.0.2")]


def test_bridge_as_ip_interface() -> None:
    """The bridge device answers ARP and ping on its own address: frames go up through
    br_pass_frame_up and the replies out through br_dev_xmit to the learned port only."""
    import struct

    from kernel_helpers import Send
    frag = ("ip netns exec b sysctl -w net.ipv4.conf.all.rp_filter=0\n"
            "ip netns exec b sysctl -w net.ipv4.conf.default.rp_filter=0\n"
            "ip netns exec b sysctl -w net.ipv4.icmp_ratemask=0\n"
            "ip -n b addr add 10.9.0.254/24 dev br0\n")
    h1 = bytes.fromhex("020000000101")
    arp = (b"\xff" * 6 + h1 + b"\x08\x06" + bytes.fromhex("0001080006040001") + h1
           + bytes([10, 9, 0, 1]) + bytes(6) + bytes([10, 9, 0, 254]))
    icmp = bytearray(b"\x08\x00\x00\x00\x12\x34\x00\x01" + b"bridge ping!")
    s = sum(struct.unpack("!%dH" % (len(icmp) // 2), bytes(icmp)))
    s = (s & 0xFFFF) + (s >> 16)
    icmp[2:4] = (~s & 0xFFFF).to_bytes(2, "big")
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 7, 0, 64, 1, 0,
                               bytes([10, 9, 0, 1]), bytes([10, 9, 0, 254])))
    s = sum(struct.unpack("!10H", bytes(ip)))
    s = (s & 0xFFFF) + (s >> 16)
    ip[10:12] = (~s & 0xFFFF).to_bytes(2, "big")
    ping = bytes.fromhex("02000000 0b00".replace(" ", "")) + h1 + b"\x08\x00" + bytes(ip) \
        + bytes(icmp)
    k, _ = compare("br_ip_iface", script("base", "\n" + frag),
                   [Send("h1", "e1", arp), Send("h1", "e1", ping)],
                   [Q_FDB, "ip -n b -j neigh show"], originators=frozenset({"10.9.0.254"}))
    assert len(got(k, 1)) == 2 and len(got(k, 2)) == 1 and len(got(k, 3)) == 1
