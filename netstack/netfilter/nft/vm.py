"""The nf_tables register machine (net/netfilter/nf_tables_core.c and the nft_* expression
modules) and its ``--debug=netlink`` text (libnftnl src/expr/*.c ``*_snprintf``).

Why a register machine and not a direct evaluation of the syntax tree: the kernel only
ever sees these expressions, and their quirks are observable — a host-order ``meta
length`` needs a ``byteorder`` before ``>``; a payload load past the packet end or a
transport-header load on a fragment makes the rule not match (``NFT_BREAK``) instead of
failing; ``accept`` ends only the current base chain.

Registers: 16 bytes of verdict followed by 16 32-bit data registers (``struct
nft_regs``).  Expressions hold byte offsets into ``Regs.data``; printing converts them
back to the numbers libnftnl shows (``reg 1`` for NFT_REG_1, ``reg 9`` for NFT_REG32_01).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from netstack.netfilter.nft.ruleset import Chain, NftSet

# include/uapi/linux/netfilter/nf_tables.h enum nft_verdicts / netfilter.h
NF_DROP, NF_ACCEPT, NF_STOLEN, NF_QUEUE = 0, 1, 2, 3
NFT_CONTINUE, NFT_BREAK, NFT_JUMP, NFT_GOTO, NFT_RETURN = -1, -2, -3, -4, -5
VERDICT_CODES = {"accept": NF_ACCEPT, "drop": NF_DROP, "queue": NF_QUEUE,
                 "continue": NFT_CONTINUE, "return": NFT_RETURN, "jump": NFT_JUMP,
                 "goto": NFT_GOTO}
VERDICT_NAMES = {v: k for k, v in VERDICT_CODES.items()}
NFT_JUMP_STACK_SIZE = 16

REG_DATA = 16          # byte offset of NFT_REG32_00 within the register file
NFT_REG32_00 = 8

BASE_LL, BASE_NH, BASE_TH = 0, 1, 2
BASE_NAMES = {BASE_LL: "link", BASE_NH: "network", BASE_TH: "transport"}


def reg_name(unit: int | None) -> str:
    """``netlink_put_register`` in nftables' src/netlink_linearize.c: 32-bit unit ``u``
    prints as a 128-bit register number when 16-byte aligned, else NFT_REG32_00 + u."""
    if unit is None:
        return "0"
    return str(1 + unit // 4) if unit % 4 == 0 else str(NFT_REG32_00 + unit)


def words(data: bytes) -> list[int]:
    """Register data as libnftnl prints it: 32-bit host-order (little endian) words."""
    pad = data + b"\0" * (-len(data) % 4)
    return [int.from_bytes(pad[i:i + 4], "little") for i in range(0, len(pad), 4)]


def hexwords(data: bytes) -> str:
    return " ".join(f"0x{w:08x}" for w in words(data))


class Regs:
    """``struct nft_regs``: verdict (code + chain) and the data registers."""

    __slots__ = ("data", "code", "chain")

    def __init__(self) -> None:
        self.data = bytearray(REG_DATA + 64)
        self.code = NFT_CONTINUE
        self.chain: "Chain | None" = None


@dataclass
class PktInfo:
    """``struct nft_pktinfo``: what nft_set_pktinfo_ipv4/ipv6 worked out once per chain
    run — transport offset, protocol and fragment offset (``thoff``, ``tprot``,
    ``fragoff``); ``tprot_set`` is NFT_PKTINFO_L4PROTO."""

    pkt: Any
    state: Any
    net: Any
    thoff: int = 0
    tprot: int = 0
    tprot_set: bool = False
    fragoff: int = 0
    now_ns: int = 0


class VmExpr:
    """One expression of a rule.  ``eval`` may set ``regs.code = NFT_BREAK``."""

    name = ""

    def netlink(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def eval(self, regs: Regs, info: PktInfo) -> None:  # pragma: no cover
        raise NotImplementedError


def _put(regs: Regs, unit: int, data: bytes) -> None:
    off = REG_DATA + 4 * unit
    n = len(data)
    if n % 4:
        regs.data[off + n - n % 4:off + n - n % 4 + 4] = b"\0\0\0\0"
    regs.data[off:off + n] = data


def _get(regs: Regs, unit: int, n: int) -> bytes:
    off = REG_DATA + 4 * unit
    return bytes(regs.data[off:off + n])


@dataclass
class Immediate(VmExpr):
    dreg: int | None                   # None: the verdict register
    data: bytes = b""
    verdict: str | None = None
    chain: str | None = None
    chain_obj: Any = None

    def netlink(self) -> str:
        if self.dreg is None:
            v = self.verdict + (f" -> {self.chain}" if self.chain else "")
            return f"[ immediate reg 0 {v} ]"
        return f"[ immediate reg {reg_name(self.dreg)} {hexwords(self.data)} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        if self.dreg is None:
            regs.code = VERDICT_CODES[self.verdict or "continue"]
            regs.chain = self.chain_obj
        else:
            _put(regs, self.dreg, self.data)


@dataclass
class PayloadLoad(VmExpr):
    base: int
    offset: int
    length: int
    dreg: int

    def netlink(self) -> str:
        return (f"[ payload load {self.length}b @ {BASE_NAMES[self.base]} header + "
                f"{self.offset} => reg {reg_name(self.dreg)} ]")

    def eval(self, regs: Regs, info: PktInfo) -> None:
        pkt = info.pkt
        if self.base == BASE_LL:
            if pkt.mac_header < 0:
                regs.code = NFT_BREAK
                return
            if pkt.vlan_proto and self.offset + self.length > 12:
                data = copy_vlan(pkt, self.offset, self.length)
                if data is None:
                    regs.code = NFT_BREAK
                else:
                    _put(regs, self.dreg, data)
                return
            start = pkt.mac_header
        elif self.base == BASE_NH:
            start = pkt.network_header
        else:
            if not info.tprot_set or info.fragoff:
                regs.code = NFT_BREAK
                return
            start = info.thoff
        lo = start + self.offset
        if start < 0 or lo < pkt.head or lo + self.length > pkt.tail:
            regs.code = NFT_BREAK       # skb_copy_bits fails: the rule does not match
            return
        _put(regs, self.dreg, bytes(pkt.buf[lo:lo + self.length]))


def copy_vlan(pkt: Any, offset: int, length: int) -> bytes | None:
    """``nft_payload_copy_vlan`` (net/netfilter/nft_payload.c): with the tag out of band
    (``skb_vlan_tag_present``), link-layer bytes from the Ethernet type on come from the
    header as if the tag were in the packet — MAC addresses, ``vlan_proto``, the TCI and
    ``skb->protocol`` (VLAN_ETH_HLEN, 18 bytes) — then the packet after its Ethernet
    header.  When ``skb->protocol`` is itself 802.1Q/802.1ad an inner tag sits in the
    packet and a read at offsets 18..21 sees it (``vlan_hlen``)."""
    mac = pkt.mac_header
    buf = pkt.buf
    vlan_hlen = 4 if pkt.protocol in (0x8100, 0x88A8) and 18 <= offset < 22 else 0
    out = b""
    if offset < 18 + vlan_hlen:
        if mac + 14 > pkt.tail:
            return None
        if vlan_hlen:
            if mac + 18 > pkt.tail:
                return None
            veth = bytes(buf[mac:mac + 18])
        else:
            veth = bytes(buf[mac:mac + 12]) + struct.pack(">HHH", pkt.vlan_proto,
                                                          pkt.vlan_tci, pkt.protocol)
        ethlen = length
        if offset + length > 18 + vlan_hlen:
            ethlen -= offset + length - 18 - vlan_hlen
        out = veth[offset - vlan_hlen:offset - vlan_hlen + ethlen]
        length -= ethlen
        if length == 0:
            return out
        offset = 14 + vlan_hlen
    else:
        offset -= 4 + vlan_hlen
    lo = mac + offset
    if lo + length > pkt.tail:
        return None
    return out + bytes(buf[lo:lo + length])


CMP_OPS: dict[str, Callable[[bytes, bytes], bool]] = {
    "eq": lambda a, b: a == b, "neq": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b, "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b}


@dataclass
class Cmp(VmExpr):
    op: str
    sreg: int
    data: bytes

    def netlink(self) -> str:
        return f"[ cmp {self.op} reg {reg_name(self.sreg)} {hexwords(self.data)} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        # nft_cmp_eval: memcmp over the data length
        if not CMP_OPS[self.op](_get(regs, self.sreg, len(self.data)), self.data):
            regs.code = NFT_BREAK


@dataclass
class Range(VmExpr):
    op: str                         # eq | neq
    sreg: int
    lo: bytes
    hi: bytes

    def netlink(self) -> str:
        return (f"[ range {self.op} reg {reg_name(self.sreg)} {hexwords(self.lo)} "
                f"{hexwords(self.hi)} ]")

    def eval(self, regs: Regs, info: PktInfo) -> None:
        v = _get(regs, self.sreg, len(self.lo))
        inside = self.lo <= v <= self.hi
        if inside != (self.op == "eq"):
            regs.code = NFT_BREAK


@dataclass
class Bitwise(VmExpr):
    sreg: int
    dreg: int
    mask: bytes
    xor: bytes

    def netlink(self) -> str:
        return (f"[ bitwise reg {reg_name(self.dreg)} = ( reg {reg_name(self.sreg)} & "
                f"{hexwords(self.mask)} ) ^ {hexwords(self.xor)} ]")

    def eval(self, regs: Regs, info: PktInfo) -> None:
        v = _get(regs, self.sreg, len(self.mask))
        _put(regs, self.dreg, bytes((a & m) ^ x for a, m, x in zip(v, self.mask, self.xor)))


@dataclass
class Byteorder(VmExpr):
    sreg: int
    dreg: int
    op: str                         # hton | ntoh
    length: int
    size: int

    def netlink(self) -> str:
        return (f"[ byteorder reg {reg_name(self.dreg)} = {self.op}(reg "
                f"{reg_name(self.sreg)}, {self.size}, {self.length}) ]")

    def eval(self, regs: Regs, info: PktInfo) -> None:
        v = _get(regs, self.sreg, self.length)
        out = b"".join(v[i:i + self.size][::-1] for i in range(0, self.length, self.size))
        _put(regs, self.dreg, out)


META_KEYS = {"len": 0, "protocol": 1, "priority": 2, "mark": 3, "iif": 4, "oif": 5,
             "iifname": 6, "oifname": 7, "iiftype": 8, "oiftype": 9, "skuid": 10,
             "skgid": 11, "nftrace": 12, "rtclassid": 13, "secmark": 14, "nfproto": 15,
             "l4proto": 16, "bri_iifname": 17, "bri_oifname": 18, "pkttype": 19, "cpu": 20,
             "iifgroup": 21, "oifgroup": 22, "cgroup": 23, "prandom": 24}


def _ifname(dev: Any) -> bytes:
    name = dev.name.encode() if dev is not None else b""
    return name + b"\0" * (16 - len(name))


def meta_get(key: str, info: PktInfo) -> bytes | None:
    """nft_meta_get_eval: the value of ``key`` for this packet, or None → NFT_BREAK."""
    pkt, st = info.pkt, info.state
    indev, outdev = getattr(st, "in_dev", None), getattr(st, "out_dev", None)
    if key == "len":
        return struct.pack("<I", len(pkt))
    if key == "protocol":
        return struct.pack(">H", pkt.protocol)
    if key == "nfproto":
        return bytes([getattr(st, "pf", 0)])
    if key == "l4proto":
        return bytes([info.tprot]) if info.tprot_set else None
    if key == "mark":
        return struct.pack("<I", pkt.mark & 0xffffffff)
    if key == "priority":
        return struct.pack("<I", pkt.priority & 0xffffffff)
    if key in ("iif", "oif"):
        dev = indev if key == "iif" else outdev
        return None if dev is None else struct.pack("<I", dev.ifindex)
    if key in ("iifname", "oifname"):
        dev = indev if key == "iifname" else outdev
        return None if dev is None else _ifname(dev)
    if key in ("iiftype", "oiftype"):
        dev = indev if key == "iiftype" else outdev
        return None if dev is None else struct.pack("<H", dev.type)
    if key in ("iifgroup", "oifgroup"):
        dev = indev if key == "iifgroup" else outdev
        return None if dev is None else struct.pack("<I", dev.group)
    if key == "pkttype":
        return bytes([pkt.pkt_type])
    if key == "cpu":
        return struct.pack("<I", 0)
    if key == "nftrace":
        return bytes([getattr(pkt, "nftrace", 0)])
    return None


@dataclass
class MetaLoad(VmExpr):
    key: str
    dreg: int

    def netlink(self) -> str:
        return f"[ meta load {self.key} => reg {reg_name(self.dreg)} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        v = meta_get(self.key, info)
        if v is None:
            regs.code = NFT_BREAK
            return
        _put(regs, self.dreg, v)


@dataclass
class MetaSet(VmExpr):
    key: str
    sreg: int

    def netlink(self) -> str:
        return f"[ meta set {self.key} with reg {reg_name(self.sreg)} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        pkt = info.pkt
        if self.key == "mark":
            pkt.mark = int.from_bytes(_get(regs, self.sreg, 4), "little")
        elif self.key == "priority":
            pkt.priority = int.from_bytes(_get(regs, self.sreg, 4), "little")
        elif self.key == "pkttype":
            pkt.pkt_type = _get(regs, self.sreg, 1)[0]
        elif self.key == "nftrace":
            pkt.nftrace = _get(regs, self.sreg, 1)[0] & 1


CT_KEYS = {"state": 0, "direction": 1, "status": 2, "mark": 3, "secmark": 4,
           "expiration": 5, "helper": 6, "l3protocol": 7, "src": 8, "dst": 9,
           "protocol": 10, "proto_src": 11, "proto_dst": 12, "labels": 13, "pkts": 14,
           "bytes": 15, "avgpkt": 16, "zone": 17, "eventmask": 18}


def _conntrack() -> Any:
    """NF2's conntrack module, or None while it does not exist."""
    try:
        from netstack.netfilter import conntrack  # type: ignore[attr-defined]
    except ImportError:
        return None
    return conntrack


