"""NAT core: bindings, tuple selection and packet mangling.

net/netfilter/nf_nat_core.c, nf_nat_proto.c, nf_nat_masquerade.c, nf_nat_redirect.c:

* ``nf_nat_setup_info`` picks a unique tuple (``get_unique_tuple``): for SNAT first the
  original tuple if it is in range and unused, or the mapping an earlier connection from
  the same source got (``find_appropriate_src``, the bysource table); then the address
  chosen by ``find_best_ips_proto`` (jhash of the addresses, ``reciprocal_scale``); then the
  port/id searched from a random offset in at most 128 attempts, halving the window each
  round (``nf_nat_l4proto_unique_tuple``).  The reply tuple becomes the inverse of the new
  tuple, so replies match the entry and are translated back.
* ``nf_nat_packet`` rewrites a packet when the ct's status says its direction needs it
  (``IPS_SRC_NAT``/``IPS_DST_NAT``, swapped for the reply direction), with incremental
  checksum updates (RFC 1624) of the IPv4 header and the L4 pseudo-header (or the pseudo
  sum only, for CHECKSUM_PARTIAL packets), UDP's zero checksum kept (``CSUM_MANGLED_0``
  for a computed zero), SCTP's CRC32c recomputed.
* ICMP errors (RELATED) get their quoted packet translated with the opposite manip and the
  outer header made to look like a reply (``nf_nat_icmp_reply_translation``).
* NAT hooks: nat-type base chains are not ordinary hooks; they hang off one NAT hook per
  family/hook at the fixed priorities (-100 DNAT at PRE_ROUTING/LOCAL_OUT, 100 SNAT at
  POST_ROUTING/LOCAL_IN) and run, in chain-priority order, only for the first packet of a
  connection (``nf_nat_inet_fn``); connections no chain bound get a null binding.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from netstack.errors import KernelError, NotSupported
from netstack.netfilter import conntrack as nfct
from netstack.netfilter.conntrack import (IP_CT_NEW, IP_CT_RELATED, IP_CT_RELATED_REPLY,
                                          IPS_DST_NAT, IPS_DST_NAT_DONE, IPS_NAT_MASK,
                                          IPS_SRC_NAT, IPS_SRC_NAT_DONE, NfConn, ct_net,
                                          ctinfo2dir, nf_ct_get, nf_ct_netns_get,
                                          nf_ct_netns_put)
from netstack.netfilter.conntrack_tuple import (IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY,
                                                IPPROTO_DCCP, IPPROTO_ICMP, IPPROTO_ICMPV6,
                                                IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP,
                                                IPPROTO_UDPLITE, CtTuple, invert)
from netstack.netfilter.core import (NF_ACCEPT, NF_DROP, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT,
                                     NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING,
                                     NF_IP_PRI_NAT_DST, NF_IP_PRI_NAT_SRC, NFPROTO_INET,
                                     NFPROTO_IPV4, NFPROTO_IPV6, NfHookOps, NfHookState,
                                     nf_net, nf_register_net_hook, nf_unregister_net_hook)
from netstack.packet.checksum import (_reduce, csum_fold, csum_partial, csum_replace2,
                                      csum_replace4, csum_replace_bytes)
from netstack.packet.jhash import jhash2
from netstack.packet.skb import CHECKSUM_PARTIAL

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb import Packet

NF_NAT_MANIP_SRC = 0
NF_NAT_MANIP_DST = 1

# enum nf_nat_range flags (include/uapi/linux/netfilter/nf_nat.h)
NF_NAT_RANGE_MAP_IPS = 1 << 0
NF_NAT_RANGE_PROTO_SPECIFIED = 1 << 1
NF_NAT_RANGE_PROTO_RANDOM = 1 << 2
NF_NAT_RANGE_PERSISTENT = 1 << 3
NF_NAT_RANGE_PROTO_RANDOM_FULLY = 1 << 4
NF_NAT_RANGE_PROTO_OFFSET = 1 << 5
NF_NAT_RANGE_NETMAP = 1 << 6
NF_NAT_RANGE_PROTO_RANDOM_ALL = NF_NAT_RANGE_PROTO_RANDOM | NF_NAT_RANGE_PROTO_RANDOM_FULLY

NF_NAT_MAX_ATTEMPTS = 128
CSUM_MANGLED_0 = 0xFFFF
_PORT_PROTOS = (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, IPPROTO_SCTP, IPPROTO_DCCP)


@dataclass
class NfNatRange:
    """``struct nf_nat_range2``.  Addresses are bytes (4 or 16); ports/ids host order."""

    flags: int = 0
    min_addr: bytes = b""
    max_addr: bytes = b""
    min_proto: int = 0
    max_proto: int = 0
    base_proto: int = 0


def hook2manip(hooknum: int) -> int:
    """``HOOK2MANIP``: SNAT at POST_ROUTING/LOCAL_IN, DNAT at PRE_ROUTING/LOCAL_OUT."""
    return (NF_NAT_MANIP_SRC if hooknum not in (NF_INET_PRE_ROUTING, NF_INET_LOCAL_OUT)
            else NF_NAT_MANIP_DST)


def nf_nat_initialized(ct: NfConn, manip: int) -> bool:
    return bool(ct.status & (IPS_SRC_NAT_DONE if manip == NF_NAT_MANIP_SRC
                             else IPS_DST_NAT_DONE))


# ---- per-namespace NAT state ------------------------------------------------------------
@dataclass
class NatNet:
    """Bysource table and the NAT hooks' chain lists of one namespace."""

    bysource: dict[tuple, list[NfConn]] = field(default_factory=dict)
    #: (pf, hooknum) -> [(priority, seq, fn)], fn(pkt, state) -> verdict
    chains: dict[tuple[int, int], list[tuple[int, int, Callable]]] = field(default_factory=dict)
    ops: dict[tuple[int, int], NfHookOps] = field(default_factory=dict)
    seq: int = 0


