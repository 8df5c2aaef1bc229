"""The iptables command line (iptables/xshared.c ``do_parse`` with getopt_long, iptables
1.8.9): commands, the rule's generic fields, ``!`` inversion, ``-m`` matches and the
implicit protocol match that ``-p tcp --dport …`` loads, ``-j`` targets.  Options are taken
strictly left to right as getopt does, so e.g. ``-j MASQUERADE --to-ports 1 -p tcp`` fails
like the real tool (the port check sees no protocol yet)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from netstack.errors import NotSupported
from netstack.netfilter.xtables import protos
from netstack.netfilter.xtables.addr import ANY4, ANY6, Net, parse_addresses
from netstack.netfilter.xtables.errors import (XtablesError, XtablesExit, bare_problem,
                                               param_problem, try_help)
from netstack.netfilter.xtables.ext import Ext, ParseCtx
from netstack.netfilter.xtables.matches import PortMatch, load_match
from netstack.netfilter.xtables.targets import Standard, load_target


class Family(Enum):
    IPV4 = "ip"
    IPV6 = "ip6"


@dataclass
class Rule:
    """One rule as iptables-nft holds it (struct iptables_command_state): the generic
    header fields, the matches in load order and the target (None: no ``-j``)."""

    v6: bool = False
    src: Net = ANY4
    src_inv: bool = False
    dst: Net = ANY4
    dst_inv: bool = False
    iniface: str = ""
    in_inv: bool = False
    outiface: str = ""
    out_inv: bool = False
    proto: int = 0
    proto_inv: bool = False
    frag: bool = False
    frag_inv: bool = False
    matches: list[Ext] = field(default_factory=list)
    target: Ext | None = None
    goto: bool = False
    pcnt: int = 0
    bcnt: int = 0

    def key(self) -> tuple[object, ...]:
        """Identity for ``-D`` by specification (nft_ipv4_is_same + matches + target)."""
        return (self.src, self.src_inv, self.dst, self.dst_inv, self.iniface, self.in_inv,
                self.outiface, self.out_inv, self.proto, self.proto_inv, self.frag,
                self.frag_inv, tuple(m.key() for m in self.matches),
                None if self.target is None else (self.target.key(), self.goto))


@dataclass
class ParsedCommand:
    """A whole invocation: the command letter and its arguments, global flags, the rule
    with the ``-s``/``-d`` address lists (one rule per source × destination pair)."""

    prog: str
    family: Family
    command: str = ""
    table: str = "filter"
    chain: str | None = None
    rulenum: int = 0
    newname: str = ""
    policy: str = ""
    rule: Rule = field(default_factory=Rule)
    srcs: list[Net] = field(default_factory=list)
    dsts: list[Net] = field(default_factory=list)
    numeric: bool = False
    verbose: bool = False
    line_numbers: bool = False
    exact: bool = False
    counters_given: bool = False

    def rules(self) -> list[Rule]:
        """The rule once per (source, destination) pair, sources outermost."""
        import copy
        out = []
        for s in self.srcs:
            for d in self.dsts:
                r = copy.copy(self.rule)
                r.src, r.dst = s, d
                out.append(r)
        return out


_LONG = {"--append": "A", "--check": "C", "--delete": "D", "--insert": "I", "--replace": "R",
         "--list": "L", "--list-rules": "S", "--flush": "F", "--zero": "Z",
         "--new-chain": "N", "--new": "N", "--delete-chain": "X", "--rename-chain": "E",
         "--policy": "P", "--protocol": "p", "--source": "s", "--src": "s",
         "--destination": "d", "--dst": "d", "--in-interface": "i", "--out-interface": "o",
         "--jump": "j", "--goto": "g", "--fragment": "f", "--fragments": "f",
         "--verbose": "v", "--numeric": "n", "--table": "t", "--match": "m",
         "--line-numbers": "0", "--exact": "x", "--set-counters": "c", "--wait": "w",
         "--wait-interval": "W", "--ipv4": "4", "--ipv6": "6", "--help": "h",
         "--version": "V", "--modprobe": "M"}
_REQ_ARG = set("ACDRINEPpsdiojgtmcM")
_OPT_ARG = set("LSFZXwW")
_COMMANDS = set("ACDRILSFZNXEP")
_INVERTIBLE = set("sdpiof")
_TARGET_ONLY_NAMES = {"CLASSIFY", "CONNMARK", "CONNSECMARK", "DSCP", "ECN", "HL", "HMARK",
                      "IDLETIMER", "LED", "NETMAP", "NFLOG", "NFQUEUE", "REDIRECT", "SECMARK",
                      "SET", "SYNPROXY", "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS", "TPROXY", "TTL",
                      "AUDIT", "CHECKSUM", "CLUSTERIP", "RATEEST", "MASQUERADE6"}
_KNOWN_MATCHES = {"addrtype", "ah", "bpf", "cgroup", "cluster", "connbytes", "connlabel",
                  "connlimit", "connmark", "cpu", "dccp", "devgroup", "dscp", "dst", "ecn",
                  "esp", "eui64", "frag", "hashlimit", "hbh", "helper", "hl", "ipcomp",
                  "iprange", "ipv6header", "ipvs", "length", "mac", "mh", "nfacct", "osf",
                  "owner", "physdev", "pkttype", "policy", "quota", "rateest", "realm",
                  "recent", "rpfilter", "rt", "set", "socket", "statistic", "string",
                  "tcpmss", "time", "tos", "ttl", "u32", "udplite", "segment", "srh"}


def _is_chain_word(arg: str) -> bool:
    return not arg.startswith("-") and arg != "!"


def parse_chain_name(prog: str, name: str) -> None:
    """xshared.c parse_chain(): length, leading -/!, clash with a target, whitespace."""
    if len(name) >= 29:
        raise param_problem(prog, f"chain name `{name}' too long (must be under 29 chars)")
    if name[:1] in ("-", "!"):
        raise param_problem(prog, f"chain name not allowed to start with `{name[0]}'")
    if load_target(name, False) is not None or name in _TARGET_ONLY_NAMES:
        raise param_problem(prog, "chain name may not clash with target name")
    if any(c.isspace() for c in name):
        raise param_problem(prog, f"Invalid chain name `{name}'")


def _rulenum(prog: str, text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise param_problem(prog, f"Invalid rule number `{text}'")
    return int(text)


def parse_command(prog: str, argv: list[str]) -> ParsedCommand:
    """Parse ``argv`` (without the program name) as ``prog`` (iptables, ip6tables,
    iptables-translate …) does; raises XtablesError with the tool's message."""
    v6 = prog.startswith("ip6")
    pc = ParsedCommand(prog, Family.IPV6 if v6 else Family.IPV4)
    pc.rule.v6 = v6
    any_net = ANY6 if v6 else ANY4
    pc.rule.src = pc.rule.dst = any_net
    ctx = ParseCtx(prog, v6)
    invert = False
    src_text = dst_text = None
    target_seen = False
    seen_opts: set[str] = set()
    i = 0

    def need_arg(tok: str) -> str:
        nonlocal i
        if i + 1 >= len(argv):
            raise param_problem(prog, f"option \"{tok}\" requires an argument")
        i += 1
        return argv[i]

    def set_command(c: str) -> None:
        if pc.command:
            raise param_problem(prog, f"Cannot use -{c} with -{pc.command}")
        pc.command = c

    def generic(c: str, tok: str, attached: str | None, whole: str = "") -> None:
        nonlocal invert, src_text, dst_text, target_seen, i
        arg = attached
        if c in _REQ_ARG and arg is None:
            arg = need_arg(tok)
        elif c in "psdj" and arg is not None:
            # xshared.c reads these from argv[optind - 1], which is the whole word when
            # the value was attached ("-ptcp", "--source=1.2.3.4"): kept for parity
            arg = whole
        if c in _INVERTIBLE or c in "vV":
            pass
        elif invert:
            # add_command() / the -t and -m cases / set_option(), each with its own words
            if c in _COMMANDS:
                raise param_problem(prog, "unexpected '!' flag")
            if c in "tm":
                raise param_problem(prog, "unexpected ! flag before --"
                                    f"{'table' if c == 't' else 'match'}")
            raise param_problem(prog, f"cannot have ! before -{c}")
        if c in _COMMANDS:
            set_command(c)
            if c in "ACDRINEP":
                pc.chain = arg
            if c == "N":
                parse_chain_name(prog, arg or "")
            if c in "DI" and i + 1 < len(argv) and _is_chain_word(argv[i + 1]):
                i += 1
                pc.rulenum = _rulenum(prog, argv[i])
            if c == "R":
                if i + 1 < len(argv) and _is_chain_word(argv[i + 1]):
                    i += 1
                    pc.rulenum = _rulenum(prog, argv[i])
                else:
                    raise param_problem(prog, "-R requires a rule number")
            if c == "E":
                if i + 1 < len(argv) and _is_chain_word(argv[i + 1]):
                    i += 1
                    pc.newname = argv[i]
                    parse_chain_name(prog, pc.newname)
                else:
                    raise param_problem(prog, "-E requires old-chain-name and "
                                              "new-chain-name")
            if c == "P":
                if i + 1 < len(argv) and _is_chain_word(argv[i + 1]):
                    i += 1
                    pc.policy = argv[i]
                else:
                    raise param_problem(prog, "-P requires a chain and a policy")
            if c in "LSFZX":
                if arg is None and i + 1 < len(argv) and _is_chain_word(argv[i + 1]):
                    i += 1
                    arg = argv[i]
                pc.chain = arg
                if c in "LSZ" and i + 1 < len(argv) and _is_chain_word(argv[i + 1]):
                    i += 1
                    pc.rulenum = _rulenum(prog, argv[i])
            return
        if c in "sdpiofjg" and c in seen_opts:
            raise param_problem(prog, f"multiple -{c} flags not allowed")
        seen_opts.add(c)
        r = pc.rule
        if c == "p":
            num = protos.parse_protocol(arg or "")
            if num is None:
                raise param_problem(prog, f"unknown protocol \"{(arg or '').lower()}\" "
                                          "specified")
            if num == 0 and invert:
                raise param_problem(prog, "rule would never match protocol")
            r.proto, r.proto_inv = num, invert
            ctx.proto, ctx.proto_inv = num, invert
        elif c == "s":
            src_text, r.src_inv = arg, invert
        elif c == "d":
            dst_text, r.dst_inv = arg, invert
        elif c in "io":
            name = arg or ""
            if name == "":
                raise param_problem(prog, "Empty interface is likely to be undesired")
            if len(name) >= 16:
                raise param_problem(prog, f"interface name `{name}' must be shorter than "
                                          "IFNAMSIZ (15)")
            if c == "i":
                r.iniface, r.in_inv = name, invert
            else:
                r.outiface, r.out_inv = name, invert
        elif c == "f":
            if v6:
                raise param_problem(prog, "`-f' is not supported in IPv6, use -m frag "
                                          "instead")
            r.frag, r.frag_inv = True, invert
        elif c in "jg":
            if target_seen:
                raise param_problem(prog, "multiple -j flags not allowed")
            target_seen = True
            name = arg or ""
            if c == "g":
                r.target, r.goto = Standard(name, goto=True), True
            else:
                t = load_target(name, v6)
                if t is None:
                    if name in _TARGET_ONLY_NAMES:
                        raise NotSupported(f"{prog} target {name}")
                    t = Standard(name)
                r.target = t
        elif c == "m":
            m = load_match(arg or "", v6)
            if m is None:
                if (arg or "").lower() in _KNOWN_MATCHES:
                    raise NotSupported(f"{prog} match {arg}")
                raise param_problem(prog, f"Couldn't load match `{arg}':No such file or "
                                          "directory\n")
            r.matches.append(m)
        elif c == "t":
            if invert:
                raise param_problem(prog, "unexpected ! flag before --table")
            pc.table = arg or ""
        elif c == "v":
            pc.verbose = True
        elif c == "n":
            pc.numeric = True
            seen_opts.add("n")
        elif c == "x":
            pc.exact = True
            seen_opts.add("x")
        elif c == "0":
            pc.line_numbers = True
            seen_opts.add("0")
        elif c == "c":
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                raise param_problem(prog, "-c requires packet and byte counter")
            b = need_arg(tok)
            if not (arg or "").isdigit():
                raise param_problem(prog, f"-c packet counter not numeric")
            if not b.isdigit():
                raise param_problem(prog, f"-c byte counter not numeric")
            r.pcnt, r.bcnt = int(arg or 0), int(b)
            pc.counters_given = True
            seen_opts.add("c")
        elif c == "w":
            if arg is None and i + 1 < len(argv) and argv[i + 1].isdigit():
                i += 1
        elif c == "W":
            if arg is None:
                if i + 1 < len(argv) and argv[i + 1].isdigit():
                    i += 1
                else:
                    raise param_problem(prog, "wait interval value required")
        elif c in "46":
            if (c == "4") == v6:
                # exit_tryhelp(2) with no message: the other family's option
                raise XtablesError(try_help(prog), 2)
        elif c == "M":
            pass
        elif c == "V":
            raise XtablesExit("Not 1.8.9 (nf_tables) ;-)\n" if invert else
                              f"{prog} v1.8.9 (nf_tables)\n")
        elif c == "h":
            raise NotSupported(f"{prog} -h (help text)")
        invert = False

    while i < len(argv):
        tok = argv[i]
        if tok == "!":
            if invert:
                raise param_problem(prog, "multiple consecutive ! not allowed")
            invert = True
            i += 1
            continue
        if tok.startswith("--") and len(tok) > 2:
            name, eq, val = tok.partition("=")
            found = _resolve_long(pc, name, tok)
            if isinstance(found, str):
                generic(found, tok, val if eq else None, tok)
                i += 1
                continue
            owner, opt = found
            i = _ext_option(pc, ctx, owner, opt, val if eq else None, eq == "=", invert,
                            argv, i, tok)
            invert = False
            continue
        if tok.startswith("-") and len(tok) > 1:
            j = 1
            while j < len(tok):
                c = tok[j]
                if c not in _REQ_ARG | _OPT_ARG | set("fvnx46hV"):
                    raise param_problem(prog, f"unknown option \"-{c}\"" if len(tok) == 2
                                        else f"unknown option \"{tok}\"")
                if c in _REQ_ARG | _OPT_ARG:
                    rest = tok[j + 1:]
                    generic(c, f"-{c}", rest if rest else None, tok)
                    break
                generic(c, f"-{c}", None)
                j += 1
            i += 1
            continue
        raise bare_problem(prog, f"Bad argument `{tok}'")
    if invert:
        raise param_problem(prog, "nothing appropriate following !")
    if not pc.command:
        raise param_problem(prog, "no command specified")
    for ext in pc.rule.matches + ([pc.rule.target] if pc.rule.target else []):
        if ext.x6:
            ext.x6_excl_check(ctx)
        ext.final_check(ctx)
    if pc.table == "nat" and ((pc.command == "P" and pc.policy == "DROP") or (
            r_target_name(pc.rule) == "DROP")):
        raise param_problem(prog, "\nThe \"nat\" table is not intended for filtering, the "
                                  "use of DROP is therefore inhibited.\n\n")
    for text, which in ((src_text, "s"), (dst_text, "d")):
        if text is None:
            nets: list[Net] = [any_net]
        else:
            res = parse_addresses(text, v6)
            if isinstance(res, str):
                raise param_problem(prog, res)
            nets = res
        if len(nets) > 1 and (pc.rule.src_inv if which == "s" else pc.rule.dst_inv):
            raise param_problem(prog, "! not allowed with multiple source or destination IP "
                                      "addresses")
        if which == "s":
            pc.srcs = nets
        else:
            pc.dsts = nets
    if pc.command in "ADCIR":
        if pc.chain in ("PREROUTING", "INPUT") and "o" in seen_opts:
            raise param_problem(prog, f"Can't use -o with {pc.chain}\n")
        if pc.chain in ("POSTROUTING", "OUTPUT") and "i" in seen_opts:
            raise param_problem(prog, f"Can't use -i with {pc.chain}\n")
    _generic_opt_check(prog, pc, seen_opts)
    return pc


