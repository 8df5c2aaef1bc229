"""UDP over IPv4 (net/ipv4/udp.c, Linux 6.18): receive, socket lookup, error delivery and
the sending side, with a small socket API (``udp_socket(net)``).

Receive (``__udp4_lib_rcv``): header and length checks (PKT_TOO_SMALL), trim to the UDP
length, checksum initialisation honouring the skb checksum state (CHECKSUM_UNNECESSARY
with ``csum_level``, PARTIAL, COMPLETE, a zero checksum meaning "none" on IPv4); broadcast
and multicast go to every matching socket (none → IgnoredMulti); unicast to the best
scoring socket (``compute_score``: bound address, connected peer, bound device), else the
checksum is verified (bad → UDP_CSUM, silently) and an ICMP port unreachable is sent
(NoPorts, reason NO_SOCKET).  As in the kernel, a datagram queued to a socket has its
checksum verified only when the application reads it (``udp_recvmsg`` →
``csum_copy_err``: InCsumErrors/InErrors, UDP_CSUM), and InDatagrams counts reads.

Encapsulation sockets (vxlan, geneve, fou/gue: ``setup_udp_tunnel_sock``) take the
datagrams of their port before the ordinary lookup and run ``udp_queue_rcv_one_skb``'s
encap branch (:func:`netstack.ipv4.udp_tunnel.udp_tunnel_rcv`), as soon as one exists in
the namespace (``udp_encap_needed_key``).

Receive buffer: the kernel charges ``skb->truesize``; netstack charges the frame length
plus a fixed 576-byte overhead (an approximation of the sk_buff + shared-info overhead),
against ``rcvbuf`` (default ``net.core.rmem_default`` = 212992).

Sending (``udp_sendmsg``): route, SO_BROADCAST check (EACCES), autobind, header, checksum
— left to the device (CHECKSUM_PARTIAL, only the pseudo-header sum in the field) when the
output device offers ``tx-checksum-ip-generic``/``tx-checksum-ipv4`` and the datagram is
not fragmented, computed in software otherwise (0 sent as 0xFFFF) — then ``ip_make_skb``
/``ip_send_skb``.  Ephemeral ports come from ``ip_local_port_range``, starting at a point
drawn from the world's seeded RNG (the kernel's start is random) and probing upwards.
"""
from __future__ import annotations

import errno
import socket as _socket
from collections import deque
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.errors import KernelError
from netstack.ipv4 import af_inet
from netstack.ipv4.ip_output import (IP_PMTUDISC_DO, IP_PMTUDISC_PROBE, EmsgSize,
                                     default_pmtudisc, dst_mtu, ip_local_out, ip_make_skb)
from netstack.packet.checksum import csum_fold, csum_partial, pseudo_sum_v4
from netstack.packet.skb import (CHECKSUM_COMPLETE, CHECKSUM_NONE, CHECKSUM_PARTIAL,
                                 CHECKSUM_UNNECESSARY)
