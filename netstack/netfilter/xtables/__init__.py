"""iptables/ip6tables (iptables-nft 1.8.9) front end and iptables-translate.

iptables-nft parses the legacy command line (iptables/xshared.c ``do_parse``), turns each rule
into native nf_tables expressions in tables/chains named like the legacy ones, and
``iptables-translate`` prints the equivalent ``nft`` commands (iptables/xtables-translate.c).
Here the parsed rule (:mod:`.parse`) is rendered three ways: nft rule text
(:mod:`.translate`), ``-S``/``iptables-save`` text and ``-L`` listings (:mod:`.render`);
:mod:`.tables` keeps the per-namespace xtables state that the ``iptables`` command edits.
"""
from netstack.netfilter.xtables.errors import XtablesError
from netstack.netfilter.xtables.parse import Family, ParsedCommand, parse_command
from netstack.netfilter.xtables.translate import translate_main, rule_to_nft

__all__ = ["XtablesError", "Family", "ParsedCommand", "parse_command", "translate_main",
           "rule_to_nft"]
