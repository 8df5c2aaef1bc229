"""The tunnel CLI without the kernel: ``ip fou`` (its parser can only be checked against the
iproute2 source: the machine's ``ip fou`` needs the fou module first), the ``ip -d link``
output of kinds the test kernel lacks (following ip/link_gre.c, link_gre6.c,
link_iptnl.c, iplink_geneve.c, tunnel.c), and device deletion.
"""
from __future__ import annotations

import json

import pytest

from netstack import Stack

BASE = """\
ip netns add t
ip -n t link add u0 type veth peer name u1
ip -n t addr add 10.9.0.1/24 dev u0
ip -n t link set u0 up
"""


def stack(extra: str = "") -> Stack:
    st = Stack()
    st.run_script(BASE + extra)
    return st


@pytest.mark.parametrize("cmd,rc,err", [
    ("ip -n t fou add port 0 ipproto 4", 255, 'Error: argument "0" is wrong: invalid port\n'),
    ("ip -n t fou add port 5555", 1, "fou: must set ipproto or gue\n"),
    ("ip -n t fou add port 5555 ipproto 4 gue", 1, "fou: cannot set ipproto and gue\n"),
    ("ip -n t fou add ipproto 4", 1, "fou: missing port\n"),
    ("ip -n t fou del port 5555", 2, "RTNETLINK answers: No such file or directory\n"),
])
def test_fou_parse_errors(cmd: str, rc: int, err: str) -> None:
    r = stack().command(cmd)
    assert (r.rc, r.stderr) == (rc, err)


def test_fou_add_show_del() -> None:
    st = stack()
    assert st.command("ip -n t fou add port 5555 ipproto 47").rc == 0
    assert st.command("ip -n t fou add port 5556 gue local 10.9.0.1").rc == 0
    r = st.command("ip -n t fou add port 5555 ipproto 4")
    assert (r.rc, r.stderr) == (2, "RTNETLINK answers: Operation already in progress\n")
    assert st.command("ip -n t fou show").stdout == (
        "port 5555 ipproto 47\nport 5556 gue local 10.9.0.1\n")
    assert json.loads(st.command("ip -n t -j fou show").stdout) == [
        {"port": 5555, "ipproto": 47, "family": "inet"},
        {"port": 5556, "gue": None, "family": "inet", "local": "10.9.0.1"}]
    assert st.command("ip -n t fou del port 5555").rc == 0
    assert st.command("ip -n t fou show").stdout == "port 5556 gue local 10.9.0.1\n"


def _details(st: Stack, dev: str) -> tuple[str, dict]:
    text = st.command(f"ip -n t -d link show {dev}").stdout.splitlines()[2]
    js = json.loads(st.command(f"ip -n t -d -j link show {dev}").stdout)[0]
    return text[:text.index(" addrgenmode")].strip(), js["linkinfo"]["info_data"]


def test_gre_details_text_and_json() -> None:
    st = stack("ip -n t link add g0 type gre remote 10.9.0.2 local 10.9.0.1 ikey 1.2.3.4 "
               "okey 7 iseq ocsum ttl 10 tos inherit dev u0 encap fou encap-dport 5555 "
               "encap-csum\n")
    text, js = _details(st, "g0")
    assert text == ("gre remote 10.9.0.2 local 10.9.0.1 dev u0 ttl 10 tos inherit "
                    "ikey 1.2.3.4 okey 0.0.0.7 iseq ocsum encap fou encap-sport auto "
                    "encap-dport 5555 encap-csum noencap-csum6 noencap-remcsum")
    assert js == {"remote": "10.9.0.2", "local": "10.9.0.1", "link": "u0", "ttl": 10,
                  "tos": "0x1", "pmtudisc": True, "ikey": "1.2.3.4", "okey": "0.0.0.7",
                  "iseq": True, "ocsum": True,
                  "encap": {"type": "fou", "sport": 0, "dport": 5555, "csum": True,
                            "csum6": False, "remcsum": False}}
    # GRE header 4 + key 4 + csum 4 (o_flags) + FOU 8 + IPv4 20 under a 1500 lower device
    assert st._dev("t", "g0").mtu == 1500 - 20 - 12 - 8
    link = json.loads(st.command("ip -n t -j link show g0").stdout)[0]
    assert (link["link_type"], link["address"], link["broadcast"],
            link["link_pointtopoint"]) == ("gre", "10.9.0.1", "10.9.0.2", True)


def test_gre_multicast_remote_keys_on_the_group() -> None:
    st = stack("ip -n t link add g0 type gre remote 239.1.1.1 local 10.9.0.1\n")
    _, js = _details(st, "g0")
    assert js["ikey"] == js["okey"] == "239.1.1.1"


