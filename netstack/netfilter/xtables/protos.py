"""Names iptables resolves: IP protocols (Debian netbase /etc/protocols, embedded so results do
not depend on the host), services (getservbyname, as libxtables does), ICMP/ICMPv6 type names
(extensions/libxt_icmp.c / libip6t_icmp6.c tables) and their nft spellings."""
from __future__ import annotations

import socket

_PROTOS = ("0 ip;1 icmp;2 igmp;3 ggp;4 ipencap;5 st;6 tcp;8 egp;9 igp;12 pup;17 udp;20 hmp;"
           "22 xns-idp;27 rdp;29 iso-tp4;33 dccp;36 xtp;37 ddp;38 idpr-cmtp;41 ipv6;"
           "43 ipv6-route;44 ipv6-frag;45 idrp;46 rsvp;47 gre;50 esp;51 ah;57 skip;"
           "58 ipv6-icmp;59 ipv6-nonxt;60 ipv6-opts;73 rspf;81 vmtp;88 eigrp;89 ospf;93 ax.25;"
           "94 ipip;97 etherip;98 encap;103 pim;108 ipcomp;112 vrrp;115 l2tp;124 isis;"
           "132 sctp;133 fc;135 mobility-header;136 udplite;137 mpls-in-ip;138 manet;139 hip;"
           "140 shim6;141 wesp;142 rohc;143 ethernet")
PROTO_BY_NUM: dict[int, str] = {}
PROTO_BY_NAME: dict[str, int] = {}
for _item in _PROTOS.split(";"):
    _n, _name = _item.split()
    PROTO_BY_NUM.setdefault(int(_n), _name)
    PROTO_BY_NAME[_name] = int(_n)
# aliases from /etc/protocols' third column that getprotobyname() also accepts
PROTO_BY_NAME.update({"IP": 0, "ICMP": 1, "TCP": 6, "UDP": 17, "GRE": 47, "ESP": 50,
                      "AH": 51, "SCTP": 132, "IPv6-ICMP": 58, "UDPLite": 136})
# libxtables xtables_chain_protos: names accepted even without /etc/protocols
PROTO_BY_NAME.update({"icmpv6": 58, "mh": 135})


def parse_protocol(text: str) -> int | None:
    """xtables_parse_protocol(): "all" is 0, a number in 0..255, or a name; None if unknown."""
    low = text.lower()
    if low == "all":
        return 0
    if text.isdigit():
        n = int(text)
        return n if n <= 255 else None
    if low in PROTO_BY_NAME:
        return PROTO_BY_NAME[low]
    return PROTO_BY_NAME.get(text)


def proto_name(num: int) -> str:
    """getprotobynumber() name, or the number."""
    return PROTO_BY_NUM.get(num, str(num))


def service_port(name: str, proto: str) -> int | None:
    """xtables_parse_port: a number 0..65535 or a service name for ``proto``."""
    if name.isdigit():
        n = int(name)
        return n if n <= 65535 else None
    # iptables 1.8.9 resolves "ssh" for udp too: the lookup is not bound to the protocol
    for p in (proto, None):
        try:
            return socket.getservbyname(name, p) if p else socket.getservbyname(name)
        except OSError:
            continue
    return None


def port_service(port: int, proto: str) -> str:
    """getservbyport() name for ``-L`` without -n, else the number."""
    try:
        return socket.getservbyport(port, proto)
    except (OSError, OverflowError):
        return str(port)


# (name, type, code_min, code_max) in libxt_icmp.c order
ICMP_TYPES: list[tuple[str, int, int, int]] = [
    ("any", 0xFF, 0, 0xFF), ("echo-reply", 0, 0, 0xFF), ("destination-unreachable", 3, 0, 0xFF),
    ("network-unreachable", 3, 0, 0), ("host-unreachable", 3, 1, 1),
    ("protocol-unreachable", 3, 2, 2), ("port-unreachable", 3, 3, 3),
    ("fragmentation-needed", 3, 4, 4), ("source-route-failed", 3, 5, 5),
    ("network-unknown", 3, 6, 6), ("host-unknown", 3, 7, 7), ("network-prohibited", 3, 9, 9),
    ("host-prohibited", 3, 10, 10), ("TOS-network-unreachable", 3, 11, 11),
    ("TOS-host-unreachable", 3, 12, 12), ("communication-prohibited", 3, 13, 13),
    ("host-precedence-violation", 3, 14, 14), ("precedence-cutoff", 3, 15, 15),
    ("source-quench", 4, 0, 0xFF), ("redirect", 5, 0, 0xFF), ("network-redirect", 5, 0, 0),
    ("host-redirect", 5, 1, 1), ("TOS-network-redirect", 5, 2, 2),
    ("TOS-host-redirect", 5, 3, 3), ("echo-request", 8, 0, 0xFF),
    ("router-advertisement", 9, 0, 0xFF), ("router-solicitation", 10, 0, 0xFF),
    ("time-exceeded", 11, 0, 0xFF), ("ttl-zero-during-transit", 11, 0, 0),
    ("ttl-zero-during-reassembly", 11, 1, 1), ("parameter-problem", 12, 0, 0xFF),
    ("ip-header-bad", 12, 0, 0), ("required-option-missing", 12, 1, 1),
    ("timestamp-request", 13, 0, 0xFF), ("timestamp-reply", 14, 0, 0xFF),
    ("address-mask-request", 17, 0, 0xFF), ("address-mask-reply", 18, 0, 0xFF),
]
ICMP_ALIASES = {"ping": "echo-request", "pong": "echo-reply"}

