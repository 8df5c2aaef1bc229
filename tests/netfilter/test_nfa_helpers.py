"""Conntrack helpers and expectations: helper registry and attach API, the TFTP and FTP
helpers driven with real packet exchanges through the conntrack hooks of a router
(PRE_ROUTING → FORWARD → POST_ROUTING), expectation timeouts on the virtual clock,
max_expected eviction, expectations dying with their master, TFTP under SNAT
(nf_nat_follow_master), FTP command parsing (property + fuzz)."""
from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.netfilter import conntrack as nfct
from netstack.netfilter import core as nfc
from netstack.netfilter import conntrack_expect as cte
from netstack.netfilter.conntrack_ftp import FtpCmd, find_pattern
from netstack.netfilter.conntrack_helper import (ct_set_helper, ct_template_set_helper,
                                                 helper_lookup)
from netstack.netfilter.conntrack_tuple import CtTuple
from test_ct_core import A, B, C, FWD, CtEnv, tcp4, udp4

SYN, ACK, PSH = 0x02, 0x10, 0x08


class HelperEnv(CtEnv):
    """A router whose ruleset says ``udp dport 69 ct helper set "tftp"`` and
    ``tcp dport 21 ct helper set "ftp"`` (a PRE_ROUTING hook at priority 0, after
    conntrack at -200, as an nft filter chain)."""

    def __init__(self) -> None:
        super().__init__()

        def rule(priv, p, state):
            ct, _ = nfct.nf_ct_get(p)
            if ct is not None:
                t = ct.tuplehash[0]
                if t.protonum == 17 and t.dport == 69:
                    ct_set_helper(ct, helper_lookup("tftp", ct.l3num, 17))
                elif t.protonum == 6 and t.dport == 21:
                    ct_set_helper(ct, helper_lookup("ftp", ct.l3num, 6))
            return nfc.NF_ACCEPT
        nfc.nf_register_net_hook(self.net, nfc.NfHookOps(rule, nfc.NFPROTO_IPV4,
                                                         nfc.NF_INET_PRE_ROUTING, 0))


@pytest.fixture
def env() -> HelperEnv:
    return HelperEnv()


def state_of(p) -> int:
    return nfct.nf_ct_get(p)[1]


# ---- registry and API ------------------------------------------------------------------
def test_helper_lookup_names_families_protocols():
    assert helper_lookup("ftp", 2, 6).port == 21
    assert helper_lookup("ftp", 10, 6).l3num == 10
    assert helper_lookup("tftp", 2, 17).port == 69
    assert helper_lookup("tftp", 2, 6) is None
    assert helper_lookup("FTP", 2, 6) is None
    assert helper_lookup("sip", 2, 17) is None


def test_ct_set_helper_only_on_unconfirmed_matching_ct(env):
    p = udp4(A, B, 1000, 69, b"\x00\x01f\x00octet\x00")
    assert nfc.nf_hook(env.net, 2, nfc.NF_INET_PRE_ROUTING, p, None, None)
    ct = nfct.nf_ct_get(p)[0]
    assert ct.status & nfct.IPS_HELPER  # the rule attached it
    assert not ct_set_helper(ct, helper_lookup("tftp", 2, 17))  # already has one
    assert not ct_set_helper(None, helper_lookup("tftp", 2, 17))
    q = udp4(A, B, 1001, 53)
    env.run(q)
    ct2 = nfct.nf_ct_get(q)[0]
    assert ct2.confirmed() and not ct_set_helper(ct2, helper_lookup("tftp", 2, 17))
    r = udp4(A, B, 1002, 53)
    nfc.nf_hook(env.net, 2, nfc.NF_INET_PRE_ROUTING, r, None, None)
    ct3 = nfct.nf_ct_get(r)[0]
    assert not ct_set_helper(ct3, helper_lookup("ftp", 2, 6))  # wrong L4 protocol
    assert ct_set_helper(ct3, helper_lookup("tftp", 2, 17))


