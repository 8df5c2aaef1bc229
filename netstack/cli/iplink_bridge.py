"""``ip link add NAME type bridge …`` / ``ip link set NAME type bridge …`` and the bridge
part of ``ip -d link`` (iproute2 6.1 ip/iplink_bridge.c; kernel net/bridge/br_netlink.c
``br_changelink`` and ``br_fill_info``).

Times are clock_t (centiseconds) on the command line and in the output, as netlink
carries them.  The kernel's range checks (ERANGE for forward_delay with STP, hello_time,
max_age; EINVAL for a restricted group_fwd_mask or a non-link-local group_address) are
reproduced in ``br_changelink``'s order.  netstack models a kernel built with
CONFIG_BRIDGE_VLAN_FILTERING (vlan_protocol, vlan_default_pvid, vlan_stats_* shown).
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Args, get_unsigned, invarg, matches, parse_lladdr
from netstack.drivers.bridge.br_private import (BR_GROUPFWD_RESTRICTED, BR_NO_STP,
                                                NS_PER_CLOCK_T, br2_hook)
from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.iplink import LinkReq
    from netstack.drivers.bridge.br_device import BridgeDevice

USAGE = """Usage: ... bridge [ fdb_flush ]
\t\t  [ forward_delay FORWARD_DELAY ]
\t\t  [ hello_time HELLO_TIME ]
\t\t  [ max_age MAX_AGE ]
\t\t  [ ageing_time AGEING_TIME ]
\t\t  [ stp_state STP_STATE ]
\t\t  [ priority PRIORITY ]
\t\t  [ group_fwd_mask MASK ]
\t\t  [ group_address ADDRESS ]
\t\t  [ no_linklocal_learn NO_LINKLOCAL_LEARN ]
\t\t  [ vlan_filtering VLAN_FILTERING ]
\t\t  [ vlan_protocol VLAN_PROTOCOL ]
\t\t  [ vlan_default_pvid VLAN_DEFAULT_PVID ]
\t\t  [ vlan_stats_enabled VLAN_STATS_ENABLED ]
\t\t  [ vlan_stats_per_port VLAN_STATS_PER_PORT ]
\t\t  [ mcast_snooping MULTICAST_SNOOPING ]
\t\t  [ mcast_vlan_snooping MULTICAST_VLAN_SNOOPING ]
\t\t  [ mcast_router MULTICAST_ROUTER ]
\t\t  [ mcast_query_use_ifaddr MCAST_QUERY_USE_IFADDR ]
\t\t  [ mcast_querier MULTICAST_QUERIER ]
\t\t  [ mcast_hash_elasticity HASH_ELASTICITY ]
\t\t  [ mcast_hash_max HASH_MAX ]
\t\t  [ mcast_last_member_count LAST_MEMBER_COUNT ]
\t\t  [ mcast_startup_query_count STARTUP_QUERY_COUNT ]
\t\t  [ mcast_last_member_interval LAST_MEMBER_INTERVAL ]
\t\t  [ mcast_membership_interval MEMBERSHIP_INTERVAL ]
\t\t  [ mcast_querier_interval QUERIER_INTERVAL ]
\t\t  [ mcast_query_interval QUERY_INTERVAL ]
\t\t  [ mcast_query_response_interval QUERY_RESPONSE_INTERVAL ]
\t\t  [ mcast_startup_query_interval STARTUP_QUERY_INTERVAL ]
\t\t  [ mcast_stats_enabled MCAST_STATS_ENABLED ]
\t\t  [ mcast_igmp_version IGMP_VERSION ]
\t\t  [ mcast_mld_version MLD_VERSION ]
\t\t  [ nf_call_iptables NF_CALL_IPTABLES ]
\t\t  [ nf_call_ip6tables NF_CALL_IP6TABLES ]
\t\t  [ nf_call_arptables NF_CALL_ARPTABLES ]

