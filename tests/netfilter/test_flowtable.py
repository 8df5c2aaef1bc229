"""Flowtable fast path on a netstack router (nf_flow_table_ip.c semantics).

The datapath's NF_HOOK call sites are not wired yet (see /tmp/nf_hooks.patch), so this
module wires them for the test only: the IPv4 receive handler runs the netdev ingress hooks
and PRE_ROUTING, and the forward path's output runs FORWARD then POST_ROUTING, which is
where the kernel's ip_forward/ip_output put them."""
from __future__ import annotations

import pytest

from netstack.core.dev import dev_queue_xmit
from netstack.core.neighbour import NUD_PERMANENT, neigh_add
from netstack.core.world import World
from netstack.drivers import veth
from netstack.ipv4 import devinet
from netstack.ipv4 import ip_forward as ipf
from netstack.netfilter import conntrack as nfct
from netstack.netfilter import core as nfc
from netstack.netfilter import flowtable as ftm
from netstack.netfilter import nat
from netstack.packet.ethernet import build_ethernet
from netstack.packet.checksum import ip_fast_csum
from test_ct_core import ip, tcp4, udp4

MAC_R1, MAC_H1 = bytes.fromhex("0200000001fe"), bytes.fromhex("020000000101")
MAC_R2, MAC_H2 = bytes.fromhex("0200000002fe"), bytes.fromhex("020000000201")
H1, H2, R1, R2 = ip("10.0.1.1"), ip("10.0.2.1"), ip("10.0.1.254"), ip("10.0.2.254")


class Router:
    def __init__(self, monkeypatch) -> None:
        self.world = w = World(subsystems=["netstack.ipv4.af_inet"])
        self.r = r = w.netns_add("r")
        h1, h2 = w.netns_add("h1"), w.netns_add("h2")
        r.sysctl.set("net.ipv4.ip_forward", 1)
        self.v1r, self.v1h = veth.create_pair(r, "v1r", MAC_R1, h1, "v1h", MAC_H1)
        self.v2r, self.v2h = veth.create_pair(r, "v2r", MAC_R2, h2, "v2h", MAC_H2)
        devinet.inet_add_addr(r, self.v1r, devinet.IfAddr(local=R1, prefixlen=24))
        devinet.inet_add_addr(r, self.v2r, devinet.IfAddr(local=R2, prefixlen=24))
        neigh_add(r.ipv4.arp_tbl, self.v1r, H1, MAC_H1, state=NUD_PERMANENT)
        neigh_add(r.ipv4.arp_tbl, self.v2r, H2, MAC_H2, state=NUD_PERMANENT)
        for net, devs in ((h1, [self.v1h]), (h2, [self.v2h]),
                          (r, [r.get("lo"), self.v1r, self.v2r])):
            for d in devs:
                net.dev_open(d)
        self.out: dict[str, list[bytes]] = {"v1r": [], "v2r": []}
        r.add_tx_tap(self.v1r, lambda p: self.out["v1r"].append(p.bytes()))
        r.add_tx_tap(self.v2r, lambda p: self.out["v2r"].append(p.bytes()))
        self.forward_seen = 0
        self._wire(monkeypatch)
        nfct.nf_ct_netns_get(r, nfc.NFPROTO_IPV4)
        self.ft = ftm.flowtable_add(r, "f", [self.v1r, self.v2r])
        nfc.nf_register_net_hook(r, nfc.NfHookOps(self._forward_chain, nfc.NFPROTO_IPV4,
                                                  nfc.NF_INET_FORWARD, 0))

    def _forward_chain(self, priv, pkt, state) -> int:
        # ``ip protocol { tcp, udp } flow add @f`` + a counter
        self.forward_seen += 1
        ftm.nft_flow_offload_eval(self.ft, pkt, state)
        return nfc.NF_ACCEPT

    def _wire(self, monkeypatch) -> None:
        if nfc.DATAPATH_WIRED:
            return  # the datapath runs the hooks itself
        world = self.world
        rcv = world.ptype_base[0x0800]

        def ipv4_rcv(pkts):
            keep = []
            for p in pkts:
                if p.dev.net is not self.r:
                    keep.append(p)
                    continue
                p.network_header = p.data
                if nfc.nf_hook_ingress(p) and nfc.nf_hook(
                        p.dev.net, nfc.NFPROTO_IPV4, nfc.NF_INET_PRE_ROUTING, p, p.dev, None):
                    keep.append(p)
            if keep:
                rcv(keep)
        world.ptype_base[0x0800] = ipv4_rcv
        orig_out = ipf.ip_output_list

        def fwd_out(net, pkts, rt, forwarded):
            keep = [p for p in pkts
                    if nfc.nf_hook(net, nfc.NFPROTO_IPV4, nfc.NF_INET_FORWARD, p, p.dev, rt.dev)
                    and nfc.nf_hook(net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, p, p.dev,
                                    rt.dev)]
            if keep:
                orig_out(net, keep, rt, forwarded)
        monkeypatch.setattr(ipf, "ip_output_list", fwd_out)

    def send(self, from_h1: bool, pkt) -> None:
        data = bytes(pkt.buf[pkt.data:pkt.tail])
        if from_h1:
            frame = build_ethernet(MAC_R1, MAC_H1, 0x0800, data)
            dev = self.v1h
        else:
            frame = build_ethernet(MAC_R2, MAC_H2, 0x0800, data)
            dev = self.v2h
        dev_queue_xmit(self.world.new_packet(frame), dev)
        self.world.run_until_idle()


