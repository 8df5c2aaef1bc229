"""``cat FILE…`` for the /proc files netstack models (coreutils cat semantics).

- ``/proc/net/bonding/BOND``: :func:`netstack.drivers.bonding.bond_procfs.bond_info_text`
  (drivers/net/bonding/bond_procfs.c); the file exists only for bond devices of the
  current namespace.
- ``/proc/net/igmp``: :func:`netstack.ipv4.igmp.proc_igmp_text` (net/ipv4/igmp.c
  ``igmp_mc_seq_show``); ``/proc/net/dev_mcast``:
  :func:`netstack.core.dev_addr_lists.dev_mcast_text` (net/core/net-procfs.c).
- ``/proc/sys/…``: the namespace's sysctl table, one value and a newline (multi-value
  knobs tab-separated, as ``proc_dointvec`` prints them).

Files are printed in order; a missing one gives ``cat: PATH: No such file or directory``
and exit status 1 after the others are printed.  Options and any other path are
"not supported".
"""
from __future__ import annotations

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Ctx
from netstack.errors import NotSupported


def _read(ctx: Ctx, path: str) -> str | None:
    """The file's text, None when it does not exist."""
    norm = "/" + "/".join(p for p in path.split("/") if p)
    if norm.startswith("/proc/net/bonding/"):
        from netstack.drivers.bonding.bond_main import BondDevice
        from netstack.drivers.bonding.bond_procfs import bond_info_text
        name = norm[len("/proc/net/bonding/"):]
        dev = ctx.net.get(name)
        if not isinstance(dev, BondDevice):
            return None
        return bond_info_text(dev)
    if norm == "/proc/net/igmp":
        from netstack.ipv4.igmp import proc_igmp_text
        return proc_igmp_text(ctx.net)
    if norm == "/proc/net/igmp6":
        from netstack.ipv6.mcast import proc_igmp6_text
        return proc_igmp6_text(ctx.net)
    if norm == "/proc/net/dev_mcast":
        from netstack.core.dev_addr_lists import dev_mcast_text
        return dev_mcast_text(list(ctx.net.devices.values()))
    if norm.startswith("/proc/sys/"):
        key = norm[len("/proc/sys/"):].replace(".", "\0").replace("/", ".").replace("\0", "/")
        if not key.startswith("net."):
            raise NotSupported(f"cat {path} (netstack models /proc/sys/net only)")
        table = ctx.net.sysctl
        if key not in table:
            return None
        v = table.get(key)
        return (str(v).replace(" ", "\t") if isinstance(v, str) else str(v)) + "\n"
    raise NotSupported(f"cat {path}")


def do_cat(ctx: Ctx, args: list[str]) -> int:
    """``cat PATH…``."""
    if not args:
        raise NotSupported("cat from standard input")
    failed = False
    for a in args:
        if a.startswith("-") and a != "-":
            raise NotSupported(f"cat {a}")
        if a == "-":
            raise NotSupported("cat from standard input")
        text = _read(ctx, a)
        if text is None:
            ctx.stderr.write(f"cat: {a}: No such file or directory\n")
            failed = True
            continue
        ctx.stdout.write(text)
    if failed:
        raise ToolError("", 1)
    return 0
