"""The documented Python API: build a topology, inject, capture, advance time, read state.

``Stack`` is a thin facade over a :class:`~netstack.core.world.World` and the CLI's command
runner, so everything a scenario script can do is one call away, and everything the Python
API does is what the same ``ip``/``sysctl`` command would do.  See README.md for a tour.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Iterable

from netstack.core.af_packet import describe_refusal, packet_snd_check
from netstack.core.dev import dev_queue_xmit_list
from netstack.core.drop_reason import DropCounters
from netstack.core.world import Frame, World
from netstack.errors import NetstackError

__all__ = ["Stack", "CommandResult", "Frame"]


@dataclass(frozen=True)
class CommandResult:
    """What one command printed and returned."""

    rc: int
    stdout: str
    stderr: str


class Stack:
    """A simulated machine you drive from Python."""

    def __init__(self, trace: bool = False, seed: int = 0) -> None:
        self.trace_lines: list[str] = []
        self.world = World(trace=trace, trace_sink=self.trace_lines.append if trace else None,
                           seed=seed)

    # ---------------------------------------------------------- configuration
    def run_script(self, text_or_path: str, name: str | None = None, cwd: str | None = None) -> None:
        """Run a scenario script (text, or a path to one); raises ``ScenarioError``."""
        from netstack.cli.scenario import run_script
        if name is None and "\n" not in text_or_path and os.path.isfile(text_or_path):
            path = text_or_path
            with open(path, encoding="utf-8") as f:
                text = f.read()
            run_script(self.world, text, name=path, cwd=cwd or os.getcwd())
            return
        run_script(self.world, text_or_path, name=name or "SCRIPT", cwd=cwd or os.getcwd())

    def command(self, line: str | list[str]) -> CommandResult:
        """Run one command line (``ip -n r -j route``, ``sysctl -w …``) and capture output."""
        from netstack.cli.scenario import run_command
        out, err = io.StringIO(), io.StringIO()
        rc = run_command(self.world, line, stdout=out, stderr=err)
        return CommandResult(rc, out.getvalue(), err.getvalue())

    # ---------------------------------------------------------------- traffic
    def _dev(self, ns: str, dev: str):  # type: ignore[no-untyped-def]
        net = self.world.netns(ns)
        d = net.get(dev)
        if d is None:
            raise NetstackError(f'Cannot find device "{dev}" in netns "{ns}"')
        return d

    def inject(self, ns: str, dev: str, frames: Iterable[bytes], at: float | None = None) -> None:
        """Transmit ``frames`` out of ``dev`` in ``ns`` (as ``tcpreplay -i DEV``) as one
        batch, at virtual time ``at`` seconds (default: now), then process until idle."""
        d = self._dev(ns, dev)
        w = self.world
        frames = list(frames)
        for i, f in enumerate(frames):
            err = packet_snd_check(d, f)
            if err:
                raise NetstackError(f"inject {ns}:{dev}: frame {i}: {describe_refusal(err)} "
                                    "(refused by packet_snd, nothing was sent)")
        if at is not None:
            w.run_until(int(at * 1_000_000_000))
        pkts = [w.new_packet(f) for f in frames]
        for i in range(0, len(pkts), 64):
            dev_queue_xmit_list(d, pkts[i:i + 64])
        w.run_until_idle()

    def capture(self, ns: str, dev: str) -> list[Frame]:
        """A list that fills with the frames ``dev`` in ``ns`` receives (from the MAC header)."""
        d = self._dev(ns, dev)
        frames: list[Frame] = []
        clock = self.world.clock

        def tap(pkt) -> None:  # type: ignore[no-untyped-def]
            frames.append(Frame(clock.now, bytes(pkt.buf[pkt.mac_header:pkt.tail])))

        d.net.add_rx_tap(d, tap)
        return frames

    def advance(self, seconds: float) -> None:
        """Run virtual time forward, firing timers (ARP retries, timeouts …)."""
        self.world.advance(seconds)

    # ------------------------------------------------------------------ state
    @property
    def now(self) -> float:
        """Virtual time in seconds."""
        return self.world.clock.now / 1_000_000_000

    def drops(self, ns: str = "") -> DropCounters:
        """Drop counters (kernel drop-reason names) of a namespace."""
        return self.world.netns(ns).drops
