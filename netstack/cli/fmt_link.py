"""``ip link`` / ``ip addr`` link lines, text and JSON (ip/ipaddress.c ``print_linkinfo``).

Kept apart from the command parsing so the exact layout can be tested on plain devices
without going through a scenario.  Field names, order and value formats are those of
iproute2 6.1 measured on Linux (``ip -j link``, ``ip -j -d link``, ``ip -j -s link``).
"""
from __future__ import annotations

from typing import Any

from netstack.cli.ipcommon import mac_str
from netstack.core.netdevice import (
    ARPHRD_ETHER, ARPHRD_LOOPBACK, ARPHRD_NONE, IFF_ALLMULTI, IFF_BROADCAST, IFF_DEBUG,
    IFF_DORMANT, IFF_ECHO, IFF_LOOPBACK, IFF_LOWER_UP, IFF_MASTER, IFF_MULTICAST, IFF_NOARP,
    IFF_NOTRAILERS, IFF_POINTOPOINT, IFF_PROMISC, IFF_RUNNING, IFF_SLAVE, IFF_UP, NetDevice,
)

#: print_link_flags order (ip/ipaddress.c).
_FLAG_ORDER = (
    (IFF_LOOPBACK, "LOOPBACK"), (IFF_BROADCAST, "BROADCAST"), (IFF_POINTOPOINT, "POINTOPOINT"),
    (IFF_MULTICAST, "MULTICAST"), (IFF_NOARP, "NOARP"), (IFF_ALLMULTI, "ALLMULTI"),
    (IFF_PROMISC, "PROMISC"), (IFF_MASTER, "MASTER"), (IFF_SLAVE, "SLAVE"),
    (IFF_DEBUG, "DEBUG"), (0x8000, "DYNAMIC"), (0x4000, "AUTOMEDIA"), (0x2000, "PORTSEL"),
    (IFF_NOTRAILERS, "NOTRAILERS"), (IFF_UP, "UP"), (IFF_LOWER_UP, "LOWER_UP"),
    (IFF_DORMANT, "DORMANT"), (IFF_ECHO, "ECHO"),
)

_LINK_TYPES = {ARPHRD_ETHER: "ether", ARPHRD_LOOPBACK: "loopback", ARPHRD_NONE: "none",
               768: "ipip", 769: "tunnel6", 776: "sit", 778: "gre", 823: "gre6"}


def lladdr_str(raw: bytes) -> str:
    """lib/ll_addr.c ``ll_addr_n2a``: tunnels (ipip/sit/gre, addr_len 4 or 16) show their
    link-layer address as an IP address; everything else as colon-separated hex."""
    if len(raw) == 4:
        return ".".join(str(b) for b in raw)
    if len(raw) == 16:
        import ipaddress
        return str(ipaddress.IPv6Address(raw))
    return mac_str(raw)


def dev_get_flags(dev: NetDevice) -> int:
    """net/core/dev.c ``dev_get_flags``: RUNNING/LOWER_UP are derived from carrier while
    the device is up (virtual devices are never DORMANT)."""
    flags = dev.flags & ~(IFF_RUNNING | IFF_LOWER_UP | IFF_DORMANT)
    if dev.flags & IFF_UP and dev.carrier_ok():
        flags |= IFF_RUNNING | IFF_LOWER_UP
    return flags


def _peer(dev: NetDevice) -> tuple[NetDevice | None, bool]:
    """The IFLA_LINK device (a veth's peer) and whether it lives in another namespace."""
    peer = getattr(dev, "peer", None) or getattr(dev, "real_dev", None)
    if peer is None:
        return None, False
    return peer, peer.net is not dev.net