@pytest.fixture()
def rt(monkeypatch) -> Router:
    return Router(monkeypatch)


def tcp_handshake(rt: Router) -> None:
    rt.send(True, tcp4(H1, H2, 40000, 80, 100, 0, 0x02))
    rt.send(False, tcp4(H2, H1, 80, 40000, 900, 101, 0x12))
    rt.send(True, tcp4(H1, H2, 40000, 80, 101, 901, 0x10))


def test_established_tcp_is_offloaded_and_bypasses_forward(rt):
    tcp_handshake(rt)
    assert rt.forward_seen == 3
    ct = nfct.nf_ct_iterate(rt.r)[0]
    # the third packet (ACK) makes the flow established+assured; the ACK itself is offloaded
    assert ct.status & nfct.IPS_OFFLOAD and rt.ft.count() == 1
    for i in range(5):
        rt.send(True, tcp4(H1, H2, 40000, 80, 101 + i, 901, 0x18, b"d"))
        rt.send(False, tcp4(H2, H1, 80, 40000, 901, 102 + i, 0x10))
    assert rt.forward_seen == 3 and rt.ft.stats["hit"] == 10
    f = rt.out["v2r"][-1]
    assert f[:12] == MAC_H2 + MAC_R2 and f[14 + 8] == 63 and ip_fast_csum(f[14:34]) == 0
    assert len(rt.out["v2r"]) == 2 + 5 and len(rt.out["v1r"]) == 1 + 5
    # FIN (6.14+ nf_flow_state_check): forwarded on the fast path, marks the flow closing
    flow = ct.flow
    rt.send(True, tcp4(H1, H2, 40000, 80, 106, 901, 0x11))
    assert rt.forward_seen == 3 and rt.ft.count() == 1 and flow.closing
    assert ct.status & nfct.IPS_OFFLOAD and rt.ft.stats["hit"] == 11
    # a SYN on the closing flow tears it down and takes the slow path; the ct is back in
    # CLOSE (flow_offload_fixup_ct) and later packets hit the forward hook
    rt.send(True, tcp4(H1, H2, 40000, 80, 5000, 0, 0x02))
    assert rt.forward_seen == 4 and rt.ft.count() == 0
    assert not ct.status & nfct.IPS_OFFLOAD and rt.ft.stats["syn_closing"] == 1


def test_udp_offload_timeout_and_ttl_slow_path(rt):
    rt.send(True, udp4(H1, H2, 5000, 53))
    rt.send(False, udp4(H2, H1, 53, 5000))
    assert rt.ft.count() == 1 and rt.forward_seen == 2
    rt.send(True, udp4(H1, H2, 5000, 53))
    assert rt.forward_seen == 2
    p = udp4(H1, H2, 5000, 53)
    p.buf[p.data + 8] = 1  # TTL 1: slow path, the forward path sends time exceeded
    p.buf[p.data + 10:p.data + 12] = b"\0\0"
    p.buf[p.data + 10:p.data + 12] = ip_fast_csum(p.buf[p.data:p.data + 20]).to_bytes(2, "big")
    rt.send(True, p)
    assert rt.ft.stats["ttl"] == 1
    rt.world.clock.now += 31 * 1_000_000_000
    assert rt.ft.gc() == 1 and rt.ft.count() == 0
    rt.send(True, udp4(H1, H2, 5000, 53))
    assert rt.forward_seen == 3


def test_offloaded_flow_with_snat(rt):
    pub = ip("10.0.2.254")
    r = nat.NfNatRange(nat.NF_NAT_RANGE_MAP_IPS, pub, pub)

    def masq(p, state):
        ct, _ = nfct.nf_ct_get(p)
        return nat.nf_nat_setup_info(ct, r, nat.NF_NAT_MANIP_SRC)
    nat.nf_nat_register_fn(rt.r, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100, masq)
    rt.send(True, udp4(H1, H2, 5000, 53))
    assert rt.out["v2r"][-1][14 + 12:14 + 16] == pub
    rt.send(False, udp4(H2, pub, 53, 5000))
    assert rt.out["v1r"][-1][14 + 16:14 + 20] == H1
    assert rt.ft.count() == 1
    rt.send(True, udp4(H1, H2, 5000, 53, b"fast"))
    rt.send(False, udp4(H2, pub, 53, 5000, b"fast"))
    assert rt.ft.stats["hit"] == 2 and rt.forward_seen == 2
    up, down = rt.out["v2r"][-1][14:], rt.out["v1r"][-1][14:]
    assert up[12:16] == pub and up[8] == 63 and ip_fast_csum(up[:20]) == 0
    assert down[16:20] == H1 and down[8] == 63 and ip_fast_csum(down[:20]) == 0
    from test_nat_core import l4_ok
    assert l4_ok(up) and l4_ok(down)


def test_conntrack_delete_tears_down_flow(rt):
    rt.send(True, udp4(H1, H2, 5000, 53))
    rt.send(False, udp4(H2, H1, 53, 5000))
    assert rt.ft.count() == 1
    nfct.nf_ct_flush(rt.r)
    assert rt.ft.count() == 0
    rt.send(True, udp4(H1, H2, 5000, 53))
    assert rt.forward_seen == 3