def r_target_name(rule: Rule) -> str:
    return "" if rule.target is None or rule.goto else rule.target.name


# xshared.c commands_v_options: which options each command refuses ('x'), columns in the
# order -n -s -d -p -j -v -x -i -o --line-numbers -c -f
_OPT_ORDER = ["n", "s", "d", "p", "j", "v", "x", "i", "o", "0", "c", "f"]
_ILLEGAL = {"A": "n x 0", "I": "n x 0", "R": "n x 0", "D": "n x 0 c", "C": "n x 0 c",
            "Dnum": "n s d p j x i o 0 c f", "L": "s d p j i o c f",
            "F": "n s d p j x i o 0 c f", "Z": "n s d p j x i o 0 c f",
            "N": "n s d p j x i o 0 c f", "X": "n s d p j x i o 0 c f",
            "P": "n s d p j x i o 0 f", "E": "n s d p j x i o 0 c f",
            "S": "n s d p j x i o 0 c f"}


def _generic_opt_check(prog: str, pc: ParsedCommand, seen: set[str]) -> None:
    """generic_opt_check(): the first option (in the matrix's order) the command refuses."""
    cmd = "Dnum" if pc.command == "D" and pc.rulenum else pc.command
    bad = set(_ILLEGAL[cmd].split())
    given = set(seen) | ({"j"} if "g" in seen else set())
    for o in _OPT_ORDER:
        if o in given and o in bad:
            name = f"-{o}"      # opt2char() prints --line-numbers as `-0'
            raise param_problem(prog, f"Illegal option `{name}' with this command")


