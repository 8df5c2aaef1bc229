"""Conntrack expectations (net/netfilter/nf_conntrack_expect.c).

An expectation is a connection a helper predicts from what it read in its master's
payload (the data connection announced by an FTP ``PORT``, the server's reply of a TFTP
read request).  Reproduced:

* tuple + mask: only the *source* side is masked (``nf_ct_tuple_mask_cmp``: source
  address and source port under the mask; destination address, destination port, L3 and
  L4 protocol must be equal).  ``nf_ct_expect_init`` with a NULL source port leaves the
  port unmasked (wildcard), with a NULL source address the address too.
* ``nf_ct_expect_related``: an identical expectation (same master, class, tuple, mask) is
  replaced (``expect_matches``), one whose tuple intersects another master's under both
  masks is refused with EBUSY (``expect_clash``); per class at most ``max_expected`` of
  the helper's policy: the oldest is evicted first (``evict_oldest_expect``), and the
  table as a whole holds ``nf_conntrack_expect_max`` (EMFILE beyond).  The timer starts
  at ``policy.timeout`` seconds (``nf_ct_expect_insert``).
* ``nf_ct_find_expectation``: a new connection's original tuple is looked up; the master
  must be confirmed and alive; a non-PERMANENT expectation is consumed (unlinked) when it
  matches.
* An expectation dies with its master (``nf_ct_remove_expectations`` from
  ``nf_ct_delete``), on timeout, or from userspace (``conntrack -F expect``).
* nft's ``ct expectation`` object: :func:`nft_ct_expect_obj_eval` (API for the nft VM).

Events (``conntrack -E expect``) are delivered as ``("NEW"|"DESTROY", exp)`` to
``CtNet.exp_listeners``.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from netstack.netfilter.conntrack_tuple import CtTuple, CtZone

if TYPE_CHECKING:  # pragma: no cover
    from netstack.netfilter.conntrack import CtNet, NfConn

NSEC = 1_000_000_000

# include/uapi/linux/netfilter/nf_conntrack_common.h
NF_CT_EXPECT_PERMANENT = 0x1
NF_CT_EXPECT_INACTIVE = 0x2
NF_CT_EXPECT_USERSPACE = 0x4
NF_CT_EXPECT_CLASS_DEFAULT = 0


@dataclass(eq=False)
class Expectation:
    """``struct nf_conntrack_expect``."""

    master: "NfConn"
    tuple: CtTuple
    #: source-address mask (4 or 16 bytes) and source-port mask (0 = wildcard).
    mask_src: bytes
    mask_sport: int
    cls: int = NF_CT_EXPECT_CLASS_DEFAULT
    flags: int = 0
    #: helper the expected connection gets (``exp->helper``), None = none.
    helper: Any = None
    #: ``exp->expectfn``: called with (new ct, exp) when the connection arrives (NAT).
    expectfn: Callable[["NfConn", "Expectation"], None] | None = None
    #: NAT: where the expected connection really goes (``saved_addr``/``saved_proto``)
    #: and which direction of the master it mirrors (``exp->dir``).
    saved_addr: bytes = b""
    saved_proto: int = 0
    dir: int = 0
    zone: CtZone = field(default_factory=CtZone)
    #: lifetime set by the creator (nft ``ct expectation`` objects); a helper's policy
    #: timeout overrides it (``nf_ct_expect_insert``).
    timeout_ns: int = 0
    timer: Any = None
    id: int = 0
    #: absolute expiry (virtual ns), for listings.
    expires: int = 0

    def matches(self, t: CtTuple) -> bool:
        """``nf_ct_tuple_mask_cmp(t, &exp->tuple, &exp->mask)``."""
        e = self.tuple
        if t.l3num != e.l3num or t.protonum != e.protonum or t.dst != e.dst \
                or t.dport != e.dport:
            return False
        if (t.sport ^ e.sport) & self.mask_sport:
            return False
        return all((a ^ b) & m == 0 for a, b, m in zip(t.src, e.src, self.mask_src))


def nf_ct_expect_init(master: "NfConn", cls: int, l3num: int, saddr: bytes | None,
                      daddr: bytes, proto: int, sport: int | None, dport: int) -> Expectation:
    """``nf_ct_expect_alloc`` + ``nf_ct_expect_init``: None for ``saddr``/``sport`` is a
    wildcard (mask 0)."""
    alen = 4 if l3num == 2 else 16
    src = saddr if saddr is not None else bytes(alen)
    t = CtTuple(l3num, src, sport or 0, daddr, dport, proto)
    return Expectation(master, t, b"\xff" * alen if saddr is not None else bytes(alen),
                       0xFFFF if sport is not None else 0, cls=cls, zone=master.zone)


@dataclass
class ExpectTable:
    """The expectations of one namespace (``net->ct.expect_hash``/``expect_count``),
    oldest first, and the per-master lists (``help->expectations``)."""

    by_dst: dict[tuple, list[Expectation]] = field(default_factory=dict)
    all: dict[Expectation, None] = field(default_factory=dict)
    listeners: list[Callable[[str, Expectation], None]] = field(default_factory=list)
    next_id: int = 1

    @property
    def count(self) -> int:
        return len(self.all)


def _key(t: CtTuple) -> tuple:
    return (t.l3num, t.dst, t.dport, t.protonum)


def _table(cn: "CtNet") -> ExpectTable:
    return cn.expect


def _event(tbl: ExpectTable, kind: str, exp: Expectation) -> None:
    for fn in list(tbl.listeners):
        fn(kind, exp)


def nf_ct_unlink_expect(cn: "CtNet", exp: Expectation, report: bool = True) -> None:
    """``nf_ct_unlink_expect_report``: out of the hash and the master's list."""
    tbl = _table(cn)
    if exp not in tbl.all:
        return
    del tbl.all[exp]
    lst = tbl.by_dst.get(_key(exp.tuple))
    if lst is not None:
        lst.remove(exp)
        if not lst:
            del tbl.by_dst[_key(exp.tuple)]
    if exp.timer is not None:
        exp.timer.cancel()
    help_ = exp.master.help
    if help_ is not None:
        if exp in help_.expectations:
            help_.expectations.remove(exp)
        help_.expecting[exp.cls] -= 1
    if report:
        _event(tbl, "DESTROY", exp)


