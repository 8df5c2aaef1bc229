"""The example topologies under ``examples/`` on the kernel and on netstack.

Each example directory holds ``setup.sh`` (the scenario, plain bash) and ``run.py``, which
defines the traffic (``SENDS``: raw frames the hosts transmit, ``CAPTURES``: where frames
are recorded, ``ORIGINATORS``: addresses whose own packets get a kernel-chosen IPv4 ID).
The very same script and frames go to the kernel through the oracle (oracle.run_kernel:
bash in namespaces, AF_PACKET injection and capture) and to netstack through its Python
API; the captures must match byte for byte after masking only what the kernel draws from
per-boot secrets:

* the IPv4 ID and header checksum of packets the hosts originate (``ip_select_ident``,
  net/ipv4/route.c) — compare.mask_frame;
* of a VXLAN packet (UDP port 4789): the outer IPv4 ID and header checksum, the outer UDP
  source port (``udp_flow_src_port``: the inner flow hash, keyed per boot) and the UDP
  checksum that covers it; the inner frame is then masked by the same rules.

Selected state is compared too: ``ip -j neigh`` through compare.state_diff, and the nft
tables the examples use (rule counters included) as text.  Kernel frames taken with
PACKET_VNET_HDR have their CHECKSUM_PARTIAL sums completed; the netstack side completes
them the same way (``complete_partial_checksum``).  ``netstack run`` itself is exercised
on every example too (the CLI, with ``--trace``), without the kernel.
"""
from __future__ import annotations

import importlib.util
import io
import struct
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .compare import frames_diff, mask_frame, state_diff, strip_noise
from .oracle import Result, Send, complete_partial_checksum, run_kernel

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SETTLE = 0.25
VXLAN_PORT = 4789

# Per example: the state compared after the traffic.  ``ip -j`` queries go through
# compare.state_diff; the others are compared as text.
QUERIES: dict[str, tuple[str, ...]] = {
    "bridge-nat": ("ip -n r -j neigh show", "ip -n h1 -j neigh show",
                   "ip netns exec sw nft list table bridge filter",
                   "ip netns exec r nft list table ip nat"),
    "vxlan-overlay": ("ip -n vm1 -j neigh show", "ip -n vm2 -j neigh show",
                      "ip -n hv1 -j neigh show"),
    "macvlan-firewall": ("ip -n r -j neigh show", "ip -n c1 -j neigh show",
                         "ip -n c2 -j neigh show",
                         "ip netns exec r nft list table inet filter"),
}


def script_of(name: str) -> str:
    """The example's setup.sh, exactly as a user runs it."""
    return (EXAMPLES / name / "setup.sh").read_text()