def link_flags(dev: NetDevice) -> list[str]:
    """``print_link_flags``: NO-CARRIER first, named flags, leftover hex, M-DOWN last."""
    flags = dev_get_flags(dev)
    out: list[str] = []
    if flags & IFF_UP and not flags & IFF_RUNNING:
        out.append("NO-CARRIER")
    flags &= ~IFF_RUNNING
    for bit, name in _FLAG_ORDER:
        if flags & bit:
            out.append(name)
            flags &= ~bit
    if flags:
        out.append(f"{flags:x}")
    peer, other_ns = _peer(dev)
    if peer is not None and not other_ns and not peer.flags & IFF_UP:
        out.append("M-DOWN")
    return out


def ifname_at(dev: NetDevice) -> str:
    """``NAME@PEER`` (same namespace) or ``NAME@ifN`` (peer elsewhere)."""
    peer, other_ns = _peer(dev)
    if peer is None:
        return dev.name
    return f"{dev.name}@if{peer.ifindex}" if other_ns else f"{dev.name}@{peer.name}"


def link_type(dev: NetDevice) -> str:
    return _LINK_TYPES.get(dev.type, f"[{dev.type}]")


def _netns_ref(dev: NetDevice) -> tuple[str, int] | None:
    peer, other_ns = _peer(dev)
    if peer is None or not other_ns or dev.net is None or peer.net is None:
        return None
    return peer.net.name, dev.net.nsid_of(peer.net)


def _stats64(dev: NetDevice) -> dict[str, dict[str, int]]:
    s = dev.stats
    return {"rx": {"bytes": s.rx_bytes, "packets": s.rx_packets, "errors": s.rx_errors,
                   "dropped": s.rx_dropped, "over_errors": s.rx_over_errors,
                   "multicast": s.multicast},
            "tx": {"bytes": s.tx_bytes, "packets": s.tx_packets, "errors": s.tx_errors,
                   "dropped": s.tx_dropped, "carrier_errors": s.tx_carrier_errors,
                   "collisions": s.collisions}}


_GEN_MODES = {0: "eui64", 1: "none", 2: "stable_secret", 3: "random"}


def addr_gen_mode(dev: NetDevice) -> str | None:
    """IFLA_INET6_ADDR_GEN_MODE as iproute2 names it, or None when IPv6 is registered but
    the device has no inet6_dev (e.g. destroyed by an MTU below 1280): the kernel then
    sends no AF_INET6 link data and iproute2 prints no ``addrgenmode`` (measured).  A
    world without the IPv6 layer shows the default, as a kernel whose IPv6 is idle."""
    net = dev.net
    if net is None:
        return None
    if getattr(net, "ipv6", None) is not None and getattr(dev, "ip6_ptr", None) is None:
        return None
    mode = net.sysctl.values.get(f"net.ipv6.conf.{dev.name}.addr_gen_mode", 0)
    return _GEN_MODES.get(int(mode), str(mode))


def _kind_info(dev: NetDevice) -> tuple[str, dict[str, Any]] | None:
    """The kind's ``print_opt`` (IFLA_INFO_DATA) as (text, JSON ``info_data``), for the
    kinds that have one (ip/iplink_vlan.c)."""
    if not dev.kind:
        return None
    from netstack.cli.iplink import kind_module
    mod = kind_module(dev.kind)
    if mod is None or not hasattr(mod, "info_data_text"):
        return None
    return mod.info_data_text(dev), mod.info_data_json(dev)


def _slave_info(dev: NetDevice) -> tuple[str, str, dict[str, Any]] | None:
    """``info_slave_kind``/``info_slave_data`` from the master's slave ops (bridge port,
    bond slave), or None."""
    m = dev.master
    return m.slave_info(dev) if m is not None else None