def _expire(cn: "CtNet", exp: Expectation) -> None:
    """``nf_ct_expectation_timed_out``."""
    nf_ct_unlink_expect(cn, exp)


def _clash(a: Expectation, b: Expectation) -> bool:
    """``expect_clash``: the two tuples intersect under the intersection of the masks."""
    if a.master.zone != b.master.zone:
        return False
    ta, tb = a.tuple, b.tuple
    if ta.l3num != tb.l3num or ta.protonum != tb.protonum or ta.dst != tb.dst \
            or ta.dport != tb.dport:
        return False
    m_port = a.mask_sport & b.mask_sport
    if (ta.sport ^ tb.sport) & m_port:
        return False
    return all((x ^ y) & (ma & mb) == 0 for x, y, ma, mb in
               zip(ta.src, tb.src, a.mask_src, b.mask_src))


def _same(a: Expectation, b: Expectation) -> bool:
    """``expect_matches``."""
    return (a.master is b.master and a.cls == b.cls and a.tuple == b.tuple
            and a.mask_src == b.mask_src and a.mask_sport == b.mask_sport
            and a.zone == b.zone)


def nf_ct_expect_related(exp: Expectation, flags: int = 0) -> int:
    """``nf_ct_expect_related_report``: 0, or -errno (EBUSY clash, EMFILE full, ESHUTDOWN
    master without helper / dying)."""
    from netstack.netfilter.conntrack import IPS_DYING, ct_net
    master = exp.master
    cn = ct_net(master.net)
    tbl = _table(cn)
    help_ = master.help
    if help_ is None or master.status & IPS_DYING:
        return -errno.ESHUTDOWN
    helper = help_.helper
    for other in list(tbl.by_dst.get(_key(exp.tuple), ())):
        if _same(other, exp):
            nf_ct_unlink_expect(cn, other)
        elif _clash(other, exp):
            return -errno.EBUSY
    if helper is not None:
        pol = helper.expect_policy[exp.cls]
        if pol.max_expected and help_.expecting[exp.cls] >= pol.max_expected:
            # evict_oldest_expect
            for old in help_.expectations:
                if old.cls == exp.cls:
                    nf_ct_unlink_expect(cn, old)
                    break
            if help_.expecting[exp.cls] >= pol.max_expected:
                return -errno.EMFILE
        timeout_ns = pol.timeout * NSEC
    else:
        timeout_ns = exp.timeout_ns
    if tbl.count >= cn.sysctl("nf_conntrack_expect_max"):
        return -errno.EMFILE
    exp.flags |= flags
    exp.id = tbl.next_id
    tbl.next_id += 1
    tbl.all[exp] = None
    tbl.by_dst.setdefault(_key(exp.tuple), []).append(exp)
    help_.expectations.append(exp)
    help_.expecting[exp.cls] += 1
    if timeout_ns:
        exp.timer = cn.net.world.clock.timer(_expire, cn, exp)
        exp.timer.mod_in(timeout_ns)
        exp.expires = cn.now + timeout_ns
    _event(tbl, "NEW", exp)
    return 0


