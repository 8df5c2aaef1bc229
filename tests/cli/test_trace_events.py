"""``--trace`` events: nft rule/return/policy and reject, conntrack, NAT, bridge, local
output, JSON records, and that tracing off creates no records (netstack/core/trace.py)."""
from __future__ import annotations

import io
import json
import os
import sys

import pytest

from netstack.cli.run import RunOptions, parse_endpoint, run
from netstack.cli.scenario import run_script
from netstack.core.dev import dev_queue_xmit_list
from netstack.core.trace import JSON_KEYS
from netstack.core.world import World

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples"))
from examplelib.framegen import ETH_P_IP, echo4, eth, udp4, write_pcap  # noqa: E402

A_MAC, B_MAC = "02:00:00:00:00:0a", "02:00:00:00:00:0b"

#: a router ``r`` between ``a`` (10.1.0.1) and ``b`` (10.2.0.2) with an nft forward chain
#: that jumps to a user chain (rule events, return, policy), rejects UDP port 9, and
#: masquerades towards b; ``b`` runs its own input chain with a drop policy for port 7.
SETUP = """\
ip netns add a
ip netns add r
ip netns add b
ip -n a link add eth0 address 02:00:00:00:00:0a type veth peer name lan address 02:00:00:00:00:fe netns r
ip -n b link add eth0 address 02:00:00:00:00:0b type veth peer name wan address 02:00:00:00:01:fe netns r
ip -n a addr add 10.1.0.1/24 dev eth0
ip -n r addr add 10.1.0.254/24 dev lan
ip -n r addr add 10.2.0.1/24 dev wan
ip -n b addr add 10.2.0.2/24 dev eth0
ip -n a link set eth0 up
ip -n r link set lan up
ip -n r link set wan up
ip -n b link set eth0 up
ip -n a route add default via 10.1.0.254
ip -n b route add default via 10.2.0.1
ip netns exec r sysctl -q -w net.ipv4.ip_forward=1
ip netns exec r nft add table ip filter
ip netns exec r nft add chain ip filter fwd '{ type filter hook forward priority 0; policy accept; }'
ip netns exec r nft add chain ip filter udpchk
ip netns exec r nft add rule ip filter fwd meta l4proto udp jump udpchk
ip netns exec r nft add rule ip filter udpchk udp dport 9 reject
ip netns exec r nft add rule ip filter udpchk counter
ip netns exec r nft add table ip nat
ip netns exec r nft add chain ip nat post '{ type nat hook postrouting priority srcnat; policy accept; }'
ip netns exec r nft add rule ip nat post oifname wan masquerade
ip netns exec b nft add table inet host
ip netns exec b nft add chain inet host input '{ type filter hook input priority 0; policy drop; }'
ip netns exec b nft add rule inet host input udp dport 7 drop
"""


def _frames() -> list[tuple[int, bytes]]:
    t0 = 1_000_000_000
    mk = lambda p: eth("02:00:00:00:00:fe", A_MAC, ETH_P_IP, p)  # noqa: E731
    return [(t0, mk(udp4("10.1.0.1", "10.2.0.2", 4000, 9, b"x", ident=1))),
            (t0 + 1_000_000, mk(udp4("10.1.0.1", "10.2.0.2", 4001, 7, b"y", ident=2))),
            (t0 + 2_000_000, mk(echo4("10.1.0.1", "10.2.0.2", 0x55, 1, b"z", ident=3)))]


def _run(tmp_path, json_out: bool = False) -> list[str]:  # type: ignore[no-untyped-def]
    (tmp_path / "setup.sh").write_text(SETUP)
    write_pcap(str(tmp_path / "a.pcap"), _frames())
    out, err = io.StringIO(), io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:eth0=a.pcap", "--inject")], [],
                      None, trace=True, json=json_out, quiet=True)
    assert run(opts, out, err, cwd=str(tmp_path)) == 0, err.getvalue()
    return err.getvalue().splitlines()


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> list[str]:  # type: ignore[no-untyped-def]
    return _run(tmp_path_factory.mktemp("trace"))


