"""``bridge fdb get|flush``, the ``self permanent`` lines of the devices' address lists
(``ndo_dflt_fdb_dump``/``_add``/``_del``) and ``bridge link set … self`` — each command
run on Linux 6.18 with Debian's iproute2 6.1 and on netstack from the same setup; the
exit status, stdout and stderr must be identical.  Without root/netns the kernel half
skips and the pinned expectations (measured there) still run on netstack."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from kernel.conftest import _unavailable  # noqa: E402
from netstack.api import Stack  # noqa: E402

# Fixed MACs so the kernel's and netstack's address lists (solicited-node groups) agree.
SETUP = """\
ip netns add NS
ip -n NS link add br0 address 02:00:00:00:0b:00 type bridge
ip -n NS link add v1 address 02:00:00:00:0b:01 type veth peer name v1p address 02:00:00:00:01:01
ip -n NS link add v2 address 02:00:00:00:0b:02 type veth peer name v2p address 02:00:00:00:02:01
ip -n NS link add v3 address 02:00:00:00:0b:03 type veth peer name v3p address 02:00:00:00:03:01
ip -n NS link set v1 master br0
ip -n NS link set v2 master br0
bridge -n NS link set dev v1 learning off
bridge -n NS link set dev v2 learning off
ip -n NS link set br0 up
ip -n NS link set v1 up
ip -n NS link set v1p up
ip -n NS link set v2 up
ip -n NS link set v2p up
bridge -n NS fdb add 02:00:00:00:00:11 dev v1 master static
bridge -n NS fdb add 02:00:00:00:00:12 dev v1 master dynamic
bridge -n NS fdb add 02:00:00:00:00:13 dev v2 master
bridge -n NS fdb add 02:00:00:00:00:14 dev v2 master sticky static
bridge -n NS fdb add 02:00:00:00:00:15 dev v2 master extern_learn
bridge -n NS fdb add 02:00:00:00:00:16 dev br0 self local
"""

Out = tuple[int, str, str]


def _novlan(o: Out) -> Out:
    """Drop the VLAN-1 FDB entries netstack's VLAN-filtering-capable bridge adds and this
    kernel (no CONFIG_BRIDGE_VLAN_FILTERING) cannot (docs/bridge.md, Known differences)."""
    import json
    rc, out, err = o
    if out.startswith("["):
        js = [e for e in json.loads(out) if e.get("vlan") != 1]
        out = json.dumps(js, separators=(",", ":")) + "\n"
    else:
        out = "".join(line for line in out.splitlines(keepends=True) if " vlan 1 " not in line)
    return rc, out, err


def _kernel(cmds: list[str]) -> list[Out]:
    ns = f"BR3cli{os.getpid()}"
    run = lambda c: subprocess.run(["bash", "-c", c.replace("NS", ns)],  # noqa: E731
                                   capture_output=True, text=True, timeout=20,
                                   stdin=subprocess.DEVNULL)
    try:
        for line in SETUP.splitlines():
            r = run(line)
            assert r.returncode == 0, (line, r.stderr)
        run(f"ip netns exec {ns} sysctl -qw net.ipv6.conf.all.forwarding=0")
        run("sleep 0.2")  # DAD joins the solicited-node groups
        out = []
        for c in cmds:
            r = run(c)
            out.append(_novlan((r.returncode, r.stdout, r.stderr)))
        return out
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def _netstack(cmds: list[str]) -> list[Out]:
    s = Stack()
    s.run_script(SETUP.replace("NS", "n3"))
    s.advance(0.2)
    out = []
    for c in cmds:
        r = s.command(c.replace("NS", "n3"))
        out.append(_novlan((r.rc, r.stdout, r.stderr)))
    return out


def _both(cmds: list[str], pinned: dict[int, Out] | None = None) -> list[Out]:
    """netstack's results; equal to the kernel's when it can run, and to ``pinned``
    (index → measured result) always."""
    n = _netstack(cmds)
    for i, want in (pinned or {}).items():
        assert n[i] == want, (cmds[i], n[i], want)
    if _unavailable() is None:
        k = _kernel(cmds)
        diffs = [(c, a, b) for c, a, b in zip(cmds, k, n) if a != b]
        assert not diffs, "netstack differs from the kernel:\n" + "\n".join(
            f"$ {c}\n  kernel:   {a!r}\n  netstack: {b!r}" for c, a, b in diffs)
    return n


def test_fdb_show_lists_address_lists() -> None:
    """``ndo_dflt_fdb_dump``: every Ethernet device without its own FDB lists dev->uc and
    dev->mc as ``self permanent`` — all-nodes, the bridge's snoopers groups, all-hosts,
    the solicited-node groups; a device never brought up only has all-nodes."""
    n = _both(["bridge -n NS fdb show", "bridge -n NS -j fdb show",
               "bridge -n NS fdb show dev v3", "bridge -n NS fdb show br br0",
               "bridge -n NS fdb show brport v1", "bridge -n NS -s fdb show dev v1p"])
    assert n[2] == (0, "33:33:00:00:00:01 self permanent\n", "")
    assert "01:00:5e:00:00:6a dev br0 self permanent\n" in n[0][1]


def test_fdb_self_on_plain_device() -> None:
    """``ndo_dflt_fdb_add``/``_del``: unicast to dev->uc (the veth goes promiscuous),
    multicast to dev->mc; EEXIST only for ``add``; static/dynamic and VLANs refused."""
    _both(["bridge -n NS fdb add 02:00:00:00:00:99 dev v1p self",
           "bridge -n NS fdb add 01:00:5e:01:02:03 dev v1p self",
           "bridge -n NS fdb add 01:00:5e:01:02:03 dev v1p self",
           "bridge -n NS fdb replace 01:00:5e:01:02:03 dev v1p self",
           "bridge -n NS fdb show dev v1p",
           "bridge -n NS fdb del 01:00:5e:01:02:03 dev v1p self",
           "bridge -n NS fdb del 01:00:5e:01:02:03 dev v1p self",
           "bridge -n NS fdb add 02:00:00:00:00:98 dev v1p self dynamic",
           "bridge -n NS fdb add 02:00:00:00:00:98 dev v1p self vlan 3",
           "bridge -n NS fdb del 02:00:00:00:00:99 dev v1p self",
           "bridge -n NS fdb show dev v1p"],
          {2: (255, "", "RTNETLINK answers: File exists\n"),
           6: (255, "", "RTNETLINK answers: No such file or directory\n")})


def test_fdb_get() -> None:
    """``rtnl_fdb_get`` → ``br_fdb_get``: an exact (MAC, VLAN) lookup in the whole
    table whichever port was named; iproute2's fdb_get exits 254 on a kernel error."""
    _both(["bridge -n NS fdb get 02:00:00:00:00:11 br br0",
           "bridge -n NS fdb get 02:00:00:00:00:11 dev v1",
           "bridge -n NS fdb get 02:00:00:00:00:13 dev v1",
           "bridge -n NS -j fdb get 02:00:00:00:00:12 br br0",
           "bridge -n NS -j -s fdb get 02:00:00:00:00:12 br br0",
           "bridge -n NS fdb get 02:00:00:00:00:14 br br0",
           "bridge -n NS fdb get 02:00:00:00:00:15 br br0",
           "bridge -n NS fdb get 02:00:00:00:00:16 br br0",
           "bridge -n NS fdb get 02:00:00:00:0b:01 br br0 self",
           "bridge -n NS fdb get 02:00:00:00:00:11 br br0 dynamic",
           "bridge -n NS fdb get 02:00:00:00:00:12 br br0 dynamic",
           "bridge -n NS fdb get 02:00:00:00:00:13 br br0 dynamic",
           "bridge -n NS fdb show br br0 dynamic",
           "bridge -n NS fdb get 02:00:00:00:00:55 br br0",
           "bridge -n NS fdb get 02:00:00:00:00:11 br br0 dev v1",
           "bridge -n NS fdb get 02:00:00:00:00:11 dev v1 self",
           "bridge -n NS fdb get 02:00:00:00:00:11 dev v1p",
           "bridge -n NS fdb get 02:00:00:00:00:11 dev br0",
           "bridge -n NS fdb get 02:00:00:00:00:11 br v1",
           "bridge -n NS fdb get 02:00:00:00:00:11 br br0 vlan 0",
           "bridge -n NS fdb get 02:00:00:00:00:11 br br0 vlan 5000",
           "bridge -n NS fdb get 02:00:00:00:00:11 br br0 vlan x",
           "bridge -n NS fdb get 02:00:00:00:00:11 br br0 vlan 5",
           "bridge -n NS fdb get 02:00:00:00:00:11 br br0 vni 5",
           "bridge -n NS fdb get 02:00:00:00:00:11",
           "bridge -n NS fdb get zz br br0",
           "bridge -n NS fdb get 02:00:00:00:00:11 br nosuch",
           "bridge -n NS fdb get 02:00:00:00:00:11 dev nosuch",
           "bridge -n NS fdb get 02:00:00:00:00:11 02:00:00:00:00:12 br br0",
           "bridge -n NS fdb get to 02:00:00:00:00:11 br br0"],
          {2: (0, "02:00:00:00:00:13 dev v2 master br0 permanent\n", ""),
           11: (0, "", ""),
           13: (254, "", "Error: Fdb entry not found.\n"),
           15: (254, "", "Error: Fdb get operation not supported by device.\n")})


