#!/usr/bin/env python3
"""Regenerate goldens.json: Debian nft 1.0.6's ``--debug=netlink -c`` output for every
rule of corpus.txt, each rule wrapped in :data:`PREAMBLE` (see tests/netfilter/
test_nft_netlink.py).  Run as root or not: ``-c`` needs no kernel.  Usage:
``python tests/netfilter/nft_corpus/regen_goldens.py`` (needs /usr/sbin/nft 1.0.6)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from nft_corpus_common import load_corpus, load_error_cases, wrap  # noqa: E402


def nft_netlink(text: str) -> tuple[int, str, str]:
    """Run the real ``nft --debug=netlink -c -f`` on ``text``."""
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        p = subprocess.run(["nft", "--debug=netlink", "-c", "-f", path],
                           capture_output=True, text=True, timeout=20)
        return p.returncode, p.stdout, p.stderr.replace(path, "FILE")
    finally:
        os.unlink(path)


def main() -> int:
    out = []
    for family, rule in load_corpus():
        rc, so, se = nft_netlink(wrap(family, rule))
        out.append({"family": family, "rule": rule, "rc": rc, "stdout": so, "stderr": se})
        if rc:
            print(f"nft rejects {family} | {rule}: {se.strip()}", file=sys.stderr)
    with open(os.path.join(HERE, "goldens.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    errs = []
    for text in load_error_cases():
        rc, so, se = nft_netlink_plain(text)
        errs.append({"input": text, "rc": rc, "stdout": so, "stderr": se})
    with open(os.path.join(HERE, "error_goldens.json"), "w") as f:
        json.dump(errs, f, indent=1)
        f.write("\n")
    # command-line errors, each against a fresh empty namespace (needs root: unshare -n)
    cl = []
    with open(os.path.join(HERE, "cmdline_errors.txt")) as f:
        for line in f:
            if line.strip():
                p = subprocess.run(["unshare", "-n", "nft"] + line.split(),
                                   capture_output=True, text=True, timeout=20)
                cl.append({"args": line.split(), "rc": p.returncode, "stdout": p.stdout,
                           "stderr": p.stderr})
    with open(os.path.join(HERE, "cmdline_error_goldens.json"), "w") as f:
        json.dump(cl, f, indent=1)
        f.write("\n")
    # list/reset subcommands after loading list/filter.nft and list/sets.nft
    lc = []
    with open(os.path.join(HERE, "list_cmds.txt")) as f:
        for line in f:
            if line.strip():
                script = (f"nft -f {HERE}/list/filter.nft && nft -f {HERE}/list/sets.nft && "
                          f"nft {line.strip()}")
                p = subprocess.run(["unshare", "-n", "sh", "-c", script],
                                   capture_output=True, text=True, timeout=20)
                lc.append({"args": line.split(), "rc": p.returncode, "stdout": p.stdout,
                           "stderr": p.stderr})
    with open(os.path.join(HERE, "list_cmd_goldens.json"), "w") as f:
        json.dump(lc, f, indent=1)
        f.write("\n")
    return 0


def nft_netlink_plain(text: str) -> tuple[int, str, str]:
    """``nft -c -f FILE`` (no debug output) with the file name replaced by ``FILE``."""
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        p = subprocess.run(["nft", "-c", "-f", path], capture_output=True, text=True,
                           timeout=20)
        return p.returncode, p.stdout, p.stderr.replace(path, "FILE")
    finally:
        os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