def _pkt(lines: list[str], pid: int) -> list[str]:
    tag = f"#{pid:<4d}"
    return [ln.split(tag, 1)[1].strip() for ln in lines if f" {tag} " in ln]


def test_nft_rule_jump_reject_named(lines) -> None:  # type: ignore[no-untyped-def]
    p1 = _pkt(lines, 1)
    # at the forward hook skb->dev is still the input device (ip_forward)
    assert ("netns=r dev=lan nft_trace_packet ip filter fwd rule meta l4proto udp jump udpchk "
            "# handle 3 (verdict jump udpchk)") in p1
    assert ("netns=r dev=lan nf_send_unreach drop reject with icmp code 3") in p1
    assert ("netns=r dev=lan nft_trace_packet ip filter udpchk rule udp dport 9 reject "
            "# handle 4 (verdict drop)") in p1
    assert any(ln.startswith("netns=r dev=lan nf_hook_slow drop reason=NETFILTER_DROP "
                             "pf=2 hook=2 prio=0 by=ip filter fwd") for ln in p1)
    # the reject's answer is a locally generated packet: namespace and output device
    reply = [ln for ln in lines if "icmp_push_reply type=3 code=3" in ln]
    assert reply and "netns=r dev=lan" in reply[0]


def test_nft_return_and_policy(lines) -> None:  # type: ignore[no-untyped-def]
    p = _pkt(lines, next(int(ln.split("#")[1].split()[0]) for ln in lines
                         if "udp dport 9" not in ln and "counter packets 1" in ln))
    chain_events = [ln.split("nft_trace_packet ", 1)[1] for ln in p
                    if "netns=r" in ln and "nft_trace_packet" in ln and "filter" in ln]
    # as nft -a monitor trace on 6.18: falling off the jumped-to chain prints nothing,
    # the base chain's policy follows the last rule event
    assert chain_events == [
        "ip filter fwd rule meta l4proto udp jump udpchk # handle 3 (verdict jump udpchk)",
        "ip filter udpchk rule counter packets 1 bytes 29 # handle 5 (verdict continue)",
        "accept ip filter fwd policy accept"]
    assert any("netns=b dev=eth0 nft_trace_packet inet host input rule udp dport 7 drop "
               "# handle 2 (verdict drop)" in ln for ln in p)
    # ... and the drop policy of b's input chain for the ping
    assert any("netns=b dev=eth0 nft_trace_packet drop inet host input policy drop" in ln
               for ln in lines)


def test_conntrack_and_nat_events(lines) -> None:  # type: ignore[no-untyped-def]
    text = "\n".join(lines)
    assert ("netns=r dev=lan nf_conntrack_in hook=0 ct state new direction original zone 0 "
            "id 3 [icmp src=10.1.0.1 dst=10.2.0.2 type=8 code=0 id=85]") in text
    assert ("nf_nat_setup_info masquerade [icmp src=10.1.0.1 dst=10.2.0.2 type=8 code=0 id=85]"
            " reply [icmp src=10.2.0.2 dst=10.2.0.1 type=0 code=0 id=85]") in text
    assert "netns=r dev=wan nf_nat_manip_pkt snat original to 10.2.0.1" in text
    assert ("netns=r dev=lan nf_nat_setup_info dnat null binding [icmp src=10.1.0.1 "
            "dst=10.2.0.2 type=8 code=0 id=85]") in text
    # the rejected datagram's ICMP error is RELATED, in the reply direction, at LOCAL_OUT
    assert ("netns=r dev=lan nf_conntrack_in hook=3 ct state related direction reply zone 0 "
            "id 1 [udp src=10.1.0.1 dst=10.2.0.2 sport=4000 dport=9]") in text


