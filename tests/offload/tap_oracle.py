"""Kernel side of the tap/vnet_hdr differential: a router namespace with two taps (fds
opened here with IFF_VNET_HDR) and a veth, frames written into tap0, what comes out of
tap1 (with its virtio header) and what a packet socket on the veth peer sees.

Run as root on Linux; every namespace is named OFF<pid>… and deleted afterwards."""
from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import subprocess
import time
from typing import Any

TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000

TAP0_MAC = "02:00:00:00:01:01"
TAP1_MAC = "02:00:00:00:03:01"
GUEST0_MAC = "02:00:00:00:01:02"
GUEST1_MAC = "02:00:00:00:03:02"
VA_MAC = "02:00:00:00:02:01"
VB_MAC = "02:00:00:00:02:02"

#: The setup, shared by both sides (valid bash on the kernel, a netstack scenario too).
SETUP = """\
ip netns add {r}
ip netns add {h}
ip netns exec {r} sysctl -qw net.ipv4.ip_forward=1
ip netns exec {r} sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec {r} sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns exec {h} sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec {h} sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip -n {r} tuntap add dev tap0 mode tap vnet_hdr
ip -n {r} tuntap add dev tap1 mode tap vnet_hdr
ip -n {r} link set tap0 address {tap0}
ip -n {r} link set tap1 address {tap1}
ip -n {r} link add vA type veth peer name vB netns {h}
ip -n {r} link set vA address {va}
ip -n {h} link set vB address {vb}
ip -n {r} addr add 10.1.0.1/24 dev tap0
ip -n {r} addr add 10.3.0.1/24 dev tap1
ip -n {r} addr add 10.2.0.1/24 dev vA
ip -n {h} addr add 10.2.0.2/24 dev vB
ip -n {r} link set tap0 up
ip -n {r} link set tap1 up
ip -n {r} link set vA up
ip -n {h} link set vB up
ip -n {r} neigh add 10.1.0.2 lladdr {g0} dev tap0 nud permanent
ip -n {r} neigh add 10.3.0.2 lladdr {g1} dev tap1 nud permanent
ip -n {r} neigh add 10.2.0.2 lladdr {vb} dev vA nud permanent
"""


def setup_text(r: str, h: str) -> str:
    return SETUP.format(r=r, h=h, tap0=TAP0_MAC, tap1=TAP1_MAC, va=VA_MAC, vb=VB_MAC,
                        g0=GUEST0_MAC, g1=GUEST1_MAC)


def _sh(cmd: str) -> None:
    subprocess.run(["bash", "-c", cmd], check=True, capture_output=True, text=True)


def _setns(fd: int) -> None:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns")


class _InNs:
    """Enter a named netns for this thread (setns), and come back."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> "_InNs":
        self.old = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        _setns(fd)
        os.close(fd)
        return self

    def __exit__(self, *a: Any) -> None:
        _setns(self.old)
        os.close(self.old)


def _open_tap(name: str, offload: int | None) -> int:
    """Attach to the persistent device ``name`` (a tun if its name starts with "tun")."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    kind = 0x0001 if name.startswith("tun") else IFF_TAP
    ifr = struct.pack("16sH", name.encode(), kind | IFF_NO_PI | IFF_VNET_HDR)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    if offload is not None:
        fcntl.ioctl(fd, TUNSETOFFLOAD, offload)
    return fd


def _drain(fd: int, wait: float) -> list[bytes]:
    out: list[bytes] = []
    end = time.time() + wait
    while True:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not r:
            return out
        try:
            out.append(os.read(fd, 70000))
        except BlockingIOError:
            continue


def run_kernel(frames: list[bytes], tap1_offload: int, veth_features: str,
               wait: float = 0.03, extra: str = "", proto: int = 0x0800,
               writer: tuple[str, str] = ("r", "tap0")
               ) -> tuple[list[int], list[bytes], list[bytes]]:
    """Write ``frames`` (virtio header + Ethernet frame) into tap0 (or the tap
    ``writer`` = (namespace "r"/"h", name) that ``extra`` created); return the write
    results, what tap1's reader gets (header + frame) and the frames of EtherType
    ``proto`` vB receives."""
    tag = f"OFF{os.getpid()}"
    r, h = tag + "r", tag + "h"
    try:
        _sh(setup_text(r, h) + extra.format(r=r, h=h))
        if veth_features:
            _sh(f"ip netns exec {r} ethtool -K vA {veth_features}")
        with _InNs(r if writer[0] == "r" else h):
            fd0 = _open_tap(writer[1], None)
        with _InNs(r):
            fd1 = _open_tap("tap1", tap1_offload)
        with _InNs(h):
            ps = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
            ps.bind(("vB", 0))
            ps.setblocking(False)
        _drain(fd1, 0.01)
        results = []
        for f in frames:
            try:
                results.append(os.write(fd0, f))
            except OSError as e:
                results.append(-e.errno)
        # collect from both until ``wait`` passes with nothing new (at most 1 s): the
        # kernel finishes a write synchronously, but a loaded machine may defer the
        # softirq that runs the veth's NAPI
        out1: list[bytes] = []
        got: list[bytes] = []
        deadline = time.time() + 1.0
        while True:
            ready, _, _ = select.select([fd1, ps], [], [], wait)
            if not ready or time.time() > deadline:
                break
            if fd1 in ready:
                try:
                    out1.append(os.read(fd1, 70000))
                except BlockingIOError:
                    pass
            if ps in ready:
                try:
                    got.append(ps.recv(70000))
                except BlockingIOError:
                    pass
        os.close(fd0)
        os.close(fd1)
        ps.close()
        return results, out1, got
    finally:
        subprocess.run(["ip", "netns", "del", r], capture_output=True)
        subprocess.run(["ip", "netns", "del", h], capture_output=True)
