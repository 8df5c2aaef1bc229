"""ICMP echo ("ping") sockets (net/ipv4/ping.c, Linux 6.18), driven from Python.

A ping socket owns an ICMP identifier (its bound "port", ``inet_num``): echo requests it
sends carry that identifier whatever the caller wrote, and echo replies with that
identifier are queued to it (``ping_lookup``: identifier, bound address, bound device).
Sending follows ``ping_v4_sendmsg``: only ECHO with code 0 is accepted, a broadcast
destination needs SO_BROADCAST (EACCES), the IP header follows the socket's PMTU
discovery mode (DF for a datagram that fits, IP ID 0 then) like any unconnected datagram
socket.

The kernel only lets users in ``ping_group_range`` (default "1 0": nobody) open these
sockets; the Python API is the administrator's, so the range is not enforced (ping(8)
run as root uses a raw socket and puts the same bytes on the wire).
"""
from __future__ import annotations

import errno
import socket as _socket
from collections import deque
from typing import TYPE_CHECKING

from netstack.core.drop_reason import consume_skb
from netstack.errors import KernelError
from netstack.ipv4.ip_output import EmsgSize, default_pmtudisc, ip_local_out, ip_make_skb
from netstack.ipv4.udp import ANY, inet_aton
from netstack.packet.checksum import csum_fold, csum_partial

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb import Packet

ICMP_ECHO = 8
RTCF_BROADCAST = 0x10000000


class PingSocket:
    """``socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)``."""

    def __init__(self, net: "Net") -> None:
        self.net = net
        self.num = 0              # the ICMP identifier
        self.rcv_saddr = ANY
        self.bound_dev_if = 0
        self.broadcast = False
        self.recverr = False
        self.pmtudisc = default_pmtudisc(net)
        self.ttl = -1
        self.tos = 0
        self.err = 0
        self.queue: deque[tuple[bytes, bytes]] = deque()
        self.closed = False

    def bind(self, address: tuple[str, int], dev: "NetDevice | None" = None) -> None:
        """``ping_bind``/``ping_get_port``: the port is the ICMP identifier (0: pick one);
        EADDRINUSE if another ping socket holds it."""
        if self.num:
            raise KernelError(errno.EINVAL)
        addr = inet_aton(address[0])
        ident = int(address[1]) & 0xFFFF
        lst = self.net.ipv4.ping_sockets
        if ident == 0:
            used = {s.num for s in lst}
            ident = next((i for i in range(1, 0x10000) if i not in used), 0)
            if ident == 0:
                raise KernelError(errno.EAGAIN)
        elif any(s.num == ident and (s.rcv_saddr == ANY or addr == ANY or s.rcv_saddr == addr)
                 for s in lst):
            raise KernelError(errno.EADDRINUSE)
        self.rcv_saddr = addr
        self.bound_dev_if = dev.ifindex if dev is not None else 0
        self.num = ident
        lst.append(self)

    def sendto(self, icmp: bytes, address: tuple[str, int]) -> int:
        """``ping_v4_sendmsg``: ``icmp`` is an ICMP echo request (header + data); the
        identifier is replaced by the socket's and the checksum computed."""
        from netstack.ipv4.udp import _route
        if self.closed:
            raise KernelError(errno.EBADF)
        if len(icmp) < 8 or icmp[0] != ICMP_ECHO or icmp[1] != 0:
            raise KernelError(errno.EINVAL)
        if len(icmp) > 0xFFFF - 20:
            raise KernelError(errno.EMSGSIZE)
        daddr = inet_aton(address[0])
        if not self.num:
            self.bind(("0.0.0.0", 0))
        rt, src = _route(self, daddr, 0)  # type: ignore[arg-type]
        if rt.flags & RTCF_BROADCAST and not self.broadcast:
            raise KernelError(errno.EACCES)
        saddr = self.rcv_saddr if self.rcv_saddr != ANY else src
        msg = bytearray(icmp)
        msg[2:4] = b"\0\0"
        msg[4:6] = self.num.to_bytes(2, "big")
        c = csum_fold(csum_partial(msg))
        msg[2] = c >> 8
        msg[3] = c & 0xFF
        pkt = ip_make_skb(self.net, rt, saddr, daddr, 1, msg, tos=self.tos, ttl=self.ttl,
                          pmtudisc=self.pmtudisc)
        mib = self.net.ipv4.mib
        mib["IcmpOutMsgs"] += 1
        mib[f"IcmpMsgOutType{ICMP_ECHO}"] += 1
        try:
            ip_local_out(self.net, pkt)
        except EmsgSize as e:
            raise KernelError(errno.EMSGSIZE, f"mtu {e.mtu}") from None
        return len(icmp)

    def recvfrom(self) -> tuple[bytes, tuple[str, int]] | None:
        """The next echo reply (ICMP header + data) and its sender, or None."""
        if self.err:
            err, self.err = self.err, 0
            raise KernelError(err)
        if not self.queue:
            return None
        data, saddr = self.queue.popleft()
        return data, (_socket.inet_ntoa(saddr), 0)

    def close(self) -> None:
        self.closed = True
        lst = self.net.ipv4.ping_sockets
        if self in lst:
            lst.remove(self)
        self.queue.clear()

    # Attributes the shared routing helper reads from a socket.
    @property
    def saddr(self) -> bytes:
        return self.rcv_saddr

    @property
    def mark(self) -> int:
        return 0


