"""How iptables-nft 1.8.9 writes a rule into nf_tables (iptables/nft.c ``add_match`` /
``add_action``, nft-ipv4.c / nft-ipv6.c ``nft_ipv4_add``), and what nft 1.0.6 then lists.

Native expressions: interfaces, ``meta l4proto`` for ``-p``, addresses, the ``tcp``,
``udp``, ``mark`` and ``limit`` matches, the counter, ACCEPT/DROP/RETURN, jumps,
NOTRACK and TRACE.  Every other extension — ``comment``, ``icmp``/``icmp6``,
``multiport``, ``conntrack`` (``-m state`` becomes conntrack revision 3), ``sctp``, and the
targets REJECT, LOG, MARK, SNAT, DNAT, MASQUERADE, CT — goes in as an xtables compat
expression (``nft_compat``: ``[ match name comment rev 0 ]``).  nft 1.0.6 lists such an
expression with the extension's ``xlate`` text when it has one (``ct state
established``, ``reject with tcp reset``; ``-m comment``'s xlate prints nothing, hence the
rule's leading space), else as ``xt match NAME`` / ``xt target NAME``; in JSON it is
``{"xt": {"type": "match", "name": "comment"}}``.  The protocol of ``-p`` stays visible
before an xt match (``meta l4proto icmp icmp type …``) because nft cannot see inside the
extension to elide it.

On netstack the compat expression runs the extension's behaviour: the native nft form
of its translation where one exists, otherwise the few effects the nft language lacks
(ICMP code ranges with inversion, the CT target's helper template)."""
from __future__ import annotations

from typing import Any

from netstack.errors import NotSupported
from netstack.netfilter.xtables import protos
from netstack.netfilter.xtables.matches import (CommentMatch, ConntrackMatch, IcmpMatch,
                                                LimitMatch, MarkMatch, MultiportMatch,
                                                PortMatch)
from netstack.netfilter.xtables.parse import Rule
from netstack.netfilter.xtables.targets import Ct, Standard
from netstack.netfilter.xtables.translate import _addr, _ifname

#: NFTA_MATCH_REV / NFTA_TARGET_REV iptables 1.8.9 uses on Linux 6.18 (measured with
#: ``nft --debug=netlink list ruleset`` after iptables-nft).
MATCH_REV = {"comment": 0, "icmp": 0, "icmp6": 0, "multiport": 1, "conntrack": 3,
             "state": 3, "sctp": 0}
TARGET_REV = {"REJECT": 0, "LOG": 0, "MARK": 2, "SNAT": 0, "DNAT": 2, "MASQUERADE": 0,
              "CT": 2}
#: targets iptables-nft writes natively (add_action); NOTRACK is libxt_CT's alias
#: (real name CT, revision 2) and goes in as the CT target
NATIVE_TARGETS = ("TRACE",)


def _spec(kind: str, name: str, rev: int, text: str, native: str | None,
          evaluate: Any = None) -> Any:
    from netstack.netfilter.nft.vm_stmts import XtSpec
    return XtSpec(kind, name, rev, text, native, evaluate)


def _xlate_text(ext: Any, v6: bool) -> str | None:
    part = ext.xlate(v6)
    if part is None:
        return None
    return " ".join(part).rstrip(" ")


def _icmp_eval(m: IcmpMatch) -> Any:
    """``icmp_match`` / ``icmp6_match`` (net/ipv4/netfilter/ip_tables.c,
    ip6_tables.c): never on a non-first fragment; a truncated header drops the packet
    (hotdrop); type 0xFF (``any``) matches every type; the code must lie in the range;
    ``!`` inverts."""
    t, lo, hi = m.type
    inv = m.inv
    v6 = m.v6

    def evaluate(regs: Any, info: Any) -> None:
        from netstack.netfilter.nft.vm import NF_DROP, NFT_BREAK
        pkt = info.pkt
        if info.fragoff or not info.tprot_set or info.tprot != (58 if v6 else 1):
            regs.code = NFT_BREAK
            return
        th = info.thoff
        if th + 2 > pkt.tail:
            regs.code = NF_DROP
            return
        typ, code = pkt.buf[th], pkt.buf[th + 1]
        hit = (t == 0xFF and not v6) or (typ == t and lo <= code <= hi)
        if hit == inv:
            regs.code = NFT_BREAK
    return evaluate


