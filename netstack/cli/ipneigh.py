"""``ip neigh`` (ip/ipneigh.c): add/del/replace/change/flush/show on the ARP and ND tables.

``ipneigh_modify``'s checks in order: arguments, then "Device and destination are
required arguments." (exit 255), then the link-layer address syntax (exit 1), then the
device.  Entries are added PERMANENT unless ``nud`` says otherwise, like iproute2.
"""
from __future__ import annotations

from typing import Any

from netstack.cli import backend
from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import (
    AF_INET, AF_INET6, AF_UNSPEC, Args, Ctx, Prefix, addr_to_str, duparg, duparg2, get_addr,
    get_prefix, invarg, kernel_error, lookup_dev, mac_str, matches, parse_lladdr,
)
from netstack.cli.jsonout import dumps
from netstack.errors import KernelError, NotSupported

_NUD = {"permanent": 0x80, "reachable": 0x02, "noarp": 0x40, "none": 0x00, "stale": 0x04,
        "incomplete": 0x01, "delay": 0x08, "probe": 0x10, "failed": 0x20}
_NUD_SHOW = ((0x01, "INCOMPLETE"), (0x02, "REACHABLE"), (0x04, "STALE"), (0x08, "DELAY"),
             (0x10, "PROBE"), (0x20, "FAILED"), (0x40, "NOARP"), (0x80, "PERMANENT"))
NTF_PROXY = 0x08
NTF_ROUTER = 0x80
NTF_EXT_LEARNED = 0x10


def nud_a2n(text: str) -> int | None:
    """``nud_state_a2n``: names (any case) or a number."""
    t = text.lower()
    if t in _NUD:
        return _NUD[t]
    try:
        v = int(text, 0)
    except ValueError:
        return None
    return v if 0 <= v <= 0xFF else None


def _tables(ctx: Ctx, family: int) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    if family in (AF_UNSPEC, AF_INET) and ctx.net.ipv4 is not None:
        tbl = getattr(ctx.net.ipv4, "arp_tbl", None)
        if tbl is not None:
            out.append((AF_INET, tbl))
    if family in (AF_UNSPEC, AF_INET6) and ctx.net.ipv6 is not None:
        tbl = getattr(ctx.net.ipv6, "nd_tbl", None)
        if tbl is not None:
            out.append((AF_INET6, tbl))
    return out


def _table_for(ctx: Ctx, family: int) -> Any:
    for fam, tbl in _tables(ctx, family):
        if fam == family:
            return tbl
    name = "IPv4 (ARP)" if family == AF_INET else "IPv6 (ND)"
    raise NotSupported(f"ip neigh: the {name} neighbour table is not registered")


def _modify(ctx: Ctx, cmd: str, argv: list[str]) -> None:
    args = Args(argv)
    lla: str | None = None
    state: int | None = None
    flags = 0
    dev_name: str | None = None
    dst: Prefix | None = None
    while args:
        a = args.cur
        if matches(a, "lladdr"):
            v = args.next_arg()
            if lla is not None:
                raise duparg("lladdr", v)
            lla = v
        elif a == "nud":
            v = args.next_arg()
            st = nud_a2n(v)
            if st is None:
                raise invarg("nud state is bad", v)
            state = st
        elif matches(a, "proxy"):
            v = args.next_arg()
            if dst is not None:
                raise duparg("address", v)
            dst = get_addr(v, ctx.family)
            flags |= NTF_PROXY
        elif a == "router":
            flags |= NTF_ROUTER
        elif matches(a, "extern_learn"):
            flags |= NTF_EXT_LEARNED
        elif a == "dev":
            dev_name = args.next_arg()
        elif matches(a, "protocol") or a in ("use", "managed"):
            raise NotSupported(f"ip neigh ... {a}")
        else:
            if a == "to":
                a = args.next_arg()
            if matches(a, "help"):
                raise NotSupported("ip neigh help")
            if dst is not None:
                raise duparg2("to", a)
            dst = get_addr(a, ctx.family)
        args.advance()
    if dev_name is None or dst is None:
        raise ToolError("Device and destination are required arguments.\n", 255)
    mac: bytes | None = None
    if lla is not None and lla != "null":
        mac = parse_lladdr(lla)
    dev = lookup_dev(ctx, dev_name)
    nb = backend.neighbour()
    tbl = _table_for(ctx, dst.family)
    if cmd == "del":
        nb.neigh_delete(tbl, dev, dst.addr, proxy=bool(flags & NTF_PROXY))
        return
    st = state if state is not None else 0x80
    if cmd == "add":
        nb.neigh_add(tbl, dev, dst.addr, mac, st, flags, create=True, excl=True)
    elif cmd == "replace":
        nb.neigh_add(tbl, dev, dst.addr, mac, st, flags, create=True, replace=True,
                     excl=False)
    else:  # change
        nb.neigh_add(tbl, dev, dst.addr, mac, st, flags, create=False, replace=True,
                     excl=False)


