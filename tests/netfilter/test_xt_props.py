"""Property tests for the xtables front end: random rules round-trip through ``-S``,
``-D`` by specification removes exactly what ``-A`` added, iptables-translate never raises
on arbitrary argument soup, and (when Debian's tool is installed) random rules translate
exactly as the real iptables-translate does."""
from __future__ import annotations

import io
import os
from typing import Iterator
import shlex
import shutil
import subprocess

from unittest import mock

import pytest

from hypothesis import HealthCheck, assume, given, settings, strategies as st

from netstack.cli import iptables_cmd
from netstack.cli.scenario import run_command
from netstack.core.world import World
from netstack.netfilter.xtables.addr import parse_addresses
from netstack.netfilter.xtables.parse import Family
from netstack.netfilter.xtables.tables import state_of
from netstack.netfilter.xtables.translate import translate_main

_octet = st.integers(0, 255)
_addr = st.builds(lambda a, b, c, d, m: f"{a}.{b}.{c}.{d}/{m}", _octet, _octet, _octet,
                  _octet, st.integers(0, 32))
_port = st.integers(0, 65535)
_range = st.one_of(_port.map(str), st.tuples(_port, _port).map(
    lambda t: f"{min(t)}:{max(t)}"))
_iface = st.sampled_from(["eth0", "veth1", "lo", "eth+", "br-x"])


@st.composite
def rules(draw: st.DrawFn) -> list[str]:
    """A random but valid iptables rule specification (the part after ``-A CHAIN``)."""
    args: list[str] = []
    bang = lambda: ["!"] if draw(st.booleans()) else []  # noqa: E731
    if draw(st.booleans()):
        args += bang() + ["-s", draw(_addr)]
    if draw(st.booleans()):
        args += bang() + ["-d", draw(_addr)]
    if draw(st.booleans()):
        args += bang() + ["-i", draw(_iface)]
    if draw(st.booleans()):
        args += bang() + ["-o", draw(_iface)]
    proto = draw(st.sampled_from(["", "tcp", "udp", "icmp", "47"]))
    if proto:
        args += ["-p", proto]
        if proto in ("tcp", "udp") and draw(st.booleans()):
            args += bang() + ["--dport", draw(_range)]
        if proto in ("tcp", "udp") and draw(st.booleans()):
            args += bang() + ["--sport", draw(_range)]
        if proto == "tcp" and draw(st.booleans()):
            args += bang() + ["--syn"]
        if proto in ("tcp", "udp") and draw(st.booleans()):
            ports = draw(st.lists(_port, min_size=1, max_size=5, unique=True))
            args += ["-m", "multiport"] + bang() + ["--dports", ",".join(map(str, ports))]
        if proto == "icmp" and draw(st.booleans()):
            args += bang() + ["--icmp-type", draw(st.sampled_from(
                ["echo-request", "echo-reply", "8", "3/4", "time-exceeded"]))]
    if draw(st.booleans()):
        states = draw(st.lists(st.sampled_from(["NEW", "ESTABLISHED", "RELATED", "INVALID",
                                                "UNTRACKED"]), min_size=1, max_size=3,
                               unique=True))
        args += ["-m", draw(st.sampled_from(["conntrack", "state"]))]
        args += bang() + ["--ctstate" if args[-1] == "conntrack" else "--state",
                          ",".join(states)]
    if draw(st.booleans()):
        mark = draw(st.integers(0, 2**32 - 1))
        args += ["-m", "mark"] + bang() + ["--mark", hex(mark)]
    if draw(st.booleans()):
        args += ["-m", "limit", "--limit", f"{draw(st.integers(1, 1000))}/"
                 f"{draw(st.sampled_from(['second', 'minute', 'hour', 'day']))}"]
    if draw(st.booleans()):
        args += ["-m", "comment", "--comment", draw(st.text(
            alphabet="abc XYZ_-:.", min_size=1, max_size=20))]
    target = draw(st.sampled_from(["ACCEPT", "DROP", "RETURN", "REJECT", "LOG", "MARK", "",
                                   "CT"]))
    if target == "REJECT":
        args += ["-j", "REJECT", "--reject-with", draw(st.sampled_from(
            ["icmp-port-unreachable", "icmp-host-prohibited", "tcp-reset"]))]
    elif target == "LOG":
        args += ["-j", "LOG", "--log-prefix", "p: ", "--log-level",
                 str(draw(st.integers(0, 7)))]
    elif target == "MARK":
        args += ["-j", "MARK", draw(st.sampled_from(["--set-mark", "--or-mark",
                                                     "--xor-mark", "--and-mark"])),
                 hex(draw(st.integers(0, 2**32 - 1)))]
    elif target == "CT":
        args += ["-j", "CT", "--notrack"]
    elif target:
        args += ["-j", target]
    return args


