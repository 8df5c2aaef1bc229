"""Conntrack helpers (net/netfilter/nf_conntrack_helper.c) and their attachment API.

A helper reads a connection's payload to predict the related connections it will open
(expectations, :mod:`netstack.netfilter.conntrack_expect`).  Since Linux 6.0 helpers are
never assigned automatically: a ruleset attaches one explicitly, with nft's ``ct helper``
object + ``ct helper set "name"`` or iptables' ``-j CT --helper name`` in the raw table.

API for the rule engines (nft / xtables):

``helper_lookup(name, l3num, protonum) -> Helper | None``
    ``__nf_conntrack_helper_find``: exact name, the family must be the helper's (a
    helper registered for NFPROTO_UNSPEC matches any), same L4 protocol.  The kernel's
    built-in names are "ftp" (TCP, port 21) and "tftp" (UDP, port 69), each registered
    for IPv4 and IPv6.  nft_ct_helper_obj_init fails with ENOENT when this returns None
    for the object's family (for ``inet`` it looks up both and needs at least one).

``ct_set_helper(ct, helper) -> bool``
    What ``nft_ct_helper_obj_eval`` does with the helper it chose for the packet's
    family: only on a real, not-yet-confirmed ct of the helper's L4 protocol that has no
    helper yet (IPS_HELPER clear); attaches the help extension and sets IPS_HELPER.
    Returns False when not applicable (the rule then just continues).  The caller
    picks the helper matching ``ct.l3num`` (the nft object holds helper4/helper6).

``ct_template_set_helper(pkt, helper) -> bool``
    What ``-j CT --helper`` does (xt_CT.c): a template carrying the helper is attached
    before conntrack runs (the raw table at -300); ``init_conntrack`` copies it to the new
    ct (``__nf_ct_try_assign_helper``).  False when the packet already has a real ct.

Helpers run in ``nf_confirm`` (nf_conntrack_proto.c) at the confirm hooks (LOCAL_IN /
POST_ROUTING, priority INT_MAX), for every packet of the connection except RELATED_REPLY
(ICMP errors): :func:`nf_ct_helper_run`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from netstack.netfilter.core import NF_ACCEPT, NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_UNSPEC
from netstack.netfilter.conntrack_tuple import IPPROTO_TCP, IPPROTO_UDP

if TYPE_CHECKING:  # pragma: no cover
    from netstack.netfilter.conntrack import NfConn
    from netstack.netfilter.conntrack_expect import Expectation
    from netstack.packet.skb import Packet

NF_CT_MAX_EXPECT_CLASSES = 4


@dataclass(frozen=True)
class ExpectPolicy:
    """``struct nf_conntrack_expect_policy``."""

    max_expected: int
    timeout: int  # seconds
    name: str


@dataclass(frozen=True, eq=False)
class Helper:
    """``struct nf_conntrack_helper`` (one registration: name + family + L4 protocol)."""

    name: str
    l3num: int
    protonum: int
    port: int
    expect_policy: tuple[ExpectPolicy, ...]
    #: ``help(pkt, protoff, ct, ctinfo) -> verdict``
    help: Callable[["Packet", int, "NfConn", int], int]
    #: per-connection private data factory (``help->data``), or None.
    data_factory: Callable[[], Any] | None = None


@dataclass(eq=False)
class ConnHelp:
    """``struct nf_conn_help``: the helper, its expectations and private data."""

    helper: Helper | None
    expectations: list["Expectation"] = field(default_factory=list)
    expecting: list[int] = field(default_factory=lambda: [0] * NF_CT_MAX_EXPECT_CLASSES)
    data: Any = None


def _ftp_help(pkt: "Packet", protoff: int, ct: "NfConn", ctinfo: int) -> int:
    from netstack.netfilter.conntrack_ftp import ftp_help
    return ftp_help(pkt, protoff, ct, ctinfo)


def _tftp_help(pkt: "Packet", protoff: int, ct: "NfConn", ctinfo: int) -> int:
    from netstack.netfilter.conntrack_tftp import tftp_help
    return tftp_help(pkt, protoff, ct, ctinfo)


def _ftp_data() -> Any:
    from netstack.netfilter.conntrack_ftp import FtpMaster
    return FtpMaster()


#: nf_conntrack_ftp.c: ``ftp_exp_policy`` = { .max_expected = 1, .timeout = 5 * 60 }.
_FTP_POLICY = (ExpectPolicy(1, 300, "ftp"),)
#: nf_conntrack_tftp.c: ``tftp_exp_policy`` = { .max_expected = 1, .timeout = 5 * 60 }.
_TFTP_POLICY = (ExpectPolicy(1, 300, "tftp"),)

#: The registered helpers (module init of nf_conntrack_ftp / nf_conntrack_tftp with the
#: default ``ports=`` parameter).  Immutable: helpers are code, not namespace state.
HELPERS: tuple[Helper, ...] = (
    Helper("ftp", NFPROTO_IPV4, IPPROTO_TCP, 21, _FTP_POLICY, _ftp_help, _ftp_data),
    Helper("ftp", NFPROTO_IPV6, IPPROTO_TCP, 21, _FTP_POLICY, _ftp_help, _ftp_data),
    Helper("tftp", NFPROTO_IPV4, IPPROTO_UDP, 69, _TFTP_POLICY, _tftp_help),
    Helper("tftp", NFPROTO_IPV6, IPPROTO_UDP, 69, _TFTP_POLICY, _tftp_help),
)


def helper_lookup(name: str, l3num: int, protonum: int) -> Helper | None:
    """``__nf_conntrack_helper_find`` (see the module docstring)."""
    for h in HELPERS:
        if h.name != name:
            continue
        if h.l3num != NFPROTO_UNSPEC and h.l3num != l3num:
            continue
        if h.protonum == protonum:
            return h
    return None


def nf_ct_helper_ext_add(ct: "NfConn", helper: Helper | None) -> ConnHelp:
    """``nf_ct_helper_ext_add`` + assigning ``help->helper``."""
    if ct.help is None:
        ct.help = ConnHelp(helper)
    else:
        ct.help.helper = helper
    if helper is not None and helper.data_factory is not None and ct.help.data is None:
        ct.help.data = helper.data_factory()
    return ct.help


def ct_set_helper(ct: "NfConn | None", helper: Helper | None) -> bool:
    """``nft_ct_helper_obj_eval`` (see the module docstring)."""
    from netstack.netfilter.conntrack import IPS_CONFIRMED, IPS_HELPER, IPS_TEMPLATE
    if ct is None or helper is None or ct.status & (IPS_CONFIRMED | IPS_TEMPLATE):
        return False
    if helper.protonum != ct.protonum:
        return False
    if helper.l3num not in (NFPROTO_UNSPEC, ct.l3num):
        return False
    if ct.status & IPS_HELPER:
        return False
    nf_ct_helper_ext_add(ct, helper)
    ct.status |= IPS_HELPER
    return True


def ct_template_set_helper(pkt: "Packet", helper: Helper) -> bool:
    """``xt_ct_set_helper`` + the template attach of ``xt_ct_target``: the new ct gets
    ``helper`` in ``init_conntrack``.  Keeps a zone template's zone."""
    from netstack.netfilter.conntrack import (IPS_CONFIRMED, IPS_TEMPLATE, IP_CT_NEW, NfConn)
    v = pkt.ct
    if v is not None and not (v[0] is not None and v[0].status & IPS_TEMPLATE):
        return False
    if v is not None:
        tmpl = v[0]
    else:
        tmpl = NfConn([], status=IPS_TEMPLATE | IPS_CONFIRMED)
        pkt.ct = (tmpl, IP_CT_NEW)
    tmpl.help = ConnHelp(helper)
    return True


