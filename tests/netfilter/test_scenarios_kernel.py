"""Kernel-differential nftables scenarios (issue #4, Tests): sets, concatenations, verdict
maps, ct state on real traffic, limit/quota, reject, zones and counters read back.

Each scenario is a ruleset loaded with the real ``nft`` in namespace ``r`` of
tests/kernel/scenarios/ipv4_router.sh (or ipv6_router.sh), the same frames injected on the
kernel and on netstack, then compared: the frames h1/h2 receive byte for byte (router-sourced
IPv4 ID/checksum masked, compare.py), ``nft list ruleset`` text exactly (counter and quota
values included), and ``conntrack -L`` after canonicalisation (test_ct_kernel.canonical_ct).
The kernel half of each scenario is pinned on its own first (what the kernel does is
asserted, so a harness fault cannot make both halves agree on nothing)."""
from __future__ import annotations

import dpkt
from hypothesis import given, settings, strategies as st

from test_ct_kernel import (CT_QUERY, canonical_ct, kernel_result,  # noqa: F401
                            netstack_result, require_oracle, tcp4, to_h1, to_h2)
from test_nat_kernel import _no_setup

from kernel.cases import (H1, H2, IP_H1, IP_H2, V1H, V2H, icmp4_echo,  # noqa: E402
                          script, udp4)
from kernel.compare import results_diff  # noqa: E402
from kernel.oracle import Result  # noqa: E402

ROUTER = frozenset({"10.0.1.254", "10.0.2.254"})
NFT_LIST = "ip netns exec r nft list ruleset"


def nft(*lines: str) -> str:
    """Script lines running each nft command (quoted) in namespace r."""
    return "".join(f"ip netns exec r nft '{ln}'\n" for ln in lines)


def both(name: str, rules: str, sends, queries=(NFT_LIST,), base: str = "ipv4_router"
         ) -> tuple[Result, Result]:
    text = script(base) + rules
    k = kernel_result(name, text, list(sends), list(queries))
    n = netstack_result(text, _no_setup, list(sends), list(queries))
    return k, n


def assert_same(k: Result, n: Result) -> None:
    """Frames byte for byte, nft listings exactly, conntrack tables canonically."""
    diff = results_diff(Result(frames=k.frames), Result(frames=n.frames), ROUTER)
    assert diff is None, diff
    for q, text in k.queries.items():
        if "conntrack" in q:
            ck, cn = canonical_ct(text), canonical_ct(n.queries[q])
            assert [a for a, _ in ck] == [a for a, _ in cn], (text, n.queries[q])
            for (_, tk), (_, tn) in zip(ck, cn):
                assert abs(tk - tn) <= 2, (text, n.queries[q])
        else:
            assert n.queries[q] == text, f"{q}\n--- kernel\n{text}\n--- netstack\n{n.queries[q]}"


def got(res: Result, ns: str, dev: str) -> list[bytes]:
    return res.frames[(ns, dev)]


def udp_dports(frames: list[bytes]) -> list[int]:
    out = []
    for f in frames:
        ip = dpkt.ethernet.Ethernet(f).data
        if isinstance(ip, dpkt.ip.IP) and ip.p == 17:
            out.append(ip.data.dport)
    return out


# --------------------------------------------------------------- (1) sets + (8) counters
SETS = nft(
    "add table ip f",
    "add set ip f blocked { type inet_service; elements = { 7001, 7003 } ; }",
    "add chain ip f cf { type filter hook forward priority 0; policy accept; }",
    "add rule ip f cf udp dport @blocked counter drop",
    "add rule ip f cf udp dport { 7005, 7006 } counter drop",
    "add rule ip f cf ip protocol udp counter accept",
)
SETS_SENDS = [to_h2(udp4(IP_H1, IP_H2, 40000, p, b"s%d" % p, ident=0x1000 + p - 7000))
              for p in range(7000, 7008)]


