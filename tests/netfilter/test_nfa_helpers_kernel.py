"""Kernel-differential: the TFTP conntrack helper (nf_conntrack_tftp.c) on the router of
tests/kernel/scenarios/ipv4_router.sh.  r assigns the helper with an nft ``ct helper``
object (``udp dport 69 ct helper set "tftp-std"``) and forwards only ``ct state
established,related`` plus new requests to port 69: the server's data from a fresh port
passes only as RELATED, an unrelated datagram is dropped.  Frames on both hosts are
compared byte for byte, plus ``conntrack -L`` (``helper=tftp``) and ``conntrack -L
expect`` (a second request left pending).  The netstack side sets the helper through the
API NFB's nft wiring uses (``helper_lookup`` + ``ct_set_helper``) with Python hooks, so the
scenario does not depend on the nft front end."""
from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from netstack.netfilter import conntrack as nfct  # noqa: E402
from netstack.netfilter import core as nfc  # noqa: E402
from netstack.netfilter.conntrack_helper import ct_set_helper, helper_lookup  # noqa: E402
from test_ct_kernel import (compare, kernel_result, netstack_result,  # noqa: E402
                            require_oracle, to_h1, to_h2)

from kernel.cases import H1, H2, IP_H1, IP_H2, V1H, V2H, script, udp4  # noqa: E402

CT_L = "ip netns exec r conntrack -L"
EXP_L = "ip netns exec r conntrack -L expect"
NFT_TFTP = """\
ip netns exec r nft add table ip filt
ip netns exec r nft 'add ct helper ip filt tftp-std { type "tftp" protocol udp; }'
ip netns exec r nft 'add chain ip filt cpre { type filter hook prerouting priority 0; }'
ip netns exec r nft add rule ip filt cpre udp dport 69 ct helper set '"tftp-std"'
ip netns exec r nft 'add chain ip filt cfwd { type filter hook forward priority 0; policy drop; }'
ip netns exec r nft add rule ip filt cfwd ct state established,related accept
ip netns exec r nft add rule ip filt cfwd udp dport 69 ct state new accept
"""

RRQ = b"\x00\x01file.bin\x00octet\x00"
SENDS = [to_h2(udp4(IP_H1, IP_H2, 40000, 69, RRQ, ident=0x201)),
         to_h1(udp4(IP_H2, IP_H1, 3333, 40000, b"\x00\x03\x00\x01" + bytes(64), ident=0x202)),
         to_h2(udp4(IP_H1, IP_H2, 40000, 3333, b"\x00\x04\x00\x01", ident=0x203)),
         to_h1(udp4(IP_H2, IP_H1, 4444, 40001, b"\x00\x03\x00\x01", ident=0x204)),
         to_h2(udp4(IP_H1, IP_H2, 40002, 69, RRQ, ident=0x205))]


def same_expectation(ktext: str, ntext: str, slack: int | None = None) -> None:
    """``conntrack -L expect`` of the kernel and of netstack: one expectation each, equal
    but for the leading remaining timeout (which differs by when the query ran), and
    with ``slack`` given, timeouts at most that many seconds apart."""
    (kl,), (nl,) = ktext.splitlines(), ntext.splitlines()
    kt, _, krest = kl.partition(" ")
    nt, _, nrest = nl.partition(" ")
    assert krest == nrest, (kl, nl)
    if slack is not None:
        assert abs(int(kt) - int(nt)) <= slack, (kl, nl)


