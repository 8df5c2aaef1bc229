"""Kernel-differential conntrack scenarios: the router of tests/kernel/scenarios/ipv4_router.sh
with conntrack switched on in ``r`` (an nft rule using ``ct state`` on the kernel side,
``nf_ct_netns_get`` on netstack's), the same frames injected on both, then the forwarded
frames compared byte for byte and ``conntrack -L`` compared after canonicalisation (lines
sorted, the timeout column replaced by whether it is within 2 s of the other side's).

These need the NF_HOOK call sites in the datapath; until they are wired
(``netstack.netfilter.core.DATAPATH_WIRED``) every test here skips with that reason.  The
netstack side configures netfilter through the Python API rather than through the ``nft``
CLI, so these scenarios do not depend on the nft front end."""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable

import pytest

from netstack.netfilter import core as nfc

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from kernel.cases import (H1, H2, IP_H1, IP_H2, MAC_H1, MAC_H2, MAC_R1, MAC_R2,  # noqa: E402
                          V1H, V2H, eth_ip, icmp4_echo, script, udp4)
from kernel.compare import results_diff, strip_noise  # noqa: E402
from kernel.oracle import Result, Send, run_kernel  # noqa: E402

WIRED_REASON = "netfilter hooks not wired into the datapath yet"
ROUTER = frozenset({"10.0.1.254", "10.0.2.254"})
CT_QUERY = "ip netns exec r conntrack -L"


def _kernel_unavailable() -> str | None:
    import os
    import shutil
    if os.geteuid() != 0:
        return "kernel oracle needs root"
    for tool in ("ip", "nft", "conntrack", "bash"):
        if shutil.which(tool) is None:
            return f"kernel oracle needs `{tool}` (apt-get install nftables conntrack)"
    return None


def require_oracle() -> None:
    """Skip (printing why) unless both halves of a differential run are possible."""
    if not nfc.DATAPATH_WIRED:
        print(f"\nSKIP: {WIRED_REASON}", file=sys.stderr)
        pytest.skip(WIRED_REASON)
    why = _kernel_unavailable()
    if why:
        print(f"\nSKIP: {why}", file=sys.stderr)
        pytest.skip(why)


NFT_CT = """\
ip netns exec r nft add table ip filt
ip netns exec r nft 'add chain ip filt cfwd { type filter hook forward priority 0; }'
ip netns exec r nft add rule ip filt cfwd ct state new counter
"""

_CACHE: dict[str, Result] = {}


def kernel_result(name: str, text: str, sends: list[Send], queries: list[str]) -> Result:
    if name not in _CACHE:
        _CACHE[name] = strip_noise(run_kernel(text, sends, [(H1, V1H), (H2, V2H)], queries, 0.15))
    return _CACHE[name]


def netstack_result(base_script: str, setup: Callable, sends: list[Send],
                    queries: list[str]) -> Result:
    """``run_netstack`` with a Python setup step between the script and the traffic."""
    from netstack import Stack
    st = Stack()
    st.run_script(base_script, name="nf.sh")
    setup(st.world.netns("r"))
    caps = {(ns, dev): st.capture(ns, dev) for ns, dev in ((H1, V1H), (H2, V2H))}
    for s in sends:
        if s.delay_s:
            st.advance(s.delay_s)
        st.inject(s.ns, s.dev, [s.frame])
    st.advance(0.15)
    res = Result()
    for k, c in caps.items():
        res.frames[k] = [bytes(f.data) for f in c]
    for q in queries:
        r = st.command(q)
        assert r.rc == 0, r.stderr
        res.queries[q] = r.stdout
    return strip_noise(res)


_TIMEOUT = re.compile(r"^(\S+\s+\d+) (\d+) ")


def canonical_ct(text: str) -> list[tuple[str, int]]:
    out = []
    for ln in text.splitlines():
        m = _TIMEOUT.match(ln)
        assert m, ln
        out.append((_TIMEOUT.sub(r"\1 T ", ln), int(m.group(2))))
    return sorted(out)


