"""Device hardware address lists and rx-mode counters (net/core/dev_addr_lists.c, and the
promiscuity/allmulti part of net/core/dev.c).

Every device carries two refcounted lists of link-layer addresses it must receive besides
its own: ``dev->uc`` (secondary unicast, e.g. a macvlan's MAC on its lower device) and
``dev->mc`` (multicast: the groups IPv4/IPv6 joined, ``ip maddr add``, what an upper
device synced down).  An entry is a ``struct netdev_hw_addr``: ``refcount`` (users),
``global_use`` (a "static" address added by ``SIOCADDMULTI``, counted once however often
it is added), ``synced`` (how many upper lists pushed it here) and ``sync_cnt`` (how often
*this* entry was pushed to a lower list).  The list keeps insertion order
(``list_add_tail_rcu`` in ``__hw_addr_create``), which ``/proc/net/dev_mcast`` and so
``ip maddr`` show.

``__dev_set_rx_mode``: a device without ``IFF_UNICAST_FLT`` (veth, dummy) that has
secondary unicast addresses goes promiscuous (one promiscuity reference, ``uc_promisc``),
then the driver's ``ndo_set_rx_mode`` (here a ``set_rx_mode()`` method) runs.

Counters: the user's ``ip link set promisc/allmulti on`` is the IFF_ flag itself; the
references other subsystems take (macvlan, bridge ports, the uc_promisc above) are
``dev.promiscuity_refs`` / ``dev.allmulti_refs``; ``ip -d link`` prints flag + refs.

IPv6 keeps its groups in ``ip6_ptr.mc`` (netstack/ipv6/addrconf.py ``mc_inc``/``mc_dec``)
without calling ``dev_mc_add``; :func:`dev_mc_list` folds them into ``dev->mc`` as
``ndisc_mc_map`` would (one reference per group, 33:33 + the low 32 bits), in the order
they are first seen, so the list reads as the kernel's.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from netstack.core.netdevice import IFF_ALLMULTI, IFF_PROMISC, IFF_UP, NetDevice
from netstack.errors import KernelError

ARPHRD_ETHER = 1
IPV4_ALL_HOSTS_MAC = b"\x01\x00\x5e\x00\x00\x01"


@dataclass
class HwAddr:
    """``struct netdev_hw_addr``."""

    addr: bytes
    refcount: int = 1
    global_use: bool = False
    synced: int = 0
    sync_cnt: int = 0
    #: an entry mirrored from the IPv6 group table (see module doc), not a dev_mc_add user
    ipv6: bool = False


class HwAddrList:
    """``struct netdev_hw_addr_list``: entries in insertion order."""

    def __init__(self) -> None:
        self.entries: dict[bytes, HwAddr] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, addr: object) -> bool:
        return addr in self.entries

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self.entries.values()))

    def add(self, addr: bytes, *, global_: bool = False, sync: bool = False,
            sync_count: int = 0, exclusive: bool = False) -> None:
        """``__hw_addr_add_ex``; raises KernelError(EEXIST) as the kernel returns it."""
        ha = self.entries.get(addr)
        if ha is not None:
            if exclusive:
                raise KernelError(errno.EEXIST)
            if global_:
                if ha.global_use:
                    return
                ha.global_use = True
            if sync:
                if ha.synced and sync_count:
                    raise KernelError(errno.EEXIST)
                ha.synced += 1
            ha.refcount += 1
            return
        self.entries[addr] = HwAddr(addr, 1, global_, 1 if sync else 0)  # __hw_addr_create

    def del_entry(self, ha: HwAddr, *, global_: bool = False, sync: bool = False) -> None:
        """``__hw_addr_del_entry``."""
        if global_ and not ha.global_use:
            raise KernelError(errno.ENOENT)
        if sync and not ha.synced:
            raise KernelError(errno.ENOENT)
        if global_:
            ha.global_use = False
        if sync:
            ha.synced -= 1
        ha.refcount -= 1
        if ha.refcount == 0:
            self.entries.pop(ha.addr, None)

    def delete(self, addr: bytes, *, global_: bool = False, sync: bool = False) -> None:
        """``__hw_addr_del_ex``: ENOENT when absent."""
        ha = self.entries.get(addr)
        if ha is None:
            raise KernelError(errno.ENOENT)
        self.del_entry(ha, global_=global_, sync=sync)

    def flush(self) -> None:
        self.entries.clear()


def _lists(dev: NetDevice) -> tuple[HwAddrList, HwAddrList]:
    """``dev->uc`` / ``dev->mc``, created with the device's first use (``dev_addr_init``)."""
    d = dev.__dict__
    uc = d.get("uc")
    if uc is None:
        uc = d["uc"] = HwAddrList()
        d.setdefault("uc_promisc", False)
    mc = d.get("mc")
    if mc is None:
        mc = d["mc"] = HwAddrList()
    d.setdefault("promiscuity_refs", 0)
    d.setdefault("allmulti_refs", 0)
    return uc, mc


