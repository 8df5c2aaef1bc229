"""``reject`` in the bridge family (nft_reject_bridge.c) on netstack traffic, and the
layer-2 reply builders of netstack/netfilter/nft/reject.py.

Linux 6.18 here has no nft_reject_bridge module (``nft add rule bridge t c reject`` is
ENOENT), so the expected frames are built by hand from RFC 792 / RFC 4443 / RFC 9293
and the kernel source (nf_reject_skb_v4_tcp_reset, nf_reject_skb_v4_unreach,
nf_reject_skb_v6_*): addresses and MACs swapped, TTL 64 (ip_default_ttl), id 0, DF,
IPv6 hop limit 64 (all.hop_limit), the ICMP error quoting the packet from its IP
header (up to 536 / 1220 bytes)."""
from __future__ import annotations

import dpkt
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack import Stack

MAC_H1, MAC_H2 = "02:00:00:00:01:01", "02:00:00:00:02:01"
IP_H1, IP_H2 = "10.0.0.1", "10.0.0.2"
IP6_H1, IP6_H2 = "2001:db8::1", "2001:db8::2"

SCRIPT = f"""ip netns add h1
ip netns add h2
ip netns add b
ip netns exec h1 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec b sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip -n b link add br0 type bridge
ip -n b link add p1 index 11 type veth peer name v1 index 21 address {MAC_H1} netns h1
ip -n b link add p2 index 12 type veth peer name v2 index 22 address {MAC_H2} netns h2
ip -n b link set p1 master br0
ip -n b link set p2 master br0
ip -n b link set br0 up
ip -n b link set p1 up
ip -n b link set p2 up
ip -n h1 link set v1 up
ip -n h2 link set v2 up
ip netns exec b nft add table bridge f
ip netns exec b nft 'add chain bridge f pre {{ type filter hook prerouting priority 0; }}'
ip netns exec b nft 'add rule bridge f pre ip id 21845 reject'
ip netns exec b nft 'add rule bridge f pre ether type 0x88b5 reject'
ip netns exec b nft 'add rule bridge f pre udp dport 7000 counter reject'
ip netns exec b nft 'add rule bridge f pre tcp dport 80 counter reject with tcp reset'
ip netns exec b nft 'add rule bridge f pre udp dport 7002 reject with icmpx admin-prohibited'
ip netns exec b nft 'add rule bridge f pre udp dport 7003 reject with icmp host-unreachable'
"""


def _mac(s: str) -> bytes:
    return bytes.fromhex(s.replace(":", ""))


def _ip4(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def _eth(dst: str, src: str, ip: dpkt.Packet, etype: int = 0x0800) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(dst=_mac(dst), src=_mac(src), type=etype,
                                        data=ip))


def _udp4(dport: int, payload: bytes = b"hello", src: str = IP_H1, dst: str = IP_H2
          ) -> dpkt.ip.IP:
    u = dpkt.udp.UDP(sport=40000, dport=dport, data=payload)
    ip = dpkt.ip.IP(src=_ip4(src), dst=_ip4(dst), p=17, ttl=64, id=0x1234, data=u)
    ip.len = 20 + len(bytes(u))
    return dpkt.ip.IP(bytes(ip))


