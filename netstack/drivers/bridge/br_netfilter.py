"""Bridged IP through the IPv4/IPv6 netfilter hooks (net/bridge/br_netfilter_hooks.c,
br_netfilter_ipv6.c) — what ``net.bridge.bridge-nf-call-iptables`` etc. switch.

Why it matters without any rule: the reference kernel has br_netfilter built in and its
knobs default to 1 in every namespace (measured), so a bridge validates every untagged
IPv4/IPv6 frame it forwards as ``br_validate_ipv4``/``br_validate_ipv6`` do — a bad header
checksum, a bad version/IHL or a truncated datagram is dropped (and counted in the IP MIB),
and trailing bytes after the IP total length are trimmed before the frame goes out.  With
rules, iptables/nftables ``ip``/``ip6`` chains see bridged traffic at PRE_ROUTING (in =
the bridge), FORWARD (in = out = the bridge) and POST_ROUTING (out = the bridge).

The hooks are registered per namespace as bridge-family ``nf_hook_ops`` with the kernel's
priorities (PRE_ROUTING and LOCAL_IN at NF_BR_PRI_BRNF, FORWARD at NF_BR_PRI_BRNF - 1,
POST_ROUTING at NF_BR_PRI_LAST), so nftables bridge chains interleave as in the kernel.

``ip_sabotage_in`` (an IPv4/IPv6 PRE_ROUTING hook at NF_IP_PRI_FIRST): a bridged packet that
already ran the L3 PRE_ROUTING chains inside the bridge and is then delivered to the
bridge's own stack skips them in ``ip_rcv``/``ipv6_rcv`` (measured with nft counters).
DNAT of bridged IPv4 (``br_nf_pre_routing_finish``): when PRE_ROUTING changed the
destination the packet is routed again — a route through the bridge itself keeps it
bridged with the destination MAC of the new address's neighbour, anything else (a local
address, another interface) sends it up the bridge (destination MAC := the bridge's).

A neighbour that is not resolved yet takes the packet through ARP from the bridge; the
resolved frame re-enters the bridge from ``br_dev_xmit`` on its original port.

IPv6 DNAT is ``br_nf_pre_routing_finish_ipv6``'s version of the same (ND neighbours).

Not modelled: refragmentation in POST_ROUTING, arptables for bridged ARP, VLAN/PPPoE-encapsulated IP
(``bridge-nf-filter-vlan-tagged`` and ``-pppoe-tagged`` can only stay 0) — each refused
as not supported.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.drivers.bridge.br_private import br_port_get
from netstack.errors import NotSupported
from netstack.netfilter.core import (NF_ACCEPT, NF_BR_FORWARD, NF_BR_POST_ROUTING,
                                     NF_BR_PRE_ROUTING, NF_BR_PRI_BRNF, NF_BR_PRI_LAST,
                                     NF_INET_FORWARD, NF_INET_POST_ROUTING,
                                     NF_INET_PRE_ROUTING, NF_IP_PRI_FIRST, NF_STOLEN,
                                     NFPROTO_BRIDGE, NFPROTO_IPV4, NFPROTO_IPV6, NfHookOps,
                                     nf_hook, nf_hook_entries, nf_register_net_hook)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.netfilter.core import NfHookState
    from netstack.packet.skb import Packet

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
#: sysctl name → default (br_netfilter_hooks.c brnf_table / brnf_init_net)
SYSCTLS = {"bridge-nf-call-arptables": 1, "bridge-nf-call-iptables": 1,
           "bridge-nf-call-ip6tables": 1, "bridge-nf-filter-vlan-tagged": 0,
           "bridge-nf-filter-pppoe-tagged": 0, "bridge-nf-pass-vlan-input-dev": 0}
_UNMODELLED = ("bridge-nf-filter-vlan-tagged", "bridge-nf-filter-pppoe-tagged",
               "bridge-nf-pass-vlan-input-dev")


def _refuse(key: str) -> Any:
    def on_write(full: str, old: Any, value: Any) -> None:
        if value:
            raise NotSupported(f"{full}=1")
    return on_write


def br_netfilter_register(world: Any) -> None:
    """br_netfilter is built in on the reference kernel: once a world has a bridge, every
    namespace (present and future) gets the knobs and the hooks."""
    if brnf_init_net not in world.pernet_inits:
        world.pernet_inits.append(brnf_init_net)
        for net in list(world.namespaces.values()):
            brnf_init_net(net)


def brnf_init_net(net: "Net") -> None:
    """``brnf_init_net`` + the hook registration, once per namespace."""
    if net.proto.get("br_netfilter"):
        return
    net.proto["br_netfilter"] = True
    for key, default in SYSCTLS.items():
        full = f"net.bridge.{key}"
        if full not in net.sysctl.values:
            net.sysctl.register(full, default, 0, 1,
                                _refuse(key) if key in _UNMODELLED else None)
    for hook, fn, prio in ((NF_BR_PRE_ROUTING, br_nf_pre_routing, NF_BR_PRI_BRNF),
                           (NF_BR_FORWARD, br_nf_forward, NF_BR_PRI_BRNF - 1),
                           (NF_BR_POST_ROUTING, br_nf_post_routing, NF_BR_PRI_LAST)):
        nf_register_net_hook(net, NfHookOps(fn, NFPROTO_BRIDGE, hook, prio,
                                            name=f"br_netfilter:{fn.__name__}"))
    # br_nf_ops: ip_sabotage_in at NF_INET_PRE_ROUTING, NF_IP_PRI_FIRST / NF_IP6_PRI_FIRST
    for pf in (NFPROTO_IPV4, NFPROTO_IPV6):
        nf_register_net_hook(net, NfHookOps(ip_sabotage_in, pf, NF_INET_PRE_ROUTING,
                                            NF_IP_PRI_FIRST,
                                            name="br_netfilter:ip_sabotage_in"))


def _call(net: "Net", pkt: "Packet", br: Any) -> int:
    """The L3 family whose hooks apply to ``pkt`` (0 when none): untagged IPv4/IPv6 with
    the namespace knob or the bridge's own ``nf_call_ip*tables`` on."""
    if pkt.vlan_proto:
        return 0
    proto = pkt.protocol
    get = net.sysctl.values.get
    if proto == ETH_P_IP and (get("net.bridge.bridge-nf-call-iptables", 1)
                              or br.nf_call_iptables):
        return NFPROTO_IPV4
    if proto == ETH_P_IPV6 and (get("net.bridge.bridge-nf-call-ip6tables", 1)
                                or br.nf_call_ip6tables):
        return NFPROTO_IPV6
    return 0