def load(name: str) -> ModuleType:
    """An example's run.py as a module (its SENDS / CAPTURES / ORIGINATORS)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"example_{name.replace('-', '_')}",
                                                      EXAMPLES / name / "run.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(EXAMPLES))


def sends_of(mod: ModuleType) -> list[Send]:
    return [Send(s.ns, s.dev, s.frame, s.delay_s) for s in mod.SENDS]


def mask(frame: bytes, originators: list[str]) -> bytes:
    """compare.mask_frame, plus the VXLAN rules of the module docstring."""
    b = bytearray(mask_frame(frame, originators))
    if (len(b) >= 50 and b[12:14] == b"\x08\x00" and b[23] == 17
            and struct.unpack_from("!H", b, 36)[0] == VXLAN_PORT):
        b[18:20] = b[24:26] = b"\0\0"       # outer IPv4 ID, header checksum
        b[34:36] = b[40:42] = b"\0\0"       # outer UDP source port, UDP checksum
        b[50:] = mask(bytes(b[50:]), originators)
    return bytes(b)


def run_netstack(script: str, name: str, sends: list[Send], captures: list[tuple[str, str]],
                 queries: tuple[str, ...]) -> Result:
    """The netstack half: same inputs, PARTIAL checksums completed as the oracle does,
    settled like netstack_side.run_netstack (advance until a step adds no frame)."""
    from netstack import Stack
    from netstack.packet.skb import CHECKSUM_PARTIAL
    st = Stack()
    st.run_script(script, name=f"examples/{name}/setup.sh")
    res = Result()
    for ns, devname in captures:
        dev = st._dev(ns, devname)
        lst: list[bytes] = []
        res.frames[(ns, devname)] = lst

        def tap(pkt, lst=lst) -> None:  # type: ignore[no-untyped-def]
            frame = bytes(pkt.buf[pkt.mac_header:pkt.tail])
            if pkt.ip_summed == CHECKSUM_PARTIAL:
                frame = complete_partial_checksum(frame, pkt.csum_start - pkt.mac_header,
                                                  pkt.csum_offset)
            lst.append(frame)

        dev.net.add_rx_tap(dev, tap)
    for s in sends:
        if s.delay_s:
            st.advance(s.delay_s)
        st.inject(s.ns, s.dev, [s.frame])
    for _ in range(100):
        before = sum(len(v) for v in res.frames.values())
        st.advance(SETTLE)
        if sum(len(v) for v in res.frames.values()) == before:
            break
    for q in queries:
        r = st.command(q)
        assert r.rc == 0, f"{q}: {r.stderr}"
        res.queries[q] = r.stdout
    return res


def diff_frames(k: Result, n: Result, originators: list[str]) -> str | None:
    """Every capture that differs after masking, as compare.frames_diff reports it."""
    problems = []
    for key in sorted(set(k.frames) | set(n.frames)):
        km = [mask(f, originators) for f in k.frames.get(key, [])]
        nm = [mask(f, originators) for f in n.frames.get(key, [])]
        d = frames_diff(key, km, nm)
        if d:
            problems.append(d)
    return "\n\n".join(problems) if problems else None


def diff_state(name: str, k: Result, n: Result) -> str | None:
    """``ip -j`` queries through compare.state_diff, the others (nft listings) as text."""
    problems = []
    for q in QUERIES[name]:
        if " -j " in q:
            d = state_diff(q, k.queries[q], n.queries[q])
        elif k.queries[q] != n.queries[q]:
            d = f"`{q}` differs:\n--- kernel\n{k.queries[q]}--- netstack\n{n.queries[q]}"
        else:
            d = None
        if d:
            problems.append(d)
    return "\n\n".join(problems) if problems else None


_KERNEL: dict[str, Result] = {}


def kernel_result(name: str) -> Result:
    from .conftest import _unavailable
    reason = _unavailable()
    if reason:
        print(f"\nSKIP kernel oracle: {reason}", file=sys.stderr)
        pytest.skip(reason)
    if name not in _KERNEL:
        mod = load(name)
        _KERNEL[name] = strip_noise(run_kernel(script_of(name), sends_of(mod),
                                               list(mod.CAPTURES), list(QUERIES[name]),
                                               SETTLE))
    return _KERNEL[name]


_NETSTACK: dict[str, Result] = {}


def netstack_result(name: str) -> Result:
    if name in _NETSTACK:
        return _NETSTACK[name]
    mod = load(name)
    _NETSTACK[name] = strip_noise(run_netstack(script_of(name), name, sends_of(mod),
                                               list(mod.CAPTURES), QUERIES[name]))
    return _NETSTACK[name]


def frames(res: Result, ns: str, dev: str) -> list[bytes]:
    return res.frames[(ns, dev)]


# ---------------------------------------------------------------- pinned kernel behaviour

def check_bridge_nat(res: Result) -> None:
    srv = frames(res, "srv", "eth0")
    # srv sees the router's ARP request, then everything from 203.0.113.1 (masqueraded)
    ip_frames = [f for f in srv if f[12:14] == b"\x08\x00"]
    assert len(ip_frames) == 3
    assert all(f[26:30] == bytes([203, 0, 113, 1]) for f in ip_frames)
    h1 = frames(res, "h1", "eth0")
    # srv's two echo replies and its port unreachable arrive de-masqueraded (to
    # 10.10.0.1), and h2's ping; h2's UDP to port 7 was filtered by the switch
    icmp_in = [f for f in h1 if f[12:14] == b"\x08\x00" and f[23] == 1
               and f[30:34] == bytes([10, 10, 0, 1])]
    assert sorted(f[34] for f in icmp_in) == [0, 0, 3, 8]
    assert not [f for f in h1 if f[12:14] == b"\x08\x00" and f[23] == 17]
    assert "packets 1 bytes" in res.queries["ip netns exec sw nft list table bridge filter"]


def check_vxlan(res: Result) -> None:
    u2 = frames(res, "hv2", "u2")
    vx = [f for f in u2 if f[12:14] == b"\x08\x00" and f[23] == 17]
    assert vx and all(struct.unpack_from("!H", f, 36)[0] == VXLAN_PORT for f in vx)
    # the VNI (100) in every VXLAN header, I flag set
    assert all(f[42:50] == bytes.fromhex("0800000000006400") for f in vx)
    vm2 = frames(res, "vm2", "eth0")
    assert sum(1 for f in vm2 if f[12:14] == b"\x08\x00") == 4


def check_macvlan_firewall(res: Result) -> None:
    listing = res.queries["ip netns exec r nft list table inet filter"]
    assert 'iifname "lan" udp dport 5000 counter packets 1 ' in listing
    srv = frames(res, "srv", "eth0")
    udp5000 = [f for f in srv if f[23] == 17 and f[36:38] == b"\x13\x88"]
    assert len(udp5000) == 3
    assert not [f for f in srv if f[23] == 17 and f[36:38] in (b"\x17\x70", b"\x1b\x58")]
    c1 = frames(res, "c1", "eth0")
    rst = [f for f in c1 if f[12:14] == b"\x08\x00" and f[23] == 6]
    assert len(rst) == 1 and rst[0][47] & 0x04 and rst[0][26:30] == bytes([10, 30, 0, 2])
    for c in (c1, frames(res, "c2", "eth0")):
        prohibited = [f for f in c if f[23] == 1 and f[34:36] == bytes([3, 13])]
        assert len(prohibited) == 1 and prohibited[0][26:30] == bytes([10, 20, 0, 254])
    # c2 -> c1 ping and c1's reply stay inside the host (macvlan bridge mode)
    lan = frames(res, "r", "lan")
    assert not [f for f in lan if f[12:14] == b"\x08\x00" and f[30:33] == bytes([10, 20, 0])]


CHECKS = {"bridge-nat": check_bridge_nat, "vxlan-overlay": check_vxlan,
          "macvlan-firewall": check_macvlan_firewall}
NAMES = sorted(CHECKS)


@pytest.mark.parametrize("name", NAMES)
def test_example_kernel(name: str) -> None:
    """The kernel does what the example's README says (pins the behaviour compared)."""
    CHECKS[name](kernel_result(name))


