"""The batched flowtable fast path (``nf_flow_offload_list_hook``) must do, packet for
packet, what the per-packet hook (``nf_flow_offload_ip_hook``/``_ipv6_hook``, i.e.
nf_flow_table_ip.c) does: same frames out of every device in the same per-device order,
same misses in the same order, same teardowns (FIN/RST, timeout on the virtual clock),
same refreshes (``flow_offload_refresh``'s 1 s rule), same counters.  Only the transmit is
grouped: one ``dev_queue_xmit_list`` per output device and next hop."""
from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.api import Stack
from netstack.core.dev import dev_queue_xmit_list
from netstack.core.eth import eth_type_trans
from netstack.netfilter import conntrack as nfct
from netstack.netfilter import core as nfc
from netstack.netfilter import flowtable as ftm
from netstack.packet.ethernet import build_ethernet
from netstack.packet.ipv4 import build_ipv4
from netstack.packet.ipv6 import build_ipv6
from netstack.packet.tcp import build_tcp
from netstack.packet.udp import build_udp

SETUP = """
ip netns add h1
ip netns add r
ip netns add h2
ip -n h1 link add eth0 address 02:00:00:00:01:01 type veth peer name r-h1 netns r address 02:00:00:00:01:fe
ip -n h2 link add eth0 address 02:00:00:00:02:02 type veth peer name r-h2 netns r address 02:00:00:00:02:fe
ip netns exec r sysctl -q -w net.ipv4.ip_forward=1
ip netns exec r sysctl -q -w net.ipv6.conf.all.forwarding=1
ip -n r link set r-h2 mtu 1400
ip -n r addr add 10.0.1.254/24 dev r-h1
ip -n r addr add 10.0.2.254/24 dev r-h2
ip -n r addr add fd01::fe/64 dev r-h1 nodad
ip -n r addr add fd02::fe/64 dev r-h2 nodad
ip -n r neigh add 10.0.2.2 lladdr 02:00:00:00:02:02 dev r-h2 nud permanent
ip -n r neigh add 10.0.1.1 lladdr 02:00:00:00:01:01 dev r-h1 nud permanent
ip -n r neigh add fd02::2 lladdr 02:00:00:00:02:02 dev r-h2 nud permanent
ip -n r neigh add fd01::1 lladdr 02:00:00:00:01:01 dev r-h1 nud permanent
ip -n r link set r-h1 up
ip -n r link set r-h2 up
ip -n h1 link set eth0 up
ip -n h2 link set eth0 up
"""
RULES = """table inet f {
 flowtable ft { hook ingress priority 0; devices = { "r-h1", "r-h2" }; }
 chain fwd { type filter hook forward priority 0; policy accept;
  meta l4proto { tcp, udp } ct state established flow add @ft }
}
table ip nat {
 chain post { type nat hook postrouting priority 100; policy accept;
  oifname "r-h2" masquerade }
}
"""
H1_MAC, R1_MAC = bytes.fromhex("020000000101"), bytes.fromhex("0200000001fe")
H2_MAC, R2_MAC = bytes.fromhex("020000000202"), bytes.fromhex("0200000002fe")
H1, H2, PUB = bytes([10, 0, 1, 1]), bytes([10, 0, 2, 2]), bytes([10, 0, 2, 254])
H1_6, H2_6 = bytes.fromhex("fd01" + "00" * 13 + "01"), bytes.fromhex("fd02" + "00" * 13 + "02")
N_UDP, N_TCP, N_UDP6 = 3, 2, 2
#: flows: ("udp", i) / ("tcp", i) / ("udp6", i); source ports by kind
SPORT = {"udp": 4000, "tcp": 5000, "udp6": 6000}


