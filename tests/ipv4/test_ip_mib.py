"""/proc/net/snmp rendering of the IPv4 counters (net/ipv4/proc.c, Linux 6.18) and the
packet trace stages."""
from __future__ import annotations

from test_ip_env import Env, from_h1, udp4

from netstack.ipv4.mib import snmp_proc_text

# Header lines of /proc/net/snmp in a fresh 6.18 namespace (measured).
KERNEL_IP = ("Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams "
             "InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes "
             "ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates "
             "OutTransmits")
KERNEL_ICMP = ("Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs "
               "InSrcQuenchs InRedirects InEchos InEchoReps InTimestamps InTimestampReps "
               "InAddrMasks InAddrMaskReps OutMsgs OutErrors OutRateLimitGlobal "
               "OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs "
               "OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks "
               "OutAddrMaskReps")
KERNEL_TCP = ("Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails "
              "EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors")
KERNEL_UDP = ("Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors "
              "InCsumErrors IgnoredMulti MemErrors")


def test_fresh_namespace_matches_kernel_layout(monkeypatch):
    env = Env(monkeypatch, forwarding=False)
    text = snmp_proc_text(env.h1.ipv4.mib, 0, 64).splitlines()
    assert text[0] == KERNEL_IP
    assert text[1] == "Ip: 2 64" + " 0" * 18
    assert text[2] == KERNEL_ICMP
    assert text[3] == "Icmp:" + " 0" * 29
    assert text[4] == KERNEL_TCP
    assert text[5] == "Tcp: 1 200 120000 -1" + " 0" * 11
    assert text[6] == KERNEL_UDP
    assert len(text) == 8


def test_counters_after_traffic(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(udp4("10.0.1.1", "10.0.1.254", 1, 9, b"x")),
                from_h1(udp4("10.0.1.1", "10.0.2.1", 1, 9, b"x", ttl=1))])
    lines = snmp_proc_text(env.mib, 1, 64).splitlines()
    ip_vals = dict(zip(lines[0].split()[1:], map(int, lines[1].split()[1:])))
    assert ip_vals["Forwarding"] == 1 and ip_vals["InReceives"] == 2
    assert ip_vals["InHdrErrors"] == 1 and ip_vals["OutRequests"] == 2
    icmp = dict(zip(lines[2].split()[1:], map(int, lines[3].split()[1:])))
    assert icmp["OutMsgs"] == 2 and icmp["OutDestUnreachs"] == 1 and icmp["OutTimeExcds"] == 1
    assert lines[4] == "IcmpMsg: OutType3 OutType11" and lines[5] == "IcmpMsg: 1 1"
    udp = dict(zip(lines[8].split()[1:], map(int, lines[9].split()[1:])))
    assert udp["NoPorts"] == 1


def test_trace_stages_of_a_forwarded_packet(monkeypatch):
    from netstack.core.trace import Tracer
    env = Env(monkeypatch)
    tr = Tracer(lambda: env.world.clock.now)
    env.world.tracer = tr
    env.inject([from_h1(udp4("10.0.1.1", "10.0.2.1", 1, 9, b"x"))])
    stages = [r.stage for r in tr.records if r.netns == "r"]
    i = stages.index("ip_rcv_core")
    assert stages[i:i + 3] == ["ip_rcv_core", "ip_rcv_finish_core", "ip_forward"]
    assert "dev_hard_start_xmit" in stages[i:]
