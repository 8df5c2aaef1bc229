"""``conntrack`` CLI output against text captured from Debian's conntrack 1.4.7 on Linux 6.18
(the flows below were produced there with veth namespaces: ping, two UDP datagrams, one in
``ct zone set 7``, and a TCP connection the client half-closed)."""
from __future__ import annotations

import io

import pytest

from netstack.cli.scenario import dispatch
from netstack.cli.ipcommon import Ctx
from netstack.cli.errors import ToolError
from netstack.netfilter import conntrack as nfct
from test_ct_core import OUT, CtEnv, icmp4, ip, tcp4, udp4

H1, H2 = ip("10.9.0.1"), ip("10.9.0.2")

KERNEL_L = """\
icmp     1 29 src=10.9.0.1 dst=10.9.0.2 type=8 code=0 id=63623 src=10.9.0.2 dst=10.9.0.1 type=0 code=0 id=63623 mark=0 use=1
udp      17 29 src=10.9.0.1 dst=10.9.0.2 sport=40000 dport=5000 [UNREPLIED] src=10.9.0.2 dst=10.9.0.1 sport=5000 dport=40000 mark=0 use=1
udp      17 29 src=10.9.0.1 dst=10.9.0.2 sport=40000 dport=5001 [UNREPLIED] src=10.9.0.2 dst=10.9.0.1 sport=5001 dport=40000 mark=0 zone=7 use=1
tcp      6 59 CLOSE_WAIT src=10.9.0.1 dst=10.9.0.2 sport=40001 dport=8080 src=10.9.0.2 dst=10.9.0.1 sport=8080 dport=40001 [ASSURED] mark=0 use=1
"""
KERNEL_EVENTS = """\
    [NEW] udp      17 30 src=10.9.0.1 dst=10.9.0.2 sport=40000 dport=5000 [UNREPLIED] src=10.9.0.2 dst=10.9.0.1 sport=5000 dport=40000
    [NEW] udp      17 30 src=10.9.0.1 dst=10.9.0.2 sport=40000 dport=5001 [UNREPLIED] src=10.9.0.2 dst=10.9.0.1 sport=5001 dport=40000 zone=7
    [NEW] icmp     1 30 src=10.9.0.1 dst=10.9.0.2 type=8 code=0 id=63623 [UNREPLIED] src=10.9.0.2 dst=10.9.0.1 type=0 code=0 id=63623
 [UPDATE] icmp     1 30 src=10.9.0.1 dst=10.9.0.2 type=8 code=0 id=63623 src=10.9.0.2 dst=10.9.0.1 type=0 code=0 id=63623
    [NEW] tcp      6 120 SYN_SENT src=10.9.0.1 dst=10.9.0.2 sport=40001 dport=8080 [UNREPLIED] src=10.9.0.2 dst=10.9.0.1 sport=8080 dport=40001
 [UPDATE] tcp      6 60 SYN_RECV src=10.9.0.1 dst=10.9.0.2 sport=40001 dport=8080 src=10.9.0.2 dst=10.9.0.1 sport=8080 dport=40001
 [UPDATE] tcp      6 432000 ESTABLISHED src=10.9.0.1 dst=10.9.0.2 sport=40001 dport=8080 src=10.9.0.2 dst=10.9.0.1 sport=8080 dport=40001 [ASSURED]
 [UPDATE] tcp      6 120 FIN_WAIT src=10.9.0.1 dst=10.9.0.2 sport=40001 dport=8080 src=10.9.0.2 dst=10.9.0.1 sport=8080 dport=40001 [ASSURED]
 [UPDATE] tcp      6 60 CLOSE_WAIT src=10.9.0.1 dst=10.9.0.2 sport=40001 dport=8080 src=10.9.0.2 dst=10.9.0.1 sport=8080 dport=40001 [ASSURED]
"""
PROG = "conntrack v1.4.7 (conntrack-tools)"


