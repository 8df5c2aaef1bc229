"""IPv4 defragmentation before conntrack (net/ipv4/netfilter/nf_defrag_ipv4.c).

Conntrack can only track whole datagrams: a non-first fragment carries no ports.  So when
conntrack is enabled in a namespace (``nf_ct_netns_get`` → ``nf_defrag_ipv4_enable``) a
hook at PRE_ROUTING and LOCAL_OUT with priority ``NF_IP_PRI_CONNTRACK_DEFRAG`` (-400, before
raw at -300 and conntrack at -200) gathers fragments:

* ``ipv4_conntrack_defrag``: a packet already tracked (not a template) or UNTRACKED
  (``notrack`` in a -450 raw chain) passes untouched; a fragment is queued with
  ``ip_defrag(net, skb, user)`` where ``user`` is ``IP_DEFRAG_CONNTRACK_IN + zone`` at
  PRE_ROUTING and ``IP_DEFRAG_CONNTRACK_OUT + zone`` at LOCAL_OUT (``nf_ct_defrag_user``),
  so these queues never mix with local delivery's (``IP_DEFRAG_LOCAL_DELIVER``) ones.
  While the datagram is incomplete the hook returns NF_STOLEN (the fragment is held, or
  was freed by the queue on error); the fragment that completes it *becomes* the
  reassembled datagram (the kernel's ``skb_morph`` in ``ip_frag_reasm``) and the
  traversal goes on with NF_ACCEPT.
* The reassembled skb gets ``ignore_df`` (``nf_ct_ipv4_gather_frags``) and
  ``frag_max_size`` = the largest fragment seen (``IPCB(skb)->frag_max_size`` set by
  ``ip_frag_reasm``), which the output path uses to refragment with the original
  fragment size (``ip_do_fragment``: ``mtu = min(mtu, frag_max_size)``; ``ip_fragment``:
  a DF datagram whose ``frag_max_size`` exceeds the MTU gets "fragmentation needed").
  Both live in the packet's cold ``__dict__`` as ``pkt.frag_max_size`` / ``pkt.ignore_df``.
  The received fragments stay the reassembled skb's ``frag_list`` (``ip_frag_reasm``
  coalesces only for local delivery), so ``ip_do_fragment``'s fast path sends them with
  their received sizes when each fits (``pkt.frag_pieces``; 3 fragments of 1000, 496 and
  1328 bytes of payload leave as such, not re-cut at ``frag_max_size``).
* A conntrack queue that times out frees its fragments; it answers with ICMP "fragment
  reassembly time exceeded" only when the datagram was for this host
  (``ip_expire``: ``frag_expire_skip_icmp(user)`` and ``rt_type != RTN_LOCAL``).

The queue logic itself (RFC 5722 overlap handling, ECN merging, memory limits,
``ipfrag_max_dist``) is :mod:`netstack.ipv4.ip_fragment`'s; only the queue key (which
carries the defrag user) and the expiry differ.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.netfilter.core import (NF_ACCEPT, NF_INET_LOCAL_OUT, NF_INET_PRE_ROUTING,
                                     NF_IP_PRI_CONNTRACK_DEFRAG, NF_STOLEN, NFPROTO_IPV4,
                                     NfHookOps, NfHookState, nf_net, nf_register_net_hook,
                                     nf_unregister_net_hook)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

#: ``enum ip_defrag_users`` (include/net/ip.h).
IP_DEFRAG_LOCAL_DELIVER = 0
IP_DEFRAG_CALL_RA_CHAIN = 1
IP_DEFRAG_CONNTRACK_IN = 2
IP_DEFRAG_CONNTRACK_OUT = IP_DEFRAG_CONNTRACK_IN + 0xFFFF + 1

IP_MF = 0x2000
IP_OFFSET = 0x1FFF

#: True once netstack/ipv4/ip_output.py and ip_forward.py honour ``pkt.frag_max_size``
#: (see the NF4 report's patch): refragmentation with a fragment size *smaller* than the
#: MTU needs it; fragments made at the MTU come out identical either way.
FRAG_MAX_SIZE_HONOURED = True


def nf_ct_defrag_user(hooknum: int, pkt: "Packet") -> int:
    """``nf_ct_defrag_user``: the queue owner, per hook and conntrack zone (a zone
    template attached by ``ct zone set`` in a raw chain before -400 is not seen here, as
    in the kernel where raw runs at -300)."""
    zone_id = 0
    v = pkt.ct
    if v is not None and v[0] is not None:
        from netstack.netfilter.conntrack import ctinfo2dir
        zone_id = v[0].zone.id_for(ctinfo2dir(v[1]))
    base = IP_DEFRAG_CONNTRACK_IN if hooknum == NF_INET_PRE_ROUTING else IP_DEFRAG_CONNTRACK_OUT
    return base + zone_id


def _ct_expire(q: Any) -> None:
    """``ip_expire`` for a conntrack queue: ICMP only for a datagram addressed to us."""
    from netstack.ipv4.fib import inet_addr_type
    from netstack.ipv4.ip_fragment import INET_FRAG_COMPLETE, inet_frag_kill, ip_expire
    net = q.net
    if q.flags & INET_FRAG_COMPLETE or net.ipv4 is None:
        return
    _, _, daddr, _, _ = q.key
    from netstack.ipv4.devinet import RTN_LOCAL
    if inet_addr_type(net, daddr) == RTN_LOCAL:
        ip_expire(q)
        return
    mib = net.ipv4.mib
    mib["IpReasmFails"] += 1
    mib["IpReasmTimeout"] += 1
    inet_frag_kill(q, "FRAG_REASM_TIMEOUT")


def nf_ct_ipv4_gather_frags(net: "Net", pkt: "Packet", user: int) -> bool:
    """``ip_defrag(net, skb, user)`` + ``nf_ct_ipv4_gather_frags``: True when ``pkt`` was
    taken (queued or freed); False when it now holds the whole datagram."""
    from netstack.ipv4.ip_fragment import Ipq, ip_frag_queue
    ipv4 = net.ipv4
    mib = ipv4.mib
    mib["IpReasmReqds"] += 1
    pkt.sk = None  # skb_orphan
    buf = pkt.buf
    nh = pkt.network_header
    vals = net.sysctl.values
    high = vals["net.ipv4.ipfrag_high_thresh"]
    if not high or ipv4.frag_mem > high:
        mib["IpReasmFails"] += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return True
    saddr = bytes(buf[nh + 12:nh + 16])
    key = (bytes(buf[nh + 4:nh + 6]), saddr, bytes(buf[nh + 16:nh + 20]), buf[nh + 9],
           ("nf_defrag", user))
    q = ipv4.frags.get(key)
    if q is None:
        peer = ipv4.inet_getpeer(saddr) if vals["net.ipv4.ipfrag_max_dist"] else None
        q = Ipq(net, key, peer)
        q.timer = net.world.clock.timer(_ct_expire, q)
        ipv4.frags[key] = q
        q.timer.mod_in(vals["net.ipv4.ipfrag_time"] * 1_000_000_000)
    before = [(s, e) for s, e, _ in q.fragments()]
    ihl = (buf[nh] & 0x0F) << 2
    off = (((buf[nh + 6] << 8) | buf[nh + 7]) & IP_OFFSET) << 3
    this = (off, off + ((buf[nh + 2] << 8) | buf[nh + 3]) - ihl)
    new = ip_frag_queue(q, pkt)
    if new is None:
        return True
    _morph(pkt, new, max(q.max_df_size, q.max_size))
    # the reassembled skb keeps its fragments as frag_list (no coalescing for conntrack's
    # queues): ip_do_fragment's fast path reuses their sizes
    pkt.frag_pieces = tuple(e - s for s, e in sorted(before + [this]))  # type: ignore
    return False


def _morph(pkt: "Packet", new: "Packet", frag_max_size: int) -> None:
    """``skb_morph``: the completing fragment's skb becomes the reassembled datagram, so
    the hook traversal that is running on it continues with the whole datagram."""
    pkt.buf = new.buf
    pkt.head = new.head
    pkt.data = new.data
    pkt.tail = new.tail
    pkt.mac_header = new.mac_header
    pkt.network_header = new.network_header
    pkt.transport_header = new.transport_header
    pkt.ip_summed = new.ip_summed
    pkt.csum = new.csum
    pkt.frag_max_size = frag_max_size  # type: ignore[attr-defined]
    pkt.ignore_df = True  # type: ignore[attr-defined]


def ipv4_conntrack_defrag(priv: Any, pkt: "Packet", state: NfHookState) -> int:
    """``ipv4_conntrack_defrag``: the hook function."""
    from netstack.netfilter.conntrack import IPS_TEMPLATE
    v = pkt.ct
    if v is not None:
        c = v[0]
        if c is None or not c.status & IPS_TEMPLATE:
            return NF_ACCEPT  # already tracked (loopback) or untracked
    sk = pkt.sk
    if sk is not None and getattr(sk, "nodefrag", False):
        return NF_ACCEPT  # IP_NODEFRAG raw socket
    if state.net.ipv4 is None:
        return NF_ACCEPT  # no IPv4 layer to reassemble with: conntrack sees a fragment
    nh = pkt.network_header if pkt.network_header >= 0 else pkt.data
    if nh + 20 > pkt.tail:
        return NF_ACCEPT
    buf = pkt.buf
    if not ((buf[nh + 6] << 8) | buf[nh + 7]) & (IP_MF | IP_OFFSET):
        return NF_ACCEPT
    # ip_rcv_core / raw_send_hdrinc validated this header before the hook in the kernel;
    # a caller that hands us a malformed one gets it passed on for conntrack to call
    # invalid rather than queued.
    ihl = (buf[nh] & 0x0F) << 2
    tot = (buf[nh + 2] << 8) | buf[nh + 3]
    if buf[nh] >> 4 != 4 or ihl < 20 or tot < ihl or nh + tot != pkt.tail:
        return NF_ACCEPT
    if nf_ct_ipv4_gather_frags(state.net, pkt, nf_ct_defrag_user(state.hook, pkt)):
        return NF_STOLEN
    return NF_ACCEPT


def defrag_hooks_get(net: "Net", key: str, fn: Any, pf: int, prio: int, name: str,
                     on_first: Any = None) -> None:
    """The counted registration nf_defrag_ipv4_enable and nf_defrag_ipv6_enable share
    (net/ipv4/netfilter/nf_defrag_ipv4.c, net/ipv6/netfilter/nf_defrag_ipv6_hooks.c):
    the first user of the namespace registers ``fn`` at PRE_ROUTING and LOCAL_OUT with
    priority ``prio`` (after ``on_first`` set up what the hook needs), later users only
    count.  ``key`` ("defrag4"/"defrag6") names the per-namespace counter and ops."""
    st = nf_net(net)
    users = getattr(st, key + "_users") + 1
    setattr(st, key + "_users", users)
    if users > 1:
        return
    if on_first is not None:
        on_first(net)
    ops = [NfHookOps(fn, pf, NF_INET_PRE_ROUTING, prio, name=name),
           NfHookOps(fn, pf, NF_INET_LOCAL_OUT, prio, name=name)]
    for o in ops:
        nf_register_net_hook(net, o)
    setattr(st, key + "_ops", ops)


def defrag_hooks_put(net: "Net", key: str) -> None:
    """The disable half of :func:`defrag_hooks_get`: drop one user; the hooks go with
    the last one (a disable without users does nothing)."""
    st = nf_net(net)
    users = getattr(st, key + "_users")
    if users <= 0:
        return
    users -= 1
    setattr(st, key + "_users", users)
    if users == 0:
        for o in getattr(st, key + "_ops"):
            nf_unregister_net_hook(net, o)
        setattr(st, key + "_ops", [])


def nf_defrag_ipv4_enable(net: "Net") -> None:
    """``nf_defrag_ipv4_enable``: register the two hooks once per namespace (counted)."""
    defrag_hooks_get(net, "defrag4", ipv4_conntrack_defrag, NFPROTO_IPV4,
                     NF_IP_PRI_CONNTRACK_DEFRAG, "ipv4_conntrack_defrag")


def nf_defrag_ipv4_disable(net: "Net") -> None:
    """``nf_defrag_ipv4_disable``: drop one user; the hooks go with the last one."""
    defrag_hooks_put(net, "defrag4")


def nf_defrag_enabled(net: "Net") -> bool:
    st = net.__dict__.get("nf")
    return bool(st is not None and st.defrag4_users)
