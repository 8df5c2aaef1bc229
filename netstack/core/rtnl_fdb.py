"""``RTM_NEWNEIGH``/``RTM_DELNEIGH`` for ``AF_BRIDGE``: the FDB request a ``bridge fdb``
command becomes (net/core/rtnetlink.c ``rtnl_fdb_add``/``rtnl_fdb_del``/``rtnl_fdb_dump``).

Why a neutral module: the same request reaches two kinds of owner, as in the kernel —
the bridge master of a port (``master``, the default for a bridge port) and the device
itself (``self``: ``ndo_fdb_add`` of VXLAN, of a NIC's unicast filter …).  The ``bridge``
front end builds one :class:`FdbRequest` and rtnl_fdb_add's dispatch picks the owner(s);
a device that keeps an FDB of its own implements

* ``ndo_fdb_add(req: FdbRequest) -> None`` (raise :class:`netstack.errors.KernelError`),
* ``ndo_fdb_del(req: FdbRequest) -> None``,
* ``ndo_fdb_dump() -> list[dict]``: the entries as ``bridge -j fdb show`` prints them
  (``mac``, ``dst``, ``vni``, ``ifname``, ``flags``, ``state`` … in iproute2's order).
"""
from __future__ import annotations

from dataclasses import dataclass

# include/uapi/linux/neighbour.h: NTF_* flags and NUD_* states the FDB uses.
NTF_USE = 0x01
NTF_SELF = 0x02
NTF_MASTER = 0x04
NTF_PROXY = 0x08
NTF_EXT_LEARNED = 0x10
NTF_OFFLOADED = 0x20
NTF_STICKY = 0x40
NTF_ROUTER = 0x80
NUD_REACHABLE = 0x02
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80

# include/uapi/linux/netlink.h NLM_F_* for NEW requests.
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800


@dataclass
class FdbRequest:
    """One ``bridge fdb add|append|replace|del`` (bridge/fdb.c ``fdb_modify``)."""

    lladdr: bytes
    dev: str
    #: NTF_* flags (``self``, ``master``, ``use``, ``extern_learn``, ``sticky``, ``router``)
    flags: int = 0
    #: NUD_* state exactly as bridge/fdb.c ``fdb_modify`` computes it from
    #: ``permanent``/``local``/``static``/``temp``/``dynamic``
    state: int = NUD_PERMANENT
    #: NLM_F_CREATE|EXCL (add), |APPEND (append), |REPLACE (replace); 0 for del
    nlflags: int = 0
    vlan: int | None = None
    #: VXLAN remote: NDA_DST (4 or 16 bytes), NDA_PORT, NDA_VNI, NDA_SRC_VNI, NDA_IFINDEX (via)
    dst: bytes | None = None
    port: int | None = None
    vni: int | None = None
    src_vni: int | None = None
    via: str | None = None
    nhid: int | None = None
