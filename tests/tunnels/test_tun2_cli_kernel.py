"""``proxy``/``rsc``/``l2miss``/``l3miss`` in ``ip link add|set … type vxlan`` and
``ip -d [-j] link`` against iproute2 6.1 + Linux 6.18 (vxlan_nl2conf refuses any of the
four flags on changelink, whatever the value)."""
from __future__ import annotations

import json

import pytest

from kernel.oracle import run_kernel
from tunnels.helpers import assert_cli_matches_kernel, link_detail_part

SETUP = """\
ip netns add t
ip -n t link add vx0 index 10 address 02:00:00:00:01:00 type vxlan id 42 remote 10.9.0.2 dstport 4789 proxy rsc l2miss l3miss nolearning
ip -n t link add vx1 index 11 address 02:00:00:00:01:01 type vxlan id 43 dstport 4789 l3miss norsc
ip -n t link add vx2 index 12 address 02:00:00:00:01:02 type vxlan id 44 dstport 4789 noproxy nol2miss
ip -n t link set vx1 type vxlan learning ageing 20
"""
DEVS = ("vx0", "vx1", "vx2")
QUERIES = [f"ip -n t -d -j link show {d}" for d in DEVS] + \
          [f"ip -n t -d link show {d}" for d in DEVS]


@pytest.fixture(scope="module")
def kq(kernel_ok: None) -> dict[str, str]:
    return run_kernel(SETUP, [], [], QUERIES, 0.05).queries


@pytest.mark.parametrize("dev", DEVS)
def test_ip_d_link_matches_kernel(kq: dict[str, str], dev: str) -> None:
    from netstack import Stack
    st = Stack()
    st.run_script(SETUP)
    q = f"ip -n t -d -j link show {dev}"
    assert json.loads(st.command(q).stdout)[0]["linkinfo"] == \
        json.loads(kq[q])[0]["linkinfo"]
    q = f"ip -n t -d link show {dev}"
    assert link_detail_part(st.command(q).stdout) == link_detail_part(kq[q])


CHANGE_ERRORS = ["proxy", "noproxy", "rsc", "norsc", "l2miss", "nol2miss", "l3miss",
                 "nol3miss", "learning l3miss", "nol3miss norsc", "ttl 5 proxy",
                 "proxy maxaddress 10", "proxy proxy"]


@pytest.mark.parametrize("opts", CHANGE_ERRORS)
def test_changelink_refusals_match_kernel(kernel_ok: None, opts: str) -> None:
    cmd = "ip -n {ns} link set vx0 type vxlan " + opts
    add = "link add vx0 type vxlan id 42 remote 10.9.0.2 dstport 4789 proxy l3miss"
    assert_cli_matches_kernel(cmd, "tun2-chg", add)


ADD_ERRORS = ["proxy noproxy", "l2miss l2miss", "rsc norsc", "nol3miss l3miss"]


@pytest.mark.parametrize("opts", ADD_ERRORS)
def test_add_parse_errors_match_kernel(kernel_ok: None, opts: str) -> None:
    cmd = "ip -n {ns} link add vx0 type vxlan id 42 dstport 4789 " + opts
    assert_cli_matches_kernel(cmd, "tun2-add")