def _run(world: World, argv: list[str]) -> tuple[int, str, str]:
    """One command through the CLI, front end only (the nft hand-over is tested in
    test_xt_cli.py; what the nft front end does not model yet would mask these)."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(iptables_cmd, "SYNC_TO_NFT", False):
        rc = run_command(world, argv, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules())
def test_save_round_trip_and_delete(spec: list[str]) -> None:
    world = World()
    rc, _, err = _run(world, ["iptables", "-A", "FORWARD"] + spec)
    # the kernel refuses some valid-looking rules (negated any-address, tcp-reset without
    # -p tcp): EINVAL, exit 4, nothing added
    assume(rc != 4)
    assert rc == 0, err
    _, saved, _ = _run(world, ["iptables", "-S", "FORWARD", "1"])
    line = saved.rstrip("\n")
    assert line.startswith("-A FORWARD")
    # re-adding the saved form gives the same saved form (iptables-save | iptables-restore)
    world2 = World()
    assert _run(world2, ["iptables"] + shlex.split(line))[0] == 0
    assert _run(world2, ["iptables", "-S", "FORWARD", "1"])[1] == saved
    # the saved specification deletes the rule
    assert _run(world, ["iptables", "-D", "FORWARD"] + shlex.split(line)[2:])[0] == 0
    assert state_of(world.init_net, Family.IPV4).tables["filter"].chains["FORWARD"].rules == []


_TOKENS = ["-A", "INPUT", "-I", "-D", "-N", "-X", "-P", "DROP", "-p", "tcp", "udp", "!", "-s",
           "1.2.3.4", "300.1.1.1", "-j", "ACCEPT", "--dport", "22", "-m", "mark", "--mark",
           "0x1/0xff", "multiport", "--dports", "1,2", "-t", "nat", "MASQUERADE",
           "--to-ports", "-c", "1", "--comment", "comment", "LOG", "--log-level", "x", "", "-",
           "--", "-L", "-S", "5", "-E", "FOO", "-g", "--icmp-type", "icmp", "any", "-f"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=12),
       st.sampled_from(["iptables-translate", "ip6tables-translate"]))
def test_translate_never_raises(argv: list[str], prog: str) -> None:
    out, err, rc = translate_main(prog, argv)
    assert rc in (0, 1, 2)
    assert (rc == 2) == (out == "")
    if rc == 2:
        assert err.endswith(f"Try `{prog} -h' or '{prog} --help' for more information.\n")


@given(_addr)
def test_address_masking(text: str) -> None:
    (net,) = parse_addresses(text, False)  # type: ignore[misc]
    prefix = int(text.rsplit("/", 1)[1])
    assert net.cidr() == prefix
    assert net.addr & ~net.mask & 0xFFFFFFFF == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules())
def test_random_rules_translate_like_debian(spec: list[str]) -> None:
    if shutil.which("iptables-translate") is None:
        return
    argv = ["iptables-translate", "-A", "FORWARD"] + spec
    p = subprocess.run(argv, capture_output=True, text=True,
                       env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "")})
    assert translate_main(argv[0], argv[1:]) == (p.stdout, p.stderr, p.returncode)


def _live_ok() -> bool:
    return os.geteuid() == 0 and shutil.which("iptables") is not None and \
        shutil.which("ip") is not None


@pytest.fixture(scope="module")
def live_ns() -> Iterator[str]:
    ns = f"nsxtp{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)


@pytest.mark.skipif(not _live_ok(), reason="needs root, ip and iptables-nft")
@settings(max_examples=12, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rules(), st.sampled_from(["FORWARD", "INPUT", "OUTPUT"]))
def test_random_rules_against_kernel(live_ns: str, spec: list[str], chain: str) -> None:
    """Differential against iptables-nft and the kernel: the append (including the
    kernel's refusals), -S and the -L variants print the same."""
    def real(argv: list[str]) -> tuple[int, str, str]:
        p = subprocess.run(["ip", "netns", "exec", live_ns] + argv, capture_output=True,
                           text=True, env={"LC_ALL": "C", "PATH": os.environ["PATH"]})
        return p.returncode, p.stdout, p.stderr
    world = World()
    real(["iptables", "-F"])
    for argv in (["iptables", "-A", chain] + spec, ["iptables", "-S", chain],
                 ["iptables", "-L", chain, "-n", "-v", "--line-numbers"],
                 ["iptables", "-L", chain, "-v", "-x"]):
        assert _run(world, argv) == real(argv), argv
