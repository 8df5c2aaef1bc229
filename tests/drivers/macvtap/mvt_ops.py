"""The macvtap differential: one list of operations (open /dev/tapN, ioctls, write,
inject a frame from the veth peer, read, stats, shell lines) run on the real kernel
and on netstack; every operation's result must be equal.

Kernel side: root, a namespace named MVT<pid>…, deleted afterwards; the queues are the
real ``/dev/tapN`` files (N = ifindex), the veth peer v1 is a packet socket."""
from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from kernel.oracle import insert_vlan_tag, vlan_from_auxdata  # noqa: E402

TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUNGETFEATURES = 0x800454CF
TUNSETQUEUE = 0x400454D9
TUNSETVNETBE = 0x400454DE
SIOCGIFHWADDR = 0x8927
SIOCSIFHWADDR = 0x8924

V0 = "02:00:00:00:00:01"
V1 = "02:00:00:00:00:02"
MT = "02:00:00:00:00:10"
MT2 = "02:00:00:00:00:20"

SETUP = """\
ip netns add {n}
ip netns exec {n} sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec {n} sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip -n {n} link add v0 type veth peer name v1
ip -n {n} link set v0 address {v0}
ip -n {n} link set v1 address {v1}
ip -n {n} link add link v0 name mt type macvtap mode {mode}
ip -n {n} link set mt address {mt}
"""
SIBLING = """\
ip -n {n} link add link v0 name mt2 type macvtap mode {mode}
ip -n {n} link set mt2 address {mt2}
"""
UP = """\
ip -n {n} link set v0 up
ip -n {n} link set v1 up
ip -n {n} link set mt up
"""

Op = tuple  # ("open", dev) | ("iff", dev, flags) | ("hdrsz", dev, n) | ("offload", dev, arg)
#            | ("inject", frame) | ("write", dev, bytes) | ("read", dev) | ("stats", dev)
#            | ("sh", line with {n}) | ("captured",) | ("close", dev)


def setup_text(n: str, mode: str, extra: str) -> str:
    """The topology; passthru allows one macvlan per port, so no ``mt2`` then."""
    text = SETUP.format(n=n, mode=mode, v0=V0, v1=V1, mt=MT)
    up = UP.format(n=n)
    if mode != "passthru":
        text += SIBLING.format(n=n, mode=mode, mt2=MT2)
        up += f"ip -n {n} link set mt2 up\n"
    return text + extra.format(n=n) + up


def _stats(js: str) -> tuple[int, int, int, int]:
    s = json.loads(js)[0]["stats64"]
    return (s["rx"]["packets"], s["rx"]["dropped"], s["tx"]["packets"], s["tx"]["dropped"])


def feature_word(text: str, name: str) -> str:
    """``on``/``off`` of feature ``name`` in ``ethtool -k`` output ("" if absent)."""
    for line in text.splitlines():
        if line.strip().startswith(name + ":"):
            return line.split(":", 1)[1].split()[0]
    return ""


# ------------------------------------------------------------------ kernel
def _setns(fd: int) -> None:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def _ioctl(fd: int, req: int, arg: Any) -> int:
    try:
        fcntl.ioctl(fd, req, arg)
        return 0
    except OSError as e:
        return -e.errno


def _read_all(fd: int, quiet: float = 0.05) -> list[bytes]:
    out: list[bytes] = []
    deadline = time.time() + 1.0
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], quiet)
        if not r:
            break
        try:
            out.append(os.read(fd, 70000))
        except BlockingIOError:
            continue
    return out


