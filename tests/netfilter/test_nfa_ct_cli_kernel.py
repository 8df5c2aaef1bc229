"""``conntrack -I/-G/-U`` (and ``-L expect``) against the real conntrack 1.4.7 on this kernel:
the same command sequence runs in a scratch namespace and in netstack; exit status, stdout
and stderr are compared, the timeout column allowed to differ by one second (the kernel's
clock moves between commands, netstack's does not)."""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys

import pytest

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Ctx
from netstack.cli.scenario import dispatch
from netstack.core.world import World
from netstack.netfilter import conntrack as nfct

U = "-p udp -s 10.0.0.1 -d 10.0.0.2 --dport 2000"
SEQ = [
    f"-I {U} --sport 1000 -t 100",
    f"-I {U} --sport 1000 -t 100",            # exists
    f"-I {U} --sport 1001",                   # no timeout
    "-I -s 10.0.0.1 -d 10.0.0.2 -t 50",       # no protocol
    "-I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 1004 --dport 80 -t 50",  # no state
    "-I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 1003 --dport 80 -t 50 --state ESTABLISHED",
    "-I -p udp -s 10.0.0.1 --sport 1 --dport 2 -t 50",                  # no dst
    f"-I {U} --sport 1002 -t 50 -m 5",
    f"-I {U} --sport 1005 -t 50 -m 3/1",
    f"-I {U} --sport 1006 -t 50 -u ASSURED,SEEN_REPLY",
    f"-I {U} --sport 1007 -t 50 -w 3",
    "-I -p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 5 -t 10",
    f"-I -f ipv6 {U} --sport 1 -t 10",
    "-I -p udp -s 2001:db8::1 -d 2001:db8::2 --sport 5 --dport 6 -t 40",
    f"-G {U} --sport 1000",
    f"-G {U} --sport 1999",
    "-G -p udp -s 10.0.0.1 -d 10.0.0.2",
    "-G -p udp -s 10.0.0.2 -d 10.0.0.1 --sport 2000 --dport 1000",     # the reply tuple
    "-G -p udp -r 10.0.0.2 -q 10.0.0.1 --reply-port-src 2000 --reply-port-dst 2",
    f"-G {U} --sport 1000 -o extended",
    "-G -p udp -s 2001:db8::1 -d 2001:db8::2 --sport 5 --dport 6",
    "-G",
    f"-U {U} --sport 1000 -m 42",
    f"-U {U} --sport 1000 -m 42",             # unchanged
    f"-U {U} --sport 1002 -m 43/0xf0",
    f"-U {U} --sport 1000 -t 200",
    f"-U {U} --sport 1000 -u ASSURED",
    f"-U {U} --sport 1005 -u UNSET",
    f"-U {U} --sport 77 -m 9",
    "-U -p udp -s 10.0.0.2 -d 10.0.0.1 --sport 2000 --dport 1000 -m 44",
    f"-U {U} --sport 1006 -t 0",
    f"-G {U} --sport 1006",
    "-U",
    "-L",
    "-L -f ipv6",
    "-L expect",
]

_NUM = re.compile(r"^((?:\S+\s+\d+ )?\S+\s+\d+ )(\d+)( .*)$")


def _norm(out: str) -> list[tuple[str, int]]:
    rows = []
    for ln in out.splitlines():
        m = _NUM.match(ln)
        rows.append((m.group(1) + "T" + m.group(3), int(m.group(2))) if m else (ln, 0))
    return sorted(rows)


def _kernel_runs() -> list[tuple[int, str, str]]:
    if os.geteuid() != 0 or shutil.which("conntrack") is None or shutil.which("ip") is None:
        pytest.skip("needs root and conntrack-tools")
    ns = f"nfa-ctcli-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        return conntrack_runs(ns, SEQ)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def conntrack_runs(ns: str, seq: list[str]) -> list[tuple[int, str, str]]:
    """Run each ``conntrack`` command line of ``seq`` in kernel namespace ``ns``:
    (exit code, stdout, stderr) per command, for comparison with netstack's tool."""
    out = []
    for c in seq:
        r = subprocess.run(["ip", "netns", "exec", ns, "conntrack", *c.split()],
                           capture_output=True, text=True, timeout=20)
        out.append((r.returncode, r.stdout, r.stderr))
    return out


def _netstack_runs() -> list[tuple[int, str, str]]:
    w = World(subsystems=[])
    net = w.netns_add("c")
    nfct.ct_sysctl_init(net)
    res = []
    for c in SEQ:
        out, err = io.StringIO(), io.StringIO()
        ctx = Ctx(w, net, out, err)
        try:
            rc = dispatch(ctx, ["conntrack", *c.split()])
        except ToolError as e:
            out.write(e.stdout)
            err.write(e.stderr)
            rc = e.exit_code
        res.append((rc, out.getvalue(), err.getvalue()))
    return res


def test_get_create_update_match_conntrack_tools():
    k = _kernel_runs()
    n = _netstack_runs()
    for cmd, (krc, kout, kerr), (nrc, nout, nerr) in zip(SEQ, k, n):
        assert (krc, kerr) == (nrc, nerr), (cmd, kerr, nerr)
        kr, nr = _norm(kout), _norm(nout)
        assert [a for a, _ in kr] == [a for a, _ in nr], (cmd, kout, nout)
        assert all(abs(a - b) <= 1 for (_, a), (_, b) in zip(kr, nr)), (cmd, kout, nout)
    print(f"{len(SEQ)} conntrack invocations identical", file=sys.stderr)


def test_create_update_delete_deliver_events():
    w = World(subsystems=[])
    net = w.netns_add("c")
    nfct.ct_sysctl_init(net)

    def cli(args: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        rc = dispatch(Ctx(w, net, out, err), ["conntrack", *args.split()])
        return rc, out.getvalue()
    rc, _ = cli("-E")
    seen: list[str] = []
    nfct.ct_net(net).listeners.append(lambda kind, ct: seen.append(kind))
    assert cli(f"-I {U} --sport 5 -t 30 -m 1")[0] == 0
    assert cli(f"-U {U} --sport 5 -m 2")[0] == 0
    assert cli(f"-U {U} --sport 5 -t 0")[0] == 1
    assert seen == ["NEW", "UPDATE", "DESTROY"]
    assert cli("-C")[1] == "0\n"