Where: VLAN_PROTOCOL := { 802.1Q | 802.1ad }
"""

#: (keyword, bits, text key, json key, default) of the multicast options, in
#: bridge_print_opt's order.  BR2's br_multicast owns their behaviour.
MCAST_OPTS: tuple[tuple[str, int, str, str, int], ...] = (
    ("mcast_router", 8, "mcast_router", "mcast_router", 1),
    ("mcast_query_use_ifaddr", 8, "mcast_query_use_ifaddr", "mcast_query_use_ifaddr", 0),
    ("mcast_querier", 8, "mcast_querier", "mcast_querier", 0),
    ("mcast_hash_elasticity", 32, "mcast_hash_elasticity", "mcast_hash_elasticity", 16),
    ("mcast_hash_max", 32, "mcast_hash_max", "mcast_hash_max", 4096),
    ("mcast_last_member_count", 32, "mcast_last_member_count", "mcast_last_member_cnt", 2),
    ("mcast_startup_query_count", 32, "mcast_startup_query_count",
     "mcast_startup_query_cnt", 2),
    ("mcast_last_member_interval", 64, "mcast_last_member_interval",
     "mcast_last_member_intvl", 100),
    ("mcast_membership_interval", 64, "mcast_membership_interval",
     "mcast_membership_intvl", 26000),
    ("mcast_querier_interval", 64, "mcast_querier_interval", "mcast_querier_intvl", 25500),
    ("mcast_query_interval", 64, "mcast_query_interval", "mcast_query_intvl", 12500),
    ("mcast_query_response_interval", 64, "mcast_query_response_interval",
     "mcast_query_response_intvl", 1000),
    ("mcast_startup_query_interval", 64, "mcast_startup_query_interval",
     "mcast_startup_query_intvl", 3124),
    ("mcast_stats_enabled", 8, "mcast_stats_enabled", "mcast_stats_enabled", 0),
    ("mcast_igmp_version", 8, "mcast_igmp_version", "mcast_igmp_version", 2),
    ("mcast_mld_version", 8, "mcast_mld_version", "mcast_mld_version", 1),
)
_MCAST_DEFAULTS = {"mcast_snooping": 1, "mcast_vlan_snooping": 0,
                   **{k: d for k, _, _, _, d in MCAST_OPTS}}

# br_private.h BR_MIN/MAX_* (jiffies → clock_t here)
BR_MIN_FORWARD_DELAY, BR_MAX_FORWARD_DELAY = 200, 3000
BR_MIN_HELLO_TIME, BR_MAX_HELLO_TIME = 100, 1000
BR_MIN_MAX_AGE, BR_MAX_MAX_AGE = 600, 4000
_VLAN_PROTOS = {"802.1q": 0x8100, "802.1ad": 0x88A8}


def next_unsigned(args: Args, bits: int, msg: str) -> int:
    """The next word as a ``bits``-wide unsigned number (iproute2 ``get_u8``/``get_u16``/
    ``get_u32`` after ``NEXT_ARG``), else ``invarg(msg, word)``: the step every
    ``*_parse_opt`` of ip/iplink_bridge.c, iplink_bridge_slave.c, iplink_bond.c and
    bridge/fdb.c, bridge/mdb.c repeat for a numeric option, so those parsers share it."""
    v = args.next_arg()
    n = get_unsigned(v, bits)
    if n is None:
        raise invarg(msg, v)
    return n


def _num(args: Args, word: str, bits: int) -> int:
    """A numeric bridge option: "invalid WORD" is iplink_bridge.c's message for all."""
    return next_unsigned(args, bits, f"invalid {word}")


