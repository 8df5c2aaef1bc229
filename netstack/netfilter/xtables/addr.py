"""Host/network arguments of ``-s``/``-d`` (libxtables xtables_ipparse_multiple /
xtables_ip6parse_multiple): a comma list of ``ADDR[/CIDR|/MASK]``; the address is masked, as
the real tool does before the rule is built.  Names are not resolved (netstack has no
resolver), so they fail as an unresolvable name does: "host/network `X' not found"."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class Net:
    """One address with its mask (both as integers) of family 4 or 6."""

    addr: int
    mask: int
    v6: bool

    @property
    def bits(self) -> int:
        return 128 if self.v6 else 32

    def cidr(self) -> int:
        """xtables_ipmask_to_cidr: prefix length, or -1 for a non-contiguous mask."""
        full = (1 << self.bits) - 1
        inv = full ^ self.mask
        if inv & (inv + 1):
            return -1
        return self.bits - inv.bit_length()

    def addr_str(self) -> str:
        return str(ipaddress.IPv6Address(self.addr) if self.v6 else
                   ipaddress.IPv4Address(self.addr))

    def mask_str(self) -> str:
        return str(ipaddress.IPv6Address(self.mask) if self.v6 else
                   ipaddress.IPv4Address(self.mask))

    def is_any(self) -> bool:
        return self.addr == 0 and self.mask == 0

    def save_str(self) -> str:
        """``-S`` spelling: ``A/CIDR`` or ``A/MASK`` (xtables_ipaddr_to_numeric+mask_to_str)."""
        c = self.cidr()
        return f"{self.addr_str()}/{c if c >= 0 else self.mask_str()}"


ANY4 = Net(0, 0, False)
ANY6 = Net(0, 0, True)


def _parse_one(text: str, v6: bool) -> Net | None:
    addr_s, slash, mask_s = text.partition("/")
    bits = 128 if v6 else 32
    full = (1 << bits) - 1
    try:
        a = int(ipaddress.IPv6Address(addr_s) if v6 else ipaddress.IPv4Address(addr_s))
    except ValueError:
        return None
    if not slash:
        m = full
    elif mask_s.isdigit():
        n = int(mask_s)
        if n > bits:
            return None
        m = (full << (bits - n)) & full
    else:
        try:
            m = int(ipaddress.IPv6Address(mask_s) if v6 else ipaddress.IPv4Address(mask_s))
        except ValueError:
            return None
    return Net(a & m, m, v6)


def parse_addresses(text: str, v6: bool) -> list[Net] | str:
    """The networks of a ``-s``/``-d`` argument, or the error message for the first bad one
    (the mask error text is libxtables' own)."""
    out: list[Net] = []
    for part in text.split(","):
        addr_s, slash, mask_s = part.partition("/")
        if slash and not mask_s.isdigit():
            if _parse_one(part.split("/")[0] + "/0", v6) is None:
                return f"host/network `{addr_s}' not found"
            if _parse_one(part, v6) is None:
                return f"invalid mask `{mask_s}' specified"
        elif slash and int(mask_s) > (128 if v6 else 32):
            return f"invalid mask `{mask_s}' specified"
        net = _parse_one(part, v6)
        if net is None:
            return f"host/network `{addr_s}' not found"
        out.append(net)            # duplicates are kept: one rule each
    return out