def nf_ct_try_assign_helper(ct: "NfConn", tmpl: "NfConn | None") -> None:
    """``__nf_ct_try_assign_helper``: copy the template's helper to a new ct."""
    from netstack.netfilter.conntrack import IPS_HELPER
    if tmpl is None or tmpl.help is None or tmpl.help.helper is None:
        return
    nf_ct_helper_ext_add(ct, tmpl.help.helper)
    ct.status |= IPS_HELPER


def nf_ct_helper_run(pkt: "Packet", ct: "NfConn", ctinfo: int, protoff: int) -> int:
    """The helper part of ``nf_confirm``: run ``helper->help`` (not for RELATED_REPLY)."""
    from netstack.netfilter.conntrack import IP_CT_RELATED_REPLY
    h = ct.help
    if h is None or h.helper is None or ctinfo == IP_CT_RELATED_REPLY:
        return NF_ACCEPT
    if h.helper.l3num not in (NFPROTO_UNSPEC, ct.l3num) or h.helper.protonum != ct.protonum:
        return NF_ACCEPT
    return h.helper.help(pkt, protoff, ct, ctinfo)


__all__ = ["Helper", "ExpectPolicy", "ConnHelp", "HELPERS", "helper_lookup", "ct_set_helper",
           "ct_template_set_helper", "nf_ct_helper_run", "nf_ct_try_assign_helper",
           "nf_ct_helper_ext_add"]