def run(env: CtEnv, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    ctx = Ctx(env.world, env.net, out, err)
    try:
        rc = dispatch(ctx, ["conntrack", *args])
    except ToolError as e:
        out.write(e.stdout)
        err.write(e.stderr)
        rc = e.exit_code
    return rc, out.getvalue(), err.getvalue()


def build(env: CtEnv, events: io.StringIO | None = None) -> None:
    if events is not None:
        rc, _, _ = run(env, "-E")
        assert rc == 0
        from netstack.cli import conntrack_cmd
        # -E printed into the StringIO of that run; re-point a listener at ``events``
        env.cn.listeners.clear()
        env.cn.listeners.append(lambda k, c: events.write(
            conntrack_cmd.format_ct(c, env.world.clock.now, event=k) + "\n"))
    env.run(udp4(H1, H2, 40000, 5000, b"hi"), OUT)
    z = udp4(H1, H2, 40000, 5001, b"hi")
    nfct.nf_ct_set_zone_template(z, 7)
    env.run(z, OUT)
    env.run(icmp4(H1, H2, 63623), OUT)
    env.run(icmp4(H2, H1, 63623, reply=True), OUT)
    c, s = 1000, 9000
    env.run(tcp4(H1, H2, 40001, 8080, c, 0, 0x02), OUT)
    env.run(tcp4(H2, H1, 8080, 40001, s, c + 1, 0x12), OUT)
    env.run(tcp4(H1, H2, 40001, 8080, c + 1, s + 1, 0x10), OUT)
    env.run(tcp4(H1, H2, 40001, 8080, c + 1, s + 1, 0x18, b"x"), OUT)
    env.run(tcp4(H1, H2, 40001, 8080, c + 2, s + 1, 0x11), OUT)
    env.run(tcp4(H2, H1, 8080, 40001, s + 1, c + 3, 0x10), OUT)
    env.world.clock.now += 500_000_000


def test_list_matches_kernel_text():
    env = CtEnv()
    build(env)
    rc, out, err = run(env, "-L")
    assert rc == 0 and sorted(out.splitlines()) == sorted(KERNEL_L.splitlines())
    assert err == f"{PROG}: 4 flow entries have been shown.\n"


def test_events_match_kernel_text():
    env = CtEnv()
    ev = io.StringIO()
    build(env, ev)
    assert ev.getvalue().splitlines() == [ln for ln in KERNEL_EVENTS.splitlines()
                                          if "[NEW] udp" in ln] + \
        [ln for ln in KERNEL_EVENTS.splitlines() if "udp" not in ln]


def test_event_listener_from_command_writes_to_run_stdout():
    env = CtEnv()
    out, err = io.StringIO(), io.StringIO()
    assert dispatch(Ctx(env.world, env.net, out, err), ["conntrack", "-E", "-p", "udp"]) == 0
    env.run(udp4(H1, H2, 1, 2), OUT)
    env.run(icmp4(H1, H2, 5), OUT)
    assert out.getvalue().startswith("    [NEW] udp      17 30 src=10.9.0.1")
    assert "icmp" not in out.getvalue()


def test_filters_delete_count_flush():
    env = CtEnv()
    build(env)
    rc, out, err = run(env, "-L", "-p", "tcp")
    assert out.count("\n") == 1 and "CLOSE_WAIT" in out and "1 flow entries" in err
    rc, out, err = run(env, "-C")
    assert (rc, out, err) == (0, "4\n", "")
    rc, out, err = run(env, "-D", "-p", "udp")
    assert rc == 0 and out.count("\n") == 2
    assert err == f"{PROG}: 2 flow entries have been deleted.\n"
    rc, out, err = run(env, "-D", "-p", "udp")
    assert (rc, out, err) == (1, "", f"{PROG}: 0 flow entries have been deleted.\n")
    rc, out, _ = run(env, "-L", "-w", "7")
    assert out == ""
    rc, out, err = run(env, "-D", "-s", "10.9.0.1", "-p", "icmp")
    assert rc == 0 and out.startswith("icmp     1 ")
    rc, out, err = run(env, "-F")
    assert (rc, out, err) == (0, "", f"{PROG}: connection tracking table has been emptied.\n")
    rc, out, err = run(env, "-L")
    assert (rc, out, err) == (0, "", f"{PROG}: 0 flow entries have been shown.\n")


def test_ipv6_listed_without_family_and_extended_output():
    env = CtEnv()
    from netstack.packet.ipv6 import build_ipv6
    from netstack.packet.udp import build_udp
    from test_ct_core import pkt
    from netstack.netfilter import core as nfc
    a, b = ip("fd00::1"), ip("fd00::2")
    env.run(pkt(build_ipv6(a, b, 17, build_udp(1, 2, b"x", src=a, dst=b)), 0x86DD), OUT,
            pf=nfc.NFPROTO_IPV6)
    # conntrack 1.4.7 on Linux 6.18 lists every family without -f
    assert "src=fd00::1" in run(env, "-L")[1]
    assert run(env, "-L", "-f", "ipv4")[1] == ""
    rc, out, _ = run(env, "-L", "-f", "ipv6", "-o", "extended")
    assert out == ("ipv6     10 udp      17 30 src=fd00::1 dst=fd00::2 sport=1 dport=2 "
                   "[UNREPLIED] src=fd00::2 dst=fd00::1 sport=2 dport=1 mark=0 use=1\n")


@pytest.mark.parametrize("args,msg", [
    (["-X"], "unknown option `-X'"),
    (["-L", "--sport", "5"], "unknown option `--sport'"),
    (["-L", "-p", "foo"], "`foo' unsupported protocol"),
    (["-L", "-s", "bad"], "Invalid IP address `bad'"),
    (["-L", "-f", "foo"], "`foo' unsupported protocol"),
    (["-L", "-u", "FOO"], "Bad parameter `FOO'"),
    (["-L", "-D"], "Invalid commands combination"),
    (["-L", "-s"], "option `-s' requires an argument"),
])
def test_errors_match_conntrack_tools(args, msg):
    rc, out, err = run(CtEnv(), *args)
    assert rc == 2 and err == (f"{PROG}: {msg}\nTry `conntrack -h' or 'conntrack --help' "
                               "for more information.\n")


def test_destroy_event_arrives_when_entry_expires():
    env = CtEnv()
    out, err = io.StringIO(), io.StringIO()
    dispatch(Ctx(env.world, env.net, out, err), ["conntrack", "-E"])
    env.run(udp4(H1, H2, 1, 2), OUT)
    env.world.advance(31)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("    [NEW] udp")
    assert lines[1] == ("[DESTROY] udp      17 src=10.9.0.1 dst=10.9.0.2 sport=1 dport=2 "
                        "[UNREPLIED] src=10.9.0.2 dst=10.9.0.1 sport=2 dport=1")