def nat_net(net: "Net") -> NatNet:
    st = nf_net(net)
    nn = st.__dict__.get("nat")
    if nn is None:
        nn = NatNet()
        st.nat = nn  # type: ignore[attr-defined]
        cn = ct_net(net)
        cn.listeners.append(lambda kind, ct: _forget(nn, kind, ct))
    return nn


def _src_key(t: CtTuple, ct: NfConn) -> tuple:
    return (t.l3num, t.protonum, t.src, t.sport, ct.zone.id)


def _forget(nn: NatNet, kind: str, ct: NfConn) -> None:
    if kind != nfct.EV_DESTROY or not ct.status & IPS_SRC_NAT_DONE:
        return
    k = _src_key(ct.tuplehash[0], ct)
    lst = nn.bysource.get(k)
    if lst and ct in lst:
        lst.remove(ct)
        if not lst:
            del nn.bysource[k]


# ---- tuple selection --------------------------------------------------------------------
def _addr_int(a: bytes) -> int:
    return int.from_bytes(a, "big")


def _addr_in_range(a: bytes, r: NfNatRange) -> bool:
    return _addr_int(r.min_addr) <= _addr_int(a) <= _addr_int(r.max_addr)


def _l4proto_in_range(t: CtTuple, manip: int, lo: int, hi: int) -> bool:
    if t.protonum in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        return lo <= t.sport <= hi
    if t.protonum in _PORT_PROTOS:
        port = t.sport if manip == NF_NAT_MANIP_SRC else t.dport
        return lo <= port <= hi
    return True


def _in_range(t: CtTuple, r: NfNatRange) -> bool:
    """``nf_nat_inet_in_range`` + ``nf_in_range`` (SNAT: the source side)."""
    if r.flags & NF_NAT_RANGE_MAP_IPS and not _addr_in_range(t.src, r):
        return False
    if not r.flags & NF_NAT_RANGE_PROTO_SPECIFIED:
        return True
    return _l4proto_in_range(t, NF_NAT_MANIP_SRC, r.min_proto, r.max_proto)


def _used(cn: Any, t: CtTuple, ct: NfConn) -> bool:
    """``nf_nat_used_tuple``: would ``t`` as an original tuple clash with another entry?"""
    reply = invert(t)
    return reply is not None and cn.taken(reply, ct.zone, ct)


def _words(a: bytes) -> list[int]:
    """The address as the kernel's ``u32 all[4]`` read in host (little-endian) order."""
    b = a + bytes(16 - len(a))
    return [int.from_bytes(b[i:i + 4], "little") for i in range(0, 16, 4)]