_CT_TUPLE_KEYS = {"src": "saddr", "dst": "daddr", "protocol": "protocol",
                  "proto_src": "proto-src", "proto_dst": "proto-dst", "l3protocol": "l3proto"}


def ct_get(key: str, direction: str | None, info: PktInfo) -> bytes | None:
    """nft_ct_get_eval: the value of ``ct KEY`` for this packet via NF2's conntrack API;
    None (→ NFT_BREAK) when the packet has no conntrack entry, except ``state``."""
    ctmod = _conntrack()
    if ctmod is None:
        return None
    pkt = info.pkt
    if key == "state":
        return struct.pack("<I", ctmod.nf_ct_state(pkt))
    ct, ctinfo = ctmod.nf_ct_get(pkt)
    if ct is None:
        return None
    if key == "direction":
        return bytes([ctmod.ctinfo2dir(ctinfo)])
    if key == "status":
        return struct.pack("<I", ct.status)
    if key == "mark":
        return struct.pack("<I", ct.mark & 0xFFFFFFFF)
    if key == "secmark":
        return struct.pack("<I", ct.secmark)
    if key == "expiration":
        return struct.pack("<I", ctmod.nf_ct_expiration_ms(ct, info.now_ns))
    if key == "zone":
        return struct.pack("<H", ct.zone.id)
    if key == "helper":
        # NFT_CT_HELPER (nft_ct_get_eval): the name of the helper of the connection's
        # *master* — so ``ct helper "ftp"`` matches the expected (data) connections of
        # an FTP control connection, never the control connection itself — NUL-padded to
        # 16 bytes; no master or no helper ends the rule
        master = getattr(ct, "master", None)
        help_ = getattr(master, "help", None)
        helper = getattr(help_, "helper", None)
        if helper is None:
            return None
        return helper.name.encode()[:15].ljust(16, b"\0")
    if key in _CT_TUPLE_KEYS:
        d = 1 if direction == "reply" else 0
        if direction is None:
            d = ctmod.ctinfo2dir(ctinfo)
        v = ctmod.nf_ct_tuple_field(ct, d, _CT_TUPLE_KEYS[key])
        if key in ("proto_src", "proto_dst"):
            return struct.pack(">H", v)
        if key in ("protocol", "l3protocol"):
            return bytes([v])
        return bytes(v)
    return None


