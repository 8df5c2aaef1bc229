"""Property tests: datatype codecs, set back ends against a brute-force model, and the
front end never failing with anything but nft's error (or a clear NotSupported)."""
from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core.world import World
from netstack.errors import NotSupported
from netstack.netfilter.nft import types as T
from netstack.netfilter.nft import vm as V
from netstack.netfilter.nft.cli import run_text
from netstack.netfilter.nft.ruleset import Element, NftSet


@given(st.integers(0, 2**32 - 1))
def test_ipv4_roundtrip(v: int) -> None:
    text = str(ipaddress.IPv4Address(v))
    data = T.parse_value(T.IPV4, text, None)
    assert data == v.to_bytes(4, "big") and T.format_value(T.IPV4, data) == text


@given(st.integers(0, 2**128 - 1))
def test_ipv6_roundtrip(v: int) -> None:
    text = str(ipaddress.IPv6Address(v))
    assert T.format_value(T.IPV6, T.parse_value(T.IPV6, text, None)) == text


@given(st.integers(0, 65535), st.integers(0, 2**32 - 1))
def test_port_and_mark_byte_order(port: int, mark: int) -> None:
    assert T.parse_value(T.INET_SERVICE, str(port), None) == port.to_bytes(2, "big")
    m = T.parse_value(T.MARK, hex(mark), None)
    assert m == mark.to_bytes(4, "little")
    assert T.format_value(T.MARK, m) == f"0x{mark:08x}"


@given(st.binary(min_size=1, max_size=16).map(lambda b: b + bytes(-len(b) % 4)))
def test_byteorder_is_an_involution(data: bytes) -> None:
    regs = V.Regs()
    V._put(regs, 0, data)
    bo = V.Byteorder(0, 0, "hton", len(data), 4)
    bo.eval(regs, None)   # type: ignore[arg-type]
    bo.eval(regs, None)   # type: ignore[arg-type]
    assert V._get(regs, 0, len(data)) == data


@st.composite
def intervals(draw):
    cuts = sorted(draw(st.sets(st.integers(0, 65535), min_size=2, max_size=40)))
    out = []
    for a, b in zip(cuts[::2], cuts[1::2]):
        out.append((a, b))
    return out


@settings(max_examples=60)
@given(intervals(), st.lists(st.integers(0, 65535), max_size=40))
def test_interval_set_lookup_matches_brute_force(ivs, probes) -> None:
    s = NftSet("s", [T.INET_SERVICE], None, {"interval"})
    for a, b in ivs:
        assert s.insert(Element(a.to_bytes(2, "big"), b.to_bytes(2, "big")))
    for p in probes + [a for a, _ in ivs] + [b for _, b in ivs]:
        want = any(a <= p <= b for a, b in ivs)
        assert (s.lookup(p.to_bytes(2, "big"), 0) is not None) == want


@settings(max_examples=60)
@given(st.dictionaries(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), max_size=50),
       st.integers(0, 2**32 - 1))
def test_map_lookup_matches_dict(d, probe) -> None:
    s = NftSet("m", [T.IPV4], T.MARK, set())
    for k, v in d.items():
        s.insert(Element(k.to_bytes(4, "big"), data=v.to_bytes(4, "little")))
    for k in list(d) + [probe]:
        e = s.lookup(k.to_bytes(4, "big"), 0)
        assert (e is not None) == (k in d)
        if e is not None:
            assert e.data == d[k].to_bytes(4, "little")


WORDS = ["add", "table", "chain", "rule", "ip", "ip6", "inet", "t", "c", "tcp", "dport",
         "22", "{", "}", ";", "accept", "drop", "jump", "saddr", "10.0.0.0/8", "@s", "set",
         "map", "vmap", ":", ",", ".", "type", "filter", "hook", "input", "priority", "0",
         "policy", "meta", "mark", "ct", "state", "established", "counter", "limit",
         "rate", "10/second", "\"lo\"", "iifname", "!=", "1-100", "\n", "-", "/", "log"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=25))
def test_front_end_only_fails_the_nft_way(words) -> None:
    net = World().netns("")
    text = "add table ip t\nadd chain ip t c\n" + " ".join(words) + "\n"
    try:
        rc, out, err = run_text(net, text, "f", check=True)
    except NotSupported:
        return
    assert rc in (0, 1)
    if rc:
        assert "Error: " in err and out == ""


_RULESET = """table ip t {
 set s { type ipv4_addr; flags interval; elements = { 10.0.0.0/8 } }
 chain c { type filter hook input priority 0; policy accept;
  tcp dport 22 counter
  tcp flags & (syn|ack) == syn
  ip saddr @s ip ttl < 10 drop
  ip saddr . tcp dport { 1.1.1.1 . 22 } accept
  udp sport 53 meta mark set udp dport map { 53 : 0x1 }
  ip dscp 0x10 ip length 20-100 counter
  ether saddr 00:11:22:33:44:55 drop
  icmp type echo-request limit rate 1/second
  meta l4proto tcp ip ttl set 5
  tcp dport set 8080
  udp length 8 accept
 }
}
"""


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=80), st.sampled_from([0x0800, 0x86DD, 0x0806]))
def test_random_packets_never_raise_in_the_vm(data: bytes, proto: int) -> None:
    """Malformed packets make expressions break (no match), never an exception."""
    from netstack.netfilter import core
    from netstack.netfilter.nft.hooks import nft_do_chain
    from netstack.netfilter.nft.ruleset import nft_state
    from netstack.packet.skb import Packet
    net = World().netns("")
    assert run_text(net, _RULESET, "r")[0] == 0
    pkt = Packet(data)
    pkt.network_header = pkt.data
    pkt.protocol = proto
    chain = nft_state(net).find_table("ip", "t").chains["c"]
    v = nft_do_chain(chain, pkt, core.NfHookState(1, 2, net, net.devices["lo"], None))
    assert v in (V.NF_ACCEPT, V.NF_DROP)
