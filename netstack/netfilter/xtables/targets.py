"""Targets: the standard verdicts and jumps (xt_standard), REJECT (libipt_REJECT.c /
libip6t_REJECT.c), MARK (libxt_MARK.c rev 2), SNAT/DNAT/MASQUERADE (libxt_NAT.c,
libxt_MASQUERADE.c), LOG (libxt_LOG.c), NOTRACK, CT (libxt_CT.c) and TRACE."""
from __future__ import annotations

import ipaddress

from netstack.netfilter.xtables.ext import Ext, ParseCtx, parse_markmask, parse_uint
from netstack.netfilter.xtables.matches import save_string

STANDARD = {"ACCEPT": "accept", "DROP": "drop", "RETURN": "return", "QUEUE": "queue"}


class Standard(Ext):
    """A verdict (ACCEPT/DROP/RETURN/QUEUE) or a jump/goto to a user chain."""

    options: dict[str, bool] = {}

    def __init__(self, name: str, goto: bool = False) -> None:
        self.name = name
        self.goto = goto

    def xlate(self, v6: bool) -> list[str] | None:
        if self.goto:
            return [f"goto {self.name}"]
        if self.name == "QUEUE":
            return None               # no xlate for the old QUEUE verdict
        if self.name in STANDARD:
            return [STANDARD[self.name]]
        return [f"jump {self.name}"]


REJECT4 = [("icmp-net-unreachable", "net-unreach", "net-unreachable"),
           ("icmp-host-unreachable", "host-unreach", "host-unreachable"),
           ("icmp-proto-unreachable", "proto-unreach", "prot-unreachable"),
           ("icmp-port-unreachable", "port-unreach", "port-unreachable"),
           ("icmp-net-prohibited", "net-prohib", "net-prohibited"),
           ("icmp-host-prohibited", "host-prohib", "host-prohibited"),
           ("tcp-reset", "tcp-rst", "tcp reset"),
           ("icmp-admin-prohibited", "admin-prohib", "admin-prohibited")]
REJECT6 = [("icmp6-no-route", "no-route", "no-route"),
           ("icmp6-adm-prohibited", "adm-prohibited", "admin-prohibited"),
           ("icmp6-addr-unreachable", "addr-unreach", "addr-unreachable"),
           ("icmp6-port-unreachable", "port-unreach", "port-unreachable"),
           ("tcp-reset", "tcp-rst", "tcp reset"),
           ("icmp6-policy-fail", "policy-fail", "policy-fail"),
           ("icmp6-reject-route", "reject-route", "reject-route")]


class Reject(Ext):
    name = "REJECT"
    options = {"--reject-with": True}

    def __init__(self, v6: bool) -> None:
        self.v6 = v6
        self.table = REJECT6 if v6 else REJECT4
        self.kind = 3           # the port-unreachable entry: the default

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        for i, (name, alias, _) in enumerate(self.table):
            if arg in (name, alias):
                self.kind = i
                return
        if not self.v6 and arg in ("echo-reply", "echoreply"):
            pc.warnings.append("--reject-with echo-reply no longer supported\n")
        raise pc.err(f"unknown reject type \"{arg}\"")

    def save(self) -> str:
        return f" --reject-with {self.table[self.kind][0]}"

    def xlate(self, v6: bool) -> list[str] | None:
        nft = self.table[self.kind][2]
        if nft == "port-unreachable":
            return ["reject"]
        if nft == "tcp reset":
            return ["reject with tcp reset"]
        return [f"reject with {'icmpv6' if self.v6 else 'icmp'} type {nft}"]

    def listing(self, numeric: bool) -> str:
        return f" reject-with {self.table[self.kind][0]}"