def _resolve_long(pc: ParsedCommand, name: str, tok: str) -> str | tuple[Ext, str]:
    """getopt_long over iptables' options merged with every loaded extension's: an exact
    name, else a unique abbreviation; when nothing fits and ``-p`` names a protocol whose
    match is not loaded yet, that match is loaded and the lookup retried (command_default).
    Returns a generic option letter or (extension, option)."""
    r = pc.rule
    for attempt in range(2):
        owners: list[Ext] = list(r.matches) + ([r.target] if r.target is not None else [])
        # the most recently loaded extension owns a repeated option name (a second
        # ``-m comment --comment`` sets the second match)
        owners.reverse()
        if name in _LONG:
            return _LONG[name]
        for e in owners:
            if name in e.options:
                return e, name
        hits: dict[object, str | tuple[Ext, str]] = {}
        for long, letter in _LONG.items():
            if long.startswith(name):
                hits.setdefault(("g", letter), letter)
        for e in owners:
            for opt in e.options:
                if opt.startswith(name):
                    hits.setdefault((id(e), e.canonical.get(opt, opt)), (e, opt))
        if len(hits) == 1:
            return next(iter(hits.values()))
        if attempt == 0 and r.proto and not r.proto_inv:
            mname = _match_for_proto(protos.proto_name(r.proto))
            if not any(m.name == mname for m in r.matches):
                m = load_match(mname, pc.family is Family.IPV6)
                if m is not None:
                    r.matches.append(m)
                    continue
        break
    raise param_problem(pc.prog, f"unknown option \"{tok}\"")