def _helper_hooks(net, name: str, proto: int, port: int) -> None:
    """A helper ruleset (NFT_TFTP / NFT_FTP) as hooks: prerouting 0 assigns helper
    ``name`` to ``proto`` traffic for ``port``, forward 0 accepts established and related
    packets and new ones to ``port``, and drops the rest."""
    nfct.nf_ct_netns_get(net, nfc.NFPROTO_IPV4)
    helper = helper_lookup(name, nfc.NFPROTO_IPV4, proto)

    def _dport(pkt) -> int:
        nh = pkt.network_header
        if pkt.buf[nh + 9] != proto:
            return -1
        l4 = nh + ((pkt.buf[nh] & 15) << 2)
        return int.from_bytes(pkt.buf[l4 + 2:l4 + 4], "big")

    def pre(priv, pkt, state):
        if _dport(pkt) == port:
            ct_set_helper(nfct.nf_ct_get(pkt)[0], helper)
        return nfc.NF_ACCEPT

    def fwd(priv, pkt, state):
        bits = nfct.nf_ct_state(pkt)
        ok = nfct.nf_ct_state_bit(nfct.IP_CT_ESTABLISHED) | \
            nfct.nf_ct_state_bit(nfct.IP_CT_RELATED)
        if bits & ok or (_dport(pkt) == port and bits & nfct.nf_ct_state_bit(nfct.IP_CT_NEW)):
            return nfc.NF_ACCEPT
        return nfc.NF_DROP

    nfc.nf_register_net_hook(net, nfc.NfHookOps(pre, nfc.NFPROTO_IPV4,
                                                nfc.NF_INET_PRE_ROUTING, 0, name="pre"))
    nfc.nf_register_net_hook(net, nfc.NfHookOps(fwd, nfc.NFPROTO_IPV4,
                                                nfc.NF_INET_FORWARD, 0, name="fwd"))


def _setup(net) -> None:
    """The TFTP ruleset above as hooks."""
    _helper_hooks(net, "tftp", 17, 69)


def test_tftp_reply_from_new_port_is_related_like_kernel():
    require_oracle()
    k = kernel_result("nfa_tftp", script("ipv4_router") + NFT_TFTP, SENDS, [CT_L, EXP_L])
    n = netstack_result(script("ipv4_router"), _setup, SENDS, [CT_L])
    from kernel.oracle import Result
    compare(Result(frames=k.frames, queries={CT_L: k.queries[CT_L]}), n)
    assert len(k.frames[(H1, V1H)]) == 1 and len(k.frames[(H2, V2H)]) == 3
    assert "helper=tftp" in k.queries[CT_L]


def test_tftp_expectation_listing_like_kernel():
    require_oracle()
    k = kernel_result("nfa_tftp", script("ipv4_router") + NFT_TFTP, SENDS, [CT_L, EXP_L])
    n = netstack_result(script("ipv4_router"), _setup, SENDS, [EXP_L])
    same_expectation(k.queries[EXP_L], n.queries[EXP_L], slack=1)


# ---- FTP --------------------------------------------------------------------------------
NFT_FTP = NFT_TFTP.replace("tftp-std", "ftp-std").replace('"tftp" protocol udp',
                                                           '"ftp" protocol tcp') \
    .replace("udp dport 69", "tcp dport 21")


def _ftp_sends() -> list:
    from test_ct_kernel import tcp4
    S, PA, A = 0x02, 0x18, 0x10
    c, s = 1000, 5000
    out = [to_h2(tcp4(IP_H1, IP_H2, 40000, 21, c, 0, S, ident=0x301)),
           to_h1(tcp4(IP_H2, IP_H1, 21, 40000, s, c + 1, S | A, ident=0x302)),
           to_h2(tcp4(IP_H1, IP_H2, 40000, 21, c + 1, s + 1, A, ident=0x303))]
    c, s = c + 1, s + 1
    seq = [(False, b"220 hi\r\n"), (True, b"USER a\r\n"), (False, b"331 ok\r\n"),
           (True, b"PORT 10,0,1,1,156,65\r\n"), (False, b"200 ok\r\n"),
           (True, b"PORT 10,0,1,1,156,67\r\n")]
    ident = 0x310
    for client, text in seq:
        ident += 1
        if client:
            out.append(to_h2(tcp4(IP_H1, IP_H2, 40000, 21, c, s, PA, text, ident=ident)))
            c += len(text)
        else:
            out.append(to_h1(tcp4(IP_H2, IP_H1, 21, 40000, s, c, PA, text, ident=ident)))
            s += len(text)
        if text.startswith(b"200"):
            # the active-mode data connection to the first PORT, and one nobody announced
            out.append(to_h1(tcp4(IP_H2, IP_H1, 20, 156 * 256 + 65, 9000, 0, S, ident=0x3A0)))
            out.append(to_h1(tcp4(IP_H2, IP_H1, 20, 156 * 256 + 66, 9100, 0, S, ident=0x3A1)))
    return out


