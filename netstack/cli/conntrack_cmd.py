"""``conntrack`` (conntrack-tools 1.4.7 with libnetfilter_conntrack 1.0.9): -L, -D, -F, -E, -C,
-G, -I, -U, and ``-L/-E/-F/-C/-G/-D/-I expect``.

Output reproduces ``__snprintf_conntrack_default`` (libnetfilter_conntrack
src/conntrack/snprintf_default.c) as measured against Debian's conntrack 1.4.7 on Linux
6.18: ``PROTO<pad to 8> NUM TIMEOUT [TCPSTATE] src= dst= sport= dport= [UNREPLIED] src= dst=
sport= dport= [ASSURED] [OFFLOAD] mark=M [zone=Z] use=1``, one line per entry on stdout; the
summary ("N flow entries have been shown.") goes to stderr.  ``-L``/``-D`` see every
family unless ``-f`` names one (measured: an IPv6 entry is listed and deleted by a plain
``-L``/``-D``).  ``-D`` with no match exits 1.  Events (``-E``) are ``[NEW]``/``[UPDATE]``/
``[DESTROY]`` right-aligned in 9 columns, without ``mark=0``/``use=``; in a scenario ``-E``
keeps printing every later event of the namespace to the scenario's stdout (the shell's
``conntrack -E &``) and returns at once.  An entry with a helper shows ``helper=NAME``
before ``use=``.

-G/-I/-U (measured against 1.4.7 on Linux 6.18, ctnetlink_{get,new}_conntrack):

* ``-G`` and ``-I`` need ``-p`` ("You need to supply the `--protonum' option …"), ``-I``
  then ``-t`` and, for TCP, ``--state``; both need ``-s`` and ``-d`` ("you have to specify
  `--src' and `--dst'") and the ports of a port protocol ("… `--sport' and `--dport'");
  ``-f`` is refused ("Illegal option `--family' with this command"): the family comes from
  the addresses.  Usage errors exit 2.
* ``-G`` finds the entry by tuple in either direction, but the tool only prints it when
  the given tuple is its original one ("0 flow entries have been shown.", exit 1);
  missing: "Operation failed: such conntrack doesn't exist" (exit 1).  Shown with
  ``use=2`` (the lookup's reference).
* ``-I`` creates a confirmed entry (NEW event) with the timeout, mark (a ``/mask`` is
  ignored), zone, ``-u`` status bits and TCP state given; an existing tuple gives
  "Operation failed: Such conntrack exists, try -U to update" (exit 1); prints nothing on
  stdout and "1 flow entries have been created." on stderr.
* ``-U`` with the complete original tuple updates that entry: mark (``(mark & ~mask) ^
  value``, ``ctnetlink_change_mark``), timeout (``-t 0`` kills it), ``-u`` bits (only
  SEEN_REPLY/ASSURED can be set); the entry is printed (``use=2``) with "1 flow entries
  have been updated."; nothing changed or not found: "0 flow entries have been
  updated." (exit 1).  An UPDATE event is delivered.
* Expectations: ``-L expect`` (``TIMEOUT proto=P src= dst= sport= dport= mask-src=
  mask-dst= sport= dport= master-src= master-dst= sport= dport= class=C helper=H``; the
  tuple's and mask's ports only for a protocol with ports), ``-E expect`` (``[NEW]``/
  ``[DESTROY]`` in 9 columns), ``-F expect``, ``-C expect``, and ``-G/-D/-I expect``
  (:func:`_do_expect_gdi`: option checks in conntrack.c's table order, lookup under the
  expectation's mask, ``-D`` printing "0 expectations have been shown." with exit 1,
  ``-I``'s protocol taken from the high byte of the last ``--tuple-port-*`` for TCP as
  1.4.7 does).  ``-U expect``: "Can't do --update on expectations" (exit 2).

Not modelled (NotSupported): ``-U`` with a partial tuple that would change something
(1.4.7 then updates each dumped entry and the kernel answers EOPNOTSUPP for some of them,
in an order netstack cannot reproduce), ``-I`` with a reply tuple, ``-I`` with both
``-m`` and ``-u`` (1.4.7 stores the status bits into the mark), ``-G/-D/-I expect`` with
``-p sctp/dccp/udplite/gre`` and ``-I expect`` with another protocol than tcp/udp (or a
TCP tuple port whose high byte names one of those four).
"""
from __future__ import annotations

import ipaddress
import os
import re
from typing import TYPE_CHECKING, Any, Callable

from netstack.cli.errors import ToolError
from netstack.errors import NotSupported
from netstack.netfilter import conntrack as nfct
from netstack.netfilter import conntrack_proto_sctp as sctpct
from netstack.netfilter import conntrack_proto_tcp as tcpct
from netstack.netfilter.conntrack_tuple import (IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP,
                                                IPPROTO_TCP, PORT_PROTOS)
from netstack.netfilter.core import NFPROTO_IPV4, NFPROTO_IPV6

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.netfilter.conntrack_tuple import CtTuple

PROG = "conntrack v1.4.7 (conntrack-tools)"
PROTO_NAMES = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre",
               58: "icmpv6", 132: "sctp", 136: "udplite"}
