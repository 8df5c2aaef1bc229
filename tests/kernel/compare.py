"""Compare a kernel run with a netstack run: masking, noise, readable diffs.

What is masked, and why (kernel-as-oracle.md, "Fields the kernel randomises"):

* IPv4 ID and header checksum of packets the DUT itself originates (ICMP
  errors, echo replies): ``ip_select_ident()`` (net/ipv4/route.c) draws them
  from a per-namespace keyed hash.  Forwarded packets keep the injected ID and
  are compared in full.  Which packets are "originated" is decided by source
  address: the test names the DUT's addresses.
* ICMP echo identifiers would need masking only when the DUT picks them; no
  scenario makes the DUT ping, so none are masked.

What is filtered as noise, from BOTH sides, before comparing (the kernel
emits these on its own timers, so their number and timing are not a function
of the injected traffic): MLD reports (ICMPv6 131/143), MLD done (132),
router solicitations (133) and DAD neighbour solicitations (NS from ::).
Scenarios also avoid them: IPv6 is disabled in host namespaces and in IPv4-only
routers, and IPv6 routers use accept_dad=0.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
from collections.abc import Iterable
from typing import Any

import dpkt

from .oracle import Result

__all__ = [
    "mask_frame",
    "is_noise",
    "strip_noise",
    "describe",
    "field_at",
    "hexdump_pair",
    "frames_diff",
    "canonical_json",
    "state_diff",
    "results_diff",
]

ETH_HLEN = 14
NOISE_ICMP6_TYPES = {131, 132, 133, 143}  # MLD report/done, RS, MLDv2 report


# --------------------------------------------------------------------------
# masking and noise


def mask_frame(frame: bytes, ipv4_originators: Iterable[str] = ()) -> bytes:
    """Zero the fields the kernel randomises in ``frame`` (see module doc)."""
    origin = {ipaddress.IPv4Address(a).packed for a in ipv4_originators}
    if len(frame) >= ETH_HLEN + 20 and frame[12:14] == b"\x08\x00":
        src = frame[ETH_HLEN + 12 : ETH_HLEN + 16]
        if src in origin:
            b = bytearray(frame)
            b[ETH_HLEN + 4 : ETH_HLEN + 6] = b"\0\0"  # identification
            b[ETH_HLEN + 10 : ETH_HLEN + 12] = b"\0\0"  # header checksum
            return bytes(b)
    return frame


def is_noise(frame: bytes) -> bool:
    """True for kernel timer-driven IPv6 control traffic (see module doc)."""
    if len(frame) < ETH_HLEN + 40 or frame[12:14] != b"\x86\xdd":
        return False
    ip = frame[ETH_HLEN:]
    nxt, off = ip[6], 40
    if nxt == 0 and len(ip) >= 48:  # hop-by-hop options (router alert on MLD)
        nxt, off = ip[40], 40 + (ip[41] + 1) * 8
    if nxt != 58 or len(ip) <= off:
        return False
    icmp_type = ip[off]
    if icmp_type in NOISE_ICMP6_TYPES:
        return True
    return icmp_type == 135 and ip[8:24] == bytes(16)  # DAD probe


def strip_noise(result: Result) -> Result:
    """A copy of ``result`` without noise frames."""
    out = Result(queries=dict(result.queries), script_output=result.script_output)
    for key, frs in result.frames.items():
        times = result.times.get(key, [0.0] * len(frs))
        kept = [(f, t) for f, t in zip(frs, times) if not is_noise(f)]
        out.frames[key] = [f for f, _ in kept]
        out.times[key] = [t for _, t in kept]
    return out


# --------------------------------------------------------------------------
# human-readable descriptions


def _addr(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def describe(frame: bytes) -> str:
    """One-line decoded summary of an Ethernet frame (never raises)."""
    try:
        e = dpkt.ethernet.Ethernet(frame)
    except Exception as exc:  # dpkt raises several types on junk
        return f"undecodable ({exc.__class__.__name__}) {len(frame)}B"
    head = f"{_mac(e.src)} > {_mac(e.dst)} len {len(frame)}"
    p = e.data
    if isinstance(p, dpkt.arp.ARP):
        op = {1: "request", 2: "reply"}.get(p.op, str(p.op))
        return (f"{head} ARP {op} sha {_mac(p.sha)} spa {_addr(p.spa)} "
                f"tha {_mac(p.tha)} tpa {_addr(p.tpa)}")
    if isinstance(p, dpkt.ip.IP):
        fo = p._flags_offset
        frag = f" off {(fo & 0x1FFF) * 8}{' MF' if fo & 0x2000 else ''}{' DF' if fo & 0x4000 else ''}"
        s = f"{head} IPv4 {_addr(p.src)} > {_addr(p.dst)} ttl {p.ttl} id {p.id:#06x} proto {p.p}{frag}"
        return s + _l4(p.data)
    if isinstance(p, dpkt.ip6.IP6):
        return f"{head} IPv6 {_addr(p.src)} > {_addr(p.dst)} hlim {p.hlim} nxt {p.nxt}" + _l4(p.data)
    return f"{head} ethertype {e.type:#06x}"


def _l4(p: Any) -> str:
    if isinstance(p, dpkt.icmp.ICMP) or isinstance(p, dpkt.icmp6.ICMP6):
        return f" ICMP{'v6' if isinstance(p, dpkt.icmp6.ICMP6) else ''} type {p.type} code {p.code}"
    if isinstance(p, dpkt.udp.UDP):
        return f" UDP {p.sport} > {p.dport} ulen {p.ulen}"
    if isinstance(p, dpkt.tcp.TCP):
        return f" TCP {p.sport} > {p.dport} flags {p.flags:#x}"
    return ""


_IPV4_FIELDS = [(0, "version/ihl"), (1, "tos"), (2, "total length"), (4, "id"),
                (6, "flags/frag offset"), (8, "ttl"), (9, "protocol"), (10, "header checksum"),
                (12, "source address"), (16, "destination address"), (20, "ipv4 payload")]
_IPV6_FIELDS = [(0, "version/traffic class/flow label"), (4, "payload length"),
                (6, "next header"), (7, "hop limit"), (8, "source address"),
                (24, "destination address"), (40, "ipv6 payload")]
_ARP_FIELDS = [(0, "hrd"), (2, "pro"), (4, "hln/pln"), (6, "op"), (8, "sha"), (14, "spa"),
               (18, "tha"), (24, "tpa"), (28, "arp trailer")]


def field_at(frame: bytes, offset: int) -> str:
    """Name of the header field containing byte ``offset`` of ``frame``."""
    if offset < 6:
        return "ethernet destination"
    if offset < 12:
        return "ethernet source"
    if offset < 14:
        return "ethertype"
    table = {b"\x08\x00": _IPV4_FIELDS, b"\x86\xdd": _IPV6_FIELDS, b"\x08\x06": _ARP_FIELDS}
    fields = table.get(frame[12:14])
    if fields is None:
        return "payload"
    rel = offset - ETH_HLEN
    name = fields[0][1]
    for start, label in fields:
        if rel >= start:
            name = label
    return name


def hexdump_pair(a: bytes, b: bytes, width: int = 16) -> str:
    """Side-by-side hex of two frames; differing lines are flagged with '!'."""
    lines = []
    for off in range(0, max(len(a), len(b)), width):
        ca, cb = a[off : off + width], b[off : off + width]
        flag = "!" if ca != cb else " "
        lines.append(f"{flag} {off:04x}  {ca.hex(' '):<{width * 3}} | {cb.hex(' ')}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# frame comparison


def frames_diff(key: tuple[str, str], kernel: list[bytes], netstack: list[bytes],
                ipv4_originators: Iterable[str] = ()) -> str | None:
    """None when equal after masking, else a report on the first difference."""
    origin = list(ipv4_originators)
    km = [mask_frame(f, origin) for f in kernel]
    nm = [mask_frame(f, origin) for f in netstack]
    if km == nm:
        return None
    out = [f"capture {key[0]}/{key[1]}: kernel {len(km)} frames, netstack {len(nm)} frames"]
    for i in range(max(len(km), len(nm))):
        k = km[i] if i < len(km) else None
        n = nm[i] if i < len(nm) else None
        if k == n:
            continue
        out.append(f"first difference at frame #{i}")
        out.append(f"  kernel:   {describe(k) if k is not None else '(none)'}")
        out.append(f"  netstack: {describe(n) if n is not None else '(none)'}")
        if k is not None and n is not None:
            off = next((j for j in range(min(len(k), len(n))) if k[j] != n[j]), min(len(k), len(n)))
            out.append(f"  first differing byte {off:#x} ({field_at(k, off)})")
            out.append("  kernel (left) | netstack (right), masked:")
            out.append(hexdump_pair(k, n))
        break
    out.append("all kernel frames:")
    out.extend(f"  #{i} {describe(f)}" for i, f in enumerate(km))
    out.append("all netstack frames:")
    out.extend(f"  #{i} {describe(f)}" for i, f in enumerate(nm))
    return "\n".join(out)


# --------------------------------------------------------------------------
# state (ip -j) canonicalisation

# Fields netstack models, per object kind.  Everything else (statistics,
# timers, link ids, qdisc names...) is dropped before comparing.  operstate
# is dropped too: the kernel moves it to UP from the linkwatch work queue,
# up to a second after `ip link set up`, so it is racy on the kernel side.
KEEP = {
    "neigh": {"dst", "dev", "lladdr", "state", "router", "proxy"},
    "route": {"type", "dst", "gateway", "dev", "protocol", "scope", "prefsrc", "metric",
              "flags", "table", "pref", "via", "mtu"},
    "rule": {"priority", "src", "srclen", "dst", "dstlen", "table", "iif", "oif", "fwmark"},
    "addr": {"ifname", "addr_info", "local", "prefixlen", "family", "scope", "broadcast",
             "label", "address", "mtu", "flags"},
    "link": {"ifname", "address", "mtu", "flags", "link_type", "broadcast"},
}


def kind_of(command: str) -> str:
    """Which KEEP table applies to an ``ip [-n NS] [-opts] OBJECT ...`` command."""
    words = command.split()
    i = 1 if words and words[0] == "ip" else 0
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] in ("-n", "-netns", "--netns") else 1
    obj = words[i] if i < len(words) else ""
    for kind, full in (("neigh", "neighbour"), ("route", "route"), ("rule", "rule"),
                       ("addr", "address"), ("link", "link")):
        if obj and (full.startswith(obj) or obj == kind):
            return kind
    raise ValueError(f"not supported: cannot tell the object kind of {command!r}")


def _project(obj: Any, keep: set[str]) -> Any:
    if isinstance(obj, dict):
        return {k: _project(v, keep) for k, v in sorted(obj.items()) if k in keep}
    if isinstance(obj, list):
        items = [_project(v, keep) for v in obj]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return obj


def canonical_json(command: str, text: str) -> Any:
    """Parse ``ip -j`` output, keep modelled fields, sort every list."""
    data = json.loads(text) if text.strip() else []
    return _project(data, KEEP[kind_of(command)])


def state_diff(command: str, kernel: str, netstack: str) -> str | None:
    a = canonical_json(command, kernel)
    b = canonical_json(command, netstack)
    if a == b:
        return None
    ka = json.dumps(a, indent=1, sort_keys=True).splitlines()
    kb = json.dumps(b, indent=1, sort_keys=True).splitlines()
    body = "\n".join(difflib.unified_diff(ka, kb, "kernel", "netstack", lineterm=""))
    return f"state differs for `{command}`:\n{body}"


def results_diff(kernel: Result, netstack: Result, ipv4_originators: Iterable[str] = ()) -> str | None:
    """Every difference between two runs (noise stripped), or None."""
    k, n = strip_noise(kernel), strip_noise(netstack)
    problems = []
    for key in sorted(set(k.frames) | set(n.frames)):
        d = frames_diff(key, k.frames.get(key, []), n.frames.get(key, []), ipv4_originators)
        if d:
            problems.append(d)
    for q in sorted(set(k.queries) | set(n.queries)):
        if q not in k.queries or q not in n.queries:
            problems.append(f"query {q!r} missing on one side")
            continue
        d = state_diff(q, k.queries[q], n.queries[q])
        if d:
            problems.append(d)
    return "\n\n".join(problems) if problems else None