def test_sets_kernel_half():
    require_oracle()
    k = kernel_result("nf6_sets", script("ipv4_router") + SETS, SETS_SENDS, [NFT_LIST])
    assert udp_dports(got(k, H2, V2H)) == [7000, 7002, 7004, 7007]
    text = k.queries[NFT_LIST]
    assert "counter packets 2 bytes 66 drop" in text and "counter packets 4 bytes 132 accept" in text


def test_sets_match_kernel():
    require_oracle()
    assert_same(*both("nf6_sets", SETS, SETS_SENDS))


# ------------------------------------------------------- (2) concatenations (set and vmap)
CONCAT = nft(
    "add table ip f",
    "add set ip f pairs { type ipv4_addr . inet_service; elements = { 10.0.1.1 . 81 } ; }",
    "add chain ip f cf { type filter hook forward priority 0; policy accept; }",
    "add rule ip f cf ip saddr . tcp dport @pairs counter drop",
    "add rule ip f cf ip saddr . tcp dport vmap { 10.0.1.1 . 82 : drop, 10.0.1.1 . 83 : accept }",
    "add rule ip f cf meta l4proto tcp counter drop",
)
CONCAT_SENDS = [to_h2(tcp4(IP_H1, IP_H2, 40000 + p, p, 100 * p, 0, 0x02, ident=0x1100 + p))
                for p in (80, 81, 82, 83)]


def test_concatenations_kernel_half():
    require_oracle()
    k = kernel_result("nf6_concat", script("ipv4_router") + CONCAT, CONCAT_SENDS, [NFT_LIST])
    ports = [dpkt.ethernet.Ethernet(f).data.data.dport for f in got(k, H2, V2H)]
    assert ports == [83]
    text = k.queries[NFT_LIST]
    assert "@pairs counter packets 1 bytes 40 drop" in text
    assert "meta l4proto tcp counter packets 1 bytes 40 drop" in text


def test_concatenations_match_kernel():
    require_oracle()
    assert_same(*both("nf6_concat", CONCAT, CONCAT_SENDS))


# ---------------------------------------------------------- (3) verdict maps, jump / goto
VMAP = nft(
    "add table ip f",
    "add chain ip f cf { type filter hook forward priority 0; policy accept; }",
    "add chain ip f a",
    "add chain ip f b",
    "add rule ip f a counter",
    "add rule ip f b counter accept",
    "add rule ip f cf udp dport vmap { 7000 : jump a, 7001 : goto a, 7002 : jump b }",
    "add rule ip f cf counter drop",
)
VMAP_SENDS = [to_h2(udp4(IP_H1, IP_H2, 40000, p, b"v", ident=0x1200 + p - 7000))
              for p in (7000, 7001, 7002, 7003)]


def test_vmap_jump_goto_kernel_half():
    """jump returns to the base chain (then dropped); goto does not (the base policy
    applies at the end of the goto target); accept in a jumped-to chain ends the base chain."""
    require_oracle()
    k = kernel_result("nf6_vmap", script("ipv4_router") + VMAP, VMAP_SENDS, [NFT_LIST])
    assert udp_dports(got(k, H2, V2H)) == [7001, 7002]
    text = k.queries[NFT_LIST]
    assert "chain a {\n\t\tcounter packets 2 bytes 58\n" in text
    assert "\t\tcounter packets 2 bytes 58 drop\n" in text


def test_vmap_jump_goto_match_kernel():
    require_oracle()
    assert_same(*both("nf6_vmap", VMAP, VMAP_SENDS))


# ------------------------------------------------ (4) ct state on real traffic
CTSTATE = nft(
    "add table ip f",
    "add chain ip f cf { type filter hook forward priority 0; policy accept; }",
    "add rule ip f cf ct state invalid counter drop",
    "add rule ip f cf ct state established counter accept",
    "add rule ip f cf ct state related counter accept",
    "add rule ip f cf ct state new counter accept",
)


