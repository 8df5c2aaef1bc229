"""Running chains: ``nft_do_chain`` (net/netfilter/nf_tables_core.c), the packet info
set-up of net/netfilter/nf_tables_ipv4.c / nf_tables_ipv6.c, and registration of base
chains with the hook infrastructure (net/netfilter/nf_tables_api.c
``nf_tables_register_hook``) through NF2's :mod:`netstack.netfilter.core`.

Semantics reproduced from nft_do_chain: rules run in order; an expression that sets
``NFT_BREAK`` ends the rule without a verdict; ``continue`` goes on with the next rule;
``jump`` pushes a return point (at most NFT_JUMP_STACK_SIZE deep, beyond that the packet
is dropped as the kernel's ``WARN_ON_ONCE`` path does), ``goto`` does not; ``return`` or
falling off the end of a chain pops, and falling off (or returning from) the base chain
yields the base chain's policy.  ``accept``/``drop`` end the whole traversal of *this*
base chain only: the hook infrastructure then runs the next base chain."""
from __future__ import annotations

import struct
from typing import Any

from netstack.netfilter.nft import vm as V
from netstack.netfilter.nft.fastpath import rule_runner
from netstack.netfilter.nft.ruleset import Chain, NftState

NFPROTO = {"ip": 2, "ip6": 10, "inet": 1, "arp": 3, "netdev": 5, "bridge": 7}
HOOKNUM = {"prerouting": 0, "input": 1, "forward": 2, "output": 3, "postrouting": 4,
           "ingress": 5}
NETDEV_HOOKNUM = {"ingress": 0, "egress": 1}
_IPV6_EXT = (0, 43, 60, 51)          # hop-by-hop, routing, destination options, AH


def pktinfo(pkt: Any, state: Any, net: Any) -> V.PktInfo:
    """nft_set_pktinfo_ipv4_validate / nft_set_pktinfo_ipv6_validate: find the transport
    header; a header that does not validate leaves l4proto unset (``unspec``)."""
    info = V.PktInfo(pkt, state, net)
    clock = getattr(getattr(net, "world", None), "clock", None)
    info.now_ns = clock.now if clock is not None else 0
    nh = pkt.network_header
    pf = getattr(state, "pf", 0)
    if pf not in (2, 10):
        pf = {0x0800: 2, 0x86DD: 10}.get(pkt.protocol, 0)
    buf = pkt.buf
    if nh < 0:
        return info
    if pf == 2:
        if nh + 20 > pkt.tail:
            return info
        ver_ihl = buf[nh]
        ihl = (ver_ihl & 0x0F) * 4
        tot = struct.unpack_from(">H", buf, nh + 2)[0]
        if ver_ihl >> 4 != 4 or ihl < 20 or tot < ihl or nh + tot > pkt.tail:
            return info
        info.tprot = buf[nh + 9]
        info.tprot_set = True
        info.thoff = nh + ihl
        info.fragoff = (struct.unpack_from(">H", buf, nh + 6)[0] & 0x1FFF) * 8
        return info
    if pf == 10:
        if nh + 40 > pkt.tail or buf[nh] >> 4 != 6:
            return info
        nexthdr = buf[nh + 6]
        off = nh + 40
        while nexthdr in _IPV6_EXT or nexthdr == 44:
            if off + 8 > pkt.tail:
                return info
            if nexthdr == 44:
                info.fragoff = struct.unpack_from(">H", buf, off + 2)[0] & 0xFFF8
                nexthdr = buf[off]
                off += 8
                continue
            hlen = (buf[off + 1] + 2) * 4 if nexthdr == 51 else (buf[off + 1] + 1) * 8
            nexthdr = buf[off]
            off += hlen
        info.tprot = nexthdr
        info.tprot_set = True
        info.thoff = off
    return info


def nft_do_chain(chain: Chain, pkt: Any, state: Any) -> int:
    """Run base chain ``chain`` on ``pkt``; returns NF_ACCEPT / NF_DROP, or NF_QUEUE with
    the queue number in the upper 16 bits and the bypass flag (``queue``)."""
    net = getattr(state, "net", None)
    if pkt.network_header < 0 and getattr(state, "pf", 0) == 5:
        # __netif_receive_skb_core resets the network header to skb->data before the
        # ingress hooks run; netstack's receive path leaves it unset until the
        # protocol handler, so the netdev family takes it from data here
        pkt.network_header = pkt.data
    info = pktinfo(pkt, state, net)
    return _nft_traverse(chain, pkt, info, pkt.trace is not None)