FLUSH_CASES = [
    "dev br0", "dev br0 self", "dev v1 master", "dev v1 master dynamic",
    "dev br0 static", "dev br0 nopermanent", "dev br0 permanent",
    "dev br0 brport v1 nodynamic", "dev br0 added_by_user", "dev br0 noadded_by_user",
    "dev br0 extern_learn", "dev br0 sticky", "dev br0 nosticky nostatic",
    "dev br0 brport br0", "dev v2 master nostatic",
    "dev v1", "dev v1 self", "dev v1p", "dev br0 master", "dev v1 master self",
    "dev br0 vlan 0", "dev br0 brport v1p", "dev br0 brport nosuch", "dev nosuch", "",
    "dev br0 bogus words", "dev br0 offloaded", "dev br0 vlan 4094", "dev br0 vlan 4095",
    "dev br0 vlan 70000", "dev br0 vlan -5", "dev br0 vlan x",
]
_READD = [line for line in SETUP.splitlines() if line.startswith("bridge -n NS fdb add")]


def test_fdb_flush() -> None:
    """The bulk ``rtnl_fdb_del`` → ``br_fdb_delete_bulk``/``br_fdb_flush``: NTF_SELF
    assumed; the masked flags select (local entries are deleted, not moved); the VLAN is
    range-checked by the netlink policy.  One kernel run: after each flush the table is
    shown and the user entries added again (their EEXIST answers are compared too)."""
    cmds: list[str] = []
    for args in FLUSH_CASES:
        cmds += [f"bridge -n NS fdb flush {args}".rstrip(), "bridge -n NS fdb show br br0"]
        cmds += _READD
    _both(cmds)