def test_ipip_sit_geneve_ip6gre_details() -> None:
    st = stack("ip -n t link add t0 type ipip remote 10.9.0.2 local 10.9.0.1 nopmtudisc\n"
               "ip -n t link add s0 type sit remote 10.9.0.2 local 10.9.0.1 ttl 64\n"
               "ip -n t link add gn0 type geneve id 9 remote 10.9.0.2 ttl auto tos inherit "
               "df set\n"
               "ip -n t link add e0 type ip6gre remote 2001:db8::2 local 2001:db8::1 "
               "encaplimit none tclass inherit flowlabel 0x123 hoplimit 30\n")
    assert _details(st, "t0")[0] == ("ipip ipip remote 10.9.0.2 local 10.9.0.1 ttl inherit "
                                     "nopmtudisc")
    assert _details(st, "s0")[1] == {"proto": "ip6ip", "remote": "10.9.0.2",
                                     "local": "10.9.0.1", "ttl": 64, "pmtudisc": True}
    assert _details(st, "gn0") == (
        "geneve id 9 remote 10.9.0.2 ttl auto tos inherit df set dstport 6081 noudpcsum "
        "udp6zerocsumrx",
        {"id": 9, "remote": "10.9.0.2", "ttl": 0, "tos": "0x1", "df": "set", "port": 6081,
         "udp_csum": False, "udp_zero_csum6_rx": True})
    text, js = _details(st, "e0")
    assert text == ("ip6gre remote 2001:db8::2 local 2001:db8::1 hoplimit 30 encaplimit "
                    "none flowlabel 0x00123 tclass inherit")
    assert js["ip6_tnl_f_ign_encap_limit"] is True and js["flowlabel"] == "0x00123"
    assert st._dev("t", "gn0").mtu == 1500 - 50


def test_delete_releases_sockets_and_tunnels() -> None:
    st = stack("ip -n t link add vx0 type vxlan id 1 remote 10.9.0.2 dstport 4789\n"
               "ip -n t link set vx0 up\n"
               "ip -n t link add g0 type gre remote 10.9.0.2 local 10.9.0.1\n")
    net = st.world.netns("t")
    assert net.proto["udp_tunnel"]
    assert st.command("ip -n t link del vx0").rc == 0
    assert not net.proto["udp_tunnel"]
    assert st.command("ip -n t link del g0").rc == 0
    assert net.proto["gre_tunnels"] == []
    # the same tunnel can be created again
    assert st.command("ip -n t link add g0 type gre remote 10.9.0.2 local 10.9.0.1").rc == 0
    r = st.command("ip -n t link add g1 type gre remote 10.9.0.2 local 10.9.0.1")
    assert (r.rc, r.stderr) == (2, "RTNETLINK answers: File exists\n")


def test_vxlan_duplicate_vni_is_refused() -> None:
    st = stack("ip -n t link add vx0 type vxlan id 1 remote 10.9.0.2 dstport 4789\n")
    r = st.command("ip -n t link add vx1 type vxlan id 1 remote 10.9.0.3 dstport 4789")
    assert (r.rc, r.stderr) == (
        2, "Error: A VXLAN device with the specified VNI already exists.\n")


def test_port_conflict_on_open_leaves_the_device_down() -> None:
    """Measured on 6.18: a VXLAN device whose receive flags differ from the device already
    bound to the port cannot share its socket: ``ip link set … up`` fails with EADDRINUSE
    and the device stays down."""
    st = stack("ip -n t link add vx0 type vxlan id 1 remote 10.9.0.2 dstport 4789\n"
               "ip -n t link add vx4 type vxlan id 2 dstport 4789 remcsumrx\n"
               "ip -n t link set vx0 up\n")
    r = st.command("ip -n t link set vx4 up")
    assert (r.rc, r.stderr) == (2, "RTNETLINK answers: Address already in use\n")
    assert not st._dev("t", "vx4").is_up
    assert st.command("ip -n t link add vx5 type vxlan id 3 dstport 4789").rc == 0
    assert st.command("ip -n t link set vx5 up").rc == 0


def test_tunnel_and_application_sockets_share_the_port_space() -> None:
    """The kernel's tunnel socket is an ordinary UDP socket: an application cannot bind
    the VXLAN port while the device is up, and a FOU port taken by an application makes
    ``ip fou add`` fail with EADDRINUSE."""
    import errno

    from netstack.errors import KernelError
    from netstack.ipv4.udp import udp_socket
    st = stack("ip -n t link add vx0 type vxlan id 1 remote 10.9.0.2 dstport 4789\n"
               "ip -n t link set vx0 up\n")
    net = st.world.netns("t")
    with pytest.raises(KernelError) as e:
        udp_socket(net).bind(("0.0.0.0", 4789))
    assert e.value.errno == errno.EADDRINUSE
    udp_socket(net).bind(("0.0.0.0", 5555))
    r = st.command("ip -n t fou add port 5555 ipproto 4")
    assert (r.rc, r.stderr) == (2, "RTNETLINK answers: Address already in use\n")
