"""IPv6 flowtable fast path (nf_flow_offload_ipv6_hook) on a netstack IPv6 router, with
the same test-only hook wiring as test_flowtable.py until the datapath is wired."""
from __future__ import annotations

import pytest

from netstack.core.dev import dev_queue_xmit
from netstack.core.neighbour import NUD_PERMANENT, neigh_add
from netstack.core.world import World
from netstack.drivers import veth
from netstack.ipv6 import ip6_output as ip6o
from netstack.ipv6.addrconf import IFA_F_NODAD, Inet6IfAddr, inet6_add_addr
from netstack.netfilter import conntrack as nfct
from netstack.netfilter import core as nfc
from netstack.netfilter import flowtable as ftm
from netstack.netfilter import nat
from netstack.packet.checksum import csum_ipv6_magic, csum_partial
from netstack.packet.ethernet import build_ethernet
from netstack.packet.ipv6 import build_ipv6
from netstack.packet.udp import build_udp
from test_ct_core import ip

MAC_R1, MAC_H1 = bytes.fromhex("0200000001fe"), bytes.fromhex("020000000101")
MAC_R2, MAC_H2 = bytes.fromhex("0200000002fe"), bytes.fromhex("020000000201")
H1, H2 = ip("2001:db8:1::1"), ip("2001:db8:2::1")
R1, R2 = ip("2001:db8:1::fe"), ip("2001:db8:2::fe")


class Router6:
    def __init__(self, monkeypatch) -> None:
        self.world = w = World(subsystems=["netstack.ipv6.af_inet6"])
        self.r = r = w.netns_add("r")
        h1, h2 = w.netns_add("h1"), w.netns_add("h2")
        r.sysctl.set("net.ipv6.conf.all.forwarding", 1)
        self.v1r, self.v1h = veth.create_pair(r, "v1r", MAC_R1, h1, "v1h", MAC_H1)
        self.v2r, self.v2h = veth.create_pair(r, "v2r", MAC_R2, h2, "v2h", MAC_H2)
        for net, devs in ((h1, [self.v1h]), (h2, [self.v2h]),
                          (r, [r.get("lo"), self.v1r, self.v2r])):
            for d in devs:
                net.dev_open(d)
        inet6_add_addr(r, self.v1r, Inet6IfAddr(R1, 64, flags=IFA_F_NODAD))
        inet6_add_addr(r, self.v2r, Inet6IfAddr(R2, 64, flags=IFA_F_NODAD))
        neigh_add(r.ipv6.nd_tbl, self.v1r, H1, MAC_H1, state=NUD_PERMANENT)
        neigh_add(r.ipv6.nd_tbl, self.v2r, H2, MAC_H2, state=NUD_PERMANENT)
        self.out: dict[str, list[bytes]] = {"v1r": [], "v2r": []}
        r.add_tx_tap(self.v1r, lambda p: self.out["v1r"].append(p.bytes()))
        r.add_tx_tap(self.v2r, lambda p: self.out["v2r"].append(p.bytes()))
        self.forward_seen = 0
        if not nfc.DATAPATH_WIRED:
            self._wire(monkeypatch)
        nfct.nf_ct_netns_get(r, nfc.NFPROTO_IPV6)
        self.ft = ftm.flowtable_add(r, "f6", [self.v1r, self.v2r])
        nfc.nf_register_net_hook(r, nfc.NfHookOps(self._forward_chain, nfc.NFPROTO_IPV6,
                                                  nfc.NF_INET_FORWARD, 0))

    def _forward_chain(self, priv, pkt, state) -> int:
        self.forward_seen += 1
        ftm.nft_flow_offload_eval(self.ft, pkt, state)
        return nfc.NF_ACCEPT

    def _wire(self, monkeypatch) -> None:
        rcv = self.world.ptype_base[0x86DD]

        def ipv6_rcv(pkts):
            keep = []
            for p in pkts:
                if p.dev.net is not self.r:
                    keep.append(p)
                    continue
                p.network_header = p.data
                if nfc.nf_hook_ingress(p) and nfc.nf_hook(
                        p.dev.net, nfc.NFPROTO_IPV6, nfc.NF_INET_PRE_ROUTING, p, p.dev, None):
                    keep.append(p)
            if keep:
                rcv(keep)
        self.world.ptype_base[0x86DD] = ipv6_rcv
        orig = ip6o.ip6_output

        def out(net, pkts):
            if net is self.r and pkts and getattr(pkts[0].dst, "input", "") == "forward":
                dev = pkts[0].dst.dev
                pkts = [p for p in pkts
                        if nfc.nf_hook(net, nfc.NFPROTO_IPV6, nfc.NF_INET_FORWARD, p, p.dev,
                                       dev)
                        and nfc.nf_hook(net, nfc.NFPROTO_IPV6, nfc.NF_INET_POST_ROUTING, p,
                                        p.dev, dev)]
            if pkts:
                orig(net, pkts)
        monkeypatch.setattr(ip6o, "ip6_output", out)

    def send(self, from_h1: bool, src: bytes, dst: bytes, sp: int, dp: int,
             payload: bytes = b"x") -> None:
        data = build_ipv6(src, dst, 17, build_udp(sp, dp, payload, src=src, dst=dst))
        if from_h1:
            frame, dev = build_ethernet(MAC_R1, MAC_H1, 0x86DD, data), self.v1h
        else:
            frame, dev = build_ethernet(MAC_R2, MAC_H2, 0x86DD, data), self.v2h
        dev_queue_xmit(self.world.new_packet(frame), dev)
        self.world.run_until_idle()