def _tcp4(dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> dpkt.ip.IP:
    t = dpkt.tcp.TCP(sport=40001, dport=dport, seq=seq, ack=ack, flags=flags, win=1000,
                     data=payload)
    ip = dpkt.ip.IP(src=_ip4(IP_H1), dst=_ip4(IP_H2), p=6, ttl=64, id=0x4321, data=t)
    return dpkt.ip.IP(bytes(ip))


def _expected_unreach4(orig: bytes, code: int) -> bytes:
    """RFC 792 destination unreachable from h2 to h1, built by hand."""
    icmp = dpkt.icmp.ICMP(type=3, code=code, data=dpkt.icmp.ICMP.Unreach(data=orig[:536]))
    ip = dpkt.ip.IP(src=_ip4(IP_H2), dst=_ip4(IP_H1), p=1, ttl=64, id=0, df=1,
                    tos=0, data=icmp)
    return _eth(MAC_H1, MAC_H2, ip)


def _expected_rst4(seq: int, ack: int, flags: int) -> bytes:
    """RFC 9293 3.10.7.1: reset from h2's port 80 to h1, built by hand."""
    t = dpkt.tcp.TCP(sport=80, dport=40001, seq=seq, ack=ack, flags=flags, win=0, off=5)
    ip = dpkt.ip.IP(src=_ip4(IP_H2), dst=_ip4(IP_H1), p=6, ttl=64, id=0, df=1,
                    data=t)
    return _eth(MAC_H1, MAC_H2, ip)


def _run(frames: list[bytes]) -> list[bytes]:
    st_ = Stack()
    st_.run_script(SCRIPT, name="nfe_bridge.sh")
    cap1 = st_.capture("h1", "v1")
    cap2 = st_.capture("h2", "v2")
    st_.inject("h1", "v1", frames)
    st_.advance(0.1)
    assert [bytes(f.data) for f in cap2] == []          # nothing rejected is bridged on
    return [bytes(f.data) for f in cap1]


def test_bridge_icmp_and_reset_replies_are_built_at_layer2() -> None:
    u0, u2, u3 = _udp4(7000), _udp4(7002), _udp4(7003)
    syn = _tcp4(80, 500, 0, dpkt.tcp.TH_SYN)
    ack = _tcp4(80, 700, 12345, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, b"data")
    fin = _tcp4(80, 900, 0, dpkt.tcp.TH_FIN, b"xyz")
    got = _run([_eth(MAC_H2, MAC_H1, p) for p in (u0, syn, u2, u3, ack, fin)])
    assert got == [
        _expected_unreach4(bytes(u0), 3),                       # icmpx port → icmp 3
        _expected_rst4(0, 501, dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK),
        _expected_unreach4(bytes(u2), 13),                      # icmpx admin → 13
        _expected_unreach4(bytes(u3), 1),
        _expected_rst4(12345, 0, dpkt.tcp.TH_RST),
        _expected_rst4(0, 900 + 1 + 3, dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK),
    ]


def test_bridge_reject_refusals_get_no_reply() -> None:
    bad = bytearray(bytes(_udp4(7000)))
    bad[26] ^= 0x5A                                             # UDP checksum
    rst = _tcp4(80, 1, 0, dpkt.tcp.TH_RST)
    badtcp = bytearray(bytes(_tcp4(80, 1, 0, dpkt.tcp.TH_SYN)))
    badtcp[36] ^= 0x01                                          # TCP checksum
    frag = dpkt.ip.IP(bytes(_udp4(7000)))
    frag.offset = 5 * 8                                         # non-first fragment
    frag.id = 21845
    frag.sum = 0
    got = _run([
        bytes(dpkt.ethernet.Ethernet(dst=_mac(MAC_H2), src=_mac(MAC_H1), type=0x0800,
                                     data=bytes(bad))),
        _eth(MAC_H2, MAC_H1, rst),
        bytes(dpkt.ethernet.Ethernet(dst=_mac(MAC_H2), src=_mac(MAC_H1), type=0x0800,
                                     data=bytes(badtcp))),
        _eth(MAC_H2, MAC_H1, frag),
        _eth("ff:ff:ff:ff:ff:ff", MAC_H1, _udp4(7000)),         # broadcast MAC
        _eth("01:00:5e:00:00:01", MAC_H1, _udp4(7000)),         # multicast MAC
        _mac(MAC_H2) + _mac(MAC_H1) + b"\x88\xb5" + b"x" * 46,      # not IP: dropped only
    ])
    assert got == []


def test_bridge_reject_nft_listing_and_counters() -> None:
    st_ = Stack()
    st_.run_script(SCRIPT, name="nfe_bridge.sh")
    st_.inject("h1", "v1", [_eth(MAC_H2, MAC_H1, _udp4(7000)),
                            _eth(MAC_H2, MAC_H1, _tcp4(80, 1, 0, dpkt.tcp.TH_SYN))])
    st_.advance(0.05)
    from netstack.netfilter.nft.cli import run_nft
    rc, out, err = run_nft(st_.world.netns("b"), ["list", "ruleset"], "/tmp")
    assert rc == 0, err
    assert "\t\tudp dport 7000 counter packets 1 bytes 33 reject\n" in out
    assert "\t\ttcp dport 80 counter packets 1 bytes 40 reject with tcp reset\n" in out
    assert "\t\tip id 21845 reject with icmp port-unreachable\n" in out
    assert "reject with icmpx admin-prohibited" in out
    assert "udp dport 7003 reject with icmp host-unreachable" in out


# ----------------------------------------------------------------- builders directly
class _Info:
    """The few PktInfo fields the builders read."""

    def __init__(self, pkt, thoff: int, tprot: int, net, fragoff: int = 0) -> None:
        self.pkt, self.thoff, self.tprot, self.net = pkt, thoff, tprot, net
        self.tprot_set, self.fragoff, self.state = True, fragoff, None


def _info_for(frame: bytes, v6: bool = False):
    from netstack.core.world import World
    net = World().netns("")
    pkt = net.world.new_packet(frame)
    pkt.mac_header = pkt.data
    pkt.network_header = pkt.data + 14
    ip = bytes(frame[14:])
    if v6:
        thoff, proto = 40, ip[6]
    else:
        thoff, proto = (ip[0] & 15) * 4, ip[9]
    return _Info(pkt, pkt.network_header + thoff, proto, net)


def _ip6(nxt: int, payload: dpkt.Packet) -> dpkt.ip6.IP6:
    import socket
    ip = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, IP6_H1),
                      dst=socket.inet_pton(socket.AF_INET6, IP6_H2), nxt=nxt, hlim=64,
                      data=payload)
    ip.plen = len(bytes(payload))
    return dpkt.ip6.IP6(bytes(ip))


