"""``ip link set ... xdp*`` / ``ip link show`` and ``tc qdisc|filter`` for clsact + bpf:
outputs and error texts measured with iproute2 6.1 (tc 6.1, libbpf 1.1) on Linux 6.18,
pinned here; plus a scenario that attaches with the CLI and sends traffic."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from netstack.api import Stack
from netstack.core import hooks

from .hooks_wiring import wire
from .progs.frames import ipv4

HOOKS_O = str(Path(__file__).parent / "hook_progs" / "hooks.o")
TOPO = """
ip netns add x
ip -n x link add v0 address 02:00:00:00:00:01 type veth peer name v1 address 02:00:00:00:00:02
ip -n x link set v0 up
ip -n x link set v1 up
"""
ID = re.compile(r"\bid \d+")


@pytest.fixture
def st(monkeypatch: pytest.MonkeyPatch) -> Stack:
    keys = (hooks.generic_xdp_needed, hooks.tcx_ingress_needed, hooks.tcx_egress_needed)
    wire(monkeypatch)
    s = Stack()
    s.run_script(TOPO)
    yield s
    hooks.generic_xdp_needed, hooks.tcx_ingress_needed, hooks.tcx_egress_needed = keys


def run(s: Stack, line: str) -> tuple[int, str, str]:
    r = s.command(line)
    return r.rc, ID.sub("id N", r.stdout), r.stderr


def test_ip_link_xdpgeneric_show_and_off(st: Stack) -> None:
    assert run(st, f"ip -n x link set dev v0 xdpgeneric obj {HOOKS_O} sec xdp") == (0, "", "")
    rc, out, _ = run(st, "ip -n x link show v0")
    assert out == (
        "3: v0@v1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 xdpgeneric qdisc noqueue state UP "
        "mode DEFAULT group default qlen 1000\n"
        "    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff\n"
        "    prog/xdp id N name xdp_tx tag 603edfb412778679 jited \n")
    j = json.loads(st.command("ip -n x -j link show v0").stdout)[0]
    keys = list(j)
    assert keys.index("xdp") == keys.index("mtu") + 1
    assert j["xdp"]["mode"] == 2 and j["xdp"]["prog"]["name"] == "xdp_tx"
    assert j["xdp"]["attached"] == [{"mode": 2, "prog": j["xdp"]["prog"]}]
    assert j["xdp"]["prog"]["jited"] == 1 and j["xdp"]["prog"]["tag"] == "603edfb412778679"
    # native and generic at once is refused; `xdp off` removes either
    assert run(st, f"ip -n x link set dev v0 xdpdrv obj {HOOKS_O} sec xdp") == (
        2, "", "Error: Native and generic XDP can't be active at the same time.\n")
    assert run(st, "ip -n x link set dev v0 xdp off")[0] == 0
    assert "xdp" not in st.command("ip -n x link show v0").stdout
    assert run(st, "ip -n x link set dev v0 xdpgeneric off")[0] == 0   # nothing to remove: ok


def test_ip_link_xdp_auto_mode(st: Stack) -> None:
    # veth has native XDP; lo falls back to generic
    assert run(st, f"ip -n x link set dev v1 xdp obj {HOOKS_O} sec xdp")[0] == 0
    assert " mtu 1500 xdp qdisc " in st.command("ip -n x link show v1").stdout
    assert run(st, f"ip -n x link set dev lo xdp obj {HOOKS_O} sec xdp")[0] == 0
    assert " mtu 65536 xdpgeneric qdisc " in st.command("ip -n x link show lo").stdout


MEASURED_IP = [
    ("ip -n x link set dev v0 xdpgeneric obj /nonexist.o sec xdp",
     255, "Cannot initialize ELF context!\n"),
    (f"ip -n x link set dev v0 xdpgeneric obj {HOOKS_O} sec nope",
     255, "object file doesn't contain sec nope\n"),
    (f"ip -n x link set dev v0 xdpgeneric obj {HOOKS_O}",
     255, "object file doesn't contain sec prog\n"),
    (f"ip -n x link set dev lo xdpdrv obj {HOOKS_O} sec xdp",
     2, "Error: Underlying driver does not support XDP in native mode.\n"),
    ("ip -n x link set dev v0 xdpgeneric", 255, 'Command line is not complete. Try option "help"\n'),
    ("ip -n x link set dev v0 xdp foo", 255, 'What mode is "foo"?\n'),
]


@pytest.mark.parametrize("line,rc,err", MEASURED_IP)
def test_ip_link_xdp_errors(st: Stack, line: str, rc: int, err: str) -> None:
    assert run(st, line) == (rc, "", err)


def test_ip_link_xdp_loads_with_the_kernel_verifier_rules(st: Stack) -> None:
    # the tc program forced to XDP reads __sk_buff.data_end: refused at load, as on Linux
    rc, _, err = run(st, f"ip -n x link set dev v0 xdp obj {HOOKS_O} sec tc")
    assert rc == 255 and "prog 'tc_policy': BPF program load failed" in err
    assert getattr(st.world.netns("x").get("v0"), "xdp_prog", None) is None


def test_tc_clsact_and_bpf_filters(st: Stack) -> None:
    assert run(st, "tc -n x qdisc add dev v0 clsact") == (0, "", "")
    assert run(st, "tc -n x qdisc add dev v0 clsact") == (
        2, "", "Error: Exclusivity flag on, cannot modify.\n")
    assert run(st, "tc -n x qdisc show dev v0") == (
        0, "qdisc noqueue 0: root refcnt 2 \nqdisc clsact ffff: parent ffff:fff1 \n", "")
    assert run(st, "tc -n x qdisc show")[1] == (
        "qdisc noqueue 0: dev v1 root refcnt 2 \nqdisc noqueue 0: dev v0 root refcnt 2 \n"
        "qdisc clsact ffff: dev v0 parent ffff:fff1 \n")
    assert json.loads(st.command("tc -n x -j qdisc show").stdout)[2] == {
        "kind": "clsact", "handle": "ffff:", "dev": "v0", "parent": "ffff:fff1", "options": {}}
    for line in (f"tc -n x filter add dev v0 ingress bpf da obj {HOOKS_O} sec tc",
                 f"tc -n x filter add dev v0 ingress pref 5 bpf da obj {HOOKS_O} sec tc",
                 f"tc -n x filter add dev v0 ingress pref 5 bpf obj {HOOKS_O} sec tc",
                 f"tc -n x filter add dev v0 ingress bpf da obj {HOOKS_O} sec tc"):
        assert run(st, line) == (0, "", "")
    tail = "tc_policy tag 7ad050a2092a4e33 jited \n"
    assert run(st, "tc -n x filter show dev v0 ingress")[1] == (
        "filter protocol all pref 5 bpf chain 0 \n"
        "filter protocol all pref 5 bpf chain 0 handle 0x2 hooks.o:[tc] not_in_hw id N name " + tail +
        "filter protocol all pref 5 bpf chain 0 handle 0x1 hooks.o:[tc] direct-action not_in_hw "
        "id N name " + tail +
        "filter protocol all pref 49151 bpf chain 0 \n"
        "filter protocol all pref 49151 bpf chain 0 handle 0x1 hooks.o:[tc] direct-action "
        "not_in_hw id N name " + tail +
        "filter protocol all pref 49152 bpf chain 0 \n"
        "filter protocol all pref 49152 bpf chain 0 handle 0x1 hooks.o:[tc] direct-action "
        "not_in_hw id N name " + tail)
    j = json.loads(st.command("tc -n x -j filter show dev v0 ingress").stdout)
    assert j[0] == {"protocol": "all", "pref": 5, "kind": "bpf", "chain": 0}
    assert list(j[2]["options"]) == ["handle", "bpf_name", "direct-action", "not_in_hw", "prog"]
    assert "direct-action" not in j[1]["options"]
    assert run(st, "tc -n x filter show dev v0 egress") == (0, "", "")
    assert run(st, "tc -n x filter del dev v0 ingress pref 3") == (
        2, "", "Error: Filter with specified priority/protocol not found.\n"
        "We have an error talking to the kernel\n")
    assert run(st, "tc -n x filter del dev v0 ingress pref 5")[0] == 0
    assert "pref 5" not in st.command("tc -n x filter show dev v0 ingress").stdout
    assert run(st, "tc -n x filter del dev v0 ingress") == (0, "", "")
    assert run(st, "tc -n x filter show dev v0 ingress") == (0, "", "")
    assert run(st, "tc -n x qdisc del dev v0 clsact") == (0, "", "")


MEASURED_TC = [
    ("tc -n x qdisc del dev v0 clsact", 2, "Error: Invalid handle.\n"),
    ("tc -n x qdisc add dev nodev clsact", 1, 'Cannot find device "nodev"\n'),
    ("tc -n x filter show dev nodev ingress", 1, 'Cannot find device "nodev"\n'),
    (f"tc -n x filter add dev v0 ingress bpf da obj {HOOKS_O} sec tc", 2,
     "Error: Parent Qdisc doesn't exists.\nWe have an error talking to the kernel\n"),
    ("tc -n x filter del dev v0 ingress", 2,
     "Error: Parent Qdisc doesn't exists.\nWe have an error talking to the kernel\n"),
    (f"tc -n x filter add dev v0 foo bpf da obj {HOOKS_O} sec tc", 1,
     'Unknown filter "foo", hence option "bpf" is unparsable\n'),
]


@pytest.mark.parametrize("line,rc,err", MEASURED_TC)
def test_tc_errors(st: Stack, line: str, rc: int, err: str) -> None:
    assert run(st, line) == (rc, "", err)


MEASURED_TC_OBJ = [
    (f"tc -n x filter add dev v0 ingress bpf da obj {HOOKS_O}", 1,
     "object file doesn't contain sec classifier\nUnable to load program\n"),
    ("tc -n x filter add dev v0 ingress bpf da obj /nonexist.o sec tc", 1,
     "Cannot initialize ELF context!\nUnable to load program\n"),
    ("tc -n x filter add dev v0 ingress bpf da", 2,
     "RTNETLINK answers: Invalid argument\nWe have an error talking to the kernel\n"),
]


@pytest.mark.parametrize("line,rc,err", MEASURED_TC_OBJ)
def test_tc_object_errors(st: Stack, line: str, rc: int, err: str) -> None:
    assert run(st, "tc -n x qdisc add dev v0 clsact")[0] == 0
    assert run(st, line) == (rc, "", err)


def test_scenario_attaches_and_filters_traffic(st: Stack) -> None:
    st.run_script(f"""