def _nft_traverse(chain: Chain, pkt: Any, info: V.PktInfo, traced: bool) -> int:
    """nft_do_chain's walk (net/netfilter/nf_tables_core.c): rules in order, ``jump``
    pushing the return point on a stack of NFT_JUMP_STACK_SIZE (overflow drops),
    ``goto`` replacing the chain, ``return``/falling off popping, the base chain's policy
    when the stack is empty.  ``traced`` adds what the kernel's ``nft_trace_packet``
    calls report: a rule event for every rule that ran to its end (``verdict
    continue``) or gave a verdict (``jump X``, ``return``, ``accept``, ``drop`` …), and
    the base chain's ``policy`` event when the traversal falls off (or returns from)
    it; an untraced packet pays one test per rule that does not break."""
    regs = V.Regs()
    stack: list[tuple[Chain, int]] = []
    cur, ri = chain, 0
    while True:
        rules = cur.rules
        popped = False
        while ri < len(rules):
            rule = rules[ri]
            ri += 1
            regs.code = V.NFT_CONTINUE
            run = rule.__dict__.get("_fast") or rule_runner(rule)
            run(regs, info)
            code = regs.code
            if code == V.NFT_BREAK:
                continue
            if traced:
                target = regs.chain if code in (V.NFT_JUMP, V.NFT_GOTO) else None
                _trace_nft(pkt, cur, "rule", _verdict_text(code, target), rule)
            if code == V.NFT_CONTINUE:
                continue
            if code >= 0:                      # accept, drop, stolen, queue
                return code
            if code == V.NFT_JUMP:
                if len(stack) >= V.NFT_JUMP_STACK_SIZE:
                    return V.NF_DROP
                stack.append((cur, ri))
                cur, ri = regs.chain, 0
                break
            if code == V.NFT_GOTO:
                cur, ri = regs.chain, 0
                break
            if code == V.NFT_RETURN:
                popped = True
                break
        else:
            # falling off the end of a jumped-to chain reports nothing (measured on 6.18:
            # ``nft monitor trace`` shows the next rule or the base chain's policy)
            popped = True
        if popped:
            if stack:
                cur, ri = stack.pop()
                continue
            if traced:
                _trace_nft(pkt, chain, "policy", chain.policy)
            return V.NF_ACCEPT if chain.policy == "accept" else V.NF_DROP


_VERDICT_NAMES = {V.NF_DROP: "drop", V.NF_ACCEPT: "accept", V.NF_STOLEN: "stolen",
                  V.NF_QUEUE: "queue", V.NFT_CONTINUE: "continue", V.NFT_JUMP: "jump",
                  V.NFT_GOTO: "goto", V.NFT_RETURN: "return"}


def _verdict_text(code: int, target: Chain | None) -> str:
    """The verdict as ``nft monitor trace`` prints it (src/netlink.c trace_print_verdict):
    ``accept``, ``drop``, ``jump CHAIN``, ``goto CHAIN``, ``continue``, ``return``."""
    name = _VERDICT_NAMES.get(code & 0xFF if code >= 0 else code, str(code))
    if code in (V.NFT_JUMP, V.NFT_GOTO) and target is not None:
        return f"{name} {target.name}"
    return name