class Mark(Ext):
    """MARK revision 2: every form is stored as (value, mask) meaning
    ``mark = (mark & ~mask) ^ value``."""

    name = "MARK"
    options = {"--set-xmark": True, "--set-mark": True, "--and-mark": True,
               "--or-mark": True, "--xor-mark": True}
    exclusive = (frozenset(options),)

    def __init__(self) -> None:
        self.value: int | None = None
        self.mask = 0xFFFFFFFF

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        if opt in ("--set-xmark", "--set-mark"):
            v, mm = parse_markmask(arg or "", "MARK", opt, pc)
            m = 0xFFFFFFFF if mm is None else mm
        else:
            vv = parse_uint(arg or "", 0xFFFFFFFF)
            if vv is None:
                raise pc.err(f"MARK: bad integer value for option \"{opt}\", or out of "
                             "range.\n")
            v, m = vv, 0xFFFFFFFF
        if opt == "--set-xmark":
            self.value, self.mask = v, m
        elif opt == "--set-mark":
            self.value, self.mask = v, m | v
        elif opt == "--and-mark":
            self.value, self.mask = 0, (~v) & 0xFFFFFFFF
        elif opt == "--or-mark":
            self.value, self.mask = v, v
        else:
            self.value, self.mask = v, 0

    def final_check(self, pc: ParseCtx) -> None:
        if self.value is None:
            raise pc.err("MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is "
                         "required")

    def save(self) -> str:
        return f" --set-xmark {self.value:#x}/{self.mask:#x}"

    def xlate(self, v6: bool) -> list[str] | None:
        v, m = self.value or 0, self.mask
        if m == 0xFFFFFFFF:
            expr = f"{v:#x}"
        elif v == 0:
            expr = f"mark and {(~m) & 0xFFFFFFFF:#x}"
        elif v == m:
            expr = f"mark or {v:#x}"
        elif m == 0:
            expr = f"mark xor {v:#x}"
        else:
            expr = f"mark and {(~m) & 0xFFFFFFFF:#x} xor {v:#x}"
        return [f"meta mark set {expr} "]

    def listing(self, numeric: bool) -> str:
        v, m = self.value or 0, self.mask
        if m == 0xFFFFFFFF:
            return f" MARK set {v:#x}"
        if v == 0:
            return f" MARK and {(~m) & 0xFFFFFFFF:#x}"
        if v == m:
            return f" MARK or {v:#x}"
        if m == 0:
            return f" MARK xor {v:#x}"
        return f" MARK xset {v:#x}/{m:#x}"


def _nat_needs_ports(pc: ParseCtx) -> None:
    if pc.proto not in (6, 17, 132, 33, 136) or pc.proto_inv:
        raise pc.err("Need TCP, UDP, SCTP or DCCP with port specification")


