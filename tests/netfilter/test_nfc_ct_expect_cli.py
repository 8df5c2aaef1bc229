"""``conntrack -G/-D/-I/-U expect`` against the real conntrack 1.4.7 on this kernel.

Kernel side: a scratch namespace, an FTP control connection over loopback with the ``ftp``
helper (``nft ct helper``) whose ``PORT`` leaves one expectation; then the command sequence.
netstack side: the same master (``conntrack -I`` + the ftp helper) and the expectation the
helper would have made (``nf_ct_expect_init`` as nf_conntrack_ftp does), then the same
sequence.  Exit status, stdout and stderr must be equal; the timeout column may differ by
one second (the kernel's clock moves between commands, netstack's does not)."""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Ctx
from netstack.cli.scenario import dispatch
from netstack.core.world import World
from netstack.errors import NotSupported
from netstack.netfilter import conntrack as nfct
from netstack.netfilter import conntrack_expect as cte
from netstack.netfilter.conntrack_helper import helper_lookup, nf_ct_helper_ext_add
from test_nfa_ct_cli_kernel import conntrack_runs

LO = "127.0.0.1"
M = f"-p tcp -s {LO} -d {LO}"
R = "--reply-port-src 1 --reply-port-dst 2"
T = (f"--tuple-src {LO} --tuple-dst {LO} --mask-src 255.255.255.255 "
     "--mask-dst 255.255.255.255 --mask-port-src 0 --mask-port-dst 65535")
SEQ = [
    "-L expect",
    "-G expect",                                                  # --src first
    f"-G expect {M} --sport 20 --dport 40001",                    # reply ports compulsory
    f"-G expect -s {LO} -d {LO}",                                 # --protonum
    f"-G expect {M} --sport 20 --dport 40001 {R}",                # found (source port masked)
    f"-G expect {M} --sport 0 --dport 40001 {R} -r {LO} -q {LO}",
    f"-G expect {M} --sport 20 --dport 40009 {R}",                # not found
    f"-G expect -p udp -s {LO} -d {LO} --sport 20 --dport 40001 {R}",
    f"-G expect -p icmp -s {LO} -d {LO}",
    f"-G expect -f ipv4 {M} --sport 20 --dport 40001 {R}",        # illegal options
    f"-G expect {M} --sport 20 --dport 40001 {R} -t 5",
    f"-G expect {M} --sport 20 --dport 40001 {R} -o extended",
    f"-G expect {M} --sport 20 --dport 40001 {R} -m 1",
    f"-G expect -p tcp -s {LO} -d ::1 --sport 1 --dport 2 {R}",
    f"-D expect {M} --sport 20 --dport 40009 {R}",
    f"-D expect {M} --sport 7 --dport 1600 {R} -u ASSURED",
    "-U expect",
    f"-U expect {M} --sport 0 --dport 40001 -t 50",
    "-I expect",
    f"-I expect {M} --sport 40000 --dport 21",                    # --timeout
    f"-I expect {M} --sport 40000 --dport 21 -t 100",             # --tuple-src
    f"-I expect {M} --sport 40000 --dport 21 -t 100 --tuple-src {LO} --tuple-dst {LO} "
    "--mask-src 255.255.255.255 --mask-dst 255.255.255.255",      # --mask-port-src
    f"-I expect {M} --sport 40000 --dport 21 -t 100 {T}",         # --tuple-port-src
    f"-I expect {M} --sport 40000 --dport 21 -t 100 {T} -u PERMANENT",
    f"-I expect {M} --sport 40000 --dport 21 -t 100 {T} --tuple-port-src 0 "
    "--tuple-port-dst 40001",                     # proto 156 (sic): evicts the ftp one
    f"-D expect {M} --sport 20 --dport 40001 {R}",                # gone
    "-L expect",
    f"-D expect -p 156 -s {LO} -d {LO}",                          # deleted: "0 … shown"
    # 1.4.7's TCP extension: protocol = high byte of the last tuple port
    f"-I expect {M} --sport 40000 --dport 21 -t 100 {T} --tuple-port-dst 1600 "
    "--tuple-port-src 7",                                         # proto 0, no ports
    "-L expect",
    f"-I expect {M} --sport 40000 --dport 21 -t 100 {T} --tuple-port-src 7 "
    "--tuple-port-dst 1600",                                      # proto 6: evicts (max 1)
    "-L expect",
    f"-G expect {M} --sport 7 --dport 1600 {R}",
    f"-I expect {M} --sport 40000 --dport 21 -t 100 {T} --tuple-port-src 7 "
    "--tuple-port-dst 300",                                       # proto 1: EINVAL
    f"-I expect {M} --sport 40000 --dport 21 -t 100 {T} --tuple-port-src 7 "
    "--tuple-port-dst 4400",                                      # proto 17
    "-L expect",
    f"-I expect {M} --sport 40001 --dport 21 -t 100 {T} --tuple-port-src 7 "
    "--tuple-port-dst 4500",                                      # no such master
    f"-I expect {M} --sport 21 --dport 40000 -t 100 {T} --tuple-port-src 7 "
    "--tuple-port-dst 5000",                                      # master by reply tuple
    "-L expect",
    f"-G expect -p 19 -s {LO} -d {LO}",
    f"-D expect -p 156 -s {LO} -d {LO}",
    "-I -p udp -s 127.0.0.5 -d 127.0.0.6 --sport 7 --dport 8 -t 100",
    f"-I expect -p udp -s 127.0.0.5 -d 127.0.0.6 --sport 7 --dport 8 -t 100 {T} "
    "--tuple-port-src 0 --tuple-port-dst 9",                      # master without helper
    f"-I expect -p udp -s {LO} -d {LO} --sport 40000 --dport 21 -t 100 --tuple-src {LO} "
    f"--tuple-dst {LO} --mask-src 255.255.255.255 --mask-dst 255.255.255.255 "
    "--tuple-port-src 7 --tuple-port-dst 300",
    f"-I expect -p icmp -s {LO} -d {LO} -t 100 --tuple-src {LO} --tuple-dst {LO} "
    "--mask-src 255.255.255.255 --mask-dst 255.255.255.255",
    "-L --tuple-src 1.2.3.4",
    f"-D expect -p 19 -s {LO} -d {LO}",
    "-L expect",
]