@dataclass
class CtLoad(VmExpr):
    key: str
    dreg: int
    direction: str | None = None

    def netlink(self) -> str:
        d = f" , dir {self.direction}" if self.direction else ""
        return f"[ ct load {self.key} => reg {reg_name(self.dreg)}{d} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        v = ct_get(self.key, self.direction, info)
        if v is None:
            regs.code = NFT_BREAK
            return
        _put(regs, self.dreg, v)


@dataclass
class CtSet(VmExpr):
    key: str
    sreg: int

    def netlink(self) -> str:
        return f"[ ct set {self.key} with reg {reg_name(self.sreg)} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        """nft_ct_set_eval: ``mark`` on the packet's entry (none: nothing happens);
        ``zone`` attaches a zone template before conntrack runs."""
        ctmod = _conntrack()
        if ctmod is None:
            return
        if self.key == "zone":
            ctmod.nf_ct_set_zone_template(info.pkt, int.from_bytes(_get(regs, self.sreg, 2),
                                                                   "little"))
            return
        ct, _ = ctmod.nf_ct_get(info.pkt)
        if ct is None:
            return
        if self.key == "mark":
            ct.mark = int.from_bytes(_get(regs, self.sreg, 4), "little")


@dataclass
class Lookup(VmExpr):
    sreg: int
    set: "NftSet"
    dreg: int | None = None            # None: no data; -1: verdict register
    invert: bool = False

    def netlink(self) -> str:
        s = f"[ lookup reg {reg_name(self.sreg)} set {self.set.nl_name}"
        if self.dreg is not None:
            s += f" dreg {0 if self.dreg == -1 else reg_name(self.dreg)}"
        if self.invert:
            s += " 0x1"
        return s + " ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        key = _get(regs, self.sreg, self.set.klen)
        found = self.set.lookup(key, info.now_ns)
        if (found is not None) == self.invert:
            regs.code = NFT_BREAK
            return
        if found is not None and self.dreg is not None:
            if self.dreg == -1:
                verdict, chain = found.data[0], found.data[1]
                regs.code = VERDICT_CODES[verdict]
                regs.chain = chain
            else:
                _put(regs, self.dreg, found.data)


@dataclass
class Dynset(VmExpr):
    op: str                            # add | update | delete
    sreg: int
    set: "NftSet"
    sreg_data: int | None = None
    timeout: int | None = None

    def netlink(self) -> str:
        s = f"[ dynset {self.op} reg_key {reg_name(self.sreg)} set {self.set.nl_name}"
        if self.timeout:
            s += f" timeout {self.timeout}ms"
        if self.sreg_data is not None:
            s += f" sreg_data {reg_name(self.sreg_data)}"
        return s + " ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        key = _get(regs, self.sreg, self.set.klen)
        data = _get(regs, self.sreg_data, self.set.dlen) if self.sreg_data is not None \
            else None
        if not self.set.dynset(self.op, key, data, self.timeout, info.now_ns):
            regs.code = NFT_BREAK


@dataclass
class Counter(VmExpr):
    packets: int = 0
    bytes: int = 0

    def netlink(self) -> str:
        return f"[ counter pkts {self.packets} bytes {self.bytes} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        self.packets += 1
        self.bytes += len(info.pkt)


@dataclass
class Limit(VmExpr):
    """nft_limit.c: a token bucket in nanoseconds on the virtual clock."""

    rate: int
    unit: int                          # seconds
    burst: int
    is_bytes: bool
    invert: bool
    tokens: int = 0
    tokens_max: int = 0
    last: int | None = None

    def __post_init__(self) -> None:
        nsecs = self.unit * 1_000_000_000
        if self.is_bytes:
            self.tokens = nsecs * (self.rate + self.burst) // self.rate
        else:
            self.tokens = nsecs // self.rate * (self.burst or 5)
        self.tokens_max = self.tokens

    def netlink(self) -> str:
        units = {1: "second", 60: "minute", 3600: "hour", 86400: "day", 604800: "week"}
        return (f"[ limit rate {self.rate}/{units[self.unit]} burst {self.burst} type "
                f"{'bytes' if self.is_bytes else 'packets'} flags 0x{int(self.invert):x} ]")

    def over(self, info: PktInfo) -> bool:
        nsecs = self.unit * 1_000_000_000
        cost = nsecs * len(info.pkt) // self.rate if self.is_bytes else nsecs // self.rate
        now = info.now_ns
        if self.last is None:
            self.last = now
        tokens = min(self.tokens + now - self.last, self.tokens_max)
        self.last = now
        delta = tokens - cost
        if delta >= 0:
            self.tokens = delta
            return self.invert
        self.tokens = tokens
        return not self.invert

    def eval(self, regs: Regs, info: PktInfo) -> None:
        if self.over(info):
            regs.code = NFT_BREAK


@dataclass
class Quota(VmExpr):
    nbytes: int
    invert: bool
    consumed: int = 0

    def netlink(self) -> str:
        return (f"[ quota bytes {self.nbytes} consumed {self.consumed} flags "
                f"{int(self.invert)} ]")

    @property
    def dumped(self) -> int:
        """What a listing shows as ``used``: consumed capped at the quota, because
        ``nft_quota_do_dump`` (net/netfilter/nft_quota.c) never reports past the boundary
        although every packet keeps adding to ``consumed``."""
        return min(self.consumed, self.nbytes)

    def eval(self, regs: Regs, info: PktInfo) -> None:
        # nft_overquota: atomic64_add_return(skb->len, consumed) >= quota
        self.consumed += len(info.pkt)
        if (self.consumed >= self.nbytes) ^ self.invert:
            regs.code = NFT_BREAK


@dataclass
class Objref(VmExpr):
    kind: str
    obj: Any

    def netlink(self) -> str:
        return f"[ objref type {self.kind} name {self.obj.name} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        self.obj.expr.eval(regs, info)


LOG_LEVELS = {"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warn": 4, "notice": 5,
              "info": 6, "debug": 7, "audit": 8}


LOG_FLAG_NAMES = ((0x01, "tcpseq"), (0x02, "tcpopt"), (0x04, "ipopt"), (0x08, "uid"),
                  (0x10, "nflog"), (0x20, "macdecode"))


@dataclass
class Log(VmExpr):
    prefix: str | None = None
    level: int | None = None
    group: int | None = None
    snaplen: int = 0
    qthreshold: int = 0
    #: NF_LOG_* bits (nf_log.h): TCPSEQ 0x01, TCPOPT 0x02, IPOPT 0x04, UID 0x08,
    #: MACDECODE 0x20 (``NFTA_LOG_FLAGS``)
    flags: int = 0

    def netlink(self) -> str:
        """libnftnl expr/log.c: flags print only without a group, after the level."""
        s = "[ log "
        if self.prefix is not None:
            s += f"prefix {self.prefix} "
        if self.group is not None:
            s += f"group {self.group} snaplen {self.snaplen} qthreshold {self.qthreshold} "
        else:
            if self.level is not None:
                s += f"level {self.level} "
            for bit, name in LOG_FLAG_NAMES:
                if self.flags & bit:
                    s += name + " "
        return s + "]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        # nf_log_packet: netstack keeps the records on the namespace (no syslog).
        state = getattr(info.net, "nft", None)
        if state is not None:
            state.log.append((self.prefix or "", self.level if self.level is not None
                              else 4, getattr(info.pkt, "id", 0)))


@dataclass
class Reject(VmExpr):
    type: int                          # NFT_REJECT_ICMP_UNREACH 0, TCP_RST 1, ICMPX 2
    code: int
    family: str = "ip"

    def netlink(self) -> str:
        return f"[ reject type {self.type} code {self.code} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        pf = getattr(info.state, "pf", 2)
        if pf not in (2, 10):
            pf = 10 if info.pkt.protocol == 0x86DD else 2
        if info.pkt.trace is not None:
            # name the reject: the packet is dropped (verdict drop) and an answer is sent
            # (nf_send_unreach / nf_send_unreach6 / nf_send_reset, net/ipv4/netfilter/
            # nf_reject_ipv4.c)
            kind = ("icmpx" if self.type == 2 else "tcp reset" if self.type == 1
                    else "icmpv6" if pf == 10 else "icmp")
            fn = ("nf_send_reset" if self.type == 1 else
                  "nf_send_unreach6" if pf == 10 else "nf_send_unreach")
            info.pkt.trace.event(info.pkt, fn, verdict="drop",
                                 info=f"reject with {kind}" + (
                                     f" code {self.code}" if self.type != 1 else ""),
                                 attrs={"reject": kind, "code": self.code})
        if self.type in (0, 2):
            from netstack.netfilter.nft.reject import unreach_csum_ok
            code = self.code
            if pf == 10:
                # nf_send_unreach6: reject6_csum_ok first
                from netstack.ipv6.icmp import icmp6_send
                if self.type == 2:
                    code = {0: 0, 1: 4, 2: 3, 3: 1}[self.code]
                if unreach_csum_ok(info, True):
                    icmp6_send(info.pkt, 1, code, 0)
            else:
                # nf_send_unreach: no answer for a non-first fragment; a packet without
                # a route yet (prerouting) gets the output route to its source
                # (nf_reject_fill_skb_dst); a payload checksum that does not verify gets
                # no answer (nf_reject_verify_csum / nf_ip_checksum)
                from netstack.ipv4.icmp import icmp_send
                from netstack.netfilter.nft.reject import fill_skb_dst
                if self.type == 2:
                    code = {0: 0, 1: 3, 2: 1, 3: 13}[self.code]
                if not info.fragoff and fill_skb_dst(info) and unreach_csum_ok(info, False):
                    icmp_send(info.pkt, 3, code, 0)
        else:
            from netstack.netfilter.nft.reject import send_tcp_reset
            send_tcp_reset(info, pf)
        regs.code = NF_DROP


@dataclass
class Notrack(VmExpr):
    def netlink(self) -> str:
        return "[ notrack ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        ctmod = _conntrack()
        if ctmod is not None:
            ctmod.nf_ct_set_untracked(info.pkt)


@dataclass
class Numgen(VmExpr):
    """nft_numgen.c: ``inc`` counts modulo ``mod`` from 0 (+ offset); ``random`` draws
    from the namespace's deterministic generator (netstack has no entropy source)."""

    dreg: int
    mode: str
    modulus: int
    offset: int = 0
    counter: int = 0

    def netlink(self) -> str:
        off = f" offset {self.offset}" if self.offset else ""
        return f"[ numgen reg {reg_name(self.dreg)} = {self.mode} mod {self.modulus}{off} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        if self.mode == "inc":
            v = self.counter % self.modulus
            self.counter = (self.counter + 1) % self.modulus
        else:
            rng = getattr(info.net, "nft_prandom", None)
            if rng is None:
                import random
                rng = random.Random(bytes(getattr(info.net, "hash_secret", b"")))
                if info.net is not None:
                    info.net.nft_prandom = rng
            v = (rng.getrandbits(32) * self.modulus) >> 32     # reciprocal_scale
        _put(regs, self.dreg, struct.pack("<I", v + self.offset))