def run_kernel(ops: list[Op], mode: str = "bridge", extra: str = "") -> list[Any]:
    n = f"MVT{os.getpid()}"
    res: list[Any] = []
    fds: dict[str, int] = {}
    cap: socket.socket | None = None
    try:
        subprocess.run(["bash", "-c", setup_text(n, mode, extra)], check=True,
                       capture_output=True, text=True)
        old = os.open("/proc/self/ns/net", os.O_RDONLY)
        nsfd = os.open(f"/run/netns/{n}", os.O_RDONLY)
        _setns(nsfd)
        os.close(nsfd)
        try:
            cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
            cap.bind(("v1", 0))
            cap.setsockopt(263, 8, 1)  # SOL_PACKET, PACKET_AUXDATA
            cap.setblocking(False)
        finally:
            _setns(old)
            os.close(old)
        time.sleep(0.05)
        _drain_cap(cap)
        for op in ops:
            kind = op[0]
            if kind == "open":
                dev = op[1].split("#")[0]
                with _In(n):
                    ifindex = socket.if_nametoindex(dev)
                fds[op[1]] = _open_chardev(n, dev, ifindex)
                res.append(0)
            elif kind == "close":
                os.close(fds.pop(op[1]))
                res.append(0)
            elif kind == "iff":
                res.append(_ioctl(fds[op[1]], TUNSETIFF, struct.pack("16sH", b"", op[2])))
            elif kind == "hdrsz":
                res.append(_ioctl(fds[op[1]], TUNSETVNETHDRSZ, struct.pack("i", op[2])))
            elif kind == "gethw":
                buf = bytearray(struct.pack("16sH14s", b"", 0, b""))
                r = _ioctl(fds[op[1]], SIOCGIFHWADDR, buf)
                name, fam, data = struct.unpack("16sH14s", buf)
                res.append((r, name.rstrip(b"\0").decode(), fam, data[:6]))
            elif kind == "sethw":
                res.append(_ioctl(fds[op[1]], SIOCSIFHWADDR,
                                  struct.pack("16sH14s", b"", op[3], op[2])))
            elif kind == "vnetbe":
                res.append(_ioctl(fds[op[1]], TUNSETVNETBE, struct.pack("i", op[2])))
            elif kind == "offload":
                res.append(_ioctl(fds[op[1]], TUNSETOFFLOAD, op[2]))
            elif kind == "queue":
                res.append(_ioctl(fds[op[1]], TUNSETQUEUE, struct.pack("16sH", b"", op[2])))
            elif kind == "features":
                buf = bytearray(4)
                fcntl.ioctl(fds[op[1]], TUNGETFEATURES, buf)
                res.append(struct.unpack("I", buf)[0])
            elif kind == "write":
                try:
                    res.append(os.write(fds[op[1]], op[2]))
                except OSError as e:
                    res.append(-e.errno)
            elif kind == "inject":
                with _In(n):
                    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                    s.bind(("v1", 0))
                    s.send(op[1])
                    s.close()
                res.append(0)
            elif kind == "read":
                res.append(_read_all(fds[op[1]]))
            elif kind == "counts":
                res.append(sorted(len(_read_all(fds[k])) for k in op[1]))
            elif kind == "captured":
                time.sleep(0.05)
                res.append(_drain_cap(cap))
            elif kind == "stats":
                time.sleep(0.02)
                p = subprocess.run(["ip", "-n", n, "-s", "-j", "link", "show", op[1]],
                                   capture_output=True, text=True, check=True)
                res.append(_stats(p.stdout))
            elif kind == "sh":
                p = subprocess.run(["bash", "-c", op[1].format(n=n)], capture_output=True,
                                   text=True)
                res.append(p.returncode)
            elif kind == "feature":
                p = subprocess.run(["ip", "netns", "exec", n, "ethtool", "-k", op[1]],
                                   capture_output=True, text=True)
                res.append(feature_word(p.stdout, op[2]))
            elif kind == "show":
                p = subprocess.run(["ip", "-n", n, "-d", "-j", "link", "show", op[1]],
                                   capture_output=True, text=True, check=True)
                res.append(p.stdout)
            else:
                raise ValueError(kind)
        return res
    finally:
        for fd in fds.values():
            os.close(fd)
        if cap is not None:
            cap.close()
        subprocess.run(["ip", "netns", "del", n], capture_output=True)


def _open_chardev(n: str, dev: str, ifindex: int) -> int:  # noqa: D401
    """Open the device's tap character device through a private node made from its
    major:minor (``/sys/class/net/DEV/macvtap/tapN/dev`` seen inside the namespace): the
    ``/dev/tapN`` name is per-ifindex and may belong to another namespace's device."""
    p = subprocess.run(["ip", "netns", "exec", n, "cat",
                        f"/sys/class/net/{dev}/macvtap/tap{ifindex}/dev"],
                       capture_output=True, text=True, check=True)
    major, minor = (int(x) for x in p.stdout.split(":"))
    path = f"/tmp/{n}-{dev}"
    if os.path.exists(path):
        os.unlink(path)
    os.mknod(path, 0o600 | 0o020000, os.makedev(major, minor))
    try:
        return os.open(path, os.O_RDWR | os.O_NONBLOCK)
    finally:
        os.unlink(path)


class _In:
    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        self.old = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        _setns(fd)
        os.close(fd)

    def __exit__(self, *a: Any) -> None:
        _setns(self.old)
        os.close(self.old)


