"""iproute2's shared parsing helpers (ip/ip_common.h, lib/utils.c, lib/ll_addr.c).

Why reproduce them one by one: scenario files must run unchanged under bash on a real
kernel, so netstack has to accept exactly what ``ip`` accepts (``matches()`` prefix
abbreviations, ``strtol(…, 0)`` numbers, ``ll_addr_a2n`` MAC syntax) and reject the rest
with exactly the same words and exit status (``invarg``/``duparg``/``duparg2`` call
``exit(-1)`` → 255; ``get_prefix``/``get_addr`` call ``exit(1)``; netlink errors return 2).
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.core.world import World

AF_UNSPEC = 0
AF_INET = 2
AF_INET6 = 10


def matches(prefix: str, word: str) -> bool:
    """lib/utils.c ``matches()`` (inverted to a boolean): ``prefix`` abbreviates ``word``.

    An empty ``prefix`` matches everything, as in iproute2."""
    return word.startswith(prefix)


@dataclass
class Ctx:
    """What one command runs against: the world, the namespace (``ip -n`` / ``ip netns
    exec`` change it), the output streams, the working directory and ip's global options."""

    world: "World"
    net: "Net"
    stdout: IO[str]
    stderr: IO[str]
    cwd: str = field(default_factory=os.getcwd)
    family: int = AF_UNSPEC
    json: bool = False
    pretty: bool = False
    details: int = 0
    stats: int = 0
    brief: bool = False
    oneline: bool = False
    numeric: bool = False
    ns_name: str = ""


# --------------------------------------------------------------- error helpers
def invarg(msg: str, arg: str) -> ToolError:
    """lib/utils.c ``invarg``: many callers pass a message ending in "\\n", which is why the
    real tool prints an empty line after some of these errors."""
    return ToolError(f'Error: argument "{arg}" is wrong: {msg}\n', 255)


def duparg(key: str, arg: str) -> ToolError:
    return ToolError(f'Error: duplicate "{key}": "{arg}" is the second value.\n', 255)


def duparg2(key: str, arg: str) -> ToolError:
    return ToolError(f'Error: either "{key}" is duplicate, or "{arg}" is a garbage.\n', 255)


def incomplete() -> ToolError:
    """``NEXT_ARG()`` at the end of argv (``incomplete_command``)."""
    return ToolError('Command line is not complete. Try option "help"\n', 255)


def no_device(name: str) -> ToolError:
    return ToolError(f'Cannot find device "{name}"\n', 1)


def kernel_error(e: KernelError) -> ToolError:
    """libnetlink's rtnl_talk error path: with an extack message only ``Error: MSG.`` is
    printed (a full stop is added when missing), otherwise ``RTNETLINK answers: strerror``;
    the command exits 2."""
    if e.extack:
        msg = e.extack if e.extack.endswith(".") else e.extack + "."
        return ToolError(f"Error: {msg}\n", 2)
    return ToolError(f"RTNETLINK answers: {os.strerror(e.errno)}\n", 2)