def compare(kernel: Result, netstack: Result) -> None:
    frames_only_k = Result(frames=kernel.frames)
    frames_only_n = Result(frames=netstack.frames)
    diff = results_diff(frames_only_k, frames_only_n, ROUTER)
    assert diff is None, diff
    for q in kernel.queries:
        k, n = canonical_ct(kernel.queries[q]), canonical_ct(netstack.queries[q])
        assert [a for a, _ in k] == [a for a, _ in n], (kernel.queries[q], netstack.queries[q])
        for (_, tk), (_, tn) in zip(k, n):
            assert abs(tk - tn) <= 2, (kernel.queries[q], netstack.queries[q])


def enable_ct(net) -> None:
    from netstack.netfilter import conntrack as nfct
    nfct.nf_ct_netns_get(net, nfc.NFPROTO_IPV4)


def tcp4(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
         payload: bytes = b"", ident: int = 0x4321) -> bytes:
    import dpkt
    from kernel.cases import ipv4
    t = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=64240,
                     data=payload)
    return ipv4(src, dst, dpkt.ip.IP_PROTO_TCP, t, ident=ident)


def to_h2(ip_pkt: bytes) -> Send:
    return Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, ip_pkt))


def to_h1(ip_pkt: bytes) -> Send:
    return Send(H2, V2H, eth_ip(MAC_R2, MAC_H2, ip_pkt))


# ------------------------------------------------------------------ scenarios
UDP_SENDS = [to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"one", ident=0x101)),
             to_h1(udp4(IP_H2, IP_H1, 7000, 40000, b"two", ident=0x102)),
             to_h2(udp4(IP_H1, IP_H2, 40001, 7001, b"unreplied", ident=0x103)),
             to_h2(icmp4_echo(IP_H1, IP_H2, 0x77, 1, b"ping", ident=0x104)),
             to_h1(bytes(icmp4_echo(IP_H2, IP_H1, 0x77, 1, b"ping", ident=0x105)))]


def _echo_reply_fix(sends: list[Send]) -> list[Send]:
    """Turn the last send into an echo *reply* (type 0) with a correct checksum."""
    import dpkt
    from kernel.cases import ipv4
    echo = dpkt.icmp.ICMP.Echo(id=0x77, seq=1, data=b"ping")
    msg = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHOREPLY, code=0, data=echo)
    return sends[:-1] + [to_h1(ipv4(IP_H2, IP_H1, dpkt.ip.IP_PROTO_ICMP, msg, ident=0x105))]


def test_udp_icmp_entries_match_kernel():
    require_oracle()
    sends = _echo_reply_fix(UDP_SENDS)
    k = kernel_result("ct_udp_icmp", script("ipv4_router") + NFT_CT, sends, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), enable_ct, sends, [CT_QUERY])
    assert len(k.queries[CT_QUERY].splitlines()) == 3
    compare(k, n)


TCP_SENDS = [to_h2(tcp4(IP_H1, IP_H2, 40000, 80, 1000, 0, 0x02)),
             to_h1(tcp4(IP_H2, IP_H1, 80, 40000, 5000, 1001, 0x12)),
             to_h2(tcp4(IP_H1, IP_H2, 40000, 80, 1001, 5001, 0x10)),
             to_h2(tcp4(IP_H1, IP_H2, 40000, 80, 1001, 5001, 0x18, b"GET /")),
             to_h2(tcp4(IP_H1, IP_H2, 40002, 80, 7000, 0, 0x02)),
             to_h1(tcp4(IP_H2, IP_H1, 80, 40002, 0, 7001, 0x14)),
             to_h2(tcp4(IP_H1, IP_H2, 40003, 22, 123456, 654321, 0x10))]


