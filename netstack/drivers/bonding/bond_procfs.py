"""``/proc/net/bonding/BOND`` (drivers/net/bonding/bond_procfs.c).

The text ``bond_info_seq_show`` writes: the version banner (``"Ethernet Channel Bonding
Driver: v" UTS_RELEASE`` and an empty line), ``bond_info_show_master`` (mode, hash policy,
primary/active slave for the primary-using modes, MII and ARP monitor settings, the
802.3ad block with the active aggregator) and one ``bond_info_show_slave`` block per
slave (with the 802.3ad actor/partner details as root sees them).
"""
from __future__ import annotations

import platform
import socket
from typing import TYPE_CHECKING

from netstack.drivers.bonding import bond_3ad as ad
from netstack.drivers.bonding.bond_options import (
    AD_SELECT_NAMES, BOND_MODE_8023AD, BOND_MODE_ACTIVEBACKUP, BOND_MODE_TLB, BOND_MODE_XOR,
    FAIL_OVER_MAC_NAMES, MODE_DESC, PRI_RESELECT_NAMES, XMIT_HASH_NAMES,
    bond_mode_uses_primary,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.drivers.bonding.bond_main import BondDevice, Slave

_LINK_STATUS = {0: "up", 1: "going down", 2: "down", 3: "going back"}


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def bond_mode_uses_xmit_hash(bond: "BondDevice") -> bool:
    """``bond_mode_uses_xmit_hash``."""
    m = bond.params.mode
    return m in (BOND_MODE_8023AD, BOND_MODE_XOR) or (m == BOND_MODE_TLB
                                                      and not bond.params.tlb_dynamic_lb)


def uts_release() -> str:
    """UTS_RELEASE: the running kernel's release, as the module built for it prints."""
    return platform.release()


def _master(bond: "BondDevice") -> str:
    p = bond.params
    out = f"Bonding Mode: {MODE_DESC[p.mode]}"
    if p.mode == BOND_MODE_ACTIVEBACKUP and p.fail_over_mac:
        out += f" (fail_over_mac {FAIL_OVER_MAC_NAMES[p.fail_over_mac]})"
    out += "\n"
    if bond_mode_uses_xmit_hash(bond):
        out += f"Transmit Hash Policy: {XMIT_HASH_NAMES[p.xmit_policy]} ({p.xmit_policy})\n"
    if bond_mode_uses_primary(p.mode):
        prim = bond.primary_slave
        out += f"Primary Slave: {prim.dev.name if prim else 'None'}"
        if prim is not None:
            out += f" (primary_reselect {PRI_RESELECT_NAMES[p.primary_reselect]})"
        cur = bond.curr_active
        out += f"\nCurrently Active Slave: {cur.dev.name if cur else 'None'}\n"
    out += f"MII Status: {'up' if bond.carrier_ok() else 'down'}\n"
    out += f"MII Polling Interval (ms): {p.miimon}\n"
    out += f"Up Delay (ms): {p.updelay * p.miimon}\n"
    out += f"Down Delay (ms): {p.downdelay * p.miimon}\n"
    out += f"Peer Notification Delay (ms): {p.peer_notif_delay * p.miimon}\n"
    if p.arp_interval > 0:
        out += f"ARP Polling Interval (ms): {p.arp_interval}\n"
        out += f"ARP Missed Max: {p.missed_max}\n"
        out += "ARP IP target/s (n.n.n.n form):"
        out += ",".join(" " + socket.inet_ntoa(t) for t in p.arp_targets) + "\n"
        # %pI6c of each ns_targets slot (bond_info_show_master)
        from netstack.cli.ipcommon import inet6_ntop
        out += "NS IPv6 target/s (xx::xx form):"
        out += ",".join(" " + inet6_ntop(t) for t in p.ns_targets) + "\n"
    if p.mode == BOND_MODE_8023AD:
        out += "\n802.3ad info\n"
        out += f"LACP active: {'on' if p.lacp_active else 'off'}\n"
        out += f"LACP rate: {'fast' if p.lacp_fast else 'slow'}\n"
        out += f"LACP coupled_control: {'on' if p.coupled_control else 'off'}\n"
        out += f"Min links: {p.min_links}\n"
        out += f"Aggregator selection policy (ad_select): {AD_SELECT_NAMES[p.ad_select]}\n"
        out += f"System priority: {bond.ad.sys_priority}\n"
        out += f"System MAC address: {_mac(bond.ad.sys_mac)}\n"
        info = bond.ad.active_agg_info()
        if info is None:
            out += f"bond {bond.name} has no active aggregator\n"
        else:
            out += ("Active Aggregator Info:\n"
                    f"\tAggregator ID: {info['aggregator_id']}\n"
                    f"\tNumber of ports: {info['ports']}\n"
                    f"\tActor Key: {info['actor_key']}\n"
                    f"\tPartner Key: {info['partner_key']}\n"
                    f"\tPartner Mac Address: {_mac(info['partner_system'])}\n")
    return out


def _slave(bond: "BondDevice", s: "Slave") -> str:
    out = f"\nSlave Interface: {s.dev.name}\n"
    out += f"MII Status: {_LINK_STATUS.get(s.link, 'unknown')}\n"
    out += "Speed: Unknown\n" if s.speed is None else f"Speed: {s.speed} Mbps\n"
    out += "Duplex: unknown\n" if s.duplex is None else \
        f"Duplex: {'full' if s.duplex else 'half'}\n"
    out += f"Link Failure Count: {s.link_failure_count}\n"
    out += f"Permanent HW addr: {_mac(s.perm_hwaddr)}\n"
    out += f"Slave queue ID: {s.queue_id}\n"
    if bond.params.mode == BOND_MODE_8023AD:
        port = s.ad_port
        agg = port.aggregator if port is not None else None
        if port is None or agg is None:
            out += "Aggregator ID: N/A\n"
        else:
            po = port.partner_oper
            out += (f"Aggregator ID: {agg.aggregator_identifier}\n"
                    f"Actor Churn State: {ad.CHURN_DESC[port.sm_churn_actor_state]}\n"
                    f"Partner Churn State: {ad.CHURN_DESC[port.sm_churn_partner_state]}\n"
                    f"Actor Churned Count: {port.churn_actor_count}\n"
                    f"Partner Churned Count: {port.churn_partner_count}\n"
                    "details actor lacp pdu:\n"
                    f"    system priority: {port.actor_system_priority}\n"
                    f"    system mac address: {_mac(port.actor_system)}\n"
                    f"    port key: {port.actor_oper_port_key}\n"
                    f"    port priority: {port.actor_port_priority}\n"
                    f"    port number: {port.actor_port_number}\n"
                    f"    port state: {port.actor_oper_port_state}\n"
                    "details partner lacp pdu:\n"
                    f"    system priority: {po.system_priority}\n"
                    f"    system mac address: {_mac(po.system)}\n"
                    f"    oper key: {po.key}\n"
                    f"    port priority: {po.port_priority}\n"
                    f"    port number: {po.port_number}\n"
                    f"    port state: {po.port_state}\n")
    return out


def bond_info_text(bond: "BondDevice") -> str:
    """The whole file."""
    out = f"Ethernet Channel Bonding Driver: v{uts_release()}\n\n"
    out += _master(bond)
    for s in bond.slaves:
        out += _slave(bond, s)
    return out