def parse_bridge_opts(argv: list[str]) -> list[tuple[str, Any]]:
    """``bridge_parse_opt``: (attribute, value) in command-line order."""
    out: list[tuple[str, Any]] = []
    args = Args(argv)
    u32 = ("forward_delay", "hello_time", "max_age", "ageing_time", "stp_state")
    while args:
        a = args.cur
        if a in u32 or any(matches(a, w) for w in u32):
            w = next(w for w in u32 if a == w or matches(a, w))
            out.append((w, _num(args, w, 32)))
        elif matches(a, "priority"):
            out.append(("priority", _num(args, "priority", 16)))
        elif matches(a, "vlan_filtering"):
            out.append(("vlan_filtering", _num(args, "vlan_filtering", 8)))
        elif matches(a, "vlan_protocol"):
            v = args.next_arg()
            p = _VLAN_PROTOS.get(v.lower())
            if p is None:
                raise invarg("invalid vlan_protocol", v)
            out.append(("vlan_protocol", p))
        elif matches(a, "group_fwd_mask"):
            out.append(("group_fwd_mask", _num(args, "group_fwd_mask", 16)))
        elif matches(a, "group_address"):
            v = args.next_arg()
            mac = parse_lladdr(v)
            if len(mac) != 6:
                raise invarg("invalid group address", v)
            out.append(("group_address", mac))
        elif matches(a, "fdb_flush"):
            out.append(("fdb_flush", True))
        elif matches(a, "vlan_default_pvid"):
            out.append(("vlan_default_pvid", _num(args, "vlan_default_pvid", 16)))
        elif matches(a, "vlan_stats_enabled"):
            out.append(("vlan_stats_enabled", _num(args, "vlan_stats_enabled", 8)))
        elif matches(a, "vlan_stats_per_port"):
            out.append(("vlan_stats_per_port", _num(args, "vlan_stats_per_port", 8)))
        elif matches(a, "no_linklocal_learn"):
            out.append(("no_linklocal_learn", _num(args, "no_linklocal_learn", 8)))
        elif a == "mcast_snooping" or a == "mcast_vlan_snooping":
            out.append((a, _num(args, a, 8)))
        elif any(a == k for k, *_ in MCAST_OPTS):
            bits = next(b for k, b, *_ in MCAST_OPTS if k == a)
            out.append((a, _num(args, a, bits)))
        elif a in ("nf_call_iptables", "nf_call_ip6tables", "nf_call_arptables"):
            out.append((a, _num(args, a, 8)))
        elif matches(a, "help"):
            raise ToolError(USAGE, 1)
        else:
            raise ToolError(f'bridge: unknown command "{a}"?\n' + USAGE, 1)
        args.advance()
    return out