class Nat(Ext):
    """SNAT/DNAT ``--to-source``/``--to-destination ADDR[-ADDR][:PORT[-PORT]]`` and
    MASQUERADE ``--to-ports``; flags --random, --random-fully, --persistent."""

    def __init__(self, name: str, v6: bool) -> None:
        self.name = name
        self.v6 = v6
        if name == "MASQUERADE":
            self.options = {"--to-ports": True, "--random": False, "--random-fully": False}
        else:
            to = "--to-source" if name == "SNAT" else "--to-destination"
            self.options = {to: True, "--random": False, "--random-fully": False,
                            "--persistent": False}
        self.range = ""
        self.ports = ""
        self.flags: list[str] = []

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        if opt in ("--random", "--random-fully", "--persistent"):
            if opt not in self.flags:
                self.flags.append(opt)
            return
        text = arg or ""
        if opt == "--to-ports":
            _nat_needs_ports(pc)
            if ":" in text:
                raise pc.err("Invalid port:port syntax - use dash")
            self.ports = self._ports(text, pc)
            return
        addr, ports = text, ""
        if self.v6:
            if text.startswith("["):
                end = text.find("]")
                addr, rest = text[1:end], text[end + 1:]
                if rest.startswith(":"):
                    ports = rest[1:]
        else:
            if text.count(":") > 1:
                raise pc.err(f"Bad IP address \"{text}\"")
            addr, _, ports = text.partition(":")
        for a in addr.split("-") if addr else []:
            try:
                ipaddress.IPv6Address(a) if self.v6 else ipaddress.IPv4Address(a)
            except ValueError:
                raise pc.err(f"Bad IP address \"{a}\"") from None
        if ports:
            _nat_needs_ports(pc)
            ports = self._ports(ports, pc)
        self.range = addr
        self.ports = ports

    @staticmethod
    def _ports(text: str, pc: ParseCtx) -> str:
        lo, dash, hi = text.partition("-")
        if not lo.isdigit() or int(lo) > 65535 or (dash and (not hi.isdigit() or
                                                            int(hi) > 65535)):
            raise pc.err(f"Port `{text}' not valid")
        return f"{int(lo)}-{int(hi)}" if dash and int(hi) != int(lo) else str(int(lo))

    def final_check(self, pc: ParseCtx) -> None:
        if self.name != "MASQUERADE":
            self.mandatory = ("--to-source" if self.name == "SNAT" else "--to-destination",)
            self.x6_mandatory(pc)

    def _target_text(self, sep_ports: str) -> str:
        if self.v6 and self.ports:
            addrs = "-".join(f"[{a}]" for a in self.range.split("-"))
            return f"{addrs}:{self.ports}"
        return self.range + (f":{self.ports}" if self.ports else "")

    def save(self) -> str:
        out = ""
        if self.name == "MASQUERADE":
            if self.ports:
                out += f" --to-ports {self.ports}"
        else:
            to = "--to-source" if self.name == "SNAT" else "--to-destination"
            out += f" {to} {self._target_text(':')}"
        for f in ("--random", "--random-fully", "--persistent"):
            if f in self.flags:
                out += f" {f}"
        return out

    def xlate(self, v6: bool) -> list[str] | None:
        if self.name == "MASQUERADE":
            tok = "masquerade" + (f" to :{self.ports}" if self.ports else "")
        else:
            tok = f"{self.name.lower()} to {self._target_text(':')}"
        names = [n for f, n in (("--random", "random"), ("--random-fully", "fully-random"),
                                ("--persistent", "persistent")) if f in self.flags]
        if names:
            tok += " " + ",".join(names)
        return [tok]

    def listing(self, numeric: bool) -> str:
        if self.name == "MASQUERADE":
            out = f" masq ports: {self.ports}" if self.ports else ""
        else:
            out = f" to:{self._target_text(':')}"
        for f in ("--random", "--random-fully", "--persistent"):
            if f in self.flags:
                out += " " + f[2:]
        return out


LOG_LEVELS = [("emerg", 0), ("alert", 1), ("crit", 2), ("error", 3), ("warning", 4),
              ("notice", 5), ("info", 6), ("debug", 7)]
_LOG_ALIASES = {"panic": 0, "err": 3, "warn": 4}
_LOG_NFT = {0: "emerg", 1: "alert", 2: "crit", 3: "err", 4: "warn", 5: "notice", 6: "info",
            7: "debug"}
LOG_FLAGS = [("--log-tcp-sequence", 0x01), ("--log-tcp-options", 0x02),
             ("--log-ip-options", 0x04), ("--log-uid", 0x08), ("--log-macdecode", 0x20)]