def _find_best_ips(t: CtTuple, r: NfNatRange, ct: NfConn, manip: int) -> CtTuple:
    """``find_best_ips_proto``: hash-spread the address choice over the range."""
    if not r.flags & NF_NAT_RANGE_MAP_IPS:
        return t
    if r.min_addr == r.max_addr:
        return t._replace(src=r.min_addr) if manip == NF_NAT_MANIP_SRC \
            else t._replace(dst=r.min_addr)
    n = len(r.min_addr) // 4
    mx = n - 1
    dstw = _words(t.dst)
    persistent = bool(r.flags & NF_NAT_RANGE_PERSISTENT)
    j = jhash2(_words(t.src), 0 if persistent else (dstw[mx] ^ ct.zone.id) & 0xFFFFFFFF)
    out = []
    full = False
    for i in range(n):
        if not full:
            lo = int.from_bytes(r.min_addr[4 * i:4 * i + 4], "big")
            hi = int.from_bytes(r.max_addr[4 * i:4 * i + 4], "big")
            dist = (hi - lo + 1) & 0xFFFFFFFF
        else:
            lo, dist = 0, 0xFFFFFFFF
        w = (lo + ((j * dist) >> 32)) & 0xFFFFFFFF
        wb = w.to_bytes(4, "big")
        out.append(wb)
        if wb != r.max_addr[4 * i:4 * i + 4]:
            full = True
        if not persistent:
            j ^= dstw[i]
    addr = b"".join(out)
    return t._replace(src=addr) if manip == NF_NAT_MANIP_SRC else t._replace(dst=addr)


def _unique_l4(cn: Any, t: CtTuple, r: NfNatRange, manip: int, ct: NfConn) -> CtTuple:
    """``nf_nat_l4proto_unique_tuple``."""
    p = t.protonum
    icmp = p in (IPPROTO_ICMP, IPPROTO_ICMPV6)
    if icmp:
        cur = t.sport
        if not r.flags & NF_NAT_RANGE_PROTO_SPECIFIED:
            lo, size = 0, 65536
        else:
            lo, size = r.min_proto, r.max_proto - r.min_proto + 1
    elif p in _PORT_PROTOS:
        cur = t.sport if manip == NF_NAT_MANIP_SRC else t.dport
        if not r.flags & NF_NAT_RANGE_PROTO_SPECIFIED:
            if manip == NF_NAT_MANIP_DST:
                return t
            if cur < 1024:
                lo, size = (1, 511) if cur < 512 else (600, 1023 - 600 + 1)
            else:
                lo, size = 1024, 65535 - 1024 + 1
        else:
            lo, hi = r.min_proto, r.max_proto
            if hi < lo:
                lo, hi = hi, lo
            size = hi - lo + 1
    else:
        return t

    def put(v: int) -> CtTuple:
        if icmp or manip == NF_NAT_MANIP_SRC:
            return t._replace(sport=v)
        return t._replace(dport=v)

    if r.flags & NF_NAT_RANGE_PROTO_OFFSET:
        off = (cur - r.base_proto) & 0xFFFF
    elif r.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL or manip != NF_NAT_MANIP_DST:
        off = cn.rng.getrandbits(16)
    else:
        off = 0
    attempts = min(size, NF_NAT_MAX_ATTEMPTS)
    cand = t
    while True:
        for _ in range(attempts):
            cand = put(lo + off % size)
            if not _used(cn, cand, ct):
                return cand
            off += 1
        if attempts >= size or attempts < 16:
            return cand
        attempts //= 2
        off = cn.rng.getrandbits(16)


def _find_appropriate_src(nn: NatNet, t: CtTuple, r: NfNatRange, ct: NfConn) -> CtTuple | None:
    for other in nn.bysource.get(_src_key(t, ct), ()):
        if other is ct or other.status & nfct.IPS_DYING:
            continue
        rep = other.tuplehash[IP_CT_DIR_REPLY]
        res = t._replace(src=rep.dst, sport=rep.dport)
        if _in_range(res, r):
            return res
    return None


def get_unique_tuple(net: "Net", orig: CtTuple, r: NfNatRange, ct: NfConn,
                     manip: int) -> CtTuple:
    """``get_unique_tuple``."""
    cn = ct_net(net)
    nn = nat_net(net)
    if manip == NF_NAT_MANIP_SRC and not r.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL:
        if _in_range(orig, r):
            if not _used(cn, orig, ct):
                return orig
        else:
            found = _find_appropriate_src(nn, orig, r, ct)
            if found is not None and not _used(cn, found, ct):
                return found
    t = _find_best_ips(orig, r, ct, manip)
    if not r.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL:
        if r.flags & NF_NAT_RANGE_PROTO_SPECIFIED:
            if (not r.flags & NF_NAT_RANGE_PROTO_OFFSET
                    and _l4proto_in_range(t, manip, r.min_proto, r.max_proto)
                    and (r.min_proto == r.max_proto or not _used(cn, t, ct))):
                return t
        elif not _used(cn, t, ct):
            return t
    return _unique_l4(cn, t, r, manip, ct)


