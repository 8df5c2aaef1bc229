"""ICMPv6 errors about packets sent to a subnet-router anycast address (net/ipv6/icmp.c
``icmp6_send``): the anycast destination is used as the error's source only when
``net.ipv6.icmp.error_anycast_as_unicast`` is 1 (``ipv6_chk_acast_addr_src``); by default
the source is chosen by ``ipv6_dev_get_saddr`` on the input device.  Kernel-differential
on tests/kernel/scenarios/ipv6_router.sh, where forwarding makes ``r`` join
2001:db8:1:: and 2001:db8:2::."""
from __future__ import annotations

import sys
from pathlib import Path

import dpkt
import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from kernel.cases import (H1, H2, IP6_H1, MAC_H1, MAC_R1, V1H, V2H,  # noqa: E402
                          eth_ip6, script, udp6)
from kernel.compare import results_diff, strip_noise  # noqa: E402
from kernel.netstack_side import run_netstack  # noqa: E402
from kernel.oracle import Result, Send, run_kernel  # noqa: E402

CAPS = [(H1, V1H), (H2, V2H)]


def _unavailable() -> str | None:
    import os
    import shutil
    if os.geteuid() != 0:
        return "kernel oracle needs root"
    if shutil.which("ip") is None:
        return "ip (iproute2) not installed"
    return None


def _sends() -> list[Send]:
    def s(dst: str, port: int, src: str = IP6_H1) -> Send:
        return Send(H1, V1H, eth_ip6(MAC_R1, MAC_H1, udp6(src, dst, 40000, port, b"a")))
    return [s("2001:db8:2::", 7009),     # anycast on the other interface
            s("2001:db8:1::", 7010),     # anycast on the input interface
            s("2001:db8:2::fe", 7011),   # unicast address of r: the error's source
            # from an anycast source: icmpv6_route_lookup refuses ("acast source")
            s("2001:db8:2::fe", 7012, "2001:db8:1::"),
            # from a host address whose route is on-link: answered
            s("2001:db8:2::fe", 7013, "2001:db8:1::5")]


def _errors(res: Result) -> list[tuple[str, int, int]]:
    out = []
    for f in res.frames[(H1, V1H)]:
        ip = dpkt.ethernet.Ethernet(f).data
        if isinstance(ip, dpkt.ip6.IP6) and ip.nxt == 58 and ip.data.type < 128:
            import ipaddress
            out.append((str(ipaddress.IPv6Address(ip.src)), ip.data.type, ip.data.code))
    return out


SYSCTL = "ip netns exec r sysctl -w net.ipv6.icmp.error_anycast_as_unicast=1\n"
NEIGH = "ip -n r neigh add 2001:db8:1::5 lladdr 02:00:00:00:01:01 dev v1r nud permanent\n"


@pytest.mark.parametrize("as_unicast", [0, 1])
def test_anycast_error_source_netstack(as_unicast: int):
    text = script("ipv6_router") + NEIGH + (SYSCTL if as_unicast else "")
    n = run_netstack(text, _sends(), CAPS, [], 0.15)
    want = [("2001:db8:2::", 1, 4), ("2001:db8:1::", 1, 4), ("2001:db8:2::fe", 1, 4),
            ("2001:db8:2::fe", 1, 4)]
    assert _errors(n) == want
    # MLD reports of the namespaces coming up are noise here (tests/kernel/compare.py)
    dsts = [dpkt.ethernet.Ethernet(f).data.dst for f in strip_noise(n).frames[(H1, V1H)]]
    assert dsts[-1] == bytes.fromhex("20010db8000100000000000000000005")


@pytest.mark.parametrize("as_unicast", [0, 1])
def test_anycast_error_source_matches_kernel(as_unicast: int):
    why = _unavailable()
    if why:
        pytest.skip(why)
    text = script("ipv6_router") + NEIGH + (SYSCTL if as_unicast else "")
    # with error_anycast_as_unicast the error to the anycast source is sent but loops
    # back through lo (ip6_rt_get_dev_rcu gives anycast dsts the loopback device)
    sends = _sends()
    k = strip_noise(run_kernel(text, sends, CAPS, [], 0.15))
    n = strip_noise(run_netstack(text, sends, CAPS, [], 0.15))
    assert len(_errors(k)) == 4, _errors(k)   # none for (or never on the wire)
    assert _errors(n) == _errors(k)
    diff = results_diff(Result(frames=k.frames), Result(frames=n.frames))
    assert diff is None, diff
