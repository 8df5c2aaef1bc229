"""Per-namespace sysctls (``/proc/sys/net``) with the kernel's defaults and write rules.

Why a table with registration: each protocol owns its knobs, like the kernel's
``register_net_sysctl``.  Per-device ``conf`` directories (``net.ipv4.conf.DEV.*``,
``net.ipv6.conf.DEV.*``, ``net.ipv4.neigh.DEV.*``) are created from ``conf.default`` when a
device registers and removed when it goes.  For IPv4 conf and the neighbour parms, writing
``default.X`` also updates the devices on which X was never written explicitly
(net/ipv4/devinet.c ``devinet_copy_dflt_conf`` and its per-device ``state`` bitmap,
net/core/neighbour.c ``neigh_copy_dflt_parms``); IPv6's conf does not do that.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Callable

OnWrite = Callable[[str, int | str, int | str], None]


class SysctlError(Exception):
    """A failed read/write, with the errno the kernel would return."""

    def __init__(self, key: str, err: int) -> None:
        super().__init__(f"{key}: {errno.errorcode.get(err, err)}")
        self.key = key
        self.errno = err


@dataclass(slots=True)
class SysctlDef:
    """One knob: default, accepted range, and an optional write hook."""

    default: int | str
    minv: int | None = None
    maxv: int | None = None
    on_write: OnWrite | None = None
    is_str: bool = False


@dataclass
class _ConfDir:
    """A per-device conf family, e.g. prefix ``net.ipv4.conf``."""

    prefix: str
    names: dict[str, SysctlDef] = field(default_factory=dict)
    #: dev name -> names written explicitly on that device
    explicit: dict[str, set[str]] = field(default_factory=dict)


def _copies_default(prefix: str) -> bool:
    """Which ``default`` directories push a write onto existing devices: IPv4's conf
    (devinet.c ``devinet_copy_dflt_conf``) and the neighbour tables' parms
    (neighbour.c ``neigh_copy_dflt_parms``).  IPv6's conf does not: a write to
    ``net.ipv6.conf.default.X`` only seeds devices created afterwards (addrconf.c)."""
    return prefix == "net.ipv4.conf" or prefix.endswith(".neigh")


def bounded_pair(table: "SysctlTable", low_key: str, high_key: str) -> OnWrite:
    """Write hook for a low/high pair that must stay ``low <= high`` — the fragment
    reassembly thresholds (net/ipv4/ip_fragment.c ``ip4_frags_ns_ctl_register``,
    net/ipv6/reassembly.c ``ip6_frags_ns_sysctl_register``: ``proc_doulongvec_minmax``
    with the other knob as ``extra1``/``extra2``).  The kernel checks before storing; the
    hook runs after, so a refused value is put back and EINVAL raised (measured on 6.18:
    ``sysctl -w net.ipv4.ipfrag_low_thresh=9000000`` → Invalid argument)."""

    def hook(key: str, old: int | str, new: int | str) -> None:
        vals = table.values
        if vals[low_key] > vals[high_key]:  # type: ignore[operator]
            vals[key] = old
            raise SysctlError(key, errno.EINVAL)
    return hook


class SysctlTable:
    """All sysctls of one namespace."""

    def __init__(self) -> None:
        self.defs: dict[str, SysctlDef] = {}
        self.values: dict[str, int | str] = {}
        self._confs: dict[str, _ConfDir] = {}
        self._devices: list[str] = []

    # ---------------------------------------------------------- registration
    def register(self, key: str, default: int | str, minv: int | None = None,
                 maxv: int | None = None, on_write: OnWrite | None = None) -> None:
        """Add a plain (non per-device) knob."""
        self.defs[key] = SysctlDef(default, minv, maxv, on_write, isinstance(default, str))
        self.values.setdefault(key, default)

    def register_conf(self, prefix: str, name: str, default: int | str, minv: int | None = None,
                      maxv: int | None = None, on_write: OnWrite | None = None,
                      has_all: bool = True) -> None:
        """Add a per-device knob ``PREFIX.{all,default,DEV}.NAME``."""
        d = self._confs.setdefault(prefix, _ConfDir(prefix))
        sd = SysctlDef(default, minv, maxv, on_write, isinstance(default, str))
        d.names[name] = sd
        dirs = (["all"] if has_all else []) + ["default"]
        for sub in dirs:
            k = f"{prefix}.{sub}.{name}"
            self.defs[k] = sd
            self.values.setdefault(k, default)
        for dev in self._devices:
            k = f"{prefix}.{dev}.{name}"
            self.defs[k] = sd
            self.values.setdefault(k, self.values[f"{prefix}.default.{name}"])

    def add_device(self, dev: str) -> None:
        """NETDEV_REGISTER: create ``conf.DEV`` from ``conf.default``."""
        self._devices.append(dev)
        for d in self._confs.values():
            d.explicit[dev] = set()
            for name, sd in d.names.items():
                k = f"{d.prefix}.{dev}.{name}"
                self.defs[k] = sd
                self.values[k] = self.values[f"{d.prefix}.default.{name}"]

    def del_device(self, dev: str) -> None:
        """NETDEV_UNREGISTER: the device's conf directories disappear."""
        if dev in self._devices:
            self._devices.remove(dev)
        for d in self._confs.values():
            d.explicit.pop(dev, None)
            for name in d.names:
                k = f"{d.prefix}.{dev}.{name}"
                self.defs.pop(k, None)
                self.values.pop(k, None)

    def rename_device(self, old: str, new: str) -> None:
        """NETDEV_CHANGENAME: conf directories follow the device's name."""
        idx = self._devices.index(old)
        self._devices[idx] = new
        for d in self._confs.values():
            d.explicit[new] = d.explicit.pop(old, set())
            for name in d.names:
                ok, nk = f"{d.prefix}.{old}.{name}", f"{d.prefix}.{new}.{name}"
                self.defs[nk] = self.defs.pop(ok)
                self.values[nk] = self.values.pop(ok)

    # ------------------------------------------------------------- access
    def __contains__(self, key: str) -> bool:
        return key in self.defs

    def get(self, key: str) -> int | str:
        """Read a knob; raises SysctlError(ENOENT) for an unknown key."""
        try:
            return self.values[key]
        except KeyError:
            raise SysctlError(key, errno.ENOENT) from None

    def conf(self, prefix: str, dev: str, name: str) -> int | str:
        """A device's value (``IN_DEV_CONF_GET``)."""
        return self.values[f"{prefix}.{dev}.{name}"]

    def keys(self) -> list[str]:
        return sorted(self.defs)

    def set(self, key: str, raw: str | int) -> int | str:
        """Write a knob as ``echo VALUE > /proc/sys/...`` would; returns the stored value.

        Integer knobs accept what ``proc_dointvec`` accepts (leading/trailing blanks, sign);
        out-of-range values give EINVAL like ``proc_dointvec_minmax``.
        """
        sd = self.defs.get(key)
        if sd is None:
            raise SysctlError(key, errno.ENOENT)
        if sd.is_str:
            val: int | str = str(raw).strip()
        else:
            text = str(raw).strip().split()
            if not text:
                raise SysctlError(key, errno.EINVAL)
            try:
                val = int(text[0], 0) if text[0].lower().startswith(("0x", "-0x")) else int(text[0])
            except ValueError:
                raise SysctlError(key, errno.EINVAL) from None
            if (sd.minv is not None and val < sd.minv) or (sd.maxv is not None and val > sd.maxv):
                raise SysctlError(key, errno.EINVAL)
        old = self.values[key]
        self.values[key] = val
        self._propagate(key, val)
        if sd.on_write is not None:
            sd.on_write(key, old, val)
        return val

    def _propagate(self, key: str, val: int | str) -> None:
        for d in self._confs.values():
            if not key.startswith(d.prefix + "."):
                continue
            rest = key[len(d.prefix) + 1:]
            sub, _, name = rest.rpartition(".")
            if name not in d.names:
                continue
            if sub == "default":
                if not _copies_default(d.prefix):
                    continue
                for dev in self._devices:
                    if name not in d.explicit.get(dev, ()):
                        self.values[f"{d.prefix}.{dev}.{name}"] = val
            elif sub not in ("all",):
                d.explicit.setdefault(sub, set()).add(name)
