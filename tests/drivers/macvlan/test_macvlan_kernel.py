"""Macvlan against the kernel (drivers/net/macvlan.c on Linux 6.18): the same script and
frames on both sides, every capture compared byte for byte, and the ``ip -d -j link``
macvlan details (``linkinfo``) compared field for field.

What each case pins (measured on the kernel first, ``*_kernel`` tests):

* modes: unicast demux by destination MAC; a broadcast from the wire reaches every
  bridge/vepa/private macvlan (not the source-mode one); bridge-mode sibling unicast stays
  inside the port (the lower device's taps see it, the wire does not) and a bridge-mode
  broadcast reaches the bridge sibling *and* the wire; VEPA sibling unicast goes out and
  only the hairpinned copy reaches the sibling; a hairpinned broadcast from a VEPA
  sender reaches the bridge and VEPA siblings but not the sender, one from a bridge sender
  only the VEPA ones, one from a private sender only that sender; the source-mode macvlan
  gets a copy of every frame from its allowed source MAC.
* passthru: the one macvlan receives every unicast frame whatever its destination MAC,
  and broadcasts; it inherits the lower device's MAC.
* details: mode/flags/bcqueuelen/usedbcqueuelen/source lists as ``ip -d -j`` prints them,
  promiscuity and allmulti of the lower device.
"""
from __future__ import annotations

import json

import pytest

import mv_scenarios as S
from kernel.cases import Case, eth
from kernel.compare import strip_noise
from kernel.netstack_side import run_netstack
from kernel.oracle import Send

B = "ff:ff:ff:ff:ff:ff"
M = S.MAC
ALL = tuple(("mvs", d) for d in ("va", "m1", "m2", "m3", "m4", "m5", "m6")) + (("mvh", "vh"),)


def frame(dst: str, src: str, tag: str) -> bytes:
    """A local-experimental EtherType frame (0x88b5) whose payload names the step."""
    return eth(dst, src, 0x88B5, tag.encode().ljust(46, b"."))


def tags(frames: list[bytes]) -> list[str]:
    return [f[14:].rstrip(b".").decode() for f in frames]


MODE_SENDS = (
    Send("mvh", "vh", frame(M["m1"], S.MAC_VH, "ext-uni-m1")),
    Send("mvh", "vh", frame(B, S.MAC_VH, "ext-bcast"), 0.05),
    Send("mvs", "m1", frame(M["m2"], M["m1"], "m1-m2"), 0.05),
    Send("mvs", "m1", frame(B, M["m1"], "m1-bcast"), 0.05),
    Send("mvs", "m3", frame(M["m4"], M["m3"], "m3-m4"), 0.05),
    Send("mvh", "vh", frame(M["m4"], M["m3"], "hairpin-m3-m4"), 0.05),
    Send("mvh", "vh", frame(B, M["m3"], "hairpin-bc-m3"), 0.05),
    Send("mvh", "vh", frame(B, M["m5"], "hairpin-bc-m5"), 0.05),
    Send("mvh", "vh", frame(B, M["m1"], "hairpin-bc-m1"), 0.05),
    Send("mvh", "vh", frame(M["m1"], S.MAC_SRCOK, "srcok-m1"), 0.05),
    Send("mvs", "m5", frame(M["m1"], M["m5"], "m5-m1"), 0.05),
    Send("mvs", "m3", frame(B, M["m3"], "m3-bcast"), 0.05),
    Send("mvh", "vh", frame("02:00:00:00:09:09", S.MAC_VH, "ext-unknown"), 0.05),
    Send("mvh", "vh", frame("01:00:5e:00:00:fb", S.MAC_VH, "ext-mcast-unjoined"), 0.05),
    Send("mvh", "vh", frame(B, S.MAC_SRCOK, "srcok-bcast"), 0.05),
    Send("mvh", "vh", frame(M["m5"], M["m3"], "hairpin-m3-m5"), 0.05),
)
DETAILS = "ip -n mvs -d -j link show"
MODES = Case(name="mv_modes", script=S.MODES, sends=MODE_SENDS, captures=ALL,
             queries=(DETAILS,), settle=0.3)