def _bad_csum(ip_pkt: bytes) -> bytes:
    b = bytearray(ip_pkt)
    b[20 + 16] ^= 0xFF  # TCP checksum field
    return bytes(b)


def _port_unreach(src: str, dst: str, quoted_ip: bytes, ident: int) -> bytes:
    from kernel.cases import ipv4
    msg = dpkt.icmp.ICMP(type=3, code=3, data=dpkt.icmp.ICMP.Unreach(data=quoted_ip[:28]))
    return ipv4(src, dst, dpkt.ip.IP_PROTO_ICMP, msg, ident=ident)


CT_SENDS = [
    to_h2(tcp4(IP_H1, IP_H2, 40000, 80, 1000, 0, 0x02, ident=0x1301)),           # new
    to_h1(tcp4(IP_H2, IP_H1, 80, 40000, 5000, 1001, 0x12, ident=0x1302)),        # est
    to_h2(tcp4(IP_H1, IP_H2, 40000, 80, 1001, 5001, 0x10, ident=0x1303)),        # est
    to_h2(_bad_csum(tcp4(IP_H1, IP_H2, 40000, 80, 1001, 5001, 0x18, b"bad",
                         ident=0x1304))),                                         # invalid
    to_h2(tcp4(IP_H1, IP_H2, 40000, 80, 1001 + 0x40000000, 5001, 0x18, b"far",
               ident=0x1305)),                                                    # invalid
    to_h2(udp4(IP_H1, IP_H2, 41000, 7000, b"u", ident=0x1306)),                  # new
]
CT_SENDS.append(to_h1(_port_unreach(IP_H2, IP_H1, udp4(IP_H1, IP_H2, 41000, 7000, b"u",
                                                       ident=0x1306), 0x1307)))  # related


def test_ct_state_kernel_half():
    require_oracle()
    k = kernel_result("nf6_ctstate", script("ipv4_router") + CTSTATE, CT_SENDS,
                      [NFT_LIST, CT_QUERY])
    assert len(got(k, H2, V2H)) == 3 and len(got(k, H1, V1H)) == 2
    text = k.queries[NFT_LIST]
    assert "ct state invalid counter packets 2 " in text
    assert "ct state established counter packets 2 " in text
    assert "ct state related counter packets 1 " in text
    assert "ct state new counter packets 2 " in text
    assert "ESTABLISHED" in k.queries[CT_QUERY]


def test_ct_state_match_kernel():
    require_oracle()
    assert_same(*both("nf6_ctstate", CTSTATE, CT_SENDS, (NFT_LIST, CT_QUERY)))


# --------------------------------------------------------------- (5) limit and quota
LIMIT = nft(
    "add table ip f",
    "add chain ip f cf { type filter hook forward priority 0; policy accept; }",
    "add rule ip f cf udp dport 7000 limit rate 1/minute burst 3 packets counter accept",
    "add rule ip f cf udp dport 7000 counter drop",
    "add rule ip f cf udp dport 7001 limit rate over 1/minute burst 2 packets counter drop",
    "add rule ip f cf udp dport 7002 quota over 100 bytes counter drop",
)
LIMIT_SENDS = [to_h2(udp4(IP_H1, IP_H2, 40000, p, b"L" * 12, ident=0x1400 + 16 * (p - 7000) + i))
               for p in (7000, 7001, 7002) for i in range(6)]


def test_limit_quota_kernel_half():
    require_oracle()
    k = kernel_result("nf6_limit", script("ipv4_router") + LIMIT, LIMIT_SENDS, [NFT_LIST])
    ports = udp_dports(got(k, H2, V2H))
    text = k.queries[NFT_LIST]
    assert (ports.count(7000), ports.count(7001), ports.count(7002)) == (3, 2, 2), (ports, text)


def test_limit_quota_match_kernel():
    require_oracle()
    assert_same(*both("nf6_limit", LIMIT, LIMIT_SENDS))


