"""IPv6 defragmentation before conntrack (net/ipv6/netfilter/nf_defrag_ipv6_hooks.c,
nf_conntrack_reasm.c).

Conntrack needs whole datagrams, so ``nf_ct_netns_get`` for IPv6 registers
``ipv6_defrag`` at PRE_ROUTING and LOCAL_OUT with priority ``NF_IP6_PRI_CONNTRACK_DEFRAG``
(-400), counted like IPv4's defrag (:mod:`netstack.netfilter.defrag`).

* A packet already tracked (not a template) or UNTRACKED passes.  Otherwise
  ``nf_ct_frag6_gather`` runs with the user ``IP6_DEFRAG_CONNTRACK_IN + zone`` at
  PRE_ROUTING and ``IP6_DEFRAG_CONNTRACK_OUT + zone`` at LOCAL_OUT (``nf_ct6_defrag_user``).
* ``nf_ct_frag6_gather``: a jumbogram (payload length 0), a packet without a fragment
  header (``find_prev_fhdr`` fails: no fragment header behind the extension headers) or a
  first fragment not carrying the whole upper-layer header
  (``ipv6frag_thdr_truncated``) pass untouched (conntrack then calls them invalid and the
  local reassembly, if they get there, answers them).  A queue that cannot be created
  (memory above ``nf_conntrack_frag6_high_thresh``) drops the fragment (NF_DROP).
* ``nf_ct_frag6_queue``: unlike the local reassembly no ICMP is ever sent from here:
  an offset beyond 65535, a second or shorter last fragment, data past the last
  fragment or an empty fragment drop this fragment only (NF_DROP, the queue stays); an
  overlap kills the queue and drops the fragment; an exact duplicate is freed (DUP_FRAG)
  and reported as queued; a non-final fragment whose length is not a multiple of 8 kills
  the queue and the fragment itself *continues* unchanged (``-EPROTO`` → accept) so that
  ip6_input's reassembly sends the parameter problem.  Every fragment of an atomic
  datagram (offset 0, M = 0) completes a queue at once: the fragment header disappears.
* The fragment that completes the datagram becomes it (``inet_frag_reasm_prepare``'s
  morph) and the traversal continues: ``ignore_df``, ``IP6CB(skb)->frag_max_size`` = 40 +
  the largest fragment payload length, ``IP6SKB_FRAGMENTED``, and the received fragments
  kept as the skb's ``frag_list`` (no coalescing; ``pkt.frag_pieces`` here).  Output
  refragments when the datagram exceeds ``frag_max_size`` (``ip6_finish_output``);
  ``ip6_fragment`` sends "packet too big" when ``frag_max_size`` exceeds the route MTU,
  otherwise uses ``mtu = max(frag_max_size, 1280)`` and, when every received piece fits
  and all but the last are multiples of 8, its frag_list fast path: the output fragments
  have the received geometry, with a new identification (``ipv6_select_ident``).
* Queues time out after ``nf_conntrack_frag6_timeout`` seconds (default 60) with the same
  ``ip6frag_expire_frag_queue`` as local reassembly (ICMPv6 time exceeded when the first
  fragment came, ReasmFails/ReasmTimeout); memory is bounded by
  ``nf_conntrack_frag6_high_thresh``.  The conntrack queues are separate from the local
  ones (their own ``fqdir``), so the reassembled datagram delivered locally is not
  reassembled twice.
* MIB: the conntrack path counts no ReasmReqds/ReasmOKs (only the expiry's counters).
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.sysctl import SysctlError
from netstack.ipv6 import reassembly as r6
from netstack.netfilter.defrag import defrag_hooks_get, defrag_hooks_put
from netstack.netfilter.core import (NF_ACCEPT, NF_DROP, NF_INET_PRE_ROUTING,
                                     NF_IP_PRI_CONNTRACK_DEFRAG, NF_STOLEN, NFPROTO_IPV6,
                                     NfHookState, nf_net)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.sysctl import OnWrite
    from netstack.packet.skb import Packet

NF_IP6_PRI_CONNTRACK_DEFRAG = NF_IP_PRI_CONNTRACK_DEFRAG

_P = "net.netfilter."
#: ``nf_ct_frag6_sysctl_table`` defaults (measured on Linux 6.18: 60, 4194304, 3145728).
FRAG6_SYSCTL_DEFAULTS = {"nf_conntrack_frag6_timeout": 60,
                         "nf_conntrack_frag6_high_thresh": 4 * 1024 * 1024,
                         "nf_conntrack_frag6_low_thresh": 3 * 1024 * 1024}

EINPROGRESS = -115
EINVAL = -22
ENOMEM = -12
EPROTO = -71

_EXT = frozenset((0, 43, 60, 51, 50, 135, 139, 140, 253, 254))


def frag6_sysctl_init(net: "Net") -> None:
    """Register ``net.netfilter.nf_conntrack_frag6_*`` (idempotent).

    ``nf_ct_frag6_sysctl_init`` (net/ipv6/netfilter/nf_conntrack_reasm.c) gives both
    thresholds ``proc_doulongvec_minmax`` with the other one as bound — low_thresh's
    ``extra2`` is &high_thresh, high_thresh's ``extra1`` is &low_thresh — so a write that
    would leave low_thresh > high_thresh fails with EINVAL and changes nothing (measured on
    6.18: low 5000000 over high 4194304 and high 1000 under low 3145728 are refused, equal
    values and 0/0 accepted); negative values are EINVAL as for any unsigned long."""
    tbl = net.sysctl
    low, high = _P + "nf_conntrack_frag6_low_thresh", _P + "nf_conntrack_frag6_high_thresh"
    for name, default in FRAG6_SYSCTL_DEFAULTS.items():
        if _P + name not in tbl:
            tbl.register(_P + name, default, 0, None,
                         on_write=_thresh_pair(net, low, high)
                         if _P + name in (low, high) else None)


def _thresh_pair(net: "Net", low_key: str, high_key: str) -> "OnWrite":
    """A write hook keeping ``low_key <= high_key``: the bounds check of
    ``proc_doulongvec_minmax`` against the other knob, run before anything is stored —
    here the hook runs after the store, so a refused value is put back before EINVAL."""

    def hook(key: str, old: Any, new: Any) -> None:
        vals = net.sysctl.values
        if vals[low_key] > vals[high_key]:
            vals[key] = old
            raise SysctlError(key, errno.EINVAL)
    return hook


class _NfFrags:
    """Holder of the conntrack queues of a namespace (``nf_frag_pernet``)."""

    def __init__(self) -> None:
        self.frags: dict[tuple, r6.FragQueue] = {}
        self.mem = 0


def nf_frag6_dir(net: "Net") -> r6.Frag6Dir:
    """The conntrack reassembly ``fqdir`` of ``net``."""
    st = nf_net(net)
    holder = st.frag6
    if holder is None:
        holder = _NfFrags()
        st.frag6 = holder
        frag6_sysctl_init(net)
    return r6.Frag6Dir(net, holder, "frags", "mem", _P + "nf_conntrack_frag6_timeout",
                       _P + "nf_conntrack_frag6_high_thresh", False)


def find_prev_fhdr(buf: Any, o: int, end: int) -> tuple[int, int] | None:
    """``find_prev_fhdr``: (offset of the next-header byte pointing at the fragment
    header, offset of the fragment header), or None."""
    nexthdr = buf[o + 6]
    prev_nhoff = o + 6
    start = o + 40
    length = end - start
    while nexthdr != 44:
        if nexthdr not in _EXT or nexthdr == 59:
            return None
        if length < 2:
            return None
        hl = ((buf[start + 1] + 2) << 2) if nexthdr == 51 else ((buf[start + 1] + 1) << 3)
        prev_nhoff = start
        nexthdr = buf[start]
        length -= hl
        start += hl
    if length < 0:
        return None
    return prev_nhoff, start


def nf_ct6_defrag_user(hooknum: int, pkt: "Packet") -> int:
    """``nf_ct6_defrag_user``: per hook and conntrack zone."""
    zone_id = 0
    v = pkt.ct
    if v is not None and v[0] is not None:
        from netstack.netfilter.conntrack import ctinfo2dir
        zone_id = v[0].zone.id_for(ctinfo2dir(v[1]))
    base = (r6.IP6_DEFRAG_CONNTRACK_IN if hooknum == NF_INET_PRE_ROUTING
            else r6.IP6_DEFRAG_CONNTRACK_OUT)
    return base + zone_id


def _nf_ct_frag6_queue(d: r6.Frag6Dir, fq: r6.FragQueue, pkt: "Packet", fhoff: int,
                       nhoff: int) -> int:
    """``nf_ct_frag6_queue`` + the reassembly step: 0 (``pkt`` is now the datagram),
    EINPROGRESS (held, or freed as a duplicate / by a failed reassembly), EINVAL (the
    caller drops ``pkt``) or EPROTO (queue killed, ``pkt`` continues unchanged)."""
    buf = pkt.buf
    o = pkt.network_header
    if fq.flags & r6.COMPLETE:
        return EINVAL
    plen = (buf[o + 4] << 8) | buf[o + 5]
    frag_off = (buf[fhoff + 2] << 8) | buf[fhoff + 3]
    offset = frag_off & 0xFFF8
    end = offset + (plen - (fhoff + 8 - (o + 40)))
    if end > r6.IPV6_MAXPLEN:
        return EINVAL
    if not frag_off & 1:
        if end < fq.length or (fq.flags & r6.LAST_IN and end != fq.length):
            return EINVAL
        fq.flags |= r6.LAST_IN
        fq.length = end
    else:
        if end & 7:
            r6.frag6_kill(d, fq)
            return EPROTO
        if end > fq.length:
            if fq.flags & r6.LAST_IN:
                return EINVAL
            fq.length = end
    if end == offset or pkt.tail - (fhoff + 8) < end - offset:
        return EINVAL
    res = r6.frag6_insert(d, fq, pkt, fhoff, offset, end)
    if res == r6.INSERT_DUP:
        kfree_skb_reason(pkt, "DUP_FRAG", d.net)
        return EINPROGRESS
    if res == r6.INSERT_OVERLAP:
        r6.frag6_kill(d, fq)
        return EINVAL
    if offset == 0:
        fq.nhoffset = nhoff - o
        fq.flags |= r6.FIRST_IN
    if r6.frag6_complete(fq):
        max_size = fq.max_size
        pieces = tuple(e - s for s, e, _ in fq.frags)
        if not r6.frag6_reasm(d, fq, pkt):
            return EINPROGRESS
        _mark_reassembled(pkt, 40 + max_size, pieces)
        return 0
    pkt.dst = None
    return EINPROGRESS


def _mark_reassembled(pkt: "Packet", frag_max_size: int, pieces: tuple[int, ...]) -> None:
    """``skb->ignore_df = 1``, ``IP6CB(skb)->frag_max_size``, ``IP6SKB_FRAGMENTED``, and
    the fragments' data lengths in offset order: the reassembled skb keeps them as its
    ``frag_list`` (``inet_frag_reasm_finish`` without coalescing), which ip6_fragment's
    fast path reuses as the output geometry (``pkt.frag_pieces``)."""
    from netstack.ipv6.ip6_input import Ip6Cb
    cb = pkt.cb
    if not isinstance(cb, Ip6Cb):
        cb = Ip6Cb(pkt.dev.ifindex if pkt.dev is not None else 0)
        pkt.cb = cb
    cb.frag_max_size = frag_max_size
    cb.fragmented = True
    pkt.ignore_df = True  # type: ignore[attr-defined]
    pkt.frag_pieces = pieces  # type: ignore[attr-defined]
    if pkt.trace is not None:
        pkt.trace.event(pkt, "nf_ct_frag6_reasm", info=f"len={pkt.tail - pkt.data}")


def nf_ct_frag6_gather(net: "Net", pkt: "Packet", user: int) -> int:
    """``nf_ct_frag6_gather``: 0 (continue with ``pkt``: not a fragment, or now the
    whole datagram), EINPROGRESS (stolen), or a negative errno (drop)."""
    buf = pkt.buf
    o = pkt.network_header if pkt.network_header >= 0 else pkt.data
    end = pkt.tail
    if end - o < 40 or ((buf[o + 4] << 8) | buf[o + 5]) == 0:
        return 0
    found = find_prev_fhdr(buf, o, end)
    if found is None:
        return 0
    nhoff, fhoff = found
    if fhoff + 8 > end:
        return ENOMEM
    frag_off = (buf[fhoff + 2] << 8) | buf[fhoff + 3]
    if not frag_off & 0xFFF8 and r6.thdr_truncated(buf, fhoff + 8, end, buf[fhoff], True):
        return 0
    pkt.sk = None  # skb_orphan
    d = nf_frag6_dir(net)
    ident = int.from_bytes(buf[fhoff + 4:fhoff + 8], "big")
    key = r6.frag6_key(buf, o, ident, user, pkt.dev.ifindex if pkt.dev is not None else 0)
    fq = r6.frag6_find(d, key, r6.frag6_expire)
    if fq is None:
        return ENOMEM
    ret = _nf_ct_frag6_queue(d, fq, pkt, fhoff, nhoff)
    if ret == EPROTO:
        return 0
    return ret


def ipv6_defrag(priv: Any, pkt: "Packet", state: NfHookState) -> int:
    """``ipv6_defrag``: the hook function."""
    from netstack.netfilter.conntrack import IPS_TEMPLATE
    v = pkt.ct
    if v is not None:
        c = v[0]
        if c is None or not c.status & IPS_TEMPLATE:
            return NF_ACCEPT
    if state.net.ipv6 is None:
        return NF_ACCEPT
    err = nf_ct_frag6_gather(state.net, pkt, nf_ct6_defrag_user(state.hook, pkt))
    if err == EINPROGRESS:
        return NF_STOLEN
    return NF_ACCEPT if err == 0 else NF_DROP


def nf_defrag_ipv6_enable(net: "Net") -> None:
    """``nf_defrag_ipv6_enable``: register the two hooks once per namespace (counted)."""
    defrag_hooks_get(net, "defrag6", ipv6_defrag, NFPROTO_IPV6, NF_IP6_PRI_CONNTRACK_DEFRAG,
                     "ipv6_defrag", on_first=nf_frag6_dir)


def nf_defrag_ipv6_disable(net: "Net") -> None:
    """``nf_defrag_ipv6_disable``: drop one user; the hooks go with the last one."""
    defrag_hooks_put(net, "defrag6")


def nf_defrag6_enabled(net: "Net") -> bool:
    st = net.__dict__.get("nf")
    return bool(st is not None and st.defrag6_users)