def _setup_ftp(net) -> None:
    """The FTP ruleset above as hooks."""
    _helper_hooks(net, "ftp", 6, 21)


def test_ftp_port_data_connection_is_related_like_kernel():
    require_oracle()
    from kernel.oracle import Result
    sends = _ftp_sends()
    k = kernel_result("nfa_ftp", script("ipv4_router") + NFT_FTP, sends, [CT_L, EXP_L])
    n = netstack_result(script("ipv4_router"), _setup_ftp, sends, [CT_L, EXP_L])
    compare(Result(frames=k.frames, queries={CT_L: k.queries[CT_L]}),
            Result(frames=n.frames, queries={CT_L: n.queries[CT_L]}))
    assert "helper=ftp" in k.queries[CT_L]
    assert sum(1 for f in k.frames[(H1, V1H)] if f[14 + 20 + 13] == 0x02) == 1  # one SYN
    same_expectation(k.queries[EXP_L], n.queries[EXP_L])


# ---- FTP through masquerade: nf_nat_ftp + sequence adjustment ---------------------------
R2 = "10.0.2.254"
NFT_MASQ = """\
ip netns exec r nft add table ip nat
ip netns exec r nft 'add chain ip nat cpost { type nat hook postrouting priority 100; }'
ip netns exec r nft add rule ip nat cpost oifname v2r masquerade
"""


def _ftp_nat_sends() -> list:
    from test_ct_kernel import tcp4
    S, PA, A = 0x02, 0x18, 0x10
    out = [to_h2(tcp4(IP_H1, IP_H2, 40000, 21, 1000, 0, S, ident=0x401)),
           to_h1(tcp4(IP_H2, R2, 21, 40000, 5000, 1001, S | A, ident=0x402)),
           to_h2(tcp4(IP_H1, IP_H2, 40000, 21, 1001, 5001, A, ident=0x403)),
           to_h1(tcp4(IP_H2, R2, 21, 40000, 5001, 1001, PA, b"220 hi\r\n", ident=0x404)),
           to_h2(tcp4(IP_H1, IP_H2, 40000, 21, 1001, 5009, PA, b"USER a\r\n", ident=0x405)),
           to_h1(tcp4(IP_H2, R2, 21, 40000, 5009, 1009, PA, b"331 ok\r\n", ident=0x406)),
           # 22 bytes, rewritten to "PORT 10,0,2,254,156,65\r\n" (24): +2 from here on
           to_h2(tcp4(IP_H1, IP_H2, 40000, 21, 1009, 5017, PA, b"PORT 10,0,1,1,156,65\r\n",
                      ident=0x407)),
           # the server acknowledges in its own numbering (1033): h1 must see 1031
           to_h1(tcp4(IP_H2, R2, 21, 40000, 5017, 1033, PA, b"200 ok\r\n", ident=0x408)),
           # the data connection to the NAT address is translated to h1 and RELATED
           to_h1(tcp4(IP_H2, R2, 20, 156 * 256 + 65, 9000, 0, S, ident=0x409)),
           # h1 goes on in its numbering (1031): the server must see 1033; +2 again
           to_h2(tcp4(IP_H1, IP_H2, 40000, 21, 1031, 5025, PA, b"PORT 10,0,1,1,156,67\r\n",
                      ident=0x40A)),
           to_h1(tcp4(IP_H2, R2, 21, 40000, 5025, 1057, A, ident=0x40B))]
    return out


def test_ftp_port_through_masquerade_is_rewritten_like_kernel():
    require_oracle()
    from kernel.oracle import Result
    from test_nat_kernel import masq_setup
    sends = _ftp_nat_sends()

    def setup(net) -> None:
        _setup_ftp(net)
        masq_setup(net)

    k = kernel_result("nfa_ftp_nat", script("ipv4_router") + NFT_FTP + NFT_MASQ, sends,
                      [CT_L, EXP_L])
    n = netstack_result(script("ipv4_router"), setup, sends, [CT_L, EXP_L])
    compare(Result(frames=k.frames, queries={CT_L: k.queries[CT_L]}),
            Result(frames=n.frames, queries={CT_L: n.queries[CT_L]}))
    assert any(b"PORT 10,0,2,254,156,65\r\n" in f for f in k.frames[(H2, V2H)])
    same_expectation(k.queries[EXP_L], n.queries[EXP_L])


