"""The ``netstack`` console script.

``netstack run SETUP [--inject NS:DEV=FILE]… [--capture NS:DEV=FILE]… [--then FILE]
[--trace] [--json] [-q]`` runs a scenario with replayed traffic (see
:mod:`netstack.cli.run`); ``netstack ip …``, ``netstack sysctl …``, ``netstack ethtool …``
run one command against a fresh world (handy for checking a line's syntax);
``netstack bpf …`` is bpftool's command set on the eBPF runtime (:mod:`netstack.cli.bpf_cmd`).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from netstack.cli.run import RunError, RunOptions, parse_endpoint, run
from netstack.errors import NotSupported

_TOOLS = ("ip", "sysctl", "ethtool", "echo", "iptables", "ip6tables", "iptables-save",
          "ip6tables-save", "iptables-translate", "ip6tables-translate", "nft")


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netstack run",
                                description="Run a setup scenario, replay pcaps, capture.")
    p.add_argument("setup", help="bash scenario setting up namespaces/links/routes")
    p.add_argument("--inject", action="append", default=[], metavar="NS:DEV=FILE",
                   help="transmit FILE's frames out of DEV in NS (like tcpreplay -i DEV)")
    p.add_argument("--capture", action="append", default=[], metavar="NS:DEV=FILE",
                   help="write what DEV in NS receives to FILE (pcap, virtual time)")
    p.add_argument("--then", metavar="FILE", help="commands to run after the traffic")
    p.add_argument("--trace", action="store_true", help="print each packet's path")
    p.add_argument("--trace-limit", type=int, metavar="N",
                   help="with --trace: print at most N trace lines")
    p.add_argument("--json", action="store_true", help="closing summary (and --trace lines) as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no closing summary")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write("usage: netstack run SETUP [options] | netstack {ip,sysctl,ethtool} "
                         "ARGS…\n")
        return 0 if args else 2
    if args[0] == "run":
        ns = _run_parser().parse_args(args[1:])
        try:
            opts = RunOptions(ns.setup, [parse_endpoint(s, "--inject") for s in ns.inject],
                              [parse_endpoint(s, "--capture") for s in ns.capture], ns.then,
                              ns.trace, ns.json, ns.quiet, ns.trace_limit)
        except RunError as e:
            sys.stderr.write(f"netstack: {e}\n")
            return 2
        return run(opts)
    if args[0] == "bpf":
        from netstack.cli.bpf_cmd import main as bpf_main
        return bpf_main(args[1:])
    if args[0] in _TOOLS:
        from netstack.cli.scenario import run_command
        from netstack.core.world import World
        try:
            return run_command(World(), args)
        except NotSupported as e:
            sys.stderr.write(f"netstack: {e}\n")
            return 1
    sys.stderr.write(f"netstack: unknown command {args[0]!r} (try: run, ip, sysctl, "
                     "ethtool, bpf)\n")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
