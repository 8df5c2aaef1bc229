"""nft data types: how a symbol on the command line becomes register bytes and back.

Reproduces src/datatype.c, src/proto.c, src/meta.c and src/ct.c of nftables 1.0.6: each
type has a size, a byte order (the register holds network-order bytes for addresses and
ports, host order — little endian here, as on x86 — for marks, lengths and ifindexes) and
a symbol table (``tcp`` = 6, ``echo-request`` = 8 …).  The byte order matters twice: for
the exact bytes ``--debug=netlink`` prints, and because the kernel compares registers with
``memcmp`` — so a host-order value compared with ``<``/``>`` needs a ``byteorder`` first."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from netstack.netfilter.nft.errors import Loc, NftError

BIG = "big"
HOST = "little"


@dataclass(frozen=True)
class DataType:
    """One nft datatype: ``name`` as nft prints it, ``size`` in bits (0: variable)."""

    name: str
    size: int
    byteorder: str
    symbols: dict[str, int] = field(default_factory=dict, hash=False, compare=False)
    flags: bool = False      # a bitmask type: ``a,b`` means the OR, a bare value means "any bit"
    desc: str = ""
    base: str = "integer"    # integer | ipv4 | ipv6 | ether | string | verdict

    @property
    def nbytes(self) -> int:
        return (self.size + 7) // 8

    def sym_by_value(self, v: int) -> str | None:
        for k, val in self.symbols.items():
            if val == v:
                return k
        return None


def _t(name: str, size: int, order: str, symbols: dict[str, int] | None = None,
       flags: bool = False, desc: str = "", base: str = "integer") -> DataType:
    return DataType(name, size, order, symbols or {}, flags, desc or name, base)


INET_PROTO_SYMS = {"ip": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6,
                   "egp": 8, "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22,
                   "rdp": 27, "iso-tp4": 29, "dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38,
                   "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45, "rsvp": 46,
                   "gre": 47, "esp": 50, "ah": 51, "skip": 57, "ipv6-icmp": 58,
                   "ipv6-nonxt": 59, "ipv6-opts": 60, "rspf": 73, "vmtp": 81, "eigrp": 88,
                   "ospf": 89, "ax.25": 93, "ipip": 94, "etherip": 97, "encap": 98,
                   "pim": 103, "ipcomp": 108, "vrrp": 112, "l2tp": 115, "isis": 124,
                   "sctp": 132, "fc": 133, "mobility-header": 135, "udplite": 136,
                   "mpls-in-ip": 137, "manet": 138, "hip": 139, "shim6": 140, "wesp": 141,
                   "rohc": 142, "ethernet": 143, "mptcp": 262}
ICMP_TYPES = {"echo-reply": 0, "destination-unreachable": 3, "source-quench": 4,
              "redirect": 5, "echo-request": 8, "router-advertisement": 9,
              "router-solicitation": 10, "time-exceeded": 11, "parameter-problem": 12,
              "timestamp-request": 13, "timestamp-reply": 14, "info-request": 15,
              "info-reply": 16, "address-mask-request": 17, "address-mask-reply": 18}
ICMP6_TYPES = {"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
               "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
               "mld-listener-query": 130, "mld-listener-report": 131,
               "mld-listener-done": 132, "mld-listener-reduction": 132,
               "nd-router-solicit": 133, "nd-router-advert": 134,
               "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136, "nd-redirect": 137,
               "router-renumbering": 138, "ind-neighbor-solicit": 141,
               "ind-neighbor-advert": 142, "mld2-listener-report": 143}
ICMP_CODES = {"net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2,
              "port-unreachable": 3, "frag-needed": 4, "net-prohibited": 9,
              "host-prohibited": 10, "admin-prohibited": 13}
ICMP6_CODES = {"no-route": 0, "admin-prohibited": 1, "addr-unreachable": 3,
               "port-unreachable": 4, "policy-fail": 5, "reject-route": 6}
ICMPX_CODES = {"no-route": 0, "port-unreachable": 1, "host-unreachable": 2,
               "admin-prohibited": 3}
TCP_FLAGS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20,
             "ecn": 0x40, "cwr": 0x80}
CT_STATES = {"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
CT_STATUS = {"expected": 1, "seen-reply": 2, "assured": 4, "confirmed": 8, "snat": 0x10,
             "dnat": 0x20, "dying": 0x200}
#: src/proto.c ethertype_tbl: 0x8100 prints as ``8021q`` (``vlan`` is accepted too)
ETHER_TYPES = {"ip": 0x0800, "arp": 0x0806, "ip6": 0x86dd, "8021q": 0x8100,
               "8021ad": 0x88a8, "vlan": 0x8100}
PKTTYPES = {"host": 0, "unicast": 0, "broadcast": 1, "multicast": 2, "other": 3}
NFPROTOS = {"ipv4": 2, "ipv6": 10}
ARPHRD = {"ether": 1, "ppp": 512, "ipip": 768, "ipip6": 769, "loopback": 772, "sit": 776,
          "ipgre": 778, "infiniband": 32}
SERVICES = {"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
            "bootps": 67, "bootpc": 68, "tftp": 69, "http": 80, "kerberos": 88,
            "pop3": 110, "sunrpc": 111, "ntp": 123, "imap2": 143, "snmp": 161, "bgp": 179,
            "ldap": 389, "https": 443, "submission": 587, "imaps": 993, "pop3s": 995,
            "openvpn": 1194, "mysql": 3306, "postgresql": 5432}

INTEGER = _t("integer", 0, HOST)
IPV4 = _t("ipv4_addr", 32, BIG, desc="IPv4 address", base="ipv4")
IPV6 = _t("ipv6_addr", 128, BIG, desc="IPv6 address", base="ipv6")
ETHER = _t("ether_addr", 48, BIG, desc="Ethernet address", base="ether")
INET_PROTO = _t("inet_proto", 8, BIG, INET_PROTO_SYMS, desc="Internet protocol")
INET_SERVICE = _t("inet_service", 16, BIG, desc="internet network service")
MARK = _t("mark", 32, HOST, desc="packet mark")
IFNAME = _t("ifname", 128, HOST, desc="network interface name", base="string")
IFINDEX = _t("iface_index", 32, HOST, desc="network interface index")
#: ``ct helper``: src/ct.c uses string_type with NF_CT_HELPER_NAME_LEN (16) bytes
CT_HELPER_T = _t("string", 128, HOST, desc="string", base="string")
ETHERTYPE = _t("ether_type", 16, BIG, ETHER_TYPES, desc="Ethernet protocol")
NFPROTO = _t("nf_proto", 8, HOST, NFPROTOS, desc="netfilter protocol")
PKTTYPE = _t("pkt_type", 8, HOST, PKTTYPES, desc="packet type")
ARPHRD_T = _t("iface_type", 16, HOST, ARPHRD, desc="interface type")
CT_STATE = _t("ct_state", 32, HOST, CT_STATES, flags=True, desc="conntrack state")
CT_STATUS_T = _t("ct_status", 32, HOST, CT_STATUS, flags=True, desc="conntrack status")
CT_DIR = _t("ct_dir", 8, HOST, {"original": 0, "reply": 1}, desc="conntrack direction")
ICMP_TYPE = _t("icmp_type", 8, BIG, ICMP_TYPES, desc="ICMP type")
ICMP6_TYPE = _t("icmpv6_type", 8, BIG, ICMP6_TYPES, desc="ICMPv6 type")
ICMP_CODE = _t("icmp_code", 8, BIG, ICMP_CODES, desc="icmp code")
ICMP6_CODE = _t("icmpv6_code", 8, BIG, ICMP6_CODES, desc="icmpv6 code")
TCP_FLAG = _t("tcp_flag", 8, BIG, TCP_FLAGS, flags=True, desc="TCP flag")
VERDICT = _t("verdict", 32, HOST, desc="netfilter verdict", base="verdict")
#: src/proto.c arpop_tbl (``arp operation``)
ARPOPS = {"request": 1, "reply": 2, "rrequest": 3, "rreply": 4, "inrequest": 8,
          "inreply": 9, "nak": 10}
ARPOP = _t("arp_op", 16, BIG, ARPOPS, desc="ARP operation")
U8 = _t("integer", 8, BIG)
U16 = _t("integer", 16, BIG)
U32 = _t("integer", 32, BIG)
H16 = _t("integer", 16, HOST)
H32 = _t("integer", 32, HOST)
H64 = _t("integer", 64, HOST)
FIB_ADDR = _t("fib_addrtype", 32, HOST, {"unspec": 0, "unicast": 1, "local": 2,
                                         "broadcast": 3, "anycast": 4, "multicast": 5,
                                         "blackhole": 6, "unreachable": 7, "prohibit": 8},
              desc="fib address type")
TC_HANDLE = _t("tc_handle", 32, HOST, {"root": 0xFFFFFFFF, "none": 0}, desc="TC class handle")
DSCP = _t("dscp", 6, BIG, {"cs0": 0, "cs1": 8, "cs2": 16, "cs3": 24, "cs4": 32, "cs5": 40,
                          "cs6": 48, "cs7": 56, "af11": 10, "af12": 12, "af13": 14,
                          "af21": 18, "af22": 20, "af23": 22, "af31": 26, "af32": 28,
                          "af33": 30, "af41": 34, "af42": 36, "af43": 38, "ef": 46})
ECN = _t("ecn", 2, BIG, {"not-ect": 0, "ect1": 1, "ect0": 2, "ce": 3})

#: Types a ``set``/``map`` declaration may name (``type X``), with their netlink ids for
#: the set's key type (src/datatype.h enum datatypes).
SET_TYPES: dict[str, tuple[DataType, int]] = {
    "ipv4_addr": (IPV4, 7), "ipv6_addr": (IPV6, 8), "ether_addr": (ETHER, 9),
    "inet_proto": (INET_PROTO, 12), "inet_service": (INET_SERVICE, 13), "mark": (MARK, 19),
    "ifname": (IFNAME, 41), "iface_index": (IFINDEX, 20), "ether_type": (ETHERTYPE, 10),
    "ct_state": (CT_STATE, 27), "icmp_type": (ICMP_TYPE, 14), "verdict": (VERDICT, 1),
    "integer": (H32, 4), "pkt_type": (PKTTYPE, 22), "nf_proto": (NFPROTO, 11),
}


def with_size(dt: DataType, bits: int) -> DataType:
    """An integer-based type narrowed to a payload field's width (``ip dscp`` is 6 bits)."""
    if dt.size == bits:
        return dt
    return DataType(dt.name, bits, dt.byteorder, dt.symbols, dt.flags, dt.desc, dt.base)