def br_changelink(dev: "BridgeDevice", opts: list[tuple[str, Any]]) -> None:
    """``br_changelink``: attributes in the kernel's order of handling — forward_delay is
    checked before stp_state, so ``stp_state 1 forward_delay 100`` is accepted and then
    clamped to 2 s by br_stp_start (measured)."""
    from netstack.drivers.bridge import br_stp, br_vlan
    from netstack.drivers.bridge.br_fdb import br_fdb_flush_dynamic
    br = dev.br
    d = dict(opts)
    order = ("forward_delay", "hello_time", "max_age", "ageing_time", "stp_state",
             "priority", "vlan_filtering", "vlan_protocol", "vlan_default_pvid",
             "vlan_stats_enabled", "vlan_stats_per_port", "group_fwd_mask", "group_address",
             "fdb_flush", "mcast_router", "mcast_snooping", "mcast_query_use_ifaddr",
             "mcast_querier", "mcast_hash_elasticity", "mcast_hash_max",
             "mcast_last_member_count", "mcast_startup_query_count",
             "mcast_last_member_interval", "mcast_membership_interval",
             "mcast_querier_interval", "mcast_query_interval",
             "mcast_query_response_interval", "mcast_startup_query_interval",
             "mcast_stats_enabled", "mcast_igmp_version", "mcast_mld_version",
             "nf_call_iptables", "nf_call_ip6tables", "nf_call_arptables",
             "no_linklocal_learn", "mcast_vlan_snooping")
    for key in order:
        if key not in d:
            continue
        v = d[key]
        if key == "stp_state":
            br_stp.br_stp_set_enabled(br, 1 if v else 0)
        elif key == "forward_delay":
            if br.stp_enabled != BR_NO_STP and not BR_MIN_FORWARD_DELAY <= v <= \
                    BR_MAX_FORWARD_DELAY:
                raise KernelError(errno.ERANGE)
            br.bridge_forward_delay = v * NS_PER_CLOCK_T
            if br_stp.br_is_root_bridge(br):
                br.forward_delay = br.bridge_forward_delay
        elif key == "hello_time":
            if not BR_MIN_HELLO_TIME <= v <= BR_MAX_HELLO_TIME:
                raise KernelError(errno.ERANGE)
            br.bridge_hello_time = v * NS_PER_CLOCK_T
            if br_stp.br_is_root_bridge(br):
                br.hello_time = br.bridge_hello_time
        elif key == "max_age":
            if not BR_MIN_MAX_AGE <= v <= BR_MAX_MAX_AGE:
                raise KernelError(errno.ERANGE)
            br.bridge_max_age = v * NS_PER_CLOCK_T
            if br_stp.br_is_root_bridge(br):
                br.max_age = br.bridge_max_age
        elif key == "ageing_time":
            br.bridge_ageing_time = v * NS_PER_CLOCK_T
            if not br.topology_change:
                br.ageing_time = br.bridge_ageing_time
            if br.gc_timer is not None and br.gc_timer.active:
                br.gc_timer.mod_in(0)
        elif key == "priority":
            br_stp.br_stp_set_bridge_priority(br, v)
        elif key == "vlan_filtering":
            br_vlan.br_vlan_filter_toggle(br, bool(v))
            _recalc_fwd_mask(br)
        elif key == "vlan_protocol":
            br_vlan.br_vlan_set_proto(br, v)
            _recalc_fwd_mask(br)
        elif key == "vlan_default_pvid":
            br_vlan.br_vlan_set_default_pvid(br, v)
        elif key == "vlan_stats_enabled":
            if v > 1:
                raise KernelError(errno.EINVAL)
            br.vlan_stats_enabled = bool(v)
        elif key == "vlan_stats_per_port":
            if v > 1:
                raise KernelError(errno.EINVAL)
            br.vlan_stats_per_port = bool(v)
        elif key == "group_fwd_mask":
            if v & BR_GROUPFWD_RESTRICTED:
                raise KernelError(errno.EINVAL)
            br.group_fwd_mask = v
        elif key == "group_address":
            if v[:5] != b"\x01\x80\xc2\x00\x00" or v[5] & 0xF0:
                raise KernelError(errno.EINVAL)
            if v[5] in (1, 2):  # pause frames and LACP are never STP's
                raise KernelError(errno.EINVAL)
            br.group_addr = bytes(v)
            br.group_addr_set = True
        elif key == "fdb_flush":
            br_fdb_flush_dynamic(br)
        elif key.startswith("mcast_"):
            _set_mcast(br, key, v)
        elif key == "nf_call_iptables":
            br.nf_call_iptables = bool(v)
        elif key == "nf_call_ip6tables":
            br.nf_call_ip6tables = bool(v)
        elif key == "nf_call_arptables":
            br.nf_call_arptables = bool(v)
        elif key == "no_linklocal_learn":
            br.no_linklocal_learn = bool(v)


def _recalc_fwd_mask(br) -> None:  # type: ignore[no-untyped-def]
    """``br_recalculate_fwd_mask``: an 802.1ad bridge forwards the customer groups."""
    br.group_fwd_mask_required = 0xB801 if (br.vlan_enabled and br.vlan_proto == 0x88A8) \
        else 0


def _set_mcast(br, key: str, v: int) -> None:  # type: ignore[no-untyped-def]
    """Multicast options belong to BR2's br_multicast; without it only the defaults are
    accepted, and ``mcast_snooping 0`` — flooding all multicast is exactly what a bridge
    without snooping state does."""
    opts = mcast_opts(br)
    fn = br2_hook("br_multicast", "br_multicast_set_option")
    if fn is not None and br.multicast is not None:
        fn(br, key, v)
    elif v != _MCAST_DEFAULTS.get(key) and not (key == "mcast_snooping" and v == 0):
        raise NotSupported(f"ip link set ... type bridge {key} {v}")
    opts[key] = v


def mcast_opts(br) -> dict[str, int]:  # type: ignore[no-untyped-def]
    d = br.__dict__.get("mcast_opts")
    if d is None:
        d = dict(_MCAST_DEFAULTS)
        br.mcast_opts = d
    return d