# -------------------------------------------------------------------------- (6) reject
REJECT4 = nft(
    "add table ip f",
    "add chain ip f cf { type filter hook forward priority 0; policy accept; }",
    "add rule ip f cf udp dport 7000 counter reject",
    "add rule ip f cf tcp dport 80 counter reject with tcp reset",
    "add rule ip f cf udp dport 7001 reject with icmp type host-prohibited",
)
REJECT4_SENDS = [to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"r1", ident=0x1501)),
                 to_h2(tcp4(IP_H1, IP_H2, 40001, 80, 777, 0, 0x02, ident=0x1502)),
                 to_h2(udp4(IP_H1, IP_H2, 40002, 7001, b"r3", ident=0x1503)),
                 # bad TCP checksum: dropped by the rule, but no reset (nf_reject_ip_tcphdr_get)
                 to_h2(_bad_csum(tcp4(IP_H1, IP_H2, 40003, 80, 888, 0, 0x02, ident=0x1504))),
                 # an ACK segment: the reset takes its sequence from the ACK, no ACK flag
                 to_h2(tcp4(IP_H1, IP_H2, 40004, 80, 999, 4242, 0x18, b"data",
                            ident=0x1505))]


def test_reject_ipv4_kernel_half():
    require_oracle()
    k = kernel_result("nf6_reject4", script("ipv4_router") + REJECT4, REJECT4_SENDS, [NFT_LIST])
    assert got(k, H2, V2H) == []
    back = [dpkt.ethernet.Ethernet(f).data for f in got(k, H1, V1H)]
    kinds = [(ip.p, getattr(ip.data, "type", None), getattr(ip.data, "code", None),
              getattr(ip.data, "flags", None)) for ip in back]
    assert kinds == [(1, 3, 3, None), (6, None, None, 0x14), (1, 3, 10, None),
                     (6, None, None, 0x04)], kinds
    assert (back[1].data.ack, back[3].data.seq) == (778, 4242)
    assert "tcp dport 80 counter packets 3 bytes 124 reject with tcp reset" in \
        k.queries[NFT_LIST]


def test_reject_ipv4_match_kernel():
    require_oracle()
    assert_same(*both("nf6_reject4", REJECT4, REJECT4_SENDS))


REJECT6 = nft(
    "add table ip6 f",
    "add chain ip6 f cf { type filter hook forward priority 0; policy accept; }",
    "add rule ip6 f cf udp dport 7000 counter reject",
    "add rule ip6 f cf udp dport 7001 reject with icmpv6 type admin-prohibited",
)


def udp6_sends(payload: bytes, ports: tuple[int, ...] = (7000, 7001)) -> list:
    """UDP over IPv6 from h1 (port 40000) to h2, one datagram per destination port,
    injected on h1's veth (ipv6_router.sh addresses)."""
    from kernel.cases import IP6_H1, IP6_H2, MAC_H1, MAC_R1, eth_ip6, udp6
    from kernel.oracle import Send
    return [Send(H1, V1H, eth_ip6(MAC_R1, MAC_H1, udp6(IP6_H1, IP6_H2, 40000, p, payload)))
            for p in ports]


def _reject6_sends():
    return udp6_sends(b"six")


def test_reject_ipv6_kernel_half():
    require_oracle()
    k = kernel_result("nf6_reject6", script("ipv6_router") + REJECT6, _reject6_sends(),
                      [NFT_LIST])
    errs = [dpkt.ethernet.Ethernet(f).data for f in got(k, H1, V1H)]
    errs = [ip.data for ip in errs if isinstance(ip, dpkt.ip6.IP6) and ip.nxt == 58
            and ip.data.type == 1]
    assert [(e.type, e.code) for e in errs] == [(1, 4), (1, 1)]


def test_reject_ipv6_match_kernel():
    require_oracle()
    assert_same(*both("nf6_reject6", REJECT6, _reject6_sends(), base="ipv6_router"))