def test_tftp_through_masquerade_follows_master_like_kernel():
    """nf_nat_tftp: the server's reply to the NAT address from a new port is translated to
    the client (``nf_nat_follow_master``) and RELATED."""
    require_oracle()
    from kernel.oracle import Result
    from test_nat_kernel import masq_setup
    sends = [to_h2(udp4(IP_H1, IP_H2, 40000, 69, RRQ, ident=0x501)),
             to_h1(udp4(IP_H2, R2, 3333, 40000, b"\x00\x03\x00\x01" + bytes(32),
                        ident=0x502)),
             to_h2(udp4(IP_H1, IP_H2, 40000, 3333, b"\x00\x04\x00\x01", ident=0x503))]

    def setup(net) -> None:
        _setup(net)
        masq_setup(net)

    k = kernel_result("nfa_tftp_nat", script("ipv4_router") + NFT_TFTP + NFT_MASQ, sends,
                      [CT_L])
    n = netstack_result(script("ipv4_router"), setup, sends, [CT_L])
    compare(Result(frames=k.frames, queries=k.queries), n)
    assert len(k.frames[(H1, V1H)]) == 1 and len(k.frames[(H2, V2H)]) == 2


def test_helpers_via_nft_cli_match_kernel():
    """The same scenarios with netstack configured by the scripts' own ``nft`` commands
    (NFB's ``ct helper`` object and ``ct helper set`` calling ``helper_lookup`` /
    ``ct_set_helper``)."""
    require_oracle()
    from kernel.oracle import Result
    for name, text, sends in (("nfa_tftp", NFT_TFTP, SENDS),
                              ("nfa_ftp_nat", NFT_FTP + NFT_MASQ, _ftp_nat_sends())):
        k = kernel_result(name, script("ipv4_router") + text, sends, [CT_L, EXP_L])
        n = netstack_result(script("ipv4_router") + text, lambda net: None, sends,
                            [CT_L, EXP_L])
        compare(Result(frames=k.frames, queries={CT_L: k.queries[CT_L]}),
                Result(frames=n.frames, queries={CT_L: n.queries[CT_L]}))
        same_expectation(k.queries[EXP_L], n.queries[EXP_L])


# ---- FTP over IPv6: EPRT and EPSV -------------------------------------------------------
NFT_FTP6 = """\
ip netns exec r nft add table ip6 filt
ip netns exec r nft 'add ct helper ip6 filt ftp-std { type "ftp" protocol tcp; }'
ip netns exec r nft 'add chain ip6 filt cpre { type filter hook prerouting priority 0; }'
ip netns exec r nft add rule ip6 filt cpre tcp dport 21 ct helper set '"ftp-std"'
ip netns exec r nft 'add chain ip6 filt cfwd { type filter hook forward priority 0; }'
ip netns exec r nft add rule ip6 filt cfwd ct state established,related accept
ip netns exec r nft add rule ip6 filt cfwd tcp dport 21 ct state new accept
ip netns exec r nft add rule ip6 filt cfwd meta l4proto tcp drop
"""
CT6_L = "ip netns exec r conntrack -L -f ipv6"
EXP6_L = "ip netns exec r conntrack -L expect -f ipv6"