def newlink_finish(net: Any, dev: Any, req: "LinkReq") -> None:
    """The generic attributes ``rtnl_create_link``/``rtnl_newlink`` apply to a new device
    (net/core/rtnetlink.c): IFLA_TXQLEN, IFLA_IFALIAS, the ifinfomsg flag change, then
    ``dev_open`` for ``up``; the last step of the bridge, macvlan/macvtap and
    ipvlan/ipvtap ``link_add``."""
    if req.txqlen is not None:
        dev.txqlen = req.txqlen
    if req.alias:
        dev.alias = req.alias
    dev.flags = (dev.flags | req.flags_on) & ~req.flags_off
    if req.up:
        net.dev_open(dev)


def link_add(ctx: "Ctx", req: "LinkReq", net: Any) -> None:
    """``rtnl_newlink`` for kind bridge: ``br_dev_newlink`` then ``br_changelink``."""
    from netstack.drivers.bridge.br_device import br_dev_newlink
    opts = parse_bridge_opts(req.type_args)
    name = req.name or req.dev
    if name is not None and len(name) >= 16:
        raise KernelError(errno.EINVAL, "Attribute failed policy validation")
    if name is None:
        i = 0
        while f"bridge{i}" in net.devices:
            i += 1
        name = f"bridge{i}"
    if name in net.devices:
        raise KernelError(errno.EEXIST)
    if req.index is not None and req.index in net.by_index:
        raise KernelError(errno.EEXIST)
    if req.address is not None and (len(req.address) != 6 or req.address[0] & 1
                                    or req.address == b"\0" * 6):
        raise KernelError(errno.EADDRNOTAVAIL)
    dev = br_dev_newlink(net, name, req.address, req.index or 0)
    try:
        br_changelink(dev, opts)
    except (KernelError, NotSupported):
        dev.dellink()
        raise
    if req.mtu is not None:
        if not 68 <= req.mtu <= 65535:
            dev.dellink()
            raise KernelError(errno.EINVAL)
        dev.mtu = req.mtu
        dev.mtu_set_by_user = True
    newlink_finish(net, dev, req)


def link_change(ctx: "Ctx", req: "LinkReq", dev: "BridgeDevice") -> None:
    """``ip link set DEV type bridge …`` (``br_changelink``)."""
    br_changelink(dev, parse_bridge_opts(req.type_args))


# ------------------------------------------------------------------------ output
def bridge_id_str(bid: bytes) -> str:
    """iproute2 ``br_dump_bridge_id``: ``%.2x%.2x.%x:%x:%x:%x:%x:%x``."""
    return f"{bid[0]:02x}{bid[1]:02x}." + ":".join(f"{b:x}" for b in bid[2:8])


def timer_value(dev: "BridgeDevice", t: Any) -> float:
    """A timer's remaining time in seconds with centisecond resolution (br_timer_value →
    clock_t; iproute2 prints ``%4i.%.2i``)."""
    if t is None or not t.active:
        return 0.0
    now = dev.net.world.clock.now if dev.net is not None else 0
    cs = max(0, t.expires - now) // NS_PER_CLOCK_T
    return cs / 100


def timer_text(v: float) -> str:
    cs = int(round(v * 100))
    return f"{cs // 100:4d}.{cs % 100:02d}"