# --------------------------------------------------------------------------- (7) zones
ZONES = nft(
    "add table ip f",
    "add chain ip f raw { type filter hook prerouting priority -300; }",
    "add rule ip f raw iifname v1r ct zone set 5",
    "add chain ip f cf { type filter hook forward priority 0; policy accept; }",
    "add rule ip f cf ct state new counter",
    "add rule ip f cf ct state established counter",
)
ZONE_SENDS = [to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"z1", ident=0x1601)),
              to_h1(udp4(IP_H2, IP_H1, 7000, 40000, b"z2", ident=0x1602)),
              to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"z3", ident=0x1603))]


def test_zones_kernel_half():
    """The reply comes in on v2r in zone 0, so it does not find h1's zone-5 entry: two
    unreplied entries; a UDP packet is ``new`` until its entry has seen a reply, so all three
    count as new."""
    require_oracle()
    k = kernel_result("nf6_zones", script("ipv4_router") + ZONES, ZONE_SENDS,
                      [NFT_LIST, CT_QUERY])
    ct = k.queries[CT_QUERY]
    assert len(ct.splitlines()) == 2 and "zone=5" in ct, ct
    assert "ct state new counter packets 3 " in k.queries[NFT_LIST]


def test_zones_match_kernel():
    require_oracle()
    assert_same(*both("nf6_zones", ZONES, ZONE_SENDS, (NFT_LIST, CT_QUERY)))


ZONES_BOTH = nft(
    "add table ip f",
    "add chain ip f raw { type filter hook prerouting priority -300; }",
    "add rule ip f raw ct zone set 7",
    "add chain ip f cf { type filter hook forward priority 0; policy accept; }",
    "add rule ip f cf ct zone 7 ct state new counter",
    "add rule ip f cf ct zone 7 ct state established counter",
    "add rule ip f cf ct zone 0 counter",
)


def test_zones_both_ways_kernel_half():
    """Both directions in zone 7: the reply finds the entry, one entry, established."""
    require_oracle()
    k = kernel_result("nf6_zones_both", script("ipv4_router") + ZONES_BOTH, ZONE_SENDS,
                      [NFT_LIST, CT_QUERY])
    ct = k.queries[CT_QUERY]
    assert len(ct.splitlines()) == 1 and "zone=7" in ct, ct
    text = k.queries[NFT_LIST]
    assert "ct zone 7 ct state new counter packets 1 " in text
    assert "ct zone 7 ct state established counter packets 2 " in text
    assert "ct zone 0 counter packets 0 " in text


def test_zones_both_ways_match_kernel():
    require_oracle()
    assert_same(*both("nf6_zones_both", ZONES_BOTH, ZONE_SENDS, (NFT_LIST, CT_QUERY)))


# --------------------------------------------- (8) named counters / quotas read back
NAMED = nft(
    "add table inet f",
    "add counter inet f c_udp",
    "add counter inet f c_icmp",
    "add quota inet f q_udp { over 64 bytes; }",
    "add chain inet f cf { type filter hook forward priority 0; policy accept; }",
    "add rule inet f cf meta l4proto udp counter name c_udp",
    "add rule inet f cf meta l4proto icmp counter name \"c_icmp\"",
    "add rule inet f cf udp dport 7000 quota name q_udp drop",
    "add rule inet f cf counter",
)
NAMED_SENDS = [to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"n" * 10, ident=0x1700 + i))
               for i in range(4)] + [
    to_h2(icmp4_echo(IP_H1, IP_H2, 0x55, 1, b"e", ident=0x1710)),
    to_h1(udp4(IP_H2, IP_H1, 9000, 40000, b"x", ident=0x1711))]


def test_named_counters_kernel_half():
    require_oracle()
    k = kernel_result("nf6_named", script("ipv4_router") + NAMED, NAMED_SENDS, [NFT_LIST])
    text = k.queries[NFT_LIST]
    assert "counter c_udp {\n\t\tpackets 5 bytes 181\n" in text, text
    assert "counter c_icmp {\n\t\tpackets 1 bytes 29\n" in text, text
    assert "over 64 bytes used 64 bytes" in text, text
    assert udp_dports(got(k, H2, V2H)) == [7000]  # 38 bytes under quota, 76 over


