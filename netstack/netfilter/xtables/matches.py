"""The matches iptables-nft users need: tcp/udp/sctp ports (libxt_tcp.c, libxt_udp.c,
libxt_sctp.c), icmp/icmp6, multiport, conntrack, state, mark, comment, limit.  Each renders
itself for ``-S`` (the extension's ``save``), ``-L`` (``print``) and iptables-translate
(``xlate``) with the spellings of iptables 1.8.9."""
from __future__ import annotations

from netstack.netfilter.xtables import protos
from netstack.netfilter.xtables.ext import Ext, ParseCtx, parse_markmask, parse_uint

# ---------------------------------------------------------------- ports


def parse_port_range(text: str, proto: str, pc: ParseCtx, style: str = "tcp"
                     ) -> tuple[int, int]:
    """A port or range the way each extension parses it.

    ``tcp`` (libxt_tcp.c parse_tcp_ports, also sctp): ``A:B``, ``:B`` from 0, ``A:`` to
    65535, min > max is an error.  ``udp`` (x6 XTTYPE_PORTRC): no order check, numbers are
    truncated to 16 bits, unknown names "do not resolve".  ``multi`` (libxt_multiport.c):
    both ends required, min > max is an error."""
    lo_s, colon, hi_s = text.partition(":")

    def one(t: str, default: int) -> int:
        if t == "" and style != "multi":
            return default
        if style == "udp":
            if t.isdigit():
                return int(t) & 0xFFFF
            v = protos.service_port(t, proto)
            if v is None:
                raise pc.err(f"Port \"{t}\" does not resolve to anything.\n")
            return v
        v = protos.service_port(t, proto) if t else None
        if v is None:
            raise pc.err(f"invalid port/service `{t}' specified")
        return v
    if not colon:
        p = one(lo_s, 0)
        return p, p
    lo, hi = one(lo_s, 0), one(hi_s, 65535)
    if lo > hi and style != "udp":
        raise pc.err("invalid portrange specified" if style == "multi" else
                     "invalid portrange (min > max)")
    return lo, hi


TCP_FLAGS = [("FIN", 0x01), ("SYN", 0x02), ("RST", 0x04), ("PSH", 0x08), ("ACK", 0x10),
             ("URG", 0x20), ("ALL", 0x3F), ("NONE", 0)]


def _parse_tcp_flags(text: str, pc: ParseCtx) -> int:
    v = 0
    for part in text.split(","):
        for name, bit in TCP_FLAGS:
            if part.upper() == name:
                v |= bit
                break
        else:
            raise pc.err(f"Unknown TCP flag `{part}'")
    return v


def _tcp_flag_names(v: int, sep: str = ",") -> str:
    names = [n for n, b in TCP_FLAGS[:6] if v & b]
    return sep.join(names) if names else "NONE"


