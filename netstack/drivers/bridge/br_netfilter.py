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

Not modelled: ``ip_sabotage_in`` (a bridged IP packet also delivered to the bridge's own
stack runs the ``ip``/``ip6`` PRE_ROUTING chains again in ip_rcv), DNAT that redirects a
bridged packet to a routed path (refused as not supported), refragmentation in
POST_ROUTING, arptables for bridged ARP, VLAN/PPPoE-encapsulated IP
(``bridge-nf-filter-vlan-tagged`` and ``-pppoe-tagged`` can only stay 0).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.drivers.bridge.br_private import br_port_get
from netstack.errors import NotSupported
from netstack.netfilter.core import (NF_ACCEPT, NF_BR_FORWARD, NF_BR_POST_ROUTING,
                                     NF_BR_PRE_ROUTING, NF_BR_PRI_BRNF, NF_BR_PRI_LAST,
                                     NF_INET_FORWARD, NF_INET_POST_ROUTING,
                                     NF_INET_PRE_ROUTING, NF_STOLEN, NFPROTO_BRIDGE,
                                     NFPROTO_IPV4, NFPROTO_IPV6, NfHookOps, nf_hook,
                                     nf_hook_entries, nf_register_net_hook)

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
    the input device."""
    net = state.net
    in_dev = state.in_dev
    p = br_port_get(in_dev) if in_dev is not None else None
    if p is None:
        return NF_ACCEPT
    pf = _call(net, pkt, p.br)
    if not pf:
        return NF_ACCEPT
    pkt.nf_bridge = True  # type: ignore[attr-defined]  # skb->nf_bridge (setup_pre_routing)
    ok = br_validate_ipv4(net, pkt) if pf == NFPROTO_IPV4 else br_validate_ipv6(net, pkt)
    if not ok:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return NF_STOLEN
    if not nf_hook_entries(net, pf, NF_INET_PRE_ROUTING):
        return NF_ACCEPT
    d = pkt.data
    span = slice(d + 16, d + 20) if pf == NFPROTO_IPV4 else slice(d + 24, d + 40)
    before = bytes(pkt.buf[span])
    if nf_hook(net, pf, NF_INET_PRE_ROUTING, pkt, p.br.dev, None) != 1:
        return NF_STOLEN
    if bytes(pkt.buf[span]) != before:
        raise NotSupported("DNAT of bridged traffic (br_nf_pre_routing_finish rerouting)")
    return NF_ACCEPT


def br_nf_forward(priv: Any, pkt: "Packet", state: "NfHookState") -> int:
    """``br_nf_forward`` (IP part): the L3 FORWARD hooks, in and out being the bridge."""
    net = state.net
    out = state.out_dev
    p = br_port_get(out) if out is not None else None
    if p is None or not getattr(pkt, "nf_bridge", False):
        return NF_ACCEPT
    pf = _call(net, pkt, p.br)
    if not pf:
        return NF_ACCEPT
    if nf_hook(net, pf, NF_INET_FORWARD, pkt, p.br.dev, p.br.dev) != 1:
        return NF_STOLEN
    return NF_ACCEPT


def br_nf_post_routing(priv: Any, pkt: "Packet", state: "NfHookState") -> int:
    """``br_nf_post_routing``: the L3 POST_ROUTING hooks, out being the bridge."""
    net = state.net
    out = state.out_dev
    p = br_port_get(out) if out is not None else None
    if p is None or not getattr(pkt, "nf_bridge", False):
        return NF_ACCEPT
    pf = _call(net, pkt, p.br)
    if not pf:
        return NF_ACCEPT
    if nf_hook(net, pf, NF_INET_POST_ROUTING, pkt, None, p.br.dev) != 1:
        return NF_STOLEN
    return NF_ACCEPT