def nf_nat_setup_info(ct: NfConn, r: NfNatRange, manip: int) -> int:
    """``nf_nat_setup_info``: bind ``ct`` for ``manip``; returns NF_ACCEPT/NF_DROP."""
    if ct.status & nfct.IPS_CONFIRMED:
        return NF_ACCEPT
    if nf_nat_initialized(ct, manip):
        return NF_DROP
    if r.flags & NF_NAT_RANGE_NETMAP:
        raise NotSupported("NAT netmap ranges")
    net = ct.net
    curr = invert(ct.tuplehash[IP_CT_DIR_REPLY])
    assert curr is not None
    new = get_unique_tuple(net, curr, r, ct, manip)
    if new != curr:
        reply = invert(new)
        assert reply is not None
        ct.tuplehash[IP_CT_DIR_REPLY] = reply
        ct.status |= IPS_SRC_NAT if manip == NF_NAT_MANIP_SRC else IPS_DST_NAT
    if manip == NF_NAT_MANIP_SRC:
        nn = nat_net(net)
        nn.bysource.setdefault(_src_key(ct.tuplehash[0], ct), []).append(ct)
        ct.status |= IPS_SRC_NAT_DONE
    else:
        ct.status |= IPS_DST_NAT_DONE
    return NF_ACCEPT


def nf_nat_alloc_null_binding(ct: NfConn, hooknum: int) -> int:
    """``nf_nat_alloc_null_binding``: bind to the address the flow already uses, so later
    connections cannot take this tuple."""
    manip = hook2manip(hooknum)
    rep = ct.tuplehash[IP_CT_DIR_REPLY]
    ip = rep.dst if manip == NF_NAT_MANIP_SRC else rep.src
    return nf_nat_setup_info(ct, NfNatRange(NF_NAT_RANGE_MAP_IPS, ip, ip), manip)


# ---- packet mangling ------------------------------------------------------------------
def _proto_csum_replace(buf: bytearray, at: int, old: bytes, new: bytes, partial: bool,
                        pseudo: bool) -> None:
    """``inet_proto_csum_replace{2,4,16}`` on the 16-bit field at ``at``."""
    check = int.from_bytes(buf[at:at + 2], "big")
    if not partial:
        if len(old) == 4:
            check = csum_replace4(check, int.from_bytes(old, "big"), int.from_bytes(new, "big"))
        elif len(old) == 2:
            check = csum_replace2(check, int.from_bytes(old, "big"), int.from_bytes(new, "big"))
        else:
            check = csum_replace_bytes(check, old, new)
    elif pseudo:
        s = _reduce(check + (~_reduce(int.from_bytes(old, "big")) & 0xFFFF)
                    + _reduce(int.from_bytes(new, "big")))
        check = s & 0xFFFF
    else:
        return
    buf[at:at + 2] = check.to_bytes(2, "big")


def _l4_manip(buf: bytearray, l4: int, end: int, l3num: int, proto: int, old_addr: bytes,
              new_addr: bytes, target: CtTuple, manip: int, partial: bool) -> bool:
    """``l4proto_manip_pkt``; the L4 header may be truncated to 8 bytes (ICMP quotes)."""
    avail = end - l4
    if proto in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, IPPROTO_SCTP, IPPROTO_DCCP):
        if avail < 8:
            return False
        po = l4 if manip == NF_NAT_MANIP_SRC else l4 + 2
        newport = (target.sport if manip == NF_NAT_MANIP_SRC else target.dport).to_bytes(2, "big")
        oldport = bytes(buf[po:po + 2])
        if proto == IPPROTO_TCP:
            if avail >= 20:
                _proto_csum_replace(buf, l4 + 16, old_addr, new_addr, partial, True)
                _proto_csum_replace(buf, l4 + 16, oldport, newport, partial, False)
        elif proto in (IPPROTO_UDP, IPPROTO_UDPLITE):
            if buf[l4 + 6:l4 + 8] != b"\0\0" or partial or l3num == NFPROTO_IPV6 or \
                    proto == IPPROTO_UDPLITE:
                _proto_csum_replace(buf, l4 + 6, old_addr, new_addr, partial, True)
                _proto_csum_replace(buf, l4 + 6, oldport, newport, partial, False)
                if buf[l4 + 6:l4 + 8] == b"\0\0":
                    buf[l4 + 6:l4 + 8] = CSUM_MANGLED_0.to_bytes(2, "big")
        buf[po:po + 2] = newport
        if proto == IPPROTO_SCTP and avail >= 12 and not partial:
            from netstack.packet.crc32c import sctp_set_checksum
            sctp_set_checksum(buf, l4, end)
        return True
    if proto == IPPROTO_ICMP and l3num == NFPROTO_IPV4:
        if avail < 8:
            return False
        if buf[l4] in (0, 8, 13, 14, 15, 16, 17, 18):
            newid = target.sport.to_bytes(2, "big")
            _proto_csum_replace(buf, l4 + 2, bytes(buf[l4 + 4:l4 + 6]), newid, partial, False)
            buf[l4 + 4:l4 + 6] = newid
        return True
    if proto == IPPROTO_ICMPV6 and l3num == NFPROTO_IPV6:
        if avail < 8:
            return False
        _proto_csum_replace(buf, l4 + 2, old_addr, new_addr, partial, True)
        if buf[l4] in (128, 129):
            newid = target.sport.to_bytes(2, "big")
            _proto_csum_replace(buf, l4 + 2, bytes(buf[l4 + 4:l4 + 6]), newid, partial, False)
            buf[l4 + 4:l4 + 6] = newid
        return True
    return True