class PortMatch(Ext):
    """``-m tcp``/``udp``/``sctp`` (also loaded implicitly by ``-p P --dport …``)."""

    def __init__(self, proto: str) -> None:
        self.name = proto
        # udp is parsed by libxtables' x6 framework, tcp and sctp by their own code
        self.x6 = proto == "udp"
        self.canonical = {"--sport": "--source-port", "--dport": "--destination-port"}
        self.options = {"--sport": True, "--source-port": True, "--dport": True,
                        "--destination-port": True}
        if proto == "tcp":
            self.options.update({"--tcp-flags": True, "--syn": False})
        self.invertible = frozenset(self.options)
        self.spts: tuple[int, int] = (0, 65535)
        self.dpts: tuple[int, int] = (0, 65535)
        self.sinv = self.dinv = False
        self.flags: tuple[int, int] | None = None
        self.finv = False
        self.seen: set[str] = set()

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        canon = {"--source-port": "--sport", "--destination-port": "--dport",
                 "--syn": "--tcp-flags"}.get(opt, opt)
        if canon in self.seen:
            if canon == "--tcp-flags":
                raise pc.err("Only one of `--syn' or `--tcp-flags'  allowed")
            which = {"--sport": "--source-port", "--dport": "--destination-port"}[canon]
            raise pc.err(f"Only one `{which}' allowed")
        self.seen.add(canon)
        style = "udp" if self.name == "udp" else "tcp"
        if canon == "--sport":
            self.spts, self.sinv = parse_port_range(arg or "", self.name, pc, style), invert
        elif canon == "--dport":
            self.dpts, self.dinv = parse_port_range(arg or "", self.name, pc, style), invert
        elif opt == "--syn":
            self.flags, self.finv = (0x17, 0x02), invert
        else:
            raise pc.err("--tcp-flags requires two args.")

    def parse_flags(self, mask: str, cmp: str, invert: bool, pc: ParseCtx) -> None:
        if "--tcp-flags" in self.seen:
            raise pc.err("Only one of `--syn' or `--tcp-flags'  allowed")
        self.seen.add("--tcp-flags")
        self.flags = (_parse_tcp_flags(mask, pc), _parse_tcp_flags(cmp, pc))
        self.finv = invert

    @staticmethod
    def _save_range(r: tuple[int, int]) -> str:
        return str(r[0]) if r[0] == r[1] else f"{r[0]}:{r[1]}"

    def save(self) -> str:
        out = ""
        if self.spts != (0, 65535):
            out += f"{' !' if self.sinv else ''} --sport {self._save_range(self.spts)}"
        if self.dpts != (0, 65535):
            out += f"{' !' if self.dinv else ''} --dport {self._save_range(self.dpts)}"
        if self.flags is not None:
            out += (f"{' !' if self.finv else ''} --tcp-flags {_tcp_flag_names(self.flags[0])}"
                    f" {_tcp_flag_names(self.flags[1])}")
        return out

    def xlate(self, v6: bool) -> list[str] | None:
        toks: list[str] = []
        # libxt_udp.c udp_xlate tests XT_UDP_INV_SRCPT for the destination port too: a
        # negated --dport loses its "!=" and a negated --sport negates both (kept as is)
        dinv = self.sinv if self.name == "udp" else self.dinv
        for sel, r, inv in (("sport", self.spts, self.sinv), ("dport", self.dpts, dinv)):
            if r == (0, 65535):        # the full range is "no port match", even negated
                continue
            val = str(r[0]) if r[0] == r[1] else f"{r[0]}-{r[1]}"
            toks.append(f"{self.name} {sel} {'!= ' if inv else ''}{val}")
        if self.flags is not None:
            mask, cmp = self.flags
            names = [n.lower() for n, b in TCP_FLAGS[:6] if mask & b]
            cmp_names = [n.lower() for n, b in TCP_FLAGS[:6] if cmp & b]
            toks.append(f"tcp flags {'!= ' if self.finv else ''}"
                        f"{','.join(cmp_names) if cmp_names else '0x0'} / {','.join(names)}")
        return toks

    def listing(self, numeric: bool) -> str:
        out = f" {self.name}"

        def ports(label: str, r: tuple[int, int], inv: bool) -> str:
            name = (lambda p: str(p)) if numeric else (lambda p: protos.port_service(p, self.name))
            bang = "!" if inv else ""
            if r[0] == r[1]:
                return f" {label}:{bang}{name(r[0])}"
            return f" {label}s:{bang}{name(r[0])}:{name(r[1])}"
        if self.spts != (0, 65535) or self.sinv:
            out += ports("spt", self.spts, self.sinv)
        if self.dpts != (0, 65535) or self.dinv:
            out += ports("dpt", self.dpts, self.dinv)
        if self.flags is not None:
            m, c = self.flags
            bang = "!" if self.finv else ""
            out += (f" flags:{bang}0x{m:02X}/0x{c:02X}" if numeric else
                    f" flags:{bang}{_tcp_flag_names(m)}/{_tcp_flag_names(c)}")
        return out