def _frame(kind: str, i: int, orig: bool, payload: bytes = b"p", ttl: int = 64,
           tcp_flags: int = 0x10, frag: bool = False, seq: int = 1000) -> bytes:
    sp = SPORT[kind] + i
    if kind == "udp6":
        s, d = (H1_6, H2_6) if orig else (H2_6, H1_6)
        ports = (sp, 53) if orig else (53, sp)
        ip = build_ipv6(s, d, 17, build_udp(*ports, payload, src=s, dst=d), hop_limit=ttl)
        et = 0x86DD
    else:
        s, d = (H1, H2) if orig else (H2, PUB)
        ports = (sp, 80) if orig else (80, sp)
        if kind == "udp":
            l4, proto = build_udp(*ports, payload, src=s, dst=d), 17
        else:
            l4 = build_tcp(*ports, seq=seq, ack=seq, flags=tcp_flags, payload=payload,
                           src=s, dst=d)
            proto = 6
        ip = bytearray(build_ipv4(s, d, proto, l4, ttl=ttl, id=i))
        if frag:     # more-fragments bit (checksum left as is: the hook never reads it)
            ip[6] |= 0x20
        ip = bytes(ip)
        et = 0x0800
    return build_ethernet(R1_MAC, H1_MAC, et, ip) if orig else \
        build_ethernet(R2_MAC, H2_MAC, et, ip)


class World:
    """h1 — r — h2 with a masquerading router, a flowtable on both ports and every flow of
    ``N_UDP`` + ``N_TCP`` + ``N_UDP6`` offloaded; rx taps record what h1 and h2 receive."""

    def __init__(self) -> None:
        self.st = st_ = Stack()
        st_.run_script(SETUP, name="nfc-setup")
        w = self.w = st_.world
        self.r = w.netns("r")
        self.h1 = w.netns("h1").get("eth0")
        self.h2 = w.netns("h2").get("eth0")
        self.r1 = self.r.get("r-h1")
        self.r2 = self.r.get("r-h2")
        self.got: dict[str, list[bytes]] = {"h1": [], "h2": []}
        for name, dev in (("h1", self.h1), ("h2", self.h2)):
            dev.net.add_rx_tap(dev, lambda p, n=name: self.got[n].append(
                bytes(p.buf[p.mac_header:p.tail])))
        with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
            f.write(RULES)
        try:
            res = st_.command(["ip", "netns", "exec", "r", "nft", "-f", f.name])
        finally:
            os.unlink(f.name)
        assert res.rc == 0, res.stderr
        self.ft = nfc.nf_net(self.r).flowtables[0]
        for i in range(N_UDP):
            self._send(True, _frame("udp", i, True))
            self._send(False, _frame("udp", i, False))
        for i in range(N_UDP6):
            self._send(True, _frame("udp6", i, True))
            self._send(False, _frame("udp6", i, False))
        for i in range(N_TCP):
            self._send(True, _frame("tcp", i, True, b"", tcp_flags=0x02, seq=999))
            self._send(False, _frame("tcp", i, False, b"", tcp_flags=0x12, seq=999))
            self._send(True, _frame("tcp", i, True, b""))
        assert self.ft.count() == N_UDP + N_TCP + N_UDP6, self.ft.count()
        self.got = {"h1": [], "h2": []}

    def _send(self, from_h1: bool, frame: bytes) -> None:
        dev_queue_xmit_list(self.h1 if from_h1 else self.h2, [self.w.new_packet(frame)])
        self.w.run_until_idle()

    def ingress(self, frames: list[tuple[bool, bytes]]) -> list[Any]:
        """Packets as r's ports hand them to the ingress hook (Ethernet header pulled)."""
        out = []
        for orig, fr in frames:
            p = self.w.new_packet(fr)
            p.protocol = eth_type_trans(p, self.r1 if orig else self.r2)
            out.append(p)
        return out

    def state(self, dev: Any) -> nfc.NfHookState:
        return nfc.NfHookState(nfc.NF_NETDEV_INGRESS, nfc.NFPROTO_NETDEV, self.r, dev, None)

    def snapshot(self) -> dict:
        flows = {}
        for key, (flow, d) in self.ft.flows.items():
            flows[key] = (d, flow.timeout)
        cts = sorted((ct.tuplehash[0].sport, ct.status & nfct.IPS_OFFLOAD,
                      str(ct.acct), ct.timeout) for ct in nfct.nf_ct_iterate(self.r))
        return {"got": self.got, "stats": self.ft.stats, "flows": flows, "cts": cts}


