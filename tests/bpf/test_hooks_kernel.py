"""Kernel differential for the eBPF datapath hooks: the same objects (hook_progs/hooks.o,
progs/xdp_count.o) attached with the real ``ip``/``tc`` on Linux and with netstack's, the
same frames injected through the harness of tests/kernel, the frames on the wire compared
byte for byte.

Topology (router ``r`` between harness-played hosts, IPv6 off everywhere)::

  h1:v1h 02:00:00:00:01:01 --- v1r (index 11) r v2r (index 20) --- v2h 02:00:00:00:02:01 :h2

ifindex 20 is where hooks.o's programs redirect.  These need the call sites of
/tmp/bpf_hooks.patch in netstack/core/dev.py; until they are applied
(``netstack.core.hooks.DATAPATH_WIRED``) every test skips, saying so."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from netstack.core import hooks

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from kernel.cases import (H1, H2, IP_H1, IP_H2, MAC_H1, MAC_R1, V1H, V2H, arp,  # noqa: E402
                          eth, eth_arp, eth_ip, icmp4_echo, ipv6, udp4)
from kernel.compare import results_diff, strip_noise  # noqa: E402
from kernel.netstack_side import run_netstack  # noqa: E402
from kernel.oracle import Send, run_kernel  # noqa: E402

HOOKS_O = str(Path(__file__).parent / "hook_progs" / "hooks.o")
XDP_COUNT_O = str(Path(__file__).parent / "progs" / "xdp_count.o")
ROUTER = frozenset({"10.0.1.254", "10.0.2.254"})
CAPTURES = ((H1, V1H), (H2, V2H))

BASE = """\
ip netns add h1
ip netns add h2
ip netns add r
ip netns exec h1 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h1 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec r sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec r sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec r sysctl -w net.ipv4.ip_forward=1
ip netns exec r sysctl -w net.ipv4.conf.all.rp_filter=0
ip netns exec r sysctl -w net.ipv4.conf.default.rp_filter=0
ip -n r link add v1r index 11 address 02:00:00:00:01:fe type veth peer name v1h index 21 address 02:00:00:00:01:01 netns h1
ip -n r link add v2r index 20 address 02:00:00:00:02:fe type veth peer name v2h index 22 address 02:00:00:00:02:01 netns h2
ip -n r addr add 10.0.1.254/24 dev v1r
ip -n r addr add 10.0.2.254/24 dev v2r
ip -n r neigh add 10.0.1.1 lladdr 02:00:00:00:01:01 dev v1r nud permanent
ip -n r neigh add 10.0.2.1 lladdr 02:00:00:00:02:01 dev v2r nud permanent
ip -n h1 link set v1h up
ip -n h2 link set v2h up
ip -n r link set v1r up
ip -n r link set v2r up
"""


def _unavailable() -> str | None:
    if not hooks.DATAPATH_WIRED:
        return "eBPF hooks not wired into the datapath (netstack.core.hooks.DATAPATH_WIRED)"
    if os.geteuid() != 0:
        return "kernel oracle needs root"
    for tool in ("ip", "tc", "bash"):
        if shutil.which(tool) is None:
            return f"kernel oracle needs `{tool}`"
    return None


def differential(attach: str, sends: list[Send]) -> dict:  # type: ignore[type-arg]
    """Run BASE + ``attach`` on both sides; fail on any frame difference; kernel frames."""
    why = _unavailable()
    if why:
        print(f"\nSKIP: {why}", file=sys.stderr)
        pytest.skip(why)
    script = BASE + attach
    k = strip_noise(run_kernel(script, sends, list(CAPTURES), [], 0.15))
    n = run_netstack(script, sends, list(CAPTURES), [], 0.15)
    diff = results_diff(k, n, ROUTER)
    assert diff is None, diff
    return k.frames


UDP_12 = udp4(IP_H1, IP_H2, 40000, 7000, b"through r", ident=0x1111)
UDP_9 = udp4(IP_H1, IP_H2, 40000, 9, b"discard me", ident=0x2222)
PING = icmp4_echo(IP_H1, IP_H2, 7, 1, b"ping", ident=0x3333)
V6 = ipv6("2001:db8:1::1", "2001:db8:2::1", 17, b"\x00\x01\x00\x02\x00\x0c\x00\x00v6v6")
WHO_HAS = eth_arp("ff:ff:ff:ff:ff:ff", MAC_H1, arp(1, MAC_H1, IP_H1, "00:00:00:00:00:00",
                                                   "10.0.1.254"))


def test_xdp_count_pass_and_drop_matches_kernel() -> None:
    ttl1 = udp4(IP_H1, IP_H2, 40000, 7000, b"ttl one", ident=0x4444, ttl=1)
    frames = differential(
        f"ip -n r link set dev v1r xdpgeneric obj {XDP_COUNT_O} sec xdp\n",
        [Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, UDP_12)), Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, ttl1))])
    assert len(frames[(H2, V2H)]) == 1 and frames[(H1, V1H)] == []  # no time exceeded: XDP drop


def test_xdp_tx_matches_kernel() -> None:
    f = eth_ip(MAC_R1, MAC_H1, UDP_12)
    frames = differential(f"ip -n r link set dev v1r xdpgeneric obj {HOOKS_O} sec xdp\n",
                          [Send(H1, V1H, f)])
    assert frames[(H1, V1H)] == [f[6:12] + f[0:6] + f[12:]]


def test_xdp_redirect_drop_pass_matches_kernel() -> None:
    v4 = eth_ip(MAC_R1, MAC_H1, UDP_12)
    frames = differential(
        f"ip -n r link set dev v1r xdpgeneric obj {HOOKS_O} sec xdp_redirect\n",
        [Send(H1, V1H, v4), Send(H1, V1H, eth(MAC_R1, MAC_H1, 0x86DD, V6)),
         Send(H1, V1H, WHO_HAS)])
    assert frames[(H2, V2H)] == [v4]       # redirected unchanged out of ifindex 20
    assert len(frames[(H1, V1H)]) == 1     # the ARP reply: ARP passed to the stack


def test_xdp_adjust_head_then_forward_matches_kernel() -> None:
    inner = eth_ip(MAC_R1, MAC_H1, UDP_12)
    tagged = inner[:12] + b"\x88\xb5\xab\xcd" + inner[12:]
    frames = differential(f"ip -n r link set dev v1r xdpgeneric obj {HOOKS_O} sec xdp_head\n",
                          [Send(H1, V1H, tagged)])
    assert len(frames[(H2, V2H)]) == 1     # popped, re-parsed as IPv4, forwarded


def test_tc_ingress_matches_kernel() -> None:
    frames = differential(
        "ip netns exec r tc qdisc add dev v1r clsact\n"
        f"ip netns exec r tc filter add dev v1r ingress bpf da obj {HOOKS_O} sec tc\n",
        [Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, UDP_9)),
         Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, UDP_12)),
         Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, PING))])
    assert frames[(H2, V2H)][-1] == eth_ip(MAC_R1, MAC_H1, PING)  # redirected as received
    assert len(frames[(H2, V2H)]) == 2


def test_tc_egress_matches_kernel() -> None:
    frames = differential(
        "ip netns exec r tc qdisc add dev v2r clsact\n"
        f"ip netns exec r tc filter add dev v2r egress bpf da obj {HOOKS_O} sec tc\n",
        [Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, UDP_9)),
         Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, UDP_12))])
    assert len(frames[(H2, V2H)]) == 1



# ------------------------------------------------------------ VLAN helpers on the stack
#: tc programs calling bpf_skb_vlan_pop / bpf_skb_vlan_push (uapi helper ids 19 / 18), built
#: with clang at test time (no headers needed) so ``tc`` and netstack load the same object.
VLAN_TC_C = r"""
#define SEC(n) __attribute__((section(n), used))
struct __sk_buff;
static long (*bpf_skb_vlan_push)(struct __sk_buff *skb, unsigned short proto,
                                 unsigned short tci) = (void *)18;
