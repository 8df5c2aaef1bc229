"""Header field templates and protocol dependencies (nftables src/proto.c, src/payload.c,
src/meta.c, src/ct.c).

Each payload field is ``(base, offset in bits, length in bits, datatype)``, exactly the
``proto_hdr_template`` tables of src/proto.c; the dependency tables say what nft inserts in
front of a match so the kernel never reads a header of another protocol (``ip saddr`` in an
inet chain first checks ``meta nfproto ipv4``; ``tcp dport`` checks ``meta l4proto tcp``)."""
from __future__ import annotations

from netstack.netfilter.nft import types as T
from netstack.netfilter.nft.vm import BASE_LL, BASE_NH, BASE_TH

LL, NH, TH = BASE_LL, BASE_NH, BASE_TH

PAYLOAD: dict[str, dict[str, tuple[int, int, int, T.DataType]]] = {
    "ether": {"daddr": (LL, 0, 48, T.ETHER), "saddr": (LL, 48, 48, T.ETHER),
              "type": (LL, 96, 16, T.ETHERTYPE)},
    "ip": {"version": (NH, 0, 4, T.U8), "hdrlength": (NH, 4, 4, T.U8),
           "dscp": (NH, 8, 6, T.DSCP), "ecn": (NH, 14, 2, T.ECN),
           "length": (NH, 16, 16, T.U16), "id": (NH, 32, 16, T.U16),
           "frag-off": (NH, 48, 16, T.U16), "ttl": (NH, 64, 8, T.U8),
           "protocol": (NH, 72, 8, T.INET_PROTO), "checksum": (NH, 80, 16, T.U16),
           "saddr": (NH, 96, 32, T.IPV4), "daddr": (NH, 128, 32, T.IPV4)},
    "ip6": {"version": (NH, 0, 4, T.U8), "dscp": (NH, 4, 6, T.DSCP),
            "ecn": (NH, 10, 2, T.ECN), "flowlabel": (NH, 12, 20, T.U32),
            "length": (NH, 32, 16, T.U16), "nexthdr": (NH, 48, 8, T.INET_PROTO),
            "hoplimit": (NH, 56, 8, T.U8), "saddr": (NH, 64, 128, T.IPV6),
            "daddr": (NH, 192, 128, T.IPV6)},
    "tcp": {"sport": (TH, 0, 16, T.INET_SERVICE), "dport": (TH, 16, 16, T.INET_SERVICE),
            "sequence": (TH, 32, 32, T.U32), "ackseq": (TH, 64, 32, T.U32),
            "doff": (TH, 96, 4, T.U8), "reserved": (TH, 100, 4, T.U8),
            "flags": (TH, 104, 8, T.TCP_FLAG), "window": (TH, 112, 16, T.U16),
            "checksum": (TH, 128, 16, T.U16), "urgptr": (TH, 144, 16, T.U16)},
    "udp": {"sport": (TH, 0, 16, T.INET_SERVICE), "dport": (TH, 16, 16, T.INET_SERVICE),
            "length": (TH, 32, 16, T.U16), "checksum": (TH, 48, 16, T.U16)},
    "udplite": {"sport": (TH, 0, 16, T.INET_SERVICE), "dport": (TH, 16, 16, T.INET_SERVICE),
                "checksum": (TH, 48, 16, T.U16)},
    "sctp": {"sport": (TH, 0, 16, T.INET_SERVICE), "dport": (TH, 16, 16, T.INET_SERVICE),
             "vtag": (TH, 32, 32, T.U32), "checksum": (TH, 64, 32, T.U32)},
    "th": {"sport": (TH, 0, 16, T.INET_SERVICE), "dport": (TH, 16, 16, T.INET_SERVICE)},
    "icmp": {"type": (TH, 0, 8, T.ICMP_TYPE), "code": (TH, 8, 8, T.ICMP_CODE),
             "checksum": (TH, 16, 16, T.U16), "id": (TH, 32, 16, T.U16),
             "sequence": (TH, 48, 16, T.U16), "gateway": (TH, 32, 32, T.IPV4),
             "mtu": (TH, 48, 16, T.U16)},
    "icmpv6": {"type": (TH, 0, 8, T.ICMP6_TYPE), "code": (TH, 8, 8, T.ICMP6_CODE),
               "checksum": (TH, 16, 16, T.U16), "mtu": (TH, 32, 32, T.U32),
               "id": (TH, 32, 16, T.U16), "sequence": (TH, 48, 16, T.U16),
               "max-delay": (TH, 32, 16, T.U16)},
    # src/proto.c proto_vlan: the 802.1Q header after the MAC addresses (TCI at 14)
    "vlan": {"pcp": (LL, 112, 3, T.U8), "dei": (LL, 115, 1, T.U8),
             "cfi": (LL, 115, 1, T.U8), "id": (LL, 116, 12, T.U16),   # cfi: parser → dei
             "type": (LL, 128, 16, T.ETHERTYPE)},
    # src/proto.c proto_arp: the Ethernet/IPv4 layout (two-word field names)
    "arp": {"htype": (NH, 0, 16, T.U16), "ptype": (NH, 16, 16, T.ETHERTYPE),
            "hlen": (NH, 32, 8, T.U8), "plen": (NH, 40, 8, T.U8),
            "operation": (NH, 48, 16, T.ARPOP),
            "saddr ether": (NH, 64, 48, T.ETHER), "saddr ip": (NH, 112, 32, T.IPV4),
            "daddr ether": (NH, 144, 48, T.ETHER), "daddr ip": (NH, 192, 32, T.IPV4)},
}