def test_v6_unreach_and_reset_by_hand() -> None:
    from netstack.netfilter.nft.reject import l2_reply
    import socket
    u = dpkt.udp.UDP(sport=40000, dport=7000, data=b"six")
    ip = _ip6(17, u)
    ip.data.sum = 0
    ip = _ip6(17, dpkt.udp.UDP(bytes(ip.data)))
    raw = bytes(ip)
    reply, etype = l2_reply(_info_for(_eth(MAC_H2, MAC_H1, ip, 0x86DD), True), 0, 4)
    assert etype == 0x86DD
    exp = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, IP6_H2),
                       dst=socket.inet_pton(socket.AF_INET6, IP6_H1), nxt=58, hlim=64,
                       data=dpkt.icmp6.ICMP6(type=1, code=4,
                                             data=dpkt.icmp6.ICMP6.Unreach(data=raw)))
    exp.plen = len(bytes(exp.data))
    assert reply == bytes(exp)
    # icmpx admin-prohibited maps to ICMPv6 code 1 (nft_reject_icmpv6_code)
    assert l2_reply(_info_for(_eth(MAC_H2, MAC_H1, ip, 0x86DD), True), 2, 3)[0][41] == 1
    syn = dpkt.tcp.TCP(sport=40001, dport=80, seq=10, flags=dpkt.tcp.TH_SYN, win=100)
    t = _ip6(6, syn)
    reply, _ = l2_reply(_info_for(_eth(MAC_H2, MAC_H1, t, 0x86DD), True), 1, 0)
    rt = dpkt.ip6.IP6(reply)
    assert (rt.nxt, rt.hlim, rt.plen, rt.src, rt.dst) == (6, 64, 20, t.dst, t.src)
    assert (rt.data.sport, rt.data.dport, rt.data.seq, rt.data.ack, rt.data.flags) == \
        (80, 40001, 0, 11, dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK)
    # a checksum that verifies (dpkt recomputes it when packing with sum 0)
    rt.data.sum = 0
    assert bytes(dpkt.ip6.IP6(bytes(rt)))[40 + 16:40 + 18] == reply[56:58]