PT_SENDS = (
    Send("mvh", "vh", frame("02:00:00:00:09:09", S.MAC_VH, "ext-any-mac")),
    Send("mvh", "vh", frame(S.MAC_VA, S.MAC_VH, "ext-lower-mac"), 0.05),
    Send("mvh", "vh", frame(B, S.MAC_VH, "ext-bcast"), 0.05),
    Send("mvs", "mp", frame(S.MAC_VH, S.MAC_VA, "mp-out"), 0.05),
)
PASSTHRU = Case(name="mv_passthru", script=S.PASSTHRU, sends=PT_SENDS,
                captures=(("mvs", "va"), ("mvs", "mp"), ("mvh", "vh")),
                queries=(DETAILS,), settle=0.3)

NOBCQ = Case(name="mv_nobcqueue", script=S.NOBCQUEUE,
             sends=(Send("mvh", "vh", frame(B, S.MAC_VH, "ext-bcast")),
                    Send("mvh", "vh", frame(M["m2"], S.MAC_VH, "ext-uni-m2"), 0.05),
                    Send("mvs", "m1", frame(B, M["m1"], "m1-bcast"), 0.05)),
             captures=(("mvs", "va"), ("mvs", "m1"), ("mvs", "m2"), ("mvh", "vh")),
             queries=(DETAILS,), settle=0.3)

PROMISC = Case(name="mv_details", script=S.PROMISC,
               sends=(Send("mvs", "m1", frame(B, M["m1"], "m1-bcast")),),
               captures=(("mvh", "vh"),), queries=(DETAILS,), settle=0.2)


def expect_modes(res) -> None:  # type: ignore[no-untyped-def]
    got = {d: tags(res.frames[("mvs", d)]) for d in ("va", "m1", "m2", "m3", "m4", "m5", "m6")}
    got["vh"] = tags(res.frames[("mvh", "vh")])
    assert got["m1"] == ["ext-uni-m1", "ext-bcast", "hairpin-bc-m3", "srcok-m1",
                         "srcok-bcast"]
    assert got["m2"] == ["ext-bcast", "m1-m2", "m1-bcast", "hairpin-bc-m3", "srcok-bcast"]
    assert got["m3"] == ["ext-bcast", "hairpin-bc-m1", "srcok-bcast"]
    assert got["m4"] == ["ext-bcast", "hairpin-m3-m4", "hairpin-bc-m3", "hairpin-bc-m1",
                         "srcok-bcast"]
    assert got["m5"] == ["ext-bcast", "hairpin-bc-m5", "srcok-bcast", "hairpin-m3-m5"]
    assert got["m6"] == ["srcok-m1", "srcok-bcast"]
    assert got["vh"] == ["m1-bcast", "m3-m4", "m5-m1", "m3-bcast"]
    assert "m1-m2" in got["va"] and "ext-unknown" in got["va"]


def expect_passthru(res) -> None:  # type: ignore[no-untyped-def]
    assert tags(res.frames[("mvs", "mp")]) == ["ext-any-mac", "ext-lower-mac", "ext-bcast"]
    assert tags(res.frames[("mvh", "vh")]) == ["mp-out"]


def _links(text: str) -> dict[str, dict]:
    return {d["ifname"]: d for d in json.loads(text)}


def details(text: str) -> dict[str, tuple]:
    """What the macvlan driver decides in ``ip -d -j link``: the linkinfo of each macvlan,
    the address (passthru inherits), and promiscuity/allmulti of every device."""
    out = {}
    for name, d in _links(text).items():
        out[name] = (json.dumps(d.get("linkinfo"), sort_keys=True), d["address"],
                     d["promiscuity"], d["allmulti"], d["mtu"],
                     tuple(f for f in d["flags"] if f != "M-DOWN"))
    return out