def _trace_nft(pkt: Any, chain: Chain, kind: str, verdict: str, rule: Any = None) -> None:
    """One ``nft_trace_packet`` event (net/netfilter/nf_tables_trace.c
    ``nft_trace_notify``): table, chain, and for a ``rule`` event the rule's handle and
    text, for a ``policy`` event the base chain's policy.  The text is what
    ``nft -a monitor trace`` prints after ``trace id …`` (measured on Linux 6.18):
    ``ip filter forward rule udp dport 7 drop # handle 4 (verdict drop)``, ``ip filter
    forward policy accept``."""
    from netstack.netfilter.nft.listing import live_text
    t = chain.table
    family, tname = (t.family, t.name) if t is not None else ("", "")
    attrs: dict[str, Any] = {"family": family, "table": tname, "chain": chain.name,
                             "type": kind, "verdict": verdict}
    if kind == "rule":
        text = live_text(rule.text) if getattr(rule, "text", None) is not None else ""
        attrs["handle"] = rule.handle
        attrs["rule"] = text
        info = (f"{family} {tname} {chain.name} rule {text} # handle {rule.handle} "
                f"(verdict {verdict})")
    else:
        attrs["policy"] = verdict
        info = f"{family} {tname} {chain.name} policy {verdict}"
    pkt.trace.event(pkt, "nft_trace_packet", verdict=verdict if kind != "rule" else "",
                    info=info, attrs=attrs)


def _hookfn(priv: Chain, pkt: Any, state: Any) -> int:
    return _queue_verdict(nft_do_chain(priv, pkt, state), pkt, state)


def _queue_verdict(v: int, pkt: Any, state: Any) -> int:
    """An NF_QUEUE verdict (``queue``) is handled as ``nf_hook_slow`` → ``nf_queue`` would
    without a userspace listener (:func:`.vm_stmts.nf_queue`); other verdicts pass."""
    if v & 0xFF != 3:
        return v
    from netstack.netfilter.nft.vm_stmts import nf_queue
    return nf_queue(getattr(state, "net", None), pkt, v)


def _route_keys(pkt: Any, pf: int) -> tuple:
    """What a route chain must not change without a new route: IPv4 saddr, daddr, tos and
    the mark (nf_route_table_hook4); IPv6 saddr, daddr, hop limit, the first word
    (version, traffic class, flow label) and the mark (nf_route_table_hook6)."""
    nh = pkt.network_header
    b = pkt.buf
    if pf == 2:
        return (bytes(b[nh + 12:nh + 20]), b[nh + 1], pkt.mark)
    return (bytes(b[nh + 8:nh + 40]), b[nh + 7], bytes(b[nh:nh + 4]), pkt.mark)


def _route_hookfn(priv: Chain, pkt: Any, state: Any) -> int:
    """net/netfilter/nft_chain_route.c: run the route chain at LOCAL_OUT; when it accepts a
    packet whose addresses, TOS/flow label, hop limit or mark it changed, route it again
    (``ip_route_me_harder`` / ``nf_ip6_route_me_harder``), dropping it when no route."""
    pf = getattr(state, "pf", 0)
    nh = pkt.network_header
    if pf not in (2, 10) or nh < 0 or nh + (20 if pf == 2 else 40) > pkt.tail:
        return _queue_verdict(nft_do_chain(priv, pkt, state), pkt, state)
    before = _route_keys(pkt, pf)
    ret = _queue_verdict(nft_do_chain(priv, pkt, state), pkt, state)
    if ret != V.NF_ACCEPT or _route_keys(pkt, pf) == before:
        return ret
    if pf == 2:
        from netstack.netfilter.nat import ip_route_me_harder
        return ip_route_me_harder(state.net, pkt)
    from netstack.errors import KernelError
    from netstack.ipv6.route import Flowi6, ip6_route_output
    b = pkt.buf
    fl6 = Flowi6(bytes(b[nh + 24:nh + 40]), bytes(b[nh + 8:nh + 24]), mark=pkt.mark,
                 flowlabel=int.from_bytes(b[nh:nh + 4], "big") & 0x0FFFFFFF)
    try:
        pkt.dst = ip6_route_output(state.net, fl6)
    except KernelError:
        return V.NF_DROP
    return V.NF_ACCEPT


