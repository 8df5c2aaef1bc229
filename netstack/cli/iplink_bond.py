"""``ip link add NAME type bond …``, ``ip link set NAME type bond …`` and the bond part of
``ip -d [-j] link`` (iproute2 6.1 ip/iplink_bond.c; kernel side
drivers/net/bonding/bond_netlink.c ``bond_changelink``/``bond_fill_info``).

The parser follows ``bond_parse_opt`` keyword by keyword (``matches`` abbreviations,
``get_index`` accepting a name or its table index, ``invarg`` texts); the values then go
through :func:`netstack.drivers.bonding.bond_options.bond_changelink`, which applies them
in attribute order with the kernel's checks.  The output follows ``bond_print_opt``: the
attributes ``bond_fill_info`` sends, printed in iproute2's order.
"""
from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import (AF_INET6, Args, get_addr, inet6_ntop, invarg,
                                   matches, parse_lladdr)
from netstack.cli.iplink_bridge import next_unsigned
from netstack.drivers.bonding.bond_main import NET_ADDR_SET, BondDevice, register_bond
from netstack.drivers.bonding.bond_options import (
    AD_SELECT_NAMES, ARP_ALL_TARGETS_NAMES, ARP_VALIDATE_NAMES, BOND_MODE_8023AD,
    FAIL_OVER_MAC_NAMES, LACP_ACTIVE_NAMES, LACP_RATE_NAMES, MODE_NAMES,
    PRI_RESELECT_NAMES, XMIT_HASH_NAMES, bond_changelink, bond_mode_uses_primary,
)
from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.iplink import LinkReq
    from netstack.core.net_namespace import Net

USAGE = (
    "Usage: ... bond [ mode BONDMODE ] [ active_slave SLAVE_DEV ]\n"
    "                [ clear_active_slave ] [ miimon MIIMON ]\n"
    "                [ updelay UPDELAY ] [ downdelay DOWNDELAY ]\n"
    "                [ peer_notify_delay DELAY ]\n"
    "                [ use_carrier USE_CARRIER ]\n"
    "                [ arp_interval ARP_INTERVAL ]\n"
    "                [ arp_validate ARP_VALIDATE ]\n"
    "                [ arp_all_targets ARP_ALL_TARGETS ]\n"
    "                [ arp_ip_target [ ARP_IP_TARGET, ... ] ]\n"
    "                [ ns_ip6_target [ NS_IP6_TARGET, ... ] ]\n"
    "                [ primary SLAVE_DEV ]\n"
    "                [ primary_reselect PRIMARY_RESELECT ]\n"
    "                [ fail_over_mac FAIL_OVER_MAC ]\n"
    "                [ xmit_hash_policy XMIT_HASH_POLICY ]\n"
    "                [ resend_igmp RESEND_IGMP ]\n"
    "                [ num_grat_arp|num_unsol_na NUM_GRAT_ARP|NUM_UNSOL_NA ]\n"
    "                [ all_slaves_active ALL_SLAVES_ACTIVE ]\n"
    "                [ min_links MIN_LINKS ]\n"
    "                [ lp_interval LP_INTERVAL ]\n"
    "                [ packets_per_slave PACKETS_PER_SLAVE ]\n"
    "                [ tlb_dynamic_lb TLB_DYNAMIC_LB ]\n"
    "                [ lacp_rate LACP_RATE ]\n"
    "                [ lacp_active LACP_ACTIVE]\n"
    "                [ ad_select AD_SELECT ]\n"
    "                [ ad_user_port_key PORTKEY ]\n"
    "                [ ad_actor_sys_prio SYSPRIO ]\n"
    "                [ ad_actor_system LLADDR ]\n"
    "                [ arp_missed_max MISSED_MAX ]\n"
    "\n"
    "BONDMODE := balance-rr|active-backup|balance-xor|broadcast|802.3ad|balance-tlb|"
    "balance-alb\n"
    "ARP_VALIDATE := none|active|backup|all|filter|filter_active|filter_backup\n"
    "ARP_ALL_TARGETS := any|all\n"
    "PRIMARY_RESELECT := always|better|failure\n"
    "FAIL_OVER_MAC := none|active|follow\n"
    "XMIT_HASH_POLICY := layer2|layer2+3|layer3+4|encap2+3|encap3+4|vlan+srcmac\n"
    "LACP_ACTIVE := off|on\n"
    "LACP_RATE := slow|fast\n"
    "AD_SELECT := stable|bandwidth|count\n")


def get_index(tbl: tuple[str, ...], name: str) -> int:
    """``get_index``: a decimal table index or a name; -1 if neither."""
    try:
        if name.strip() and int(name, 10) in range(len(tbl)):
            return int(name, 10)
    except ValueError:
        pass
    return tbl.index(name) if name in tbl else -1


