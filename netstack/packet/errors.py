"""Error types raised by the packet codecs.

Why: the datapath must never see an arbitrary exception from a parser.  Every
malformed input is reported as :class:`ParseError`, whose ``reason`` is the name
of the kernel's ``enum skb_drop_reason`` value (include/net/dropreason-core.h)
without the ``SKB_DROP_REASON_`` prefix, so the caller can count the drop exactly
where the kernel would (``kfree_skb_reason``).
"""

from __future__ import annotations

from netstack.errors import NotSupported  # the project-wide type, re-exported here

__all__ = ["ParseError", "NotSupported", "DROP_REASONS"]

#: Drop reasons the codecs in this package may report (subset of
#: include/net/dropreason-core.h).
DROP_REASONS: frozenset[str] = frozenset(
    {
        "PKT_TOO_SMALL",  # fixed header (or declared total length) exceeds the data
        "HDR_TRUNC",  # a header's own length field points past the data
        "IP_CSUM",  # IPv4 header checksum wrong (ip_rcv_core csum_error)
        "IP_INHDR",  # bad IPv4/IPv6 header field (ip_rcv_core inhdr_error)
        "INVALID_PROTO",  # wrong version / unsupported protocol encoding
        "IPV6_BAD_EXTHDR",  # malformed IPv6 extension header chain
        "UNHANDLED_PROTO",  # protocol not handled by this parser
        "IPV6_NDISC_BAD_OPTIONS",  # ND option with length 0 / past the end
    }
)


class ParseError(Exception):
    """A packet could not be parsed; ``reason`` is the kernel drop-reason name."""

    __slots__ = ("reason",)

    def __init__(self, reason: str, msg: str = "") -> None:
        if reason not in DROP_REASONS:
            raise ValueError(f"unknown drop reason {reason!r}")
        self.reason = reason
        super().__init__(f"{reason}: {msg}" if msg else reason)
