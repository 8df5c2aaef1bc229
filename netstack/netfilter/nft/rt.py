"""``rt`` expressions: the route the packet already has (net/netfilter/nft_rt.c
``nft_rt_get_eval``): ``rt [ip|ip6] nexthop`` is the next hop of the packet's dst
(``rt_nexthop``/``rt6_nexthop``: the gateway, or the destination itself on-link) and
``rt mtu`` the TCP MSS it allows (``get_tcpmss``: the smaller of the dst's MTU and the
MTU of the route back to the source, minus the IP and TCP headers; 536 when that is out
of range).  Without a dst (prerouting) the rule does not match.  This is what ``tcp
option maxseg size set rt mtu`` (MSS clamping) reads."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from netstack.netfilter.nft.vm import NFT_BREAK, PktInfo, Regs, VmExpr, _put, reg_name

TCP_MSS_DEFAULT = 536
KEYS = {"nexthop4": 1, "nexthop6": 2, "tcpmss": 4}


def _pf(info: PktInfo) -> int:
    pf = getattr(info.state, "pf", 0)
    if pf in (2, 10):
        return pf
    return {0x0800: 2, 0x86DD: 10}.get(info.pkt.protocol, 0)


def _dst_mtu(dst) -> int:
    return dst.mtu()


def get_tcpmss(info: PktInfo, dst) -> int:
    pkt, net = info.pkt, info.net
    nh = pkt.network_header
    mtu = _dst_mtu(dst)
    pf = _pf(info)
    back = None
    from netstack.errors import KernelError
    try:
        if pf == 2:
            minlen = 40
            from netstack.ipv4.fib import Flowi4
            from netstack.ipv4.route import ip_route_output
            back = ip_route_output(net, Flowi4(daddr=bytes(pkt.buf[nh + 12:nh + 16])))
        else:
            minlen = 60
            from netstack.ipv6.route import Flowi6, ip6_route_output
            back = ip6_route_output(net, Flowi6(bytes(pkt.buf[nh + 8:nh + 24])))
    except KernelError:
        back = None
    if pf not in (2, 10):
        minlen = 40
    if back is not None:
        mtu = min(mtu, _dst_mtu(back))
    if mtu <= minlen or mtu > 0xFFFF:
        return TCP_MSS_DEFAULT
    return mtu - minlen


@dataclass
class RtLoad(VmExpr):
    key: str
    dreg: int

    def netlink(self) -> str:
        return f"[ rt load {self.key} => reg {reg_name(self.dreg)} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        pkt = info.pkt
        dst = getattr(pkt, "dst", None)
        if dst is None or info.net is None:
            regs.code = NFT_BREAK
            return
        nh = pkt.network_header
        if self.key == "nexthop4":
            if _pf(info) != 2:
                regs.code = NFT_BREAK
                return
            daddr = bytes(pkt.buf[nh + 16:nh + 20])
            gw = getattr(dst, "gateway", None)
            _put(regs, self.dreg, bytes(gw) if gw else daddr)
        elif self.key == "nexthop6":
            if _pf(info) != 10:
                regs.code = NFT_BREAK
                return
            _put(regs, self.dreg, bytes(dst.nexthop(bytes(pkt.buf[nh + 24:nh + 40]))))
        else:
            _put(regs, self.dreg, struct.pack("<H", get_tcpmss(info, dst)))
