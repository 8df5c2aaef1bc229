"""The TFTP conntrack helper (net/netfilter/nf_conntrack_tftp.c, nf_nat_tftp.c).

A TFTP read or write request (opcode 1/2, RFC 1350) goes to port 69, but the server
answers from a fresh port: the reply is a new UDP connection.  On a request the helper
expects a UDP connection from the server's address (the master's reply source), any
source port, to the client's address and port (the master's reply destination).  DATA,
ACK and ERROR opcodes change nothing.

When the master is NATed, ``nf_nat_tftp`` registers the same expectation with
``expectfn = nf_nat_follow_master`` (nf_nat_helper.c): the expected connection gets the
master's translations mirrored (source → where the master's reply went to, destination
→ the master's original source and the client port), so the server's reply reaches the
client behind the NAT.  The payload carries no address, so there is nothing to rewrite.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.netfilter.core import NF_ACCEPT, NF_DROP

if TYPE_CHECKING:  # pragma: no cover
    from netstack.netfilter.conntrack import NfConn
    from netstack.packet.skb import Packet

TFTP_OPCODE_READ = 1
TFTP_OPCODE_WRITE = 2
TFTP_OPCODE_DATA = 3
TFTP_OPCODE_ACK = 4
TFTP_OPCODE_ERROR = 5


def tftp_help(pkt: "Packet", protoff: int, ct: "NfConn", ctinfo: int) -> int:
    """``tftp_help``."""
    from netstack.netfilter.conntrack import IP_CT_DIR_REPLY, IPS_NAT_MASK
    from netstack.netfilter.conntrack_expect import (NF_CT_EXPECT_CLASS_DEFAULT,
                                                     nf_ct_expect_init, nf_ct_expect_related)
    from netstack.netfilter.conntrack_tuple import IPPROTO_UDP
    if pkt.tail - protoff < 10:
        return NF_ACCEPT
    opcode = int.from_bytes(pkt.buf[protoff + 8:protoff + 10], "big")
    if opcode not in (TFTP_OPCODE_READ, TFTP_OPCODE_WRITE):
        return NF_ACCEPT
    t = ct.tuplehash[IP_CT_DIR_REPLY]
    exp = nf_ct_expect_init(ct, NF_CT_EXPECT_CLASS_DEFAULT, ct.l3num, t.src, t.dst,
                            IPPROTO_UDP, None, t.dport)
    if ct.status & IPS_NAT_MASK:
        # nf_nat_tftp
        exp.saved_proto = exp.tuple.dport
        exp.dir = IP_CT_DIR_REPLY
        from netstack.netfilter.seqadj import nf_nat_follow_master
        exp.expectfn = nf_nat_follow_master
    if nf_ct_expect_related(exp) != 0:
        return NF_DROP  # "cannot add expectation"
    return NF_ACCEPT