from netstack.core.rtnetlink import (  # noqa: F401  (re-exported)
    RTN_BROADCAST,
    RTN_LOCAL,
    RTN_MULTICAST,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb import Packet

IPPROTO_UDP = 17
RTCF_BROADCAST = 0x10000000
RTCF_MULTICAST = 0x20000000
ANY = b"\0\0\0\0"
RMEM_DEFAULT = 212992
TRUESIZE_OVERHEAD = 576
TX_CSUM_FEATURES = ("tx-checksum-ip-generic", "tx-checksum-ipv4")
#: ``icmp_err_convert[code].fatal`` for DEST_UNREACH codes 0..15, as a bit mask:
#: fatal are PROT/PORT unreachable, NET/HOST unknown, HOST isolated, NET/HOST ANO,
#: PKT_FILTERED, PREC_VIOLATION, PREC_CUTOFF.
UNREACH_FATAL = sum(1 << c for c in (2, 3, 6, 7, 8, 9, 10, 13, 14, 15))


def inet_aton(addr: str) -> bytes:
    """Dotted quad → 4 bytes; EINVAL for anything else."""
    try:
        return _socket.inet_aton(addr) if addr.count(".") == 3 else _raise_einval()
    except OSError:
        return _raise_einval()


def _raise_einval() -> bytes:
    raise KernelError(errno.EINVAL, "invalid IPv4 address")


class UdpSocket:
    """A UDP socket of one namespace (``struct udp_sock``), driven from Python."""

    def __init__(self, net: "Net") -> None:
        self.net = net
        self.rcv_saddr = ANY          # inet_rcv_saddr (bound address)
        self.saddr = ANY              # inet_saddr (source for sending)
        self.num = 0                  # bound local port (host order)
        self.daddr = ANY              # connected peer
        self.dport = 0
        self.bound_dev_if = 0
        self.broadcast = False        # SO_BROADCAST
        self.reuse = False            # SO_REUSEADDR
        self.recverr = False          # IP_RECVERR
        self.pmtudisc = default_pmtudisc(net)
        self.ttl = -1                 # IP_TTL (-1: route/sysctl default)
        self.tos = 0                  # IP_TOS
        self.no_check_tx = False      # SO_NO_CHECK
        self.mark = 0                 # SO_MARK
        self.priority = 0             # SO_PRIORITY
        self.rcvbuf = RMEM_DEFAULT
        self.rmem = 0
        self.inet_id: list[int] | None = None
        self.err = 0                  # sk_err
        self.queue: deque[tuple[bytes, bytes, int, bool, int]] = deque()
        self.closed = False

    # ------------------------------------------------------------- binding
    def _in_use(self, port: int, addr: bytes, dev_if: int) -> bool:
        """``udp_lib_lport_inuse``: another socket on the port whose address and device
        overlap, unless both set SO_REUSEADDR (SO_REUSEPORT groups are not modelled); a
        tunnel socket (vxlan, geneve, fou) counts as one."""
        if self.net.proto.get("udp_encap_needed"):
            from netstack.ipv4.udp_tunnel import AF_INET, tunnel_port_in_use
            if tunnel_port_in_use(self.net, AF_INET, port, addr):
                return True
        for s in self.net.ipv4.udp_sockets:
            if s is self or s.num != port or (self.reuse and s.reuse):
                continue
            if s.rcv_saddr != ANY and addr != ANY and s.rcv_saddr != addr:
                continue
            if s.bound_dev_if and dev_if and s.bound_dev_if != dev_if:
                continue
            return True
        return False

    def _autobind(self) -> None:
        """``udp_lib_get_port`` with port 0: an ephemeral port from the local range."""
        lo, hi = (int(x) for x in str(self.net.sysctl.values[
            "net.ipv4.ip_local_port_range"]).split())
        span = hi - lo + 1
        start = self.net.world.rng.randrange(span)
        for i in range(span):
            port = lo + (start + i) % span
            if not self._in_use(port, self.rcv_saddr, self.bound_dev_if):
                self._hash(port)
                return
        raise KernelError(errno.EAGAIN, "no free ephemeral port")

    def _hash(self, port: int) -> None:
        self.num = port
        lst = self.net.ipv4.udp_sockets
        if self not in lst:
            lst.append(self)

    def bind(self, address: tuple[str, int], dev: "NetDevice | None" = None) -> None:
        """``inet_bind``: EINVAL if already bound, EADDRNOTAVAIL for a non-local address
        (unless ``ip_nonlocal_bind``), EADDRINUSE for a conflicting socket."""
        self._check_open()
        addr = inet_aton(address[0])
        port = int(address[1])
        if self.num:
            raise KernelError(errno.EINVAL)
        if addr != ANY and not self.net.sysctl.values["net.ipv4.ip_nonlocal_bind"]:
            addr_type = getattr(af_inet.devinet, "inet_addr_type", None)
            if addr_type is None:
                raise KernelError(errno.EADDRNOTAVAIL, "not supported: no IPv4 control plane")
            if addr_type(self.net, addr) not in (RTN_LOCAL, RTN_MULTICAST, RTN_BROADCAST):
                raise KernelError(errno.EADDRNOTAVAIL)
        if dev is not None:
            self.bound_dev_if = dev.ifindex
        self.rcv_saddr = addr
        if addr[0] < 224 and addr != b"\xff\xff\xff\xff":
            self.saddr = addr
        if port:
            if self._in_use(port, addr, self.bound_dev_if):
                self.rcv_saddr = self.saddr = ANY
                raise KernelError(errno.EADDRINUSE)
            self._hash(port)
        else:
            self._autobind()

    def connect(self, address: tuple[str, int]) -> None:
        """``ip4_datagram_connect``: route to the peer, fix the source address, autobind,
        seed the socket's IP ID counter."""
        self._check_open()
        daddr = inet_aton(address[0])
        dport = int(address[1])
        rt, src = _route(self, daddr, dport)
        if rt.flags & RTCF_BROADCAST and not self.broadcast:
            raise KernelError(errno.EACCES)
        if self.saddr == ANY:
            self.saddr = src
        if self.rcv_saddr == ANY:
            self.rcv_saddr = src
        self.daddr = daddr
        self.dport = dport
        self.inet_id = [self.net.world.rng.getrandbits(16)]
        if not self.num:
            self._autobind()

    def getsockname(self) -> tuple[str, int]:
        return _socket.inet_ntoa(self.rcv_saddr), self.num

    # --------------------------------------------------------------- sending
    def sendto(self, data: bytes, address: tuple[str, int] | None = None) -> int:
        """``udp_sendmsg``; returns the number of bytes sent or raises KernelError."""
        self._check_open()
        if address is None:
            if self.dport == 0:
                raise KernelError(errno.EDESTADDRREQ)
            daddr, dport = self.daddr, self.dport
        else:
            daddr, dport = inet_aton(address[0]), int(address[1])
            if dport == 0:
                raise KernelError(errno.EINVAL)
        if len(data) > 0xFFFF - 8:
            raise KernelError(errno.EMSGSIZE)
        rt, src = _route(self, daddr, dport)
        if rt.flags & RTCF_BROADCAST and not self.broadcast:
            raise KernelError(errno.EACCES)
        if not self.num:
            self._autobind()
        saddr = self.saddr if self.saddr != ANY else src
        ulen = 8 + len(data)
        tot = 20 + ulen
        if tot > 0xFFFF:
            raise KernelError(errno.EMSGSIZE)
        mtu = dst_mtu(rt)
        if self.pmtudisc in (IP_PMTUDISC_DO, IP_PMTUDISC_PROBE) and tot > mtu:
            raise KernelError(errno.EMSGSIZE, f"mtu {mtu}")
        seg = bytearray(8 + len(data))
        seg[0:2] = self.num.to_bytes(2, "big")
        seg[2:4] = dport.to_bytes(2, "big")
        seg[4:6] = ulen.to_bytes(2, "big")
        seg[8:] = data
        partial = False
        if self.no_check_tx:
            pass
        elif tot <= mtu and any(f in rt.dev.features for f in TX_CSUM_FEATURES):
            # udp4_hwcsum: the field holds the (uninverted) pseudo-header sum.
            c = pseudo_sum_v4(saddr, daddr, ulen, IPPROTO_UDP)
            seg[6:8] = c.to_bytes(2, "big")
            partial = True
        else:
            c = csum_fold(csum_partial(seg, pseudo_sum_v4(saddr, daddr, ulen, IPPROTO_UDP)))
            seg[6:8] = (c or 0xFFFF).to_bytes(2, "big")
        pkt = ip_make_skb(self.net, rt, saddr, daddr, IPPROTO_UDP, seg, tos=self.tos,
                          ttl=self.ttl, pmtudisc=self.pmtudisc,
                          inet_id=self.inet_id if address is None else None,
                          mark=self.mark, priority=self.priority)
        if partial:
            pkt.ip_summed = CHECKSUM_PARTIAL
            pkt.csum_start = pkt.transport_header
            pkt.csum_offset = 6
        try:
            ip_local_out(self.net, pkt)
        except EmsgSize as e:
            raise KernelError(errno.EMSGSIZE, f"mtu {e.mtu}") from None
        self.net.ipv4.mib["UdpOutDatagrams"] += 1
        return len(data)

    def send(self, data: bytes) -> int:
        """``send()`` on a connected socket."""
        return self.sendto(data, None)

    # -------------------------------------------------------------- receiving
    def recvfrom(self) -> tuple[bytes, tuple[str, int]] | None:
        """``udp_recvmsg`` (non-blocking): the next datagram whose checksum verifies, or
        None if the queue is empty; a pending socket error is raised first."""
        if self.err:
            err, self.err = self.err, 0
            raise KernelError(err)
        mib = self.net.ipv4.mib
        while self.queue:
            payload, saddr, sport, csum_ok, charge = self.queue.popleft()
            self.rmem -= charge
            if not csum_ok:
                mib["UdpInCsumErrors"] += 1
                mib["UdpInErrors"] += 1
                continue
            mib["UdpInDatagrams"] += 1
            return payload, (_socket.inet_ntoa(saddr), sport)
        return None

    def add_membership(self, group: str, ifindex: int = 0, interface: str = "0.0.0.0") -> None:
        """``setsockopt(IP_ADD_MEMBERSHIP)`` with an ``ip_mreqn`` (net/ipv4/igmp.c
        ``ip_mc_join_group``); errors as KernelError (EINVAL, ENODEV, EADDRINUSE, ENOBUFS)."""
        from netstack.ipv4.igmp import ip_mc_join_group
        self._check_open()
        ip_mc_join_group(self.net, self, int.from_bytes(_socket.inet_aton(group), "big"),
                         ifindex, int.from_bytes(_socket.inet_aton(interface), "big"))

    def drop_membership(self, group: str, ifindex: int = 0, interface: str = "0.0.0.0") -> None:
        """``setsockopt(IP_DROP_MEMBERSHIP)`` (``ip_mc_leave_group``; EADDRNOTAVAIL)."""
        from netstack.ipv4.igmp import ip_mc_leave_group
        self._check_open()
        ip_mc_leave_group(self.net, self, int.from_bytes(_socket.inet_aton(group), "big"),
                          ifindex, int.from_bytes(_socket.inet_aton(interface), "big"))

    def close(self) -> None:
        """``udp_lib_close``: unhash; queued datagrams are freed; multicast memberships
        are left (``inet_release`` → ``ip_mc_drop_socket``)."""
        if self.__dict__.get("ip_mc_list"):
            from netstack.ipv4.igmp import ip_mc_drop_socket
            ip_mc_drop_socket(self.net, self)
        self.closed = True
        lst = self.net.ipv4.udp_sockets
        if self in lst:
            lst.remove(self)
        self.queue.clear()
        self.rmem = 0

    def _check_open(self) -> None:
        if self.closed:
            raise KernelError(errno.EBADF)


def udp_socket(net: "Net") -> UdpSocket:
    """``socket(AF_INET, SOCK_DGRAM, 0)`` in ``net``."""
    return UdpSocket(net)


def _route(sk: UdpSocket, daddr: bytes, dport: int) -> tuple[Any, bytes]:
    """``ip_route_output_flow`` for a socket: (rt, source address)."""
    route = af_inet.route
    if route is None:
        raise KernelError(errno.ENETUNREACH, "not supported: no IPv4 control plane loaded")
    fl4 = af_inet.flowi4(daddr=daddr, saddr=sk.saddr, tos=sk.tos & 0x1E,
                         oif=sk.bound_dev_if, proto=IPPROTO_UDP, sport=sk.num, dport=dport,
                         mark=sk.mark)
    try:
        rt = route.ip_route_output(sk.net, fl4)
    except KernelError as e:
        if e.errno == errno.ENETUNREACH:
            sk.net.ipv4.mib["IpOutNoRoutes"] += 1
        raise
    src = af_inet.addr_bytes(getattr(fl4, "saddr", None)) or \
        af_inet.addr_bytes(getattr(rt, "prefsrc", None))
    if not src or src == ANY:
        select = getattr(af_inet.devinet, "inet_select_addr", None)
        src = af_inet.addr_bytes(select(sk.net, rt.dev, daddr, 0)) if select else ANY
    return rt, src


# ------------------------------------------------------------------- receive
def udp_csum_ok(pkt: "Packet", saddr: bytes, daddr: bytes, ulen: int) -> bool:
    """``udp4_csum_init`` + ``udp_lib_checksum_complete``: is the checksum good?"""
    buf = pkt.buf
    d = pkt.data
    s = pkt.ip_summed
    if s == CHECKSUM_UNNECESSARY:
        # __skb_decr_checksum_unnecessary
        if pkt.csum_level == 0:
            pkt.ip_summed = CHECKSUM_NONE
        else:
            pkt.csum_level -= 1
        return True
    if s == CHECKSUM_PARTIAL or pkt.csum_valid:
        return True
    if buf[d + 6] == 0 and buf[d + 7] == 0:
        pkt.csum_valid = True  # a zero checksum is "no checksum" on IPv4
        return True
    psum = pseudo_sum_v4(saddr, daddr, ulen, IPPROTO_UDP)
    if s == CHECKSUM_COMPLETE:
        from netstack.packet.checksum import csum_add
        if not csum_fold(csum_add(psum, pkt.csum)):
            pkt.csum_valid = True
            return True
    ok = not csum_fold(csum_partial(buf[d:pkt.tail], psum))
    pkt.csum_valid = ok
    return ok


def _lookup(net: "Net", saddr: bytes, sport: int, daddr: bytes, dport: int,
            dif: int) -> UdpSocket | None:
    """``__udp4_lib_lookup``: sockets bound to daddr first, then wildcard ones; the best
    ``compute_score`` wins (first found on ties)."""
    best: UdpSocket | None = None
    for want in (daddr, ANY):
        best_score = -1
        for sk in net.ipv4.udp_sockets:
            if sk.num != dport or sk.rcv_saddr != want:
                continue
            score = 2
            if sk.daddr != ANY:
                if sk.daddr != saddr:
                    continue
                score += 4
            if sk.dport:
                if sk.dport != sport:
                    continue
                score += 4
            if sk.bound_dev_if:
                if sk.bound_dev_if != dif:
                    continue
                score += 4
            if score > best_score:
                best, best_score = sk, score
        if best is not None:
            return best
    return None


def _enqueue(sk: UdpSocket, pkt: "Packet", saddr: bytes, sport: int, csum_ok: bool) -> None:
    """``__udp_enqueue_schedule_skb``: charge the receive buffer or drop."""
    net = sk.net
    charge = (pkt.tail - pkt.data) + 28 + 14 + TRUESIZE_OVERHEAD
    if sk.rmem > sk.rcvbuf or sk.rmem + charge > charge + sk.rcvbuf:
        mib = net.ipv4.mib
        mib["UdpRcvbufErrors"] += 1
        mib["UdpInErrors"] += 1
        kfree_skb_reason(pkt, "SOCKET_RCVBUFF", net)
        return
    sk.rmem += charge
    sk.queue.append((bytes(pkt.buf[pkt.data + 8:pkt.tail]), saddr, sport, csum_ok, charge))
    consume_skb(pkt, "udp_queue_rcv_skb")


def udp_rcv(pkt: "Packet") -> None:
    """``udp_rcv`` → ``__udp4_lib_rcv``; ``pkt.data`` is at the UDP header."""
    net = pkt.dev.net
    mib = net.ipv4.mib
    buf = pkt.buf
    d = pkt.data
    n = pkt.tail - d
    if n < 8:
        mib["UdpInErrors"] += 1
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return
    ulen = (buf[d + 4] << 8) | buf[d + 5]
    if ulen > n or ulen < 8:
        mib["UdpInErrors"] += 1
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return
    if ulen < n:
        if pkt.ip_summed == CHECKSUM_COMPLETE:
            from netstack.ipv4.ip_input import _trim_rcsum
            _trim_rcsum(pkt, ulen)
        pkt.tail = d + ulen
    nh = pkt.network_header
    saddr = bytes(buf[nh + 12:nh + 16])
    daddr = bytes(buf[nh + 16:nh + 20])
    sport = (buf[d] << 8) | buf[d + 1]
    dport = (buf[d + 2] << 8) | buf[d + 3]
    if net.proto.get("udp_encap_needed"):
        # udp_encap_needed_key: a tunnel socket (vxlan, geneve, fou) bound to the port
        # takes the datagram in udp_queue_rcv_one_skb (encap_rcv), checksum rules included
        from netstack.ipv4.udp_tunnel import AF_INET, udp_tunnel_lookup, udp_tunnel_rcv
        tsk = udp_tunnel_lookup(net, AF_INET, dport, daddr, pkt.skb_iif, saddr, sport)
        if tsk is not None:
            udp_tunnel_rcv(tsk, pkt)
            return
    # udp4_csum_init validates short packets (<= 76 bytes) at once.
    csum_ok = udp_csum_ok(pkt, saddr, daddr, ulen)
    if not csum_ok and ulen <= 76:
        mib["UdpInCsumErrors"] += 1
        mib["UdpInErrors"] += 1
        kfree_skb_reason(pkt, "UDP_CSUM", net)
        return
    rt = pkt.dst
    flags = rt.flags
    if rt.type == RTN_BROADCAST:
        flags |= RTCF_BROADCAST
    elif rt.type == RTN_MULTICAST:
        flags |= RTCF_MULTICAST
    if flags & (RTCF_BROADCAST | RTCF_MULTICAST):
        _mcast_deliver(net, pkt, saddr, sport, daddr, dport, csum_ok)
        return
    sk = _lookup(net, saddr, sport, daddr, dport, pkt.skb_iif)
    if sk is not None:
        _enqueue(sk, pkt, saddr, sport, csum_ok)
        return
    if not csum_ok:
        mib["UdpInCsumErrors"] += 1
        mib["UdpInErrors"] += 1
        kfree_skb_reason(pkt, "UDP_CSUM", net)
        return
    mib["UdpNoPorts"] += 1
    from netstack.ipv4.icmp import ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, icmp_send
    icmp_send(pkt, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0)
    kfree_skb_reason(pkt, "NO_SOCKET", net)


def _mcast_deliver(net: "Net", pkt: "Packet", saddr: bytes, sport: int, daddr: bytes,
                   dport: int, csum_ok: bool) -> None:
    """``__udp4_lib_mcast_deliver``: a copy to every matching socket
    (``__udp_is_mcast_sock``); nobody listening → IgnoredMulti, consumed."""
    dif = pkt.skb_iif
    targets = [sk for sk in net.ipv4.udp_sockets
               if sk.num == dport
               and (sk.daddr == ANY or sk.daddr == saddr)
               and (sk.dport == 0 or sk.dport == sport)
               and (sk.rcv_saddr == ANY or sk.rcv_saddr == daddr)
               and (not sk.bound_dev_if or sk.bound_dev_if == dif)]
    if not targets:
        net.ipv4.mib["UdpIgnoredMulti"] += 1
        consume_skb(pkt, "__udp4_lib_mcast_deliver")
        return
    for sk in targets[:-1]:
        _enqueue(sk, pkt.clone(), saddr, sport, csum_ok)
    _enqueue(targets[-1], pkt, saddr, sport, csum_ok)


def udp_err(net: "Net", pkt: "Packet", inner: int, icmp_type: int, code: int, info: int,
            err: int) -> None:
    """``__udp4_lib_err``: find the socket that sent the quoted datagram; a hard error
    reaches a connected socket (or any socket with IP_RECVERR) as ``sk_err``."""
    buf = pkt.buf
    ihl = (buf[inner] & 0x0F) << 2
    uh = inner + ihl
    isaddr = bytes(buf[inner + 12:inner + 16])
    idaddr = bytes(buf[inner + 16:inner + 20])
    sport = (buf[uh] << 8) | buf[uh + 1]
    dport = (buf[uh + 2] << 8) | buf[uh + 3]
    sk = _lookup(net, idaddr, dport, isaddr, sport, pkt.dev.ifindex)
    if sk is None:
        net.ipv4.mib["IcmpInErrors"] += 1
        return
    harderr = False
    from netstack.ipv4.icmp import (ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_PARAMETERPROB)
    if icmp_type == ICMP_DEST_UNREACH:
        if code == ICMP_FRAG_NEEDED:
            if sk.pmtudisc == 0:
                return
            err = errno.EMSGSIZE
            harderr = True
        else:
            harderr = bool(UNREACH_FATAL >> code & 1) if code <= 15 else False
    elif icmp_type == ICMP_PARAMETERPROB:
        harderr = True
    if not sk.recverr and (not harderr or sk.dport == 0):
        return
    sk.err = err