def udp6_ok(b: bytes) -> bool:
    return csum_ipv6_magic(b[8:24], b[24:40], len(b) - 40, 17, csum_partial(b[40:])) == 0


@pytest.fixture()
def rt(monkeypatch) -> Router6:
    return Router6(monkeypatch)


def test_ipv6_udp_offload_decrements_hop_limit(rt):
    rt.send(True, H1, H2, 5000, 53)
    rt.send(False, H2, H1, 53, 5000)
    assert rt.ft.count() == 1 and rt.forward_seen == 2
    rt.send(True, H1, H2, 5000, 53, b"fast")
    assert rt.forward_seen == 2 and rt.ft.stats["hit"] == 1
    f = rt.out["v2r"][-1]
    assert f[:12] == MAC_H2 + MAC_R2 and f[14 + 7] == 63 and f[14 + 8:14 + 24] == H1


def test_ipv6_offload_with_snat(rt):
    r = nat.NfNatRange(nat.NF_NAT_RANGE_MAP_IPS, R2, R2)

    def snat(p, state):
        if state.out_dev is not None and state.out_dev.name == "v2r":
            return nat.nf_nat_setup_info(nfct.nf_ct_get(p)[0], r, nat.NF_NAT_MANIP_SRC)
        return nfc.NF_ACCEPT
    nat.nf_nat_register_fn(rt.r, nfc.NFPROTO_IPV6, nfc.NF_INET_POST_ROUTING, 100, snat)
    rt.send(True, H1, H2, 5000, 53)
    assert rt.out["v2r"][-1][14 + 8:14 + 24] == R2
    rt.send(False, H2, R2, 53, 5000)
    assert rt.out["v1r"][-1][14 + 24:14 + 40] == H1 and rt.ft.count() == 1
    for i in range(3):
        rt.send(True, H1, H2, 5000, 53, bytes([i]) * (7 + i))
        rt.send(False, H2, R2, 53, 5000, bytes([i]) * (3 + i))
    assert rt.ft.stats["hit"] == 6 and rt.forward_seen == 2
    up, down = rt.out["v2r"][-1][14:], rt.out["v1r"][-1][14:]
    assert up[8:24] == R2 and up[7] == 63 and udp6_ok(up)
    assert down[24:40] == H1 and down[7] == 63 and udp6_ok(down)
