"""Shared by the netlink-bytecode corpus test and its golden generator: how a corpus line
becomes a complete ruleset file (the same text is fed to Debian's nft and to netstack)."""
from __future__ import annotations

import os

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nft_corpus", "corpus.txt")

PREAMBLE = """table {family} t {{
\tset s {{ type {addr}; }}
\tset c {{ type ipv4_addr . inet_service; }}
\tmap vm {{ type inet_service : verdict; }}
\tmap vm4 {{ type ipv4_addr : verdict; }}
\tchain foo {{ }}
\tchain c {{
\t\t{rule}
\t}}
}}
"""


def load_corpus() -> list[tuple[str, str]]:
    """``(family, rule)`` pairs from corpus.txt (``#`` lines are comments)."""
    out = []
    with open(CORPUS) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fam, rule = (p.strip() for p in line.split("|", 1))
            out.append((fam, rule))
    return out


def wrap(family: str, rule: str) -> str:
    """The ruleset file for one corpus rule."""
    addr = "ipv6_addr" if family == "ip6" else "ipv4_addr"
    return PREAMBLE.format(family=family, addr=addr, rule=rule)


ERRORS = os.path.join(os.path.dirname(CORPUS), "errors.txt")


def load_error_cases() -> list[str]:
    """Inputs nft must reject, one per line of errors.txt with ``\\n``/``\\t`` escapes."""
    with open(ERRORS) as f:
        return [line.rstrip("\n").replace("\\n", "\n").replace("\\t", "\t")
                for line in f if line.strip() and not line.startswith("#")]