def _ftp6_sends() -> list:
    import dpkt
    from kernel.cases import (IP6_H1, IP6_H2, MAC_H1, MAC_H2, MAC_R1, MAC_R2, eth_ip6,
                              ipv6)
    from kernel.oracle import Send

    def t6(up: bool, sport: int, dport: int, seq: int, ack: int, flags: int,
           data: bytes = b"") -> Send:
        t = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags,
                         win=64240, data=data)
        if up:
            return Send(H1, V1H, eth_ip6(MAC_R1, MAC_H1, ipv6(IP6_H1, IP6_H2, 6, t)))
        return Send(H2, V2H, eth_ip6(MAC_R2, MAC_H2, ipv6(IP6_H2, IP6_H1, 6, t)))
    S, PA, A = 0x02, 0x18, 0x10
    eprt = b"EPRT |2|2001:db8:1::1|40001|\r\n"
    out = [t6(True, 40000, 21, 1000, 0, S), t6(False, 21, 40000, 5000, 1001, S | A),
           t6(True, 40000, 21, 1001, 5001, A),
           t6(False, 21, 40000, 5001, 1001, PA, b"220 hi\r\n"),
           t6(True, 40000, 21, 1001, 5009, PA, b"USER a\r\n"),
           t6(False, 21, 40000, 5009, 1009, PA, b"331 ok\r\n"),
           t6(True, 40000, 21, 1009, 5017, PA, eprt),
           t6(False, 20, 40001, 9000, 0, S),          # announced: RELATED
           t6(False, 20, 40009, 9100, 0, S)]          # not announced: dropped
    c = 1009 + len(eprt)
    out += [t6(False, 21, 40000, 5017, c, PA, b"200 ok\r\n"),
            t6(True, 40000, 21, c, 5025, PA, b"EPSV\r\n"),
            t6(False, 21, 40000, 5025, c + 6, PA, b"229 Entering (|||40100|)\r\n")]
    return out


def test_ftp_over_ipv6_eprt_epsv_like_kernel():
    require_oracle()
    from kernel.compare import strip_noise
    from kernel.oracle import run_kernel
    sends = _ftp6_sends()
    text = script("ipv6_router") + NFT_FTP6
    k = strip_noise(run_kernel(text, sends, [(H1, V1H), (H2, V2H)], [CT6_L, EXP6_L], 0.15))
    n = netstack_result(text, lambda net: None, sends, [CT6_L, EXP6_L])
    for key in ((H1, V1H), (H2, V2H)):
        assert k.frames[key] == n.frames[key], key
    assert len(k.frames[(H1, V1H)]) == 6  # SYN/ACK, 3 replies, the RELATED SYN, 229
    from test_ct_kernel import canonical_ct
    kq, nq = canonical_ct(k.queries[CT6_L]), canonical_ct(n.queries[CT6_L])
    assert [a for a, _ in kq] == [a for a, _ in nq], (k.queries, n.queries)
    same_expectation(k.queries[EXP6_L], n.queries[EXP6_L])


# ---- passive FTP to a DNATed server: the 227 reply is rewritten -------------------------
R1 = "10.0.1.254"
NFT_DNAT21 = """\
ip netns exec r nft add table ip nat
ip netns exec r nft 'add chain ip nat cpre { type nat hook prerouting priority -100; }'
ip netns exec r nft add rule ip nat cpre iifname v1r tcp dport 21 dnat to 10.0.2.1
"""


def _ftp_pasv_sends() -> list:
    from test_ct_kernel import tcp4
    S, PA, A = 0x02, 0x18, 0x10
    pasv = b"227 Entering Passive Mode (10,0,2,1,156,65).\r\n"  # 46 bytes -> 48
    return [to_h2(tcp4(IP_H1, R1, 40000, 21, 1000, 0, S, ident=0x601)),
            to_h1(tcp4(IP_H2, IP_H1, 21, 40000, 5000, 1001, S | A, ident=0x602)),
            to_h2(tcp4(IP_H1, R1, 40000, 21, 1001, 5001, A, ident=0x603)),
            to_h1(tcp4(IP_H2, IP_H1, 21, 40000, 5001, 1001, PA, b"220 hi\r\n", ident=0x604)),
            to_h2(tcp4(IP_H1, R1, 40000, 21, 1001, 5009, PA, b"PASV\r\n", ident=0x605)),
            to_h1(tcp4(IP_H2, IP_H1, 21, 40000, 5009, 1007, PA, pasv, ident=0x606)),
            # the client acknowledges what it saw (48 bytes more): the server must see 46
            to_h2(tcp4(IP_H1, R1, 40000, 21, 1007, 5009 + 48, A, ident=0x607)),
            # the data connection to the address in the rewritten reply: RELATED, DNATed
            to_h2(tcp4(IP_H1, R1, 40100, 156 * 256 + 65, 7000, 0, S, ident=0x608)),
            to_h1(tcp4(IP_H2, IP_H1, 21, 40000, 5055, 1007, PA, b"150 ok\r\n", ident=0x609))]