def test_tcp_states_match_kernel():
    require_oracle()
    k = kernel_result("ct_tcp", script("ipv4_router") + NFT_CT, TCP_SENDS, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), enable_ct, TCP_SENDS, [CT_QUERY])
    text = k.queries[CT_QUERY]
    assert "ESTABLISHED" in text and "40002" not in text  # reset before assured: gone
    compare(k, n)


NFT_NOTRACK = NFT_CT + """\
ip netns exec r nft 'add chain ip filt craw { type filter hook prerouting priority -300; }'
ip netns exec r nft add rule ip filt craw udp dport 7000 notrack
"""


def test_notrack_creates_no_entry_like_kernel():
    require_oracle()
    from netstack.netfilter import conntrack as nfct

    def setup(net):
        enable_ct(net)

        def raw(priv, pkt, state):
            nh = pkt.network_header if pkt.network_header >= 0 else pkt.data
            if pkt.buf[nh + 9] == 17 and pkt.buf[nh + 22:nh + 24] == (7000).to_bytes(2, "big"):
                nfct.nf_ct_set_untracked(pkt)
            return nfc.NF_ACCEPT
        nfc.nf_register_net_hook(net, nfc.NfHookOps(raw, nfc.NFPROTO_IPV4,
                                                    nfc.NF_INET_PRE_ROUTING, -300))
    sends = UDP_SENDS[:3]
    k = kernel_result("ct_notrack", script("ipv4_router") + NFT_NOTRACK, sends, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), setup, sends, [CT_QUERY])
    text = k.queries[CT_QUERY]
    # the datagram to port 7000 was not tracked, so h2's answer from 7000 is a new flow
    assert len(text.splitlines()) == 2 and "sport=40000 dport=7000 [UNREPLIED]" not in text
    compare(k, n)


CLOSE_SENDS = TCP_SENDS[:3] + [
    to_h2(tcp4(IP_H1, IP_H2, 40000, 80, 1001, 5001, 0x11)),
    to_h1(tcp4(IP_H2, IP_H1, 80, 40000, 5001, 1002, 0x10)),
    to_h1(tcp4(IP_H2, IP_H1, 80, 40000, 5001, 1002, 0x11)),
    to_h2(tcp4(IP_H1, IP_H2, 40000, 80, 1002, 5002, 0x10))]


def test_tcp_close_to_time_wait_matches_kernel():
    require_oracle()
    k = kernel_result("ct_tcp_close", script("ipv4_router") + NFT_CT, CLOSE_SENDS, [CT_QUERY])
    n = netstack_result(script("ipv4_router"), enable_ct, CLOSE_SENDS, [CT_QUERY])
    assert "TIME_WAIT" in k.queries[CT_QUERY]
    compare(k, n)


STREAM_SENDS = [to_h2(udp4(IP_H1, IP_H2, 41000, 5353, b"q1", ident=0x601)),
                to_h1(udp4(IP_H2, IP_H1, 5353, 41000, b"a1", ident=0x602)),
                Send(H1, V1H, eth_ip(MAC_R1, MAC_H1,
                                     udp4(IP_H1, IP_H2, 41000, 5353, b"q2", ident=0x603)),
                     delay_s=2.3)]


def test_udp_becomes_assured_after_two_seconds_like_kernel():
    require_oracle()
    k = kernel_result("ct_udp_stream", script("ipv4_router") + NFT_CT, STREAM_SENDS,
                      [CT_QUERY])
    n = netstack_result(script("ipv4_router"), enable_ct, STREAM_SENDS, [CT_QUERY])
    assert "[ASSURED]" in k.queries[CT_QUERY]
    compare(k, n)


def test_tcp_states_via_nft_cli_match_kernel():
    """Conntrack enabled by the nft rule itself (nf_ct_netns_get from the ct expression)."""
    require_oracle()
    text = script("ipv4_router") + NFT_CT
    k = kernel_result("ct_tcp", text, TCP_SENDS, [CT_QUERY])
    n = netstack_result(text, lambda net: None, TCP_SENDS, [CT_QUERY])
    compare(k, n)