KERNEL_SETUP = textwrap.dedent("""\
    import socket, subprocess, sys, time
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 21)); s.listen()
    c = socket.socket(); c.bind(("127.0.0.1", 40000)); c.connect(("127.0.0.1", 21))
    a, _ = s.accept()
    for snd, rcv, text in ((a, c, b"220 hi"), (c, a, b"USER a"), (a, c, b"331 ok"),
                           (c, a, b"PORT 127,0,0,1,156,65"), (a, c, b"200 ok")):
        snd.send(text + b"\\r\\n"); rcv.recv(100)
    time.sleep(0.1)
    print("ready", flush=True)
    sys.stdin.readline()
""")
NFT = """table ip t {
  ct helper ftp-std { type "ftp" protocol tcp; }
  chain out { type filter hook output priority 0; tcp dport 21 ct helper set "ftp-std"; }
}
"""
_NUM = re.compile(r"^(\d+)( proto=.*)$")


def _norm(out: str) -> list[tuple[str, int]]:
    rows = []
    for ln in out.splitlines():
        m = _NUM.match(ln)
        rows.append(("T" + m.group(2), int(m.group(1))) if m else (ln, 0))
    return rows


def _kernel_runs() -> list[tuple[int, str, str]]:
    if os.geteuid() != 0 or shutil.which("conntrack") is None or shutil.which("nft") is None:
        pytest.skip("needs root, conntrack-tools and nft")
    ns = f"nfc-ctexp-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode:
        pytest.skip("cannot create a network namespace")
    proc = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        r = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=NFT,
                           capture_output=True, text=True)
        if r.returncode:
            pytest.skip(f"nft ct helper ftp unavailable: {r.stderr.strip()}")
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                 KERNEL_SETUP], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return conntrack_runs(ns, SEQ)
    finally:
        if proc is not None:
            proc.communicate("\n", timeout=10)
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _netstack_world() -> tuple[World, object]:
    """The kernel side's state: the ftp master (ESTABLISHED, helper ftp) and the
    expectation its PORT 127,0,0,1,156,65 left (nf_conntrack_ftp: any source port from
    the server's address to 40001)."""
    w = World(subsystems=[])
    net = w.netns_add("c")
    nfct.ct_sysctl_init(net)
    _cli(w, net, f"-I {M} --sport 40000 --dport 21 --state ESTABLISHED -t 432000 -u ASSURED")
    cn = nfct.ct_net(net)
    master = nfct.nf_ct_iterate(net)[0]
    ftp = helper_lookup("ftp", 2, 6)
    assert ftp is not None
    nf_ct_helper_ext_add(master, ftp)      # what the nft ct helper did before confirmation
    master.status |= nfct.IPS_HELPER
    t = master.tuplehash[1]
    exp = cte.nf_ct_expect_init(master, 0, 2, t.src, t.dst, 6, None, 40001)
    assert cte.nf_ct_expect_related(exp) == 0
    assert cn.expect.count == 1
    return w, net