FLOWS = [("udp", i) for i in range(N_UDP)] + [("tcp", i) for i in range(N_TCP)] + \
    [("udp6", i) for i in range(N_UDP6)] + [("udp", 9)]        # ("udp", 9): never offloaded
VARIANTS = ["plain", "plain", "plain", "fin", "rst", "syn", "ttl1", "frag", "big"]


def _mk(flow: tuple[str, int], orig: bool, variant: str, n: int) -> tuple[bool, bytes]:
    kind, i = flow
    if variant in ("fin", "rst", "syn") and kind != "tcp":
        variant = "plain"
    if variant == "frag" and kind == "udp6":
        variant = "plain"
    payload = bytes([n & 0xFF]) * (1450 if variant == "big" else 1 + n % 7)
    return orig, _frame(kind, i, orig, payload, ttl=1 if variant == "ttl1" else 64,
                        tcp_flags={"fin": 0x11, "rst": 0x04, "syn": 0x02}.get(variant, 0x10),
                        frag=variant == "frag")


batch = st.lists(st.tuples(st.sampled_from(FLOWS), st.booleans(),
                           st.sampled_from(VARIANTS)), min_size=1, max_size=24)


def _run(world: World, lists: list[list[tuple[bool, bytes]]], advances: list[int],
         batched: bool) -> tuple[dict, list[list[bytes]]]:
    misses = []
    for frames, adv in zip(lists, advances):
        world.w.advance(adv / 1000)
        for orig in (True, False):
            pkts = world.ingress([f for f in frames if f[0] == orig])
            dev = world.r1 if orig else world.r2
            if batched:
                left = ftm.nf_flow_offload_list_hook(world.ft, pkts, world.state(dev))
            else:
                left = [p for p in pkts if ftm.nf_flow_offload_ip_hook(
                    world.ft, p, world.state(dev)) == nfc.NF_ACCEPT]
            misses.append([bytes(p.buf[p.data:p.tail]) for p in left])
        world.w.run_until_idle()
    return world.snapshot(), misses


@settings(max_examples=12, deadline=None)
@given(lists=st.lists(batch, min_size=1, max_size=3),
       advances=st.lists(st.sampled_from([0, 400, 1500, 29_000, 31_000]), min_size=3,
                         max_size=3))
def test_batched_equals_per_packet_on_random_flow_mixes(lists, advances):
    frames = [[_mk(fl, orig, v, n) for n, (fl, orig, v) in enumerate(b)] for b in lists]
    a, b = World(), World()
    snap_a, miss_a = _run(a, frames, advances, True)
    snap_b, miss_b = _run(b, frames, advances, False)
    assert miss_a == miss_b
    assert snap_a == snap_b


def test_hits_leave_as_one_batch_per_output_device_misses_in_order():
    w = World()
    frames = [_frame("udp", i % N_UDP, True, bytes([i])) for i in range(10)]
    frames.insert(3, _frame("udp", 9, True, b"miss1"))
    frames.insert(7, _frame("udp6", 0, True, b"v6", ttl=1))
    frames.insert(9, _frame("udp6", 1, True, b"\x63"))
    pkts = w.ingress([(True, f) for f in frames])
    bells = w.r2.doorbells
    left = ftm.nf_flow_offload_list_hook(w.ft, pkts, w.state(w.r1))
    # IPv4 and IPv6 hits share the device but not the next hop: three runs, in list order
    assert w.r2.doorbells - bells == 3
    assert len(left) == 2 and bytes(left[0].buf[left[0].tail - 5:left[0].tail]) == b"miss1"
    assert left[1].protocol == 0x86DD and w.ft.stats["ttl"] == 1
    w.w.run_until_idle()
    # order on the device kept
    assert [f[-1] for f in w.got["h2"]] == [0, 1, 2, 3, 4, 5, 6, 0x63, 7, 8, 9]
    assert w.ft.stats["hit"] == 11


