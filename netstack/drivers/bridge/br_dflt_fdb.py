"""The default FDB of a device without one of its own (net/core/rtnetlink.c
``ndo_dflt_fdb_add``/``ndo_dflt_fdb_del``/``ndo_dflt_fdb_dump``): the device's unicast and
multicast hardware address lists (``dev->uc``, ``dev->mc``, net/core/dev_addr_lists.c).

Why it is here: ``bridge fdb show`` prints these lists as ``ADDR dev DEV self permanent``
for every Ethernet device that has no ``ndo_fdb_dump`` of its own (veth, a bridge port,
the bridge itself before its table), and ``bridge fdb add ADDR dev DEV self`` on such a
device adds to them.

netstack has no hardware multicast list in the core, so :func:`dev_mc_list` rebuilds the
kernel's ``dev->mc`` from the protocol state that fills it, in the order measured on
Linux 6.18 for a device brought up once:

1. IPv6 all-nodes ``33:33:00:00:00:01`` (``ipv6_add_dev`` joins ff02::1 at NETDEV_REGISTER;
   ``igmp6_group_added`` loads it into ``dev->mc`` even while the device is down),
2. on an up bridge with snooping, the snoopers groups ``01:00:5e:00:00:6a`` and
   ``33:33:00:00:00:6a`` (``br_multicast_join_snoopers`` from ``br_dev_open``, before the
   NETDEV_UP notifiers),
3. IPv4 all-hosts ``01:00:5e:00:00:01`` (``ip_mc_up`` at NETDEV_UP),
4. the other IPv6 groups the device joined, in joining order (solicited-node of each
   address, ff02::2 with forwarding — ``ipv6_eth_mc_map``; groups narrower than
   link-local scope are never loaded),
5. the other entries of the core list (netstack/core/dev_addr_lists.py): what upper
   devices synced down and ``bridge fdb add … self`` added.

A never-opened device lists (1) and (5).  Once a device went down (seen by the bridge's
netdevice notifier, :func:`note_updown`), ``ipv6_mc_down``/``ip_mc_down`` have unloaded
the protocol groups: a down device lists (5) only, and after the next up (5) comes first,
then (2), (3), (1) and (4) — all measured.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core.netdevice import ARPHRD_ETHER, IFF_UP
from netstack.core.rtnl_fdb import NLM_F_EXCL, NUD_PERMANENT
from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice
    from netstack.core.rtnl_fdb import FdbRequest

ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
ALL_HOSTS_MAC = b"\x01\x00\x5e\x00\x00\x01"
SNOOPERS_MACS = (b"\x01\x00\x5e\x00\x00\x6a", b"\x33\x33\x00\x00\x00\x6a")


def _ipv6_groups(dev: "NetDevice") -> list[bytes]:
    """The IPv6 groups loaded into ``dev->mc`` (scope ≥ link-local, ``igmp6_group_added``),
    as ``ipv6_eth_mc_map`` MACs, unless IPv6 is disabled on the device."""
    idev = getattr(dev, "ip6_ptr", None)
    if idev is None or getattr(idev, "dead", False):
        return []
    try:
        if idev.cnf("disable_ipv6"):
            return []
    except KeyError:
        pass
    out = []
    for group in getattr(idev, "mc", {}):
        if group[1] & 0x0F < 2:  # interface-local (ff01::/16) and reserved scopes
            continue
        out.append(b"\x33\x33" + bytes(group[12:16]))
    return out


def note_updown(event: str, dev: "NetDevice") -> None:
    """Called from the bridge's netdevice notifier for every device: once a device went
    down, ``ipv6_mc_down``/``ip_mc_down`` have unloaded the protocol groups, so the
    next up reloads them after whatever stayed in the list."""
    if event == "DOWN":
        dev.__dict__["dflt_fdb_cycled"] = True


def dev_mc_order(dev: "NetDevice") -> list[bytes]:
    """``dev->mc`` in the kernel's list order (one line per address: the list holds one
    refcounted entry per address)."""
    from netstack.core.dev_addr_lists import dev_mc_list
    from netstack.drivers.bridge.br_device import BridgeDevice
    out: dict[bytes, None] = {}
    v6 = _ipv6_groups(dev)
    up = bool(dev.flags & IFF_UP)
    cycled = dev.__dict__.get("dflt_fdb_cycled", False)
    folded = set(_all_ipv6_macs(dev))
    if cycled:
        # the entries that survived the down come first (measured: after down/up the
        # protocol groups follow them, all-hosts before the IPv6 groups)
        for ha in dev_mc_list(dev):
            if ha.addr not in folded and ha.addr != ALL_HOSTS_MAC \
                    and ha.addr not in SNOOPERS_MACS:
                out[ha.addr] = None
        if not up:
            return list(out)
    elif ALL_NODES_MAC in v6:
        out[ALL_NODES_MAC] = None
    if up:
        if isinstance(dev, BridgeDevice):
            m = getattr(dev.br, "multicast", None)
            if m is not None and m.enabled:
                for mac in SNOOPERS_MACS:
                    out[mac] = None
        if getattr(dev, "ip_ptr", None) is not None:
            out[ALL_HOSTS_MAC] = None
        idev = getattr(dev, "ip6_ptr", None)
        if not cycled or getattr(idev, "ready", False):
            # after a down, ipv6_mc_up reloads the groups only once the link is ready
            # (IF_READY: carrier — measured on a bridge whose ports come back)
            for mac in v6:
                out[mac] = None
    for ha in dev_mc_list(dev):
        # what dev_mc_add put there (synced uppers, ``bridge fdb add … self``); the
        # IPv6 groups the core list mirrors are placed above
        if ha.addr in folded and ha.addr not in out:
            continue
        out[ha.addr] = None
    return list(out)


def _all_ipv6_macs(dev: "NetDevice") -> list[bytes]:
    idev = getattr(dev, "ip6_ptr", None)
    return [b"\x33\x33" + bytes(g[12:16]) for g in getattr(idev, "mc", {}) or {}]


def dev_uc_order(dev: "NetDevice") -> list[bytes]:
    """``dev->uc`` in list order."""
    from netstack.core.dev_addr_lists import dev_uc_list
    return [ha.addr for ha in dev_uc_list(dev)]


def ndo_dflt_fdb_dump(dev: "NetDevice") -> list[dict[str, Any]]:
    """``ndo_dflt_fdb_dump``: Ethernet devices only, ``dev->uc`` then ``dev->mc``, each
    entry NTF_SELF and NUD_PERMANENT (as ``bridge -j fdb show`` prints them)."""
    if dev.type != ARPHRD_ETHER:
        return []
    return [{"mac": ":".join(f"{b:02x}" for b in mac), "ifname": dev.name,
             "flags": ["self"], "state": "permanent"}
            for mac in dev_uc_order(dev) + dev_mc_order(dev)]


def _is_uc(addr: bytes) -> bool:
    """``is_unicast_ether_addr(addr) || is_link_local_ether_addr(addr)``."""
    return not addr[0] & 1 or addr[:5] == b"\x01\x80\xc2\x00\x00" and not addr[5] & 0xF0


def ndo_dflt_fdb_add(dev: "NetDevice", req: "FdbRequest") -> None:
    """``ndo_dflt_fdb_add``: permanent only, no VLAN; ``dev_uc_add_excl`` /
    ``dev_mc_add_excl`` — EEXIST only with NLM_F_EXCL (``bridge fdb add``)."""
    from netstack.core.dev_addr_lists import dev_mc_list, dev_set_rx_mode, dev_uc_add_excl
    if req.state and not req.state & NUD_PERMANENT:
        raise KernelError(errno.EINVAL)
    if req.vlan:
        raise KernelError(errno.EINVAL)
    addr = bytes(req.lladdr)
    try:
        if _is_uc(addr):
            dev_uc_add_excl(dev, addr)
        else:
            dev_mc_list(dev).add(addr, exclusive=True)
            dev_set_rx_mode(dev)
    except KernelError as e:
        if e.errno != errno.EEXIST or req.nlflags & NLM_F_EXCL:
            raise


def ndo_dflt_fdb_del(dev: "NetDevice", req: "FdbRequest") -> None:
    """``ndo_dflt_fdb_del``: permanent only; ``dev_uc_del``/``dev_mc_del`` (ENOENT when
    the address is not on the list)."""
    from netstack.core.dev_addr_lists import dev_mc_del, dev_uc_list, dev_set_rx_mode
    if not req.state & NUD_PERMANENT:
        raise KernelError(errno.EINVAL)
    addr = bytes(req.lladdr)
    if _is_uc(addr):
        dev_uc_list(dev).delete(addr)
        dev_set_rx_mode(dev)
        return
    if addr in _all_ipv6_macs(dev) or addr in (ALL_HOSTS_MAC,) + SNOOPERS_MACS:
        raise NotSupported("bridge fdb del of a multicast address a protocol joined "
                           "(dev_mc_del of a refcounted dev->mc entry)")
    dev_mc_del(dev, addr)