def _parse_list(ctx: Ctx, argv: list[str]) -> tuple[Any, int | None, Prefix | None, bool]:
    args = Args(argv)
    dev = None
    nud_mask: int | None = None
    prefix: Prefix | None = None
    proxy = False
    while args:
        a = args.cur
        if a == "dev":
            dev = lookup_dev(ctx, args.next_arg())
        elif a == "nud":
            v = args.next_arg()
            if v == "all":
                nud_mask = 0x1FF
            else:
                st = nud_a2n(v)
                if st is None:
                    raise invarg("nud state is bad", v)
                nud_mask = (nud_mask or 0) | (st if st else 0x100)
        elif a == "proxy":
            proxy = True
        elif a in ("master", "vrf", "router", "unused") or matches(a, "extern_learn"):
            raise NotSupported(f"ip neigh show ... {a}")
        else:
            if a == "to":
                a = args.next_arg()
            if matches(a, "help"):
                raise NotSupported("ip neigh help")
            prefix = get_prefix(a, ctx.family)
        args.advance()
    return dev, nud_mask, prefix, proxy


def _state_names(state: int) -> list[str]:
    if state == 0:
        return ["NONE"]
    return [n for bit, n in _NUD_SHOW if state & bit]


def pneigh_hash(key: bytes) -> int:
    """``pneigh_hash`` (net/core/neighbour.c): the last four key bytes loaded as a
    little-endian u32 (x86), folded down to PNEIGH_HASHMASK (0xF)."""
    h = int.from_bytes(key[-4:], "little")
    h ^= h >> 16
    h ^= h >> 8
    h ^= h >> 4
    return h & 0xF


def _proxies(ctx: Ctx, dev: Any, prefix: Prefix | None) -> list[Any]:
    """``pneigh_dump_table`` for each family (ARP before ND): buckets in order, newest
    first within one; the key filter is iproute2's (exact address or prefix)."""
    nb = backend.neighbour()
    out = []
    for _fam, tbl in _tables(ctx, prefix.family if prefix else ctx.family):
        entries = nb.pneigh_dump(tbl, dev)   # newest first
        for pn in sorted(entries, key=lambda e: pneigh_hash(e.key)):   # stable
            if prefix is not None:
                if len(pn.key) != len(prefix.addr):
                    continue
                bits = prefix.bitlen
                a = int.from_bytes(pn.key, "big") >> (len(pn.key) * 8 - bits) if bits else 0
                b = int.from_bytes(prefix.addr, "big") >> (len(pn.key) * 8 - bits) if bits else 0
                if a != b:
                    continue
            out.append(pn)
    return out


def _show_proxies(ctx: Ctx, entries: list[Any], dev: Any) -> None:
    """print_neigh for NTF_PROXY entries: ``ADDR [dev DEV] proxy``."""
    if ctx.json:
        rows = []
        for pn in entries:
            d: dict[str, Any] = {"dst": addr_to_str(pn.key)}
            if dev is None and pn.dev is not None:
                d["dev"] = pn.dev.name
            d["proxy"] = None
            rows.append(d)
        ctx.stdout.write(dumps(rows, ctx.pretty) + "\n")
        return
    for pn in entries:
        s = addr_to_str(pn.key) + " "
        if dev is None and pn.dev is not None:
            s += f"dev {pn.dev.name} "
        ctx.stdout.write(s + "proxy \n")