class IcmpMatch(Ext):
    """``-m icmp --icmp-type`` / ``-m icmp6 --icmpv6-type``: a type and a code range."""

    def __init__(self, v6: bool) -> None:
        self.v6 = v6
        self.name = "icmp6" if v6 else "icmp"
        self.opt = "--icmpv6-type" if v6 else "--icmp-type"
        self.options = {self.opt: True}
        self.invertible = frozenset(self.options)
        self.type: tuple[int, int, int] = (0xFF, 0, 0xFF) if not v6 else (0, 0, 0xFF)
        self.inv = False
        self.given = False

    def final_check(self, pc: ParseCtx) -> None:
        self.mandatory = (self.opt,)
        self.x6_mandatory(pc)

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        res = protos.lookup_icmp(arg or "", self.v6)
        if isinstance(res, str):
            raise pc.err(res)
        self.type, self.inv, self.given = res, invert, True

    def save(self) -> str:
        t, lo, hi = self.type
        if not self.v6 and t == 0xFF and (lo, hi) == (0, 0xFF) and not self.inv:
            return ""
        val = str(t) if (lo, hi) == (0, 0xFF) else f"{t}/{lo}"
        return f"{' !' if self.inv else ''} {self.opt} {val}"

    def xlate(self, v6: bool) -> list[str] | None:
        t, lo, hi = self.type
        if not self.v6 and t == 0xFF:
            return ["ip protocol icmp"]
        if (lo, hi) != (0, 0xFF):
            return None
        table = protos.NFT_ICMP6 if self.v6 else protos.NFT_ICMP
        name = table.get(t, str(t))
        return [f"{'icmpv6' if self.v6 else 'icmp'} type {'!= ' if self.inv else ''}{name}"]

    def listing(self, numeric: bool) -> str:
        t, lo, hi = self.type
        bang = "!" if self.inv else ""
        if self.v6:
            table = protos.ICMP6_TYPES
            head = " ipv6-icmp"
        else:
            table = protos.ICMP_TYPES
            head = " icmp"
        if not numeric:
            for name, tt, l2, h2 in table:
                if (tt, l2, h2) == (t, lo, hi):
                    return f"{head} {bang}{name}"
        # libxt_icmp.c print_icmptype: the numeric form has no space after the match
        # name ("icmptype 8"), a quirk of the real tool kept here
        code = "" if (lo, hi) == (0, 0xFF) else (f" code {lo}" if lo == hi else
                                                f" codes {lo}-{hi}")
        return f"{head}{' !' if self.inv else ''}type {t}{code}"


class MultiportMatch(Ext):
    """``-m multiport`` (revision 1): up to 15 ports or ranges, one direction or both."""

    name = "multiport"
    options = {"--sports": True, "--source-ports": True, "--dports": True,
               "--destination-ports": True, "--ports": True}
    invertible = frozenset(options)
    canonical = {"--sports": "--source-ports", "--dports": "--destination-ports"}
    exclusive = (frozenset({"--source-ports", "--destination-ports", "--ports"}),)

    def __init__(self) -> None:
        self.flag = ""
        self.ports: list[tuple[int, int]] = []
        self.inv = False
        self.proto = ""

    _NAMES = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp", 136: "udplite"}

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        # ports are resolved for the protocol known so far; the check that -p is one of
        # the port protocols is multiport_check (after the whole line)
        self.proto = self._NAMES.get(pc.proto, "tcp")
        self.flag = {"--source-ports": "--sports", "--destination-ports": "--dports"}.get(opt,
                                                                                        opt)
        self.inv = invert
        for part in (arg or "").split(","):
            self.ports.append(parse_port_range(part, self.proto, pc, "multi"))
        count = sum(1 if lo == hi else 2 for lo, hi in self.ports)
        if count > 15:
            raise pc.err("too many ports specified")

    def final_check(self, pc: ParseCtx) -> None:
        if not self.flag:
            raise pc.err("multiport expection an option")
        if pc.proto not in self._NAMES or pc.proto_inv:
            raise pc.err("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or "
                         "`-p dccp'")
        self.proto = self._NAMES[pc.proto]

    def _list(self, sep: str, numeric: bool = True) -> str:
        def n(p: int) -> str:
            return str(p) if numeric else protos.port_service(p, self.proto)
        return ",".join(n(lo) if lo == hi else f"{n(lo)}{sep}{n(hi)}" for lo, hi in self.ports)

    def save(self) -> str:
        return f"{' !' if self.inv else ''} {self.flag} {self._list(':')}"

    def xlate(self, v6: bool) -> list[str] | None:
        p = self.proto
        op = "!= " if self.inv else ""
        items = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ports]
        if self.flag == "--ports":
            elems = []
            for it in items:
                elems += [f"0-65535 . {it}", f"{it} . 0-65535"]
            return [f"{p} sport . {p} dport {op}{{ {', '.join(elems)} }}"]
        sel = "sport" if self.flag == "--sports" else "dport"
        val = items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"
        return [f"{p} {sel} {op}{val}"]

    def listing(self, numeric: bool) -> str:
        word = self.flag[2:]
        return f" multiport {word} {' !' if self.inv else ''}{self._list(':', numeric)}"


CT_STATES = {"INVALID": 1, "ESTABLISHED": 2, "RELATED": 4, "NEW": 8, "UNTRACKED": 1 << 12,
             "SNAT": 1 << 8, "DNAT": 1 << 9}
CT_STATUS = {"NONE": 0, "EXPECTED": 1, "SEEN_REPLY": 2, "ASSURED": 4, "CONFIRMED": 8}


def _state_save(mask: int) -> str:
    """conntrack_print_states order: INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED,SNAT,DNAT."""
    order = ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT"]
    return ",".join(n for n in order if mask & CT_STATES[n])