ip netns exec x tc qdisc add dev v1 clsact
ip netns exec x tc filter add dev v1 ingress bpf da obj {HOOKS_O} sec tc
""")
    got = st.capture("x", "v1")
    mac = bytes.fromhex("020000000002020000000001")
    udp9, udp53 = ipv4(17, dport=9), ipv4(17, dport=53)
    st.inject("x", "v0", [mac + udp9[12:], mac + udp53[12:]])
    assert len(got) == 2                      # taps run before tc ingress
    assert st.drops("x")["TC_INGRESS"] == 1
    f = st.world.netns("x").get("v1").tcx_ingress.filters[0]
    assert f.runs == 2 and set(f.maps) == {"xdp_seen", "drop_reasons", "drop_log"}


def test_scenario_xdp_tx_jited_batch(st: Stack) -> None:
    st.run_script(f"ip -n x link set dev v1 xdpgeneric obj {HOOKS_O} sec xdp\n")
    att = st.world.netns("x").get("v1").xdp_prog
    assert att.batch is not None                      # JIT-compiled: batch mode
    back = st.capture("x", "v0")
    mac = bytes.fromhex("020000000002020000000001")
    frames = [mac + ipv4(17, dport=p)[12:] for p in (1, 2, 3)]
    st.inject("x", "v0", frames)
    assert [f.data for f in back] == [f[6:12] + f[0:6] + f[12:] for f in frames]
    assert att.actions == {3: 3}
    import struct
    assert struct.unpack("<Q", att.maps["xdp_seen"].lookup(bytes(4)))[0] == 3