def test_named_counters_match_kernel():
    require_oracle()
    assert_same(*both("nf6_named", NAMED, NAMED_SENDS))


# ----------------------------------------------------------- inet reject with icmpx
REJECTX = nft(
    "add table inet f",
    "add chain inet f cf { type filter hook forward priority 0; policy accept; }",
    "add rule inet f cf udp dport 7000 reject with icmpx type admin-prohibited",
    "add rule inet f cf udp dport 7001 reject with icmpx type port-unreachable",
)
REJECTX_SENDS = [to_h2(udp4(IP_H1, IP_H2, 40000, p, b"x", ident=0x1800 + p - 7000))
                 for p in (7000, 7001)]


def test_reject_icmpx_kernel_half():
    require_oracle()
    k = kernel_result("nf6_rejectx", script("ipv4_router") + REJECTX, REJECTX_SENDS, [NFT_LIST])
    back = [dpkt.ethernet.Ethernet(f).data.data for f in got(k, H1, V1H)]
    assert [(m.type, m.code) for m in back] == [(3, 13), (3, 3)]


def test_reject_icmpx_match_kernel():
    require_oracle()
    assert_same(*both("nf6_rejectx", REJECTX, REJECTX_SENDS))


REJECT6_TCP = nft(
    "add table ip6 f",
    "add chain ip6 f cf { type filter hook forward priority 0; policy accept; }",
    "add rule ip6 f cf tcp dport 80 counter reject with tcp reset",
)


def _tcp6(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"",
          bad: bool = False) -> bytes:
    """h1 → h2 TCP over IPv6 (dpkt fills the checksum); ``bad`` corrupts it."""
    from kernel.cases import IP6_H1, IP6_H2, ipv6
    t = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=64240,
                     data=payload)
    raw = bytearray(ipv6(IP6_H1, IP6_H2, 6, t))
    if bad:
        raw[40 + 16] ^= 0xFF
    return bytes(raw)


def _reset6_sends():
    from kernel.cases import MAC_H1, MAC_R1, eth_ip6
    from kernel.oracle import Send
    return [Send(H1, V1H, eth_ip6(MAC_R1, MAC_H1, f)) for f in (
        _tcp6(40000, 80, 1000, 0, 0x02),
        _tcp6(40001, 80, 2000, 0, 0x02, bad=True),
        _tcp6(40002, 80, 3000, 777, 0x18, b"data"))]


def test_reject_tcp_reset_ipv6_kernel_half():
    require_oracle()
    k = kernel_result("nf6_reset6", script("ipv6_router") + REJECT6_TCP, _reset6_sends(),
                      [NFT_LIST])
    rst = [dpkt.ethernet.Ethernet(f).data for f in got(k, H1, V1H)]
    rst = [ip.data for ip in rst if isinstance(ip, dpkt.ip6.IP6) and ip.nxt == 6]
    assert [(t.dport, t.flags, t.seq, t.ack) for t in rst] == \
        [(40000, 0x14, 0, 1001), (40002, 0x04, 777, 0)]
    assert "counter packets 3 " in k.queries[NFT_LIST]


def test_reject_tcp_reset_ipv6_match_kernel():
    require_oracle()
    assert_same(*both("nf6_reset6", REJECT6_TCP, _reset6_sends(), base="ipv6_router"))


