"""Register-VM semantics (net/netfilter/nf_tables_core.c ``nft_do_chain``): verdicts,
jump/goto/return, policies, set/map/vmap/concatenation lookups with intervals and
timeouts on the virtual clock, dynamic sets, limit/quota, malformed packets."""
from __future__ import annotations

import struct

import pytest

from netstack.core.world import World
from netstack.netfilter import core
from netstack.netfilter.nft import vm as V
from netstack.netfilter.nft.cli import run_nft, run_text
from netstack.netfilter.nft.hooks import nft_do_chain
from netstack.netfilter.nft.ruleset import nft_state
from netstack.packet.skb import CHECKSUM_UNNECESSARY, Packet


def ipv4(src: str, dst: str, proto: int = 6, sport: int = 1000, dport: int = 22,
         ttl: int = 64, flags: int = 0x02, truncate: int = 0, frag: int = 0) -> Packet:
    """An IPv4 packet with a TCP (20 bytes) or UDP (8 bytes) header, data at the IP header."""
    if proto == 6:
        l4 = struct.pack(">HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 1024, 0, 0)
    else:
        l4 = struct.pack(">HHHH", sport, dport, 8, 0)
    tot = 20 + len(l4)
    hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, tot, 1, frag, ttl, proto, 0,
                      bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    data = (hdr + l4)[:tot - truncate] if truncate else hdr + l4
    if truncate:
        data = data[:2] + struct.pack(">H", len(data)) + data[4:]
    pkt = Packet(data)
    pkt.network_header = pkt.data
    pkt.protocol = 0x0800
    pkt.ip_summed = CHECKSUM_UNNECESSARY      # conntrack would drop zero checksums as invalid
    return pkt


@pytest.fixture
def net():
    return World().netns("")


def load(net, text: str) -> None:
    rc, out, err = run_text(net, text, "test")
    assert rc == 0, err


def chain(net, fam: str, table: str, name: str):
    return nft_state(net).find_table(fam, table).chains[name]


def run(net, pkt: Packet, fam: str = "ip", table: str = "t", name: str = "c",
        hook: int = 1) -> int:
    st = core.NfHookState(hook, 2, net, net.devices["lo"], None)
    return nft_do_chain(chain(net, fam, table, name), pkt, st)


BASE = "table ip t {\n chain c { type filter hook input priority 0; policy %s;\n%s\n }\n%s\n}\n"


def test_policy_and_first_matching_verdict(net) -> None:
    load(net, BASE % ("drop", "tcp dport 22 accept\nip saddr 10.0.0.9 accept", ""))
    assert run(net, ipv4("1.1.1.1", "2.2.2.2", dport=22)) == V.NF_ACCEPT
    assert run(net, ipv4("10.0.0.9", "2.2.2.2", dport=80)) == V.NF_ACCEPT
    assert run(net, ipv4("1.1.1.1", "2.2.2.2", dport=80)) == V.NF_DROP


def test_jump_returns_goto_does_not(net) -> None:
    load(net, BASE % ("drop", "jump sub\ntcp dport 22 accept",
                      "chain sub { udp dport 53 accept\n tcp dport 22 return\n }\n"
                      "chain g { tcp dport 22 accept\n }"))
    assert run(net, ipv4("1.1.1.1", "2.2.2.2", dport=22)) == V.NF_ACCEPT   # back from sub
    assert run(net, ipv4("1.1.1.1", "2.2.2.2", 17, dport=53)) == V.NF_ACCEPT
    net2 = World().netns("")
    load(net2, BASE % ("drop", "goto sub\naccept", "chain sub { tcp dport 80 accept\n }"))
    # goto: falling off the end of sub ends at the base chain's policy, not at "accept"
    assert run(net2, ipv4("1.1.1.1", "2.2.2.2", dport=22)) == V.NF_DROP
    assert run(net2, ipv4("1.1.1.1", "2.2.2.2", dport=80)) == V.NF_ACCEPT


def test_continue_return_in_base_and_counters(net) -> None:
    load(net, BASE % ("accept", "counter continue\ntcp dport 22 return\ncounter drop", ""))
    assert run(net, ipv4("1.1.1.1", "2.2.2.2", dport=22)) == V.NF_ACCEPT  # return → policy
    assert run(net, ipv4("1.1.1.1", "2.2.2.2", dport=23)) == V.NF_DROP
    rules = chain(net, "ip", "t", "c").rules
    assert (rules[0].exprs[0].packets, rules[0].exprs[0].bytes) == (2, 80)
    assert rules[2].exprs[0].packets == 1
    out = run_nft(net, ["list", "chain", "ip", "t", "c"])[1]
    assert "counter packets 2 bytes 80 continue" in out


def test_named_interval_concat_sets_and_vmap(net) -> None:
    load(net, BASE % ("drop", "ip saddr @blk drop\nip saddr . tcp dport @svc accept\n"
                      "tcp dport vmap @vm",
                      "set blk { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, "
                      "192.168.1.1-192.168.1.9 } }\n"
                      "set svc { type ipv4_addr . inet_service; elements = { 1.1.1.1 . 22 } }\n"
                      "map vm { type inet_service : verdict; elements = { 80 : accept, "
                      "81 : jump sub } }\nchain sub { accept\n }"))
    assert run(net, ipv4("10.200.0.1", "2.2.2.2", dport=22)) == V.NF_DROP
    assert run(net, ipv4("192.168.1.5", "2.2.2.2", dport=80)) == V.NF_DROP
    assert run(net, ipv4("192.168.1.10", "2.2.2.2", dport=80)) == V.NF_ACCEPT
    assert run(net, ipv4("1.1.1.1", "2.2.2.2", dport=22)) == V.NF_ACCEPT
    assert run(net, ipv4("1.1.1.2", "2.2.2.2", dport=22)) == V.NF_DROP
    assert run(net, ipv4("1.1.1.2", "2.2.2.2", dport=81)) == V.NF_ACCEPT   # via jump sub


def test_anonymous_sets_maps_and_mark(net) -> None:
    load(net, BASE % ("drop", "meta mark set tcp dport map { 22 : 0x1, 80 : 0x2 }\n"
                      "meta mark 0x2 accept\ntcp dport { 22, 443 } accept\n"
                      "ip saddr != { 9.9.9.9 } tcp dport 1000-2000 accept", ""))
    p = ipv4("1.1.1.1", "2.2.2.2", dport=80)
    assert run(net, p) == V.NF_ACCEPT and p.mark == 2
    assert run(net, ipv4("1.1.1.1", "2.2.2.2", dport=443)) == V.NF_ACCEPT
    assert run(net, ipv4("1.1.1.1", "2.2.2.2", dport=1500)) == V.NF_ACCEPT
    assert run(net, ipv4("9.9.9.9", "2.2.2.2", dport=1500)) == V.NF_DROP
    assert run(net, ipv4("1.1.1.1", "2.2.2.2", dport=999)) == V.NF_DROP


def test_element_timeout_on_virtual_clock(net) -> None:
    load(net, BASE % ("accept", "ip saddr @t drop",
                      "set t { type ipv4_addr; flags timeout; elements = { 1.1.1.1 timeout 10s, "
                      "2.2.2.2 } }"))
    assert run(net, ipv4("1.1.1.1", "3.3.3.3")) == V.NF_DROP
    net.world.advance(9)
    assert run(net, ipv4("1.1.1.1", "3.3.3.3")) == V.NF_DROP
    net.world.advance(2)
    assert run(net, ipv4("1.1.1.1", "3.3.3.3")) == V.NF_ACCEPT     # expired
    assert run(net, ipv4("2.2.2.2", "3.3.3.3")) == V.NF_DROP       # no timeout


def test_dynamic_set_from_the_packet_path(net) -> None:
    load(net, BASE % ("accept", "ip saddr @seen drop\ntcp dport 22 add @seen { ip saddr }",
                      "set seen { type ipv4_addr; flags dynamic,timeout; timeout 5s; }"))
    assert run(net, ipv4("1.1.1.1", "3.3.3.3", dport=22)) == V.NF_ACCEPT
    assert run(net, ipv4("1.1.1.1", "3.3.3.3", dport=80)) == V.NF_DROP
    net.world.advance(6)
    assert run(net, ipv4("1.1.1.1", "3.3.3.3", dport=80)) == V.NF_ACCEPT


def test_limit_token_bucket_and_quota(net) -> None:
    load(net, BASE % ("drop", "limit rate 2/second burst 2 packets accept", ""))
    got = [run(net, ipv4("1.1.1.1", "3.3.3.3")) for _ in range(3)]
    assert got == [V.NF_ACCEPT, V.NF_ACCEPT, V.NF_DROP]
    net.world.advance(0.5)                                   # one token back
    assert run(net, ipv4("1.1.1.1", "3.3.3.3")) == V.NF_ACCEPT
    assert run(net, ipv4("1.1.1.1", "3.3.3.3")) == V.NF_DROP
    q = World().netns("")
    load(q, BASE % ("accept", "quota over 100 bytes drop", ""))
    got = [run(q, ipv4("1.1.1.1", "3.3.3.3")) for _ in range(3)]   # 40 bytes each
    assert got == [V.NF_ACCEPT, V.NF_ACCEPT, V.NF_DROP]


def test_malformed_and_fragmented_packets_do_not_match_and_do_not_raise(net) -> None:
    load(net, BASE % ("accept", "tcp dport 22 drop\nip ttl 64 counter", ""))
    assert run(net, ipv4("1.1.1.1", "3.3.3.3", dport=22, truncate=18)) == V.NF_ACCEPT
    assert run(net, ipv4("1.1.1.1", "3.3.3.3", dport=22, frag=0x0001)) == V.NF_ACCEPT
    assert run(net, ipv4("1.1.1.1", "3.3.3.3", dport=22)) == V.NF_DROP
    junk = Packet(b"\x45\x00")
    junk.network_header = junk.data
    assert run(net, junk) == V.NF_ACCEPT


def test_base_chain_registered_with_hook_infrastructure(net) -> None:
    load(net, BASE % ("drop", "tcp dport 22 accept", ""))
    ents = core.nf_hook_entries(net, core.NFPROTO_IPV4, core.NF_INET_LOCAL_IN)
    assert [e.priority for e in ents] == [0]
    assert core.nf_hook(net, 2, 1, ipv4("1.1.1.1", "2.2.2.2", dport=22),
                        net.devices["lo"], None) == 1
    assert core.nf_hook(net, 2, 1, ipv4("1.1.1.1", "2.2.2.2", dport=80),
                        net.devices["lo"], None) == 0
    run_nft(net, ["delete", "table", "ip", "t"])
    assert core.nf_hook_entries(net, core.NFPROTO_IPV4, core.NF_INET_LOCAL_IN) == []


def test_accept_ends_only_the_current_base_chain(net) -> None:
    load(net, "table ip a { chain c { type filter hook input priority 0; accept\n } }\n"
              "table ip b { chain c { type filter hook input priority 10; drop\n } }\n")
    assert core.nf_hook(net, 2, 1, ipv4("1.1.1.1", "2.2.2.2"), net.devices["lo"], None) == 0


def test_dnat_chain_translates_through_nf2_nat_core(net) -> None:
    load(net, "table ip t { chain pre { type nat hook prerouting priority dstnat; "
              "policy accept;\n tcp dport 80 dnat to 10.0.0.2:8080\n } }\n")
    pkt = ipv4("1.1.1.1", "2.2.2.2", dport=80)
    assert core.nf_hook(net, 2, core.NF_INET_PRE_ROUTING, pkt, net.devices["lo"], None) == 1
    nh = pkt.network_header
    assert bytes(pkt.buf[nh + 16:nh + 20]) == bytes([10, 0, 0, 2])
    assert struct.unpack_from(">H", pkt.buf, nh + 22)[0] == 8080
    other = ipv4("1.1.1.1", "2.2.2.2", dport=81, sport=1001)
    assert core.nf_hook(net, 2, core.NF_INET_PRE_ROUTING, other, net.devices["lo"], None) == 1
    assert bytes(other.buf[other.network_header + 16:other.network_header + 20]) == \
        bytes([2, 2, 2, 2])


def test_ct_state_through_nf2_conntrack(net) -> None:
    load(net, BASE % ("drop", "ct state new tcp dport 22 accept\nct state established accept",
                      "chain pre { type filter hook prerouting priority 0; }"))
    lo = net.devices["lo"]
    syn = ipv4("1.1.1.1", "2.2.2.2", dport=22)
    assert core.nf_hook(net, 2, core.NF_INET_PRE_ROUTING, syn, lo, None) == 1
    assert core.nf_hook(net, 2, core.NF_INET_LOCAL_IN, syn, lo, None) == 1
    bad = ipv4("1.1.1.1", "2.2.2.2", dport=23)
    core.nf_hook(net, 2, core.NF_INET_PRE_ROUTING, bad, lo, None)
    assert core.nf_hook(net, 2, core.NF_INET_LOCAL_IN, bad, lo, None) == 0


def test_tcp_reset_reply_is_built_as_nf_send_reset(net, monkeypatch) -> None:
    """A SYN without ACK gets RST|ACK acking seq+1 from the original destination."""
    import netstack.ipv4.ip_output as ipo
    sent = []
    monkeypatch.setattr(ipo, "ip_local_out", lambda n, p: sent.append(p.bytes()))
    net.dev_open(net.devices["lo"])            # the reset needs a route back
    load(net, BASE % ("accept", "tcp dport 23 reject with tcp reset", ""))
    syn = ipv4("127.0.0.2", "127.0.0.1", dport=23, sport=4000, flags=0x02)
    assert run(net, syn) == V.NF_DROP
    assert len(sent) == 1
    rst = sent[0]
    assert rst[12:16] == bytes([127, 0, 0, 1]) and rst[16:20] == bytes([127, 0, 0, 2])
    sport, dport, seq, ack, _, flags = struct.unpack_from(">HHIIBB", rst, 20)
    assert (sport, dport, seq, ack, flags) == (23, 4000, 0, 2, 0x14)
    # a reset is never answered
    rst_in = ipv4("127.0.0.2", "127.0.0.1", dport=23, sport=4000, flags=0x04)
    assert run(net, rst_in) == V.NF_DROP and len(sent) == 1


def test_listing_shows_expiry_on_the_virtual_clock(net) -> None:
    load(net, "table ip t { set s { type ipv4_addr; flags timeout; timeout 1h; "
              "elements = { 1.2.3.4 timeout 10s, 5.6.7.8 } } }\n")
    net.world.advance(2.5)
    out = run_nft(net, ["list", "set", "ip", "t", "s"])[1]
    assert "elements = { 1.2.3.4 timeout 10s expires 7s500ms, 5.6.7.8 expires 59m57s500ms }" \
        in out
    net.world.advance(8)
    out = run_nft(net, ["list", "set", "ip", "t", "s"])[1]
    assert "elements = { 5.6.7.8 expires 59m49s500ms }" in out