def _details(dev: NetDevice) -> dict[str, Any]:
    nq = getattr(dev, "num_tx_queues", 2 if dev.kind == "veth" else 1)
    # dev->promiscuity / dev->allmulti: the user's flag plus the references stacked
    # devices hold (dev_set_promiscuity/dev_set_allmulti: macvlan, bridge ports …)
    d: dict[str, Any] = {"promiscuity": (1 if dev.flags & IFF_PROMISC else 0)
                         + getattr(dev, "promiscuity_refs", 0),
                         "allmulti": (1 if dev.flags & IFF_ALLMULTI else 0)
                         + getattr(dev, "allmulti_refs", 0),
                         "min_mtu": dev.min_mtu, "max_mtu": dev.max_mtu}
    if dev.kind:
        d["linkinfo"] = {"info_kind": dev.kind}
        info = _kind_info(dev)
        if info is not None:
            d["linkinfo"]["info_data"] = info[1]
    sl = _slave_info(dev)
    if sl is not None:
        li = d.setdefault("linkinfo", {})
        # the kernel's slave kind is the master's kind ("bridge"); only the text form
        # says "bridge_slave"
        li["info_slave_kind"] = sl[0].removesuffix("_slave")
        li["info_slave_data"] = sl[2]
    mode = addr_gen_mode(dev)
    if mode is not None:
        d["inet6_addr_gen_mode"] = mode
    d.update({"num_tx_queues": nq, "num_rx_queues": nq,
              "gso_max_size": 65536, "gso_max_segs": 65535,
              "tso_max_size": getattr(dev, "tso_max_size", 524280),
              "tso_max_segs": 65535, "gro_max_size": 65536})
    return d


def link_json(dev: NetDevice, details: bool = False, stats: bool = False,
              for_addr: bool = False, family_filtered: bool = False) -> dict[str, Any]:
    """One element of ``ip -j link`` (``for_addr``: the ``ip -j addr`` variant, which has no
    ``linkmode``; ``family_filtered``: ``ip -4/-6 addr``, where iproute2 leaves out the
    link-layer part — link_type, address, broadcast — as measured)."""
    d: dict[str, Any] = {"ifindex": dev.ifindex}
    peer, other_ns = _peer(dev)
    if peer is not None:
        if other_ns:
            d["link_index"] = peer.ifindex
        else:
            d["link"] = peer.name
    d["ifname"] = dev.name
    d["flags"] = link_flags(dev)
    d["mtu"] = dev.mtu
    from netstack.cli.iplink_xdp import xdp_json
    xdp = xdp_json(dev)
    if xdp is not None:
        d["xdp"] = xdp
    d["qdisc"] = dev.qdisc()
    if dev.master is not None:
        d["master"] = dev.master.name
    d["operstate"] = dev.operstate()
    if not for_addr:
        d["linkmode"] = "DEFAULT"
    d["group"] = "default" if dev.group == 0 else dev.group
    d["txqlen"] = dev.txqlen
    if not family_filtered:
        d["link_type"] = link_type(dev)
    if not family_filtered and dev.address:
        # no IFLA_ADDRESS/IFLA_BROADCAST for a device without a link-layer address
        # (addr_len 0: tun, link/none)
        d["address"] = lladdr_str(dev.address)
        if dev.flags & IFF_POINTOPOINT:
            d["link_pointtopoint"] = True
        d["broadcast"] = lladdr_str(dev.broadcast)
    ref = _netns_ref(dev)
    if ref is not None:
        d["link_netnsid"] = ref[1]
    if details:
        det = _details(dev)
        if family_filtered:
            det.pop("inet6_addr_gen_mode", None)
        d.update(det)
    if dev.alias:
        d["ifalias"] = dev.alias
    if stats:
        d["stats64"] = _stats64(dev)
    return d


def stats_text(dev: NetDevice) -> str:
    """``print_link_stats64`` text: column widths grow with the numbers (size_columns)."""
    s = dev.stats
    rx = [s.rx_bytes, s.rx_packets, s.rx_errors, s.rx_dropped, s.rx_over_errors, s.multicast]
    tx = [s.tx_bytes, s.tx_packets, s.tx_errors, s.tx_dropped, s.tx_carrier_errors,
          s.collisions]
    cols = [len("*X errors:"), len("packets"), len("errors"), len("dropped"), len("overrun"),
            len("collsns"), len("compressed")]
    for row in (rx, tx):
        for i, v in enumerate(row):
            cols[i] = max(cols[i], len(str(v)))

    def hdr(tag: str, names: list[str]) -> str:
        out = f"    {tag}: {'bytes':>{cols[0] - 4}}"
        for i, n in enumerate(names, start=1):
            out += f" {n:>{cols[i]}}"
        return out + f" {'':>{cols[6]}}\n"

    def row(vals: list[int]) -> str:
        return "    " + f"{vals[0]:>{cols[0]}}" + "".join(
            f" {v:>{cols[i]}}" for i, v in enumerate(vals[1:], start=1)) + " \n"

    return (hdr("RX", ["packets", "errors", "dropped", "missed", "mcast"]) + row(rx)
            + hdr("TX", ["packets", "errors", "dropped", "carrier", "collsns"]) + row(tx))