def _cli(w: World, net, args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        rc = dispatch(Ctx(w, net, out, err), ["conntrack", *args.split()])
    except ToolError as e:
        out.write(e.stdout)
        err.write(e.stderr)
        rc = e.exit_code
    return rc, out.getvalue(), err.getvalue()


def _netstack_runs() -> list[tuple[int, str, str]]:
    w, net = _netstack_world()
    return [_cli(w, net, c) for c in SEQ]


def _compare(k: list, n: list) -> None:
    for cmd, (krc, kout, kerr), (nrc, nout, nerr) in zip(SEQ, k, n):
        assert (krc, kerr) == (nrc, nerr), (cmd, kerr, nerr)
        kr, nr = _norm(kout), _norm(nout)
        assert [a for a, _ in kr] == [a for a, _ in nr], (cmd, kout, nout)
        assert all(abs(a - b) <= 1 for (_, a), (_, b) in zip(kr, nr)), (cmd, kout, nout)


def test_expect_get_delete_create_update_match_conntrack_tools():
    k = _kernel_runs()
    _compare(k, _netstack_runs())
    print(f"{len(SEQ)} conntrack expect invocations identical", file=sys.stderr)


def test_expect_sequence_as_measured_without_root():
    """The measured behaviour pinned without the kernel (the differential test above is
    the authority; these are its key lines on Linux 6.18 / 1.4.7)."""
    n: dict[str, tuple[int, str, str]] = {}
    for c, r in zip(SEQ, _netstack_runs()):
        n.setdefault(c, r)                 # a command's first run
    p = "conntrack v1.4.7 (conntrack-tools): "
    assert n["-U expect"] == (2, "", p + "Can't do --update on expectations\nTry "
                              "`conntrack -h' or 'conntrack --help' for more information.\n")
    assert n[f"-G expect {M} --sport 20 --dport 40001"][2].startswith(
        p + "You need to supply the `--reply-port-src' option")
    assert n[f"-G expect {M} --sport 20 --dport 40001 {R}"][1].startswith(
        "300 proto=6 src=127.0.0.1 dst=127.0.0.1 sport=0 dport=40001 mask-src=255.255.255.255")
    assert n[f"-D expect {M} --sport 20 --dport 40001 {R}"] == \
        (1, "", p + "Operation failed: No such file or directory\n")
    w, net = _netstack_world()
    assert _cli(w, net, f"-D expect {M} --sport 20 --dport 40001 {R}") == \
        (1, "", p + "0 expectations have been shown.\n")
    assert _cli(w, net, "-L expect") == (0, "", p + "0 expectations have been shown.\n")
    assert n[f"-G expect {M} --sport 20 --dport 40009 {R}"] == \
        (1, "", p + "Operation failed: No such file or directory\n")
    w, net = _netstack_world()
    seen: list[str] = []
    nfct.ct_net(net).expect.listeners.append(lambda kind, e: seen.append(kind))
    assert _cli(w, net, f"-I expect {M} --sport 40000 --dport 21 -t 100 {T} "
                "--tuple-port-src 7 --tuple-port-dst 1600")[0] == 0
    rc, out, _ = _cli(w, net, "-L expect")
    assert out.startswith("300 proto=6 src=127.0.0.1 dst=127.0.0.1 sport=7 dport=1600 ")
    assert seen == ["DESTROY", "NEW"]          # the ftp one evicted (max_expected 1)
    assert _cli(w, net, f"-I expect {M} --sport 40000 --dport 21 -t 100 {T} "
                "--tuple-port-src 7 --tuple-port-dst 5000")[0] == 0
    assert _cli(w, net, "-L expect")[1].startswith(
        "300 proto=19 src=127.0.0.1 dst=127.0.0.1 mask-src=255.255.255.255 "
        "mask-dst=255.255.255.255 master-src=")


_WORDS = ["-G", "-D", "-I", "-U", "-L", "expect", "-p", "tcp", "udp", "icmp", "19", "-s", "-d",
          "-r", "-q", LO, "::1", "bogus", "--sport", "--dport", "--reply-port-src",
          "--reply-port-dst", "--tuple-src", "--tuple-dst", "--mask-src", "--mask-dst",
          "--tuple-port-src", "--tuple-port-dst", "--mask-port-src", "--mask-port-dst", "-t",
          "-u", "ASSURED", "-f", "ipv4", "-m", "1", "0", "21", "40000", "40001", "65535",
          "1600", "255.255.255.255", "-o", "extended", "-w", "3", "x7", "-0x10", "08", "99999"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=18) |
       st.builds(lambda c, v: (c + " -p tcp -s 127.0.0.1 -d 127.0.0.1 --sport {0} --dport {0} "
                               "--reply-port-src {0} --reply-port-dst {0} -t {0} "
                               "--tuple-src 127.0.0.1 --tuple-dst 127.0.0.1 --mask-src "
                               "255.255.255.255 --mask-dst 255.255.255.255 --mask-port-src {0} "
                               "--mask-port-dst {0} --tuple-port-src {0} --tuple-port-dst {0}"
                               ).format(v).split(),
                 st.sampled_from(["-G expect", "-D expect", "-I expect", "-L", "-D"]),
                 st.sampled_from(["bogus", "x7", "-3", "08", "0x10", "70000", ""]).map(
                     lambda v: v or "''")))
def test_expect_cli_fuzz_never_crashes(words):
    """Any argument soup gives a tool error, NotSupported or an exit status — never
    another exception — and never breaks the expectation table's bookkeeping."""
    w, net = _netstack_world()
    try:
        rc = _cli(w, net, " ".join(words))[0]
        assert rc in (0, 1, 2)
    except NotSupported:
        pass
    cn = nfct.ct_net(net)
    for e in cte.nf_ct_expect_iterate(cn):
        assert e in e.master.help.expectations
    assert cn.expect.count == sum(len(v) for v in cn.expect.by_dst.values())