@dataclass
class Hash(VmExpr):
    """nft_hash.c ``nft_jhash_eval``: jhash of the key bytes, reciprocal-scaled."""

    dreg: int
    sreg: int | None
    length: int
    modulus: int
    seed: int = 0
    offset: int = 0
    kind: str = "jhash"

    def netlink(self) -> str:
        off = f" offset {self.offset}" if self.offset else ""
        if self.kind == "symhash":
            return f"[ hash reg {reg_name(self.dreg)} = symhash() % mod {self.modulus}{off} ]"
        return (f"[ hash reg {reg_name(self.dreg)} = jhash(reg {reg_name(self.sreg)}, "
                f"{self.length}, 0x{self.seed:x}) % mod {self.modulus}{off} ]")

    def eval(self, regs: Regs, info: PktInfo) -> None:
        from netstack.packet.jhash import jhash
        if self.kind == "symhash":
            h = getattr(info.pkt, "hash", 0)
        else:
            h = jhash(_get(regs, self.sreg, self.length), self.seed)
        v = ((h & 0xFFFFFFFF) * self.modulus) >> 32
        _put(regs, self.dreg, struct.pack("<I", v + self.offset))


FIB_RESULTS = {"oif": 1, "oifname": 2, "type": 3}


@dataclass
class Fib(VmExpr):
    """nft_fib4_eval / nft_fib4_eval_type (IPv4): route lookup on the packet's source or
    destination; ``present`` turns the result into an existence flag."""

    dreg: int
    flags: list[str]
    result: str
    present: bool = False

    def netlink(self) -> str:
        return (f"[ fib {' . '.join(self.flags)} {self.result}"
                f"{' present' if self.present else ''} => reg {reg_name(self.dreg)} ]")

    def eval(self, regs: Regs, info: PktInfo) -> None:
        pkt, st = info.pkt, info.state
        pf = getattr(st, "pf", 2)
        if pf == 10 or (pf != 2 and pkt.protocol == 0x86DD):
            from netstack.netfilter.nft.fib6 import fib6_eval
            fib6_eval(self, regs, info)
            return
        if pf != 2 and pkt.protocol != 0x0800:
            regs.code = NFT_BREAK           # nft_fib_inet_eval: other families
            return
        nh = pkt.network_header
        if nh < 0 or nh + 20 > pkt.tail:
            regs.code = NFT_BREAK
            return
        addr = bytes(pkt.buf[nh + 12:nh + 16]) if "saddr" in self.flags else \
            bytes(pkt.buf[nh + 16:nh + 20])
        net = info.net
        if self.result == "type":
            from netstack.ipv4.fib import inet_addr_type
            _put(regs, self.dreg, struct.pack("<I", inet_addr_type(net, addr)))
            return
        from netstack.ipv4.fib import Flowi4, fib_lookup
        indev = getattr(st, "in_dev", None)
        fl = Flowi4(daddr=addr, mark=pkt.mark if "mark" in self.flags else 0,
                    iif=indev.ifindex if ("iif" in self.flags and indev is not None) else 0)
        res = fib_lookup(net, fl)
        dev = None
        if not isinstance(res, Exception) and res.type in (1, 2):   # unicast, local
            nhs = res.fi.nexthops
            dev = nhs[res.nh_sel].dev if nhs else None
            if res.type == 2:
                dev = indev
        if dev is not None and "iif" in self.flags and indev is not None and dev is not indev:
            dev = None
        if self.present:
            _put(regs, self.dreg, struct.pack("<I", int(dev is not None)))
        elif self.result == "oif":
            _put(regs, self.dreg, struct.pack("<I", dev.ifindex if dev else 0))
        else:
            _put(regs, self.dreg, _ifname(dev) if dev else bytes(16))


