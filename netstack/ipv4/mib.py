"""IPv4 SNMP counters, named as ``nstat`` names them (``IpInReceives``, ``IcmpOutMsgs`` …).

Why these names: ``/proc/net/snmp`` prints one header line and one value line per group
(``Ip:``, ``Icmp:``, ``IcmpMsg:``, ``Udp:``); ``nstat``/``netstat -s`` glue the group to the
field.  Storing ``GROUP+Field`` keys in one ``Counter`` (``net.ipv4.mib``) keeps every
increment a single dict operation on the packet path and lets :func:`snmp_proc_text`
print the file exactly as net/ipv4/proc.c ``snmp_seq_show_ipstats`` /
``icmp_put`` / ``icmpmsg_put`` / ``snmp_seq_show_tcp_udp`` do on Linux 6.18.
"""
from __future__ import annotations

from collections import Counter

#: ``snmp4_ipstats_list`` (net/ipv4/proc.c), after ``Forwarding`` and ``DefaultTTL``.
IP_FIELDS: tuple[str, ...] = (
    "InReceives", "InHdrErrors", "InAddrErrors", "ForwDatagrams", "InUnknownProtos",
    "InDiscards", "InDelivers", "OutRequests", "OutDiscards", "OutNoRoutes",
    "ReasmTimeout", "ReasmReqds", "ReasmOKs", "ReasmFails", "FragOKs", "FragFails",
    "FragCreates", "OutTransmits",
)

#: ``snmp4_ipextstats_list`` (IpExt line of /proc/net/netstat).
IPEXT_FIELDS: tuple[str, ...] = (
    "InNoRoutes", "InTruncatedPkts", "InMcastPkts", "OutMcastPkts", "InBcastPkts",
    "OutBcastPkts", "InOctets", "OutOctets", "InMcastOctets", "OutMcastOctets",
    "InBcastOctets", "OutBcastOctets", "InCsumErrors", "InNoECTPkts", "InECT1Pkts",
    "InECT0Pkts", "InCEPkts", "ReasmOverlaps",
)

#: ``icmp_put``: the fixed Icmp fields, then In/Out per message type.
ICMP_FIELDS_HEAD: tuple[str, ...] = ("InMsgs", "InErrors", "InCsumErrors")
ICMP_FIELDS_OUT_HEAD: tuple[str, ...] = ("OutMsgs", "OutErrors", "OutRateLimitGlobal",
                                         "OutRateLimitHost")
#: ``icmpmibmap``: (name, type) in the order proc.c prints them.
ICMP_TYPE_NAMES: tuple[tuple[str, int], ...] = (
    ("DestUnreachs", 3), ("TimeExcds", 11), ("ParmProbs", 12), ("SrcQuenchs", 4),
    ("Redirects", 5), ("Echos", 8), ("EchoReps", 0), ("Timestamps", 13),
    ("TimestampReps", 14), ("AddrMasks", 17), ("AddrMaskReps", 18),
)

#: ``snmp4_tcp_list`` after the four constant fields (RtoAlgorithm 1, RtoMin 200,
#: RtoMax 120000, MaxConn -1: ``snmp_seq_show_tcp_udp``).
TCP_FIELDS: tuple[str, ...] = (
    "ActiveOpens", "PassiveOpens", "AttemptFails", "EstabResets", "CurrEstab", "InSegs",
    "OutSegs", "RetransSegs", "InErrs", "OutRsts", "InCsumErrors",
)

#: ``snmp4_udp_list``.
UDP_FIELDS: tuple[str, ...] = (
    "InDatagrams", "NoPorts", "InErrors", "OutDatagrams", "RcvbufErrors", "SndbufErrors",
    "InCsumErrors", "IgnoredMulti", "MemErrors",
)

#: The ECN codepoint of the TOS byte selects one of these (``IPSTATS_MIB_NOECTPKTS + ecn``).
ECN_COUNTERS: tuple[str, ...] = ("IpExtInNoECTPkts", "IpExtInECT1Pkts", "IpExtInECT0Pkts",
                                 "IpExtInCEPkts")


def new_mib() -> Counter[str]:
    """A fresh, all-zero counter set for one namespace."""
    return Counter()


def snmp_proc_text(mib: Counter[str], forwarding: int, default_ttl: int) -> str:
    """The IPv4 part of ``/proc/net/snmp`` (Ip, Icmp, IcmpMsg, Tcp, Udp; the UdpLite
    group belongs to a protocol netstack does not model and is omitted).  Tcp holds the
    no-socket counters of netstack/ipv4/tcp_ipv4.py.

    ``Forwarding`` is 1 when forwarding is on, 2 when off (RFC 1213 ipForwarding).
    """
    lines = []
    ip_vals = [1 if forwarding else 2, default_ttl] + [mib.get("Ip" + f, 0) for f in IP_FIELDS]
    lines.append("Ip: Forwarding DefaultTTL " + " ".join(IP_FIELDS))
    lines.append("Ip: " + " ".join(str(v) for v in ip_vals))
    names = list(ICMP_FIELDS_HEAD) + ["In" + n for n, _ in ICMP_TYPE_NAMES]
    names += list(ICMP_FIELDS_OUT_HEAD) + ["Out" + n for n, _ in ICMP_TYPE_NAMES]
    vals = [mib.get("Icmp" + f, 0) for f in ICMP_FIELDS_HEAD]
    vals += [mib.get(f"IcmpMsgInType{t}", 0) for _, t in ICMP_TYPE_NAMES]
    vals += [mib.get("Icmp" + f, 0) for f in ICMP_FIELDS_OUT_HEAD]
    vals += [mib.get(f"IcmpMsgOutType{t}", 0) for _, t in ICMP_TYPE_NAMES]
    lines.append("Icmp: " + " ".join(names))
    lines.append("Icmp: " + " ".join(str(v) for v in vals))
    # icmpmsg_put: only non-zero types, In before Out, ascending type.
    msg = []
    for direction in ("In", "Out"):
        for t in range(256):
            v = mib.get(f"IcmpMsg{direction}Type{t}", 0)
            if v:
                msg.append((f"{direction}Type{t}", v))
    if msg:
        lines.append("IcmpMsg: " + " ".join(n for n, _ in msg))
        lines.append("IcmpMsg: " + " ".join(str(v) for _, v in msg))
    lines.append("Tcp: RtoAlgorithm RtoMin RtoMax MaxConn " + " ".join(TCP_FIELDS))
    lines.append("Tcp: 1 200 120000 -1 " + " ".join(str(mib.get("Tcp" + f, 0))
                                                     for f in TCP_FIELDS))
    lines.append("Udp: " + " ".join(UDP_FIELDS))
    lines.append("Udp: " + " ".join(str(mib.get("Udp" + f, 0)) for f in UDP_FIELDS))
    return "\n".join(lines) + "\n"
