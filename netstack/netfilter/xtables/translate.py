"""iptables-translate / ip6tables-translate (iptables/xtables-translate.c, nft-ipv4.c and
nft-ipv6.c ``xlate``, 1.8.9).

A rule becomes: iifname, oifname, (v4) ``ip frag-off``, the protocol unless a match of the
same name follows, saddr, daddr, each match's translation, ``counter``, the verdict and last
the comment.  A rule with an untranslatable extension prints ``# ARGS`` instead; commands
without a translation print ``nft `` on stdout and "Translation not implemented" (exit 1).
"""
from __future__ import annotations

from netstack.netfilter.xtables import protos
from netstack.netfilter.xtables.addr import Net
from netstack.netfilter.xtables.errors import XtablesError, XtablesExit
from netstack.netfilter.xtables.matches import CommentMatch
from netstack.netfilter.xtables.parse import Rule, parse_command


def _ifname(sel: str, name: str, inv: bool) -> list[str]:
    """xlate_ifname: iptables' ``+`` wildcard is nft's ``*``."""
    if not name:
        return []
    if name.endswith("+"):
        name = name[:-1] + "*"
    return [f'{sel} {"!= " if inv else ""}"{name}"']


def _addr(sel: str, net: Net, inv: bool) -> list[str]:
    if not inv and net.is_any():
        return []
    cidr = net.cidr()
    if cidr == -1:
        return [f"{sel} & {net.mask_str()} {'!=' if inv else '=='} {net.addr_str()}"]
    op = "!= " if inv else ""
    if cidr == net.bits:
        return [f"{sel} {op}{net.addr_str()}"]
    return [f"{sel} {op}{net.addr_str()}/{cidr}"]


def rule_to_nft(rule: Rule, with_counts: bool = False) -> str | None:
    """The nft rule body (what follows ``add rule FAMILY TABLE CHAIN``) exactly as
    iptables-translate spells it, or None when some extension has no translation.
    ``with_counts`` carries the rule's counters (``counter packets P bytes B``) so that a
    rebuilt table keeps them."""
    toks: list[str] = []
    toks += _ifname("iifname", rule.iniface, rule.in_inv)
    toks += _ifname("oifname", rule.outiface, rule.out_inv)
    if not rule.v6 and rule.frag:
        toks.append(f"ip frag-off & 0x1fff {'' if rule.frag_inv else '!= '}0")
    if rule.proto:
        pname = protos.PROTO_BY_NUM.get(rule.proto)
        if pname is None or not any(m.name == pname for m in rule.matches):
            name = pname or str(rule.proto)
            sel = "meta l4proto" if rule.v6 else "ip protocol"
            toks.append(f"{sel} {'!= ' if rule.proto_inv else ''}{name}")
    base = "ip6" if rule.v6 else "ip"
    toks += _addr(f"{base} saddr", rule.src, rule.src_inv)
    toks += _addr(f"{base} daddr", rule.dst, rule.dst_inv)
    comment = None
    for m in rule.matches:
        part = m.xlate(rule.v6)
        if part is None:
            return None
        toks += part
        if isinstance(m, CommentMatch):
            comment = m.text
    toks.append(f"counter packets {rule.pcnt} bytes {rule.bcnt}" if with_counts and
                (rule.pcnt or rule.bcnt) else "counter")
    if rule.target is not None:
        part = rule.target.xlate(rule.v6)
        if part is None:
            return None
        toks += part
    text = " ".join(toks)
    if comment is not None:
        # appended with its own leading space: after MARK's trailing space (libxt_MARK.c
        # prints "0x%x ") the real tool shows two spaces before "comment"
        text += f' comment "{comment}"'
    return text.rstrip(" ")


def translate_main(prog: str, argv: list[str]) -> tuple[str, str, int]:
    """Run ``prog argv…`` (prog is iptables-translate or ip6tables-translate); returns
    (stdout, stderr, exit status) as the real tool produces them."""
    try:
        pc = parse_command(prog, argv)
    except XtablesError as e:
        return "", e.stderr, e.status
    except XtablesExit as e:
        return e.stdout, "", 0
    fam = pc.family.value
    out = "nft "
    c = pc.command
    if c in "AI":
        verb = "add" if c == "A" else "insert"
        ok = True
        rules = pc.rules()
        per_src = len(pc.dsts)
        for idx, rule in enumerate(rules):
            if idx and idx % per_src == 0:
                out += "nft "
            body = rule_to_nft(rule)
            ok = body is not None
            if body is not None:
                out += f"'{verb} rule {fam} {pc.table} {pc.chain} {body}'\n"
        if not ok:
            # xtables_check_inverse() blanks each "!" it consumed in argv before
            # print_ipt_cmd() echoes the arguments
            out += "# " + "".join(("" if a == "!" else a) + " " for a in argv) + "\n"
        return out, "", 0
    if c == "N":
        return out + f"add chain {fam} {pc.table} {pc.chain}\n", "", 0
    if c == "X":
        return out + f"delete chain {fam} {pc.table} {pc.chain or '(null)'}\n", "", 0
    if c == "F":
        if pc.chain:
            return out + f"flush chain {fam} {pc.table} {pc.chain}\n", "", 0
        return out + f"flush table {fam} {pc.table}\n", "", 0
    if c == "L":
        return out + f"list table {fam} {pc.table}\n", "", 0
    return out, "Translation not implemented\n", 1
