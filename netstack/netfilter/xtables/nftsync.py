"""Keeping the nf_tables ruleset in step with the xtables view.

iptables-nft writes native nf_tables objects; netstack does the same by handing the nft
front end (:mod:`netstack.netfilter.nft.cli` ``run_text``) the text of the whole touched
table — ``delete table`` plus the rebuilt table in one atomic batch — after every change,
with each rule's counters carried over (read back from the rules' counter expressions
first, so ``-L -v`` shows what the datapath counted).  When the nft front end refuses the
text (a feature it does not model yet) the change is undone and NotSupported names the
cause instead of leaving iptables and the datapath disagreeing."""
from __future__ import annotations

import copy
from typing import Any, Callable

from netstack.errors import NotSupported
from netstack.netfilter.xtables.tables import XtState


def pull_counters(net: Any, st: XtState) -> None:
    """Copy packet/byte counts from the nft rules into the xtables rules (same order: the
    tables are only ever written by :func:`push_table`)."""
    from netstack.netfilter.nft.ruleset import nft_state
    nst = net.__dict__.get("nft")
    if nst is None:
        return
    nst = nft_state(net)
    for name, t in st.tables.items():
        if not t.exists:
            continue
        nt = nst.find_table(st.family.value, name)
        if nt is None:
            continue
        for cname, ch in t.chains.items():
            nch = nt.chains.get(cname)
            if nch is None or len(nch.rules) != len(ch.rules):
                continue
            for xr, nr in zip(ch.rules, nch.rules):
                ctr = next((e for e in nr.exprs if type(e).__name__ == "Counter"), None)
                if ctr is not None:
                    xr.pcnt, xr.bcnt = ctr.packets, ctr.bytes


def push_table(net: Any, st: XtState, table: str) -> None:
    """Rebuild ``table`` of ``st.family`` in nf_tables; raises NotSupported on refusal."""
    from netstack.netfilter.nft.cli import run_text
    from netstack.netfilter.nft.ruleset import nft_state
    t = st.tables[table]
    if not t.exists:
        return
    fam = st.family.value
    specs: list = []
    text = t.nft_text(with_counts=True, specs=specs)
    nst = nft_state(net)
    old = nst.find_table(fam, table)
    if old is not None:
        text = f"delete table {fam} {table}\n" + text
    try:
        rc, _, err = run_text(net, text, None, xt_specs=specs)
    except NotSupported as e:
        raise NotSupported(f"iptables rule in {fam} {table}: nft front end: "
                           f"{str(e)[len('not supported: '):]}") from None
    if rc:
        first = err.splitlines()[0] if err else "error"
        raise NotSupported(f"iptables rule in {fam} {table}: the nft front end refused "
                           f"the iptables-nft ruleset ({first})")
    _keep_handles(nst, nst.find_table(fam, table), old, t)


def _keep_handles(nst: Any, new: Any, old: Any, t: Any) -> None:
    """iptables-nft changes a table incrementally, so the kernel's handles are those
    given when each object was first created (``table->hgen`` never goes back).  The
    rebuilt table gets them back: the table's own handle, and for every chain and rule
    the handle it had (remembered on the xtables object), new ones numbered on from the
    old generator — chains of a command before its rules, as iptables-nft's batch."""
    if new is None:
        return
    if old is not None:
        new.handle = old.handle
        nst.table_handle -= 1
        hgen = old.hgen
    else:
        hgen = 0
    chains = sorted((c for c in t.chains.values() if c.created),
                    key=lambda c: (c.seq == 0, c.seq))
    for xc in chains:
        nc = new.chains.get(xc.name)
        if nc is None:
            continue
        if getattr(xc, "nft_handle", 0):
            nc.handle = xc.nft_handle
        else:
            hgen += 1
            nc.handle = xc.nft_handle = hgen
    for xc in chains:
        nc = new.chains.get(xc.name)
        if nc is None or len(nc.rules) != len(xc.rules):
            continue
        for xr, nr in zip(xc.rules, nc.rules):
            if getattr(xr, "nft_handle", 0):
                nr.handle = xr.nft_handle
            else:
                hgen += 1
                nr.handle = xr.nft_handle = hgen
    new.hgen = max([hgen] + [c.handle for c in new.chains.values()] +
                   [r.handle for c in new.chains.values() for r in c.rules])


def apply_synced(net: Any, st: XtState, table: str, change: Callable[[XtState], str],
                 writes: bool) -> tuple[XtState, str]:
    """Run ``change`` on a copy of ``st``; when it ``writes``, push the table to nftables.
    Returns the state to keep and the command's output."""
    pull_counters(net, st)
    new = copy.deepcopy(st)
    out = change(new)
    if writes:
        push_table(net, new, table)
    return new, out