def test_template_helper_is_copied_to_the_new_ct():
    e = CtEnv()
    p = udp4(A, B, 1000, 69, b"\x00\x01f\x00octet\x00")
    assert ct_template_set_helper(p, helper_lookup("tftp", 2, 17))
    assert e.run(p)
    ct = nfct.nf_ct_get(p)[0]
    assert ct.help.helper.name == "tftp" and ct.status & nfct.IPS_HELPER
    assert len(cte.nf_ct_expect_iterate(e.cn)) == 1


# ---- TFTP ------------------------------------------------------------------------------
def test_tftp_reply_from_another_port_is_related(env):
    rrq = udp4(A, B, 1000, 69, b"\x00\x01file\x00octet\x00")
    assert env.run(rrq) and state_of(rrq) == nfct.IP_CT_NEW
    exps = cte.nf_ct_expect_iterate(env.cn)
    assert len(exps) == 1
    e = exps[0]
    assert e.tuple == CtTuple(2, B, 0, A, 1000, 17) and e.mask_sport == 0
    master = nfct.nf_ct_get(rrq)[0]
    data = udp4(B, A, 3333, 1000, b"\x00\x03\x00\x01hello")
    assert env.run(data)
    assert state_of(data) == nfct.IP_CT_RELATED
    ct = nfct.nf_ct_get(data)[0]
    assert ct is not master and ct.master is master and ct.status & nfct.IPS_EXPECTED
    assert not cte.nf_ct_expect_iterate(env.cn)  # consumed
    ack = udp4(A, B, 1000, 3333, b"\x00\x04\x00\x01")
    assert env.run(ack) and state_of(ack) == nfct.IP_CT_ESTABLISHED_REPLY
    more = udp4(B, A, 3333, 1000, b"\x00\x03\x00\x02x")
    assert env.run(more) and state_of(more) == nfct.IP_CT_ESTABLISHED


def test_tftp_data_and_ack_opcodes_expect_nothing(env):
    env.run(udp4(A, B, 1000, 69, b"\x00\x03\x00\x01"))
    env.run(udp4(A, B, 1001, 69, b"\x00\x04\x00\x01"))
    env.run(udp4(A, B, 1002, 69, b"\x00"))
    assert not cte.nf_ct_expect_iterate(env.cn)


def test_tftp_expectation_times_out_after_300s(env):
    env.run(udp4(A, B, 1000, 69, b"\x00\x01f\x00octet\x00"))
    # keep the master alive; the expectation runs on its own timer
    env.world.run_until(env.world.clock.now + 299 * 10**9)
    assert len(cte.nf_ct_expect_iterate(env.cn)) == 1
    env.world.run_until(env.world.clock.now + 2 * 10**9)
    assert not cte.nf_ct_expect_iterate(env.cn)
    late = udp4(B, A, 3333, 1000, b"\x00\x03\x00\x01x")
    env.run(late)
    assert state_of(late) == nfct.IP_CT_NEW


def test_tftp_max_expected_evicts_the_oldest(env):
    env.run(udp4(A, B, 1000, 69, b"\x00\x01a\x00octet\x00"))
    ct = [c for c in env.cn.conns][0]
    # a second request on the same master (retransmission with another file name) keeps 1
    env.run(udp4(A, B, 1000, 69, b"\x00\x02b\x00octet\x00"))
    exps = cte.nf_ct_expect_iterate(env.cn)
    assert len(exps) == 1 and ct.help.expecting[0] == 1


def test_expectations_die_with_their_master(env):
    env.run(udp4(A, B, 1000, 69, b"\x00\x01f\x00octet\x00"))
    master = next(iter(env.cn.conns))
    assert cte.nf_ct_expect_iterate(env.cn)
    env.cn.delete(master)
    assert not cte.nf_ct_expect_iterate(env.cn)


def test_expect_events_new_and_destroy(env):
    seen = []
    env.cn.expect.listeners.append(lambda k, e: seen.append((k, e.tuple.dport)))
    env.run(udp4(A, B, 1000, 69, b"\x00\x01f\x00octet\x00"))
    env.run(udp4(B, A, 4000, 1000, b"\x00\x03\x00\x01x"))
    assert seen == [("NEW", 1000), ("DESTROY", 1000)]