# ------------------------------------- named concatenated verdict map, elements added later
NAMED_VMAP = nft(
    "add table ip f",
    "add chain ip f cf { type filter hook forward priority 0; policy drop; }",
    "add chain ip f ok",
    "add rule ip f ok counter accept",
    "add map ip f vm { type ipv4_addr . inet_service : verdict; }",
    "add element ip f vm { 10.0.1.1 . 7000 : jump ok, 10.0.1.1 . 7001 : drop }",
    "add rule ip f cf ip saddr . udp dport vmap @vm",
    "add element ip f vm { 10.0.1.1 . 7002 : goto ok }",
    "add rule ip f cf udp dport 7003 counter accept",
)
NAMED_VMAP_SENDS = [to_h2(udp4(IP_H1, IP_H2, 40000, p, b"m", ident=0x1900 + p - 7000))
                    for p in (7000, 7001, 7002, 7003, 7004)]


def test_named_vmap_kernel_half():
    require_oracle()
    k = kernel_result("nf6_named_vmap", script("ipv4_router") + NAMED_VMAP, NAMED_VMAP_SENDS,
                      [NFT_LIST])
    assert udp_dports(got(k, H2, V2H)) == [7000, 7002, 7003]
    assert "chain ok {\n\t\tcounter packets 2 bytes 58 accept" in k.queries[NFT_LIST]


def test_named_vmap_match_kernel():
    require_oracle()
    assert_same(*both("nf6_named_vmap", NAMED_VMAP, NAMED_VMAP_SENDS))


# ------------------------------------------------------------ byte-based limit, burst
LIMIT_BYTES = nft(
    "add table ip f",
    "add chain ip f cf { type filter hook forward priority 0; policy accept; }",
    "add rule ip f cf udp dport 7000 limit rate over 10 bytes/minute burst 100 bytes "
    "counter drop",
)
LIMIT_BYTES_SENDS = [to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"b" * 12, ident=0x1a00 + i))
                     for i in range(5)]


def test_limit_bytes_kernel_half():
    """40-byte packets against a 100-byte burst: two fit, the rest are over the limit."""
    require_oracle()
    k = kernel_result("nf6_limit_bytes", script("ipv4_router") + LIMIT_BYTES,
                      LIMIT_BYTES_SENDS, [NFT_LIST])
    assert len(got(k, H2, V2H)) == 2, k.queries[NFT_LIST]


def test_limit_bytes_match_kernel():
    require_oracle()
    assert_same(*both("nf6_limit_bytes", LIMIT_BYTES, LIMIT_BYTES_SENDS))


# ---------------------------------------- the reset builder (no kernel needed): invariants
@settings(max_examples=60, deadline=None)
@given(sport=st.integers(0, 65535), dport=st.integers(0, 65535), seq=st.integers(0, 2**32 - 1),
       ack=st.integers(0, 2**32 - 1), flags=st.integers(0, 0xFF).filter(lambda f: not f & 4),
       data=st.integers(0, 1400), v6=st.booleans())
def test_reset_segment_properties(sport, dport, seq, ack, flags, data, v6):
    """Ports swapped, RST always set, ACK set exactly when the segment had none, the
    sequence arithmetic of nf_reject_ip*_tcphdr_put, and a checksum that verifies."""
    from netstack.netfilter.nft.reject import _tcp_reset
    from netstack.packet.checksum import csum_ipv6_magic, csum_partial, csum_tcpudp_magic
    src, dst = (bytes(range(16)), bytes(range(16, 32))) if v6 else (b"\n\0\0\1", b"\n\0\0\2")
    rst = _tcp_reset((sport, dport, seq, ack, 5, flags, 20 + data), src, dst, v6)
    t = dpkt.tcp.TCP(rst)
    assert (t.sport, t.dport, len(rst), t.off, t.win) == (dport, sport, 20, 5, 0)
    if flags & 0x10:
        assert (t.flags, t.seq, t.ack) == (0x04, ack, 0)
    else:
        want = (seq + bool(flags & 2) + bool(flags & 1) + data) & 0xFFFFFFFF
        assert (t.flags, t.seq, t.ack) == (0x14, 0, want)
    magic = csum_ipv6_magic if v6 else csum_tcpudp_magic
    assert magic(src, dst, 20, 6, csum_partial(rst)) == 0