def test_fin_in_a_list_closes_and_a_later_syn_tears_down():
    """nf_flow_state_check (6.14+): the FIN is forwarded on the fast path and marks the
    flow closing, so the packet after it still hits; a SYN then tears the flow down and
    it and everything after it take the slow path — within one list as across lists.
    The ct comes back in CLOSE with the close timeout (flow_offload_fixup_ct)."""
    w = World()
    fl = [(True, _frame("tcp", 0, True, b"a")), (True, _frame("tcp", 0, True, b"", tcp_flags=0x11)),
          (True, _frame("tcp", 0, True, b"b")), (True, _frame("tcp", 0, True, b"", tcp_flags=0x02)),
          (True, _frame("tcp", 0, True, b"c"))]
    left = ftm.nf_flow_offload_list_hook(w.ft, w.ingress(fl), w.state(w.r1))
    assert len(left) == 2 and w.ft.stats == {"hit": 3, "syn_closing": 1}
    assert w.ft.count() == N_UDP + N_TCP + N_UDP6 - 1
    ct = next(c for c in nfct.nf_ct_iterate(w.r) if c.tuplehash[0].sport == SPORT["tcp"])
    assert not ct.status & nfct.IPS_OFFLOAD and ct.proto.state == 8      # CLOSE
    assert ct.timeout - w.w.clock.now == 10 * ftm.NSEC


def test_offloaded_ct_lives_a_day_and_gets_its_timeout_back():
    """flow_offload_add refreshes the ct to NF_CT_DAY; a slow-path packet (TTL 1) lets
    conntrack set its own 30 s again, which the once-a-second GC pushes back to a day
    (nf_flow_table_extend_ct_timeout); the GC tears the idle flow down when it expires and
    gives the replied UDP ct the stream timeout minus the 30 s it idled (120 - 30)."""
    w = World()
    ct = next(c for c in nfct.nf_ct_iterate(w.r) if c.tuplehash[0].sport == SPORT["udp"])
    flow = ct.flow
    assert ct.status & nfct.IPS_OFFLOAD
    assert ct.timeout - w.w.clock.now > (ftm.NF_CT_DAY - 5) * ftm.NSEC
    w._send(True, _frame("udp", 0, True, ttl=1))
    assert ct.timeout - w.w.clock.now <= 30 * ftm.NSEC
    w.w.advance(1)
    assert ct.timeout - w.w.clock.now >= (ftm.NF_CT_DAY - 1) * ftm.NSEC
    expiry = flow.timeout
    w.w.advance(31)
    assert not ct.status & nfct.IPS_OFFLOAD and flow.teardown and w.ft.count() == 0
    assert ct.timeout == expiry + 90 * ftm.NSEC
    left = ftm.nf_flow_offload_list_hook(w.ft, w.ingress([(True, _frame("udp", 0, True))]),
                                         w.state(w.r1))
    assert len(left) == 1


def test_accounting_only_with_the_counter_flag():
    """NF_FLOWTABLE_COUNTER: without ``counter`` the fast path leaves the ct's counters
    alone; with it each packet is counted in its direction."""
    w = World()
    nfct.ct_net(w.r)
    ct = next(c for c in nfct.nf_ct_iterate(w.r) if c.tuplehash[0].sport == SPORT["udp"])
    ct.acct = [[0, 0], [0, 0]]
    ftm.nf_flow_offload_list_hook(w.ft, w.ingress([(True, _frame("udp", 0, True))]),
                                  w.state(w.r1))
    assert ct.acct == [[0, 0], [0, 0]] and w.ft.hits == 1
    w.ft.counter = True
    ftm.nf_flow_offload_list_hook(w.ft, w.ingress([(True, _frame("udp", 0, True, b"xy"))]),
                                  w.state(w.r1))
    assert ct.acct == [[1, 30], [0, 0]]


def test_refresh_writes_only_a_move_of_more_than_one_second():
    w = World()
    flow = w.ft.flows[next(iter(w.ft.flows))][0]
    t0 = flow.timeout
    kind = "udp" if flow.ct.protonum == 17 and flow.ct.l3num == 2 else None
    assert kind == "udp"
    i = flow.ct.tuplehash[0].sport - SPORT["udp"]
    w.w.advance(0.5)
    ftm.nf_flow_offload_list_hook(w.ft, w.ingress([(True, _frame("udp", i, True))]),
                                  w.state(w.r1))
    assert flow.timeout == t0
    w.w.advance(0.6)
    ftm.nf_flow_offload_list_hook(w.ft, w.ingress([(True, _frame("udp", i, True))]),
                                  w.state(w.r1))
    assert flow.timeout == w.w.clock.now + ftm.FLOW_TIMEOUT * ftm.NSEC