_PROTO_NUMS = {v: k for k, v in PROTO_NAMES.items()}
STATUS_NAMES = {"EXPECTED": nfct.IPS_EXPECTED, "SEEN_REPLY": nfct.IPS_SEEN_REPLY,
                "ASSURED": nfct.IPS_ASSURED, "CONFIRMED": nfct.IPS_CONFIRMED,
                "SRC_NAT": nfct.IPS_SRC_NAT, "DST_NAT": nfct.IPS_DST_NAT,
                "SEQ_ADJUST": nfct.IPS_SEQ_ADJUST, "SRC_NAT_DONE": nfct.IPS_SRC_NAT_DONE,
                "DST_NAT_DONE": nfct.IPS_DST_NAT_DONE, "DYING": nfct.IPS_DYING,
                "FIXED_TIMEOUT": nfct.IPS_FIXED_TIMEOUT, "OFFLOAD": nfct.IPS_OFFLOAD}


def _addr(a: bytes) -> str:
    return str(ipaddress.ip_address(a))


def _tuple_text(t: Any) -> str:
    s = f"src={_addr(t.src)} dst={_addr(t.dst)} "
    if t.protonum in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        s += f"type={t.icmp_type} code={t.icmp_code} id={t.sport} "
    elif t.protonum in PORT_PROTOS:
        s += f"sport={t.sport} dport={t.dport} "
    return s


def format_ct(ct: nfct.NfConn, now: int, event: str = "", extended: bool = False,
              show_id: bool = False, use: int = 1) -> str:
    """One line as ``conntrack -L`` (``event`` empty) or ``conntrack -E`` prints it."""
    parts: list[str] = []
    if event:
        parts.append(f"{'[' + event + ']':>9} ")
    if extended:
        l3 = "ipv4" if ct.l3num == NFPROTO_IPV4 else "ipv6"
        parts.append(f"{l3:<8} {ct.l3num} ")
    p = ct.protonum
    parts.append(f"{PROTO_NAMES.get(p, 'unknown'):<8} {p} ")
    gc_destroy = event == "DESTROY" and not ct.user_deleted
    if not gc_destroy:
        parts.append(f"{ct.expires_in(now)} ")
    if p == IPPROTO_TCP and isinstance(ct.proto, tcpct.TcpCt):
        parts.append(tcpct.STATE_NAMES[ct.proto.state] + " ")
    elif p == IPPROTO_SCTP and isinstance(ct.proto, sctpct.SctpCt):
        parts.append(sctpct.STATE_NAMES[ct.proto.state] + " ")
    o, r = ct.tuplehash
    parts.append(_tuple_text(o))
    if ct.acct is not None:
        parts.append(f"packets={ct.acct[0][0]} bytes={ct.acct[0][1]} ")
    if not ct.status & nfct.IPS_SEEN_REPLY:
        parts.append("[UNREPLIED] ")
    parts.append(_tuple_text(r))
    if ct.acct is not None:
        parts.append(f"packets={ct.acct[1][0]} bytes={ct.acct[1][1]} ")
    if ct.status & nfct.IPS_ASSURED:
        parts.append("[ASSURED] ")
    if ct.status & nfct.IPS_OFFLOAD:
        parts.append("[OFFLOAD] ")
    if not event or ct.mark:
        parts.append(f"mark={ct.mark} ")
    if ct.zone.id:
        parts.append(f"zone={ct.zone.id} ")
    if ct.help is not None and ct.help.helper is not None:
        parts.append(f"helper={ct.help.helper.name} ")
    if not event:
        parts.append(f"use={use} ")
    if show_id:
        parts.append(f"id={ct.id} ")
    if event == "DESTROY" and ct.user_deleted:
        parts.append("[USERSPACE] portid=0 ")
    return "".join(parts).rstrip(" ")


def _atoi(v: str) -> int:
    """C ``atoi``/``atol`` as conntrack-tools reads ports, ICMP fields and timeouts:
    leading blanks, an optional sign, the digits that follow; anything else is 0."""
    m = re.match(r"\s*([+-]?\d+)", v)
    return int(m.group(1)) if m else 0


def _strtoul(v: str) -> int:
    """C ``strtoul(v, &end, 0)`` (marks, zones): the longest decimal/hex/octal prefix, 0
    when there is none; a negative value wraps as an unsigned long."""
    m = re.match(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)", v)
    if not m:
        return 0
    n = int(m.group(2), 0) if not re.fullmatch(r"0[0-7]+", m.group(2)) else int(m.group(2), 8)
    return (-n if m.group(1) == "-" else n) & 0xFFFFFFFFFFFFFFFF


def _usage(opt: str) -> ToolError:
    return ToolError(f"{PROG}: unknown option `{opt}'\nTry `conntrack -h' or 'conntrack "
                     "--help' for more information.\n", 2)


def _param_err(msg: str) -> ToolError:
    return ToolError(f"{PROG}: {msg}\nTry `conntrack -h' or 'conntrack --help' for more "
                     "information.\n", 2)