def _ext_option(pc: ParsedCommand, ctx: ParseCtx, owner: Ext, name: str, val: str | None,
                has_eq: bool, invert: bool, argv: list[str], i: int, tok: str) -> int:
    """Hand one option (and its argument) to the extension that owns it."""
    prog = pc.prog
    if invert and name not in owner.invertible:
        raise param_problem(prog, f"{owner.name}: option \"{name}\" cannot be inverted.\n"
                            if owner.x6 else f"{owner.name}: option \"{name}\" cannot be "
                            "inverted.")
    takes = owner.options[name]
    arg: str | None = None
    if takes:
        if has_eq:
            arg = val
        elif i + 1 < len(argv):
            i += 1
            arg = argv[i]
        else:
            raise param_problem(prog, f"option \"{tok}\" requires an argument")
    owner.x6_check(name, ctx)
    if name == "--tcp-flags" and isinstance(owner, PortMatch):
        if i + 1 >= len(argv):
            raise param_problem(prog, "--tcp-flags requires two args.")
        i += 1
        owner.parse_flags(arg or "", argv[i], invert, ctx)
    else:
        owner.parse(name, arg, invert, ctx)
    return i + 1


def _match_for_proto(pname: str) -> str:
    return {"ipv6-icmp": "icmp6"}.get(pname, pname)
