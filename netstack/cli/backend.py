"""Where the CLI finds the protocol layers (docs/internal-api.md names).

Imports are lazy so that ``ip link``/``sysctl``/``ethtool`` work in a world without IPv4 or
IPv6 registered, and a command that needs a missing layer fails with a clear
``not supported`` instead of an ImportError or an AttributeError on ``net.ipv4``.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from netstack.errors import NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net


def module(name: str, what: str) -> ModuleType:
    """Import ``name`` or raise NotSupported naming the feature."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise NotSupported(f"{what} ({name} is not available)") from None


def need_ipv4(net: "Net", what: str) -> None:
    if net.ipv4 is None:
        raise NotSupported(f"{what}: IPv4 is not registered in this world")


def need_ipv6(net: "Net", what: str) -> None:
    if net.ipv6 is None:
        raise NotSupported(f"{what}: IPv6 is not registered in this world")


def devinet() -> ModuleType:
    return module("netstack.ipv4.devinet", "IPv4 addresses")


def addrconf() -> ModuleType:
    return module("netstack.ipv6.addrconf", "IPv6 addresses")


def fib() -> ModuleType:
    return module("netstack.ipv4.fib", "IPv4 routes")


def fib_semantics() -> ModuleType:
    return module("netstack.ipv4.fib_semantics", "IPv4 routes")


def route6() -> ModuleType:
    return module("netstack.ipv6.route", "IPv6 routes")


def rules4() -> ModuleType:
    return module("netstack.ipv4.fib_rules", "IPv4 rules")


def rules6() -> ModuleType:
    return module("netstack.ipv6.fib6_rules", "IPv6 rules")


def core_rules() -> ModuleType:
    return module("netstack.core.fib_rules", "policy routing rules")


def neighbour() -> ModuleType:
    return module("netstack.core.neighbour", "neighbour tables")