_FILTER_OPTS = {
    "-s": "osrc", "--src": "osrc", "--orig-src": "osrc",
    "-d": "odst", "--dst": "odst", "--orig-dst": "odst",
    "-r": "rsrc", "--reply-src": "rsrc", "-q": "rdst", "--reply-dst": "rdst",
    "--sport": "osport", "--orig-port-src": "osport", "--dport": "odport",
    "--orig-port-dst": "odport", "--reply-port-src": "rsport", "--reply-port-dst": "rdport",
    "-m": "mark", "--mark": "mark", "-w": "zone", "--zone": "zone",
    "-u": "status", "--status": "status", "--state": "state",
    "-p": "proto", "--proto": "proto", "-f": "family", "--family": "family",
    "-o": "output", "--output": "output",
    "--icmp-type": "itype", "--icmp-code": "icode", "--icmp-id": "iid",
    "-t": "timeout", "--timeout": "timeout",
    # expectation tuple and mask (-I expect)
    "--tuple-src": "tsrc", "--tuple-dst": "tdst", "--mask-src": "msrc", "--mask-dst": "mdst",
    "--tuple-port-src": "tsport", "--tuple-port-dst": "tdport",
    "--mask-port-src": "msport", "--mask-port-dst": "mdport",
}
#: Expectation-only options: illegal with a conntrack-table command (their index in
#: conntrack.c's option table comes after everything -L/-D/-G/-I/-U accept).
_EXP_ONLY = {"tsrc": "tuple-src", "tdst": "tuple-dst", "msrc": "mask-src", "mdst": "mask-dst",
             "msport": "mask-port-src", "mdport": "mask-port-dst",
             "tsport": "tuple-port-src", "tdport": "tuple-port-dst"}
#: Options a protocol (``-p``) registers; before ``-p`` they are unknown.
_PROTO_OPTS = frozenset(("--sport", "--orig-port-src", "--dport", "--orig-port-dst",
                         "--reply-port-src", "--reply-port-dst", "--state", "--icmp-type",
                         "--icmp-code", "--icmp-id", "--tuple-port-src", "--tuple-port-dst",
                         "--mask-port-src", "--mask-port-dst"))
_COMMANDS = {"-L": "L", "--dump": "L", "-D": "D", "--delete": "D", "-F": "F", "--flush": "F",
             "-E": "E", "--event": "E", "-C": "C", "--count": "C", "-G": "G", "--get": "G",
             "-I": "I", "--create": "I", "-U": "U", "--update": "U"}
#: Commands that take a table name (``conntrack``/``expect``) as their next word.
_TABLE_CMDS = ("-L", "--dump", "-E", "--event", "-F", "--flush", "-D", "--delete", "-C",
               "--count", "-G", "--get", "-I", "--create", "-U", "--update")


def _parse(args: list[str]) -> tuple[str, dict[str, str]]:
    cmd = ""
    opts: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        val = None
        if a.startswith("--") and "=" in a:
            a, val = a.split("=", 1)
        if a in _COMMANDS:
            if a in _TABLE_CMDS and i + 1 < len(args) and args[i + 1] in (
                    "conntrack", "expect"):
                if args[i + 1] == "expect":
                    if a in ("-U", "--update"):
                        # cmd2type['U'] has no expectation command (do_parse)
                        raise _param_err("Can't do --update on expectations")
                    opts["table"] = "expect"
                i += 1
            if cmd:
                raise _param_err("Invalid commands combination")
            cmd = _COMMANDS[a]
            i += 1
            continue
        if a in _FILTER_OPTS:
            if a in _PROTO_OPTS and "proto" not in opts:
                raise _usage(a)  # protocol options exist only after -p
            if val is None:
                if i + 1 >= len(args):
                    raise _param_err(f"option `{a}' requires an argument")
                val = args[i + 1]
                i += 1
            opts[_FILTER_OPTS[a]] = val
            if _FILTER_OPTS[a] in ("tsport", "tdport"):
                opts["tport_last"] = val   # see _exp_tuple: 1.4.7's TCP protocol byte
            i += 1
            continue
        if a in ("-n", "--src-nat", "-g", "--dst-nat", "-j", "--any-nat"):
            raise NotSupported(f"conntrack {a}")
        raise _usage(a)
    if not cmd:
        raise NotSupported("conntrack without a command")
    return cmd, opts


def _addr_arg(v: str, fam: int) -> bytes:
    try:
        a = ipaddress.ip_address(v)
    except ValueError:
        raise _param_err(f"Invalid IP address `{v}'") from None
    return a.packed