def _state_xlate(mask: int, inv: bool) -> str:
    order = ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED"]
    return ("! " if inv else "") + ",".join(n.lower() for n in order if mask & CT_STATES[n])


class ConntrackMatch(Ext):
    """``-m conntrack --ctstate``/``--ctstatus`` (revision 3) and ``-m state --state``
    (iptables-nft 1.8.9 implements state with the same conntrack state bits)."""

    def __init__(self, state_only: bool) -> None:
        self.name = "state" if state_only else "conntrack"
        self.options = {"--state": True} if state_only else {"--ctstate": True,
                                                             "--ctstatus": True}
        self.invertible = frozenset(self.options)
        self.state: int | None = None
        self.sinv = False
        self.status: int | None = None
        self.stinv = False

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        if opt in ("--ctstate", "--state"):
            mask = 0
            for part in (arg or "").split(","):
                if part.upper() not in CT_STATES:
                    raise pc.err(f"Bad ctstate \"{part}\"" if opt == "--ctstate" else
                                 f"Bad state \"{part}\"")
                mask |= CT_STATES[part.upper()]
            self.state, self.sinv = mask, invert
        else:
            mask = 0
            for part in (arg or "").split(","):
                if part.upper() not in CT_STATUS:
                    raise pc.err(f"Bad ctstatus \"{part}\"")
                mask |= CT_STATUS[part.upper()]
            self.status, self.stinv = mask, invert

    def final_check(self, pc: ParseCtx) -> None:
        if self.name == "state":
            self.mandatory = ("--state",)
            self.x6_mandatory(pc)
        if self.name == "conntrack" and self.state is None and self.status is None:
            raise pc.err("conntrack: At least one option is required")

    def save(self) -> str:
        out = ""
        opt = "--state" if self.name == "state" else "--ctstate"
        if self.state is not None:
            out += f"{' !' if self.sinv else ''} {opt} {_state_save(self.state)}"
        if self.status is not None:
            names = [n for n, b in CT_STATUS.items() if b and self.status & b] or ["NONE"]
            out += f"{' !' if self.stinv else ''} --ctstatus {','.join(names)}"
        return out

    def xlate(self, v6: bool) -> list[str] | None:
        toks = []
        if self.state is not None:
            if self.state & (CT_STATES["SNAT"] | CT_STATES["DNAT"]):
                which = "snat" if self.state & CT_STATES["SNAT"] else "dnat"
                toks.append(f"ct status {'!=' if self.sinv else ''}{which}")
            else:
                toks.append("ct state " + _state_xlate(self.state, self.sinv))
        if self.status is not None:
            names = [n.lower().replace("_", "-") for n, b in CT_STATUS.items()
                     if b and self.status & b]
            toks.append(f"ct status {'! ' if self.stinv else ''}{','.join(names)}")
        return toks

    def listing(self, numeric: bool) -> str:
        out = ""
        if self.state is not None:
            word = "state" if self.name == "state" else "ctstate"
            out += f" {'! ' if self.sinv else ''}{word} {_state_save(self.state)}"
        if self.status is not None:
            names = [n for n, b in CT_STATUS.items() if b and self.status & b] or ["NONE"]
            out += f" {'! ' if self.stinv else ''}ctstatus {','.join(names)}"
        return out


class MarkMatch(Ext):
    """``-m mark --mark VALUE[/MASK]`` (xt_mark_mtinfo1)."""

    name = "mark"
    options = {"--mark": True}
    invertible = frozenset(options)

    def __init__(self) -> None:
        self.mark: int | None = None
        self.mask = 0xFFFFFFFF
        self.inv = False

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        v, m = parse_markmask(arg or "", "mark", "--mark", pc)
        self.mark, self.mask, self.inv = v, 0xFFFFFFFF if m is None else m, invert

    mandatory = ("--mark",)

    def final_check(self, pc: ParseCtx) -> None:
        self.x6_mandatory(pc)

    def save(self) -> str:
        m = "" if self.mask == 0xFFFFFFFF else f"/{self.mask:#x}"
        return f"{' !' if self.inv else ''} --mark {self.mark:#x}{m}"

    def xlate(self, v6: bool) -> list[str] | None:
        assert self.mark is not None
        if self.mask != 0xFFFFFFFF:
            return [f"mark and {self.mask:#x} {'!=' if self.inv else '=='} {self.mark:#x}"]
        return [f"mark {'!= ' if self.inv else ''}{self.mark:#x}"]

    def listing(self, numeric: bool) -> str:
        m = "" if self.mask == 0xFFFFFFFF else f"/{self.mask:#x}"
        return f" mark match{' !' if self.inv else ''} {self.mark:#x}{m}"


