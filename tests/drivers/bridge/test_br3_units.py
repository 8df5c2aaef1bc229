"""Virtual-clock tests of BR3's bridge pieces that the kernel differential cannot reach
here: address lists of devices in states the oracle scripts do not produce, the
br_netfilter state leaving the bridge, IPv6 ip_sabotage_in, and a property test of
``br_fdb_flush`` (the bulk delete's matching rule)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from br1_topo import Bridge  # noqa: E402
from test_br3_brnf_kernel import IFACE, ping  # noqa: E402

from netstack.api import Stack  # noqa: E402
from netstack.drivers.bridge.br_fdb import br_fdb_flush, fdb_create  # noqa: E402
from netstack.drivers.bridge.br_private import (BR_FDB_ADDED_BY_EXT_LEARN,  # noqa: E402
                                                BR_FDB_ADDED_BY_USER, BR_FDB_LOCAL,
                                                BR_FDB_OFFLOADED, BR_FDB_STATIC,
                                                BR_FDB_STICKY)

BR_MAC = "02:00:00:00:0b:00"


def _counter(b: Bridge, ns: str, chain: str) -> int:
    text = b.sh(f"ip netns exec {ns} nft list chain ip f {chain}")
    m = re.search(r"counter packets (\d+)", text)
    assert m, text
    return int(m.group(1))


def test_dflt_dump_follows_device_state() -> None:
    """all-nodes only while never up; nothing from IPv6 with disable_ipv6; no snoopers
    groups on a bridge without snooping."""
    s = Stack()
    s.run_script("ip netns add n\nip -n n link add d0 type veth peer name d1\n"
                 "ip -n n link add br9 type bridge mcast_snooping 0\n"
                 "ip -n n link set br9 up\n"
                 "ip netns exec n sysctl -w net.ipv6.conf.d1.disable_ipv6=1\n")
    s.advance(0.1)
    out = s.command("bridge -n n fdb show").stdout
    assert "33:33:00:00:00:01 dev d0 self permanent\n" in out
    assert "dev d1 self" not in out
    br9 = [line for line in out.splitlines() if "dev br9 self" in line]
    # a bridge that never had a port (nor a user address) has carrier: link-local
    # address, solicited-node group
    assert br9[:2] == ["33:33:00:00:00:01 dev br9 self permanent",
                       "01:00:5e:00:00:01 dev br9 self permanent"]
    assert len(br9) == 3 and br9[2].startswith("33:33:ff:")


def test_nf_bridge_state_does_not_leave_the_bridge() -> None:
    """A bridged packet reaching another namespace's stack runs that stack's PRE_ROUTING
    chain (skb_scrub_packet drops nf_bridge): ip_sabotage_in there must not fire."""
    b = Bridge(IFACE + "ip -n h2 addr add 10.9.0.2/24 dev e2\n"
               "ip netns exec h2 nft add table ip f\n"
               "ip netns exec h2 nft add chain ip f pre "
               "'{ type filter hook prerouting priority 0; }'\n"
               "ip netns exec h2 nft add rule ip f pre counter\n"
               "ip netns exec b nft add table ip f\n"
               "ip netns exec b nft add chain ip f pre "
               "'{ type filter hook prerouting priority 0; }'\n"
               "ip netns exec b nft add rule ip f pre counter\n")
    b.send(1, ping("02:00:00:00:02:01", "10.9.0.2"))
    assert _counter(b, "b", "pre") == 1
    assert _counter(b, "h2", "pre") == 1


def test_sabotage_counts_once_for_local_ipv4() -> None:
    """The ping to the bridge's address passes the ``ip`` prerouting chain once (in the
    bridge) and is answered."""
    b = Bridge(IFACE + "ip netns exec b nft add table ip f\n"
               "ip netns exec b nft add chain ip f pre "
               "'{ type filter hook prerouting priority 0; }'\n"
               "ip netns exec b nft add rule ip f pre counter\n"
               "ip -n b neigh add 10.9.0.1 lladdr 02:00:00:00:01:01 dev br0\n")
    b.send(1, ping(BR_MAC, "10.9.0.254"))
    assert _counter(b, "b", "pre") == 1
    assert len(b.got(1)) == 1


def test_sabotage_ipv6() -> None:
    """IPv6: a bridged echo request to the bridge's address runs the ``ip6`` prerouting
    chain once and still reaches ip6_input (an echo reply comes back)."""
    import struct
    b = Bridge("ip netns exec b sysctl -w net.ipv6.conf.br0.disable_ipv6=0\n"
               "ip -n b addr add 2001:db8::fe/64 dev br0 nodad\n"
               "ip -n b neigh add 2001:db8::1 lladdr 02:00:00:00:01:01 dev br0\n"
               "ip netns exec b nft add table ip6 f\n"
               "ip netns exec b nft add chain ip6 f pre "
               "'{ type filter hook prerouting priority 0; }'\n"
               "ip netns exec b nft add rule ip6 f pre icmpv6 type echo-request counter\n")
    b.s.advance(1.0)
    for i in (1, 2, 3):
        b.caps[i].clear()
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes.fromhex("20010db80000000000000000000000fe")
    body = bytearray(b"\x80\x00\x00\x00\x00\x01\x00\x01" + b"ping6")
    pseudo = src + dst + struct.pack("!I3xB", len(body), 58)
    data = pseudo + bytes(body) + (b"\0" if len(body) % 2 else b"")
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    body[2:4] = (~s & 0xFFFF).to_bytes(2, "big")
    ip6 = struct.pack("!IHBB", 6 << 28, len(body), 58, 64) + src + dst
    frame = bytes.fromhex("020000000b00020000000101") + b"\x86\xdd" + ip6 + bytes(body)
    b.send(1, frame)
    text = b.sh("ip netns exec b nft list chain ip6 f pre")
    assert "counter packets 1 " in text, text
    replies = [f for f in b.got(1) if f[12:14] == b"\x86\xdd" and f[54] == 129]
    assert len(replies) == 1


_FLAG_BITS = (BR_FDB_LOCAL, BR_FDB_STATIC, BR_FDB_STICKY, BR_FDB_ADDED_BY_USER,
              BR_FDB_ADDED_BY_EXT_LEARN, BR_FDB_OFFLOADED)
_flags = st.lists(st.sampled_from(_FLAG_BITS), max_size=4).map(lambda xs: sum(set(xs)))


@settings(max_examples=60, deadline=None)
@given(entries=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([0, 1, 5]), _flags),
                        max_size=12),
       flags=_flags, mask=_flags, port=st.integers(0, 3), vid=st.sampled_from([0, 1, 5]))
def test_fdb_flush_matches_exactly(entries: list[tuple[int, int, int]], flags: int,
                                   mask: int, port: int, vid: int) -> None:
    """``br_fdb_flush``: an entry goes iff VID, port (the bridge's ifindex for entries
    without a port) and ``flags & mask == desc.flags`` all match; the others stay."""
    b = _FLUSH_BR
    br = b.br
    br.fdb.clear()
    ports = {p.port_no: p for p in br.port_list}
    made = []
    for i, (pi, v, fl) in enumerate(entries):
        f = fdb_create(br, ports.get(pi), bytes([2, 0, 0, 0, 9, i]), v, fl)
        made.append(f)
    ifidx = {0: br.dev.ifindex, **{n: p.dev.ifindex for n, p in ports.items()}}
    port_ifindex = ifidx.get(port, 0) if port else 0
    flags &= mask
    br_fdb_flush(br, flags, mask, port_ifindex, vid)
    for f in made:
        own = f.dst.dev.ifindex if f.dst is not None else br.dev.ifindex
        match = (not vid or vid == f.vid) and (not port_ifindex or port_ifindex == own) \
            and (not mask or f.flags & mask == flags)
        assert ((f.addr, f.vid) in br.fdb) == (not match)


class _FlushTopo:
    def __init__(self) -> None:
        self.b = Bridge()
        self.br = self.b.s.world.netns("b").get("br0").br


_FLUSH_BR = _FlushTopo()


_WORDS = ["dev", "br", "brport", "vlan", "vni", "self", "master", "dynamic", "static",
          "nostatic", "permanent", "nopermanent", "added_by_user", "noextern_learn",
          "sticky", "offloaded", "to", "help", "p1", "p2", "br0", "e1", "nosuch", "0",
          "4095", "-3", "x", "70000", "02:00:00:00:01:01", "02:00:00:00:0b:01",
          "zz:1:2:3:4:5", "1:2:3:4:5", "0x2:0:0:0:0:1", ""]
_FUZZ = Bridge()


@settings(max_examples=150, deadline=None)
@given(verb=st.sampled_from(["get", "flush"]),
       words=st.lists(st.sampled_from(_WORDS), max_size=7), json=st.booleans())
def test_fdb_get_flush_parsers_never_crash(verb: str, words: list[str], json: bool) -> None:
    """Any argument soup gives an exit status and a message, never a Python error."""
    line = f"bridge -n b {'-j ' if json else ''}fdb {verb} " + " ".join(w for w in words if w)
    r = _FUZZ.run(line)
    assert r.rc in (0, 1, 254, 255), (line, r.rc, r.stderr)
    if r.rc:
        assert r.stderr, line