def _csum_update(buf: bytearray, at: int, old: bytes, new: bytes) -> None:
    """RFC 1624 incremental update of the 16-bit checksum at ``at`` for an even-aligned
    change ``old`` → ``new`` (inet_proto_csum_replace*)."""
    from netstack.packet.checksum import csum_replace_bytes
    chk = int.from_bytes(buf[at:at + 2], "big")
    buf[at:at + 2] = csum_replace_bytes(chk, old, new).to_bytes(2, "big")


def set_vlan(pkt: Any, offset: int, length: int, data: bytes) -> int | None:
    """``nft_payload_set_vlan`` (net/netfilter/nft_payload.c, 6.10+): a link-layer write
    past the MAC addresses while the tag is out of band (``skb_vlan_tag_present``).
    From the encapsulated type on (offset 16) the write goes to the packet, 4 bytes
    earlier (returns ``VLAN_HLEN``); a 2-byte write at 12 replaces ``vlan_proto``, a 4-byte
    one the whole tag (``__vlan_hwaccel_put_tag``), a 2-byte write at 14 the TCI (returns
    0: nothing is written to the packet).  Any other shape — ``vlan pcp set`` and ``vlan
    dei set`` write one byte at 14 — fails: the rule ends (NFT_BREAK, returns None)."""
    if offset >= 16:
        return 4
    if offset == 12 and length == 2:
        pkt.vlan_proto = int.from_bytes(data, "big")
    elif offset == 12 and length == 4:
        pkt.vlan_proto = int.from_bytes(data[:2], "big")
        pkt.vlan_tci = int.from_bytes(data[2:4], "big")
    elif offset == 14 and length == 2:
        pkt.vlan_tci = int.from_bytes(data, "big")
    else:
        return None
    return 0