def link_text(dev: NetDevice, details: bool = False, stats: bool = False,
              for_addr: bool = False, family_filtered: bool = False) -> str:
    """``ip link show`` for one device (``for_addr``: the ``ip addr`` header, no ``mode``;
    ``family_filtered``: ``ip -4/-6 addr``, no link/ether line unless ``-d``, and no
    ``addrgenmode``); returns the lines including the final newline.  ``ip addr`` prints
    the ``-s`` counters after the addresses, so it passes ``stats=False`` and appends
    :func:`stats_text` itself."""
    flags = ",".join(link_flags(dev))
    mode = "" if for_addr else " mode DEFAULT"
    group = "default" if dev.group == 0 else str(dev.group)
    from netstack.cli.iplink_xdp import mode_word, prog_line
    out = (f"{dev.ifindex}: {ifname_at(dev)}: <{flags}> mtu {dev.mtu}{mode_word(dev)} "
           f"qdisc {dev.qdisc()} {master_word(dev)}"
           f"state {dev.operstate()}{mode} group {group} qlen {dev.txqlen}\n")
    brd = "peer" if dev.flags & IFF_POINTOPOINT else "brd"
    line2 = (f"    link/{link_type(dev)} {lladdr_str(dev.address)} {brd} "
             f"{lladdr_str(dev.broadcast)}" if dev.address else f"    link/{link_type(dev)} ")
    ref = _netns_ref(dev)
    if ref is not None:
        line2 += f" link-netns {ref[0]}" if ref[0] else f" link-netnsid {ref[1]}"
    if details:
        d = _details(dev)
        line2 += (f" promiscuity {d['promiscuity']}  allmulti {d['allmulti']} "
                  f"minmtu {dev.min_mtu} "
                  f"maxmtu {dev.max_mtu} ")
        if dev.kind:
            line2 += f"\n    {dev.kind} "
            info = _kind_info(dev)
            if info is not None:
                line2 += info[0]
        sl = _slave_info(dev)
        if sl is not None:
            line2 += f"\n    {sl[0]} {sl[1]}"
        mode = addr_gen_mode(dev)
        if not family_filtered and mode is not None:
            line2 += f"addrgenmode {mode} "
        line2 += (f"numtxqueues {d['num_tx_queues']} numrxqueues "
                  f"{d['num_rx_queues']} gso_max_size 65536 gso_max_segs 65535 "
                  f"tso_max_size {d['tso_max_size']} tso_max_segs 65535 gro_max_size 65536 ")
    if details or not family_filtered:
        out += line2 + "\n"
    out += prog_line(dev)
    if dev.alias:
        out += f"    alias {dev.alias}\n"
    if stats:
        out += stats_text(dev)
    return out


def master_word(dev: NetDevice) -> str:
    """``master NAME `` in the link line (print_linkinfo, IFLA_MASTER), or nothing."""
    return f"master {dev.master.name} " if dev.master is not None else ""


def link_brief(dev: NetDevice) -> str:
    """``ip -br link``: name column 16 wide, state 14 wide (ip/ipaddress.c print_linkinfo
    brief branch), then the address and flags."""
    return (f"{ifname_at(dev):<16} {dev.operstate():<14} {lladdr_str(dev.address)} "
            f"<{','.join(link_flags(dev))}> \n")