def test_expect_table_max_gives_emfile(env):
    env.net.sysctl.values["net.netfilter.nf_conntrack_expect_max"] = 1
    env.run(udp4(A, B, 1000, 69, b"\x00\x01f\x00octet\x00"))
    second = udp4(A, B, 1001, 69, b"\x00\x01f\x00octet\x00")
    assert not env.run(second)  # "cannot add expectation": the request is dropped
    master2 = [c for c in env.cn.conns]
    assert len(master2) == 1


def test_expect_clash_is_ebusy(env):
    env.run(udp4(A, B, 1000, 69, b"\x00\x01f\x00octet\x00"))
    master = next(iter(env.cn.conns))
    other = nfct.NfConn([CtTuple(2, C, 5, B, 6, 17), CtTuple(2, B, 6, C, 5, 17)],
                        net=env.net)
    from netstack.netfilter.conntrack_helper import nf_ct_helper_ext_add
    nf_ct_helper_ext_add(other, helper_lookup("tftp", 2, 17))
    exp = cte.nf_ct_expect_init(other, 0, 2, B, A, 17, None, 1000)
    assert cte.nf_ct_expect_related(exp) == -errno.EBUSY
    assert master.help.expecting[0] == 1


def test_tftp_under_snat_follows_the_master():
    from netstack.netfilter.nat import NF_NAT_MANIP_SRC, NF_NAT_RANGE_MAP_IPS, NfNatRange
    from netstack.netfilter.nat import nf_nat_setup_info
    e = HelperEnv()
    rrq = udp4(A, B, 1000, 69, b"\x00\x01f\x00octet\x00")
    assert nfc.nf_hook(e.net, 2, nfc.NF_INET_PRE_ROUTING, rrq, None, None)
    ct = nfct.nf_ct_get(rrq)[0]
    # masquerade to C at POST_ROUTING, as nf_nat would
    nf_nat_setup_info(ct, NfNatRange(NF_NAT_RANGE_MAP_IPS, C, C), NF_NAT_MANIP_SRC)
    assert ct.tuplehash[1].dst == C
    assert e.run(rrq, hooks=(nfc.NF_INET_FORWARD, nfc.NF_INET_POST_ROUTING))
    (exp,) = cte.nf_ct_expect_iterate(e.cn)
    assert exp.tuple.dst == C and exp.expectfn is not None
    data = udp4(B, C, 3333, ct.tuplehash[1].dport, b"\x00\x03\x00\x01x")
    assert nfc.nf_hook(e.net, 2, nfc.NF_INET_PRE_ROUTING, data, None, None)
    child = nfct.nf_ct_get(data)[0]
    assert child.master is ct and state_of(data) == nfct.IP_CT_RELATED
    # the child's reply goes back to the NATed address: translated to A:1000
    assert child.tuplehash[1].src == A and child.tuplehash[1].sport == 1000
    assert child.status & nfct.IPS_DST_NAT


# ---- FTP -------------------------------------------------------------------------------
class Ftp:
    """A TCP control connection A:40000 → B:21 built from packets."""

    def __init__(self, env: HelperEnv, cport: int = 40000) -> None:
        self.env = env
        self.cport = cport
        self.cseq, self.sseq = 1000, 5000
        assert env.run(tcp4(A, B, cport, 21, self.cseq, 0, SYN))
        self.cseq += 1
        assert env.run(tcp4(B, A, 21, cport, self.sseq, self.cseq, SYN | ACK))
        self.sseq += 1
        assert env.run(tcp4(A, B, cport, 21, self.cseq, self.sseq, ACK))

    def client(self, text: bytes) -> bool:
        p = tcp4(A, B, self.cport, 21, self.cseq, self.sseq, ACK | PSH, text)
        self.cseq += len(text)
        return self.env.run(p)

    def server(self, text: bytes) -> bool:
        p = tcp4(B, A, 21, self.cport, self.sseq, self.cseq, ACK | PSH, text)
        self.sseq += len(text)
        return self.env.run(p)