def _u(args: Args, bits: int, what: str) -> int:
    """A numeric bond option: iplink_bond.c says "invalid WHAT" for all."""
    return next_unsigned(args, bits, f"invalid {what}")


def _tbl(args: Args, tbl: tuple[str, ...], what: str) -> int:
    v = args.next_arg()
    i = get_index(tbl, v)
    if i < 0:
        raise invarg(f"invalid {what}", v)
    return i


def _ifname(ctx: "Ctx", name: str) -> str:
    """``ll_name_to_index`` or ``nodev`` (measured: exit status 1)."""
    if ctx.net.get(name) is None:
        raise ToolError(f'Cannot find device "{name}"\n', 1)
    return name


def parse_bond_opts(ctx: "Ctx", argv: list[str]) -> dict[str, Any]:
    """``bond_parse_opt``: the IFLA_BOND_* attributes of the request."""
    o: dict[str, Any] = {}
    args = Args(argv)
    while args:
        a = args.cur
        if matches(a, "mode"):
            o["mode"] = _tbl(args, MODE_NAMES, "mode")
        elif matches(a, "active_slave"):
            o["active_slave"] = _ifname(ctx, args.next_arg())
        elif matches(a, "clear_active_slave"):
            o["active_slave"] = ""
        elif matches(a, "miimon"):
            o["miimon"] = _u(args, 32, "miimon")
        elif matches(a, "updelay"):
            o["updelay"] = _u(args, 32, "updelay")
        elif matches(a, "downdelay"):
            o["downdelay"] = _u(args, 32, "downdelay")
        elif matches(a, "peer_notify_delay"):
            o["peer_notif_delay"] = _u(args, 32, "peer_notify_delay")
        elif matches(a, "use_carrier"):
            o["use_carrier"] = _u(args, 8, "use_carrier")
        elif matches(a, "arp_interval"):
            o["arp_interval"] = _u(args, 32, "arp_interval")
        elif matches(a, "arp_ip_target"):
            targets: list[bytes] = []
            if args.i + 1 < len(args.argv):
                v = args.next_arg()
                for t in [x for x in v.split(",") if x][:16]:
                    targets.append(get_addr_ipv4(t))
            o["arp_ip_target"] = targets
        elif matches(a, "ns_ip6_target"):
            # like arp_ip_target: strtok on ",", at most BOND_MAX_NS_TARGETS, each through
            # get_addr(AF_INET6) (exit 1 "inet6 address is expected"); no argument sends
            # an empty nest, which clears the table
            ns: list[bytes] = []
            if args.i + 1 < len(args.argv):
                v = args.next_arg()
                for t in [x for x in v.split(",") if x][:16]:
                    ns.append(get_addr(t, AF_INET6).addr)
            o["ns_ip6_target"] = ns
        elif matches(a, "arp_validate"):
            o["arp_validate"] = _tbl(args, ARP_VALIDATE_NAMES, "arp_validate")
        elif matches(a, "arp_all_targets"):
            o["arp_all_targets"] = _tbl(args, ARP_ALL_TARGETS_NAMES, "arp_all_targets")
        elif a == "arp_missed_max":
            o["missed_max"] = _u(args, 8, "arp_missed_max")
        elif matches(a, "primary"):
            o["primary"] = _ifname(ctx, args.next_arg())
        elif matches(a, "primary_reselect"):
            o["primary_reselect"] = _tbl(args, PRI_RESELECT_NAMES, "primary_reselect")
        elif matches(a, "fail_over_mac"):
            o["fail_over_mac"] = _tbl(args, FAIL_OVER_MAC_NAMES, "fail_over_mac")
        elif matches(a, "xmit_hash_policy"):
            o["xmit_hash_policy"] = _tbl(args, XMIT_HASH_NAMES, "xmit_hash_policy")
        elif matches(a, "resend_igmp"):
            o["resend_igmp"] = _u(args, 32, "resend_igmp")
        elif matches(a, "num_grat_arp") or matches(a, "num_unsol_na"):
            o["num_peer_notif"] = _u(args, 8, "num_grat_arp|num_unsol_na")
        elif matches(a, "all_slaves_active"):
            o["all_slaves_active"] = _u(args, 8, "all_slaves_active")
        elif matches(a, "min_links"):
            o["min_links"] = _u(args, 32, "min_links")
        elif matches(a, "lp_interval"):
            o["lp_interval"] = _u(args, 32, "lp_interval")
        elif a == "packets_per_slave":
            o["packets_per_slave"] = _u(args, 32, "packets_per_slave")
        elif matches(a, "lacp_active"):
            o["lacp_active"] = _tbl(args, LACP_ACTIVE_NAMES, "lacp_active")
        elif matches(a, "lacp_rate"):
            o["lacp_rate"] = _tbl(args, LACP_RATE_NAMES, "lacp_rate")
        elif matches(a, "ad_select"):
            o["ad_select"] = _tbl(args, AD_SELECT_NAMES, "ad_select")
        elif matches(a, "ad_user_port_key"):
            o["ad_user_port_key"] = _u(args, 16, "ad_user_port_key")
        elif matches(a, "ad_actor_sys_prio"):
            o["ad_actor_sys_prio"] = _u(args, 16, "ad_actor_sys_prio")
        elif matches(a, "ad_actor_system"):
            v = args.next_arg()
            try:
                o["ad_actor_system"] = parse_lladdr(v)
            except ToolError:
                raise ToolError(f'"{v}" is invalid lladdr.\n', 1) from None
        elif matches(a, "tlb_dynamic_lb"):
            o["tlb_dynamic_lb"] = _u(args, 8, "tlb_dynamic_lb")
        elif matches(a, "help"):
            raise ToolError(USAGE, 1)
        else:
            raise ToolError(f'bond: unknown command "{a}"?\n' + USAGE, 1)
        args.advance()
    return o


