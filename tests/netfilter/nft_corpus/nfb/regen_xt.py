#!/usr/bin/env python3
"""Regenerate xt_goldens.json (needs root, iptables-nft 1.8.9 and nft 1.0.6): each block
of xt_cases.txt runs in a fresh network namespace; then ``nft list ruleset`` (stdout and
stderr), ``nft -j list ruleset`` and ``nft -a list ruleset`` are recorded."""
from __future__ import annotations

import json
import os
import shlex
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "nfb-xt-regen"


def load_cases() -> list[list[str]]:
    blocks, cur = [], []
    with open(os.path.join(HERE, "xt_cases.txt")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("#"):
                continue
            if not line:
                if cur:
                    blocks.append(cur)
                cur = []
                continue
            cur.append(line)
    if cur:
        blocks.append(cur)
    return blocks


def main() -> None:
    out = []
    for cmds in load_cases():
        subprocess.run(["ip", "netns", "add", NS], check=True)
        try:
            for c in cmds:
                subprocess.run(["ip", "netns", "exec", NS] + shlex.split(c), check=True)
            t = subprocess.run(["ip", "netns", "exec", NS, "nft", "list", "ruleset"],
                               capture_output=True, text=True)
            j = subprocess.run(["ip", "netns", "exec", NS, "nft", "-j", "list", "ruleset"],
                               capture_output=True, text=True)
            a = subprocess.run(["ip", "netns", "exec", NS, "nft", "-a", "list", "ruleset"],
                               capture_output=True, text=True)
        finally:
            subprocess.run(["ip", "netns", "del", NS])
        out.append({"cmds": cmds, "text": t.stdout, "stderr": t.stderr, "json": j.stdout,
                    "handles": a.stdout})
    with open(os.path.join(HERE, "xt_goldens.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