def test_link_set_self() -> None:
    """``rtnl_bridge_setlink``: master part, then the device's own ndo_bridge_setlink —
    a no-op success on the bridge, EOPNOTSUPP on a veth (after the master part applied);
    ``hwmode`` travels with BRIDGE_FLAGS_SELF."""
    _both(["bridge -n NS link set dev br0 self hairpin on",
           "bridge -n NS link set dev v1 self hairpin on",
           "bridge -n NS link set dev v1 self master hairpin on",
           "bridge -n NS -d -j link show dev v1",
           "bridge -n NS link set dev br0 hwmode vepa",
           "bridge -n NS link set dev v1 hwmode vepa master",
           "bridge -n NS link set dev br0 master hairpin on",
           "bridge -n NS link set dev v1p self hairpin on"],
          {1: (255, "", "RTNETLINK answers: Operation not supported\n")})


def test_vlan_tunnelshow() -> None:
    """No VLAN→tunnel mappings exist: the header alone, ``[]`` in JSON."""
    _both(["bridge -n NS vlan tunnelshow", "bridge -n NS -j vlan tunnelshow",
           "bridge -n NS vlan tunnelshow dev v1", "bridge -n NS vlan tunnelshow vid 5",
           "bridge -n NS vlan tunnelshow dev nosuch"])


def test_portless_bridge_carrier() -> None:
    """A bridge that never had a port keeps its carrier (UNKNOWN, link-local address and
    its solicited-node group) — unless created with an address, whose
    br_stp_change_bridge_id runs the port state selection; once its last port leaves it
    is NO-CARRIER."""
    _both(["ip -n NS link add br7 address 02:00:00:00:0c:00 type bridge",
           "ip -n NS link set br7 up",
           "ip -n NS link show br7",
           "bridge -n NS fdb show dev br7",
           "ip -n NS link set v3 master br7",
           "ip -n NS link set v3 nomaster",
           "ip -n NS link show br7"])


def test_link_fdb_flush() -> None:
    """``ip link set BR type bridge fdb_flush`` removes every non-static entry (user
    dynamic and extern_learn too); a port's ``fdb_flush`` keeps extern_learn ones."""
    _both(["bridge -n NS fdb add 02:00:00:00:00:44 dev v1 master use",
           "ip -n NS link set v2 type bridge_slave fdb_flush",
           "bridge -n NS fdb show br br0",
           "ip -n NS link set br0 type bridge fdb_flush",
           "bridge -n NS fdb show br br0"])


def test_address_lists_after_down_up() -> None:
    """``ipv6_mc_down``/``ip_mc_down`` unload the protocol groups: a device that went down
    lists only what the user added; after up, those come first, then the bridge's
    snoopers groups, all-hosts, and — once the link is ready again (the bridge's carrier
    comes back through linkwatch, rate-limited to 1 s) — the IPv6 groups."""
    _both(["bridge -n NS fdb add 01:00:5e:01:02:03 dev v2p self",
           "ip -n NS link set v2p down",
           "bridge -n NS fdb show dev v2p",
           "ip -n NS link set v2p up",
           "sleep 0.2",
           "bridge -n NS fdb show dev v2p",
           "ip -n NS link set br0 down",
           "bridge -n NS fdb show dev br0",
           "ip -n NS link set br0 up",
           "sleep 1.2",
           "bridge -n NS fdb show dev br0"])