def _entries(ctx: Ctx, argv: list[str], flush: bool) -> tuple[list[Any], Any]:
    dev, nud_mask, prefix, proxy = _parse_list(ctx, argv)
    if proxy:
        raise NotSupported("ip neigh flush proxy")   # _show lists proxies itself
    nb = backend.neighbour()
    mask = nud_mask if nud_mask is not None else (
        nb.NUD_FLUSH_DEFAULT if flush else nb.NUD_SHOW_DEFAULT)
    out = []
    for fam, tbl in _tables(ctx, prefix.family if prefix else ctx.family):
        key = prefix.addr if prefix is not None and prefix.explicit_len is False else None
        for n in nb.neigh_dump(tbl, dev, mask, key):
            if prefix is not None and prefix.explicit_len:
                bits = prefix.bitlen
                a = int.from_bytes(n.key, "big") >> (len(n.key) * 8 - bits) if bits else 0
                b = int.from_bytes(prefix.addr, "big") >> (len(n.key) * 8 - bits) if bits else 0
                if len(n.key) != len(prefix.addr) or a != b:
                    continue
            out.append((tbl, n))
    return out, dev


def _show(ctx: Ctx, argv: list[str]) -> None:
    pdev, _mask, prefix, proxy = _parse_list(ctx, argv)
    if proxy:
        _show_proxies(ctx, _proxies(ctx, pdev, prefix), pdev)
        return
    items, dev = _entries(ctx, argv, flush=False)
    w = ctx.stdout.write
    if ctx.json:
        rows = []
        for _tbl, n in items:
            d: dict[str, Any] = {"dst": addr_to_str(n.key)}
            if dev is None:
                d["dev"] = n.dev.name
            if n.lladdr is not None:
                d["lladdr"] = mac_str(n.lladdr)
            if n.flags & NTF_ROUTER:
                d["router"] = None
            if n.flags & NTF_EXT_LEARNED:
                d["extern_learn"] = None
            d["state"] = _state_names(n.nud_state)
            rows.append(d)
        w(dumps(rows, ctx.pretty) + "\n")
        return
    for _tbl, n in items:
        s = addr_to_str(n.key) + " "
        if dev is None:
            s += f"dev {n.dev.name} "
        if n.lladdr is not None:
            s += f"lladdr {mac_str(n.lladdr)} "
        if n.flags & NTF_ROUTER:
            s += "router "
        if n.flags & NTF_EXT_LEARNED:
            s += "extern_learn "
        s += " ".join(_state_names(n.nud_state)) + " \n"
        w(s)


def _flush(ctx: Ctx, argv: list[str]) -> None:
    if not argv:
        raise ToolError("Flush requires arguments.\n", 1)
    items, _dev = _entries(ctx, argv, flush=True)
    nb = backend.neighbour()
    for tbl, n in items:
        if not n.dead:
            nb.neigh_delete(tbl, n.dev, n.key)


def do_ipneigh(ctx: Ctx, argv: list[str]) -> int:
    if not argv:
        _show(ctx, [])
        return 0
    cmd, rest = argv[0], argv[1:]
    try:
        if matches(cmd, "add"):
            _modify(ctx, "add", rest)
        elif matches(cmd, "change") or cmd == "chg":
            _modify(ctx, "change", rest)
        elif matches(cmd, "replace"):
            _modify(ctx, "replace", rest)
        elif matches(cmd, "delete"):
            _modify(ctx, "del", rest)
        elif matches(cmd, "get"):
            raise NotSupported("ip neigh get")
        elif matches(cmd, "show") or matches(cmd, "lst") or matches(cmd, "list"):
            _show(ctx, rest)
        elif matches(cmd, "flush"):
            _flush(ctx, rest)
        else:
            raise ToolError(f'Command "{cmd}" is unknown, try "ip neigh help".\n', 255)
    except KernelError as e:
        raise kernel_error(e) from None
    return 0