def nf_nat_manip_pkt(buf: bytearray, nh: int, end: int, l3num: int, target: CtTuple,
                     manip: int, partial: bool = False) -> bool:
    """``nf_nat_ipv{4,6}_manip_pkt``: rewrite the L3 header at ``nh`` (and its L4 header
    unless it is a non-first fragment) towards ``target``.  False if too short."""
    from netstack.netfilter.conntrack_tuple import parse_l3
    l3 = parse_l3(buf, nh, end, l3num)
    if l3 is None:
        return False
    if l3num == NFPROTO_IPV4:
        ao = nh + 12 if manip == NF_NAT_MANIP_SRC else nh + 16
        alen = 4
    else:
        ao = nh + 8 if manip == NF_NAT_MANIP_SRC else nh + 24
        alen = 16
    old = bytes(buf[ao:ao + alen])
    new = target.src if manip == NF_NAT_MANIP_SRC else target.dst
    if not l3.fragment:
        if not _l4_manip(buf, l3.l4off, end, l3num, target.protonum, old, new, target, manip,
                         partial):
            return False
    if l3num == NFPROTO_IPV4:
        check = int.from_bytes(buf[nh + 10:nh + 12], "big")
        check = csum_replace4(check, int.from_bytes(old, "big"), int.from_bytes(new, "big"))
        buf[nh + 10:nh + 12] = check.to_bytes(2, "big")
    buf[ao:ao + alen] = new
    return True


def _nh(pkt: "Packet") -> int:
    return pkt.network_header if pkt.network_header >= 0 else pkt.data


def nf_nat_packet(ct: NfConn, ctinfo: int, hooknum: int, pkt: "Packet") -> int:
    """``nf_nat_packet``: apply the binding for this hook's manip type, if any."""
    mtype = hook2manip(hooknum)
    d = ctinfo2dir(ctinfo)
    bit = IPS_SRC_NAT if mtype == NF_NAT_MANIP_SRC else IPS_DST_NAT
    if d == IP_CT_DIR_REPLY:
        bit ^= IPS_NAT_MASK
    if ct.status & bit:
        target = invert(ct.tuplehash[1 - d])
        if pkt.trace is not None:
            _trace_manip(pkt, "nf_nat_manip_pkt", mtype, d, target)
        if target is None or not nf_nat_manip_pkt(pkt.buf, _nh(pkt), pkt.tail, ct.l3num,
                                                  target, mtype,
                                                  pkt.ip_summed == CHECKSUM_PARTIAL):
            return NF_DROP
    return NF_ACCEPT


def _trace_manip(pkt: "Packet", stage: str, mtype: int, d: int, target: CtTuple | None,
                 inner: bool = False) -> None:
    """Trace event of one rewrite: which manip (``snat`` rewrites the source, ``dnat`` the
    destination), in which direction (a reply direction rewrite is the reverse
    translation), and the address/port written; ``inner`` for the quoted header of an
    ICMP error (``nf_nat_icmp_reply_translation``)."""
    from netstack.core.trace import fmt_addr
    kind = "snat" if mtype == NF_NAT_MANIP_SRC else "dnat"
    direction = "reply" if d == IP_CT_DIR_REPLY else "original"
    attrs: dict[str, Any] = {"manip": kind, "direction": direction, "inner": inner}
    info = f"{kind} {direction}" + (" inner" if inner else "")
    if target is not None:
        addr = target.src if mtype == NF_NAT_MANIP_SRC else target.dst
        port = target.sport if mtype == NF_NAT_MANIP_SRC else target.dport
        attrs["to"] = fmt_addr(addr)
        info += f" to {fmt_addr(addr)}"
        if target.protonum in (6, 17, 132, 136):
            attrs["port"] = port
            info += f":{port}"
    pkt.trace.event(pkt, stage, info=info, attrs=attrs)