def dev_uc_list(dev: NetDevice) -> HwAddrList:
    return _lists(dev)[0]


# -------------------------------------------------------------- promiscuity / allmulti
def dev_set_promiscuity(dev: NetDevice, inc: int) -> None:
    """``dev_set_promiscuity``: a reference on the device's promiscuity counter (the user's
    ``promisc on`` is the flag itself; ``ip -d link`` prints the sum)."""
    _lists(dev)
    dev.promiscuity_refs = max(0, dev.promiscuity_refs + inc)  # type: ignore[attr-defined]


def dev_set_allmulti(dev: NetDevice, inc: int) -> None:
    """``dev_set_allmulti``."""
    _lists(dev)
    dev.allmulti_refs = max(0, dev.allmulti_refs + inc)  # type: ignore[attr-defined]


def promiscuous(dev: NetDevice) -> bool:
    """``dev->promiscuity != 0``."""
    return bool(dev.flags & IFF_PROMISC) or getattr(dev, "promiscuity_refs", 0) > 0


def allmulti(dev: NetDevice) -> bool:
    """``dev->allmulti != 0``."""
    return bool(dev.flags & IFF_ALLMULTI) or getattr(dev, "allmulti_refs", 0) > 0


def unicast_filtering(dev: NetDevice) -> bool:
    """``IFF_UNICAST_FLT``: macvlan/ipvlan have it; veth and dummy do not."""
    return bool(getattr(dev, "unicast_flt", False))


def dev_set_rx_mode(dev: NetDevice) -> None:
    """``__dev_set_rx_mode``: only on an up device; one without a unicast filter goes
    promiscuous while its unicast list is not empty (and leaves it when it empties);
    then ``ndo_set_rx_mode``."""
    uc, _ = _lists(dev)
    if not dev.flags & IFF_UP:
        return
    if not unicast_filtering(dev):
        if len(uc) and not dev.uc_promisc:  # type: ignore[attr-defined]
            dev_set_promiscuity(dev, 1)
            dev.uc_promisc = True  # type: ignore[attr-defined]
        elif not len(uc) and dev.uc_promisc:  # type: ignore[attr-defined]
            dev_set_promiscuity(dev, -1)
            dev.uc_promisc = False  # type: ignore[attr-defined]
    hook = getattr(dev, "set_rx_mode", None)
    if hook is not None:
        hook()


# ---------------------------------------------------------------------- unicast
def dev_uc_add(dev: NetDevice, addr: bytes) -> None:
    """``dev_uc_add``: refcounted, then the rx mode."""
    dev_uc_list(dev).add(bytes(addr))
    dev_set_rx_mode(dev)


def dev_uc_add_excl(dev: NetDevice, addr: bytes) -> None:
    """``dev_uc_add_excl``: EEXIST when present (FDB static entries on a port)."""
    dev_uc_list(dev).add(bytes(addr), exclusive=True)
    dev_set_rx_mode(dev)


def dev_uc_del(dev: NetDevice, addr: bytes) -> None:
    """``dev_uc_del``; an absent address is ignored as the callers ignore -ENOENT."""
    try:
        dev_uc_list(dev).delete(bytes(addr))
    except KernelError:
        return
    dev_set_rx_mode(dev)