def test_json_records_have_stable_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    recs = [json.loads(ln) for ln in _run(tmp_path, json_out=True)]
    assert recs and all(tuple(r) == JSON_KEYS for r in recs)
    nft = [r for r in recs if r["stage"] == "nft_trace_packet" and r["attrs"]["type"] == "rule"]
    jump = next(r for r in nft if r["attrs"]["verdict"] == "jump udpchk")
    assert jump["attrs"] == {"family": "ip", "table": "filter", "chain": "fwd", "type": "rule",
                             "verdict": "jump udpchk", "handle": 3,
                             "rule": "meta l4proto udp jump udpchk"}
    assert jump["netns"] == "r" and jump["dev"] == "lan"
    ct = next(r for r in recs if r["stage"] == "nf_conntrack_in")
    assert ct["attrs"]["state"] == "new" and ct["attrs"]["direction"] == "original"


def _world(trace: bool) -> World:
    w = World(trace=trace)
    run_script(w, SETUP, name="setup", cwd=".", stdout=io.StringIO(), stderr=io.StringIO())
    return w


def _send(w: World, data: bytes) -> None:
    dev = w.netns("a").get("eth0")
    pkt = w.new_packet(data)
    pkt.dev = dev
    pkt.reset_mac_header()
    pkt.protocol = ETH_P_IP
    dev_queue_xmit_list(dev, [pkt])
    w.run_until_idle()


def test_tracing_off_creates_no_records() -> None:
    w = _world(False)
    assert w.tracer is None
    _send(w, _frames()[0][1])
    # the packet went the whole way (rejected with an ICMP error back to a) untraced
    assert w.netns("r").drops.total() >= 1
    assert w.tracer is None


def test_trace_records_without_sink() -> None:
    w = _world(True)
    assert w.tracer is not None
    w.tracer.records.clear()
    _send(w, _frames()[2][1])
    stages = {r.stage for r in w.tracer.records}
    assert {"nft_trace_packet", "nf_conntrack_in", "nf_nat_setup_info",
            "nf_nat_manip_pkt"} <= stages
    assert all(r.netns for r in w.tracer.records)


FT_SETUP = SETUP.split("ip netns exec r nft add table ip filter")[0] + """\
ip netns exec r nft add table ip f
ip netns exec r nft 'add flowtable ip f ft { hook ingress priority 0; devices = { lan, wan }; }'
ip netns exec r nft add chain ip f fwd '{ type filter hook forward priority 0; policy accept; }'
ip netns exec r nft add rule ip f fwd meta l4proto udp flow add @ft
ip netns exec r nft add table ip nat
ip netns exec r nft add chain ip nat pre '{ type nat hook prerouting priority dstnat; policy accept; }'
ip netns exec r nft add rule ip nat pre udp dport 8080 dnat to 10.2.0.2:80
"""


def test_flowtable_hit_and_dnat(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "setup.sh").write_text(FT_SETUP)
    t0 = 1_000_000_000
    frames = [(t0 + i * 1_000_000, eth("02:00:00:00:00:fe", A_MAC, ETH_P_IP,
                                       udp4("10.1.0.1", "10.2.0.2", 5000, 8080, b"q",
                                            ident=10 + i))) for i in range(3)]
    write_pcap(str(tmp_path / "a.pcap"), frames)
    out, err = io.StringIO(), io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:eth0=a.pcap", "--inject")], [], None,
                      trace=True, quiet=True)
    assert run(opts, out, err, cwd=str(tmp_path)) == 0, err.getvalue()
    text = err.getvalue()
    assert ("netns=r dev=lan nf_nat_setup_info dnat [udp src=10.1.0.1 dst=10.2.0.2 "
            "sport=5000 dport=8080] reply [udp src=10.2.0.2 dst=10.1.0.1 sport=80 "
            "dport=5000]") in text
    assert "netns=r dev=lan nf_nat_manip_pkt dnat original to 10.2.0.2:80" in text
    hits = [ln for ln in text.splitlines() if "nf_flow_offload_ip_hook" in ln]
    assert hits and hits[0].split("nf_flow_offload_ip_hook ")[1] == (
        "STOLEN flowtable ft hit dir=0 out=wan nat")