def get_addr_ipv4(text: str) -> bytes:
    """lib/utils.c ``get_addr_ipv4`` (via ``get_addr32``): up to four ``strtoul`` parts
    (base 0) separated by dots, each <= 255; missing trailing parts are 0."""
    from netstack.cli.ipcommon import strtol
    out = bytearray(4)
    parts = text.split(".")
    if len(parts) > 4:
        _bad_addr(text)
    for i, part in enumerate(parts):
        n = strtol(part, 0) if part and part[0] not in "+- " else None
        if n is None or not 0 <= n <= 255:
            _bad_addr(text)
        out[i] = n  # type: ignore[index]
    return bytes(out)


def _bad_addr(t: str) -> bytes:
    """``get_addr32``: "Error: an IP address is expected rather than …", exit 1."""
    raise ToolError(f'Error: an IP address is expected rather than "{t}"\n', 1)


def link_add(ctx: "Ctx", req: "LinkReq", net: "Net") -> None:
    """``rtnl_newlink`` for kind bond: name checks, ``bond_changelink`` on the new
    device, then ``register_netdevice`` (carrier off)."""
    opts = parse_bond_opts(ctx, req.type_args)
    name = req.name or req.dev
    if req.link is not None:
        raise NotSupported("ip link add link DEV type bond")
    if name is not None and len(name) >= 16:
        raise KernelError(errno.EINVAL, "Attribute failed policy validation")
    if name is not None and name in net.devices:
        raise KernelError(errno.EEXIST)
    if req.index is not None and req.index in net.by_index:
        raise KernelError(errno.EEXIST)
    if req.address is not None and (req.address[0] & 1 or req.address == b"\0" * 6):
        raise KernelError(errno.EADDRNOTAVAIL)
    if name is None:
        i = 0
        while f"bond{i}" in net.devices:
            i += 1
        name = f"bond{i}"
    dev = BondDevice(name, req.address or ctx.world.random_mac())
    if req.address is not None:
        dev.addr_assign_type = NET_ADDR_SET
    if req.mtu is not None:
        if req.mtu < dev.min_mtu or req.mtu > dev.max_mtu:
            raise KernelError(errno.EINVAL)
        dev.mtu = req.mtu
    if req.txqlen is not None:
        dev.txqlen = req.txqlen
    if req.alias:
        dev.alias = req.alias
    dev.flags = (dev.flags | req.flags_on) & ~req.flags_off
    dev.net = net  # the options' setters may look at the namespace
    bond_changelink(dev, opts)
    dev.net = None
    register_bond(net, dev, req.index or 0)
    if req.up:
        net.dev_open(dev)


def link_change(ctx: "Ctx", req: "LinkReq", dev: BondDevice) -> None:
    """``ip link set BOND type bond …``: ``bond_changelink``."""
    bond_changelink(dev, parse_bond_opts(ctx, req.type_args))


