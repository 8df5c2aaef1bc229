"""``ip link add … type vxlan`` against iproute2 6.1 + Linux 6.18: the ``ip -d link``
text and JSON of several configurations, and the parser's errors (message and exit code).
"""
from __future__ import annotations

import json

import pytest

from kernel.oracle import run_kernel
from tunnels.helpers import assert_cli_matches_kernel, link_detail_part

SETUP = """\
ip netns add t
ip -n t link add u0 index 5 address 02:00:00:00:00:01 type veth peer name u1 index 6 address 02:00:00:00:00:02
ip -n t addr add 10.9.0.1/24 dev u0
ip -n t link set u0 up
ip -n t link add vx0 index 10 address 02:00:00:00:01:00 type vxlan id 42 remote 10.9.0.2 local 10.9.0.1 dev u0 dstport 4789
ip -n t link add vx1 index 11 address 02:00:00:00:01:01 type vxlan id 43 remote 10.9.0.3 dev u0 srcport 5000 5001 noudpcsum remcsumtx remcsumrx gbp nolearning dstport 0 ttl 10 tos inherit ageing 100
ip -n t link add vx2 index 12 address 02:00:00:00:01:02 type vxlan id 44 remote 2001:db8::2 local 2001:db8::1 dstport 4789 udp6zerocsumtx udp6zerocsumrx ttl auto tos 0x10 df set
ip -n t link add vx3 index 13 address 02:00:00:00:01:03 mtu 1400 type vxlan vni 45 dstport 8472 df inherit ttl inherit
"""
DEVS = ("vx0", "vx1", "vx2", "vx3")
QUERIES = [f"ip -n t -d -j link show {d}" for d in DEVS] + \
          [f"ip -n t -d link show {d}" for d in DEVS]


@pytest.fixture(scope="module")
def kernel_queries(kernel_ok: None) -> dict[str, str]:
    return run_kernel(SETUP, [], [], QUERIES, 0.05).queries


@pytest.mark.parametrize("dev", DEVS)
def test_ip_d_link_json_matches_kernel(kernel_queries: dict[str, str], dev: str) -> None:
    from netstack import Stack
    st = Stack()
    st.run_script(SETUP)
    q = f"ip -n t -d -j link show {dev}"
    mine = json.loads(st.command(q).stdout)[0]
    theirs = json.loads(kernel_queries[q])[0]
    assert mine["linkinfo"] == theirs["linkinfo"]
    for key in ("mtu", "min_mtu", "max_mtu", "flags", "address", "link_type"):
        assert mine[key] == theirs[key], key


@pytest.mark.parametrize("dev", DEVS)
def test_ip_d_link_text_vxlan_part_matches_kernel(kernel_queries: dict[str, str],
                                                  dev: str) -> None:
    from netstack import Stack
    st = Stack()
    st.run_script(SETUP)
    q = f"ip -n t -d link show {dev}"
    assert link_detail_part(st.command(q).stdout) == link_detail_part(kernel_queries[q])


ERRORS = [
    "ip -n {ns} link add e0 type vxlan remote 10.9.0.2 dstport 4789",
    "ip -n {ns} link add e0 type vxlan id 16777216 dstport 4789",
    "ip -n {ns} link add e0 type vxlan id 1 id 2 dstport 4789",
    "ip -n {ns} link add e0 type vxlan id 1 group 239.1.1.1 dstport 4789",
    "ip -n {ns} link add e0 type vxlan id 1 remote 239.1.1.1 dstport 4789",
    "ip -n {ns} link add e0 type vxlan id 1 bogus",
    "ip -n {ns} link add e0 type vxlan id 1 ttl 300 dstport 4789",
    "ip -n {ns} link add e0 type vxlan id 1 df maybe dstport 4789",
    "ip -n {ns} link add e0 type vxlan id 1 dev nosuchdev dstport 4789",
    "ip -n {ns} link add e0 type vxlan id 1 remote 10.0.0.1",
    "ip -n {ns} link add e0 type vxlan id 1 remote 10.0.0.1 local 2001:db8::1 dstport 4789",
    "ip -n {ns} link add e0 type vxlan id 1 srcport 10 5 dstport 4789",
    "ip -n {ns} link add e0 type vxlan id 1 flowlabel 7 dstport 4789",
    "ip -n {ns} link add e0 type vxlan id 1 flowlabel 0x100000 dstport 4789",
]


@pytest.mark.parametrize("cmd", ERRORS)
def test_vxlan_cli_errors_match_kernel(kernel_ok: None, cmd: str) -> None:
    assert_cli_matches_kernel(cmd, "tun-cli")