# -------------------------------------------------------------------- multicast
def ipv6_eth_mc_map(group: bytes) -> bytes:
    """``ipv6_eth_mc_map`` (include/net/if_inet6.h): 33:33 + the group's last 4 bytes."""
    return b"\x33\x33" + group[12:16]


def _fold_ipv6(dev: NetDevice, mc: HwAddrList) -> bool:
    """Mirror the IPv6 groups as ``igmp6_group_added`` loads them: groups of scope below
    link-local (ff01::/16 …) are skipped, and ``ndisc_mc_map`` (dir 0) maps only on
    Ethernet-type devices (none on lo)."""
    idev = getattr(dev, "ip6_ptr", None)
    groups = getattr(idev, "mc", None) or {}
    want: dict[bytes, int] = {}
    ether = getattr(dev, "type", ARPHRD_ETHER) == ARPHRD_ETHER
    for g in groups:
        if not ether or (g[1] & 0x0F) < 2:
            continue
        m = ipv6_eth_mc_map(g)
        want[m] = want.get(m, 0) + 1
    have = dev.__dict__.setdefault("mc_ipv6_refs", {})
    changed = False
    for m, n in list(have.items()):
        k = want.get(m, 0)
        while n > k:
            try:
                mc.delete(m)
            except KernelError:
                pass
            n -= 1
            changed = True
        if n:
            have[m] = n
        else:
            del have[m]
    for m, k in want.items():
        n = have.get(m, 0)
        while n < k:
            mc.add(m)
            n += 1
            changed = True
        have[m] = n
    return changed


def dev_mc_list(dev: NetDevice) -> HwAddrList:
    """``dev->mc`` with the IPv6 groups folded in (see the module doc).  A fold that
    changed the list runs the rx mode as the IPv6 layer's ``dev_mc_add`` would have (an
    upper device then syncs into its lower one); the open macvlans on ``dev`` are folded
    first, so what they sync down is in place when ``dev``'s list is read."""
    port = dev.__dict__.get("macvlan_port")
    if port is not None:
        for v in list(port.vlans):
            if v.flags & IFF_UP and v is not dev:
                dev_mc_list(v)
    mc = _lists(dev)[1]
    if _fold_ipv6(dev, mc):
        dev_set_rx_mode(dev)
    return mc


def dev_mc_add(dev: NetDevice, addr: bytes) -> None:
    """``dev_mc_add``: a protocol's reference (``ip_mc_filter_add``)."""
    dev_mc_list(dev).add(bytes(addr))
    dev_set_rx_mode(dev)


def dev_mc_add_global(dev: NetDevice, addr: bytes) -> None:
    """``dev_mc_add_global`` (``SIOCADDMULTI``, ``ip maddr add``): counted once."""
    dev_mc_list(dev).add(bytes(addr), global_=True)
    dev_set_rx_mode(dev)


def dev_mc_del(dev: NetDevice, addr: bytes) -> None:
    """``dev_mc_del``: raises KernelError(ENOENT) when the address is not there."""
    dev_mc_list(dev).delete(bytes(addr))
    dev_set_rx_mode(dev)


def dev_mc_del_global(dev: NetDevice, addr: bytes) -> None:
    """``dev_mc_del_global`` (``SIOCDELMULTI``): ENOENT unless it was added static."""
    dev_mc_list(dev).delete(bytes(addr), global_=True)
    dev_set_rx_mode(dev)


def dev_mc_addrs(dev: NetDevice) -> set[bytes]:
    """The addresses the device's multicast filter passes: ``dev->mc`` (which holds what
    open macvlans synced down, ``macvlan_set_mac_lists`` → ``dev_mc_sync``), plus, in a
    world without the IGMP module, all-hosts for a device with IPv4 state as ``ip_mc_up``
    would have added."""
    out = {ha.addr for ha in dev_mc_list(dev)}
    net = dev.net
    if getattr(dev, "ip_ptr", None) is not None and \
            (net is None or getattr(net.ipv4, "igmp", None) is None):
        out.add(IPV4_ALL_HOSTS_MAC)
    return out