def save_string(value: str) -> str:
    """xtables_save_string: bare when only [A-Za-z0-9_-], else double-quoted with \\", \\\\
    and \\' escaped."""
    ok = set("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if value and all(c in ok for c in value):
        return " " + value
    esc = "".join("\\" + c if c in "\"\\'" else c for c in value)
    return f' "{esc}"'


class CommentMatch(Ext):
    """``-m comment --comment TEXT`` (at most 255 characters)."""

    name = "comment"
    options = {"--comment": True}

    def __init__(self) -> None:
        self.text: str | None = None

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        if len(arg or "") > 255:
            raise pc.err(f"comment: option \"--comment\" must be shorter than 256 characters\n")
        self.text = arg or ""

    mandatory = ("--comment",)

    def final_check(self, pc: ParseCtx) -> None:
        self.x6_mandatory(pc)

    def save(self) -> str:
        return " --comment" + save_string(self.text or "")

    def xlate(self, v6: bool) -> list[str] | None:
        return []          # the comment is carried by translate.py (last one wins)

    def listing(self, numeric: bool) -> str:
        return f" /* {self.text} */"


LIMIT_SCALE = 10000
_RATE_UNITS = [("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400)]


def limit_rate_text(avg: int, long_names: bool) -> str:
    """libxt_limit print_rate(): the largest unit that represents ``avg`` exactly enough."""
    rates = [("day", LIMIT_SCALE * 86400), ("hour", LIMIT_SCALE * 3600),
             ("min", LIMIT_SCALE * 60), ("sec", LIMIT_SCALE)]
    i = 1
    while i < len(rates):
        mult = rates[i][1]
        if avg > mult or mult // avg < mult % avg:
            break
        i += 1
    name, mult = rates[i - 1]
    if long_names:
        name = {"day": "day", "hour": "hour", "min": "minute", "sec": "second"}[name]
    return f"{mult // avg}/{name}"


class LimitMatch(Ext):
    """``-m limit --limit N/UNIT --limit-burst B``: stored as the kernel's ``avg`` period in
    1/10000 s (xt_limit.h), which is why rates print back in the unit that divides evenly."""

    name = "limit"
    options = {"--limit": True, "--limit-burst": True}

    def __init__(self) -> None:
        self.avg = LIMIT_SCALE * 3600 // 3
        self.burst = 5

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        text = arg or ""
        if opt == "--limit-burst":
            v = parse_uint(text, 10000)
            if v is None:
                raise pc.err("limit: bad value for option \"--limit-burst\", or out of range "
                             "(0-10000).\n")
            self.burst = v
            return
        num, slash, unit = text.partition("/")
        mult = 1
        if slash:
            for uname, m in _RATE_UNITS:
                if unit and uname.startswith(unit.lower()):
                    mult = m
                    break
            else:
                raise pc.err(f"bad rate \"{text}\"'")
        if not num.isdigit() or int(num) == 0:
            raise pc.err(f"bad rate \"{text}\"'")
        r = int(num)
        if r > LIMIT_SCALE * mult:
            raise pc.err(f"Rate too fast \"{text}\"")
        self.avg = LIMIT_SCALE * mult // r

    def save(self) -> str:
        out = f" --limit {limit_rate_text(self.avg, False)}"
        if self.burst != 5:
            out += f" --limit-burst {self.burst}"
        return out

    def xlate(self, v6: bool) -> list[str] | None:
        burst = f" burst {self.burst} packets" if self.burst else ""
        return [f"limit rate {limit_rate_text(self.avg, True)}{burst}"]

    def listing(self, numeric: bool) -> str:
        return f" limit: avg {limit_rate_text(self.avg, False)} burst {self.burst}"


def load_match(name: str, v6: bool) -> Ext | None:
    """xtables_find_match(): a fresh instance of a match netstack models, else None."""
    n = name.lower()
    if n in ("tcp", "udp", "sctp"):
        return PortMatch(n)
    if n == "icmp" and not v6:
        return IcmpMatch(False)
    if n in ("icmp6", "icmpv6", "ipv6-icmp") and v6:
        return IcmpMatch(True)
    if n in ("conntrack", "state"):
        return ConntrackMatch(n == "state")
    factory = {"multiport": MultiportMatch, "mark": MarkMatch, "comment": CommentMatch,
               "limit": LimitMatch}.get(n)
    return factory() if factory is not None else None
