"""``ip address`` (ip/ipaddress.c): add/del/flush/show for IPv4 and IPv6.

``ipaddr_modify``'s parser is reproduced keyword by keyword (``peer``, ``brd +``/``-``,
``scope``, ``dev``, ``label``, ``metric``, lifetimes, IPv6 flags; the first other word is
the local prefix), with its error texts and its checks order: the prefix is parsed before
the device is looked up, a missing ``dev`` is "Not enough information" (exit 1), and a
delete without a prefix length is the old scripts' wildcard deletion, with iproute2's
warning.  State changes go through the contract's ``inet_add_addr``/``inet_del_addr``/
``inet_flush_addrs`` (IPv4) and ``inet6_add_addr``/``inet6_del_addr``/
``inet6_flush_addrs`` (IPv6).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netstack.cli import backend, fmt_addr, fmt_link
from netstack.cli.errors import ToolError
from netstack.cli.iplink import parse_show_filter, select_links
from netstack.cli.ipcommon import (name_or_number,
    AF_INET, AF_INET6, AF_UNSPEC, Args, Ctx, Prefix, duparg, duparg2, get_addr, get_prefix,
    get_unsigned, invarg, kernel_error, lookup_dev, matches,
)
from netstack.cli.jsonout import dumps
from netstack.errors import KernelError, NotSupported

INFINITY = 0xFFFFFFFF
_SCOPE_NAMES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254,
                "nowhere": 255}
_V6_FLAGS = {"home": 0x10, "nodad": 0x02, "optimistic": 0x04, "mngtmpaddr": 0x100,
             "noprefixroute": 0x200, "autojoin": 0x400}


def rtscope_a2n(text: str) -> int | None:
    """lib/rt_names.c ``rtnl_rtscope_a2n``: names or a number 0..255."""
    return name_or_number(text, _SCOPE_NAMES, 255)


@dataclass
class AddrReq:
    local: Prefix | None = None
    local_arg: str = ""
    peer: Prefix | None = None
    brd: Prefix | str | None = None      # "+" / "-" or an address
    scope: int | None = None
    dev: str | None = None
    label: str | None = None
    metric: int = 0
    valid_lft: int = INFINITY
    preferred_lft: int = INFINITY
    flags: int = 0


def _lifetime(text: str, what: str) -> int:
    if text in ("forever", "infinity"):
        return INFINITY
    v = get_unsigned(text)
    if v is None:
        raise invarg(f'{what} value is invalid\n', text)
    return v


def parse_modify(ctx: Ctx, argv: list[str]) -> AddrReq:
    req = AddrReq()
    family = ctx.family
    args = Args(argv)
    while args:
        a = args.cur
        if a in ("peer", "remote"):
            v = args.next_arg()
            if req.peer is not None:
                raise duparg("peer", v)
            req.peer = get_prefix(v, family)
            family = family or req.peer.family
        elif matches(a, "broadcast") or a == "brd":
            v = args.next_arg()
            if req.brd is not None:
                raise duparg("broadcast", v)
            req.brd = v if v in ("+", "-") else get_addr(v, family)
        elif a == "anycast":
            raise NotSupported("ip addr ... anycast")
        elif a == "scope":
            v = args.next_arg()
            sc = rtscope_a2n(v)
            if sc is None:
                raise invarg("invalid scope value.", v)
            req.scope = sc
        elif a == "dev":
            req.dev = args.next_arg()
        elif a == "label":
            req.label = args.next_arg()
        elif matches(a, "metric") or matches(a, "priority") or matches(a, "preference"):
            v = args.next_arg()
            m = get_unsigned(v)
            if m is None:
                raise invarg('"metric" value is invalid\n', v)
            req.metric = m
        elif matches(a, "valid_lft"):
            req.valid_lft = _lifetime(args.next_arg(), "valid_lft")
        elif matches(a, "preferred_lft"):
            req.preferred_lft = _lifetime(args.next_arg(), "preferred_lft")
        elif a in _V6_FLAGS:
            req.flags |= _V6_FLAGS[a]
        else:
            if a == "local":
                a = args.next_arg()
            if matches(a, "help"):
                raise NotSupported("ip addr help")
            if req.local is not None:
                raise duparg2("local", a)
            req.local_arg = a
            req.local = get_prefix(a, family)
            family = family or req.local.family
        args.advance()
    return req


def _default_scope(p: Prefix) -> int:
    """ipaddress.c ``default_scope``: 127/8 is host scope, the rest global."""
    if p.family == AF_INET and p.addr[0] == 127:
        return 254
    return 0


def _broadcast(local: Prefix, plen: int, how: str) -> bytes:
    n = int.from_bytes(local.addr, "big")
    mask = ((1 << 32) - 1) ^ ((1 << (32 - plen)) - 1) if plen else 0
    v = (n | (~mask & 0xFFFFFFFF)) if how == "+" else (n & mask)
    return v.to_bytes(4, "big")


def _modify(ctx: Ctx, argv: list[str], delete: bool, cmd: str = "add") -> None:
    """``ipaddr_modify``: ``add`` (NLM_F_EXCL), ``replace`` (NLM_F_REPLACE|NLM_F_CREATE),
    ``change`` (NLM_F_REPLACE), or ``del``.  Both address families ignore NLM_F_CREATE
    ("userspace already relies on not having to provide this", inet6_rtm_newaddr), so
    ``change`` of a missing address adds it, exactly like ``replace`` (measured)."""
    req = parse_modify(ctx, argv)
    if req.dev is None:
        raise ToolError('Not enough information: "dev" argument is required.\n', 1)
    lcl = req.local
    warning = ""
    wildcard = False
    if req.peer is None and lcl is not None:
        if delete and lcl.family == AF_INET and not lcl.explicit_len:
            warning = ("Warning: Executing wildcard deletion to stay compatible with old "
                       "scripts.\n         Explicitly specify the prefix length "
                       f"({req.local_arg}/{lcl.bitlen}) to avoid this warning.\n"
                       "         This special behaviour is likely to disappear in further "
                       "releases,\n         fix your scripts!\n")
            wildcard = True
    if lcl is None:
        if delete:
            raise NotSupported("ip addr del without an address")
        raise ToolError("Not enough information: \"local\" argument is required.\n", 1)
    if not delete and req.flags & 0x400 and not (
            (lcl.family == AF_INET and lcl.addr[0] & 0xF0 == 0xE0)
            or (lcl.family == AF_INET6 and lcl.addr[0] == 0xFF)):
        # ipaddr_modify: IFA_F_MCAUTOJOIN needs a multicast address (checked by ip)
        raise ToolError("autojoin needs multicast address\n", 1)
    plen = lcl.bitlen
    if req.peer is not None and req.peer.explicit_len:
        plen = req.peer.bitlen
    dev = lookup_dev(ctx, req.dev)
    v6 = lcl.family == AF_INET6
    if v6:
        backend.need_ipv6(ctx.net, "ip -6 addr")
        mod = backend.addrconf()
    else:
        backend.need_ipv4(ctx.net, "ip addr")
        mod = backend.devinet()
    if delete:
        if wildcard:
            addrs = mod.inet6_addrs(dev) if v6 else mod.inet_addrs(dev)
            for ifa in addrs:
                if ifa.local == lcl.addr:
                    plen = ifa.prefixlen
                    break
        ctx.stderr.write(warning)
        if v6:
            mod.inet6_del_addr(ctx.net, dev, lcl.addr, plen)
        else:
            mod.inet_del_addr(ctx.net, dev, lcl.addr, plen)
        return
    scope = req.scope if req.scope is not None else _default_scope(lcl)
    if v6:
        if req.brd is not None:
            raise NotSupported("ip -6 addr ... broadcast")
        ifa6 = mod.Inet6IfAddr(local=lcl.addr, prefixlen=plen,
                               address=req.peer.addr if req.peer else None, flags=req.flags,
                               valid_lft=req.valid_lft, preferred_lft=req.preferred_lft,
                               metric=req.metric)
        if cmd == "add":
            mod.inet6_add_addr(ctx.net, dev, ifa6)
        else:
            mod.inet6_addr_modify(ctx.net, dev, ifa6)
        return
    brd: bytes | None = None
    if isinstance(req.brd, str):
        brd = _broadcast(lcl, plen, req.brd) if plen < 31 else None
    elif req.brd is not None:
        brd = req.brd.addr
    ifa = mod.IfAddr(local=lcl.addr, prefixlen=plen,
                     address=req.peer.addr if req.peer else lcl.addr, broadcast=brd,
                     scope=scope, label=req.label or dev.name, flags=req.flags | 0x80,
                     valid_lft=req.valid_lft, preferred_lft=req.preferred_lft,
                     metric=req.metric)
    if cmd == "add":
        mod.inet_add_addr(ctx.net, dev, ifa)
    else:
        mod.inet_add_addr(ctx.net, dev, ifa, replace=True)


def addrs_of(ctx: Ctx, dev: Any) -> list[tuple[Any, bool]]:
    """(address, is_ipv6) pairs in ``ip addr`` order: IPv4 first, then IPv6."""
    out: list[tuple[Any, bool]] = []
    if ctx.family in (AF_UNSPEC, AF_INET) and ctx.net.ipv4 is not None:
        out.extend((a, False) for a in backend.devinet().inet_addrs(dev))
    if ctx.family in (AF_UNSPEC, AF_INET6) and ctx.net.ipv6 is not None:
        out.extend((a, True) for a in backend.addrconf().inet6_addrs(dev))
    return out


def _show(ctx: Ctx, argv: list[str]) -> None:
    dev, up, kind = parse_show_filter(Args(argv))
    devs = select_links(ctx, dev, up, kind)
    w = ctx.stdout.write
    items = []
    for d in devs:
        addrs = addrs_of(ctx, d)
        if ctx.family != AF_UNSPEC and not addrs:
            continue
        items.append((d, addrs))
    filtered = ctx.family != AF_UNSPEC
    if ctx.json:
        out = []
        for d, addrs in items:
            j = fmt_link.link_json(d, bool(ctx.details), bool(ctx.stats), for_addr=True,
                                   family_filtered=filtered)
            j["addr_info"] = [fmt_addr.addr_json(a, v6) for a, v6 in addrs]
            out.append(j)
        w(dumps(out, ctx.pretty) + "\n")
        return
    for d, addrs in items:
        if ctx.brief:
            w(f"{fmt_link.ifname_at(d):<16} {d.operstate():<14} "
              + "".join(fmt_addr.addr_brief(a) for a, _ in addrs) + "\n")
            continue
        w(fmt_link.link_text(d, bool(ctx.details), False, for_addr=True,
                             family_filtered=filtered))
        for a, v6 in addrs:
            w(fmt_addr.addr_text(a, v6))
        if ctx.stats:
            w(fmt_link.stats_text(d))


def _flush(ctx: Ctx, argv: list[str]) -> None:
    if not argv:
        raise ToolError("Flush requires arguments.\n", 1)
    dev, up, kind = parse_show_filter(Args(argv))
    if dev is None or up or kind is not None:
        raise NotSupported("ip addr flush without exactly 'dev DEV'")
    devs = select_links(ctx, dev, False, None)
    for d in devs:
        if ctx.family in (AF_UNSPEC, AF_INET) and ctx.net.ipv4 is not None:
            backend.devinet().inet_flush_addrs(ctx.net, d)
        if ctx.family in (AF_UNSPEC, AF_INET6) and ctx.net.ipv6 is not None:
            backend.addrconf().inet6_flush_addrs(ctx.net, d)


def do_ipaddr(ctx: Ctx, argv: list[str]) -> int:
    if not argv:
        _show(ctx, [])
        return 0
    cmd, rest = argv[0], argv[1:]
    try:
        if matches(cmd, "add"):
            _modify(ctx, rest, delete=False)
        elif matches(cmd, "change") or cmd == "chg":
            _modify(ctx, rest, delete=False, cmd="change")
        elif matches(cmd, "replace"):
            _modify(ctx, rest, delete=False, cmd="replace")
        elif matches(cmd, "delete"):
            _modify(ctx, rest, delete=True)
        elif matches(cmd, "list") or matches(cmd, "show") or matches(cmd, "lst"):
            _show(ctx, rest)
        elif matches(cmd, "flush"):
            _flush(ctx, rest)
        elif matches(cmd, "save") or matches(cmd, "showdump") or matches(cmd, "restore"):
            raise NotSupported(f"ip addr {cmd}")
        else:
            raise ToolError(f'Command "{cmd}" is unknown, try "ip address help".\n', 255)
    except KernelError as e:
        raise kernel_error(e) from None
    return 0