def _matcher(opts: dict[str, str]) -> tuple[Callable[[nfct.NfConn], bool], int | None]:
    fam_s = opts.get("family", "")
    if fam_s and fam_s not in ("ipv4", "ipv6"):
        raise _param_err(f"`{fam_s}' unsupported protocol")
    fam = NFPROTO_IPV6 if fam_s == "ipv6" else NFPROTO_IPV4
    # without -f every family is listed (1.4.7 on Linux 6.18 dumps AF_UNSPEC)
    checks: list[Callable[[nfct.NfConn], bool]] = \
        [lambda c: c.l3num == fam] if fam_s else []
    if "proto" in opts:
        pv = opts["proto"]
        pn = _PROTO_NUMS.get(pv)
        if pn is None:
            if not pv.isdigit():
                raise _param_err(f"`{pv}' unsupported protocol")
            pn = int(pv)
        checks.append(lambda c, pn=pn: c.protonum == pn)
    for key, d, side in (("osrc", 0, "src"), ("odst", 0, "dst"), ("rsrc", 1, "src"),
                         ("rdst", 1, "dst")):
        if key in opts:
            a = _addr_arg(opts[key], fam)
            checks.append(lambda c, a=a, d=d, side=side: getattr(c.tuplehash[d], side) == a)
    for key, d, side in (("osport", 0, "sport"), ("odport", 0, "dport"),
                         ("rsport", 1, "sport"), ("rdport", 1, "dport")):
        if key in opts:
            pv = _atoi(opts[key])
            checks.append(lambda c, pv=pv, d=d, side=side: getattr(c.tuplehash[d], side) == pv)
    if "itype" in opts:
        tv = _atoi(opts["itype"])
        checks.append(lambda c, tv=tv: c.tuplehash[0].icmp_type == tv)
    if "icode" in opts:
        cv = _atoi(opts["icode"])
        checks.append(lambda c, cv=cv: c.tuplehash[0].icmp_code == cv)
    if "iid" in opts:
        iv = _atoi(opts["iid"])
        checks.append(lambda c, iv=iv: c.tuplehash[0].sport == iv)
    if "mark" in opts:
        mv, _, mm = opts["mark"].partition("/")
        m = _strtoul(mv) & 0xFFFFFFFF
        mask = _strtoul(mm) & 0xFFFFFFFF if mm else 0xFFFFFFFF
        checks.append(lambda c, m=m, mask=mask: (c.mark & mask) == m)
    if "zone" in opts:
        z = _strtoul(opts["zone"]) & 0xFFFF
        checks.append(lambda c, z=z: c.zone.id == z)
    if "status" in opts:
        bits = 0
        for name in opts["status"].split(","):
            if name == "UNSET":
                continue
            if name not in STATUS_NAMES:
                raise _param_err(f"Bad parameter `{name}'")
            bits |= STATUS_NAMES[name]
        checks.append(lambda c, bits=bits: (c.status & bits) == bits)
    if "state" in opts:
        st = opts["state"]
        if st not in tcpct.STATE_NAMES:
            raise _param_err(f"Bad parameter `{st}'")
        idx = tcpct.STATE_NAMES.index(st)
        checks.append(lambda c, idx=idx: isinstance(c.proto, tcpct.TcpCt)
                      and c.proto.state == idx)
    return (lambda c: all(f(c) for f in checks)), (fam if fam_s else None)


def do_conntrack(ctx: "Ctx", args: list[str]) -> int:
    """Run one ``conntrack`` invocation in ``ctx.net``; returns the exit status."""
    cmd, opts = _parse(args)
    net = ctx.net
    now = net.world.clock.now
    if opts.pop("table", "") == "expect":
        return _do_expect(ctx, cmd, opts)
    for key, name in _EXP_ONLY.items():
        if key in opts:
            raise _illegal(f"--{name}")
    if cmd in ("G", "I", "U"):
        return _do_get_create_update(ctx, cmd, opts)
    out_flags = set(opts.get("output", "").split(",")) - {""}
    for f in out_flags:
        if f not in ("extended", "id"):
            raise NotSupported(f"conntrack -o {f}")
    extended = "extended" in out_flags
    show_id = "id" in out_flags
    if cmd == "C":
        ctx.stdout.write(f"{len(nfct.nf_ct_iterate(net))}\n")
        return 0
    match, explicit_fam = _matcher(opts)
    if cmd == "L":
        conns = nfct.nf_ct_iterate(net)
        refs = _child_refs(conns)
        lines = [format_ct(c, now, extended=extended, show_id=show_id, use=1 + refs.get(c, 0))
                 for c in conns if match(c)]
        for ln in lines:
            ctx.stdout.write(ln + "\n")
        ctx.stderr.write(f"{PROG}: {len(lines)} flow entries have been shown.\n")
        return 0
    if cmd == "D":
        victims = [c for c in nfct.nf_ct_iterate(net) if match(c)]
        cn = nfct.ct_net(net)
        for c in victims:
            ctx.stdout.write(format_ct(c, now, extended=extended, show_id=show_id) + "\n")
            c.user_deleted = True
            cn.delete(c)
        ctx.stderr.write(f"{PROG}: {len(victims)} flow entries have been deleted.\n")
        return 0 if victims else 1
    if cmd == "F":
        cn = nfct.ct_net(net)
        for c in nfct.nf_ct_iterate(net):
            if explicit_fam is None or c.l3num == explicit_fam:
                c.user_deleted = True
                cn.delete(c)
        ctx.stderr.write(f"{PROG}: connection tracking table has been emptied.\n")
        return 0
    # -E: a listener that keeps printing to this run's stdout.
    cn = nfct.ct_net(net)
    out = ctx.stdout

    def listener(kind: str, ct: nfct.NfConn) -> None:
        if match(ct):
            out.write(format_ct(ct, net.world.clock.now, event=kind, extended=extended,
                                show_id=show_id) + "\n")

    cn.listeners.append(listener)
    return 0


def _child_refs(conns: list[nfct.NfConn]) -> dict[nfct.NfConn, int]:
    """References expected connections hold on their master (``nf_ct_find_expectation``
    takes one for ``ct->master``): they show in the master's ``use=``."""
    refs: dict[nfct.NfConn, int] = {}
    for c in conns:
        if c.master is not None:
            refs[c.master] = refs.get(c.master, 0) + 1
    return refs


# ---- -G / -I / -U ---------------------------------------------------------------------
def _illegal(opt: str) -> ToolError:
    return _param_err(f"Illegal option `{opt}' with this command")


def _need(opt: str) -> ToolError:
    return _param_err(f"You need to supply the `{opt}' option for this command")


def _proto_num(pv: str) -> int:
    pn = _PROTO_NUMS.get(pv)
    if pn is None:
        if not pv.isdigit():
            raise _param_err(f"`{pv}' unsupported protocol")
        pn = int(pv)
    return pn