def test_passive_ftp_to_dnat_server_rewrites_227_like_kernel():
    require_oracle()
    from kernel.oracle import Result
    text = script("ipv4_router") + NFT_FTP + NFT_DNAT21
    sends = _ftp_pasv_sends()
    k = kernel_result("nfa_ftp_pasv", text, sends, [CT_L, EXP_L])
    n = netstack_result(text, lambda net: None, sends, [CT_L, EXP_L])
    compare(Result(frames=k.frames, queries={CT_L: k.queries[CT_L]}),
            Result(frames=n.frames, queries={CT_L: n.queries[CT_L]}))
    assert any(b"(10,0,1,254,156,65)" in f for f in k.frames[(H1, V1H)])
    # the data SYN reached the server although no rule DNATs port 40001: follow_master
    assert sum(1 for f in k.frames[(H2, V2H)] if f[14 + 20 + 2:14 + 20 + 4] == b"\x9c\x41") == 1
    assert k.queries[EXP_L] == n.queries[EXP_L] == ""


# ---- nft ``ct expectation`` objects ------------------------------------------------------
NFT_CT_EXPECT = """\
ip netns exec r nft add table ip filt
ip netns exec r nft 'add ct expectation ip filt e { protocol tcp; dport 2121; timeout 1m; size 4; l3proto ip; }'
ip netns exec r nft 'add chain ip filt cpre { type filter hook prerouting priority 0; }'
ip netns exec r nft add rule ip filt cpre tcp dport 21 ct expectation set '"e"'
"""


def _setup_ct_expect(net) -> None:
    """The ruleset above through the API the nft VM uses (``nft_ct_expect_obj_eval``)."""
    from netstack.netfilter.conntrack_expect import NFT_BREAK, nft_ct_expect_obj_eval
    nfct.nf_ct_netns_get(net, nfc.NFPROTO_IPV4)

    def pre(priv, pkt, state):
        nh = pkt.network_header
        l4 = nh + ((pkt.buf[nh] & 15) << 2)
        if pkt.buf[nh + 9] == 6 and pkt.buf[l4 + 2:l4 + 4] == b"\x00\x15":
            v = nft_ct_expect_obj_eval(pkt, nfc.NFPROTO_IPV4, 6, 2121, 60_000, 4)
            if v != NFT_BREAK:
                return v
        return nfc.NF_ACCEPT

    nfc.nf_register_net_hook(net, nfc.NfHookOps(pre, nfc.NFPROTO_IPV4,
                                                nfc.NF_INET_PRE_ROUTING, 0, name="pre"))


def test_nft_ct_expectation_object_like_kernel():
    """Two masters expecting the same tuple: the second clashes (EBUSY) and its SYN is
    dropped; the expected connection becomes RELATED with the first as master."""
    require_oracle()
    from test_ct_kernel import tcp4
    sends = [to_h2(tcp4(IP_H1, IP_H2, 40000, 21, 1000, 0, 2, ident=0x701)),
             to_h2(tcp4(IP_H1, IP_H2, 40001, 21, 2000, 0, 2, ident=0x702)),
             to_h1(tcp4(IP_H2, IP_H1, 3000, 2121, 9000, 0, 2, ident=0x703)),
             to_h2(tcp4(IP_H1, IP_H2, 40002, 21, 3000, 0, 2, ident=0x704))]
    k = kernel_result("nfa_ct_expect", script("ipv4_router") + NFT_CT_EXPECT, sends,
                      [CT_L, EXP_L])
    n = netstack_result(script("ipv4_router"), _setup_ct_expect, sends, [CT_L, EXP_L])
    from kernel.oracle import Result
    compare(Result(frames=k.frames, queries={CT_L: k.queries[CT_L]}),
            Result(frames=n.frames, queries={CT_L: n.queries[CT_L]}))
    assert len(k.frames[(H2, V2H)]) == 2 and "use=2" in k.queries[CT_L]
    same_expectation(k.queries[EXP_L], n.queries[EXP_L], slack=1)
