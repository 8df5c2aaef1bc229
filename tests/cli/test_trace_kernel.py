"""Differential: netstack's ``nft_trace_packet`` events against ``nft -a monitor trace``
on the running kernel, for one ruleset (jump, reject, return, accept, drop policy).

The kernel side builds two namespaces, marks packets with ``meta nftrace set 1`` in a
raw prerouting chain and sends UDP datagrams with bash's ``/dev/udp``; the netstack
side runs the same setup lines and injects the same datagrams.  Compared: for every
datagram, the rule/policy lines of the ``in`` and ``udpchk`` chains, text, handle and
verdict included (the kernel's ``trace id …`` prefix removed).  Skips, saying why,
when not root or without ``ip``/``nft``/``bash``."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time

import pytest

from netstack.cli.run import RunOptions, parse_endpoint, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples"))
from examplelib.framegen import ETH_P_IP, eth, udp4, write_pcap  # noqa: E402

PORTS = (9, 8, 7, 6)
TAG = f"TRACEk{os.getpid()}"


def _setup(a: str, r: str) -> str:
    nft = f"ip netns exec {r} nft"
    return f"""\
ip netns add {a}
ip netns add {r}
ip -n {a} link add eth0 address 02:00:00:00:00:0a type veth peer name lan address 02:00:00:00:00:fe netns {r}
ip -n {a} addr add 10.1.0.1/24 dev eth0
ip -n {r} addr add 10.1.0.254/24 dev lan
ip -n {a} link set eth0 up
ip -n {r} link set lan up
{nft} add table ip filter
{nft} add chain ip filter pre '{{ type filter hook prerouting priority -300; policy accept; }}'
{nft} add rule ip filter pre meta nftrace set 1
{nft} add chain ip filter udpchk
{nft} add rule ip filter udpchk udp dport 9 reject
{nft} add rule ip filter udpchk udp dport 8 return
{nft} add rule ip filter udpchk udp dport 7 accept
{nft} add chain ip filter in '{{ type filter hook input priority 0; policy drop; }}'
{nft} add rule ip filter in meta l4proto udp jump udpchk
"""


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "kernel differential needs root (netns)"
    for tool in ("ip", "nft", "bash"):
        if shutil.which(tool) is None:
            return f"kernel differential needs {tool!r}"
    return None


def _wanted(line: str) -> bool:
    return (" filter in " in f" {line} " or " filter udpchk " in f" {line} ") and (
        " rule " in line or " policy " in line)


def _kernel() -> list[list[str]]:
    a, r = f"{TAG}a", f"{TAG}r"
    mon = None
    try:
        subprocess.run(["bash", "-e", "-c", _setup(a, r)], check=True, timeout=30,
                       capture_output=True)
        mon = subprocess.Popen(["ip", "netns", "exec", r, "nft", "-a", "monitor", "trace"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(0.5)
        for port in PORTS:
            subprocess.run(["ip", "netns", "exec", a, "bash", "-c",
                            f"echo x > /dev/udp/10.1.0.254/{port}"], timeout=10,
                           capture_output=True)
            time.sleep(0.2)
        time.sleep(0.3)
        mon.terminate()
        out, _ = mon.communicate(timeout=10)
    finally:
        if mon is not None and mon.poll() is None:
            mon.kill()
        for ns in (a, r):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
    by_id: dict[str, list[str]] = {}
    for ln in out.splitlines():
        parts = ln.split(" ", 3)
        if len(parts) == 4 and parts[0] == "trace" and _wanted(parts[3]):
            by_id.setdefault(parts[2], []).append(parts[3].strip())
    return list(by_id.values())


def _netstack(tmp_path) -> list[list[str]]:  # type: ignore[no-untyped-def]
    (tmp_path / "setup.sh").write_text(_setup("a", "r"))
    t0 = 1_000_000_000
    write_pcap(str(tmp_path / "a.pcap"), [
        (t0 + i * 1_000_000, eth("02:00:00:00:00:fe", "02:00:00:00:00:0a", ETH_P_IP,
                                 udp4("10.1.0.1", "10.1.0.254", 40000 + i, port, b"x\n",
                                      ident=i + 1)))
        for i, port in enumerate(PORTS)])
    out, err = io.StringIO(), io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:eth0=a.pcap", "--inject")], [], None,
                      trace=True, quiet=True)
    assert run(opts, out, err, cwd=str(tmp_path)) == 0, err.getvalue()
    by_pkt: dict[str, list[str]] = {}
    for ln in err.getvalue().splitlines():
        if " nft_trace_packet " not in ln:
            continue
        pid = ln.split("#", 1)[1].split()[0]
        text = ln.split(" nft_trace_packet ", 1)[1]
        if text.split()[0] in ("accept", "drop"):       # the record's verdict column
            text = text.split(" ", 1)[1]
        if _wanted(text):
            by_pkt.setdefault(pid, []).append(text)
    return list(by_pkt.values())


def test_nft_trace_matches_kernel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    why = _why_not()
    if why:
        pytest.skip(why)
    try:
        kern = _kernel()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        pytest.skip(f"kernel scenario could not run: {e}")
    ours = _netstack(tmp_path)
    assert len(kern) == len(PORTS), kern
    assert ours == kern