class Args:
    """argv with iproute2's ``NEXT_ARG``/``PREV_ARG`` cursor semantics."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = list(argv)
        self.i = 0

    def __bool__(self) -> bool:
        return self.i < len(self.argv)

    @property
    def cur(self) -> str:
        return self.argv[self.i]

    def advance(self) -> None:
        self.i += 1

    def next_arg(self) -> str:
        """``NEXT_ARG()``: move to the value of the current keyword."""
        self.i += 1
        if self.i >= len(self.argv):
            raise incomplete()
        return self.argv[self.i]

    def rest(self) -> list[str]:
        return self.argv[self.i:]


# ----------------------------------------------------------------- numbers
def strtol(text: str, base: int = 0) -> int | None:
    """C ``strtol``/``strtoul`` with iproute2's "whole string must be consumed" check:
    base 0 takes 0x… as hex and 0… as octal; leading blanks and a sign are accepted."""
    s = text.lstrip(" \t\n\v\f\r")
    if not s:
        return None
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    b = base
    if b in (0, 16) and s[:2].lower() == "0x" and len(s) > 2:
        s, b = s[2:], 16
    elif b == 0 and len(s) > 1 and s[0] == "0":
        s, b = s[1:], 8
    elif b == 0:
        b = 10
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"[:b]
    if not s or any(c not in digits for c in s.lower()):
        return None
    return sign * int(s, b)


def get_integer(text: str, lo: int = -(2 ** 31), hi: int = 2 ** 31 - 1) -> int | None:
    """``get_integer(…, 0)``: a C int."""
    v = strtol(text, 0)
    if v is None or not lo <= v <= hi:
        return None
    return v


def get_unsigned(text: str, bits: int = 32) -> int | None:
    """``get_u32``/``get_unsigned``: strtoul (a leading '-' wraps, which iproute2 rejects
    for get_u32; netstack rejects it too)."""
    v = strtol(text, 0)
    if v is None or v < 0 or v >= 1 << bits:
        return None
    return v


# --------------------------------------------------------------- addresses
def family_name_verbose(family: int) -> str:
    return {AF_INET: "inet", AF_INET6: "inet6"}.get(family, "any valid")


@dataclass(frozen=True)
class Prefix:
    """``inet_prefix``: family, address bytes, prefix length, and whether the length was
    given explicitly (``PREFIXLEN_SPECIFIED``)."""

    family: int
    addr: bytes
    bitlen: int
    explicit_len: bool = True
    is_default: bool = False

    def __str__(self) -> str:
        return addr_to_str(self.addr)


def addr_to_str(addr: bytes) -> str:
    """``inet_ntop`` as glibc formats it (iproute2 prints every address with it)."""
    if len(addr) == 16:
        return inet6_ntop(addr)
    return str(ipaddress.ip_address(addr))


def inet6_ntop(raw: bytes) -> str:
    """glibc ``inet_ntop6``: the first longest run of two or more zero words becomes
    ``::``, hex words in lower case, and the last 32 bits are written as a dotted quad
    when the first 96 bits are zero (``::1.2.3.4``, but not ``::`` or ``::1``) or are
    ``::ffff`` (``::ffff:1.2.3.4``) — unlike Python's ``ipaddress``, which prints
    ``::ffff:102:304``."""
    words = [(raw[i] << 8) | raw[i + 1] for i in range(0, 16, 2)]
    best_base, best_len, cur_base, cur_len = -1, 0, -1, 0
    for i, w in enumerate(words + [1]):          # sentinel closes a trailing run
        if w == 0 and i < 8:
            if cur_base < 0:
                cur_base, cur_len = i, 0
            cur_len += 1
        elif cur_base >= 0:
            if cur_len > best_len:
                best_base, best_len = cur_base, cur_len
            cur_base = -1
    if best_len < 2:
        best_base = -1
    out = ""
    for i in range(8):
        if best_base >= 0 and best_base <= i < best_base + best_len:
            if i == best_base:
                out += ":"
            continue
        if i:
            out += ":"
        if i == 6 and best_base == 0 and (best_len == 6 or (best_len == 5
                                                          and words[5] == 0xFFFF)):
            return out + ".".join(str(b) for b in raw[12:])
        out += f"{words[i]:x}"
    if best_base >= 0 and best_base + best_len == 8:
        out += ":"
    return out


def _parse_addr(text: str, family: int) -> tuple[int, bytes] | None:
    """``get_addr_1``: dotted quad for inet (inet_pton semantics), RFC 4291 text for
    inet6; the family is guessed from ':' when unspecified."""
    if family in (AF_UNSPEC, AF_INET6) and ":" in text:
        try:
            return AF_INET6, ipaddress.IPv6Address(text).packed
        except ValueError:
            return None
    if family in (AF_UNSPEC, AF_INET):
        parts = text.split(".")
        # inet_pton: exactly four decimal parts 0..255, no leading zeros beyond "0".
        if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) <= 255
                                   and (p == "0" or not p.startswith("0")) for p in parts):
            return AF_INET, bytes(int(p) for p in parts)
        # iproute2 also takes a bare number of fewer parts via get_addr_ipv4 (inet_aton
        # style "1.2.3" / "10" are refused): keep to inet_pton.
    return None


def get_addr(text: str, family: int) -> Prefix:
    """lib/utils.c ``get_addr`` (exit 1 with iproute2's message on failure)."""
    r = _parse_addr(text, family)
    if r is None:
        raise ToolError(f'Error: {family_name_verbose(family)} address is expected rather '
                        f'than "{text}".\n', 1)
    fam, raw = r
    return Prefix(fam, raw, len(raw) * 8)


def get_prefix(text: str, family: int) -> Prefix:
    """lib/utils.c ``get_prefix``: ``ADDR[/LEN]``, plus ``default``/``any``/``all``."""
    err = ToolError(f'Error: {family_name_verbose(family)} prefix is expected rather than '
                    f'"{text}".\n', 1)
    if text in ("default", "any", "all"):
        fam = family if family != AF_UNSPEC else AF_INET
        n = 4 if fam == AF_INET else 16
        return Prefix(fam, bytes(n), 0, True, is_default=True)
    addr, slash, plen = text.partition("/")
    r = _parse_addr(addr, family)
    if r is None:
        raise err
    fam, raw = r
    maxlen = len(raw) * 8
    if not slash:
        return Prefix(fam, raw, maxlen, False)
    v = get_unsigned(plen)
    if v is None or v > maxlen:
        raise err
    return Prefix(fam, raw, v, True)


def parse_lladdr(text: str) -> bytes:
    """lib/ll_addr.c ``ll_addr_a2n``: colon-separated hex bytes of one or two digits."""
    out = bytearray()
    for part in text.split(":"):
        if not 1 <= len(part) <= 2 or any(c not in "0123456789abcdefABCDEF" for c in part):
            raise ToolError(f'"{text}" is invalid lladdr.\n', 1)
        out.append(int(part, 16))
    return bytes(out)


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def lookup_dev(ctx: Ctx, name: str) -> "NetDevice":
    """``ll_name_to_index`` failing → ``Cannot find device "X"`` (exit 1)."""
    dev = ctx.net.get(name)
    if dev is None:
        raise no_device(name)
    return dev


# ------------------------------------------------------------------ tables
from netstack.core.rtnetlink import (  # noqa: E402,F401  (re-exported)
    RT_TABLE_DEFAULT, RT_TABLE_LOCAL, RT_TABLE_MAIN, RT_TABLE_UNSPEC)
_TABLE_NAMES = {"unspec": 0, "default": 253, "main": 254, "local": 255}


def name_or_number(text: str, names: dict[str, int], maxv: int = 0xFFFFFFFF) -> int | None:
    """The lib/rt_names.c ``*_a2n`` shape: a known name, else an unsigned number ≤ maxv."""
    if text in names:
        return names[text]
    v = get_unsigned(text)
    return v if v is not None and v <= maxv else None


def table_a2n(text: str) -> int | None:
    """lib/rt_names.c ``rtnl_rttable_a2n``: the built-in names or a u32."""
    return name_or_number(text, _TABLE_NAMES)


def table_n2a(tid: int) -> str:
    for k, v in _TABLE_NAMES.items():
        if v == tid:
            return k
    return str(tid)


def import_cli_module(name: str, what: str) -> Any:
    """Import ``netstack.cli.<name>``; a module that is not (yet) part of netstack makes
    the command "not supported: <what>" rather than an ImportError."""
    import importlib
    from netstack.errors import NotSupported
    modname = f"netstack.cli.{name}"
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as e:
        if e.name != modname:
            raise
        raise NotSupported(what) from None