static long (*bpf_skb_vlan_pop)(struct __sk_buff *skb) = (void *)19;
SEC("tc_pop") int pop(struct __sk_buff *skb) { bpf_skb_vlan_pop(skb); return 0; }
SEC("tc_pop2") int pop2(struct __sk_buff *skb)
{ bpf_skb_vlan_pop(skb); bpf_skb_vlan_pop(skb); return 0; }
SEC("tc_push") int push(struct __sk_buff *skb)
{ bpf_skb_vlan_push(skb, __builtin_bswap16(0x8100), 100); return 0; }
SEC("tc_push2") int push2(struct __sk_buff *skb)
{
	bpf_skb_vlan_push(skb, __builtin_bswap16(0x8100), 5);
	bpf_skb_vlan_push(skb, __builtin_bswap16(0x88a8), 0x2006);
	return 0;
}
SEC("tc_prio") int prio(struct __sk_buff *skb)
{ bpf_skb_vlan_push(skb, __builtin_bswap16(0x8100), 0x6000); return 0; }
SEC("tc_prio2") int prio2(struct __sk_buff *skb)
{
	bpf_skb_vlan_push(skb, __builtin_bswap16(0x8100), 0x2000);
	bpf_skb_vlan_push(skb, __builtin_bswap16(0x8100), 0x6000);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def vlan_obj(tmp_path_factory: pytest.TempPathFactory) -> str:
    clang = shutil.which("clang")
    if clang is None:
        print("\nSKIP: clang not found (needed to build the VLAN tc object)", file=sys.stderr)
        pytest.skip("clang not found")
    d = tmp_path_factory.mktemp("vlan_tc")
    (d / "vlan_tc.c").write_text(VLAN_TC_C)
    import subprocess
    subprocess.run([clang, "-O2", "-target", "bpf", "-c", str(d / "vlan_tc.c"), "-o",
                    str(d / "vlan_tc.o")], check=True, capture_output=True, timeout=60)
    os.chmod(d, 0o755)
    return str(d / "vlan_tc.o")


def _tag(frame: bytes, *tags: tuple[int, int]) -> bytes:
    return frame[:12] + b"".join(t.to_bytes(2, "big") + c.to_bytes(2, "big") for t, c in tags) \
        + frame[12:]


def test_tc_ingress_vlan_pop_matches_kernel(vlan_obj: str) -> None:
    """A tagged frame whose tag an ingress program pops is forwarded by IPv4 on the kernel
    and on netstack alike (byte for byte out of v2r); an untagged one passes unchanged."""
    fwd = eth_ip(MAC_R1, MAC_H1, UDP_12)
    ping = eth_ip(MAC_R1, MAC_H1, PING)
    frames = differential(
        "ip netns exec r tc qdisc add dev v1r clsact\n"
        f"ip netns exec r tc filter add dev v1r ingress bpf da obj {vlan_obj} sec tc_pop\n",
        [Send(H1, V1H, _tag(fwd, (0x8100, 100))), Send(H1, V1H, ping)])
    assert len(frames[(H2, V2H)]) == 2     # both forwarded: the tag no longer in the way


def test_tc_ingress_qinq_double_pop_matches_kernel(vlan_obj: str) -> None:
    """802.1ad over 802.1Q popped twice at ingress: the frame shrinks by the in-packet tag
    and IPv4 forwards it."""
    fwd = eth_ip(MAC_R1, MAC_H1, UDP_12)
    frames = differential(
        "ip netns exec r tc qdisc add dev v1r clsact\n"
        f"ip netns exec r tc filter add dev v1r ingress bpf da obj {vlan_obj} sec tc_pop2\n",
        [Send(H1, V1H, _tag(fwd, (0x88A8, 7), (0x8100, 100)))])
    assert len(frames[(H2, V2H)]) == 1


def test_tc_ingress_without_pop_drops_tagged_matches_kernel() -> None:
    """The control: no program, the unknown VID makes the packet PACKET_OTHERHOST."""
    fwd = eth_ip(MAC_R1, MAC_H1, UDP_12)
    frames = differential("", [Send(H1, V1H, _tag(fwd, (0x8100, 100)))])
    assert frames[(H2, V2H)] == []


@pytest.mark.parametrize("sec,tags", [
    ("tc_push", [(0x8100, 100)]),
    # the first push goes into the packet, the second is the out-of-band (outer) tag
    ("tc_push2", [(0x88A8, 0x2006), (0x8100, 5)]),
])
def test_tc_egress_vlan_push_matches_kernel(vlan_obj: str, sec: str,
                                            tags: list[tuple[int, int]]) -> None:
    """An egress program pushing tags on a forwarded frame: the frame that reaches h2
    carries them, kernel and netstack alike.  The receiving veth end moves the outer tag
    out of band; the oracle's captures put it back from ``PACKET_AUXDATA``, as libpcap
    does (tests/kernel/oracle.py)."""
    fwd = eth_ip(MAC_R1, MAC_H1, UDP_12)
    frames = differential(
        "ip netns exec r tc qdisc add dev v2r clsact\n"
        f"ip netns exec r tc filter add dev v2r egress bpf da obj {vlan_obj} sec {sec}\n",
        [Send(H1, V1H, fwd)])
    (got,) = frames[(H2, V2H)]
    assert got[12:12 + 4 * len(tags)] == b"".join(t.to_bytes(2, "big") + c.to_bytes(2, "big")
                                                   for t, c in tags)


# ---------------------------------- where bpf_skb_vlan_push leaves the network header
# skb_vlan_push over an out-of-band tag moves the network header back with the MAC header
# (6.18: ``skb->network_header -= VLAN_HLEN``; older kernels grew ``mac_len`` instead), so
# at tc ingress the ``__skb_pull(skb, skb->mac_len)`` after the program lands on the TCI of
# the tag written into the packet.  It shows on the stack when the out-of-band tag left is
# a priority tag (VID 0) over an 802.1Q ``protocol``: ``__netif_receive_skb_core`` clears it
# and ``skb_vlan_untag`` reads the next tag at ``skb->data`` -- on the TCI the packet is
# untagged again and forwarded; were data on the IPv4 header, the version/IHL byte would be
# read as a TCI (VID 0x500) and the packet dropped as PACKET_OTHERHOST.

@pytest.mark.parametrize("sec,sent_tags,forwarded", [
    ("tc_prio", [], True),                    # one tag, out of band only: bytes unchanged
    ("tc_push", [], False),                   # VID 100, no VLAN device: PACKET_OTHERHOST
    ("tc_prio2", [], True),                   # second push writes the first into the packet
    ("tc_prio", [(0x8100, 0x2000)], True),    # over the received (now out-of-band) tag
    ("tc_prio", [(0x8100, 0x0064)], False),   # ... re-untagged, VID 100: OTHERHOST
    ("tc_push", [(0x8100, 0x0000)], False),   # over it, but VID 100 left out of band
])
def test_tc_ingress_vlan_push_then_delivery_matches_kernel(
        vlan_obj: str, sec: str, sent_tags: list[tuple[int, int]], forwarded: bool) -> None:
    """Ingress push (one tag / over an existing out-of-band tag), then delivery: what
    reaches IPv4 is forwarded, and the frame the capture on h2 sees is the same byte for
    byte on the kernel and on netstack (the untagged IPv4 frame, re-routed)."""
    fwd = eth_ip(MAC_R1, MAC_H1, UDP_12)
    frames = differential(
        "ip netns exec r tc qdisc add dev v1r clsact\n"
        f"ip netns exec r tc filter add dev v1r ingress bpf da obj {vlan_obj} sec {sec}\n",
        [Send(H1, V1H, _tag(fwd, *sent_tags))])
    got = frames[(H2, V2H)]
    assert len(got) == (1 if forwarded else 0)
    if forwarded:
        (g,) = got
        assert len(g) == len(fwd) and g[12:14] == b"\x08\x00"  # untagged IPv4 on the next hop
        assert g[14 + 8] == fwd[14 + 8] - 1 and g[14 + 12:] == fwd[14 + 12:]  # TTL, addrs, UDP


def test_tc_egress_vlan_push_over_existing_tag_matches_kernel(
        vlan_obj: str) -> None:
    """Egress push over an existing tag on v2r (``tc_push2``: the second push writes the
    802.1Q tag into the packet and moves the network header back onto its TCI, 802.1ad goes
    out of band), for a forwarded frame that arrived untagged and one that arrived
    priority-tagged (untagged on r's receive): the capture on h2 shows the outer tag
    (reinserted from PACKET_AUXDATA), the in-packet one, then the forwarded IPv4 packet."""
    fwd = eth_ip(MAC_R1, MAC_H1, UDP_12)
    frames = differential(
        "ip netns exec r tc qdisc add dev v2r clsact\n"
        f"ip netns exec r tc filter add dev v2r egress bpf da obj {vlan_obj} sec tc_push2\n",
        [Send(H1, V1H, fwd), Send(H1, V1H, _tag(fwd, (0x8100, 0x2000)))])
    got = frames[(H2, V2H)]
    assert len(got) == 2
    for g in got:
        assert g[12:22] == bytes.fromhex("88a8 2006 8100 0005 0800".replace(" ", ""))
        assert g[22 + 9:22 + 10] == fwd[14 + 9:14 + 10]   # protocol UDP
        assert g[22 + 8] == fwd[14 + 8] - 1              # TTL, forwarded once