def _fields(dev: "BridgeDevice") -> list[tuple[str, str, str, Any]]:
    """(text key, text value, json key, json value) in bridge_print_opt's order."""
    br = dev.br
    c = NS_PER_CLOCK_T
    m = mcast_opts(br)
    info = br2_hook("br_multicast", "br_multicast_info")
    if info is not None and br.multicast is not None:
        m = {**m, **dict(info(br))}
    gfm = br.group_fwd_mask
    gfm_s = f"{gfm:#x}" if gfm else "0"
    out: list[tuple[str, str, str, Any]] = [
        ("forward_delay", str(br.bridge_forward_delay // c), "forward_delay",
         br.bridge_forward_delay // c),
        ("hello_time", str(br.bridge_hello_time // c), "hello_time", br.bridge_hello_time // c),
        ("max_age", str(br.bridge_max_age // c), "max_age", br.bridge_max_age // c),
        ("ageing_time", str(br.ageing_time // c), "ageing_time", br.ageing_time // c),
        ("stp_state", str(br.stp_enabled), "stp_state", br.stp_enabled),
        ("priority", str(br.priority), "priority", br.priority),
        ("vlan_filtering", str(int(br.vlan_enabled)), "vlan_filtering", int(br.vlan_enabled)),
        ("vlan_protocol", "802.1Q" if br.vlan_proto == 0x8100 else "802.1ad",
         "vlan_protocol", "802.1Q" if br.vlan_proto == 0x8100 else "802.1ad"),
        ("bridge_id", bridge_id_str(br.bridge_id), "bridge_id", bridge_id_str(br.bridge_id)),
        # iproute2 6.1 formats "root_id"/designated_root from IFLA_BR_BRIDGE_ID, not
        # IFLA_BR_ROOT_ID (measured: a non-root bridge shows its own id there)
        ("designated_root", bridge_id_str(br.bridge_id), "root_id",
         bridge_id_str(br.bridge_id)),
        ("root_port", str(br.root_port), "root_port", br.root_port),
        ("root_path_cost", str(br.root_path_cost), "root_path_cost", br.root_path_cost),
        ("topology_change", str(int(br.topology_change)), "topology_change",
         int(br.topology_change)),
        ("topology_change_detected", str(int(br.topology_change_detected)),
         "topology_change_detected", int(br.topology_change_detected)),
    ]
    for tk, t in (("hello_timer", br.hello_timer), ("tcn_timer", br.tcn_timer),
                  ("topology_change_timer", br.topology_change_timer),
                  ("gc_timer", br.gc_timer)):
        v = timer_value(dev, t)
        out.append((tk, timer_text(v), tk, v))
    out += [
        ("vlan_default_pvid", str(br.default_pvid), "vlan_default_pvid", br.default_pvid),
        ("vlan_stats_enabled", str(int(br.vlan_stats_enabled)), "vlan_stats_enabled",
         int(br.vlan_stats_enabled)),
        ("vlan_stats_per_port", str(int(br.vlan_stats_per_port)), "vlan_stats_per_port",
         int(br.vlan_stats_per_port)),
        ("group_fwd_mask", gfm_s, "group_fwd_mask", gfm_s),
        ("group_address", ":".join(f"{b:02x}" for b in br.group_addr), "group_addr",
         ":".join(f"{b:02x}" for b in br.group_addr)),
        ("mcast_snooping", str(m["mcast_snooping"]), "mcast_snooping", m["mcast_snooping"]),
        ("no_linklocal_learn", str(int(br.no_linklocal_learn)), "no_linklocal_learn",
         int(br.no_linklocal_learn)),
        ("mcast_vlan_snooping", str(m["mcast_vlan_snooping"]), "mcast_vlan_snooping",
         m["mcast_vlan_snooping"]),
    ]
    for key, _, tkey, jkey, _ in MCAST_OPTS:
        out.append((tkey, str(m[key]), jkey, m[key]))
    out += [
        ("nf_call_iptables", str(int(br.nf_call_iptables)), "nf_call_iptables",
         int(br.nf_call_iptables)),
        ("nf_call_ip6tables", str(int(br.nf_call_ip6tables)), "nf_call_ip6tables",
         int(br.nf_call_ip6tables)),
        ("nf_call_arptables", str(int(br.nf_call_arptables)), "nf_call_arptables",
         int(br.nf_call_arptables)),
    ]
    return out


def info_data_text(dev: "BridgeDevice") -> str:
    """``bridge_print_opt`` text (after ``bridge ``)."""
    return "".join(f"{k} {v} " for k, v, _, _ in _fields(dev))


class _Timer(float):
    """A timer value that JSON prints with two decimals (iproute2 ``%.2f``: measured
    ``"hello_timer":0.00``); ``json_text`` is what netstack/cli/jsonout.py prints for it
    (patch BR3-1)."""

    def __repr__(self) -> str:
        return f"{float(self):.2f}"

    def json_text(self) -> str:
        return f"{float(self):.2f}"


def info_data_json(dev: "BridgeDevice") -> dict[str, Any]:
    """``bridge_print_opt`` JSON (``info_data``)."""
    out: dict[str, Any] = {}
    for tk, _, jk, jv in _fields(dev):
        out[jk] = _Timer(jv) if tk.endswith("_timer") else jv
    return out