# ------------------------------------------------------------------------- sync
def _hw_addr_sync(to: HwAddrList, frm: HwAddrList) -> None:
    """``__hw_addr_sync``: push new entries of ``frm`` to ``to`` once
    (``__hw_addr_sync_one``), and take back the ones only the sync still holds
    (``sync_cnt == refcount``: every user in ``frm`` is gone → ``__hw_addr_unsync_one``)."""
    for ha in frm:
        if ha.sync_cnt == ha.refcount:
            _unsync_one(to, frm, ha)
        else:
            try:
                to.add(ha.addr, sync=True, sync_count=ha.sync_cnt)
            except KernelError:
                continue
            ha.sync_cnt += 1
            ha.refcount += 1


def _unsync_one(to: HwAddrList, frm: HwAddrList, ha: HwAddr) -> None:
    """``__hw_addr_unsync_one``."""
    try:
        to.delete(ha.addr, sync=True)
    except KernelError:
        return
    ha.sync_cnt -= 1
    frm.del_entry(ha)


def _hw_addr_unsync(to: HwAddrList, frm: HwAddrList) -> None:
    """``__hw_addr_unsync``."""
    for ha in frm:
        if ha.sync_cnt:
            _unsync_one(to, frm, ha)


def dev_uc_sync(to: NetDevice, frm: NetDevice) -> None:
    """``dev_uc_sync``: an upper device's unicast list into its lower device's."""
    _hw_addr_sync(dev_uc_list(to), dev_uc_list(frm))
    dev_set_rx_mode(to)


def dev_uc_unsync(to: NetDevice, frm: NetDevice) -> None:
    """``dev_uc_unsync`` (the upper device closes)."""
    _hw_addr_unsync(dev_uc_list(to), dev_uc_list(frm))
    dev_set_rx_mode(to)


def dev_mc_sync(to: NetDevice, frm: NetDevice) -> None:
    """``dev_mc_sync``."""
    _hw_addr_sync(dev_mc_list(to), dev_mc_list(frm))
    dev_set_rx_mode(to)


def dev_mc_unsync(to: NetDevice, frm: NetDevice) -> None:
    """``dev_mc_unsync``."""
    _hw_addr_unsync(dev_mc_list(to), dev_mc_list(frm))
    dev_set_rx_mode(to)


def dev_uc_flush(dev: NetDevice) -> None:
    """``dev_uc_flush`` (unregister)."""
    dev_uc_list(dev).flush()


def dev_mc_flush(dev: NetDevice) -> None:
    """``dev_mc_flush`` (unregister)."""
    _lists(dev)[1].flush()
    dev.__dict__.pop("mc_ipv6_refs", None)


def dev_mcast_text(devices: list[NetDevice]) -> str:
    """``/proc/net/dev_mcast`` (``dev_mc_seq_show``, net/core/net-procfs.c):
    ``ifindex name refcount global_use hexaddr`` per entry, devices in ifindex order."""
    lines = []
    for dev in devices:
        for ha in dev_mc_list(dev):
            lines.append(f"{dev.ifindex:<4d} {dev.name:<15s} {ha.refcount:<5d} "
                         f"{int(ha.global_use):<5d} {ha.addr.hex()}\n")
    return "".join(lines)


__all__ = ["HwAddr", "HwAddrList", "dev_uc_add", "dev_uc_add_excl", "dev_uc_del",
           "dev_uc_list", "dev_mc_add", "dev_mc_add_global", "dev_mc_del",
           "dev_mc_del_global", "dev_mc_list", "dev_mc_addrs", "dev_uc_sync",
           "dev_uc_unsync", "dev_mc_sync", "dev_mc_unsync", "dev_uc_flush", "dev_mc_flush",
           "dev_set_promiscuity", "dev_set_allmulti", "dev_set_rx_mode", "promiscuous",
           "allmulti", "unicast_filtering", "ipv6_eth_mc_map", "dev_mcast_text"]