def nf_ct_find_expectation(cn: "CtNet", t: CtTuple, zone: CtZone,
                           unlink: bool = True) -> Expectation | None:
    """``nf_ct_find_expectation``: the expectation ``t`` fulfils, consumed unless
    PERMANENT; None if the master is unconfirmed or dying."""
    from netstack.netfilter.conntrack import IPS_CONFIRMED, IPS_DYING
    tbl = _table(cn)
    _reap(cn, tbl.by_dst.get(_key(t), ()))
    for exp in tbl.by_dst.get(_key(t), ()):
        if exp.flags & NF_CT_EXPECT_INACTIVE or not exp.matches(t):
            continue
        if exp.master.zone.id_for(0) != zone.id_for(0):
            continue
        m = exp.master
        if not m.status & IPS_CONFIRMED or m.status & IPS_DYING:
            return None
        if exp.flags & NF_CT_EXPECT_PERMANENT or not unlink:
            return exp
        nf_ct_unlink_expect(cn, exp)
        return exp
    return None


def nf_ct_remove_expectations(cn: "CtNet", ct: "NfConn") -> None:
    """``nf_ct_remove_expectations``: a dying master takes its expectations along."""
    help_ = ct.help
    if help_ is None:
        return
    for exp in list(help_.expectations):
        nf_ct_unlink_expect(cn, exp)


def nf_ct_expect_iterate(cn: "CtNet") -> list[Expectation]:
    """Live expectations, oldest first (``conntrack -L expect``)."""
    _reap(cn, _table(cn).all)
    return list(_table(cn).all)


def _reap(cn: "CtNet", exps: Any) -> None:
    """Expire what is due even when virtual time was moved without running timers."""
    now = cn.now
    for exp in [e for e in exps if e.expires and e.expires <= now]:
        nf_ct_unlink_expect(cn, exp)


NFT_BREAK = -2


def nft_ct_expect_obj_eval(pkt: Any, l3num: int, l4proto: int, dport: int, timeout_ms: int,
                           size: int) -> int:
    """``nft_ct_expect_obj_eval`` (net/netfilter/nft_ct.c), for nft's ``ct expectation``
    object (``ct expectation set "name"``): on a not yet confirmed connection, expect one
    from the peer (``tuplehash[!dir]`` source) to this side's address on ``dport`` with
    ``l4proto``, any source port, living ``timeout_ms`` seconds (sic: the kernel
    multiplies the millisecond value by HZ); at most ``size`` pending
    (class default).  ``l3num`` NFPROTO_INET means the connection's own family.  Returns
    NFT_BREAK (the rule stops: no ct, confirmed, template, or ``size`` reached), NF_DROP
    (the expectation could not be added) or NF_ACCEPT (continue)."""
    from netstack.netfilter.conntrack import (IPS_CONFIRMED, IPS_TEMPLATE, ctinfo2dir,
                                              nf_ct_get)
    from netstack.netfilter.conntrack_helper import nf_ct_helper_ext_add
    from netstack.netfilter.core import NF_ACCEPT, NF_DROP, NFPROTO_INET
    ct, ctinfo = nf_ct_get(pkt)
    if ct is None or ct.status & (IPS_CONFIRMED | IPS_TEMPLATE):
        return NFT_BREAK
    d = ctinfo2dir(ctinfo)
    help_ = ct.help if ct.help is not None else nf_ct_helper_ext_add(ct, None)
    if help_.expecting[NF_CT_EXPECT_CLASS_DEFAULT] >= size:
        return NFT_BREAK
    if l3num == NFPROTO_INET:
        l3num = ct.l3num
    t = ct.tuplehash[1 - d]
    exp = nf_ct_expect_init(ct, NF_CT_EXPECT_CLASS_DEFAULT, l3num, t.src, t.dst, l4proto,
                            None, dport)
    # nft sends the timeout in milliseconds and the kernel arms ``jiffies + timeout * HZ``:
    # the expectation lives timeout_ms *seconds* (measured: "timeout 1m" lists as 59999)
    exp.timeout_ns = timeout_ms * NSEC
    if nf_ct_expect_related(exp) != 0:
        return NF_DROP
    return NF_ACCEPT