class Log(Ext):
    name = "LOG"
    options = {"--log-level": True, "--log-prefix": True, **{f: False for f, _ in LOG_FLAGS}}

    def __init__(self) -> None:
        self.level = 4
        self.prefix = ""
        self.flags = 0

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        if opt == "--log-level":
            text = arg or ""
            lvl = parse_uint(text, 7) if text.isdigit() else None
            if lvl is None:
                names = dict(LOG_LEVELS) | _LOG_ALIASES      # case-sensitive, as strcmp
                if text not in names:
                    raise pc.err(f"log level \"{text}\" unknown\n")
                lvl = names[text]
            self.level = lvl
        elif opt == "--log-prefix":
            text = arg or ""
            if not text:
                raise pc.err("Argument must have a minimum length of 1 characters\n")
            # the kernel's prefix holds 29 characters; libxt_LOG truncates silently
            self.prefix = text[:29]
        else:
            self.flags |= dict(LOG_FLAGS)[opt]

    def save(self) -> str:
        out = ""
        if self.prefix:
            out += " --log-prefix" + save_string(self.prefix)
        if self.level != 4:
            out += f" --log-level {self.level}"
        for f, b in LOG_FLAGS:
            if self.flags & b:
                out += f" {f}"
        return out

    def xlate(self, v6: bool) -> list[str] | None:
        tok = "log"
        if self.prefix:
            tok += f' prefix "{self.prefix}"'
        if self.level != 4:
            tok += f" level {_LOG_NFT[self.level]}"
        fl = self.flags
        if fl & 0x2F == 0x2F:
            tok += " flags all"
        else:
            if fl & 0x03:
                parts = [w for b, w in ((0x01, "sequence"), (0x02, "options")) if fl & b]
                tok += " flags tcp " + ",".join(parts)
            if fl & 0x04:
                tok += " flags ip options"
            if fl & 0x08:
                tok += " flags skuid"
            if fl & 0x20:
                tok += " flags ether"
        return [tok]

    def listing(self, numeric: bool) -> str:
        out = " LOG"
        if numeric:
            out += f" flags {self.flags} level {self.level}"
        else:
            out += " level " + _LOG_NFT.get(self.level, str(self.level))
            names = {0x01: "tcp-sequence", 0x02: "tcp-options", 0x04: "ip-options",
                     0x08: "uid", 0x20: "macdecode"}
            for b, n in names.items():
                if self.flags & b:
                    out += f" {n}"
        if self.prefix:
            out += f' prefix "{self.prefix}"'
        return out


class Notrack(Ext):
    name = "NOTRACK"
    options: dict[str, bool] = {}

    def xlate(self, v6: bool) -> list[str] | None:
        return ["notrack"]


class Trace(Ext):
    name = "TRACE"
    options: dict[str, bool] = {}

    def xlate(self, v6: bool) -> list[str] | None:
        return ["nftrace set 1"]


class Ct(Ext):
    """CT target: ``--notrack`` translates; zones and helpers have no iptables-translate
    translation (libxt_CT.c xlate handles only notrack)."""

    name = "CT"
    options = {"--notrack": False, "--zone": True, "--zone-orig": True, "--zone-reply": True,
               "--helper": True}

    def __init__(self) -> None:
        self.notrack = False
        self.zone: int | None = None
        self.zone_dir = ""
        self.helper = ""

    def parse(self, opt: str, arg: str | None, invert: bool, pc: ParseCtx) -> None:
        if opt == "--notrack":
            self.notrack = True
        elif opt.startswith("--zone"):
            z = parse_uint(arg or "", 0xFFFF)
            if z is None:
                raise pc.err(f"CT: bad integer value for option \"{opt}\", or out of range.\n")
            self.zone, self.zone_dir = z, opt[6:]
        else:
            self.helper = arg or ""

    def save(self) -> str:
        out = " --notrack" if self.notrack else ""
        if self.helper:
            out += f" --helper {self.helper}"
        if self.zone is not None:
            out += f" --zone{self.zone_dir} {self.zone}"
        return out

    def xlate(self, v6: bool) -> list[str] | None:
        if self.notrack:                  # libxt_CT.c xlate: notrack wins over the rest
            return ["notrack"]
        return None

    def listing(self, numeric: bool) -> str:
        out = " CT"
        if self.notrack:
            return out + " notrack"
        if self.helper:
            out += f" helper {self.helper}"
        if self.zone is not None:
            out += f" zone{self.zone_dir.replace('-', ' ')} {self.zone}"
        return out


def load_target(name: str, v6: bool) -> Ext | None:
    """A fresh instance of the named target extension, or None (then it is a chain name)."""
    if name in STANDARD:
        return Standard(name)
    if name == "REJECT":
        return Reject(v6)
    if name in ("SNAT", "DNAT", "MASQUERADE"):
        return Nat(name, v6)
    factories = {"MARK": Mark, "LOG": Log, "NOTRACK": Notrack, "TRACE": Trace, "CT": Ct}
    f = factories.get(name)
    return f() if f else None