def _trace_setup(pkt: "Packet", ct: NfConn, manip: int) -> None:
    """Trace event of ``nf_nat_setup_info`` having bound ``ct``: the original tuple and the
    reply tuple it now expects (``conntrack -L`` shows both), masquerade's device."""
    from netstack.core.trace import fmt_tuple
    kind = "snat" if manip == NF_NAT_MANIP_SRC else "dnat"
    mapped = bool(ct.status & (IPS_SRC_NAT if manip == NF_NAT_MANIP_SRC else IPS_DST_NAT))
    how = "masquerade" if ct.masq_index and manip == NF_NAT_MANIP_SRC else kind
    if not mapped:
        how = f"{kind} null binding"
    o, r = fmt_tuple(ct.tuplehash[0]), fmt_tuple(ct.tuplehash[1])
    attrs = {"manip": kind, "type": how, "orig": o, "reply": r}
    if ct.masq_index:
        attrs["masq_ifindex"] = ct.masq_index
    pkt.trace.event(pkt, "nf_nat_setup_info", info=f"{how} [{o}] reply [{r}]", attrs=attrs)


def nf_nat_icmp_reply_translation(pkt: "Packet", ct: NfConn, ctinfo: int, hooknum: int) -> bool:
    """``nf_nat_icmp_reply_translation`` (and its ICMPv6 twin): translate the quoted
    packet with the opposite manip, recompute the ICMP checksum, then the outer header."""
    buf = pkt.buf
    nh = _nh(pkt)
    end = pkt.tail
    from netstack.netfilter.conntrack_tuple import parse_l3
    l3 = parse_l3(buf, nh, end, ct.l3num)
    if l3 is None or l3.l4len < 8:
        return False
    manip = hook2manip(hooknum)
    d = ctinfo2dir(ctinfo)
    icmp_type = buf[l3.l4off]
    if ct.l3num == NFPROTO_IPV4 and icmp_type == 5:  # redirect
        if (ct.status & nfct.IPS_NAT_DONE_MASK) != nfct.IPS_NAT_DONE_MASK:
            return False
        if ct.status & IPS_NAT_MASK:
            return False
    bit = IPS_SRC_NAT if manip == NF_NAT_MANIP_SRC else IPS_DST_NAT
    if d == IP_CT_DIR_REPLY:
        bit ^= IPS_NAT_MASK
    if not ct.status & bit:
        return True
    partial = pkt.ip_summed == CHECKSUM_PARTIAL
    inner = l3.l4off + 8
    if pkt.trace is not None:
        _trace_manip(pkt, "nf_nat_icmp_reply_translation", 1 - manip, d, ct.tuplehash[1 - d],
                     inner=True)
    if not nf_nat_manip_pkt(buf, inner, end, ct.l3num, ct.tuplehash[1 - d], 1 - manip, partial):
        return False
    if not partial:
        buf[l3.l4off + 2:l3.l4off + 4] = b"\0\0"
        s = csum_partial(buf[l3.l4off:end])
        if ct.l3num == NFPROTO_IPV6:
            from netstack.packet.checksum import pseudo_sum_v6
            s = _reduce(s + pseudo_sum_v6(l3.src, l3.dst, l3.l4len, IPPROTO_ICMPV6))
        buf[l3.l4off + 2:l3.l4off + 4] = csum_fold(s).to_bytes(2, "big")
    target = invert(ct.tuplehash[1 - d])
    assert target is not None
    target = target._replace(protonum=IPPROTO_ICMP if ct.l3num == NFPROTO_IPV4
                             else IPPROTO_ICMPV6)
    if pkt.trace is not None:
        _trace_manip(pkt, "nf_nat_icmp_reply_translation", manip, d, target)
    return nf_nat_manip_pkt(buf, nh, end, ct.l3num, target, manip, partial)


# ---- the NAT hooks ------------------------------------------------------------------------
def _oif_changed(hooknum: int, ctinfo: int, ct: NfConn, out: "NetDevice | None") -> bool:
    """``nf_nat_oif_changed``: a masqueraded flow now leaving by another device."""
    return (bool(ct.masq_index) and hooknum == NF_INET_POST_ROUTING and out is not None
            and ctinfo2dir(ctinfo) == IP_CT_DIR_ORIGINAL and ct.masq_index != out.ifindex)