def sync_hooks(net: Any, st: NftState) -> None:
    """After a commit: unregister the previous base chains, register the current ones
    (NF2's ``nf_register_net_hook`` keeps each hook list in priority order)."""
    try:
        from netstack.netfilter import core
    except ImportError:                      # pragma: no cover - NF2's module is in tree
        return
    for ops in st.hooks:
        if isinstance(ops, tuple):
            from netstack.netfilter import nat
            nat.nf_nat_unregister_fn(net, ops[1])
        else:
            core.nf_unregister_net_hook(net, ops)
    st.hooks = []
    for t in st.tables:
        if "dormant" in t.flags:
            continue
        for c in t.chains.values():
            if not c.is_base:
                continue
            pf = NFPROTO[t.family]
            dev = None
            if t.family == "netdev" or c.hook == "ingress":
                dev = net.devices.get(c.device or "")
                if dev is None:
                    continue
                hooknum = NETDEV_HOOKNUM.get(c.hook or "", 0) if t.family == "netdev" \
                    else HOOKNUM["ingress"]
            elif t.family == "arp":
                hooknum = {"input": 0, "output": 1}[c.hook or ""]      # NF_ARP_IN/OUT
            else:
                hooknum = HOOKNUM[c.hook or ""]
            if c.type == "nat":
                # nat chains hang off the NAT core's hooks and run only for the first
                # packet of a connection (nf_nat_inet_fn)
                from netstack.netfilter import nat
                handle = nat.nf_nat_register_fn(
                    net, pf, hooknum, c.priority or 0,
                    lambda pkt, state, _c=c: _queue_verdict(nft_do_chain(_c, pkt, state),
                                                            pkt, state))
                st.hooks.append(("nat", handle))
                continue
            ops = core.NfHookOps(hook=_route_hookfn if c.type == "route" else _hookfn,
                                 pf=pf, hooknum=hooknum,
                                 priority=c.priority or 0, priv=c, dev=dev,
                                 name=f"nft {t.family} {t.name} {c.name}")
            core.nf_register_net_hook(net, ops)
            st.hooks.append(ops)
    _sync_conntrack(net, st)
    _sync_flowtables(net, st)


def _sync_flowtables(net: Any, st: NftState) -> None:
    """Flowtable objects of the committed ruleset become NF2 flowtables (their ingress
    fast path is NF2's); removed ones are unhooked."""
    want = {(t.family, t.name, f.name): f for t in st.tables for f in t.flowtables.values()}
    for key in [k for k in st.live_flowtables if k not in want]:
        st.live_flowtables.pop(key).unregister()
    for key, f in want.items():
        if key in st.live_flowtables:
            continue
        from netstack.netfilter.flowtable import flowtable_add
        devs = [net.devices[d] for d in f.devices if d in net.devices]
        # ``counter``: NF_FLOWTABLE_COUNTER, conntrack accounting on the fast path
        st.live_flowtables[key] = flowtable_add(net, f.name, devs, f.priority,
                                                counter=bool(f.counter))


def _needs_ct(e: Any) -> bool:
    """ct expressions take conntrack (nft_ct_get_init …); so do ``flow add``
    (nft_flow_offload_init → nf_ct_netns_get), the xtables conntrack match and CT target
    (xt_conntrack / xt_CT ``checkentry`` → nf_ct_netns_get), and anything compiled inside
    a compat expression."""
    from netstack.netfilter.nft.vm_stmts import XtCompat
    if isinstance(e, (V.CtLoad, V.CtSet, V.FlowOffload)):
        return True
    if isinstance(e, XtCompat):
        return e.spec.name in ("conntrack", "CT") or any(_needs_ct(x) for x in e.inner or ())
    return False


def _sync_conntrack(net: Any, st: NftState) -> None:
    """nft_ct_get_init/nft_ct_set_init call ``nf_ct_netns_get`` for their family: the
    namespace gets conntrack exactly while some rule uses a ``ct`` expression (conntrack
    costs nothing until then)."""
    need: set[int] = set()
    for t in st.tables:
        for c in t.chains.values():
            if any(_needs_ct(e) for r in c.rules for e in r.exprs):
                need.add(NFPROTO[t.family])
        if any(o.kind == "ct helper" for o in t.objs.values()):
            # nft_ct_helper_obj_init takes conntrack for the table's family too
            need.add(NFPROTO[t.family])
    have: set[int] = getattr(st, "ct_pfs", set())
    if need == have:
        return
    from netstack.netfilter import conntrack
    for pf in sorted(need - have):
        conntrack.nf_ct_netns_get(net, pf)
    for pf in sorted(have - need):
        conntrack.nf_ct_netns_put(net, pf)
    st.ct_pfs = need