def _int(text: str) -> int | None:
    try:
        if text.lower().startswith("0x"):
            return int(text, 16)
        if text.isdigit():
            return int(text, 10)
    except ValueError:
        return None
    return None


def parse_value(dt: DataType, text: str, loc: Loc | None, quoted: bool = False) -> bytes:
    """Turn one symbol into register bytes of ``dt`` (src/datatype.c symbolic_constant_parse
    and the per-type ``parse`` callbacks); raises :class:`NftError` with nft's message."""
    if dt.base == "ipv4":
        try:
            return ipaddress.IPv4Address(text).packed
        except ValueError:
            raise NftError("Could not resolve hostname: Name or service not known", loc) \
                from None
    if dt.base == "ipv6":
        try:
            return ipaddress.IPv6Address(text).packed
        except ValueError:
            raise NftError("Could not resolve hostname: Name or service not known", loc) \
                from None
    if dt.base == "ether":
        parts = text.split(":")
        if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
            raise NftError(f"Could not parse {dt.desc}", loc)
        try:
            return bytes(int(p, 16) for p in parts)
        except ValueError:
            raise NftError(f"Could not parse {dt.desc}", loc) from None
    if dt.base == "string":
        raw = text.encode()
        if len(raw) > dt.nbytes:
            raise NftError("String exceeds maximum length of " + str(dt.nbytes), loc)
        return raw + b"\0" * (dt.nbytes - len(raw))
    v = _int(text)
    if v is None and dt.name == "tc_handle" and ":" in text:
        maj, _, mn = text.partition(":")
        try:
            v = (int(maj or "0", 16) << 16) | int(mn or "0", 16)
        except ValueError:
            raise NftError(f"Could not parse {dt.desc}", loc) from None
    if v is None:
        sym = dt.symbols.get(text)
        if sym is None and dt is INET_SERVICE:
            sym = SERVICES.get(text)
        if sym is None:
            if dt.symbols:
                raise NftError(f"Could not parse {dt.desc}", loc)
            raise NftError(f"Could not parse {dt.desc}", loc)
        v = sym
    n = dt.nbytes
    if n and v >= 1 << (8 * n) and dt is INET_SERVICE:
        raise NftError("Service out of range", loc)
    if v >= 1 << (8 * n) if n else False:
        raise NftError(f"Value {v} exceeds valid range 0-{(1 << dt.size) - 1}", loc)
    return v.to_bytes(n, dt.byteorder)


def value_int(dt: DataType, data: bytes) -> int:
    return int.from_bytes(data, dt.byteorder)


def format_value(dt: DataType, data: bytes) -> str:
    """How ``nft list`` prints a constant of ``dt`` (symbols where nft has them)."""
    if dt.base == "ipv4":
        return str(ipaddress.IPv4Address(data))
    if dt.base == "ipv6":
        return str(ipaddress.IPv6Address(data))
    if dt.base == "ether":
        return ":".join(f"{b:02x}" for b in data)
    if dt.base == "string":
        return '"' + data.rstrip(b"\0").decode(errors="replace") + '"'
    v = int.from_bytes(data, dt.byteorder)
    if dt.flags:
        names = [k for k, bit in dt.symbols.items() if v & bit]
        if names and sum(dt.symbols[k] for k in names) == v:
            return ",".join(names)
    s = dt.sym_by_value(v)
    if s is not None and dt not in (INET_SERVICE,):
        return s
    if dt.name in ("mark",):
        return f"0x{v:08x}"
    if dt.name == "tc_handle":
        if v == 0xFFFFFFFF:
            return "root"
        if v == 0:
            return "none"
        return f"{v >> 16:x}:{v & 0xFFFF:x}"
    return str(v)
