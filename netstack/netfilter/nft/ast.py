"""Syntax tree of the nft language, as the parser builds it (src/expression.h,
src/statement.h, src/rule.h, reduced to what netstack evaluates).

Constants stay symbolic (:class:`Sym`) until evaluation, because ``22`` is an
inet_service after ``tcp dport`` but a mark after ``meta mark`` — nft resolves symbols
against the left-hand side's datatype in src/evaluate.c, and so does
:mod:`netstack.netfilter.nft.evaluate`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netstack.netfilter.nft.errors import Loc


@dataclass
class Expr:
    loc: Loc


@dataclass
class Sym(Expr):
    """A constant as written: a word or a quoted string."""

    text: str
    quoted: bool = False


@dataclass
class PayloadE(Expr):
    proto: str
    field: str


@dataclass
class MetaE(Expr):
    key: str
    explicit: bool = True     # written ``meta mark`` (vs. bare ``mark``)


@dataclass
class CtE(Expr):
    key: str
    direction: str | None = None


@dataclass
class ConcatE(Expr):
    items: list[Expr]


@dataclass
class BinopE(Expr):
    op: str                   # "&", "|", "^"
    left: Expr
    right: Expr


@dataclass
class ListE(Expr):
    """``a,b,c`` — a flag list (``ct state established,related``)."""

    items: list[Expr]


@dataclass
class SetElem:
    key: Expr
    data: Expr | None = None
    timeout: int | None = None      # ms
    expires: int | None = None      # ms
    comment: str | None = None


@dataclass
class AnonSetE(Expr):
    elems: list[SetElem]


@dataclass
class SetRefE(Expr):
    name: str


@dataclass
class MapE(Expr):
    """``KEY map { … }`` / ``KEY map @m`` used as a value."""

    key: Expr
    mapping: Expr


@dataclass
class VerdictE(Expr):
    kind: str                 # accept drop continue return jump goto queue
    chain: str | None = None
    chain_loc: Loc | None = None


@dataclass
class Stmt:
    loc: Loc


@dataclass
class MatchS(Stmt):
    left: Expr
    op: str                   # "" (implicit), "==", "!=", "<", ">", "<=", ">="
    right: Expr


@dataclass
class VerdictS(Stmt):
    verdict: VerdictE


@dataclass
class VmapS(Stmt):
    key: Expr
    mapping: Expr


@dataclass
class CounterS(Stmt):
    packets: int = 0
    bytes: int = 0
    name: str | None = None


@dataclass
class LimitS(Stmt):
    rate: int
    unit: str                 # second minute hour day week
    burst: int
    bytes: bool
    over: bool
    rate_text: str = ""
    burst_text: str = ""


@dataclass
class QuotaS(Stmt):
    nbytes: int
    over: bool
    used: int = 0
    text: str = ""


@dataclass
class LogS(Stmt):
    prefix: str | None = None
    level: str | None = None
    group: int | None = None
    snaplen: int | None = None
    qthreshold: int | None = None
    flags: list[str] = field(default_factory=list)


@dataclass
class RejectS(Stmt):
    kind: str | None = None   # None (default), "tcp reset", "icmp", "icmpv6", "icmpx"
    code: str | None = None
    code_loc: Loc | None = None


@dataclass
class NotrackS(Stmt):
    pass


@dataclass
class SetS(Stmt):
    """``meta KEY set VALUE`` / ``ct KEY set VALUE``."""

    target: Expr
    value: Expr


@dataclass
class DynsetS(Stmt):
    op: str                   # add | update | delete
    setname: str
    key: Expr
    data: Expr | None = None
    timeout: int | None = None


@dataclass
class NatS(Stmt):
    kind: str
    args: Any = None


@dataclass
class RuleAst:
    stmts: list[Stmt]
    comment: str | None = None
    loc: Loc | None = None


@dataclass
class NumgenE(Expr):
    mode: str                 # inc | random
    modulus: int
    offset: int = 0


@dataclass
class HashE(Expr):
    kind: str                 # jhash | symhash
    key: Expr | None
    modulus: int
    seed: int | None = None
    offset: int = 0


@dataclass
class FibE(Expr):
    flags: list[str]          # saddr/daddr then iif/oif/mark
    result: str               # oif | oifname | type


@dataclass
class FlowS(Stmt):
    table: str


@dataclass
class QueueS(Stmt):
    """``queue [flags bypass,fanout] [num|to] N[-M]`` (parser_bison.y queue_stmt)."""

    lo: int = 0
    hi: int | None = None     # last queue of a range
    flags: list[str] = field(default_factory=list)
    num_loc: Loc | None = None
    expr: Any = None          # ``queue to numgen …`` / ``jhash …`` (NFTA_QUEUE_SREG_QNUM)


@dataclass
class DupS(Stmt):
    """``dup to ADDR [device DEV]`` (ip/ip6/inet) or ``dup to DEV`` (netdev)."""

    addr: Expr | None = None
    dev: Expr | None = None
    family: str | None = None  # ``dup ip to …`` / ``dup ip6 to …`` (netdev, inet)


@dataclass
class FwdS(Stmt):
    """``fwd to DEV`` / ``fwd ip|ip6 to ADDR device DEV`` (netdev family only)."""

    dev: Expr | None = None
    addr: Expr | None = None
    family: str | None = None


@dataclass
class MeterS(Stmt):
    """``meter NAME [size N] { KEY STMT }``: a named dynamic set the rule fills."""

    name: str = ""
    size: int | None = None
    key: Expr | None = None
    stmt: Stmt | None = None


@dataclass
class CtHelperSpec:
    """``ct helper NAME { type "ftp" protocol tcp; l3proto ip; }``."""

    type: str = ""
    protocol: str = ""
    l3proto: str | None = None
    comment: str | None = None
    loc: Loc | None = None


@dataclass
class XtS(Stmt):
    """An xtables compat expression (``match``/``target`` with the extension's own
    data) that iptables-nft put in a rule; only :mod:`netstack.netfilter.xtables`
    creates them (the nft language itself has no syntax for these)."""

    spec: Any = None


@dataclass
class ExthdrE(Expr):
    """``tcp option NAME [FIELD]`` (kind "tcpopt"), ``exthdr NAME`` / ``NAME FIELD`` for
    IPv6 extension headers (kind "ipv6"); no field: an existence test."""

    kind: str = "tcpopt"
    name: str = ""
    field: str | None = None


@dataclass
class OptResetS(Stmt):
    """``reset tcp option NAME``."""

    target: Any = None


@dataclass
class CtExpectSpec:
    """``ct expectation NAME { protocol tcp; dport 22; timeout 10s; size 8; l3proto ip; }``."""

    protocol: str = ""
    dport: int = 0
    timeout: int = 0          # ms
    size: int = 0
    l3proto: str | None = None
    loc: Loc | None = None


@dataclass
class RtE(Expr):
    """``rt [ip|ip6] nexthop`` / ``rt mtu``."""

    key: str = ""
    family: str | None = None
