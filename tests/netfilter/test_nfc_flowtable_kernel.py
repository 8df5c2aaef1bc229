"""Kernel-differential: the flowtable fast path on the router of
tests/kernel/scenarios/ipv4_router.sh, configured with the same ``nft`` commands on both
sides — masquerade out of v2r, a flowtable on v1r/v2r and a forward chain that counts every
packet it sees and offloads UDP/TCP (``flow add @ft``).  Once a connection is offloaded its
packets bypass the forward chain (its counter stops), are NATed and TTL-decremented by the
flowtable and leave byte for byte as on the kernel; a TTL-1 packet takes the slow path (ICMP
time exceeded from the router); a TCP FIN stays on the fast path and only marks the flow
closing (6.14+).  Compared: every frame h1 and h2 receive, ``conntrack -L`` (``[OFFLOAD]``,
with accounting on: the flowtable has no ``counter`` flag, so offloaded packets are not
counted) and the forward chain's counter in ``nft list chain``.

The oracle machine's kernel is built without ``CONFIG_NF_FLOW_TABLE`` (``nft add flowtable``
fails with ENOENT), so the differential test skips there, saying so; the netstack-only test
pins the same run to what nf_flow_table_{core,ip}.c and nft_flow_offload.c of 6.18 do."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from test_ct_kernel import (compare, kernel_result, netstack_result,  # noqa: E402
                            require_oracle, tcp4, to_h1, to_h2)

from kernel.cases import IP_H1, IP_H2, IP_R2, script, udp4  # noqa: E402

NFT_FT = """\
ip netns exec r sysctl -w net.netfilter.nf_conntrack_acct=1
ip netns exec r nft add table ip f
ip netns exec r nft 'add flowtable ip f ft { hook ingress priority 0; devices = { v1r, v2r }; }'
ip netns exec r nft 'add chain ip f fwd { type filter hook forward priority 0; }'
ip netns exec r nft add rule ip f fwd counter
ip netns exec r nft add rule ip f fwd meta l4proto '{ tcp, udp }' flow add @ft
ip netns exec r nft add table ip nat
ip netns exec r nft 'add chain ip nat post { type nat hook postrouting priority 100; }'
ip netns exec r nft add rule ip nat post oifname v2r masquerade
"""
CT_L = "ip netns exec r conntrack -L"
FWD_L = "ip netns exec r nft list chain ip f fwd"
S, SA, A, PA, FA = 0x02, 0x12, 0x10, 0x18, 0x11


def _sends() -> list:
    out = [to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"new", ident=0x501)),
           to_h1(udp4(IP_H2, IP_R2, 7000, 40000, b"reply", ident=0x502))]
    # offloaded from here on: both directions through the flowtable
    for i in range(3):
        out.append(to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"fast%d" % i, ident=0x510 + i)))
        out.append(to_h1(udp4(IP_H2, IP_R2, 7000, 40000, b"back%d" % i, ident=0x520 + i)))
    out.append(to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"ttl1", ident=0x530, ttl=1)))
    # TCP: handshake on the slow path, offloaded once established (the ACK), then data,
    # then the FIN that tears the flow down
    c, s = 1000, 5000
    out += [to_h2(tcp4(IP_H1, IP_H2, 41000, 80, c, 0, S, ident=0x540)),
            to_h1(tcp4(IP_H2, IP_R2, 80, 41000, s, c + 1, SA, ident=0x541)),
            to_h2(tcp4(IP_H1, IP_H2, 41000, 80, c + 1, s + 1, A, ident=0x542)),
            to_h2(tcp4(IP_H1, IP_H2, 41000, 80, c + 1, s + 1, PA, b"data", ident=0x543)),
            to_h1(tcp4(IP_H2, IP_R2, 80, 41000, s + 1, c + 5, A, ident=0x544)),
            to_h2(tcp4(IP_H1, IP_H2, 41000, 80, c + 5, s + 1, FA, ident=0x545))]
    return out


def _noop(net) -> None:
    """Everything is configured by the nft commands of the script."""


def _kernel_has_flowtables() -> str | None:
    """None if ``nft add flowtable`` works in a scratch namespace, else why not."""
    if os.geteuid() != 0 or shutil.which("nft") is None:
        return "needs root and nft"
    ns = f"nfc-ftprobe-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode:
        return "cannot create a network namespace"
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "p0", "type", "veth", "peer", "name",
                        "p1"], capture_output=True)
        r = subprocess.run(["ip", "netns", "exec", ns, "nft", "add table ip t; add flowtable "
                            "ip t f { hook ingress priority 0; devices = { p0 }; }"],
                           capture_output=True, text=True)
        if r.returncode:
            return ("kernel has no nft flowtables (CONFIG_NF_FLOW_TABLE not set): "
                    + r.stderr.strip().splitlines()[0])
        return None
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_flowtable_masquerade_like_kernel():
    require_oracle()
    why = _kernel_has_flowtables()
    if why:
        print(f"\nSKIP: {why}", file=sys.stderr)
        pytest.skip(why)
    sends = _sends()
    k = kernel_result("nfc_flowtable", script("ipv4_router") + NFT_FT, sends, [CT_L, FWD_L])
    n = netstack_result(script("ipv4_router") + NFT_FT, _noop, sends, [CT_L, FWD_L])
    compare(k.__class__(frames=k.frames, queries={CT_L: k.queries[CT_L]}),
            n.__class__(frames=n.frames, queries={CT_L: n.queries[CT_L]}))
    counter = re.compile(r"counter packets (\d+) bytes (\d+)")
    kc, nc = counter.search(k.queries[FWD_L]), counter.search(n.queries[FWD_L])
    assert kc is not None and nc is not None and kc.groups() == nc.groups(), \
        (k.queries[FWD_L], n.queries[FWD_L])
    assert "[OFFLOAD]" in k.queries[CT_L]


def test_flowtable_masquerade_netstack():
    """The same run on netstack, against the 6.18 sources: 2 UDP + 3 TCP packets cross the
    forward chain (the FIN stays on the fast path), the TTL-1 packet is answered by the
    router, everything else is NATed and TTL-decremented by the flowtable; the offloaded
    cts live a day and count only their slow-path packets."""
    sends = _sends()
    n = netstack_result(script("ipv4_router") + NFT_FT, _noop, sends, [CT_L, FWD_L])
    h2 = n.frames[("h2", "v2h")]
    h1 = n.frames[("h1", "v1h")]
    assert h2[0].endswith(b"new") and [f[-5:] for f in h2[1:4]] == [b"fast0", b"fast1", b"fast2"]
    assert len(h2) == 8 and h2[-1][14 + 20 + 13] == FA and h2[-2].endswith(b"data")
    assert all(f[14 + 12:14 + 16] == bytes([10, 0, 2, 254]) and f[14 + 8] == 63 for f in h2)
    assert len(h1) == 7 and h1[4][14 + 9] == 1 and h1[4][14 + 20] == 11    # time exceeded
    assert "counter packets 5 " in n.queries[FWD_L], n.queries[FWD_L]
    lines = n.queries[CT_L].splitlines()
    udp = next(x for x in lines if x.startswith("udp"))
    tcp = next(x for x in lines if x.startswith("tcp"))
    assert "[OFFLOAD]" in udp and "[OFFLOAD]" in tcp and " ESTABLISHED " in tcp
    # TCP: a day since flow_offload_add; UDP: the TTL-1 packet went through conntrack,
    # which set 30 s again -- the flowtable GC (once a second) has not run yet
    assert int(tcp.split()[2]) >= 86399 and int(udp.split()[2]) == 29
    # orig: "new" and the TTL-1 packet; reply: "reply" (fast-path packets not counted)
    assert "sport=40000 dport=7000 packets=2 " in udp and "sport=7000 dport=40000 packets=1 " in udp