def _addr_versions(opts: dict[str, str], strict: bool) -> set[int]:
    """The IP versions of the tuple addresses given (``-s/-d/-r/-q``): conntrack.c
    infers the family from them (``l3protonum``) and refuses a mix.  ``strict``:
    an address that does not parse is conntrack's "Invalid IP address" parameter
    error here; otherwise it is left for the tuple's own check to report."""
    versions: set[int] = set()
    for k in ("osrc", "odst", "rsrc", "rdst"):
        if k in opts:
            try:
                versions.add(ipaddress.ip_address(opts[k]).version)
            except ValueError:
                if strict:
                    raise _param_err(f"Invalid IP address `{opts[k]}'") from None
    return versions


def _orig_tuple(cmd: str, opts: dict[str, str]) -> "CtTuple":
    """The original tuple ``-G``/``-I``/``-U`` name (the checks of conntrack.c's
    ``do_command_ct`` and its protocol ``final_check``), in 1.4.7's order."""
    from netstack.netfilter.conntrack_tuple import CtTuple
    versions = _addr_versions(opts, strict=False)
    if "family" in opts:
        versions.add(6 if opts["family"] == "ipv6" else 4)
    if len(versions) > 1:
        raise _param_err("mismatched address family")  # parse_addr against -f / -s
    if "family" in opts:
        raise _illegal("--family")
    if "proto" not in opts:
        raise _need("--protonum")
    pn = _proto_num(opts["proto"])
    if cmd == "I":
        if "timeout" not in opts:
            raise _need("--timeout")
        if pn == IPPROTO_TCP and "state" not in opts:
            raise _need("--state")
    if ("rsrc" in opts or "rdst" in opts) and ("osrc" not in opts or "odst" not in opts):
        raise ToolError(f"{PROG}: Operation failed: invalid parameters\n", 1)
    if "osrc" not in opts or "odst" not in opts:
        raise _param_err("you have to specify `--src' and `--dst'")
    if cmd == "I" and ("rsrc" in opts or "rdst" in opts):
        raise NotSupported("conntrack -I with a reply tuple")
    try:
        src = ipaddress.ip_address(opts["osrc"])
        dst = ipaddress.ip_address(opts["odst"])
    except ValueError as e:
        raise _param_err(f"Invalid IP address `{str(e).split(chr(39))[1]}'") from None
    fam = NFPROTO_IPV6 if src.version == 6 else NFPROTO_IPV4
    if pn in PORT_PROTOS:
        if "osport" not in opts or "odport" not in opts:
            raise _param_err("you have to specify `--sport' and `--dport'")
        return CtTuple(fam, src.packed, _atoi(opts["osport"]) & 0xFFFF, dst.packed,
                       _atoi(opts["odport"]) & 0xFFFF,
                       pn)
    if pn in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        if not all(k in opts for k in ("itype", "icode", "iid")):
            raise NotSupported("conntrack -G/-I/-U of ICMP without --icmp-type, --icmp-code "
                               "and --icmp-id")
        return CtTuple(fam, src.packed, _atoi(opts["iid"]) & 0xFFFF, dst.packed,
                       (_atoi(opts["itype"]) & 0xFF) << 8 | _atoi(opts["icode"]) & 0xFF, pn)
    return CtTuple(fam, src.packed, 0, dst.packed, 0, pn)


def _status_bits(opts: dict[str, str]) -> int:
    bits = 0
    for name in opts.get("status", "").split(","):
        if not name or name == "UNSET":
            continue
        if name not in STATUS_NAMES:
            raise _param_err(f"Bad parameter `{name}'")
        bits |= STATUS_NAMES[name]
    return bits


def _do_get_create_update(ctx: "Ctx", cmd: str, opts: dict[str, str]) -> int:
    net = ctx.net
    cn = nfct.ct_net(net)
    if cmd == "U" and not all(k in opts for k in ("proto", "osrc", "odst")) or \
            cmd == "U" and _proto_num(opts["proto"]) in PORT_PROTOS and \
            not all(k in opts for k in ("osport", "odport")):
        if not any(k in opts for k in ("mark", "timeout", "status")):
            ctx.stderr.write(f"{PROG}: 0 flow entries have been updated.\n")
            return 1
        raise NotSupported("conntrack -U with a partial tuple (1.4.7 updates every dumped "
                           "entry and the kernel refuses some with EOPNOTSUPP)")
    t = _orig_tuple(cmd, opts)
    zone_id = _strtoul(opts.get("zone", "0")) & 0xFFFF
    zone = nfct.CtZone(zone_id) if zone_id else nfct.DEFAULT_ZONE
    hit = cn.find(t, zone)
    now = net.world.clock.now
    if cmd == "G":
        if hit is None:
            raise ToolError(f"{PROG}: Operation failed: such conntrack doesn't exist\n", 1)
        ct = hit[0]
        if ct.tuplehash[0] != t:
            ctx.stderr.write(f"{PROG}: 0 flow entries have been shown.\n")
            return 1
        out = set(opts.get("output", "").split(",")) - {""}
        refs = _child_refs(nfct.nf_ct_iterate(net)).get(ct, 0)
        ctx.stdout.write(format_ct(ct, now, extended="extended" in out, show_id="id" in out,
                                   use=2 + refs) + "\n")
        ctx.stderr.write(f"{PROG}: 1 flow entries have been shown.\n")
        return 0
    if cmd == "I":
        return _create(ctx, cn, t, zone, opts, hit is not None)
    return _update(ctx, cn, t, hit, opts)