def ping_socket(net: "Net") -> PingSocket:
    """A new, unbound ping socket."""
    return PingSocket(net)


def ping(net: "Net", dst: str, ident: int, seq: int, payload: bytes = b"") -> PingSocket:
    """Send one echo request to ``dst`` from the ping socket holding ``ident`` (created
    and bound if needed); replies are read with the returned socket's ``recvfrom``."""
    sk = next((s for s in net.ipv4.ping_sockets if s.num == ident), None)
    if sk is None:
        sk = PingSocket(net)
        sk.bind(("0.0.0.0", ident))
    msg = bytes((ICMP_ECHO, 0, 0, 0)) + (ident & 0xFFFF).to_bytes(2, "big") + \
        (seq & 0xFFFF).to_bytes(2, "big") + bytes(payload)
    sk.sendto(msg, (dst, 0))
    return sk


def _lookup(net: "Net", ident: int, daddr: bytes, dif: int) -> PingSocket | None:
    """``ping_lookup``."""
    for sk in net.ipv4.ping_sockets:
        if sk.num != ident:
            continue
        if sk.rcv_saddr != ANY and sk.rcv_saddr != daddr:
            continue
        if sk.bound_dev_if and sk.bound_dev_if != dif:
            continue
        return sk
    return None


def ping_rcv(net: "Net", pkt: "Packet") -> str | None:
    """``ping_rcv``: queue an echo reply to its socket; none → NO_SOCKET."""
    buf = pkt.buf
    d = pkt.data
    nh = pkt.network_header
    ident = (buf[d + 4] << 8) | buf[d + 5]
    sk = _lookup(net, ident, bytes(buf[nh + 16:nh + 20]), pkt.skb_iif)
    if sk is None:
        return "NO_SOCKET"
    sk.queue.append((bytes(buf[d:pkt.tail]), bytes(buf[nh + 12:nh + 16])))
    consume_skb(pkt, "ping_queue_rcv_skb")
    return None


def ping_err(net: "Net", pkt: "Packet", inner: int, icmp_type: int, code: int, info: int,
             err: int) -> None:
    """``ping_err``: an ICMP error quoting one of our echo requests reaches the socket
    (as ``sk_err``, raised by the next ``recvfrom``) only with IP_RECVERR, since ping
    sockets here are never connected."""
    buf = pkt.buf
    ihl = (buf[inner] & 0x0F) << 2
    ih = inner + ihl
    if buf[ih] != ICMP_ECHO:
        return
    ident = (buf[ih + 4] << 8) | buf[ih + 5]
    sk = _lookup(net, ident, bytes(buf[inner + 12:inner + 16]), pkt.dev.ifindex)
    if sk is not None and sk.recverr:
        sk.err = err
