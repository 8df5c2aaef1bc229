"""``ethtool -k`` / ``ethtool -K`` (ethtool netlink/features.c, ethtool.c off_flag_def).

Features are the kernel's strings (net/ethtool/common.c ``netdev_features_strings``).
A feature the driver cannot toggle (not in ``hw_features`` nor one the core makes
toggleable for every device — GSO, GRO, GRO fraglist, UDP GRO forwarding, nocache copy —
see ``register_netdevice``) is printed ``[fixed]`` and a request to change it is reported
the way ethtool does (``Actual changes:`` … ``[requested on]``), failing with "Could not
change any device features" when no requested bit ends up as asked.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Ctx
from netstack.core.netdevice import netdev_features_changed, netdev_fix_features
from netstack.errors import NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice

#: ``ethtool -k`` groups: (display name, member features).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rx-checksumming", ("rx-checksum",)),
    ("tx-checksumming", ("tx-checksum-ipv4", "tx-checksum-ip-generic", "tx-checksum-ipv6",
                         "tx-checksum-fcoe-crc", "tx-checksum-sctp")),
    ("scatter-gather", ("tx-scatter-gather", "tx-scatter-gather-fraglist")),
    ("tcp-segmentation-offload", ("tx-tcp-segmentation", "tx-tcp-ecn-segmentation",
                                  "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation",
                                  "tx-tcp-accecn-segmentation")),
    ("generic-segmentation-offload", ("tx-generic-segmentation",)),
    ("generic-receive-offload", ("rx-gro",)),
    ("large-receive-offload", ("rx-lro",)),
    ("rx-vlan-offload", ("rx-vlan-hw-parse",)),
    ("tx-vlan-offload", ("tx-vlan-hw-insert",)),
    ("ntuple-filters", ("rx-ntuple-filter",)),
    ("receive-hashing", ("rx-hashing",)),
)
#: The remaining features in the order Linux lists them (measured ``ethtool -k`` output).
OTHERS: tuple[str, ...] = (
    "highdma", "rx-vlan-filter", "vlan-challenged", "tx-gso-robust", "tx-fcoe-segmentation",
    "tx-gre-segmentation", "tx-gre-csum-segmentation", "tx-ipxip4-segmentation",
    "tx-ipxip6-segmentation", "tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation",
    "tx-gso-partial", "tx-tunnel-remcsum-segmentation", "tx-sctp-segmentation",
    "tx-esp-segmentation", "tx-udp-segmentation", "tx-gso-list", "tx-nocache-copy",
    "loopback", "rx-fcs", "rx-all", "tx-vlan-stag-hw-insert", "rx-vlan-stag-hw-parse",
    "rx-vlan-stag-filter", "l2-fwd-offload", "hw-tc-offload", "esp-hw-offload",
    "esp-tx-csum-hw-offload", "rx-udp_tunnel-port-offload", "tls-hw-tx-offload",
    "tls-hw-rx-offload", "rx-gro-hw", "tls-hw-record", "rx-gro-list", "macsec-hw-offload",
    "rx-udp-gro-forwarding", "hsr-tag-ins-offload", "hsr-tag-rm-offload", "hsr-fwd-offload",
    "hsr-dup-offload",
)
#: NETIF_F_*_BIT order (include/linux/netdev_features.h, 6.18): how "Actual changes" is
#: ordered (ethtool walks the bitmap).
BIT_ORDER: tuple[str, ...] = (
    "tx-scatter-gather", "tx-checksum-ipv4", "tx-checksum-ip-generic", "tx-checksum-ipv6",
    "highdma", "tx-scatter-gather-fraglist", "tx-vlan-hw-insert", "rx-vlan-hw-parse",
    "rx-vlan-filter", "vlan-challenged", "tx-generic-segmentation", "rx-gro", "rx-lro",
    "tx-tcp-segmentation", "tx-gso-robust", "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation", "tx-fcoe-segmentation",
    "tx-gre-segmentation", "tx-gre-csum-segmentation", "tx-ipxip4-segmentation",
    "tx-ipxip6-segmentation", "tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation",
    "tx-gso-partial", "tx-tunnel-remcsum-segmentation", "tx-sctp-segmentation",
    "tx-esp-segmentation", "tx-udp-fragmentation", "tx-udp-segmentation", "tx-gso-list",
    "tx-tcp-accecn-segmentation", "tx-checksum-fcoe-crc", "tx-checksum-sctp",
    "fcoe-mtu", "rx-ntuple-filter", "rx-hashing", "rx-checksum", "tx-nocache-copy",
    "loopback", "rx-fcs", "rx-all", "tx-vlan-stag-hw-insert", "rx-vlan-stag-hw-parse",
    "rx-vlan-stag-filter", "l2-fwd-offload", "hw-tc-offload", "esp-hw-offload",
    "esp-tx-csum-hw-offload", "rx-udp_tunnel-port-offload", "tls-hw-tx-offload",
    "tls-hw-rx-offload", "rx-gro-hw", "tls-hw-record", "rx-gro-list", "macsec-hw-offload",
    "rx-udp-gro-forwarding", "hsr-tag-ins-offload", "hsr-tag-rm-offload", "hsr-fwd-offload",
    "hsr-dup-offload")
#: Kernel order of every bit ethtool shows.
ORDER: tuple[str, ...] = tuple(f for _, m in GROUPS for f in m) + OTHERS
_KNOWN = frozenset(ORDER)
#: ethtool's short names (off_flag_def) plus the group names.
ALIASES: dict[str, tuple[str, ...]] = {
    "rx": ("rx-checksum",), "tx": GROUPS[1][1], "sg": GROUPS[2][1],
    "tso": GROUPS[3][1], "ufo": ("tx-udp-fragmentation",),
    "gso": ("tx-generic-segmentation",), "gro": ("rx-gro",), "lro": ("rx-lro",),
    "rxvlan": ("rx-vlan-hw-parse",), "txvlan": ("tx-vlan-hw-insert",),
    "ntuple": ("rx-ntuple-filter",), "rxhash": ("rx-hashing",),
    **{g: m for g, m in GROUPS},
}
#: NETIF_F_SOFT_FEATURES | NETIF_F_SOFT_FEATURES_OFF | NOCACHE_COPY: always toggleable.
ALWAYS_CHANGEABLE = frozenset({"tx-generic-segmentation", "rx-gro", "rx-gro-list",
                               "rx-udp-gro-forwarding"})
#: Older spellings some drivers may use for the same bit.
_SYNONYMS = {"tx-sctp-crc": "tx-checksum-sctp"}


def _norm(names: Iterable[str]) -> set[str]:
    return {_SYNONYMS.get(n, n) for n in names}


def _driver_name(dev: "NetDevice", bit: str) -> str:
    """The spelling the driver uses for ``bit`` (a synonym it declared, else the kernel's)."""
    for old, new in _SYNONYMS.items():
        if new == bit and (old in dev.hw_features or old in dev.features):
            return old
    return bit


def _changeable(dev: "NetDevice") -> set[str]:
    """hw_features plus the soft features; ``tx-nocache-copy`` is toggleable except on
    loopback (measured: ``ethtool -k lo`` shows it ``[fixed]``, a veth does not)."""
    extra = {"tx-nocache-copy"} if "loopback" not in dev.features else set()
    return _norm(dev.hw_features) | ALWAYS_CHANGEABLE | extra


def _bad_args() -> ToolError:
    return ToolError("ethtool: bad command line argument(s)\nFor more information run "
                     "ethtool -h\n", 1)


def _no_dev(code: int) -> ToolError:
    return ToolError("netlink error: no device matches name (offset 24)\n"
                     "netlink error: No such device\n", code)


def show_features(dev: "NetDevice") -> str:
    """``ethtool -k DEV`` text."""
    on = _norm(dev.features)
    ch = _changeable(dev)

    want = _norm(dev.wanted_features)

    def st(f: str) -> str:
        if f not in ch:
            return ("on" if f in on else "off") + " [fixed]"
        if (f in on) != (f in want):
            return ("on" if f in on else "off") + \
                f" [requested {'on' if f in want else 'off'}]"
        return "on" if f in on else "off"

    out = [f"Features for {dev.name}:"]
    for gname, members in GROUPS:
        if len(members) == 1:
            out.append(f"{gname}: {st(members[0])}")
            continue
        # A multi-bit group's own line never says [fixed] (measured on lo, whose
        # tx-checksum-* bits are all fixed: "tx-checksumming: on").
        any_on = any(m in on for m in members)
        out.append(f"{gname}: {'on' if any_on else 'off'}")
        out.extend(f"\t{m}: {st(m)}" for m in members)
    out.extend(f"{f}: {st(f)}" for f in OTHERS)
    return "\n".join(out) + "\n"


def _offset(devname: str, before: list[tuple[str, bool]]) -> int:
    """Where the unknown bit's name sits in ethtool's ETHTOOL_MSG_FEATURES_SET request
    (the offset the kernel's extack points at): header, dev name, flags, the WANTED and
    BITS nests, then one BIT nest per preceding name (+ a VALUE flag when "on")."""
    pad = lambda n: (n + 3) & ~3  # noqa: E731
    off = 24 + pad(4 + len(devname) + 1) + 8 + 4 + 4 + 4
    for name, val in before:
        off += 4 + pad(4 + len(name) + 1) + (4 if val else 0)
    return off


def do_ethtool(ctx: Ctx, argv: list[str]) -> int:
    if not argv:
        raise _bad_args()
    opt = argv[0]
    if opt in ("-k", "--show-features", "--show-offload"):
        if len(argv) != 2:
            raise _bad_args()
        dev = ctx.net.get(argv[1])
        if dev is None:
            raise _no_dev(1)
        ctx.stdout.write(show_features(dev))
        return 0
    if opt in ("-K", "--features", "--offload"):
        return _set_features(ctx, argv[1:])
    if opt.startswith("-"):
        known = ("-i", "-S", "-s", "-g", "-G", "-l", "-L", "-c", "-C", "-a", "-A", "-p", "-r",
                 "-t", "-e", "-E", "-d", "-x", "-T", "-P", "-n", "-N", "-u", "-U", "-w", "-W",
                 "-m", "-f", "-h", "--version")
        if opt in known or opt.startswith("--"):
            raise NotSupported(f"ethtool {opt}")
        raise _bad_args()
    raise NotSupported("ethtool DEV (link settings)")


def _set_features(ctx: Ctx, argv: list[str]) -> int:
    if not argv:
        raise _bad_args()
    devname, rest = argv[0], argv[1:]
    req: list[tuple[str, bool]] = []
    i = 0
    while i < len(rest):
        name = rest[i]
        val = rest[i + 1] if i + 1 < len(rest) else None
        if val not in ("on", "off"):
            shown = val if val is not None else "(null)"
            raise ToolError(f"ethtool (-K): flag '{shown}' for parameter '(null)' is not "
                            "followed by 'on' or 'off'\n", 1)
        req.append((name, val == "on"))
        i += 2
    dev = ctx.net.get(devname)
    if dev is None:
        raise _no_dev(92)
    wanted: dict[str, bool] = {}
    for k, (name, val) in enumerate(req):
        bits = ALIASES.get(name, (name,) if name in _KNOWN else None)
        if bits is None:
            raise ToolError(f"netlink error: bit name not found (offset "
                            f"{_offset(devname, req[:k])})\nnetlink error: Operation not "
                            "supported\n", 92)
        for b in bits:
            wanted[b] = val
    on = _norm(dev.features)
    ch = _changeable(dev)
    want = _norm(dev.wanted_features)
    for b, val in wanted.items():
        if b in ch:
            if val:
                want.add(b)
            else:
                want.discard(b)
    # __netdev_update_features: the fixed bits as they are, the changeable ones as
    # wanted, then the driver's and the core's dependency rules (netdev_fix_features)
    new = netdev_fix_features(dev, dev.fix_features((on - ch) | (want & ch)))
    ok = any((b in new) == v for b, v in wanted.items())
    dev.wanted_features = {_driver_name(dev, b) for b in want}
    dev.features = {_driver_name(dev, b) for b in new}
    netdev_features_changed(dev)
    lines = []
    surprise = False
    for b in BIT_ORDER:
        was, now = b in on, b in new
        if b in wanted:
            if now != wanted[b]:
                surprise = True
                lines.append(f"{b}: {'on' if now else 'off'} [requested "
                             f"{'on' if wanted[b] else 'off'}]")
            elif was != now:
                lines.append(f"{b}: {'on' if now else 'off'}")
        elif was != now:
            surprise = True
            lines.append(f"{b}: {'on' if now else 'off'} [not requested]")
    out = "Actual changes:\n" + "".join(f"{x}\n" for x in lines) if surprise else ""
    if not ok:
        raise ToolError("Could not change any device features\n", 1, stdout=out)
    ctx.stdout.write(out)
    return 0
