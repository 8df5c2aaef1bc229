"""UDP over IPv6 and ICMPv6 echo sockets on the Python API (net/ipv6/udp.c, ping.c).

Receive (``__udp6_lib_rcv``): a header that does not fit or a length field beyond the data
or below 8 → PKT_TOO_SMALL; the datagram is trimmed to the UDP length; a zero checksum is
always an error over IPv6 (RFC 8200 §8.1; ``udp6_csum_zero_error``, UDP_CSUM) whether or
not a socket listens; a wrong checksum → UDP_CSUM; no socket → ICMPv6 port unreachable
and NO_SOCKET.  Packets that arrive CHECKSUM_PARTIAL/UNNECESSARY (a local sender on an
offloading device, as veth passes them) are not re-verified, as in the kernel.

Encapsulation sockets (vxlan, geneve) take the datagrams of their port first
(:func:`netstack.ipv4.udp_tunnel.udp_tunnel_rcv`), with the zero-checksum rule measured
for tunnel sockets on 6.18.

Send: ``sendto`` routes with ``ip6_route_output`` (the bound device as oif), picks the
source as the kernel does (bound address, else the route's source selection), auto-binds
an ephemeral port, and writes the checksum completely unless the output device offloads it
(``tx-checksum-ip-generic``/``tx-checksum-ipv6``): then, like ``udp6_hwcsum_outgoing``, the
field holds the folded pseudo-header sum and the packet is CHECKSUM_PARTIAL — which is
what a capture on a veth peer sees on a real kernel.  Datagrams above the path MTU are
fragmented (IPv6 sockets default to IPV6_PMTUDISC_WANT, so ``ignore_df``).
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.errors import KernelError
from netstack.ipv6.addr import ANY, a6, is_multicast, s6
from netstack.packet.checksum import csum_ipv6_magic, csum_partial, pseudo_sum_v6
from netstack.packet.skb import CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb import Packet

IPPROTO_UDP = 17
EPHEMERAL = (32768, 60999)
#: ``sk_rcvbuf`` budget in datagrams (the kernel counts bytes; netstack counts packets).
RCVQ_MAX = 1024


class Udp6Socket:
    """An AF_INET6/SOCK_DGRAM socket."""

    ignore_df = True

    def __init__(self, net: "Net") -> None:
        self.net = net
        self.laddr: bytes = ANY
        self.lport = 0
        self.dev: "NetDevice | None" = None
        self.queue: list[tuple[bytes, tuple[str, int]]] = []
        self.errors: list[tuple[int, int, int]] = []
        self.closed = False
        self.drops = 0

    def bind(self, addr: tuple[str, int], dev: "NetDevice | None" = None) -> None:
        """``inet6_bind``: the address must be ours (EADDRNOTAVAIL), the port free
        (EADDRINUSE); port 0 picks an ephemeral one."""
        from netstack.ipv6.addrconf import ipv6_get_ifaddr
        if self.lport:
            raise KernelError(errno.EINVAL)
        a = a6(addr[0])
        port = int(addr[1])
        if a != ANY and not is_multicast(a) and ipv6_get_ifaddr(self.net, a, None) is None:
            raise KernelError(errno.EADDRNOTAVAIL)
        socks = self.net.ipv6.udp_socks
        if port == 0:
            port = self._ephemeral()
        if self.net.proto.get("udp_encap_needed"):
            # a tunnel socket (vxlan, geneve) holds its port like any UDP socket
            from netstack.ipv4.udp_tunnel import AF_INET6, tunnel_port_in_use
            if tunnel_port_in_use(self.net, AF_INET6, port, a):
                raise KernelError(errno.EADDRINUSE)
        for s in socks.get(port, ()):
            if s.laddr == ANY or a == ANY or s.laddr == a:
                if s.dev is None or dev is None or s.dev is dev:
                    raise KernelError(errno.EADDRINUSE)
        self.laddr, self.lport, self.dev = a, port, dev
        socks.setdefault(port, []).append(self)

    def _ephemeral(self) -> int:
        socks = self.net.ipv6.udp_socks
        rng = self.net.world.rng
        lo, hi = EPHEMERAL
        start = rng.randrange(lo, hi + 1)
        for i in range(hi - lo + 1):
            p = lo + (start - lo + i) % (hi - lo + 1)
            if p not in socks:
                return p
        raise KernelError(errno.EAGAIN)

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        """``udpv6_sendmsg`` (uncorked): route, source, header, checksum, output."""
        from netstack.ipv6.addrconf import ipv6_dev_get_saddr
        from netstack.ipv6.ip6_output import ip6_send
        from netstack.ipv6.route import Flowi6, ip6_dst_mtu, ip6_route_output
        if self.closed:
            raise KernelError(errno.EBADF)
        daddr = a6(addr[0])
        dport = int(addr[1])
        if dport == 0:
            raise KernelError(errno.EINVAL)
        if len(data) > 65535 - 8:
            raise KernelError(errno.EMSGSIZE)
        if not self.lport:
            self.bind(("::", 0), self.dev)
        net = self.net
        oif = self.dev.ifindex if self.dev is not None else 0
        saddr = self.laddr if not is_multicast(self.laddr) else ANY
        dst = ip6_route_output(net, Flowi6(daddr, saddr, oif, 0, 0, IPPROTO_UDP,
                                           self.lport, dport))
        if saddr == ANY:
            s = dst.prefsrc or ipv6_dev_get_saddr(net, dst.dev, daddr)
            if s is None:
                raise KernelError(errno.EADDRNOTAVAIL)
            saddr = s
        ulen = 8 + len(data)
        seg = bytearray(self.lport.to_bytes(2, "big") + dport.to_bytes(2, "big")
                        + ulen.to_bytes(2, "big") + b"\0\0" + bytes(data))
        offload = dst.dev is not None and bool(
            {"tx-checksum-ip-generic", "tx-checksum-ipv6"} & dst.dev.features) \
            and ulen + 40 <= ip6_dst_mtu(net, dst, daddr)
        if offload:
            # ~csum_ipv6_magic(saddr, daddr, len, IPPROTO_UDP, 0): the uninverted pseudo sum
            c = pseudo_sum_v6(saddr, daddr, ulen, IPPROTO_UDP)
        else:
            c = csum_ipv6_magic(saddr, daddr, ulen, IPPROTO_UDP, csum_partial(seg)) or 0xFFFF
        seg[6], seg[7] = c >> 8, c & 0xFF
        net.ipv6.mib["UdpOutDatagrams"] += 1
        ip6_send(net, dst, saddr, daddr, IPPROTO_UDP, bytes(seg), sk=self,
                 sport=self.lport, dport=dport, partial_csum=offload)
        return len(data)

    def recvfrom(self) -> tuple[bytes, tuple[str, int]] | None:
        """Next queued datagram with its (address, port), or None."""
        return self.queue.pop(0) if self.queue else None

    def close(self) -> None:
        socks = self.net.ipv6.udp_socks.get(self.lport)
        if socks and self in socks:
            socks.remove(self)
            if not socks:
                del self.net.ipv6.udp_socks[self.lport]
        self.closed = True


def udp6_socket(net: "Net") -> Udp6Socket:
    """``socket(AF_INET6, SOCK_DGRAM, 0)`` in ``net``."""
    return Udp6Socket(net)


def _lookup(net: "Net", daddr: bytes, dport: int, dev: "NetDevice") -> list[Udp6Socket]:
    """``__udp6_lib_lookup``: an exact local address beats the wildcard; multicast
    destinations go to every matching socket (``__udp6_lib_mcast_deliver``)."""
    socks = net.ipv6.udp_socks.get(dport, ())
    cands = [s for s in socks if (s.dev is None or s.dev is dev)
             and (s.laddr == ANY or s.laddr == daddr)]
    if is_multicast(daddr):
        return cands
    exact = [s for s in cands if s.laddr == daddr]
    return exact[:1] or cands[:1]


def udpv6_rcv(pkt: "Packet") -> None:
    """``udpv6_rcv`` → ``__udp6_lib_rcv``."""
    net = pkt.dev.net
    mib = net.ipv6.mib
    buf = pkt.buf
    o, th = pkt.network_header, pkt.transport_header
    n = pkt.tail - th
    if n < 8:
        mib["UdpInErrors"] += 1
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return
    ulen = (buf[th + 4] << 8) | buf[th + 5]
    if ulen == 0:
        ulen = n
    if ulen > n or ulen < 8:
        mib["UdpInErrors"] += 1
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return
    pkt.tail = th + ulen
    saddr = bytes(buf[o + 8:o + 24])
    daddr = bytes(buf[o + 24:o + 40])
    if net.proto.get("udp_encap_needed"):
        # a tunnel socket (vxlan, geneve) on the port: udpv6_queue_rcv_one_skb's encap_rcv,
        # with UDP_NO_CHECK6_RX deciding whether a zero checksum is accepted
        from netstack.ipv4.udp_tunnel import AF_INET6, udp_tunnel_lookup, udp_tunnel_rcv
        tdport = (buf[th + 2] << 8) | buf[th + 3]
        tsport = (buf[th] << 8) | buf[th + 1]
        tsk = udp_tunnel_lookup(net, AF_INET6, tdport, daddr, pkt.skb_iif, saddr, tsport)
        if tsk is not None:
            pkt.data = th
            udp_tunnel_rcv(tsk, pkt)
            return
    check = (buf[th + 6] << 8) | buf[th + 7]
    if check == 0:
        mib["UdpInCsumErrors"] += 1
        mib["UdpInErrors"] += 1
        kfree_skb_reason(pkt, "UDP_CSUM", net)
        return
    if pkt.ip_summed not in (CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY) and csum_ipv6_magic(
            saddr, daddr, ulen, IPPROTO_UDP, csum_partial(buf[th:th + ulen])) != 0:
        mib["UdpInCsumErrors"] += 1
        mib["UdpInErrors"] += 1
        kfree_skb_reason(pkt, "UDP_CSUM", net)
        return
    sport = (buf[th] << 8) | buf[th + 1]
    dport = (buf[th + 2] << 8) | buf[th + 3]
    socks = _lookup(net, daddr, dport, pkt.dev)
    if not socks:
        mib["UdpNoPorts"] += 1
        from netstack.ipv6.icmp import icmp6_send
        icmp6_send(pkt, 1, 4, 0)
        kfree_skb_reason(pkt, "NO_SOCKET", net)
        return
    payload = bytes(buf[th + 8:th + ulen])
    for s in socks:
        if len(s.queue) >= RCVQ_MAX:
            s.drops += 1
            mib["UdpRcvbufErrors"] += 1
            continue
        s.queue.append((payload, (s6(saddr), sport)))
        mib["UdpInDatagrams"] += 1
    consume_skb(pkt, "udpv6_queue_rcv_skb")


# ------------------------------------------------------------------ ICMPv6
class Ping6Socket:
    """An ICMPv6 echo (``ping``) socket: ``replies`` holds (source, ident, seq, data)."""

    def __init__(self, net: "Net", ident: int) -> None:
        self.net = net
        self.ident = ident
        self.replies: list[tuple[str, int, int, bytes]] = []
        self.errors: list[tuple[int, int, int]] = []
        net.ipv6.raw_echo.append(self)

    def send(self, dst_str: str, seq: int, payload: bytes = b"", oif: int = 0) -> None:
        """Send one echo request (``ping_v6_sendmsg``)."""
        from netstack.ipv6.addrconf import ipv6_dev_get_saddr
        from netstack.ipv6.ip6_output import ip6_send
        from netstack.ipv6.route import Flowi6, ip6_route_output
        net = self.net
        daddr = a6(dst_str)
        dst = ip6_route_output(net, Flowi6(daddr, ANY, oif, 0, 0, 58))
        saddr = dst.prefsrc or ipv6_dev_get_saddr(net, dst.dev, daddr)
        if saddr is None:
            raise KernelError(errno.EADDRNOTAVAIL)
        body = bytearray(bytes((128, 0, 0, 0)) + (self.ident & 0xFFFF).to_bytes(2, "big")
                         + (seq & 0xFFFF).to_bytes(2, "big") + bytes(payload))
        c = csum_ipv6_magic(saddr, daddr, len(body), 58, csum_partial(body))
        body[2], body[3] = c >> 8, c & 0xFF
        ip6_send(net, dst, saddr, daddr, 58, bytes(body), sk=self)


def ping6(net: "Net", dst_str: str, ident: int, seq: int, payload: bytes = b"",
          oif: int = 0) -> Ping6Socket:
    """Send one echo request from a fresh ping socket; replies appear in ``.replies``."""
    s = Ping6Socket(net, ident)
    s.send(dst_str, seq, payload, oif)
    return s


def icmpv6_to_sockets(net: "Net", pkt: "Packet", type_: int) -> None:
    """Echo replies to the ping socket with that identifier; errors (``icmpv6_notify``)
    to the UDP/ping socket whose datagram is quoted (``sk->sk_err``-style record); a
    Packet Too Big for a socket's datagram installs a PMTU exception."""
    buf = pkt.buf
    th = pkt.transport_header
    o = pkt.network_header
    if type_ == 129:
        if pkt.tail - th < 8:
            return
        ident = (buf[th + 4] << 8) | buf[th + 5]
        seq = (buf[th + 6] << 8) | buf[th + 7]
        for s in net.ipv6.raw_echo:
            if s.ident == ident:
                s.replies.append((s6(bytes(buf[o + 8:o + 24])), ident, seq,
                                  bytes(buf[th + 8:pkt.tail])))
        return
    q = th + 8
    if pkt.tail - q < 48 or buf[q] >> 4 != 6:
        return
    info = int.from_bytes(buf[th + 4:th + 8], "big")
    qdaddr = bytes(buf[q + 24:q + 40])
    matched = False
    if buf[q + 6] == IPPROTO_UDP:
        sport = (buf[q + 40] << 8) | buf[q + 41]
        for s in net.ipv6.udp_socks.get(sport, ()):
            s.errors.append((type_, buf[th + 1], info))
            matched = True
    elif buf[q + 6] == 58 and pkt.tail - q >= 48 + 4:
        ident = (buf[q + 44] << 8) | buf[q + 45]
        for s in net.ipv6.raw_echo:
            if s.ident == ident:
                s.errors.append((type_, buf[th + 1], info))
                matched = True
    if matched and type_ == 2:
        # udpv6_err/ping_err → ip6_sk_update_pmtu: a socket learns the path MTU
        from netstack.ipv6.route import rt6_update_pmtu
        rt6_update_pmtu(net, qdaddr, info)


def sockets(net: "Net") -> list[Any]:
    """All UDP sockets of the namespace (for ``ss``-like listings)."""
    return [s for lst in net.ipv6.udp_socks.values() for s in lst]
