"""``conntrack`` (conntrack-tools 1.4.7 with libnetfilter_conntrack 1.0.9): -L, -D, -F, -E, -C.

Output reproduces ``__snprintf_conntrack_default`` (libnetfilter_conntrack
src/conntrack/snprintf_default.c) as measured against Debian's conntrack 1.4.7 on Linux
6.18: ``PROTO<pad to 8> NUM TIMEOUT [TCPSTATE] src= dst= sport= dport= [UNREPLIED] src= dst=
sport= dport= [ASSURED] [OFFLOAD] mark=M [zone=Z] use=1``, one line per entry on stdout; the
summary ("N flow entries have been shown.") goes to stderr.  ``-L``/``-D`` see IPv4 only
unless ``-f ipv6``.  ``-D`` with no match exits 1.  Events (``-E``) are ``[NEW]``/``[UPDATE]``/
``[DESTROY]`` right-aligned in 9 columns, without ``mark=0``/``use=``; in a scenario ``-E``
keeps printing every later event of the namespace to the scenario's stdout (the shell's
``conntrack -E &``) and returns at once.
"""
from __future__ import annotations

import ipaddress
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
              show_id: bool = False) -> str:
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
    if not event:
        parts.append("use=1 ")
    if show_id:
        parts.append(f"id={ct.id} ")
    if event == "DESTROY" and ct.user_deleted:
        parts.append("[USERSPACE] portid=0 ")
    return "".join(parts).rstrip(" ")


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
}
#: Options a protocol (``-p``) registers; before ``-p`` they are unknown.
_PROTO_OPTS = frozenset(("--sport", "--orig-port-src", "--dport", "--orig-port-dst",
                         "--reply-port-src", "--reply-port-dst", "--state", "--icmp-type",
                         "--icmp-code", "--icmp-id"))
_COMMANDS = {"-L": "L", "--dump": "L", "-D": "D", "--delete": "D", "-F": "F", "--flush": "F",
             "-E": "E", "--event": "E", "-C": "C", "--count": "C"}


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
            if a in ("-L", "--dump") and i + 1 < len(args) and args[i + 1] in (
                    "conntrack", "expect"):
                if args[i + 1] == "expect":
                    raise NotSupported("conntrack -L expect (expectations)")
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
    checks: list[Callable[[nfct.NfConn], bool]] = [lambda c: c.l3num == fam]
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
            pv = int(opts[key])
            checks.append(lambda c, pv=pv, d=d, side=side: getattr(c.tuplehash[d], side) == pv)
    if "itype" in opts:
        tv = int(opts["itype"])
        checks.append(lambda c, tv=tv: c.tuplehash[0].icmp_type == tv)
    if "icode" in opts:
        cv = int(opts["icode"])
        checks.append(lambda c, cv=cv: c.tuplehash[0].icmp_code == cv)
    if "iid" in opts:
        iv = int(opts["iid"])
        checks.append(lambda c, iv=iv: c.tuplehash[0].sport == iv)
    if "mark" in opts:
        mv, _, mm = opts["mark"].partition("/")
        m = int(mv, 0)
        mask = int(mm, 0) if mm else 0xFFFFFFFF
        checks.append(lambda c, m=m, mask=mask: (c.mark & mask) == m)
    if "zone" in opts:
        z = int(opts["zone"])
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
        lines = [format_ct(c, now, extended=extended, show_id=show_id)
                 for c in nfct.nf_ct_iterate(net) if match(c)]
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