def _mib4(net: "Net", name: str) -> None:
    ipv4 = getattr(net, "ipv4", None)
    if ipv4 is not None:
        ipv4.mib[name] += 1


def br_validate_ipv4(net: "Net", pkt: "Packet") -> bool:
    """``br_validate_ipv4``: header sanity, checksum, total length; trims to tot_len."""
    d = pkt.data
    n = pkt.tail - d
    buf = pkt.buf
    if n < 20:
        _mib4(net, "IpInHdrErrors")
        return False
    ihl = (buf[d] & 0x0F) * 4
    if ihl < 20 or buf[d] >> 4 != 4 or n < ihl:
        _mib4(net, "IpInHdrErrors")
        return False
    s = 0
    for i in range(d, d + ihl, 2):
        s += (buf[i] << 8) | buf[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    if s != 0xFFFF:
        _mib4(net, "IpExtInCsumErrors")
        _mib4(net, "IpInHdrErrors")
        return False
    tot = (buf[d + 2] << 8) | buf[d + 3]
    if n < tot:
        _mib4(net, "IpExtInTruncatedPkts")
        return False
    if tot < ihl:
        _mib4(net, "IpInHdrErrors")
        return False
    pkt.tail = d + tot
    pkt.network_header = d
    return True


def br_validate_ipv6(net: "Net", pkt: "Packet") -> bool:
    """``br_validate_ipv6``: version, payload length (a hop-by-hop header must fit),
    trimmed to the IPv6 length."""
    d = pkt.data
    n = pkt.tail - d
    buf = pkt.buf
    if n < 40 or buf[d] >> 4 != 6:
        return False
    plen = (buf[d + 4] << 8) | buf[d + 5]
    if buf[d + 6] == 0:  # br_nf_check_hbh_len: the HBH header must fit the packet
        if n < 48 or 40 + (buf[d + 41] + 1) * 8 > n:
            return False
    if plen + 40 > n:
        return False
    pkt.tail = d + plen + 40
    pkt.network_header = d
    return True


def br_nf_pre_routing(priv: Any, pkt: "Packet", state: "NfHookState") -> int:
    """``br_nf_pre_routing``: validate, then the L3 PRE_ROUTING hooks with the bridge as
    the input device (``nf_bridge->in_prerouting`` set meanwhile, so ip_sabotage_in lets
    them run), then ``br_nf_pre_routing_finish``."""
    net = state.net
    in_dev = state.in_dev
    p = br_port_get(in_dev) if in_dev is not None else None
    if p is None:
        return NF_ACCEPT
    pf = _call(net, pkt, p.br)
    if not pf:
        return NF_ACCEPT
    # skb->nf_bridge (setup_pre_routing): a fresh nf_bridge_info
    pkt.nf_bridge = True  # type: ignore[attr-defined]
    pkt.nf_bridge_sabotage_done = False  # type: ignore[attr-defined]
    ok = br_validate_ipv4(net, pkt) if pf == NFPROTO_IPV4 else br_validate_ipv6(net, pkt)
    if not ok:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return NF_STOLEN
    if not nf_hook_entries(net, pf, NF_INET_PRE_ROUTING):
        return NF_ACCEPT
    d = pkt.data
    span = slice(d + 16, d + 20) if pf == NFPROTO_IPV4 else slice(d + 24, d + 40)
    before = bytes(pkt.buf[span])
    pkt.nf_bridge_in_prerouting = True  # type: ignore[attr-defined]
    try:
        verdict = nf_hook(net, pf, NF_INET_PRE_ROUTING, pkt, p.br.dev, None)
    finally:
        pkt.nf_bridge_in_prerouting = False  # type: ignore[attr-defined]
    if verdict != 1:
        return NF_STOLEN
    if bytes(pkt.buf[span]) != before:
        if pf == NFPROTO_IPV6:
            return br_nf_pre_routing_finish_ipv6_dnat(net, pkt, p)
        return br_nf_pre_routing_finish_dnat(net, pkt, p)
    return NF_ACCEPT


def br_nf_pre_routing_finish_ipv6_dnat(net: "Net", pkt: "Packet", p: Any) -> int:
    """``br_nf_pre_routing_finish_ipv6`` when ``br_nf_ipv6_daddr_was_changed``: the input
    route of the new destination (as received on the bridge); an error route drops it;
    a route out of the bridge keeps it bridged towards the ND neighbour
    (``br_nf_pre_routing_finish_bridge``); anything else — a local address, whose dst
    device is the loopback in the kernel — goes up the bridge."""
    from netstack.ipv6.ip6_input import ip6_route_input
    from netstack.packet.skb import PACKET_HOST
    br_dev = p.br.dev
    d = pkt.data
    daddr = bytes(pkt.buf[d + 24:d + 40])
    pkt.network_header = d
    indev = pkt.dev
    pkt.dev = br_dev
    try:
        ip6_route_input(net, pkt)
    finally:
        pkt.dev = indev
    rt = pkt.dst
    if rt is None or getattr(rt, "input", "") == "error" or getattr(rt, "error", 0):
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return NF_STOLEN
    if rt.dev is br_dev and not rt.is_input_local:
        tbl = getattr(net.ipv6, "nd_tbl", None)
        return _bridged_dnat(net, pkt, rt, daddr, p, tbl)
    mac = pkt.mac_header
    pkt.buf[mac:mac + 6] = br_dev.address
    pkt.pkt_type = PACKET_HOST
    return NF_ACCEPT


def br_nf_pre_routing_finish_dnat(net: "Net", pkt: "Packet", p: Any) -> int:
    """``br_nf_pre_routing_finish`` when ``br_nf_ipv4_daddr_was_changed``: route the new
    destination as if received on the bridge.  A route out of the bridge itself means the
    packet stays bridged (``br_nf_pre_routing_finish_bridge``: the destination MAC becomes
    the neighbour's, ``neigh_hh_bridge``); any other route — local, another interface, or
    the ``ip_error`` route a non-forwarding bridge gets (measured: the packet goes up and
    is counted in IpInAddrErrors) — sends it up the bridge (destination MAC := the
    bridge's, PACKET_HOST) to be handled by that route.  Only an input-route *failure*
    with IP_INADDRERRORS on a non-forwarding bridge tries an output route ("Bridged-and-
    DNAT'ed traffic doesn't require ip_forwarding").  Returns the verdict of the bridge's
    PRE_ROUTING hook."""
    from netstack.errors import KernelError
    from netstack.ipv4.fib import Flowi4
    from netstack.ipv4.route import ip_route_input, ip_route_output
    from netstack.packet.skb import PACKET_HOST
    br_dev = p.br.dev
    d = pkt.data
    buf = pkt.buf
    daddr = bytes(buf[d + 16:d + 20])
    saddr = bytes(buf[d + 12:d + 16])
    tos = buf[d + 1]
    reason = ip_route_input(net, pkt, daddr, saddr, tos, br_dev)
    if reason is not None or pkt.dst is None:
        fwd = net.sysctl.values.get(f"net.ipv4.conf.{br_dev.name}.forwarding", 0)
        ort = None
        if reason == "IP_INADDRERRORS" and br_dev.ip_ptr is not None and not fwd:
            try:
                ort = ip_route_output(net, Flowi4(daddr, 0, tos & 0xFC))
            except KernelError:
                ort = None
        if ort is None or ort.dev is not br_dev:
            kfree_skb_reason(pkt, reason or "NOT_SPECIFIED", net)
            return NF_STOLEN
        pkt.dst = ort
        return _bridged_dnat(net, pkt, ort, daddr, p)
    rt = pkt.dst
    if rt.dev is br_dev:
        return _bridged_dnat(net, pkt, rt, daddr, p)
    mac = pkt.mac_header
    buf[mac:mac + 6] = br_dev.address
    pkt.pkt_type = PACKET_HOST
    return NF_ACCEPT


def _bridged_dnat(net: "Net", pkt: "Packet", rt: Any, daddr: bytes, p: Any,
                  tbl: Any = None) -> int:
    """``br_nf_pre_routing_finish_bridge``: the next hop's neighbour on the bridge gives
    the new destination MAC; bridging then goes on from ``br_handle_frame_finish``.  A
    neighbour without a valid address takes the packet through ``neigh->output`` (ARP
    from the bridge, the packet queued): the source MAC and EtherType are kept
    (``nf_bridge->neigh_header``) and ``br_dev_xmit`` hands the resolved frame back to
    the bridge as received on the original port
    (:func:`br_nf_pre_routing_finish_bridge_slow`)."""
    from netstack.core.neighbour import NUD_VALID, neigh_output
    if tbl is None and len(daddr) == 4:
        tbl = getattr(net.ipv4, "arp_tbl", None)
    gw = bytes(getattr(rt, "gateway", None) or daddr)
    if tbl is None:
        kfree_skb_reason(pkt, "NEIGH_CREATEFAIL", net)
        return NF_STOLEN
    n = tbl.lookup(rt.dev, gw)
    mac = pkt.mac_header
    if n is not None and n.nud_state & NUD_VALID:
        pkt.buf[mac:mac + 6] = n.ha
        return NF_ACCEPT
    pkt.nf_bridge_neigh_header = bytes(pkt.buf[mac + 6:mac + 14])  # type: ignore[attr-defined]
    pkt.nf_bridge_bridged_dnat = True  # type: ignore[attr-defined]
    pkt.nf_bridge_physindev = p  # type: ignore[attr-defined]
    pkt.network_header = pkt.data
    neigh_output(tbl, rt.dev, gw, [pkt])
    return NF_STOLEN


def br_nf_pre_routing_finish_bridge_slow(pkt: "Packet") -> bool:
    """``br_nf_pre_routing_finish_bridge_slow`` (the bridge's ``br_dev_xmit_hook``):
    a frame the neighbour code resolved for a bridged DNAT gets its original source MAC
    and EtherType back and re-enters ``br_handle_frame_finish`` on the port it came in
    on.  Returns True when it took the frame."""
    d = getattr(pkt, "__dict__", None)
    if not d or not d.get("nf_bridge_bridged_dnat"):
        return False
    from netstack.drivers.bridge.br_input import br_handle_frame_finish
    d["nf_bridge_bridged_dnat"] = False
    p = d.pop("nf_bridge_physindev", None)
    hdr = d.pop("nf_bridge_neigh_header", b"")
    mac = pkt.data
    pkt.mac_header = mac
    pkt.buf[mac + 6:mac + 14] = hdr
    pkt.data = mac + 14
    if p is None or p.dev.master is not p.br.dev:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", pkt.dev.net if pkt.dev is not None else None)
        return True
    pkt.dev = p.dev
    br_handle_frame_finish(p, pkt)
    return True


def ip_sabotage_in(priv: Any, pkt: "Packet", state: "NfHookState") -> int:
    """``ip_sabotage_in``: "Don't hand locally destined packets to PF_INET(6)/PRE_ROUTING
    for the second time" — a packet that went through br_nf_pre_routing (and is not in
    it now) skips the rest of the L3 PRE_ROUTING hooks and goes straight on to
    ``ip_rcv_finish``/``ip6_rcv_finish`` (the kernel calls ``state->okfn``)."""
    if not getattr(pkt, "nf_bridge", False):
        return NF_ACCEPT
    if getattr(pkt, "nf_bridge_sabotage_done", False) or \
            getattr(pkt, "nf_bridge_in_prerouting", False):
        return NF_ACCEPT
    pkt.nf_bridge_sabotage_done = True  # type: ignore[attr-defined]
    if state.okfn is not None:
        state.okfn(state.net, None, pkt)
    elif state.pf == NFPROTO_IPV4:
        from netstack.ipv4.ip_input import ip_list_rcv_finish
        ip_list_rcv_finish(state.net, [pkt], pkt.dev)  # type: ignore[arg-type]
    else:
        _ip6_rcv_finish(state.net, pkt)
    return NF_STOLEN


def _ip6_rcv_finish(net: "Net", pkt: "Packet") -> None:
    """``ip6_rcv_finish`` for one packet: the l3mdev hook, the input route, then
    ``ip6_sublist_input`` (what ipv6_list_rcv does after PRE_ROUTING)."""
    from netstack.ipv6.ip6_input import ip6_route_input, ip6_sublist_input
    l3mdev = getattr(pkt.dev, "l3mdev_l3_rcv", None)
    if not (l3mdev is not None and l3mdev(pkt, 6)):
        ip6_route_input(net, pkt)
    ip6_sublist_input([pkt])


def br_nf_reset(pkt: "Packet") -> None:
    """``skb_ext_reset`` as the packet leaves the bridge on a port (``skb_scrub_packet``
    on veth, or the wire): the nf_bridge state does not follow it into the next stack."""
    d = getattr(pkt, "__dict__", None)
    if d and d.get("nf_bridge"):
        d["nf_bridge"] = False
        d.pop("nf_bridge_sabotage_done", None)


def br_nf_forward(priv: Any, pkt: "Packet", state: "NfHookState") -> int:
    """``br_nf_forward`` (IP part): the L3 FORWARD hooks, in and out being the bridge."""
    return _br_nf_l3_hook(pkt, state, NF_INET_FORWARD, True)


def br_nf_post_routing(priv: Any, pkt: "Packet", state: "NfHookState") -> int:
    """``br_nf_post_routing``: the L3 POST_ROUTING hooks, out being the bridge."""
    return _br_nf_l3_hook(pkt, state, NF_INET_POST_ROUTING, False)


def _br_nf_l3_hook(pkt: "Packet", state: "NfHookState", hook: int, in_is_bridge: bool) -> int:
    """What ``br_nf_forward`` and ``br_nf_post_routing`` share (net/bridge/br_netfilter_hooks.c):
    only a packet leaving through a bridge port that br_netfilter took in (``nf_bridge``)
    and that ``bridge-nf-call-ip(6)tables`` sends to IP (``_call``: untagged IPv4/IPv6) runs the
    L3 ``hook`` with the bridge as out device (and as in device for FORWARD); a verdict
    other than accept steals it."""
    net = state.net
    out = state.out_dev
    p = br_port_get(out) if out is not None else None
    if p is None or not getattr(pkt, "nf_bridge", False):
        return NF_ACCEPT
    pf = _call(net, pkt, p.br)
    if not pf:
        return NF_ACCEPT
    if nf_hook(net, pf, hook, pkt, p.br.dev if in_is_bridge else None, p.br.dev) != 1:
        return NF_STOLEN
    return NF_ACCEPT
    pf = _call(net, pkt, p.br)
    if not pf:
        return NF_ACCEPT
    if nf_hook(net, pf, NF_INET_POST_ROUTING, pkt, None, p.br.dev) != 1:
        return NF_STOLEN
    return NF_ACCEPT