def _drain_cap(cap: socket.socket) -> list[bytes]:
    out: list[bytes] = []
    while True:
        r, _, _ = select.select([cap], [], [], 0.05)
        if not r:
            return out
        data, anc, _flags, addr = cap.recvmsg(70000, 1024)
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        tag = vlan_from_auxdata(anc)  # the receive path took the tag out of band
        out.append(insert_vlan_tag(data, *tag) if tag else data)


# ----------------------------------------------------------------- netstack
def run_netstack(ops: list[Op], mode: str = "bridge", extra: str = "") -> list[Any]:
    from netstack.cli.scenario import run_script
    from netstack.core.dev import dev_queue_xmit
    from netstack.core.world import World
    from netstack.drivers.tap_queue import tap_chardev_open
    from netstack.errors import KernelError

    world = World()
    n = "MVTns"
    run_script(world, setup_text(n, mode, extra), stdout=io.StringIO(), stderr=io.StringIO())
    net = world.netns(n)
    world.run_until_idle()
    captured: list[bytes] = []
    v1 = net.get("v1")
    net.add_rx_tap(v1, lambda p: captured.append(bytes(p.buf[p.mac_header:p.tail])))
    qs: dict[str, Any] = {}
    res: list[Any] = []

    def call(fn: Any, *a: Any) -> int:
        try:
            fn(*a)
            return 0
        except KernelError as e:
            return -e.errno

    for op in ops:
        kind = op[0]
        if kind == "open":
            qs[op[1]] = tap_chardev_open(net, f"/dev/tap{net.get(op[1].split('#')[0]).ifindex}")
            res.append(0)
        elif kind == "close":
            qs.pop(op[1]).close()
            res.append(0)
        elif kind == "iff":
            res.append(call(qs[op[1]].set_iff, op[2]))
        elif kind == "hdrsz":
            res.append(call(qs[op[1]].set_vnet_hdr_sz, op[2]))
        elif kind == "gethw":
            try:
                res.append((0,) + qs[op[1]].get_hwaddr())
            except KernelError as e:
                res.append((-e.errno, "", 0, bytes(6)))
        elif kind == "sethw":
            res.append(call(qs[op[1]].set_hwaddr, op[2], op[3]))
        elif kind == "vnetbe":
            res.append(call(qs[op[1]].set_vnet_be, bool(op[2])))
        elif kind == "offload":
            res.append(call(qs[op[1]].set_offload, op[2]))
        elif kind == "queue":
            res.append(call(qs[op[1]].set_queue, op[2]))
        elif kind == "features":
            res.append(qs[op[1]].get_features())
        elif kind == "write":
            res.append(qs[op[1]].write(op[2]))
            world.run_until_idle()
        elif kind == "inject":
            pkt = world.new_packet(op[1])
            dev_queue_xmit(pkt, v1)
            world.run_until_idle()
            res.append(0)
        elif kind == "read":
            world.run_until_idle()
            got: list[bytes] = []
            q = qs[op[1]]
            while True:
                try:
                    b = q.read(70000)
                except KernelError:
                    continue
                if b is None:
                    break
                got.append(b)
            res.append(got)
        elif kind == "counts":
            world.run_until_idle()
            res.append(sorted(_drain_ns(qs[k]) for k in op[1]))
        elif kind == "captured":
            world.run_until_idle()
            res.append(list(captured))
            captured.clear()
        elif kind == "stats":
            out = io.StringIO()
            run_script(world, f"ip -n {n} -s -j link show {op[1]}", stdout=out,
                       stderr=io.StringIO())
            res.append(_stats(out.getvalue()))
        elif kind == "sh":
            try:
                run_script(world, op[1].format(n=n), stdout=io.StringIO(),
                           stderr=io.StringIO())
                res.append(0)
            except Exception:  # noqa: BLE001 - the scenario's exit status is the result
                res.append(1)
        elif kind == "feature":
            out = io.StringIO()
            run_script(world, f"ip netns exec {n} ethtool -k {op[1]}", stdout=out,
                       stderr=io.StringIO())
            res.append(feature_word(out.getvalue(), op[2]))
        elif kind == "show":
            out = io.StringIO()
            run_script(world, f"ip -n {n} -d -j link show {op[1]}", stdout=out,
                       stderr=io.StringIO())
            res.append(out.getvalue())
        else:
            raise ValueError(kind)
    return res


def _drain_ns(q: Any) -> int:
    n = 0
    while q.read(70000) is not None:
        n += 1
    return n


__all__ = ["run_kernel", "run_netstack", "V0", "V1", "MT", "MT2", "errno"]
