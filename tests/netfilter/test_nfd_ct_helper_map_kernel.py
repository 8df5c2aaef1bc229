"""Kernel-differential: ``ct helper set KEY map { … : "OBJ" }`` and ``ct expectation set
KEY map { … }`` (anonymous object maps, nft_objref_map_eval) and the ``helper=NAME`` that
``conntrack -L`` (conntrack-tools 1.4.7, ctnetlink_dump_helpinfo) prints for the
connections they touched: only a connection whose helper extension has a helper — the
master the map assigned one to; not the expected (related) connection, not one that only
got an expectation object's helper extension, not one whose key had no element."""
from __future__ import annotations

from test_ct_kernel import kernel_result, netstack_result, require_oracle, tcp4, to_h1, to_h2
from test_nat_kernel import _no_setup
from test_nfb_kernel import NFT_LIST, nft

from kernel.cases import IP_H1, IP_H2, script, udp4  # noqa: E402
from kernel.compare import results_diff  # noqa: E402
from kernel.oracle import Result  # noqa: E402

ROUTER = frozenset({"10.0.1.254", "10.0.2.254"})
CT_L = "ip netns exec r conntrack -L"
EXP_L = "ip netns exec r conntrack -L expect"

RULES = nft(
    "add table ip f",
    "add ct helper ip f tftp-std { type \"tftp\" protocol udp; }",
    "add ct helper ip f ftp-std { type \"ftp\" protocol tcp; }",
    "add ct expectation ip f e1 { protocol tcp; dport 5000; timeout 1m; size 2; }",
    "add chain ip f pre { type filter hook prerouting priority 0; }",
    "add rule ip f pre ct helper set udp dport map { 69 : \"tftp-std\", 6969 : \"tftp-std\" }",
    "add rule ip f pre ct helper set tcp dport map { 21 : \"ftp-std\", 2121 : \"ftp-std\" }",
    "add rule ip f pre ct expectation set tcp dport map { 2100-2101 : \"e1\" }",
    "add chain ip f fw { type filter hook forward priority 0; }",
    "add rule ip f fw ct state related counter",
    "add rule ip f fw ct helper \"tftp\" counter",
)
SENDS = [
    to_h2(udp4(IP_H1, IP_H2, 40000, 69, b"\x00\x01f\x00octet\x00", ident=0x3001)),
    # the TFTP data from a new server port: expected, RELATED, no helper of its own
    to_h1(udp4(IP_H2, IP_H1, 3333, 40000, b"\x00\x03\x00\x01data", ident=0x3002)),
    to_h2(udp4(IP_H1, IP_H2, 40001, 70, b"x", ident=0x3003)),            # no element
    to_h2(tcp4(IP_H1, IP_H2, 40002, 2121, 1000, 0, 0x02, ident=0x3004)),
    to_h2(tcp4(IP_H1, IP_H2, 40003, 2101, 2000, 0, 0x02, ident=0x3005)),  # expectation
]
QUERIES = [NFT_LIST, CT_L, EXP_L]


def test_ct_helper_map_kernel_half():
    require_oracle()
    k = kernel_result("nfd_helpermap", script("ipv4_router") + RULES, SENDS, QUERIES)
    text = k.queries[NFT_LIST]
    assert 'ct helper set udp dport map { 69 : "tftp-std", 6969 : "tftp-std" }' in text
    assert "ct state related counter packets 1 " in text
    assert 'ct helper "tftp" counter packets 1 ' in text
    lines = k.queries[CT_L].splitlines()
    helpers = sorted(ln.split("helper=")[1].split()[0] for ln in lines if "helper=" in ln)
    assert helpers == ["ftp", "tftp"], lines
    assert len(lines) == 5
    assert "dport=5000 " in k.queries[EXP_L]


def test_ct_helper_map_matches_kernel():
    require_oracle()
    text = script("ipv4_router") + RULES
    k = kernel_result("nfd_helpermap", text, SENDS, QUERIES)
    n = netstack_result(text, _no_setup, SENDS, QUERIES)
    diff = results_diff(Result(frames=k.frames), Result(frames=n.frames), ROUTER)
    assert diff is None, diff
    assert n.queries[NFT_LIST] == k.queries[NFT_LIST]
    assert n.queries[EXP_L] == k.queries[EXP_L]
    # the table is dumped in hash order: the same lines, helper= included
    assert sorted(n.queries[CT_L].splitlines()) == sorted(k.queries[CT_L].splitlines())


def test_helper_survives_table_deletion_matches_kernel():
    """Deleting the table (and its helper objects) leaves the connections' helpers: the
    object's destroy only drops its module reference (nft_ct_helper_obj_destroy)."""
    require_oracle()
    q = ["ip netns exec r nft delete table ip f", CT_L]
    text = script("ipv4_router") + RULES
    k = kernel_result("nfd_helpermap_del", text, SENDS, q)
    n = netstack_result(text, _no_setup, SENDS, q)
    assert k.queries[CT_L].count("helper=") == 2
    assert sorted(n.queries[CT_L].splitlines()) == sorted(k.queries[CT_L].splitlines())