#: Network protocol each header needs (None: any) and the l4 protocol number.
NH_OF = {"ip": "ip", "ip6": "ip6", "icmp": "ip", "icmpv6": "ip6", "arp": "arp"}
L4_OF = {"tcp": 6, "udp": 17, "udplite": 136, "sctp": 132, "icmp": 1, "icmpv6": 58}
L4_NAME = {v: k for k, v in L4_OF.items()}
NFPROTO_OF = {"ip": 2, "ip6": 10}
ETHERTYPE_OF = {"ip": 0x0800, "ip6": 0x86dd}

#: meta key → (kernel key name, datatype); ``length`` is ``len`` in the kernel.
META: dict[str, tuple[str, T.DataType]] = {
    "length": ("len", T.H32), "protocol": ("protocol", T.ETHERTYPE),
    "priority": ("priority", T.TC_HANDLE), "mark": ("mark", T.MARK),
    "iif": ("iif", T.IFINDEX), "oif": ("oif", T.IFINDEX),
    "iifname": ("iifname", T.IFNAME), "oifname": ("oifname", T.IFNAME),
    "iiftype": ("iiftype", T.ARPHRD_T), "oiftype": ("oiftype", T.ARPHRD_T),
    "skuid": ("skuid", T.H32), "skgid": ("skgid", T.H32),
    "nftrace": ("nftrace", T.DataType("integer", 1, T.HOST)),
    "rtclassid": ("rtclassid", T.H32), "nfproto": ("nfproto", T.NFPROTO),
    "l4proto": ("l4proto", T.INET_PROTO), "pkttype": ("pkttype", T.PKTTYPE),
    "cpu": ("cpu", T.H32), "iifgroup": ("iifgroup", T.H32),
    "oifgroup": ("oifgroup", T.H32), "cgroup": ("cgroup", T.H32),
}

#: ct key → (kernel key name, datatype, direction allowed).  Address types depend on the
#: family and are filled in by the evaluator.
CT: dict[str, tuple[str, T.DataType]] = {
    "state": ("state", T.CT_STATE), "direction": ("direction", T.CT_DIR),
    "status": ("status", T.CT_STATUS_T), "mark": ("mark", T.MARK),
    "expiration": ("expiration", T.H32), "zone": ("zone", T.H16),
    "helper": ("helper", T.CT_HELPER_T),
    "l3proto": ("l3protocol", T.NFPROTO), "protocol": ("protocol", T.INET_PROTO),
    "saddr": ("src", T.IPV4), "daddr": ("dst", T.IPV4),
    "proto-src": ("proto_src", T.INET_SERVICE), "proto-dst": ("proto_dst", T.INET_SERVICE),
    "packets": ("pkts", T.H64), "bytes": ("bytes", T.H64), "avgpkt": ("avgpkt", T.H64),
}
