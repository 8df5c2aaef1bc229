"""``vlan``/``arp`` payload statements, ``ct helper|expectation set … map``, the
field-width check and sub-byte fields in anonymous sets (sb.nft), against nft 1.0.6 on
Linux 6.18.

Goldens in nft_corpus/nfd/ were recorded in a scratch namespace with ``nft
--debug=netlink -f F`` then ``nft [-a|-j] list ruleset``; when nft and root are
available the comparison also runs live.  The VM half checks ``nft_payload_set_vlan``
(net/netfilter/nft_payload.c) and ``nft_objref_map_eval`` (nft_objref.c) directly."""
from __future__ import annotations

import json
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core.world import World
from netstack.netfilter.nft import vm as V
from netstack.netfilter.nft import vm_stmts as VS
from netstack.netfilter.nft.cli import run_nft, run_text
from netstack.netfilter.nft.ruleset import Element, NftSet
from netstack.netfilter.nft import types as T
from netstack.packet.skb import Packet

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nft_corpus", "nfd")
CASES = ["r1", "r1b", "h4", "sb"]


def _golden(name: str, ext: str) -> str:
    with open(os.path.join(HERE, f"{name}.{ext}")) as f:
        return f.read()


@pytest.mark.parametrize("name", CASES)
def test_bytecode_matches_nft(name: str) -> None:
    path = os.path.join(HERE, f"{name}.nft")
    rc, out, err = run_nft(World().netns(""), ["--debug=netlink", "-f", path])
    assert (rc, err) == (0, "")
    assert out == _golden(name, "netlink")


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("args,ext", [(["list", "ruleset"], "list"),
                                      (["-a", "list", "ruleset"], "list-a"),
                                      (["-j", "list", "ruleset"], "json")])
def test_listing_matches_nft(name: str, args: list[str], ext: str) -> None:
    net = World().netns("")
    assert run_nft(net, ["-f", os.path.join(HERE, f"{name}.nft")])[0] == 0
    assert run_nft(net, args)[1] == _golden(name, ext)


@pytest.mark.parametrize("name", ["r1b", "h4"])
def test_json_input_round_trip(name: str, tmp_path) -> None:
    """nft's own JSON listing, fed back as ``add`` commands, gives the same ruleset."""
    j = json.loads(_golden(name, "json"))
    cmds = [{"add": o} for o in j["nftables"] if "metainfo" not in o]
    p = tmp_path / "in.json"
    p.write_text(json.dumps({"nftables": cmds}))
    net = World().netns("")
    rc, _, err = run_nft(net, ["-j", "-f", str(p)])
    assert rc == 0, err
    assert run_nft(net, ["list", "ruleset"])[1] == _golden(name, "list")


NETDEV = ('table netdev t {\n chain c { type filter hook ingress device "lo" priority 0;\n'
          '  %s\n }\n}\n')

# (rule, nft 1.0.6's error line) — measured
ERRORS = [
    ("vlan id set 5000", "FILE:3:15-18: Error: Value 5000 exceeds valid range 0-4095"),
    ("vlan pcp set 9", "FILE:3:16-16: Error: Value 9 exceeds valid range 0-7"),
    ("ip dscp set 70", "FILE:3:15-16: Error: Value 70 exceeds valid range 0-63"),
    ("vlan id 5000", "FILE:3:11-14: Error: Value 5000 exceeds valid range 0-4095"),
    ("vlan id 1-5000", "FILE:3:13-16: Error: Value 5000 exceeds valid range 0-4095"),
    ("vlan id 6000-7000", "FILE:3:11-14: Error: Value 6000 exceeds valid range 0-4095"),
]


@pytest.mark.parametrize("rule,first", ERRORS)
def test_field_width_errors(rule: str, first: str) -> None:
    rc, out, err = run_text(World().netns(""), NETDEV % rule, "FILE", check=True)
    assert rc == 1 and err.splitlines()[0] == first


def test_objmap_unknown_object_is_enoent_at_the_element() -> None:
    text = ('table ip f {\n  ct helper tftp-std { type "tftp" protocol udp; }\n'
            '  chain pre { type filter hook prerouting priority 0;\n'
            '    ct helper set udp dport map { 69 : "nosuch" }\n  }\n}\n')
    rc, _, err = run_text(World().netns(""), text, "FILE", check=True)
    assert rc == 1
    assert err.splitlines()[0] == ("FILE:4:35-36: Error: Could not process rule: No such "
                                   "file or directory")


@pytest.mark.parametrize("fam,l3,msg", [
    ("inet", "", "Address family not supported by protocol"),
    ("inet", "l3proto ip;", None),
    ("netdev", "l3proto ip;", "Invalid argument"),
    ("bridge", "", "Address family not supported by protocol"),
    ("ip", "l3proto inet;", "Address family not supported by protocol"),
    ("ip6", "l3proto ip;", "Invalid argument"),
    ("ip6", "", None)])
