"""nftables for netstack: language, ruleset, register VM and the ``nft`` command.

Layout (each module cites the nftables / kernel source it reproduces):

* :mod:`.lexer`, :mod:`.parser` — nft syntax into commands; a ``table { … }`` block is
  expanded as nft does (table, chains, objects, sets, then rules).
* :mod:`.evaluate` — type resolution, protocol dependencies, and linearisation into kernel
  expressions (:mod:`.vm`), plus the canonical text/JSON ``nft list`` prints.
* :mod:`.ruleset` — tables, chains, rules with handles, sets/maps (hash, interval,
  concatenated intervals, timeouts), stateful objects, flowtables; ``net.nft`` per
  namespace (created on first use).
* :mod:`.commands` — atomic transactions (a batch runs on a copy; ``-c`` discards it).
* :mod:`.hooks` — ``nft_do_chain`` and base-chain registration with NF2's hook core
  (:mod:`netstack.netfilter.core`); nat chains through ``nf_nat_register_fn``.
* :mod:`.netlink`, :mod:`.listing`, :mod:`.jsonfmt` — ``--debug=netlink``, ``list``, ``-j``.
* :mod:`.cli` — ``run_nft(net, argv) -> (status, stdout, stderr)`` and the scenario
  command ``nft …``.

The evaluator entry point NF2's hooks call is :func:`nft_do_chain(chain, pkt, state)
<netstack.netfilter.nft.hooks.nft_do_chain>` with NF2's ``NfHookState``.
"""
from __future__ import annotations

from netstack.netfilter.nft.cli import run_nft, run_text
from netstack.netfilter.nft.hooks import nft_do_chain
from netstack.netfilter.nft.ruleset import nft_state

__all__ = ["nft_do_chain", "nft_state", "run_nft", "run_text"]
