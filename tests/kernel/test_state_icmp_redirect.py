"""Which ICMP redirects change the routing state (net/ipv4/icmp.c).

``icmp_redirect`` hands the message to ``icmp_socket_deliver``, which calls the
error handler of the *quoted* datagram's protocol; only that handler may call
``ipv4_redirect``/``ipv4_sk_redirect`` and so create the route exception
(``__ip_do_redirect``).  Measured here on the kernel, without sockets in the
DUT: a quoted ICMP echo *reply* is acted on (``icmp_err`` treats it as sent by
the kernel itself), while a quoted echo request (``ping_err``: no ping socket),
UDP (``__udp4_lib_err``: no socket), TCP (``tcp_v4_err``: no socket) and a
protocol without an error handler change nothing.  Each redirect quotes a
different destination, then ``ip route get`` shows which ones were learned.
"""

from __future__ import annotations

import json

import dpkt

from .cases import Case, eth_ip, ip4, ipv4, script
from .conftest import Kernel
from .oracle import Send

H, O, OUT0 = "h", "o", "out0"
MAC_H, MAC_GW = "02:00:00:00:70:01", "02:00:00:00:70:fe"
IP_H, OLD_GW, NEW_GW = "10.0.7.1", "10.0.7.254", "10.0.7.253"

# quoted protocol -> (destination the quoted datagram went to, 8 bytes after its header)
QUOTED = {
    "udp": ("192.0.2.1", 17, bytes(dpkt.udp.UDP(sport=40000, dport=7000, ulen=8))),
    "echo_request": ("192.0.2.2", 1, bytes.fromhex("0800f7ff00010000")),
    "echo_reply": ("192.0.2.3", 1, bytes.fromhex("0000ffff00010000")),
    "tcp": ("192.0.2.4", 6, bytes.fromhex("9c401b5800000001")),
    "proto253": ("192.0.2.5", 253, bytes(8)),
}
ACCEPTED = {"echo_reply"}


def redirect_frame(quoted_dst: str, proto: int, l4: bytes) -> bytes:
    """Host redirect (type 5 code 1) from the current gateway to NEW_GW, quoting a
    datagram h sent to ``quoted_dst`` (RFC 792: IP header + first 8 data bytes)."""
    quoted = ipv4(IP_H, quoted_dst, proto, l4, ident=0x4242)
    body = ip4(NEW_GW) + quoted
    msg = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_REDIRECT, code=1, data=body)
    # dpkt packs ICMP as type/code/sum + data; data starts with the gateway word.
    return eth_ip(MAC_H, MAC_GW, ipv4(OLD_GW, IP_H, dpkt.ip.IP_PROTO_ICMP, bytes(msg)))


REDIRECT = Case(
    name="icmp_redirect_owner",
    script=script("redirect_host"),
    sends=tuple(Send(O, OUT0, redirect_frame(*QUOTED[k])) for k in QUOTED),
    captures=((O, OUT0),),
    queries=tuple(f"ip -n {H} -j route get {QUOTED[k][0]}" for k in QUOTED),
)


def check(res) -> None:
    for kind, (dst, _, _) in QUOTED.items():
        (route,) = json.loads(res.queries[f"ip -n {H} -j route get {dst}"])
        want = NEW_GW if kind in ACCEPTED else OLD_GW
        assert route["gateway"] == want, f"{kind}: {route}"


def test_icmp_redirect_owner_kernel(kernel: Kernel) -> None:
    check(kernel.run(REDIRECT))


def test_icmp_redirect_owner_netstack_matches(kernel: Kernel) -> None:
    check(kernel.compare_netstack(REDIRECT))


# --- the socket cases, netstack only (the oracle cannot own sockets in the DUT) ---


def _stack():
    from netstack import Stack

    st = Stack()
    st.run_script(script("redirect_host"))
    return st, st.world.namespaces[H]


def _gateway(st, dst: str) -> str:
    res = st.command(f"ip -n {H} -j route get {dst}")
    assert res.rc == 0, res.stderr
    return json.loads(res.stdout)[0]["gateway"]


def test_redirect_quoting_udp_is_taken_with_a_socket() -> None:
    from netstack.ipv4.udp import udp_socket

    st, net = _stack()
    sk = udp_socket(net)
    sk.bind(("0.0.0.0", 40000))
    st.inject(O, OUT0, [redirect_frame(*QUOTED["udp"])])
    assert _gateway(st, QUOTED["udp"][0]) == NEW_GW