@pytest.mark.skipif(not hasattr(nfc, "nf_hook_ingress_list"),
                    reason="patch NFC-1 (netfilter/core.py nf_hook_ingress_list) not applied")
def test_receive_list_reaches_the_flowtable_as_one_list():
    """Through the real receive path: a batch of 32 offloaded packets sent by h1 crosses r
    with one doorbell on r-h2 (the per-packet hook rings one per packet)."""
    w = World()
    if not any(o.list_hook is not None for o in
               nfc.nf_hook_entries(w.r, nfc.NFPROTO_NETDEV, nfc.NF_NETDEV_INGRESS, w.r1)):
        pytest.fail("the flowtable registered no list hook")
    bells = w.r2.doorbells
    dev_queue_xmit_list(w.h1, [w.w.new_packet(_frame("udp", i % N_UDP, True, bytes([i])))
                               for i in range(32)])
    w.w.run_until_idle()
    assert [f[-1] for f in w.got["h2"]] == list(range(32))
    import netstack.core.dev as devmod
    if not hasattr(devmod, "_nf_ingress_run"):
        pytest.skip("patch NFC-2 (core/dev.py list ingress) not applied")
    assert w.r2.doorbells - bells == 1


@pytest.mark.skipif(not hasattr(nfc, "nf_hook_ingress_list"),
                    reason="patch NFC-1 (netfilter/core.py nf_hook_ingress_list) not applied")
@settings(max_examples=4, deadline=None)
@given(lists=st.lists(batch, min_size=1, max_size=2))
def test_stack_batched_equals_stack_per_packet(lists):
    """The whole datapath, list ingress vs. the same world with the list form removed (each
    packet then goes through the hook alone): same frames at h1 and h2, same counters."""
    frames = [[_mk(fl, orig, v, n) for n, (fl, orig, v) in enumerate(b)] for b in lists]
    a, b = World(), World()
    for o in nfc.nf_hook_entries(b.r, nfc.NFPROTO_NETDEV, nfc.NF_NETDEV_INGRESS, b.r1) + \
            nfc.nf_hook_entries(b.r, nfc.NFPROTO_NETDEV, nfc.NF_NETDEV_INGRESS, b.r2):
        o.list_hook = None
    for wd in (a, b):
        for fr in frames:
            for orig in (True, False):
                pk = [wd.w.new_packet(f) for o, f in fr if o == orig]
                if pk:
                    dev_queue_xmit_list(wd.h1 if orig else wd.h2, pk)
            wd.w.run_until_idle()
    sa, sb = a.snapshot(), b.snapshot()
    for k in ("h1", "h2"):
        assert sorted(sa["got"][k]) == sorted(sb["got"][k])
    assert sa["stats"] == sb["stats"] and sa["flows"] == sb["flows"] and sa["cts"] == sb["cts"]


def test_nft_flowtable_counter_keyword_turns_accounting_on():
    """``flowtable ft { …; counter; }`` reaches the flowtable (patch NFC-7: nft/hooks.py
    passes the keyword to ``flowtable_add``)."""
    st_ = Stack()
    st_.run_script("ip netns add c\nip -n c link add p0 type veth peer name p1\n",
                   name="nfc-counter")
    r = st_.command(["ip", "netns", "exec", "c", "nft", "add table ip t; add flowtable ip t f "
                     "{ hook ingress priority 0; devices = { p0 }; counter; }"])
    assert r.rc == 0, r.stderr
    ft = nfc.nf_net(st_.world.netns("c")).flowtables[0]
    if not ft.counter:
        pytest.skip("patch NFC-7 (nft/hooks.py: flowtable counter keyword) not applied")
    assert ft.counter