def test_mv_modes_kernel(mv_kernel) -> None:  # type: ignore[no-untyped-def]
    expect_modes(mv_kernel.run(MODES))


def test_mv_modes_netstack_matches(mv_kernel) -> None:  # type: ignore[no-untyped-def]
    expect_modes(mv_kernel.compare_netstack(MODES))


def test_mv_passthru_kernel(mv_kernel) -> None:  # type: ignore[no-untyped-def]
    res = mv_kernel.run(PASSTHRU)
    expect_passthru(res)
    links = _links(res.queries[DETAILS])
    assert links["mp"]["address"] == links["va"]["address"] == S.MAC_VA
    assert links["va"]["promiscuity"] == 1


def test_mv_passthru_netstack_matches(mv_kernel) -> None:  # type: ignore[no-untyped-def]
    expect_passthru(mv_kernel.compare_netstack(PASSTHRU))


def _fragments() -> tuple[bytes, bytes]:
    """A 120-byte UDP datagram to 255.255.255.255 in two IPv4 fragments (dpkt)."""
    import dpkt
    from kernel.cases import ip4
    payload = bytes(range(112))
    u = dpkt.udp.UDP(sport=7, dport=9, ulen=8 + len(payload), data=payload)
    body = bytes(u)
    frags = []
    for off, chunk, mf in ((0, body[:64], 1), (64, body[64:], 0)):
        ip = dpkt.ip.IP(src=ip4("192.0.2.1"), dst=ip4("255.255.255.255"), p=17, ttl=64,
                        id=0x4242, data=chunk)
        ip.offset = off // 8  # dpkt: in 8-byte units
        ip.mf = mf
        frags.append(eth(B, S.MAC_VH, 0x0800, bytes(ip)))
    return frags[0], frags[1]


F1, F2 = _fragments()
FRAG = Case(name="mv_defrag", script=S.MODES,
            sends=(Send("mvh", "vh", F1), Send("mvh", "vh", F2, 0.05)),
            captures=(("mvs", "va"), ("mvs", "m1"), ("mvs", "m3"), ("mvh", "vh")),
            settle=0.3)


def expect_defrag(res) -> None:  # type: ignore[no-untyped-def]
    """ip_check_defrag(IP_DEFRAG_MACVLAN): the lower device's taps see both fragments,
    each macvlan one reassembled datagram behind the first fragment's Ethernet header."""
    import dpkt
    assert res.frames[("mvs", "va")] == [F1, F2]
    for m in ("m1", "m3"):
        (whole,) = res.frames[("mvs", m)]
        e = dpkt.ethernet.Ethernet(whole)
        assert whole[:14] == F1[:14]
        assert e.data.len == 20 + 8 + 112 and e.data.offset == 0 and e.data.mf == 0
        assert e.data.id == 0x4242


def test_mv_defrag_kernel(mv_kernel) -> None:  # type: ignore[no-untyped-def]
    expect_defrag(mv_kernel.run(FRAG))


def test_mv_defrag_netstack_matches(mv_kernel) -> None:  # type: ignore[no-untyped-def]
    expect_defrag(mv_kernel.compare_netstack(FRAG))


def _echo_frame() -> bytes:
    """An echo request from m1's address to m2's, sent out of m1 (as m1's stack would
    after resolving m2)."""
    from kernel.cases import eth_ip, icmp4_echo
    return eth_ip(M["m2"], M["m1"], icmp4_echo("10.7.0.1", "10.7.0.2", 0x5151, 1,
                                               b"through the port", ident=0x51))


def _arp_for_m1() -> bytes:
    from kernel.cases import arp, eth_arp
    return eth_arp(B, S.MAC_VH, arp(1, S.MAC_VH, "10.7.0.9", "00:00:00:00:00:00", "10.7.0.1"))


