"""Kernel-differential: IPv4 conntrack defrag keeps the received fragment geometry
(net/ipv4/ip_fragment.c ``ip_frag_reasm`` does not coalesce for conntrack's queues, so
``ip_do_fragment`` takes its frag_list fast path): fragments of unequal sizes (1000, 496
and 1328 payload bytes, the largest last) leave the router exactly as they came, not
re-cut at ``frag_max_size``.  Needs /tmp/s2/patches/NFA-2.patch (ip_fragment.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from test_ct_kernel import (CT_QUERY, NFT_CT, compare, enable_ct,  # noqa: E402
                            kernel_result, netstack_result, require_oracle, to_h2)

from test_defrag_kernel import frag4_at  # noqa: E402

from kernel.cases import H2, IP_H1, IP_H2, V2H, script, udp4  # noqa: E402


def test_unequal_fragments_keep_their_geometry():
    require_oracle()
    from netstack.ipv4 import ip_fragment
    if not hasattr(ip_fragment, "_frag_list_geometry"):
        pytest.skip("needs /tmp/s2/patches/NFA-2.patch (ip_do_fragment frag_list fast path)")
    d = udp4(IP_H1, IP_H2, 40000, 7000, bytes(range(256)) * 11, ident=0x901)
    fr = frag4_at(d, [0, 1000, 1496])
    sends = [to_h2(f) for f in (fr[1], fr[2], fr[0])]
    k = kernel_result("nfa_v4_uneq", script("ipv4_router") + NFT_CT, sends, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), enable_ct, sends, [CT_QUERY])
    compare(k, n)
    assert [len(f) - 14 for f in k.frames[(H2, V2H)]] == [1020, 516, 1348]
