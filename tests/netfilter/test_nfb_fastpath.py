"""The precompiled rule closures (netstack/netfilter/nft/fastpath.py) against the
expression-by-expression loop of nft_do_chain on random rules and random packets:
same verdict code, same register file, same counter state."""
from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core.world import World
from netstack.netfilter.nft import fastpath as F
from netstack.netfilter.nft import vm as V

OPS = ["eq", "neq", "lt", "gt", "lte", "gte"]
WORLD = World()          # one packet factory for all examples


@st.composite
def exprs(draw):
    out = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["load", "loadcmp", "cmp", "bitwise", "imm", "counter",
                                     "verdict"]))
        reg = draw(st.sampled_from([0, 1, 4]))
        if kind in ("load", "loadcmp"):
            ln = draw(st.integers(1, 8))
            out.append(V.PayloadLoad(draw(st.sampled_from([V.BASE_LL, V.BASE_NH, V.BASE_TH])),
                                     draw(st.integers(0, 40)), ln, reg))
            if kind == "loadcmp":
                n = draw(st.sampled_from([ln, max(1, ln - 1)]))
                out.append(V.Cmp(draw(st.sampled_from(OPS)),
                                 draw(st.sampled_from([reg, 0])), draw(st.binary(min_size=n,
                                                                              max_size=n))))
        elif kind == "cmp":
            n = draw(st.integers(1, 4))
            out.append(V.Cmp(draw(st.sampled_from(OPS)), reg,
                             draw(st.binary(min_size=n, max_size=n))))
        elif kind == "bitwise":
            out.append(V.Bitwise(reg, reg, draw(st.binary(min_size=4, max_size=4)),
                                 draw(st.binary(min_size=4, max_size=4))))
        elif kind == "imm":
            out.append(V.Immediate(reg, draw(st.binary(min_size=4, max_size=4))))
        elif kind == "counter":
            out.append(V.Counter(0, 0))
        else:
            out.append(V.Immediate(None, verdict=draw(st.sampled_from(["accept", "drop",
                                                                       "continue"]))))
    return out


@st.composite
def packets(draw):
    data = draw(st.binary(min_size=0, max_size=80))
    pkt = WORLD.new_packet(data)
    pkt.mac_header = draw(st.sampled_from([-1, pkt.data]))
    pkt.network_header = draw(st.sampled_from([-1, pkt.data, pkt.data + 14]))
    info = V.PktInfo(pkt, None, None, thoff=pkt.data + draw(st.integers(0, 40)),
                     tprot=6, tprot_set=draw(st.booleans()),
                     fragoff=draw(st.sampled_from([0, 0, 8])))
    return info


def _loop(ex, regs, info):
    for e in ex:
        e.eval(regs, info)
        if regs.code != V.NFT_CONTINUE:
            break


@settings(max_examples=400, deadline=None)
@given(exprs(), packets(), st.binary(min_size=80, max_size=80))
def test_compiled_rule_equals_the_expression_loop(ex, info, regbytes) -> None:
    ex2 = copy.deepcopy(ex)
    r1, r2 = V.Regs(), V.Regs()
    r1.data[:] = r2.data[:] = bytearray(regbytes)
    r1.code = r2.code = V.NFT_CONTINUE
    _loop(ex, r1, info)
    F.compile_rule(ex2)(r2, info)
    assert (r1.code, bytes(r1.data)) == (r2.code, bytes(r2.data))
    assert [(getattr(a, "packets", None), getattr(a, "bytes", None)) for a in ex] == \
        [(getattr(b, "packets", None), getattr(b, "bytes", None)) for b in ex2]


def test_transaction_copy_rebuilds_the_closure() -> None:
    """A deep copy (every nft transaction) must not keep the closure over the old
    expressions: the copy's counters are the ones that count."""
    from netstack.netfilter.nft.ruleset import Rule
    c = V.Counter(0, 0)
    r = Rule(1, None, [c])
    F.rule_runner(r)
    r2 = copy.deepcopy(r)
    assert "_fast" not in r2.__dict__
    info = V.PktInfo(World().new_packet(b"x" * 20), None, None)
    F.rule_runner(r2)(V.Regs(), info)
    assert (r2.exprs[0].packets, c.packets) == (1, 0)