def test_unreach_quotes_at_most_536_bytes() -> None:
    from netstack.netfilter.nft.reject import l2_reply
    big = _udp4(7000, b"z" * 1000)
    reply, _ = l2_reply(_info_for(_eth(MAC_H2, MAC_H1, big)), 0, 3)
    assert len(reply) == 20 + 8 + 536
    assert reply[28:] == bytes(big)[:536]


def test_no_reply_to_icmp_unreachable() -> None:
    from netstack.netfilter.nft.reject import l2_reply
    err = dpkt.icmp.ICMP(type=3, code=3, data=dpkt.icmp.ICMP.Unreach(data=b"\x45" + b"\0" * 27))
    ip = dpkt.ip.IP(src=_ip4(IP_H1), dst=_ip4(IP_H2), p=1, data=err)
    assert l2_reply(_info_for(_eth(MAC_H2, MAC_H1, ip)), 0, 3) is None
    echo = dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=1, seq=1, data=b"p"))
    ip = dpkt.ip.IP(src=_ip4(IP_H1), dst=_ip4(IP_H2), p=1, data=echo)
    assert l2_reply(_info_for(_eth(MAC_H2, MAC_H1, ip)), 0, 3) is not None


@settings(max_examples=60, deadline=None)
@given(seq=st.integers(0, 2**32 - 1), ack=st.integers(0, 2**32 - 1),
       flags=st.integers(0, 0xFF), data=st.binary(max_size=40))
def test_reset_sequence_rule_rfc9293(seq: int, ack: int, flags: int, data: bytes) -> None:
    """RFC 9293 3.10.7.1: an ACK-bearing segment is answered <SEQ=SEG.ACK><CTL=RST>,
    any other with <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; a reset is not answered."""
    from netstack.netfilter.nft.reject import l2_reply
    got = l2_reply(_info_for(_eth(MAC_H2, MAC_H1, _tcp4(80, seq, ack, flags, data))), 1, 0)
    if flags & dpkt.tcp.TH_RST:
        assert got is None
        return
    t = dpkt.ip.IP(got[0]).data
    if flags & dpkt.tcp.TH_ACK:
        assert (t.seq, t.ack, t.flags) == (ack, 0, dpkt.tcp.TH_RST)
    else:
        seglen = len(data) + bool(flags & dpkt.tcp.TH_SYN) + bool(flags & dpkt.tcp.TH_FIN)
        assert (t.seq, t.ack, t.flags) == (0, (seq + seglen) % 2**32,
                                           dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(min_size=0, max_size=120), etype=st.sampled_from([0x0800, 0x86DD]),
       rtype=st.sampled_from([0, 1, 2]), v6=st.booleans())
def test_fuzz_builders_never_raise(body: bytes, etype: int, rtype: int, v6: bool) -> None:
    """Malformed frames never escape as exceptions: no reply, the packet dropped."""
    from netstack.netfilter.nft.reject import l2_reply
    frame = _mac(MAC_H2) + _mac(MAC_H1) + etype.to_bytes(2, "big") + body
    from netstack.core.world import World
    net = World().netns("")
    pkt = net.world.new_packet(frame)
    pkt.mac_header = pkt.data
    pkt.network_header = pkt.data + 14
    info = _Info(pkt, pkt.data + 14 + (40 if v6 else 20), 6 if rtype == 1 else 17, net)
    got = l2_reply(info, rtype, 1)
    assert got is None or got[1] == etype


def test_bridge_reply_keeps_the_vlan_tag() -> None:
    """nft_reject_br_push_etherhdr: the frame's VLAN tag (here taken out of band on
    receive) is put on the reply, which leaves tagged with the same VID."""
    u = _udp4(7000)
    tag = b"\x81\x00\x00\x05"
    frame = _mac(MAC_H2) + _mac(MAC_H1) + tag + b"\x08\x00" + bytes(u)
    got = _run([frame])
    plain = _expected_unreach4(bytes(u), 3)
    assert got == [plain[:12] + tag + plain[12:]]