STACKS = Case(name="mv_stacks", script=S.STACKS,
              sends=(Send("mva", "m1", _echo_frame()),
                     Send("mvh", "vh", _arp_for_m1(), 0.1)),
              captures=(("mva", "m1"), ("mvb", "m2"), ("mvh", "vh")),
              queries=("ip -n mvb -j neigh show",), settle=0.3,
              ipv4_originators=frozenset({"10.7.0.1", "10.7.0.2"}))


def expect_stacks(res) -> None:  # type: ignore[no-untyped-def]
    """m2 answers the echo: it first resolves 10.7.0.1 with a broadcast ARP request that
    m1 gets through the port and the wire gets too; m1's reply and m2's echo reply stay
    in the port.  The harness's ARP request for 10.7.0.1 reaches both (broadcast queue)
    and only m1 answers, onto the wire."""
    import dpkt
    m1 = [dpkt.ethernet.Ethernet(f) for f in res.frames[("mva", "m1")]]
    kinds = [(type(e.data).__name__, getattr(e.data, "op", None)) for e in m1]
    assert kinds == [("ARP", 1), ("IP", None), ("ARP", 1)]
    assert m1[1].data.data.type == 0 and m1[1].data.data.data.data == b"through the port"
    vh = [dpkt.ethernet.Ethernet(f) for f in res.frames[("mvh", "vh")]]
    assert [(type(e.data).__name__, e.data.op) for e in vh] == [("ARP", 1), ("ARP", 2)]
    assert vh[1].data.spa == bytes([10, 7, 0, 1]) and vh[1].src == bytes.fromhex(
        "020000000011")
    m2 = [dpkt.ethernet.Ethernet(f) for f in res.frames[("mvb", "m2")]]
    assert [type(e.data).__name__ for e in m2] == ["IP", "ARP", "ARP"]


def test_mv_stacks_kernel(mv_kernel) -> None:  # type: ignore[no-untyped-def]
    expect_stacks(mv_kernel.run(STACKS))


def test_mv_stacks_netstack_matches(mv_kernel) -> None:  # type: ignore[no-untyped-def]
    expect_stacks(mv_kernel.compare_netstack(STACKS))


def expect_nobcq(res) -> None:  # type: ignore[no-untyped-def]
    """usedbcqueuelen 0: a broadcast from the wire reaches no macvlan (the lower device
    still gets it); a bridge-mode sibling's broadcast is delivered at transmit time,
    which does not use the queue."""
    assert tags(res.frames[("mvs", "va")]) == ["ext-bcast", "ext-uni-m2"]
    assert tags(res.frames[("mvs", "m1")]) == []
    assert tags(res.frames[("mvs", "m2")]) == ["ext-uni-m2"]
    assert tags(res.frames[("mvh", "vh")]) == ["m1-bcast"]


def test_mv_nobcqueue_kernel(mv_kernel) -> None:  # type: ignore[no-untyped-def]
    expect_nobcq(mv_kernel.run(NOBCQ))


def test_mv_nobcqueue_netstack_matches(mv_kernel) -> None:  # type: ignore[no-untyped-def]
    expect_nobcq(mv_kernel.compare_netstack(NOBCQ))


@pytest.mark.parametrize("case", [MODES, PASSTHRU, PROMISC, NOBCQ], ids=lambda c: c.name)
def test_mv_details_match(mv_kernel, case: Case) -> None:  # type: ignore[no-untyped-def]
    """``ip -d -j link``: linkinfo, addresses, MTU, flags, promiscuity and allmulti (the
    references macvlan holds on its lower device) equal the kernel's."""
    k = details(mv_kernel.run(case).queries[DETAILS])
    got = strip_noise(run_netstack(case.script, [], [], [DETAILS], 0.1, name=case.name))
    n = details(got.queries[DETAILS])
    assert set(k) == set(n)
    for name in k:
        assert k[name] == n[name], name