ICMP6_TYPES: list[tuple[str, int, int, int]] = [
    ("destination-unreachable", 1, 0, 0xFF), ("no-route", 1, 0, 0),
    ("communication-prohibited", 1, 1, 1), ("beyond-scope", 1, 2, 2),
    ("address-unreachable", 1, 3, 3), ("port-unreachable", 1, 4, 4),
    ("failed-policy", 1, 5, 5), ("reject-route", 1, 6, 6), ("packet-too-big", 2, 0, 0xFF),
    ("time-exceeded", 3, 0, 0xFF), ("ttl-zero-during-transit", 3, 0, 0),
    ("ttl-zero-during-reassembly", 3, 1, 1), ("parameter-problem", 4, 0, 0xFF),
    ("bad-header", 4, 0, 0), ("unknown-header-type", 4, 1, 1), ("unknown-option", 4, 2, 2),
    ("echo-request", 128, 0, 0xFF), ("echo-reply", 129, 0, 0xFF),
    ("router-solicitation", 133, 0, 0xFF), ("router-advertisement", 134, 0, 0xFF),
    ("neighbour-solicitation", 135, 0, 0xFF), ("neighbour-advertisement", 136, 0, 0xFF),
    ("redirect", 137, 0, 0xFF),
]
ICMP6_ALIASES = {"ping": "echo-request", "pong": "echo-reply", "ttl-exceeded": "time-exceeded",
                 "neighbor-solicitation": "neighbour-solicitation",
                 "neighbor-advertisement": "neighbour-advertisement"}

# nft's names (src/proto.c icmp_type_tbl / icmp6_type_tbl) for whole types
NFT_ICMP = {0: "echo-reply", 3: "destination-unreachable", 4: "source-quench", 5: "redirect",
            8: "echo-request", 9: "router-advertisement", 10: "router-solicitation",
            11: "time-exceeded", 12: "parameter-problem", 13: "timestamp-request",
            14: "timestamp-reply", 15: "info-request", 16: "info-reply",
            17: "address-mask-request", 18: "address-mask-reply"}
NFT_ICMP6 = {1: "destination-unreachable", 2: "packet-too-big", 3: "time-exceeded",
             4: "parameter-problem", 128: "echo-request", 129: "echo-reply",
             130: "mld-listener-query", 131: "mld-listener-report", 132: "mld-listener-done",
             133: "nd-router-solicit", 134: "nd-router-advert", 135: "nd-neighbor-solicit",
             136: "nd-neighbor-advert", 137: "nd-redirect", 138: "router-renumbering",
             143: "mld2-listener-report"}


def lookup_icmp(text: str, v6: bool) -> tuple[int, int, int] | str:
    """parse_icmp()/parse_icmpv6(): a name (case-insensitive prefix, ambiguity is an error)
    or ``TYPE[/CODE]``.  Returns (type, code_min, code_max) or the error message."""
    table = ICMP6_TYPES if v6 else ICMP_TYPES
    aliases = ICMP6_ALIASES if v6 else ICMP_ALIASES
    kind = "ICMPv6" if v6 else "ICMP"
    name = aliases.get(text.lower(), text)
    hits = [t for t in table if t[0].lower().startswith(name.lower())]
    exact = [t for t in hits if t[0].lower() == name.lower()]
    if exact:
        hits = exact
    if len(hits) > 1:
        return f"Ambiguous {kind} type `{text}': `{hits[0][0]}' or `{hits[1][0]}'?"
    if hits:
        return hits[0][1], hits[0][2], hits[0][3]
    typ, slash, code = text.partition("/")
    if not typ.isdigit() or int(typ) > 255:
        return f"Unknown {kind} type `{text}'"
    if slash:
        if not code.isdigit() or int(code) > 255:
            return f"Unknown {kind} code `{text}'"
        return int(typ), int(code), int(code)
    return int(typ), 0, 0xFF
