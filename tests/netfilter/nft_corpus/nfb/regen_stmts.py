#!/usr/bin/env python3
"""Regenerate stmts_goldens.json: Debian nft 1.0.6's ``--debug=netlink -c -f`` output
(exit status, stdout, stderr with the file name replaced by FILE) for each case of
stmts_cases.txt (cases separated by lines holding ``----``), run from this directory so
``include "./…"`` finds the *.inc files.  Needs root (nft -c talks to the kernel)."""
from __future__ import annotations

import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def load_cases() -> list[str]:
    with open(os.path.join(HERE, "stmts_cases.txt")) as f:
        return [c.strip("\n") + "\n" for c in f.read().split("----\n") if c.strip()]


def main() -> None:
    out = []
    for text in load_cases():
        path = os.path.join(HERE, "case.nft.tmp")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run(["nft", "--debug=netlink", "-c", "-f", "case.nft.tmp"], cwd=HERE,
                           capture_output=True, text=True, timeout=20)
        os.unlink(path)
        out.append({"input": text, "rc": p.returncode, "stdout": p.stdout,
                    "stderr": p.stderr.replace("case.nft.tmp", "FILE")})
    with open(os.path.join(HERE, "stmts_goldens.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