@dataclass
class PayloadWrite(VmExpr):
    """nft_payload_set_eval: write register bytes into the packet and fix the header
    checksum (csum_type 1 = inet) and, for pseudo-header fields, the L4 checksum."""

    sreg: int
    base: int
    offset: int
    length: int
    csum_type: int
    csum_off: int
    csum_flags: int

    def netlink(self) -> str:
        return (f"[ payload write reg {reg_name(self.sreg)} => {self.length}b @ "
                f"{BASE_NAMES[self.base]} header + {self.offset} csum_type {self.csum_type} "
                f"csum_off {self.csum_off} csum_flags 0x{self.csum_flags:x} ]")

    def eval(self, regs: Regs, info: PktInfo) -> None:
        pkt = info.pkt
        if self.base == BASE_LL:
            if pkt.mac_header < 0:
                regs.code = NFT_BREAK
                return
            start = pkt.mac_header
            if pkt.vlan_proto and self.offset + self.length > 12:
                vlan_hlen = set_vlan(pkt, self.offset, self.length,
                                     _get(regs, self.sreg, self.length))
                if vlan_hlen is None:
                    regs.code = NFT_BREAK
                    return
                if not vlan_hlen:
                    return
                start -= vlan_hlen
        elif self.base == BASE_NH:
            start = pkt.network_header
        else:
            if not info.tprot_set or info.fragoff:
                regs.code = NFT_BREAK
                return
            start = info.thoff
        at = start + self.offset
        if start < 0 or at + self.length > pkt.tail or \
                (self.csum_type and start + self.csum_off + 2 > pkt.tail):
            regs.code = NFT_BREAK
            return
        new = _get(regs, self.sreg, self.length)
        old = bytes(pkt.buf[at:at + self.length])
        if old == new:
            return
        if self.csum_type == 1:
            _csum_update(pkt.buf, start + self.csum_off, old, new)
        if self.csum_flags & 1 and info.tprot_set and not info.fragoff:
            off = {6: 16, 17: 6, 136: 6}.get(info.tprot)
            l4 = info.thoff + (off or 0)
            if off is not None and l4 + 2 <= pkt.tail and \
                    not (info.tprot == 17 and pkt.buf[l4:l4 + 2] == b"\0\0"):
                _csum_update(pkt.buf, l4, old, new)
        pkt.buf[at:at + self.length] = new


