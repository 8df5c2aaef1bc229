"""MLD against Linux: link up (DAD running, then done), ``ip -6 addr add`` and
``ip -6 addr del`` on one end of a veth pair, every MLD frame captured with AF_PACKET on
the peer (the harness's MLD noise filter is not used here).  The frames must be
byte-identical and in the same order; every gap must lie within the kernel's bound."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from netstack.ipv6.addr import a6
from netstack.ipv6.addrconf import inet6_del_addr

from .helpers import addr, pair, world

MAC_A = bytes.fromhex("02000000000a")
MAC_B = bytes.fromhex("02000000000b")
PFX = f"MLD{os.getpid()}"

_CAP = r"""
import json, socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0)); s.settimeout(0.1)
print("ready", flush=True)
t0 = time.monotonic(); out = []
while time.monotonic() - t0 < float(sys.argv[2]):
    try:
        d = s.recv(65535)
    except socket.timeout:
        continue
    out.append((time.monotonic(), d.hex()))
print(json.dumps(out), flush=True)
"""


def _is_mld(f: bytes) -> bool:
    return f[6:12] == MAC_A and f[12:14] == b"\x86\xdd" and f[20] == 0 and f[62] in (131, 132, 143)


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (netns, veth, AF_PACKET)"
    if shutil.which("ip") is None:
        return "needs iproute2's ip"
    r = subprocess.run(["ip", "netns", "add", PFX + "p"], capture_output=True, text=True)
    if r.returncode:
        return f"ip netns add failed: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", PFX + "p"], capture_output=True)
    return None


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def _kernel() -> tuple[list[tuple[float, bytes]], list[float]]:
    na, nb = PFX + "a", PFX + "b"
    _sh("ip", "netns", "add", na)
    _sh("ip", "netns", "add", nb)
    try:
        _sh("ip", "link", "add", "mldk0", "type", "veth", "peer", "name", "mldk1")
        _sh("ip", "link", "set", "mldk0", "netns", na, "address", "02:00:00:00:00:0a")
        _sh("ip", "link", "set", "mldk1", "netns", nb, "address", "02:00:00:00:00:0b")
        _sh("ip", "-n", nb, "link", "set", "mldk1", "up")
        cap = subprocess.Popen(["ip", "netns", "exec", nb, sys.executable, "-c", _CAP,
                                "mldk1", "8.5"], stdout=subprocess.PIPE, text=True)
        assert cap.stdout is not None and cap.stdout.readline().strip() == "ready"
        marks = [time.monotonic()]
        _sh("ip", "-n", na, "link", "set", "mldk0", "up")
        time.sleep(4.0)
        marks.append(time.monotonic())
        _sh("ip", "-n", na, "addr", "add", "2001:db8::1/64", "dev", "mldk0")
        time.sleep(2.0)
        marks.append(time.monotonic())
        _sh("ip", "-n", na, "addr", "del", "2001:db8::1/64", "dev", "mldk0")
        out = json.loads(cap.stdout.readline())
        cap.wait()
    finally:
        subprocess.run(["ip", "netns", "del", na], capture_output=True)
        subprocess.run(["ip", "netns", "del", nb], capture_output=True)
    frames = [(t, bytes.fromhex(h)) for t, h in out]
    return [(t, f) for t, f in frames if _is_mld(f)], marks


def _netstack() -> tuple[list[tuple[float, bytes]], list[float]]:
    w = world()
    a, da, b, db = pair(w, "a", "mldk0", "b", "mldk1", mac_a=MAC_A, mac_b=MAC_B, up=False)
    b.dev_open(b.get("lo"))
    b.dev_open(db)
    got: list[tuple[float, bytes]] = []
    b.add_rx_tap(db, lambda p: got.append((w.clock.now / 1e9,
                                           bytes(p.buf[p.mac_header:p.tail]))))
    marks = [w.clock.now / 1e9]
    a.dev_open(a.get("lo"))
    a.dev_open(da)
    w.advance(4.0)
    marks.append(w.clock.now / 1e9)
    addr(a, da, "2001:db8::1/64", nodad=False)
    w.advance(2.0)
    marks.append(w.clock.now / 1e9)
    inet6_del_addr(a, da, a6("2001:db8::1"), 64)
    w.advance(2.5)
    return [(t, f) for t, f in got if _is_mld(f)], marks


def _phases(frames, marks) -> list[list[tuple[float, bytes]]]:
    out: list[list[tuple[float, bytes]]] = [[], [], []]
    for t, f in frames:
        i = 0 if t < marks[1] else 1 if t < marks[2] else 2
        out[i].append((t - marks[i], f))
    return out


def test_mld_against_kernel() -> None:
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    k = _phases(*_kernel())
    n = _phases(*_netstack())
    for kp, np_ in zip(k, n):
        assert [f.hex() for _, f in np_] == [f.hex() for _, f in kp]
    # delay bounds: each repetition comes within mldv2_unsolicited_report_interval
    # (1 s, + 2 jiffies; the kernel's work queue adds a little): link up = 2 reports
    # during DAD, 2 after it; add/del = 2 reports each, the first one at once
    for ph in (k, n):
        assert len(ph[0]) == 4 and len(ph[1]) == 2 and len(ph[2]) == 2
        for a_, b_ in ((ph[0][0], ph[0][1]), (ph[0][2], ph[0][3]), (ph[1][0], ph[1][1]),
                       (ph[2][0], ph[2][1])):
            assert 0 < b_[0] - a_[0] <= 1.05
        assert ph[1][0][0] < 0.1 and ph[2][0][0] < 0.1
