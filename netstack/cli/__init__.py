"""Command-line front ends: iproute2/sysctl/ethtool look-alikes, scenarios, ``netstack run``."""
from netstack.cli.scenario import run_command, run_script

__all__ = ["run_command", "run_script"]
