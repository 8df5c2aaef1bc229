"""Kernel-differential: defragmentation before conntrack (nf_defrag_ipv4.c).  A UDP datagram
sent in fragments to a DNAT rule is reassembled at PRE_ROUTING -400, tracked and translated
as a whole, and refragmented on output with the original fragment size; the fragments h2
receives are compared byte for byte with the kernel's, plus ``conntrack -L``."""
from __future__ import annotations

import pytest

from netstack.netfilter import defrag
from test_ct_kernel import (CT_QUERY, compare, kernel_result, netstack_result,  # noqa: F401
                            require_oracle, to_h1, to_h2)
from test_nat_kernel import NFT_DNAT, R1, _no_setup, dnat_setup

from kernel.cases import IP_H1, script, udp4  # noqa: E402


def frag4(datagram: bytes, size: int) -> list[bytes]:
    """Split an option-less IPv4 datagram into fragments of at most ``size`` bytes (RFC 791:
    payload in multiples of 8 except the last; MF on all but the last)."""
    step = (size - 20) & ~7
    return frag4_at(datagram, list(range(0, len(datagram) - 20, step)))


def frag4_at(datagram: bytes, cuts: list[int]) -> list[bytes]:
    """Split an option-less IPv4 datagram into fragments starting at payload offsets
    ``cuts`` (multiples of 8, the first 0): each gets the header with its offset, MF
    on all but the last, its total length and a recomputed header checksum."""
    hdr, body = bytearray(datagram[:20]), datagram[20:]
    cuts = cuts + [len(body)]
    out = []
    for i in range(len(cuts) - 1):
        part = body[cuts[i]:cuts[i + 1]]
        h = bytearray(hdr)
        more = i < len(cuts) - 2
        h[6:8] = ((cuts[i] >> 3) | (0x2000 if more else 0)).to_bytes(2, "big")
        h[2:4] = (20 + len(part)).to_bytes(2, "big")
        h[10:12] = b"\0\0"
        s = sum(int.from_bytes(h[j:j + 2], "big") for j in range(0, 20, 2))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        h[10:12] = (~s & 0xFFFF).to_bytes(2, "big")
        out.append(bytes(h) + part)
    return out


PAYLOAD = bytes(range(256)) * 11  # 2816 bytes: two fragments at 1500, five at 600


def _sends(size: int):
    dgram = udp4(IP_H1, R1, 40000, 7777, PAYLOAD, ident=0x801)
    frags = frag4(dgram, size)
    # out of order: the last fragment first, as reassembly must not care
    return [to_h2(f) for f in frags[-1:] + frags[:-1]]


def test_dnat_of_mtu_sized_fragments_matches_kernel():
    require_oracle()
    sends = _sends(1500)
    k = kernel_result("nat_dnat_frag1500", script("ipv4_router") + NFT_DNAT, sends, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), dnat_setup, sends, [CT_QUERY])
    compare(k, n)
    from kernel.cases import H2, V2H
    assert len(n.frames[(H2, V2H)]) == 2


def test_dnat_of_fragments_via_nft_cli_matches_kernel():
    require_oracle()
    sends = _sends(1500)
    text = script("ipv4_router") + NFT_DNAT
    k = kernel_result("nat_dnat_frag1500", text, sends, [CT_QUERY])
    n = netstack_result(text, _no_setup, sends, [CT_QUERY])
    compare(k, n)


def test_dnat_of_small_fragments_refragments_at_frag_max_size():
    """Fragments of 600 bytes: the kernel refragments at 600 (``frag_max_size``) although
    the MTU is 1500."""
    require_oracle()
    if not defrag.FRAG_MAX_SIZE_HONOURED:
        pytest.skip("ip_output/ip_forward do not honour pkt.frag_max_size yet (NF4 patch)")
    sends = _sends(600)
    k = kernel_result("nat_dnat_frag600", script("ipv4_router") + NFT_DNAT, sends, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), dnat_setup, sends, [CT_QUERY])
    compare(k, n)