def _create(ctx: "Ctx", cn: nfct.CtNet, t: "CtTuple", zone: "nfct.CtZone",
            opts: dict[str, str], exists: bool) -> int:
    """``ctnetlink_create_conntrack``: a confirmed entry straight into the table."""
    from netstack.netfilter.conntrack_tuple import invert
    if "mark" in opts and "status" in opts:
        raise NotSupported("conntrack -I with both --mark and --status")
    if exists:
        raise ToolError(f"{PROG}: Operation failed: Such conntrack exists, try -U to "
                        "update\n", 1)
    repl = invert(t)
    if repl is None:
        raise ToolError(f"{PROG}: Operation failed: invalid parameters\n", 1)
    ct = nfct.NfConn([t, repl], zone=zone, net=cn.net)
    ct.id = cn.next_id
    cn.next_id += 1
    ct.start = cn.now
    if cn.sysctl("nf_conntrack_acct"):
        ct.acct = [[0, 0], [0, 0]]
    if t.protonum == IPPROTO_TCP:
        st = opts["state"]
        if st not in tcpct.STATE_NAMES:
            raise _param_err(f"Bad parameter `{st}'")
        ct.proto = tcpct.TcpCt()
        ct.proto.state = tcpct.STATE_NAMES.index(st)
    if "mark" in opts:
        ct.mark = _strtoul(opts["mark"].partition("/")[0]) & 0xFFFFFFFF
    ct.status = nfct.IPS_CONFIRMED | (_status_bits(opts)
                                      & (nfct.IPS_SEEN_REPLY | nfct.IPS_ASSURED))
    ct.timeout = cn.now + _atoi(opts["timeout"]) * nfct.NSEC
    cn.insert(ct)
    cn.event(nfct.EV_NEW, ct)
    ctx.stderr.write(f"{PROG}: 1 flow entries have been created.\n")
    return 0


def _update(ctx: "Ctx", cn: nfct.CtNet, t: "CtTuple", hit: Any, opts: dict[str, str]) -> int:
    """``ctnetlink_change_conntrack`` on the entry whose original tuple is ``t``."""
    none = f"{PROG}: 0 flow entries have been updated.\n"
    if hit is None or hit[0].tuplehash[0] != t:
        ctx.stderr.write(none)
        return 1
    ct = hit[0]
    changed = False
    if "mark" in opts:
        mv, _, mm = opts["mark"].partition("/")
        keep = ~_strtoul(mm) & 0xFFFFFFFF if mm else 0
        new = ((ct.mark & keep) ^ _strtoul(mv)) & 0xFFFFFFFF
        if new != ct.mark:
            ct.mark = new
            changed = True
    bits = _status_bits(opts) & (nfct.IPS_SEEN_REPLY | nfct.IPS_ASSURED)
    if bits & ~ct.status:
        ct.status |= bits
        if bits & nfct.IPS_ASSURED:
            cn.set_assured(ct)
        changed = True
    if "timeout" in opts:
        secs = _atoi(opts["timeout"])
        if secs == 0:
            ct.user_deleted = True
            cn.delete(ct)
            ctx.stderr.write(none)
            return 1
        ct.timeout = cn.now + secs * nfct.NSEC
        changed = True
    if not changed:
        ctx.stderr.write(none)
        return 1
    cn.event(nfct.EV_UPDATE, ct)
    out = set(opts.get("output", "").split(",")) - {""}
    refs = _child_refs(nfct.nf_ct_iterate(cn.net)).get(ct, 0)
    ctx.stdout.write(format_ct(ct, cn.now, extended="extended" in out, show_id="id" in out,
                               use=2 + refs) + "\n")
    ctx.stderr.write(f"{PROG}: 1 flow entries have been updated.\n")
    return 0


