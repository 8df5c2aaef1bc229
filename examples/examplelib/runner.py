"""``netstack run`` on an example: its traffic written as pcaps, then the CLI.

Each example's ``run.py`` defines the traffic once (``SENDS``, ``CAPTURES``); this writes
one pcap per injecting device under ``out/<example>/`` and calls the same entry point as
the ``netstack`` console script, so what the README shows is what runs.
"""
from __future__ import annotations

import os
import sys

from examplelib.framegen import Send, pcaps_by_device, write_pcap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def argv_for(example_dir: str, sends: list[Send], captures: list[tuple[str, str]],
             extra: list[str], outdir: str | None = None) -> list[str]:
    """Write the injection pcaps (to ``outdir``, by default ``out/<example>/``); return
    the ``netstack`` argv (without the program name)."""
    name = os.path.basename(example_dir.rstrip("/"))
    outdir = outdir or os.path.join(ROOT, "out", name)
    os.makedirs(outdir, exist_ok=True)
    argv = ["run", os.path.join(example_dir, "setup.sh")]
    for (ns, dev), frames in pcaps_by_device(sends).items():
        path = os.path.join(outdir, f"{ns}-{dev}.pcap")
        write_pcap(path, frames)
        argv += ["--inject", f"{ns}:{dev}={path}"]
    for ns, dev in captures:
        argv += ["--capture", f"{ns}:{dev}={os.path.join(outdir, f'{ns}-{dev}-rx.pcap')}"]
    then = os.path.join(example_dir, "then.sh")
    if os.path.exists(then):
        argv += ["--then", then]
    return argv + (extra or ["--trace"])


def run_example(example_dir: str, sends: list[Send], captures: list[tuple[str, str]],
                extra: list[str]) -> int:
    """Run the example through ``netstack run``; ``extra`` replaces the default
    ``--trace`` (e.g. ``-q`` or ``--trace --trace-limit 40``)."""
    sys.path.insert(0, ROOT)
    from netstack.cli.main import main
    return main(argv_for(example_dir, sends, captures, extra))