def _ct_helper_eval(helper_name: str, l3: int, l4: int) -> Any:
    """The CT target's helper (xt_CT.c ``xt_ct_set_helper`` at rule insertion, the
    template attached in ``xt_ct_target``): NFA's conntrack helper API."""
    from netstack.netfilter.conntrack_helper import ct_template_set_helper, helper_lookup
    helper = helper_lookup(helper_name, l3, l4)
    if helper is None:
        raise NotSupported(f"CT --helper {helper_name}: no such conntrack helper for "
                           "this protocol")

    def evaluate(regs: Any, info: Any) -> None:
        ct_template_set_helper(info.pkt, helper)
    return evaluate


def match_part(m: Any, rule: Rule, specs: list) -> str:
    """One match as iptables-nft writes it: native text, or ``__xt N``."""
    v6 = rule.v6
    if isinstance(m, (LimitMatch, MarkMatch)) or (isinstance(m, PortMatch) and
                                                  m.name in ("tcp", "udp")):
        return " ".join(m.xlate(v6) or [])
    name = m.name
    if isinstance(m, ConntrackMatch):
        name = "conntrack"
    text = _xlate_text(m, v6)
    native: str | None = text
    evaluate = None
    if isinstance(m, CommentMatch):
        text, native = "", None
    elif isinstance(m, IcmpMatch):
        native, evaluate = None, _icmp_eval(m)
    elif not isinstance(m, (ConntrackMatch, MultiportMatch, PortMatch)):
        raise NotSupported(f"iptables-nft compat expression for match {m.name}")
    specs.append(_spec("match", name, MATCH_REV[name], text if text is not None
                       else f"xt match {name}", native, evaluate))
    return f"__xt {len(specs) - 1}"


def target_part(rule: Rule, specs: list) -> str | None:
    """The rule's target as iptables-nft writes it (None: no target)."""
    tgt = rule.target
    if tgt is None:
        return None
    v6 = rule.v6
    if isinstance(tgt, Standard) or tgt.name in NATIVE_TARGETS:
        part = tgt.xlate(v6)
        if part is None:
            raise NotSupported(f"iptables-nft target {tgt.name}")
        return " ".join(part).rstrip(" ")
    text = _xlate_text(tgt, v6)
    native: str | None = text
    evaluate = None
    if isinstance(tgt, Ct) and not tgt.notrack:
        if tgt.zone_dir:
            raise NotSupported(f"CT --zone{tgt.zone_dir} (directional zone templates)")
        native = f"ct zone set {tgt.zone}" if tgt.zone is not None else None
        if tgt.helper:
            if not rule.proto or rule.proto_inv:
                raise NotSupported("CT --helper without a (non-inverted) -p protocol")
            evaluate = _ct_helper_eval(tgt.helper, 10 if v6 else 2, rule.proto)
    elif text is None:
        raise NotSupported(f"iptables-nft compat expression for target {tgt.name}")
    real = "CT" if tgt.name == "NOTRACK" else tgt.name
    specs.append(_spec("target", real, TARGET_REV[real],
                       text if text is not None else f"xt target {real}", native,
                       evaluate))
    return f"__xt {len(specs) - 1}"


def rule_to_nft_sync(rule: Rule, with_counts: bool, specs: list) -> str:
    """The rule body iptables-nft loads (``add rule FAMILY TABLE CHAIN`` + this), with
    compat expressions appended to ``specs`` and referred to as ``__xt N``."""
    toks: list[str] = []
    toks += _ifname("iifname", rule.iniface, rule.in_inv)
    toks += _ifname("oifname", rule.outiface, rule.out_inv)
    if rule.proto or rule.proto_inv:
        name = protos.PROTO_BY_NUM.get(rule.proto) or str(rule.proto)
        toks.append(f"meta l4proto {'!= ' if rule.proto_inv else ''}{name}")
    base = "ip6" if rule.v6 else "ip"
    toks += _addr(f"{base} saddr", rule.src, rule.src_inv)
    toks += _addr(f"{base} daddr", rule.dst, rule.dst_inv)
    if not rule.v6 and rule.frag:
        toks.append(f"ip frag-off & 0x1fff {'' if rule.frag_inv else '!= '}0")
    for m in rule.matches:
        part = match_part(m, rule, specs)
        if part:
            toks.append(part)
    toks.append(f"counter packets {rule.pcnt} bytes {rule.bcnt}" if with_counts and
                (rule.pcnt or rule.bcnt) else "counter")
    tpart = target_part(rule, specs)
    if tpart:
        toks.append(tpart)
    return " ".join(toks)