@pytest.mark.parametrize("name", NAMES)
def test_example_netstack_behaviour(name: str) -> None:
    """Without the kernel too: netstack shows the behaviour the README describes."""
    CHECKS[name](netstack_result(name))


@pytest.mark.parametrize("name", NAMES)
def test_example_frames_match_kernel(name: str) -> None:
    """netstack's captured frames equal the kernel's (masked as the module says), and
    show the behaviour the kernel half pins."""
    k = kernel_result(name)
    n = netstack_result(name)
    d = diff_frames(k, n, load(name).ORIGINATORS)
    if d:
        pytest.fail(f"netstack's frames differ from the kernel's in example {name}:\n{d}",
                    pytrace=False)
    CHECKS[name](n)


@pytest.mark.parametrize("name", NAMES)
def test_example_state_matches_kernel(name: str) -> None:
    """After the traffic, neighbour tables and nft listings (with counters) are equal."""
    d = diff_state(name, kernel_result(name), netstack_result(name))
    if d:
        pytest.fail(f"netstack's state differs from the kernel's in example {name}:\n{d}",
                    pytrace=False)


# Stages the --trace output must name for each example: the path through the layers.
TRACE_STAGES = {
    "bridge-nat": ("br_handle_frame", "br_forward", "nf_hook_slow drop reason=NETFILTER_DROP",
                   "ip_forward", "arp_process"),
    "vxlan-overlay": ("br_handle_frame", "br_forward to=vx0", "vxlan_rcv vni=100",
                      "encap_rcv port=4789"),
    "macvlan-firewall": ("nf_hook_slow drop reason=NETFILTER_DROP", "ip_forward",
                        "icmp_rcv"),
}


@pytest.mark.parametrize("name", NAMES)
def test_example_netstack_run_cli(name: str, tmp_path: Path) -> None:
    """``netstack run`` (the CLI) on the example: exit 0, the ``then.sh`` listing, a
    trace that names the bridge / VXLAN / netfilter stages, a pcap per capture."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        from examplelib.runner import argv_for
    finally:
        sys.path.remove(str(EXAMPLES))
    from netstack.cli.run import RunOptions, parse_endpoint, run
    mod = load(name)
    argv = argv_for(str(EXAMPLES / name), mod.SENDS, mod.CAPTURES, ["--trace"],
                    outdir=str(tmp_path))
    opts = RunOptions(setup=argv[1], trace=True)
    for opt, val in zip(argv[2:-1:2], argv[3::2]):
        if opt in ("--inject", "--capture"):
            getattr(opts, opt[2:]).append(parse_endpoint(val, opt))
        elif opt == "--then":
            opts.then = val
    out, err = io.StringIO(), io.StringIO()
    assert run(opts, stdout=out, stderr=err, cwd=str(ROOT)) == 0, err.getvalue()
    trace = err.getvalue()
    for stage in TRACE_STAGES[name]:
        assert stage in trace, f"--trace of {name} lacks {stage!r}"
    assert f"{len(mod.SENDS)} frames injected" in trace
    assert "==" in out.getvalue()
    for ns, dev in mod.CAPTURES:
        assert (tmp_path / f"{ns}-{dev}-rx.pcap").stat().st_size > 24