BR_SETUP = """\
ip netns add a
ip netns add sw
ip -n sw link add br0 address 02:00:00:00:0b:00 type bridge stp_state 0 mcast_snooping 0
ip -n sw link add p1 type veth peer name eth0 address 02:00:00:00:00:0a netns a
ip -n sw link add p2 type veth peer name eth1 address 02:00:00:00:00:0c netns a
ip -n sw link set p1 master br0
ip -n sw link set p2 master br0
ip -n sw link set p1 up
ip -n sw link set p2 up
ip -n sw link set br0 up
ip -n a link set eth0 up
ip -n a link set eth1 up
"""


def test_bridge_learn_move_and_local_hit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A source MAC seen on p1 then on p2 moves; a frame to the bridge's own address is
    an fdb hit on a local entry (br_pass_frame_up)."""
    (tmp_path / "setup.sh").write_text(BR_SETUP)
    t0 = 1_000_000_000
    f = eth("02:00:00:00:0b:00", A_MAC, 0x88B5, b"\0" * 46)
    write_pcap(str(tmp_path / "e0.pcap"), [(t0, f)])
    write_pcap(str(tmp_path / "e1.pcap"), [(t0 + 1_000_000, f)])
    out, err = io.StringIO(), io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:eth0=e0.pcap", "--inject"),
                                   parse_endpoint("a:eth1=e1.pcap", "--inject")], [], None,
                      trace=True, quiet=True)
    assert run(opts, out, err, cwd=str(tmp_path)) == 0, err.getvalue()
    text = err.getvalue()
    assert "netns=sw dev=p1 br_fdb_update learn 02:00:00:00:00:0a vlan 0 port=p1 new" in text
    assert ("netns=sw dev=p2 br_fdb_update learn 02:00:00:00:00:0a vlan 0 port=p2 "
            "move from=p1") in text
    assert "br_fdb_find_rcu fdb hit 02:00:00:00:0b:00 vlan 0 -> local" in text
    assert "netns=sw dev=br0 br_pass_frame_up dev=br0" in text


def test_json_trace_limit_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "setup.sh").write_text(SETUP)
    write_pcap(str(tmp_path / "a.pcap"), _frames())
    out, err = io.StringIO(), io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:eth0=a.pcap", "--inject")], [], None,
                      trace=True, json=True, trace_limit=5)
    assert run(opts, out, err, cwd=str(tmp_path)) == 0, err.getvalue()
    objs = [json.loads(ln) for ln in err.getvalue().splitlines()]
    assert [tuple(o) for o in objs[:5]] == [JSON_KEYS] * 5
    assert objs[5]["trace_stopped"]["lines"] == 5 and objs[5]["trace_stopped"]["more_events"] > 0
    assert objs[6]["injected"] == 3                       # then the JSON summary
    assert len(objs) == 7


def test_conntrack_untracked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``notrack`` in a raw-priority chain: the conntrack hook reports ``untracked``."""
    (tmp_path / "setup.sh").write_text(SETUP + """\
ip netns exec r nft add table ip raw
ip netns exec r nft add chain ip raw pre '{ type filter hook prerouting priority raw; policy accept; }'
ip netns exec r nft add rule ip raw pre udp dport 7 notrack
""")
    write_pcap(str(tmp_path / "a.pcap"), _frames()[1:2])
    out, err = io.StringIO(), io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:eth0=a.pcap", "--inject")], [], None,
                      trace=True, quiet=True)
    assert run(opts, out, err, cwd=str(tmp_path)) == 0, err.getvalue()
    text = err.getvalue()
    assert "netns=r dev=lan nf_conntrack_in hook=0 ct state untracked" in text
    assert "nf_nat_setup_info" not in text
