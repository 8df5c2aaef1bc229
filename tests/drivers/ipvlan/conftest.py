"""ipvlan tests: the netstack pieces they rely on outside the driver."""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def _missing_chains() -> str | None:
    """ipvlan learns and validates slave addresses through the address notifier and
    validator chains that patch MV-3 adds to devinet/addrconf, and l3s needs MV-4's
    l3mdev hook: without them the address-dependent tests cannot run."""
    from netstack.ipv4 import devinet, ip_input
    from netstack.ipv6 import addrconf
    if "inetaddr_validator_chain" not in inspect.getsource(devinet) or \
            "inet6addr_chain" not in inspect.getsource(addrconf):
        return "needs patch MV-3 (address notifier/validator chains in devinet/addrconf)"
    if "l3mdev_l3_rcv" not in inspect.getsource(ip_input):
        return "needs patch MV-4 (l3mdev receive hook in ip_input/ip6_input)"
    return None


@pytest.fixture
def chains() -> None:
    reason = _missing_chains()
    if reason:
        print(f"\nSKIP: {reason}", file=sys.stderr)
        pytest.skip(reason)