def test_ftp_active_port_data_connection_is_related(env):
    f = Ftp(env)
    assert f.server(b"220 hello\r\n")
    assert f.client(b"USER anonymous\r\n")
    assert f.server(b"331 pass\r\n")
    assert not cte.nf_ct_expect_iterate(env.cn)
    assert f.client(b"PORT 10,0,0,1,156,65\r\n")  # 156*256+65 = 40001
    (exp,) = cte.nf_ct_expect_iterate(env.cn)
    assert exp.tuple == CtTuple(2, B, 0, A, 40001, 6)
    syn = tcp4(B, A, 20, 40001, 9000, 0, SYN)
    assert env.run(syn) and state_of(syn) == nfct.IP_CT_RELATED
    assert nfct.nf_ct_get(syn)[0].master is not None


def test_ftp_passive_227_and_epsv_229(env):
    f = Ftp(env)
    f.server(b"220 hello\r\n")
    f.client(b"USER a\r\n")
    f.server(b"227 Entering Passive Mode (10,0,0,2,200,10).\r\n")
    (exp,) = cte.nf_ct_expect_iterate(env.cn)
    assert exp.tuple == CtTuple(2, A, 0, B, 200 * 256 + 10, 6)
    syn = tcp4(A, B, 40100, 200 * 256 + 10, 1, 0, SYN)
    assert env.run(syn) and state_of(syn) == nfct.IP_CT_RELATED
    f.client(b"EPSV\r\n")
    f.server(b"229 Entering Extended Passive Mode (|||6446|)\r\n")
    (exp,) = cte.nf_ct_expect_iterate(env.cn)
    assert exp.tuple.dport == 6446 and exp.tuple.dst == B


def test_ftp_first_segment_per_direction_is_not_parsed(env):
    f = Ftp(env)
    f.client(b"PORT 10,0,0,1,156,65\r\n")  # no known newline position yet
    assert not cte.nf_ct_expect_iterate(env.cn)
    f.client(b"PORT 10,0,0,1,156,66\r\n")
    (exp,) = cte.nf_ct_expect_iterate(env.cn)
    assert exp.tuple.dport == 156 * 256 + 66


def test_ftp_port_to_another_address_opens_nothing(env):
    f = Ftp(env)
    f.client(b"NOOP\r\n")
    f.client(b"PORT 192,168,1,1,156,65\r\n")
    assert not cte.nf_ct_expect_iterate(env.cn)


def test_ftp_partial_command_is_dropped(env):
    f = Ftp(env)
    f.client(b"NOOP\r\n")
    assert not f.client(b"POR")
    f.cseq -= 3
    assert not f.client(b"PORT 10,0,0,1,x\r\n")


def test_ftp_eprt(env):
    f = Ftp(env)
    f.client(b"NOOP\r\n")
    f.client(b"EPRT |1|10.0.0.1|6275|\r\n")
    (exp,) = cte.nf_ct_expect_iterate(env.cn)
    assert exp.tuple.dport == 6275 and exp.tuple.dst == A


def test_seqadj_offsets_retransmission_and_sack():
    from netstack.netfilter import seqadj
    ct = nfct.NfConn([CtTuple(2, A, 1, B, 21, 6), CtTuple(2, B, 21, A, 1, 6)])
    seqadj.nf_ct_seqadj_set(ct, 0, 1000, 2)
    seqadj.nf_ct_seqadj_set(ct, 0, 1000, 2)  # retransmission: same correction
    assert ct.status & nfct.IPS_SEQ_ADJUST
    assert (seqadj.nf_ct_seq_offset(ct, 0, 1000), seqadj.nf_ct_seq_offset(ct, 0, 1001)) == (0, 2)
    seqadj.nf_ct_seqadj_set(ct, 0, 2000, 3)
    w = ct.seqadj.seq[0]
    assert (w.correction_pos, w.offset_before, w.offset_after) == (2000, 2, 5)
    # a reply acknowledging 2100+5 with a SACK block: ack and SACK edges lose 5
    sack = bytes((1, 1, 5, 10)) + (2110 + 5).to_bytes(4, "big") + (2120 + 5).to_bytes(4, "big")
    p = tcp4(B, A, 21, 1, 7000, 2105, ACK, options=sack)
    from netstack.packet.checksum import csum_partial, csum_tcpudp_magic
    o = p.network_header
    assert seqadj.nf_ct_seq_adjust(p, ct, nfct.IP_CT_ESTABLISHED_REPLY, o + 20)
    b = bytes(p.buf[o:p.tail])
    assert int.from_bytes(b[28:32], "big") == 2100
    assert int.from_bytes(b[44:48], "big") == 2110 and int.from_bytes(b[48:52], "big") == 2120
    assert csum_tcpudp_magic(B, A, len(b) - 20, 6, csum_partial(b[20:])) == 0


