"""Kernel differential for macvtap (drivers/net/macvtap.c + tap.c): the same operations
on the real kernel's macvtap character devices and on netstack's; every result (write
return values, ioctl errors, the bytes each read returns with its virtio header, what
the veth peer receives, the devices' counters, ``ip -d -j link``) must be equal."""
from __future__ import annotations

import os
import shutil

import pytest

from mvt_frames import mac, tcp_frame, udp_frame, vh
from mvt_ops import MT, MT2, V0, V1, run_kernel, run_netstack


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "needs ip"
    if not os.path.exists("/run/netns") and not os.access("/run", os.W_OK):
        return "no netns"
    return None


pytestmark = pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))

BCAST_ARP = b"\xff" * 6 + mac(V1) + b"\x08\x06" + bytes(28)
NC = 1
TSO_ARG = 0x1 | 0x2            # CSUM | TSO4
TSO = vh(NC, 1, 54, 1000, 34, 16)  # a guest's TCPv4 GSO frame, mss 1000

CASES: dict[str, tuple[list[tuple], str, str]] = {
    "rx_unicast_broadcast": ([
        ("open", "mt"), ("open", "mt2"), ("features", "mt"),
        ("inject", udp_frame(MT, V1, 40)), ("read", "mt"), ("read", "mt2"),
        ("inject", BCAST_ARP), ("read", "mt"), ("read", "mt2"),
        ("stats", "mt"), ("stats", "mt2")], "bridge", ""),
    "rx_without_reader_goes_to_stack": ([
        ("inject", udp_frame(MT, V1, 40)), ("open", "mt"), ("read", "mt"),
        ("stats", "mt")], "bridge", ""),
    "write_out_and_errors": ([
        ("open", "mt"),
        ("write", "mt", vh() + udp_frame(V1, MT, 30)), ("captured",),
        ("write", "mt", vh() + bytes(13)), ("write", "mt", bytes(5)),
        ("write", "mt", vh(0, 7, 0, 100) + udp_frame(V1, MT, 30)),
        ("write", "mt", vh(0, 0, 200) + udp_frame(V1, MT, 30)),
        ("write", "mt", vh(NC, 0, 0, 0, 34, 6) + udp_frame(V1, MT, 30, True)),
        ("captured",), ("stats", "mt")], "bridge", ""),
    "bridge_sibling_csum_partial": ([
        ("open", "mt"), ("open", "mt2"),
        ("write", "mt", vh(NC, 0, 0, 0, 34, 6) + udp_frame(MT2, MT, 30, True)),
        ("read", "mt2"), ("offload", "mt2", 0),
        ("write", "mt", vh(NC, 0, 0, 0, 34, 6) + udp_frame(MT2, MT, 30, True)),
        ("read", "mt2"), ("captured",), ("stats", "mt"), ("stats", "mt2")], "bridge", ""),
    "bridge_sibling_tso_to_tso_reader": ([
        ("open", "mt"), ("open", "mt2"), ("offload", "mt2", TSO_ARG),
        ("write", "mt", TSO + tcp_frame(MT2, MT, 2500)), ("read", "mt2"),
        ("stats", "mt2")], "bridge", ""),
    "bridge_sibling_tso_segmented_for_plain_reader": ([
        ("open", "mt"), ("open", "mt2"), ("offload", "mt2", 0),
        ("write", "mt", TSO + tcp_frame(MT2, MT, 2500)), ("read", "mt2"),
        ("offload", "mt2", 0x1),
        ("write", "mt", TSO + tcp_frame(MT2, MT, 2500)), ("read", "mt2"),
        ("stats", "mt2")], "bridge", ""),
    "bridge_sibling_tso_no_vnet_hdr_reader": ([
        ("open", "mt"), ("open", "mt2"), ("iff", "mt2", 0x1002),
        ("write", "mt", TSO + tcp_frame(MT2, MT, 2500)), ("read", "mt2")], "bridge", ""),
    "vepa_sibling_goes_to_wire": ([
        ("open", "mt"), ("open", "mt2"),
        ("write", "mt", vh() + udp_frame(MT2, MT, 20)), ("read", "mt2"), ("captured",)],
        "vepa", ""),
    "ring_full_txqueuelen": ([
        ("open", "mt")] + [("inject", udp_frame(MT, V1, 10 + i)) for i in range(5)] + [
        ("read", "mt"), ("stats", "mt")], "bridge",
        "ip -n {n} link set mt txqueuelen 3\n"),
    "ring_resized_while_open": ([
        ("open", "mt")] + [("inject", udp_frame(MT, V1, 10 + i)) for i in range(4)] + [
        ("sh", "ip -n {n} link set mt txqueuelen 2"),
        ("inject", udp_frame(MT, V1, 60)), ("read", "mt"), ("stats", "mt")], "bridge", ""),
    "ioctls": ([
        ("open", "mt"), ("iff", "mt", 0x0001 | 0x1000), ("iff", "mt", 0x0002),
        ("iff", "mt", 0x1002 | 0x4000 | 0x0100), ("hdrsz", "mt", 8), ("hdrsz", "mt", 12),
        ("vnetbe", "mt", 1),
        ("offload", "mt", 0x80), ("offload", "mt", 0x1 | 0x20 | 0x40),
        ("offload", "mt", 0x1 | 0x2 | 0x4 | 0x8 | 0x10),
        ("queue", "mt", 0x0200), ("queue", "mt", 0x0400), ("queue", "mt", 0x0400),
        ("queue", "mt", 0), ("queue", "mt", 0x0200),
        ("inject", udp_frame(MT, V1, 25)), ("read", "mt")], "bridge", ""),
    "hwaddr_ioctls": ([
        ("open", "mt"), ("gethw", "mt"), ("sethw", "mt", mac(MT2), 1),
        ("sethw", "mt", mac("02:00:00:00:00:33"), 1), ("sethw", "mt", mac("03:00:00:00:00:33"), 1),
        ("sethw", "mt", mac("02:00:00:00:00:34"), 772), ("gethw", "mt"),
        ("inject", udp_frame("02:00:00:00:00:33", V1, 20)), ("read", "mt"),
        ("sh", "ip -n {n} link del mt"), ("gethw", "mt"), ("sethw", "mt", mac(MT), 1)],
        "bridge", ""),
    "detached_queue_passes_to_stack": ([
        ("open", "mt"), ("queue", "mt", 0x0400),
        ("inject", udp_frame(MT, V1, 25)), ("read", "mt"), ("stats", "mt")], "bridge", ""),
    "rx_vlan_tag_back_inline": ([
        ("open", "mt"), ("inject", mac(MT) + mac(V1) + b"\x81\x00\x20\x05"
                         + udp_frame(MT, V1, 30)[12:]), ("read", "mt")], "bridge", ""),
    "write_vlan_tagged": ([
        ("open", "mt"), ("write", "mt", vh() + mac(V1) + mac(MT) + b"\x81\x00\x00\x07"
                         + udp_frame(V1, MT, 30)[12:]), ("captured",)], "bridge", ""),
    "closed_queue_and_deleted_device": ([
        ("open", "mt"), ("inject", udp_frame(MT, V1, 20)), ("close", "mt"),
        ("inject", udp_frame(MT, V1, 21)), ("stats", "mt"), ("open", "mt"),
        ("inject", udp_frame(MT, V1, 22)), ("sh", "ip -n {n} link del mt"),
        ("read", "mt"), ("write", "mt", vh() + udp_frame(V1, MT, 30)),
        ("write", "mt", vh() + bytes(3)), ("captured",)], "bridge", ""),
    # macvlan_fix_features: GRO comes from the lower device whatever TUNSETOFFLOAD says
    "gro_follows_lower_not_offload": ([
        ("feature", "mt3", "generic-receive-offload"), ("open", "mt3"), ("offload", "mt3", 0),
        ("feature", "mt3", "generic-receive-offload"),
        ("offload", "mt3", 0x3), ("feature", "mt3", "generic-receive-offload"),
        ("offload", "mt3", 0x1), ("feature", "mt3", "generic-receive-offload")],
        "bridge", "ip netns exec {n} ethtool -K v0 gro on\n"
                  "ip -n {n} link add link v0 name mt3 type macvtap\n"),
    "multi_queue_one_flow_one_queue": ([
        ("open", "mt"), ("open", "mt#2"), ("open", "mt#3")]
        + [("inject", udp_frame(MT, V1, 30)) for _ in range(6)]
        + [("counts", ["mt", "mt#2", "mt#3"]), ("queue", "mt#2", 0x0400),
           ("queue", "mt#3", 0x0400)]
        + [("inject", udp_frame(MT, V1, 31)) for _ in range(3)]
        + [("counts", ["mt", "mt#2", "mt#3"]), ("read", "mt")], "bridge", ""),
    "passthru_reader_gets_every_unicast": ([
        ("open", "mt"), ("inject", udp_frame("02:00:00:00:00:77", V1, 30)),
        ("inject", udp_frame(V0, V1, 30)), ("read", "mt"), ("show", "mt"),
        ("write", "mt", vh() + udp_frame(V1, V0, 30)), ("captured",)], "passthru", ""),
    "ip_link_details": ([("show", "mt"), ("show", "mt2")], "private",
                        "ip -n {n} link set mt2 type macvtap bcqueuelen 20\n"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_macvtap_matches_kernel(name: str) -> None:
    ops, mode, extra = CASES[name]
    kernel = run_kernel(ops, mode, extra)
    ours = run_netstack(ops, mode, extra)
    for op, k, n in zip(ops, kernel, ours):
        assert n == k, f"{name}: {op[0]} {op[1] if len(op) > 1 and isinstance(op[1], str) else ''}"
