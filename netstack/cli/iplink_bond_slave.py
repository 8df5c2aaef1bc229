"""``ip link set DEV type bond_slave …`` and the ``bond_slave`` part of ``ip -d [-j] link``
(iproute2 6.1 ip/iplink_bond_slave.c; kernel drivers/net/bonding/bond_netlink.c
``bond_slave_changelink``/``bond_fill_slave_info``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Args, get_integer, get_unsigned, invarg, matches

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.iplink import LinkReq
    from netstack.core.netdevice import NetDevice
    from netstack.drivers.bonding.bond_main import BondDevice, Slave

USAGE = "Usage: ... bond_slave [ queue_id ID ] [ prio PRIORITY ]\n"
SLAVE_STATES = ("ACTIVE", "BACKUP")
SLAVE_MII_STATUS = ("UP", "GOING_DOWN", "DOWN", "GOING_BACK")
#: LACP state bit names (print_slave_oper_state), bit 0 first
AD_STATE_NAMES = ("active", "short_timeout", "aggregating", "in_sync", "collecting",
                  "distributing", "defaulted", "expired")


def parse_slave_opts(argv: list[str]) -> dict[str, int]:
    """``bond_slave_parse_opt``."""
    o: dict[str, int] = {}
    args = Args(argv)
    while args:
        a = args.cur
        if matches(a, "queue_id"):
            v = args.next_arg()
            n = get_unsigned(v, 16)
            if n is None:
                raise invarg("queue_id is invalid", v)
            o["queue_id"] = n
        elif matches(a, "prio"):
            v = args.next_arg()
            n = get_integer(v)
            if n is None:
                raise invarg("prio is invalid", v)
            o["prio"] = n
        elif matches(a, "help"):
            raise ToolError(USAGE, 1)
        else:
            raise ToolError(f'bond_slave: unknown option "{a}"?\n' + USAGE, 1)
        args.advance()
    return o


def link_change(ctx: "Ctx", req: "LinkReq", dev: "NetDevice") -> None:
    """``bond_slave_changelink``: queue_id, then prio (which may change the active
    slave: ``bond_option_prio_set`` reselects)."""
    opts = parse_slave_opts(req.type_args)
    bond: BondDevice = dev.master  # type: ignore[assignment]
    s = bond.slave_of(dev)
    assert s is not None
    if "queue_id" in opts:
        s.queue_id = opts["queue_id"]
    if "prio" in opts:
        s.prio = opts["prio"]
        if bond.uses_primary():
            bond.select_active_slave()


def _state_words(state: int) -> list[str]:
    return [n for i, n in enumerate(AD_STATE_NAMES) if state & (1 << i)]


def slave_info_output(bond: "BondDevice", s: "Slave") -> tuple[str, dict[str, Any]]:
    """``bond_slave_print_opt`` text and JSON for what ``bond_fill_slave_info`` sends."""
    mac = ":".join(f"{b:02x}" for b in s.perm_hwaddr)
    js: dict[str, Any] = {"state": SLAVE_STATES[s.backup],
                          "mii_status": SLAVE_MII_STATUS[s.link],
                          "link_failure_count": s.link_failure_count,
                          "perm_hwaddr": mac, "queue_id": s.queue_id, "prio": s.prio}
    text = (f"state {SLAVE_STATES[s.backup]} mii_status {SLAVE_MII_STATUS[s.link]} "
            f"link_failure_count {s.link_failure_count} perm_hwaddr {mac} "
            f"queue_id {s.queue_id} prio {s.prio} ")
    port = s.ad_port
    if bond.params.mode == 4 and port is not None and port.aggregator is not None:
        a, p = port.actor_oper_port_state, port.partner_oper.port_state
        js["ad_aggregator_id"] = port.aggregator.aggregator_identifier
        js["ad_actor_oper_port_state"] = a
        js["ad_actor_oper_port_state_str"] = _state_words(a)
        js["ad_partner_oper_port_state"] = p
        js["ad_partner_oper_port_state_str"] = _state_words(p)
        text += (f"ad_aggregator_id {port.aggregator.aggregator_identifier} "
                 f"ad_actor_oper_port_state {a} "
                 f"ad_actor_oper_port_state_str <{','.join(_state_words(a))}> "
                 f"ad_partner_oper_port_state {p} "
                 f"ad_partner_oper_port_state_str <{','.join(_state_words(p))}> ")
    return text, js


def parse_type_args(ctx: "Ctx", argv: list[str]) -> None:
    """The parse step alone (``bond_slave_parse_opt``), for callers that must report
    argument errors before any kernel check."""
    parse_slave_opts(argv)