def test_ftp_helper_under_snat_rewrites_port_command():
    from netstack.netfilter.nat import NF_NAT_MANIP_SRC, NF_NAT_RANGE_MAP_IPS, NfNatRange
    from netstack.netfilter.nat import nf_nat_setup_info
    env = HelperEnv()
    syn = tcp4(A, B, 40000, 21, 1000, 0, SYN)
    assert nfc.nf_hook(env.net, 2, nfc.NF_INET_PRE_ROUTING, syn, None, None)
    ct = nfct.nf_ct_get(syn)[0]
    nf_nat_setup_info(ct, NfNatRange(NF_NAT_RANGE_MAP_IPS, C, C), NF_NAT_MANIP_SRC)
    f = Ftp.__new__(Ftp)
    f.env, f.cport, f.cseq, f.sseq = env, 40000, 1001, 5000
    assert env.run(syn, hooks=(nfc.NF_INET_FORWARD, nfc.NF_INET_POST_ROUTING))
    assert env.run(tcp4(B, C, 21, 40000, 5000, 1001, SYN | ACK))
    f.sseq = 5001
    assert env.run(tcp4(A, B, 40000, 21, 1001, 5001, ACK))
    f.client(b"NOOP\r\n")
    p = tcp4(A, B, 40000, 21, f.cseq, f.sseq, ACK | PSH, b"PORT 10,0,0,1,156,65\r\n")
    assert env.run(p)
    o = p.network_header
    assert bytes(p.buf[o + 40:p.tail]) == b"PORT 192,168,1,1,156,65\r\n"
    (exp,) = cte.nf_ct_expect_iterate(env.cn)
    assert exp.tuple.dst == C and exp.tuple.dport == 40001 and exp.saved_proto == 40001
    nxt = tcp4(A, B, 40000, 21, f.cseq + 22, f.sseq, ACK)
    assert env.run(nxt)
    o = nxt.network_header
    assert int.from_bytes(nxt.buf[o + 24:o + 28], "big") == f.cseq + 22 + 3  # 22 -> 25 bytes


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=60), st.sampled_from([0, 1, 2, 3]))
def test_find_pattern_never_raises(data, ftype):
    pats = [(b"PORT", 0x20, 0x0D), (b"227 ", 0, 0), (b"EPRT", 0x20, 0x0D), (b"229 ", 0x28, 0x29)]
    pat, skip, term = pats[ftype]
    for prefix in (b"", pat, pat + b" ", pat + b" ("):
        cmd = FtpCmd(2, A)
        assert find_pattern(prefix + data, pat, skip, term, [0, 1, 2, 3][ftype], cmd) in (-1, 0, 1)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=4, max_size=4), st.integers(1, 65535))
def test_port_command_roundtrip(addr, port):
    text = ("PORT " + ",".join(map(str, addr)) + f",{port >> 8},{port & 255}\r\n").encode()
    cmd = FtpCmd(2, A)
    assert find_pattern(text, b"PORT", 0x20, 0x0D, 0, cmd) == 1
    assert cmd.addr == bytes(addr) and cmd.port == port


def test_eprt_ipv6_and_epsv_offsets():
    a6 = bytes.fromhex("20010db8000000000000000000000001")
    cmd = FtpCmd(10, a6)
    assert find_pattern(b"EPRT |2|2001:db8::1|5282|\r\n", b"EPRT", 0x20, 0x0D, 2, cmd) == 1
    assert (cmd.addr, cmd.port, cmd.matchoff, cmd.matchlen) == (a6, 5282, 5, 20)
    cmd = FtpCmd(10, a6)
    assert find_pattern(b"EPRT |1|10.0.0.1|5282|\r\n", b"EPRT", 0x20, 0x0D, 2, cmd) == -1
    cmd = FtpCmd(2, A)
    assert find_pattern(b"229 Entering (|||6446|)\r\n", b"229 ", 0x28, 0x29, 3, cmd) == 1
    assert (cmd.port, cmd.matchoff, cmd.matchlen) == (6446, 14, 8)
    cmd = FtpCmd(2, A)
    assert find_pattern(b"227 Entering Passive Mode (10,0,0,2,4,1)\r\n", b"227 ", 0, 0, 1,
                        cmd) == 1
    assert (cmd.port, cmd.matchoff, cmd.matchlen) == (1025, 27, 12)