def nf_nat_inet_fn(chains: list[tuple[int, int, Callable]], pkt: "Packet",
                   state: NfHookState) -> int:
    """``nf_nat_ipv4_fn`` / ``nf_nat_inet_fn``."""
    ct, ctinfo = nf_ct_get(pkt)
    if ct is None:
        return NF_ACCEPT
    if ctinfo in (IP_CT_RELATED, IP_CT_RELATED_REPLY):
        nh = _nh(pkt)
        l4p = pkt.buf[nh + 9] if ct.l3num == NFPROTO_IPV4 else None
        if l4p == IPPROTO_ICMP or ct.l3num == NFPROTO_IPV6:
            from netstack.netfilter.conntrack_tuple import parse_l3
            l3 = parse_l3(pkt.buf, nh, pkt.tail, ct.l3num)
            if l3 is not None and l3.protonum in (IPPROTO_ICMP, IPPROTO_ICMPV6):
                ok = nf_nat_icmp_reply_translation(pkt, ct, ctinfo, state.hook)
                return NF_ACCEPT if ok else NF_DROP
    manip = hook2manip(state.hook)
    if ctinfo in (IP_CT_RELATED, IP_CT_RELATED_REPLY, IP_CT_NEW):
        if not nf_nat_initialized(ct, manip):
            for _prio, _seq, fn in chains:
                v = fn(pkt, state)
                if v != NF_ACCEPT:
                    return v
                if nf_nat_initialized(ct, manip):
                    break
            if not nf_nat_initialized(ct, manip):
                v = nf_nat_alloc_null_binding(ct, state.hook)
                if v != NF_ACCEPT:
                    return v
            if pkt.trace is not None:
                _trace_setup(pkt, ct, manip)
        elif _oif_changed(state.hook, ctinfo, ct, state.out_dev):
            ct_net(state.net).delete(ct)
            return NF_DROP
    elif _oif_changed(state.hook, ctinfo, ct, state.out_dev):
        ct_net(state.net).delete(ct)
        return NF_DROP
    return nf_nat_packet(ct, ctinfo, state.hook, pkt)


def _nat_hook(priv: Any, pkt: "Packet", state: NfHookState) -> int:
    if state.hook != NF_INET_LOCAL_OUT or state.pf != NFPROTO_IPV4:
        return nf_nat_inet_fn(priv, pkt, state)
    # nf_nat_ipv4_local_fn: a locally generated packet whose destination was changed
    # is routed again (ip_route_me_harder).
    nh = _nh(pkt)
    before = bytes(pkt.buf[nh + 16:nh + 20])
    v = nf_nat_inet_fn(priv, pkt, state)
    if v == NF_ACCEPT and bytes(pkt.buf[nh + 16:nh + 20]) != before:
        return ip_route_me_harder(state.net, pkt)
    return v


def ip_route_me_harder(net: "Net", pkt: "Packet") -> int:
    """``ip_route_me_harder``: a new output route for the (rewritten) destination;
    NF_DROP when there is none."""
    from netstack.errors import KernelError as _KE
    from netstack.ipv4.af_inet import flowi4
    from netstack.ipv4.route import ip_route_output
    nh = _nh(pkt)
    buf = pkt.buf
    try:
        rt = ip_route_output(net, flowi4(daddr=bytes(buf[nh + 16:nh + 20]),
                                         saddr=bytes(buf[nh + 12:nh + 16]), mark=pkt.mark,
                                         tos=buf[nh + 1]))
    except _KE:
        return NF_DROP
    pkt.dst = rt
    return NF_ACCEPT


_NAT_PRIO = {NF_INET_PRE_ROUTING: NF_IP_PRI_NAT_DST, NF_INET_LOCAL_OUT: NF_IP_PRI_NAT_DST,
             NF_INET_POST_ROUTING: NF_IP_PRI_NAT_SRC, NF_INET_LOCAL_IN: NF_IP_PRI_NAT_SRC}


def nf_nat_register_fn(net: "Net", pf: int, hooknum: int, priority: int,
                       fn: Callable[["Packet", NfHookState], int]) -> Any:
    """``nf_nat_register_fn``: add a nat chain's evaluation (``fn(pkt, state) -> verdict``,
    which may call ``nf_nat_setup_info``) to the family's NAT hook.  The first nat chain of
    a family registers the NAT hooks at all four hook points (the reply direction of an
    SNAT flow is translated back at PRE_ROUTING even though no chain lives there); the last
    one to go removes them.  Returns a handle for ``nf_nat_unregister_fn``.  Enables
    conntrack (NAT needs it)."""
    if hooknum not in _NAT_PRIO:
        raise KernelError(errno.EOPNOTSUPP)
    handles = []
    for fam in ((NFPROTO_IPV4, NFPROTO_IPV6) if pf == NFPROTO_INET else (pf,)):
        nf_ct_netns_get(net, fam)
        nn = nat_net(net)
        if not any(k[0] == fam for k in nn.ops):
            for h, prio in _NAT_PRIO.items():
                lst = nn.chains.setdefault((fam, h), [])
                ops = NfHookOps(_nat_hook, fam, h, prio, priv=lst,
                                name="nf_nat_ipv4_fn" if fam == NFPROTO_IPV4
                                else "nf_nat_ipv6_fn")
                nf_register_net_hook(net, ops)
                nn.ops[(fam, h)] = ops
        lst = nn.chains[(fam, hooknum)]
        nn.seq += 1
        entry = (priority, nn.seq, fn)
        lst.append(entry)
        lst.sort(key=lambda e: (e[0], e[1]))
        handles.append(((fam, hooknum), entry))
    return handles