def test_ct_expectation_l3proto(fam: str, l3: str, msg: str | None) -> None:
    """nft_ct_expect_obj_init's family check, as measured on 6.18."""
    text = (f"table {fam} f {{\n  ct expectation e1 {{ protocol tcp; dport 5000; "
            f"timeout 1m; size 2; {l3} }}\n}}\n")
    rc, _, err = run_text(World().netns(""), text, "FILE")
    if msg is None:
        assert rc == 0, err
    else:
        assert err.splitlines()[0] == f"FILE:2:18-19: Error: Could not process rule: {msg}"


# ------------------------------------------------------------------ VM: the vlan tag
def _frame(tci: int | None = None) -> Packet:
    """An Ethernet frame whose tag (if any) is out of band, as after skb_vlan_untag."""
    body = bytes(range(6)) + bytes(range(6, 12)) + b"\x08\x00" + bytes(range(0x40, 0x54))
    pkt = Packet(body)
    pkt.mac_header = pkt.data
    pkt.network_header = pkt.data + 14
    pkt.protocol = 0x0800
    if tci is not None:
        pkt.vlan_proto, pkt.vlan_tci = 0x8100, tci
    return pkt


def _write(pkt: Packet, offset: int, data: bytes) -> int:
    regs = V.Regs()
    V._put(regs, 0, data)
    V.PayloadWrite(0, V.BASE_LL, offset, len(data), 0, 0, 0).eval(
        regs, V.PktInfo(pkt, None, None))
    return regs.code


def test_vlan_tci_write_goes_to_metadata() -> None:
    pkt = _frame(0x6005)
    before = bytes(pkt.buf)
    assert _write(pkt, 14, b"\x60\x14") == V.NFT_CONTINUE
    assert pkt.vlan_tci == 0x6014 and bytes(pkt.buf) == before


def test_vlan_proto_and_whole_tag() -> None:
    pkt = _frame(5)
    _write(pkt, 12, b"\x88\xa8")
    assert (pkt.vlan_proto, pkt.vlan_tci) == (0x88A8, 5)
    _write(pkt, 12, b"\x81\x00\x20\x07")
    assert (pkt.vlan_proto, pkt.vlan_tci) == (0x8100, 0x2007)


def test_vlan_type_write_lands_four_bytes_earlier() -> None:
    pkt = _frame(5)
    assert _write(pkt, 16, b"\x86\xdd") == V.NFT_CONTINUE
    assert bytes(pkt.buf[pkt.mac_header + 12:pkt.mac_header + 14]) == b"\x86\xdd"
    assert pkt.vlan_tci == 5


@pytest.mark.parametrize("offset,data", [(14, b"\xa0"), (13, b"\x00\x01"), (10, b"\0" * 4)])
def test_other_vlan_writes_end_the_rule(offset: int, data: bytes) -> None:
    pkt = _frame(5)
    before = bytes(pkt.buf)
    assert _write(pkt, offset, data) == V.NFT_BREAK
    assert pkt.vlan_tci == 5 and bytes(pkt.buf) == before


def test_untagged_frame_is_written_in_place() -> None:
    pkt = _frame(None)
    _write(pkt, 12, b"\x86\xdd")
    assert bytes(pkt.buf[pkt.mac_header + 12:pkt.mac_header + 14]) == b"\x86\xdd"


@settings(max_examples=60, deadline=None)
@given(tci=st.integers(0, 0xFFFF), new=st.integers(0, 0xFFFF))
def test_tci_write_then_read_back(tci: int, new: int) -> None:
    """What ``vlan id set`` writes at 14 is what a later ``payload load 2b @ 14`` reads
    (nft_payload_copy_vlan rebuilds the header from the metadata)."""
    pkt = _frame(tci)
    _write(pkt, 14, new.to_bytes(2, "big"))
    assert V.copy_vlan(pkt, 14, 2) == new.to_bytes(2, "big")
    assert V.copy_vlan(pkt, 12, 6) == b"\x81\x00" + new.to_bytes(2, "big") + b"\x08\x00"


# ------------------------------------------------------------------ VM: object maps
class _Probe(V.VmExpr):
    def __init__(self) -> None:
        self.hits = 0
        self.name = "probe"

    def eval(self, regs, info) -> None:
        self.hits += 1


def test_objref_map_runs_the_element_object_or_breaks() -> None:
    s = NftSet("__objmap0", [T.INET_SERVICE], None, {"constant", "object"}, anonymous=True)
    probe = _Probe()
    s.insert(Element(struct.pack(">H", 69), None, probe))
    ex = VS.ObjrefMap(0, s)
    assert ex.netlink() == "[ objref sreg 1 set __objmap0 ]"
    for port, code, hits in ((69, V.NFT_CONTINUE, 1), (70, V.NFT_BREAK, 1)):
        regs = V.Regs()
        V._put(regs, 0, struct.pack(">H", port))
        ex.eval(regs, V.PktInfo(None, None, None))
        assert (regs.code, probe.hits) == (code, hits)