def test_redirect_quoting_echo_request_is_taken_with_a_ping_socket() -> None:
    from netstack.ipv4.ping import ping_socket

    st, net = _stack()
    sk = ping_socket(net)
    sk.bind(("0.0.0.0", 1))  # the quoted echo identifier
    st.inject(O, OUT0, [redirect_frame(*QUOTED["echo_request"])])
    assert _gateway(st, QUOTED["echo_request"][0]) == NEW_GW


def test_redirect_ping_socket_with_another_identifier_does_not_count() -> None:
    from netstack.ipv4.ping import ping_socket

    st, net = _stack()
    sk = ping_socket(net)
    sk.bind(("0.0.0.0", 2))
    st.inject(O, OUT0, [redirect_frame(*QUOTED["echo_request"])])
    assert _gateway(st, QUOTED["echo_request"][0]) == OLD_GW


def test_redirect_in_errors_follow_the_error_handlers() -> None:
    """__udp4_lib_err and tcp_v4_err count IcmpInErrors when no socket owns the quoted
    datagram; ping_err and protocols without a handler count nothing."""
    st, net = _stack()
    mib = net.ipv4.mib
    for kind, delta in (("udp", 1), ("tcp", 1), ("echo_request", 0), ("proto253", 0),
                        ("echo_reply", 0)):
        before = mib["IcmpInErrors"]
        st.inject(O, OUT0, [redirect_frame(*QUOTED[kind])])
        assert mib["IcmpInErrors"] - before == delta, kind


def test_redirect_truncated_quote_is_an_in_error_and_a_drop() -> None:
    st, net = _stack()
    mib = net.ipv4.mib
    msg = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_REDIRECT, code=1, data=ip4(NEW_GW) + bytes(12))
    frame = eth_ip(MAC_H, MAC_GW, ipv4(OLD_GW, IP_H, dpkt.ip.IP_PROTO_ICMP, bytes(msg)))
    before = mib["IcmpInErrors"]
    st.inject(O, OUT0, [frame])
    assert mib["IcmpInErrors"] - before == 1
    assert st.drops(H)["PKT_TOO_SMALL"] == 1


# --- shared_media=0 with secure_redirects=1: only gateways already in use are accepted ---
#
# __ip_do_redirect: `if (IN_DEV_SEC_REDIRECTS(in_dev) && ip_fib_check_default(new_gw, dev))
# goto reject_redirect;` — ip_fib_check_default() returns 0 (accept) only when new_gw is the
# live gateway of some route's nexthop on dev.

NOT_SHARED = "ip netns exec h sysctl -q -w net.ipv4.conf.all.shared_media=0 net.ipv4.conf.eth0.shared_media=0\n"
KNOWN_GW = "ip -n h route add 198.51.100.0/24 via 10.0.7.253\n"


def _secure_case(name: str, extra: str) -> Case:
    return Case(
        name=name,
        script=script("redirect_host") + NOT_SHARED + extra,
        sends=(Send(O, OUT0, redirect_frame(*QUOTED["echo_reply"])),),
        captures=((O, OUT0),),
        queries=(f"ip -n {H} -j route get {QUOTED['echo_reply'][0]}",),
    )


SECURE_UNKNOWN = _secure_case("redirect_secure_unknown_gw", "")
SECURE_KNOWN = _secure_case("redirect_secure_known_gw", KNOWN_GW)


def _gw_of(res) -> str:
    (route,) = json.loads(res.queries[f"ip -n {H} -j route get {QUOTED['echo_reply'][0]}"])
    return route["gateway"]


def test_secure_redirects_kernel(kernel: Kernel) -> None:
    assert _gw_of(kernel.run(SECURE_UNKNOWN)) == OLD_GW
    assert _gw_of(kernel.run(SECURE_KNOWN)) == NEW_GW


def test_secure_redirects_netstack_matches(kernel: Kernel) -> None:
    assert _gw_of(kernel.compare_netstack(SECURE_UNKNOWN)) == OLD_GW
    assert _gw_of(kernel.compare_netstack(SECURE_KNOWN)) == NEW_GW