def nf_nat_unregister_fn(net: "Net", handle: Any) -> None:
    """Remove a chain added by :func:`nf_nat_register_fn` (the hooks go with the family's
    last chain)."""
    nn = nat_net(net)
    for key, entry in handle:
        lst = nn.chains.get(key, [])
        if entry in lst:
            lst.remove(entry)
        fam = key[0]
        if not any(nn.chains.get((fam, h)) for h in _NAT_PRIO):
            for h in _NAT_PRIO:
                ops = nn.ops.pop((fam, h), None)
                if ops is not None:
                    nf_unregister_net_hook(net, ops)
        nf_ct_netns_put(net, fam)


# ---- masquerade / redirect ------------------------------------------------------------
def nf_nat_masquerade(pkt: "Packet", state: NfHookState, r: NfNatRange) -> int:
    """``nf_nat_masquerade_ipv4/6``: SNAT to the output device's address for the next hop
    (``inet_select_addr``/``ipv6_dev_get_saddr``); remembers the device so that its going
    down kills the flow.  NF_DROP when the device has no usable address."""
    ct, ctinfo = nf_ct_get(pkt)
    if ct is None or state.out_dev is None:
        return NF_ACCEPT
    out = state.out_dev
    if ct.l3num == NFPROTO_IPV4:
        from netstack.ipv4.devinet import inet_select_addr
        rt = pkt.dst
        nh = getattr(rt, "gateway", None) or ct.tuplehash[0].dst
        saddr = inet_select_addr(state.net, out, nh, 0)
        if not saddr or saddr == b"\0\0\0\0":
            return NF_DROP
    else:
        saddr = _ipv6_saddr(state.net, out, ct.tuplehash[0].dst)
        if saddr is None:
            return NF_DROP
    ct.masq_index = out.ifindex
    nr = NfNatRange(r.flags | NF_NAT_RANGE_MAP_IPS, saddr, saddr, r.min_proto, r.max_proto)
    return nf_nat_setup_info(ct, nr, NF_NAT_MANIP_SRC)


def _ipv6_saddr(net: "Net", dev: "NetDevice", daddr: bytes) -> bytes | None:
    """``nat_ipv6_dev_get_saddr``: RFC 6724 source selection on the output device."""
    from netstack.ipv6.addrconf import ipv6_dev_get_saddr
    return ipv6_dev_get_saddr(net, dev, daddr)


def nf_nat_redirect(pkt: "Packet", state: NfHookState, r: NfNatRange) -> int:
    """``nf_nat_redirect_ipv4``: DNAT to the primary address of the input device (127.0.0.1
    for locally generated packets)."""
    ct, ctinfo = nf_ct_get(pkt)
    if ct is None:
        return NF_ACCEPT
    if ct.l3num != NFPROTO_IPV4:
        raise NotSupported("IPv6 redirect")
    if state.hook == NF_INET_LOCAL_OUT:
        addr = b"\x7f\0\0\x01"
    else:
        from netstack.ipv4.devinet import inet_addrs
        addrs = inet_addrs(state.in_dev) if state.in_dev is not None else []
        if not addrs:
            return NF_DROP
        addr = addrs[0].local
    nr = NfNatRange(r.flags | NF_NAT_RANGE_MAP_IPS, addr, addr, r.min_proto, r.max_proto)
    return nf_nat_setup_info(ct, nr, NF_NAT_MANIP_DST)


def masq_device_event(event: str, dev: "NetDevice") -> None:
    """``masq_device_event``: a device going down kills the flows masqueraded through it."""
    if event not in ("DOWN", "UNREGISTER"):
        return
    cn = nfct.ct_net_if_enabled(dev.net)
    if cn is None:
        return
    for ct in [c for c in cn.conns if c.masq_index == dev.ifindex]:
        cn.delete(ct)


def register(world: Any) -> None:
    """Subsystem hook: the masquerade netdevice notifier."""
    world.netdev_notifiers.append(masq_device_event)
