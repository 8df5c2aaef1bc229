"""Run a scenario on the real kernel and record what the wire sees.

The kernel is the oracle (see /work/shared/reference/kernel-as-oracle.md): a
bash scenario builds namespaces joined by veth pairs, then this module plays
the hosts.  It opens AF_PACKET sockets on the *outer* veth ends (which live in
address-less namespaces with IPv6 disabled), transmits raw Ethernet frames,
and records every frame the other outer ends receive.

Why the details are the way they are:

* Namespaces are entered with ``setns(2)`` through ctypes because Python 3.11
  has no ``os.setns``; only the calling thread switches, and we return through
  an fd on ``/proc/thread-self/ns/net`` opened beforehand.
* Capture sockets are created with protocol 0 (receive nothing), bound with
  ``ETH_P_ALL`` to one device, and get ``PACKET_IGNORE_OUTGOING`` so our own
  transmissions are not echoed back (net/packet/af_packet.c).
* ``PACKET_VNET_HDR`` is enabled on capture sockets: veth keeps tx checksum
  offload on, so frames the kernel builds with CHECKSUM_PARTIAL arrive with
  only the pseudo-header sum.  The virtio header tells us ``csum_start`` /
  ``csum_offset`` and we complete the sum exactly as ``skb_checksum_help()``
  (net/core/dev.c) would, including the 0 -> 0xffff mangling.
* ``PACKET_AUXDATA`` is enabled on capture sockets too: a receiving device moves the
  outermost VLAN tag out of band (``skb_vlan_untag`` in ``__netif_receive_skb_core``,
  net/core/dev.c; veth also hands a transmitted out-of-band tag to its peer as is), so the
  bytes ``recv`` returns never hold it.  As libpcap does (pcap-linux.c), the tag is taken
  from ``tpacket_auxdata`` (``tp_vlan_tci``, ``tp_vlan_tpid``; valid when
  ``TP_STATUS_VLAN_VALID`` is set or the TCI is non-zero, 802.1Q when no TPID is given)
  and written back behind the MAC addresses -- after the checksum completion above, whose
  ``csum_start`` counts from the frame without the tag (``virtio_net_hdr_from_skb`` is
  called with ``vlan_hlen`` 0 by af_packet.c).  netstack's captures show the frame that
  way as well (``vlan_core.tap_packet``).
* Namespace names from ``ip netns add`` are suffixed with a per-process tag
  before the script runs, so two engineers (or two CI jobs) running the suite
  at once never delete each other's namespaces.  Results are reported under
  the names the script used.
* Every blocking step has a timeout; namespaces are deleted in ``finally``.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import select
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

__all__ = [
    "Send",
    "Result",
    "OracleError",
    "run_kernel",
    "namespaces_in",
    "rename_namespaces",
    "complete_partial_checksum",
    "vlan_from_auxdata",
    "insert_vlan_tag",
    "NetnsError",
]

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
TPACKET_AUXDATA_LEN = 20  # struct tpacket_auxdata (uapi linux/if_packet.h)
ETH_P_8021Q = 0x8100
CLONE_NEWNET = 0x40000000
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_LEN = 10  # struct virtio_net_hdr (no num_buffers)
NETNS_RUN_DIR = "/run/netns"

SCRIPT_TIMEOUT_S = 60.0
LINK_READY_TIMEOUT_S = 5.0
SEND_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 15.0
# Upper bound on how long we keep waiting for "settle seconds of silence".
SETTLE_HARD_CAP_S = 30.0


class OracleError(RuntimeError):
    """The kernel run could not be carried out (script failed, socket error...)."""


class NetnsError(OracleError):
    """Entering or leaving a network namespace failed."""


@dataclass(frozen=True)
class Send:
    """Transmit ``frame`` out of ``dev`` in namespace ``ns`` after ``delay_s``.

    The delay is measured from the previous send (or from the start of the
    traffic phase) and is spent draining capture sockets, so it is also how a
    scenario waits for timers such as ARP retransmissions.
    """

    ns: str
    dev: str
    frame: bytes
    delay_s: float = 0.0


@dataclass
class Result:
    """What one run produced.

    ``frames[(ns, dev)]`` lists received frames in arrival order; ``times``
    holds the matching arrival times in seconds since the traffic phase
    began; ``queries[cmd]`` is the stdout of each query command, run after
    the traffic; ``script_output`` is what the scenario script printed.
    """

    frames: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)
    times: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    queries: dict[str, str] = field(default_factory=dict)
    script_output: str = ""


# --------------------------------------------------------------------------
# namespace-name handling


_NETNS_ADD = re.compile(r"\bip\s+netns\s+add\s+([A-Za-z0-9_.-]+)")
# A namespace name follows one of these words in iproute2 syntax:
#   ip -n NS ..., ip -netns NS ..., ip netns add|del|exec|pids|set|attach NS,
#   ip link add/set ... netns NS
_NS_REF = re.compile(
    r"(?<![\w-])(--netns|-netns|-n|netns\s+(?:add|delete|del|exec|pids|set|attach)|netns)"
    r"(\s+)([A-Za-z0-9_.-]+)"
)


def namespaces_in(script: str) -> list[str]:
    """Names of namespaces the script creates with ``ip netns add``, in order."""
    seen: list[str] = []
    for line in script.splitlines():
        code = line.split("#", 1)[0]
        for m in _NETNS_ADD.finditer(code):
            if m.group(1) not in seen:
                seen.append(m.group(1))
    return seen


def rename_namespaces(text: str, mapping: dict[str, str]) -> str:
    """Rewrite namespace references in iproute2 command text per ``mapping``.

    Only words in a namespace position (after ``-n``, ``netns exec`` ...)
    are rewritten, so device names equal to a namespace name are untouched.
    """
    if not mapping:
        return text

    def sub(m: re.Match[str]) -> str:
        name = m.group(3)
        return m.group(1) + m.group(2) + mapping.get(name, name)

    return _NS_REF.sub(sub, text)


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise OracleError(f"timed out after {timeout}s: {' '.join(cmd)}") from exc


def _wait_links_ready(namespaces: list[str], timeout: float = LINK_READY_TIMEOUT_S) -> None:
    """Wait until every admin-up link with carrier also has operstate UP.

    The kernel sets operstate from the linkwatch work queue, and for a veth
    whose ifindex happens to equal its peer's iflink the event is not
    "urgent" (linkwatch_urgent_event(), net/core/link_watch.c), so it can lag
    `ip link set up` by up to a second.  Until then IPv6 treats the link as
    not ready (addrconf_link_ready(), net/ipv6/addrconf.c): no link-local
    address, no multicast route, ND dropped as "no route".  Traffic sent
    before that point would depend on timing, so we wait for it.
    """
    deadline = time.monotonic() + timeout
    pending: list[str] = []
    while True:
        pending = []
        for ns in namespaces:
            proc = _run(["ip", "-n", ns, "-j", "link", "show"], COMMAND_TIMEOUT_S)
            if proc.returncode != 0:
                raise OracleError(f"cannot list links of {ns}: {proc.stderr}")
            for link in json.loads(proc.stdout or "[]"):
                flags = link.get("flags", [])
                if "UP" in flags and "LOWER_UP" in flags and link.get("operstate") not in (
                    "UP", "UNKNOWN"
                ):
                    pending.append(f"{ns}/{link.get('ifname')}")
        if not pending:
            return
        if time.monotonic() > deadline:
            raise OracleError(f"links never reached operstate UP: {', '.join(pending)}")
        time.sleep(0.05)


def _delete_netns(name: str) -> None:
    if os.path.exists(os.path.join(NETNS_RUN_DIR, name)):
        _run(["ip", "netns", "del", name], COMMAND_TIMEOUT_S)


# --------------------------------------------------------------------------
# setns via ctypes

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(f"setns failed: {os.strerror(err)}")


class _InNetns:
    """Context manager: run the block with the calling thread in netns ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._home: int | None = None

    def __enter__(self) -> "_InNetns":
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(os.path.join(NETNS_RUN_DIR, self.name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            os.close(self._home)
            raise NetnsError(f"cannot open netns {self.name!r}: {exc}") from exc
        try:
            _setns(target)
        except NetnsError:
            os.close(self._home)
            raise
        finally:
            os.close(target)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._home is not None
        try:
            _setns(self._home)
        finally:
            os.close(self._home)


# --------------------------------------------------------------------------
# checksum completion (skb_checksum_help, net/core/dev.c)


def _ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def complete_partial_checksum(frame: bytes, csum_start: int, csum_offset: int) -> bytes:
    """Finish a CHECKSUM_PARTIAL frame the way ``skb_checksum_help`` does.

    The field at ``csum_start + csum_offset`` already holds the folded
    pseudo-header sum; summing from ``csum_start`` to the end (field included)
    and complementing gives the final checksum; a result of 0 is sent as
    0xffff (CSUM_MANGLED_0).
    """
    pos = csum_start + csum_offset
    if csum_start >= len(frame) or pos + 2 > len(frame):
        raise OracleError(
            f"virtio header csum_start={csum_start} csum_offset={csum_offset} "
            f"outside a {len(frame)}-byte frame"
        )
    value = (~_ones_sum(frame[csum_start:])) & 0xFFFF
    if value == 0:
        value = 0xFFFF
    return frame[:pos] + struct.pack("!H", value) + frame[pos + 2 :]


def _decode_vnet(raw: bytes) -> bytes:
    if len(raw) < VIRTIO_NET_HDR_LEN:
        raise OracleError(f"short read of {len(raw)} bytes on a PACKET_VNET_HDR socket")
    flags, gso_type, _hdr_len, _gso_size, csum_start, csum_offset = struct.unpack(
        "<BBHHHH", raw[:VIRTIO_NET_HDR_LEN]
    )
    frame = raw[VIRTIO_NET_HDR_LEN:]
    if gso_type != 0:
        raise OracleError(
            f"captured a GSO super-frame (gso_type={gso_type}); scenarios must keep "
            "DUT-originated traffic below the MTU"
        )
    if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM:
        frame = complete_partial_checksum(frame, csum_start, csum_offset)
    return frame


def vlan_from_auxdata(ancdata: list[tuple[int, int, bytes]]) -> tuple[int, int] | None:
    """``(tpid, tci)`` of the out-of-band tag a ``PACKET_AUXDATA`` control message reports,
    or None.  libpcap's rule (pcap-linux.c ``VLAN_VALID``/``VLAN_TPID``): a tag is present
    when ``TP_STATUS_VLAN_VALID`` is set or the TCI is non-zero; its TPID is ``tp_vlan_tpid``
    when ``TP_STATUS_VLAN_TPID_VALID`` is set (or the field is non-zero), else 802.1Q."""
    for level, kind, data in ancdata:
        if level != SOL_PACKET or kind != PACKET_AUXDATA or len(data) < TPACKET_AUXDATA_LEN:
            continue
        status = struct.unpack_from("<I", data, 0)[0]
        tci, tpid = struct.unpack_from("<HH", data, 16)
        if not (status & TP_STATUS_VLAN_VALID or tci):
            return None
        if not (status & TP_STATUS_VLAN_TPID_VALID or tpid):
            tpid = ETH_P_8021Q
        return tpid, tci
    return None


def insert_vlan_tag(frame: bytes, tpid: int, tci: int) -> bytes:
    """The frame with a tag written back behind the two MAC addresses (libpcap's
    reconstruction of the captured frame)."""
    if len(frame) < 12:
        raise OracleError(f"a {len(frame)}-byte frame has no room for a VLAN tag")
    return frame[:12] + struct.pack("!HH", tpid, tci) + frame[12:]


# --------------------------------------------------------------------------
# sockets


def _open_capture(dev: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE, root only
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind((dev, ETH_P_ALL))
        s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        s.setblocking(False)
    except OSError as exc:
        s.close()
        raise OracleError(f"cannot open capture socket on {dev}: {exc}") from exc
    return s


def _open_sender(dev: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        s.bind((dev, 0))  # protocol 0: this socket never receives
        s.settimeout(SEND_TIMEOUT_S)  # a full qdisc must not hang the suite
    except OSError as exc:
        s.close()
        raise OracleError(f"cannot open send socket on {dev}: {exc}") from exc
    return s


class _Capturer:
    """Drains capture sockets into a Result, in arrival order per socket."""

    def __init__(self, socks: dict[tuple[str, str], socket.socket], result: Result, t0: float):
        self.socks = socks
        self.by_fd = {s.fileno(): key for key, s in socks.items()}
        self.result = result
        self.t0 = t0
        for key in socks:
            result.frames[key] = []
            result.times[key] = []

    def drain(self) -> int:
        """Read everything queued now; return how many frames were read."""
        got = 0
        for key, s in self.socks.items():
            while True:
                try:
                    raw, anc, _flags, _addr = s.recvmsg(
                        65536 + VIRTIO_NET_HDR_LEN, socket.CMSG_SPACE(TPACKET_AUXDATA_LEN)
                    )
                except BlockingIOError:
                    break
                except OSError as exc:
                    # A socket bound before its link came up reports ENETDOWN
                    # once (af_packet.c packet_notifier); nothing was lost.
                    if exc.errno == errno.ENETDOWN:
                        continue
                    raise OracleError(f"recv on {key}: {exc}") from exc
                frame = _decode_vnet(raw)
                tag = vlan_from_auxdata(anc)
                if tag is not None:
                    frame = insert_vlan_tag(frame, *tag)
                self.result.frames[key].append(frame)
                self.result.times[key].append(time.monotonic() - self.t0)
                got += 1
        return got

    def wait(self, seconds: float) -> int:
        """Drain for ``seconds`` of wall time; return frames read."""
        got = self.drain()
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            if self.socks:
                select.select(list(self.socks.values()), [], [], left)
            else:
                time.sleep(left)
            got += self.drain()

    def settle(self, quiet: float) -> None:
        """Return after ``quiet`` seconds without a frame (hard cap applies)."""
        cap = time.monotonic() + max(SETTLE_HARD_CAP_S, quiet * 2)
        while time.monotonic() < cap:
            if self.wait(quiet) == 0:
                return
        raise OracleError(f"traffic did not settle within {SETTLE_HARD_CAP_S}s")


# --------------------------------------------------------------------------
# the entry point


def run_kernel(
    script: str,
    sends: list[Send],
    captures: list[tuple[str, str]],
    queries: list[str],
    settle: float,
    *,
    isolate: bool = True,
) -> Result:
    """Run ``script`` with bash on this kernel, play ``sends``, record captures.

    ``isolate`` suffixes every namespace the script creates with a
    per-process tag (see module docstring); keys in the result always use the
    script's own names.  Raises :class:`OracleError` on any failure, after
    deleting the namespaces.
    """
    names = namespaces_in(script)
    tag = f"-k{os.getpid()}" if isolate else ""
    mapping = {n: n + tag for n in names} if isolate else {}
    real = lambda ns: mapping.get(ns, ns)  # noqa: E731 - tiny local alias
    result = Result()
    for n in names:
        _delete_netns(real(n))
    sockets: list[socket.socket] = []
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="oracle-") as f:
            f.write(rename_namespaces(script, mapping))
            f.flush()
            proc = _run(["bash", "-e", "-u", "-o", "pipefail", f.name], SCRIPT_TIMEOUT_S)
        result.script_output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise OracleError(
                f"scenario script failed (rc={proc.returncode}):\n{result.script_output}"
            )
        _wait_links_ready([real(n) for n in names])
        cap_socks: dict[tuple[str, str], socket.socket] = {}
        send_socks: dict[tuple[str, str], socket.socket] = {}
        for ns, dev in captures:
            with _InNetns(real(ns)):
                s = _open_capture(dev)
            sockets.append(s)
            cap_socks[(ns, dev)] = s
        for snd in sends:
            key = (snd.ns, snd.dev)
            if key not in send_socks:
                with _InNetns(real(snd.ns)):
                    s = _open_sender(snd.dev)
                sockets.append(s)
                send_socks[key] = s
        t0 = time.monotonic()
        cap = _Capturer(cap_socks, result, t0)
        cap.drain()  # frames from before the traffic phase are part of the record
        for snd in sends:
            if snd.delay_s > 0:
                cap.wait(snd.delay_s)
            try:
                n = send_socks[(snd.ns, snd.dev)].send(snd.frame)
            except OSError as exc:
                raise OracleError(f"send on {snd.ns}/{snd.dev} failed: {exc}") from exc
            if n != len(snd.frame):
                raise OracleError(f"short send on {snd.ns}/{snd.dev}: {n}/{len(snd.frame)}")
            cap.drain()
        cap.settle(settle)
        for q in queries:
            proc = _run(["bash", "-c", rename_namespaces(q, mapping)], COMMAND_TIMEOUT_S)
            if proc.returncode != 0:
                raise OracleError(f"query failed (rc={proc.returncode}): {q}\n{proc.stderr}")
            result.queries[q] = proc.stdout
        return result
    finally:
        for s in sockets:
            s.close()
        for n in names:
            try:
                _delete_netns(real(n))
            except OracleError:
                pass