# ---- expectations --------------------------------------------------------------------
def format_expect(exp: Any, now: int, event: str = "") -> str:
    """One expectation as ``conntrack -L expect`` / ``-E expect`` print it."""
    t = exp.tuple
    m = exp.master.tuplehash[0]
    full = _addr(b"\xff" * len(t.dst))
    secs = max(0, (exp.expires - now) // nfct.NSEC) if exp.expires else 0
    s = f"{'[' + event + ']':>9} " if event else ""
    # the tuple's and the mask's ports only for a protocol with ports
    # (ctnetlink_exp_dump_tuple / _mask dump the protocol part with the tuple's l4proto)
    tp = f" sport={t.sport} dport={t.dport}" if t.protonum in PORT_PROTOS else ""
    mp = f" sport={exp.mask_sport} dport=65535" if t.protonum in PORT_PROTOS else ""
    s += (f"{secs} proto={t.protonum} src={_addr(t.src)} dst={_addr(t.dst)}{tp} "
          f"mask-src={_addr(exp.mask_src)} mask-dst={full}{mp} master-src={_addr(m.src)} "
          f"master-dst={_addr(m.dst)} sport={m.sport} dport={m.dport} class={exp.cls}")
    h = exp.master.help.helper if exp.master.help is not None else None
    if h is not None:
        s += f" helper={h.name}"
    return s


def _do_expect(ctx: "Ctx", cmd: str, opts: dict[str, str]) -> int:
    from netstack.netfilter import conntrack_expect as cte
    net = ctx.net
    cn = nfct.ct_net(net)
    fam = NFPROTO_IPV6 if opts.get("family") == "ipv6" else NFPROTO_IPV4
    if cmd == "L":
        exps = [e for e in cte.nf_ct_expect_iterate(cn) if e.tuple.l3num == fam]
        for e in exps:
            ctx.stdout.write(format_expect(e, net.world.clock.now) + "\n")
        ctx.stderr.write(f"{PROG}: {len(exps)} expectations have been shown.\n")
        return 0
    if cmd == "C":
        ctx.stdout.write(f"{len(cte.nf_ct_expect_iterate(cn))}\n")
        return 0
    if cmd == "F":
        for e in cte.nf_ct_expect_iterate(cn):
            cte.nf_ct_unlink_expect(cn, e)
        ctx.stderr.write(f"{PROG}: expectation table has been emptied.\n")
        return 0
    if cmd == "E":
        out = ctx.stdout

        def listener(kind: str, e: Any) -> None:
            if e.tuple.l3num == fam:
                out.write(format_expect(e, net.world.clock.now, kind) + "\n")
        cn.expect.listeners.append(listener)
        return 0
    return _do_expect_gdi(ctx, cmd, opts)


# ---- -G / -D / -I expect ----------------------------------------------------------------
#: conntrack.c's option table in index order (what ``generic_opt_check`` walks: the first
#: missing compulsory or present illegal option is reported), and the EXP_GET /
#: EXP_DELETE / EXP_CREATE rows of ``commands_v_options`` (1 compulsory, 2 optional,
#: absent 0 = illegal).
_GEN_OPTS = (("osrc", "src"), ("odst", "dst"), ("rsrc", "reply-src"), ("rdst", "reply-dst"),
             ("proto", "protonum"), ("timeout", "timeout"), ("status", "status"),
             ("tsrc", "tuple-src"), ("tdst", "tuple-dst"), ("msrc", "mask-src"),
             ("mdst", "mask-dst"), ("mark", "mark"), ("family", "family"),
             ("output", "output"), ("zone", "zone"))
_EXP_GEN = {"G": {"osrc": 1, "odst": 1, "rsrc": 2, "rdst": 2, "proto": 1},
            "D": {"osrc": 1, "odst": 1, "rsrc": 2, "rdst": 2, "proto": 1},
            "I": {"osrc": 1, "odst": 1, "rsrc": 2, "rdst": 2, "proto": 1, "timeout": 1,
                  "status": 2, "tsrc": 1, "tdst": 1, "msrc": 1, "mdst": 1}}
#: The protocol extensions' option tables (extensions/libct_proto_{tcp,udp,icmp*}.c) and
#: their EXP_* rows.
_TCP_OPTS = (("osport", "sport"), ("odport", "dport"), ("rsport", "reply-port-src"),
             ("rdport", "reply-port-dst"), ("msport", "mask-port-src"),
             ("mdport", "mask-port-dst"), ("state", "state"), ("tsport", "tuple-port-src"),
             ("tdport", "tuple-port-dst"))
_UDP_OPTS = tuple(o for o in _TCP_OPTS if o[0] != "state")
_EXP_PROTO = {
    IPPROTO_TCP: (_TCP_OPTS, {"G": (1, 1, 1, 1, 0, 0, 0, 0, 0), "D": (1, 1, 1, 1, 0, 0, 0, 0, 0),
                              "I": (1, 1, 0, 0, 1, 1, 0, 1, 1)}),
    17: (_UDP_OPTS, {"G": (1, 1, 1, 1, 0, 0, 0, 0), "D": (1, 1, 1, 1, 0, 0, 0, 0),
                     "I": (1, 1, 0, 0, 1, 1, 1, 1)}),
    IPPROTO_ICMP: ((("itype", "icmp-type"), ("icode", "icmp-code"), ("iid", "icmp-id")),
                   {c: (0, 0, 0) for c in "GDI"}),
    IPPROTO_ICMPV6: ((("itype", "icmpv6-type"), ("icode", "icmpv6-code"),
                      ("iid", "icmpv6-id")), {c: (0, 0, 0) for c in "GDI"}),
}
#: Protocols whose ``nlattr_to_tuple`` reads the port attributes (tcp, udp, dccp, gre,
#: sctp, udplite); ICMP/ICMPv6 need their own attributes (EINVAL without them); any
#: other number is the generic tracker, which reads none (the tuple keeps zero ports).
_NL_PORT_PROTOS = frozenset((6, 17, 33, 47, 132, 136))


def _exp_opt_check(cmd: str, opts: dict[str, str], pn: int) -> None:
    """``generic_opt_check`` over the main table, then the protocol's ``final_check``."""
    row = _EXP_GEN[cmd]
    for key, name in _GEN_OPTS:
        v = row.get(key, 0)
        if key not in opts and v == 1:
            raise _need(f"--{name}")
        if key in opts and v == 0:
            raise _illegal(f"--{name}")
    ext = _EXP_PROTO.get(pn)
    if ext is None:
        return
    names, rows = ext
    for (key, name), v in zip(names, rows[cmd]):
        if key not in opts and v == 1:
            raise _need(f"--{name}")
        if key in opts and v == 0:
            raise _illegal(f"--{name}")


def _exp_failed(msg: str) -> ToolError:
    return ToolError(f"{PROG}: Operation failed: {msg}\n", 1)


def _do_expect_gdi(ctx: "Ctx", cmd: str, opts: dict[str, str]) -> int:
    """``conntrack -G/-D/-I expect`` (conntrack-tools 1.4.7, ctnetlink_{get,del,new}_expect;
    measured on Linux 6.18).

    * ``-G``/``-D``: the tool sends ``-s -d -p --sport --dport`` as one tuple (reply ports
      compulsory but unused); the kernel finds the first expectation that tuple fulfils
      under the expectation's mask (``nf_ct_expect_find_get``).  ``-G`` prints it;
      ``-D`` removes it (DESTROY event) and — the tool counts nothing for a delete —
      prints "0 expectations have been shown." and exits 1.  Not found: "Operation
      failed: No such file or directory".
    * ``-I``: master tuple (``-s -d -p --sport --dport``), expected tuple (``--tuple-*``),
      mask (``--mask-*``); ``-t`` is required but the master's helper policy sets the
      timeout (``nf_ct_expect_insert``).  1.4.7's TCP extension stores the
      ``--tuple-port-*`` value (network order) as the tuple's protocol byte: the
      expectation's protocol is the high byte of the last tuple port given (6 → TCP,
      17 → UDP with the ports, 1/58 → "invalid parameters", anything else the generic
      tracker without ports).  Then, as ``ctnetlink_new_expect``: an expectation the new
      tuple fulfils → "File exists"; master not found (either direction) → "master
      conntrack not found"; master without helper → "Operation not supported"; then
      ``nf_ct_expect_related`` (oldest of the class evicted past ``max_expected``).
      Nothing is printed on success."""
    from netstack.netfilter import conntrack_expect as cte
    from netstack.netfilter.conntrack_tuple import CtTuple
    versions = _addr_versions(opts, strict=True)
    if len(versions) > 1:
        raise _param_err("mismatched address family")
    if "status" in opts:
        _status_bits(opts)           # parsed (and refused) while reading the options
    pn = _proto_num(opts["proto"]) if "proto" in opts else -1
    _exp_opt_check(cmd, opts, pn)
    if pn in (IPPROTO_SCTP, 33, 136, 47):
        raise NotSupported(f"conntrack -{cmd} expect -p {opts['proto']}")
    fam = NFPROTO_IPV6 if versions == {6} else NFPROTO_IPV4
    src = ipaddress.ip_address(opts["osrc"]).packed
    dst = ipaddress.ip_address(opts["odst"]).packed
    ports = pn in (IPPROTO_TCP, 17)
    t = CtTuple(fam, src, _atoi(opts["osport"]) & 0xFFFF if ports else 0, dst,
                _atoi(opts["odport"]) & 0xFFFF if ports else 0, pn)
    net = ctx.net
    cn = nfct.ct_net(net)
    if cmd in ("G", "D"):
        hit = next((e for e in cte.nf_ct_expect_iterate(cn)
                    if e.master.zone.id_for(0) == 0 and e.matches(t)), None)
        if hit is None or pn in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            raise _exp_failed("No such file or directory")
        if cmd == "G":
            ctx.stdout.write(format_expect(hit, net.world.clock.now) + "\n")
            return 0
        cte.nf_ct_unlink_expect(cn, hit)
        ctx.stderr.write(f"{PROG}: 0 expectations have been shown.\n")
        return 1
    if pn in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        # the ICMP extension fills no expectation tuple and no master ports: no master
        raise _exp_failed("master conntrack not found")
    if pn not in (IPPROTO_TCP, 17):
        raise NotSupported(f"conntrack -I expect -p {opts['proto']}")
    eproto = pn
    if pn == IPPROTO_TCP:
        eproto = (_atoi(opts["tport_last"]) & 0xFFFF) >> 8
    if eproto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        raise _exp_failed("invalid parameters")
    if eproto in (IPPROTO_SCTP, 33, 136, 47):
        raise NotSupported(f"conntrack -I expect whose tuple port makes protocol {eproto}")
    try:
        tsrc = ipaddress.ip_address(opts["tsrc"]).packed
        tdst = ipaddress.ip_address(opts["tdst"]).packed
        msrc = ipaddress.ip_address(opts["msrc"]).packed
    except ValueError as e:
        raise _param_err(f"Invalid IP address `{str(e).split(chr(39))[1]}'") from None
    if len(tsrc) != len(src) or len(tdst) != len(src) or len(msrc) != len(src):
        raise _param_err("mismatched address family")
    eports = eproto in _NL_PORT_PROTOS
    et = CtTuple(fam, tsrc, _atoi(opts["tsport"]) & 0xFFFF if eports else 0, tdst,
                 _atoi(opts["tdport"]) & 0xFFFF if eports else 0, eproto)
    if any(e.master.zone.id_for(0) == 0 and e.matches(et)
           for e in cte.nf_ct_expect_iterate(cn)):
        raise _exp_failed("File exists")
    found = cn.find(t, nfct.DEFAULT_ZONE)
    if found is None:
        raise _exp_failed("master conntrack not found")
    master = found[0]
    if master.help is None:
        raise _exp_failed("Operation not supported")
    exp = cte.Expectation(master, et, msrc, _atoi(opts["msport"]) & 0xFFFF,
                          zone=master.zone, timeout_ns=_atoi(opts["timeout"]) * nfct.NSEC)
    err = cte.nf_ct_expect_related(exp)
    if err:
        raise _exp_failed(os.strerror(-err))
    return 0