# iproute2 parses these before asking the kernel, so the machine's `ip` is the oracle even
# for kinds whose modules the kernel lacks (gre, ipip, sit, geneve, ip6gre, fou)
PARSE_ERRORS = [
    "ip -n {ns} link add x0 type gre bogus",
    "ip -n {ns} link add x0 type gretap bogus",
    "ip -n {ns} link add x0 type ip6gre bogus",
    "ip -n {ns} link add x0 type ip6gretap bogus",
    "ip -n {ns} link add x0 type ipip bogus",
    "ip -n {ns} link add x0 type sit bogus",
    "ip -n {ns} link add x0 type geneve bogus",
    "ip -n {ns} link add x0 type geneve id 5",
    "ip -n {ns} link add x0 type geneve remote 10.0.0.1",
    "ip -n {ns} link add x0 type gre remote foo",
    "ip -n {ns} link add x0 type gre key x.y",
    "ip -n {ns} link add x0 type gre key abc",
    "ip -n {ns} link add x0 type gre remote 239.1.1.1",
    "ip -n {ns} link add x0 type gre ttl 300",
    "ip -n {ns} link add x0 type gre encap bogus",
    "ip -n {ns} link add x0 type gre encap-sport x",
    "ip -n {ns} link add x0 type ipip mode bogus",
    "ip -n {ns} link add x0 type ipip ttl 5 nopmtudisc",
    "ip -n {ns} link add x0 type sit ttl 5 nopmtudisc",
    "ip -n {ns} link add x0 type ipip remote 1.2.3.4 ttl 300",
    "ip -n {ns} link add x0 type ipip remote foo",
    "ip -n {ns} link add x0 type ipip dev nosuch",
    "ip -n {ns} link add x0 type ip6gre remote foo",
    "ip -n {ns} link add x0 type ip6gre hoplimit 300",
    "ip -n {ns} link add x0 type ip6gre encaplimit x",
    "ip -n {ns} link add x0 type ip6gre tclass 0x1ff",
    "ip -n {ns} link add x0 type ip6gre flowlabel 0x100000",
    "ip -n {ns} link add x0 type geneve id 1 remote 10.0.0.1 ttl 300",
    "ip -n {ns} link add x0 type geneve id 1 remote 239.1.1.1",
    "ip -n {ns} link add x0 type geneve id 1 remote 10.0.0.1 df maybe",
]
# (`ip fou` resolves the fou generic-netlink family before it parses, so without the fou
# module the machine cannot check its parser: tests/tunnels/test_cli.py covers it)


@pytest.mark.parametrize("cmd", PARSE_ERRORS)
def test_tunnel_cli_parse_errors_match_iproute2(kernel_ok: None, cmd: str) -> None:
    assert_cli_matches_kernel(cmd, "tun-cli")


CHANGE = SETUP + """\
ip -n t link set vx0 type vxlan remote 10.9.0.5
ip -n t link set vx0 type vxlan nolearning ageing 100 ttl 5 tos inherit df set
ip -n t link set vx0 up
ip -n t link set vx0 type vxlan group 239.1.1.1 dev u0
ip -n t link set vx0 type vxlan local 10.9.0.1 ttl auto
"""
CHANGE_Q = ["ip -n t -d -j link show vx0", "bridge -n t -j fdb show dev vx0"]


def test_vxlan_changelink_matches_kernel(kernel_ok: None) -> None:
    """``ip link set vx0 type vxlan …``: the configuration and the default-remote FDB
    entries after a remote change, a group change while up, and other knobs."""
    k = run_kernel(CHANGE, [], [], CHANGE_Q, 0.05).queries
    from netstack import Stack
    st = Stack()
    st.run_script(CHANGE)
    mine = json.loads(st.command(CHANGE_Q[0]).stdout)[0]["linkinfo"]
    assert mine == json.loads(k[CHANGE_Q[0]])[0]["linkinfo"]
    assert json.loads(st.command(CHANGE_Q[1]).stdout) == json.loads(k[CHANGE_Q[1]])


CHANGE_ERRORS = ["id 43", "dstport 4790", "srcport 1000 2000", "noudpcsum", "remcsumtx",
                 "remcsumrx", "gbp", "udp6zerocsumtx", "udp6zerocsumrx", "ttl inherit",
                 "maxaddress 10", "flowlabel 5", "", "id 42 ttl 9", "group 239.1.1.1"]


@pytest.mark.parametrize("opts", CHANGE_ERRORS)
def test_vxlan_changelink_errors_match_kernel(kernel_ok: None, opts: str) -> None:
    cmd = "ip -n {ns} link set vx0 type vxlan " + opts
    assert_cli_matches_kernel(cmd, "tun-chg",
                              "link add vx0 type vxlan id 42 remote 10.9.0.2 dstport 4789")