def test_ftp_help_on_ipv6_control_connection():
    e = CtEnv()
    from test_ct_core import pkt
    from netstack.packet.ipv6 import build_ipv6
    from netstack.packet.tcp import build_tcp
    a6 = bytes.fromhex("20010db8000000000000000000000001")
    b6 = bytes.fromhex("20010db8000000000000000000000002")

    def t6(src, dst, sp, dp, seq, ack, flags, data=b""):
        return pkt(build_ipv6(src, dst, 6, build_tcp(sp, dp, seq, ack, flags, 65535, data,
                                                     src=src, dst=dst)), 0x86DD)

    def run(p):
        for h in FWD:
            if not nfc.nf_hook(e.net, 10, h, p, None, None):
                return False
            if h == nfc.NF_INET_PRE_ROUTING:
                ct = nfct.nf_ct_get(p)[0]
                if ct is not None and ct.tuplehash[0].dport == 21:
                    ct_set_helper(ct, helper_lookup("ftp", 10, 6))
        return True
    assert run(t6(a6, b6, 4000, 21, 100, 0, SYN))
    assert run(t6(b6, a6, 21, 4000, 500, 101, SYN | ACK))
    assert run(t6(a6, b6, 4000, 21, 101, 501, ACK, b"NOOP\r\n"))
    assert run(t6(a6, b6, 4000, 21, 107, 501, ACK, b"EPRT |2|2001:db8::1|5282|\r\n"))
    (exp,) = cte.nf_ct_expect_iterate(e.cn)
    assert exp.tuple == CtTuple(10, b6, 0, a6, 5282, 6)


def test_conntrack_cli_expect_list_events_flush(env):
    import io
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.scenario import dispatch

    def cli(*args):
        out, err = io.StringIO(), io.StringIO()
        rc = dispatch(Ctx(env.world, env.net, out, err), ["conntrack", *args])
        return rc, out, err
    rc, events, _ = cli("-E", "expect")
    assert rc == 0
    env.run(udp4(A, B, 1000, 69, b"\x00\x01f\x00octet\x00"))
    rc, out, err = cli("-L", "expect")
    line = ("300 proto=17 src=10.0.0.2 dst=10.0.0.1 sport=0 dport=1000 mask-src=255.255.255.255 "
            "mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.0.0.1 "
            "master-dst=10.0.0.2 sport=1000 dport=69 class=0 helper=tftp")
    assert out.getvalue() == line + "\n"
    assert err.getvalue().endswith("1 expectations have been shown.\n")
    assert "helper=tftp use=1" in cli("-L")[1].getvalue()
    assert cli("-C", "expect")[1].getvalue() == "1\n"
    rc, out, err = cli("-F", "expect")
    assert rc == 0 and err.getvalue().endswith("expectation table has been emptied.\n")
    assert events.getvalue() == f"    [NEW] {line}\n[DESTROY] {line}\n"
    assert cli("-L", "expect")[1].getvalue() == ""


_FTP_PREFIXES = [b"", b"PORT ", b"EPRT ", b"EPRT |2|", b"227 ", b"229 (", b"229 (|||",
                 b"port 1,2,3,4,5,6\r\n"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(_FTP_PREFIXES),
                          st.binary(max_size=40)), min_size=1, max_size=6))
def test_ftp_helper_fuzz_never_raises(segments):
    env = HelperEnv()
    f = Ftp(env)
    for client, prefix, tail in segments:
        data = prefix + tail
        if not data:
            continue
        (f.client if client else f.server)(data)
    for e in cte.nf_ct_expect_iterate(env.cn):
        assert e.tuple.protonum == 6 and e.master.help.expecting[0] <= 1