# ------------------------------------------------------------------ output
def _attrs(dev: BondDevice) -> list[tuple[str, str, Any, str]]:
    """(json key, text keyword, value, text value) in ``bond_print_opt`` order, for the
    attributes ``bond_fill_info`` sends."""
    p = dev.params
    out: list[tuple[str, str, Any, str]] = [("mode", "mode", MODE_NAMES[p.mode],
                                            MODE_NAMES[p.mode])]
    if bond_mode_uses_primary(p.mode) and dev.curr_active is not None:
        n = dev.curr_active.dev.name
        out.append(("active_slave", "active_slave", n, n))
    for key, word, v in (("miimon", "miimon", p.miimon),
                         ("updelay", "updelay", p.updelay * p.miimon),
                         ("downdelay", "downdelay", p.downdelay * p.miimon),
                         ("peer_notify_delay", "peer_notify_delay",
                          p.peer_notif_delay * p.miimon),
                         ("use_carrier", "use_carrier", p.use_carrier),
                         ("arp_interval", "arp_interval", p.arp_interval),
                         ("arp_missed_max", "arp_missed_max", p.missed_max)):
        out.append((key, word, v, str(v)))
    if p.arp_targets:
        ts = [socket.inet_ntoa(t) for t in p.arp_targets]
        out.append(("arp_ip_target", "arp_ip_target", ts, ",".join(ts)))
    if p.ns_targets:
        ns = [inet6_ntop(t) for t in p.ns_targets]
        out.append(("ns_ip6_target", "ns_ip6_target", ns, ",".join(ns)))
    out.append(("arp_validate", "arp_validate",
                None if not p.arp_validate else ARP_VALIDATE_NAMES[p.arp_validate],
                ARP_VALIDATE_NAMES[p.arp_validate]))
    out.append(("arp_all_targets", "arp_all_targets", ARP_ALL_TARGETS_NAMES[p.arp_all_targets],
                ARP_ALL_TARGETS_NAMES[p.arp_all_targets]))
    if dev.primary_slave is not None:
        n = dev.primary_slave.dev.name
        out.append(("primary", "primary", n, n))
    for key, word, tbl, v in (("primary_reselect", "primary_reselect", PRI_RESELECT_NAMES,
                               p.primary_reselect),
                              ("fail_over_mac", "fail_over_mac", FAIL_OVER_MAC_NAMES,
                               p.fail_over_mac),
                              ("xmit_hash_policy", "xmit_hash_policy", XMIT_HASH_NAMES,
                               p.xmit_policy)):
        out.append((key, word, tbl[v], tbl[v]))
    for key, word, v in (("resend_igmp", "resend_igmp", p.resend_igmp),
                         ("num_peer_notif", "num_grat_arp", p.num_peer_notif),
                         ("all_slaves_active", "all_slaves_active", p.all_slaves_active),
                         ("min_links", "min_links", p.min_links),
                         ("lp_interval", "lp_interval", p.lp_interval),
                         ("packets_per_slave", "packets_per_slave", p.packets_per_slave)):
        out.append((key, word, v, str(v)))
    out.append(("ad_lacp_active", "lacp_active", LACP_ACTIVE_NAMES[p.lacp_active],
                LACP_ACTIVE_NAMES[p.lacp_active]))
    out.append(("ad_lacp_rate", "lacp_rate", LACP_RATE_NAMES[p.lacp_fast],
                LACP_RATE_NAMES[p.lacp_fast]))
    out.append(("ad_select", "ad_select", AD_SELECT_NAMES[p.ad_select],
                AD_SELECT_NAMES[p.ad_select]))
    if p.mode == BOND_MODE_8023AD:
        info = dev.ad.active_agg_info()
        if info is not None:
            mac = ":".join(f"{b:02x}" for b in info["partner_system"])
            out.append(("ad_info", "", {"aggregator": info["aggregator_id"],
                                        "num_ports": info["ports"],
                                        "actor_key": info["actor_key"],
                                        "partner_key": info["partner_key"],
                                        "partner_mac": mac},
                        f"ad_aggregator {info['aggregator_id']} ad_num_ports {info['ports']} "
                        f"ad_actor_key {info['actor_key']} ad_partner_key "
                        f"{info['partner_key']} ad_partner_mac {mac}"))
        sysmac = ":".join(f"{b:02x}" for b in p.ad_actor_system)
        out.append(("ad_actor_sys_prio", "ad_actor_sys_prio", p.ad_actor_sys_prio,
                    str(p.ad_actor_sys_prio)))
        out.append(("ad_user_port_key", "ad_user_port_key", p.ad_user_port_key,
                    str(p.ad_user_port_key)))
        out.append(("ad_actor_system", "ad_actor_system", sysmac, sysmac))
    out.append(("tlb_dynamic_lb", "tlb_dynamic_lb", p.tlb_dynamic_lb, str(p.tlb_dynamic_lb)))
    return out


def info_data_text(dev: BondDevice) -> str:
    """``bond_print_opt`` text (after ``bond ``)."""
    s = ""
    for _key, word, _v, text in _attrs(dev):
        s += f"{word} {text} " if word else f"{text} "
    return s


def info_data_json(dev: BondDevice) -> dict[str, Any]:
    """``bond_print_opt`` JSON (``info_data``)."""
    return {key: v for key, _w, v, _t in _attrs(dev)}


def parse_type_args(ctx: "Ctx", argv: list[str]) -> None:
    """The parse step alone (``bond_parse_opt``), for callers that must report argument
    errors before any kernel check."""
    parse_bond_opts(ctx, argv)