@dataclass
class FlowOffload(VmExpr):
    """nft_flow_offload_eval: hand an established flow to NF2's flowtable."""

    table_key: tuple
    name: str

    def netlink(self) -> str:
        return f"[ flow_offload flowtable {self.name} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        st = getattr(info.net, "nft", None)
        ft = st.live_flowtables.get(self.table_key + (self.name,)) if st else None
        if ft is not None:
            from netstack.netfilter.flowtable import nft_flow_offload_eval
            nft_flow_offload_eval(ft, info.pkt, info.state)


NAT_RANGE_MAP_IPS = 0x1
NAT_RANGE_PROTO_SPECIFIED = 0x2
NAT_FLAGS = {"random": 0x4, "persistent": 0x8, "fully-random": 0x10}


@dataclass
class Nat(VmExpr):
    """nft_nat.c / nft_masq.c / nft_redir.c: build an ``nf_nat_range2`` from registers
    and hand it to NF2's NAT core (``nf_nat_setup_info`` / masquerade / redirect)."""

    kind: str                          # snat | dnat | masq | redir
    family: str = "ip"
    addr_min: int | None = None
    addr_max: int | None = None
    proto_min: int | None = None
    proto_max: int | None = None
    flags: int = 0
    alen: int = 4

    def netlink(self) -> str:
        if self.kind in ("snat", "dnat"):
            s = f"[ nat {self.kind} {self.family}"
        else:
            s = f"[ {self.kind}"
        for name in ("addr_min", "addr_max", "proto_min", "proto_max"):
            r = getattr(self, name)
            if r is not None:
                s += f" {name} reg {reg_name(r)}"
        if self.flags:
            s += f" flags 0x{self.flags:x}"
        return s + " ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        from netstack.netfilter import nat as natmod
        r = natmod.NfNatRange(self.flags)
        if self.addr_min is not None:
            r.min_addr = _get(regs, self.addr_min, self.alen)
            r.max_addr = _get(regs, self.addr_max, self.alen) if self.addr_max is not None \
                else r.min_addr
            r.flags |= NAT_RANGE_MAP_IPS
        if self.proto_min is not None:
            r.min_proto = int.from_bytes(_get(regs, self.proto_min, 2), "big")
            r.max_proto = int.from_bytes(_get(regs, self.proto_max, 2), "big") \
                if self.proto_max is not None else r.min_proto
        if self.kind == "masq":
            regs.code = natmod.nf_nat_masquerade(info.pkt, info.state, r)
            return
        if self.kind == "redir":
            regs.code = natmod.nf_nat_redirect(info.pkt, info.state, r)
            return
        ct, _ = natmod.nf_ct_get(info.pkt)
        if ct is None:
            regs.code = NF_ACCEPT
            return
        manip = natmod.NF_NAT_MANIP_SRC if self.kind == "snat" else natmod.NF_NAT_MANIP_DST
        regs.code = natmod.nf_nat_setup_info(ct, r, manip)


@dataclass
class RuleCode:
    """A compiled rule: its expressions in order."""

    exprs: list[VmExpr] = field(default_factory=list)
