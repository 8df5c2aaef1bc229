"""``sysctl``, ``ethtool -k/-K`` and ``echo``: texts and exit codes measured on Linux."""
from __future__ import annotations

import pytest


@pytest.fixture
def s4(sh4):  # type: ignore[no-untyped-def]
    sh4.ok("ip link add v0 type veth peer name v1")
    return sh4


SYSCTL_MEASURED = [
    ("sysctl net.ipv4.ip_forward", 0, "net.ipv4.ip_forward = 0\n", ""),
    ("sysctl -n net.ipv4.ip_forward", 0, "0\n", ""),
    ("sysctl -w net.ipv4.ip_forward=1", 0, "net.ipv4.ip_forward = 1\n", ""),
    ("sysctl -q -w net.ipv4.ip_forward=1", 0, "", ""),
    ("sysctl -w net.ipv4.ip_forward=abc", 1, "",
     'sysctl: setting key "net.ipv4.ip_forward": Invalid argument\n'),
    ("sysctl -w net.ipv4.nonexist=1", 1, "",
     "sysctl: cannot stat /proc/sys/net/ipv4/nonexist: No such file or directory\n"),
    ("sysctl net.ipv4.nonexist", 1, "",
     "sysctl: cannot stat /proc/sys/net/ipv4/nonexist: No such file or directory\n"),
    ("sysctl -q net.ipv4.nonexist", 1, "",
     "sysctl: cannot stat /proc/sys/net/ipv4/nonexist: No such file or directory\n"),
    ("sysctl -e net.ipv4.nonexist", 0, "", ""),
    ("sysctl -w net.ipv4.ip_forward", 1, "",
     "sysctl: command line(0): invalid syntax, continuing...\n"),
    ("sysctl -w net/ipv4/ip_forward=0", 0, "net.ipv4.ip_forward = 0\n", ""),
    ("sysctl net.ipv4.conf.v0.rp_filter net.ipv4.ip_forward", 0,
     "net.ipv4.conf.v0.rp_filter = 0\nnet.ipv4.ip_forward = 0\n", ""),
    ("sysctl -w net.ipv4.ip_forward=1 net.ipv4.conf.all.forwarding=0", 0,
     "net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.forwarding = 0\n", ""),
    ("sysctl -x", 1, "", "sysctl: no variables specified\nTry `sysctl --help' for more "
     "information.\n"),
]


@pytest.mark.parametrize("cmd,rc,out,err", SYSCTL_MEASURED)
def test_sysctl_measured(s4, cmd: str, rc: int, out: str, err: str) -> None:  # type: ignore[no-untyped-def]
    assert s4.run(cmd) == (rc, out, err)


def test_sysctl_failing_line_writes_nothing(s4) -> None:  # type: ignore[no-untyped-def]
    table = s4.world.init_net.sysctl
    rc, _, _ = s4.run("sysctl -w net.ipv4.conf.all.forwarding=1 net.ipv4.nonexist=1")
    assert rc == 1 and table.get("net.ipv4.conf.all.forwarding") == 0


def test_sysctl_in_namespace_and_load_file(s4, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s4.ok("ip netns add a")
    s4.ok("ip netns exec a sysctl -w net.ipv4.ip_forward=1")
    assert s4.world.netns("a").sysctl.get("net.ipv4.ip_forward") == 1
    assert s4.world.init_net.sysctl.get("net.ipv4.ip_forward") == 0
    (tmp_path / "s.conf").write_text("# comment\n; other\nnet.ipv4.ip_forward = 1\n")
    rc = s4.run(["sysctl", "-p", str(tmp_path / "s.conf")])
    assert rc == (0, "net.ipv4.ip_forward = 1\n", "")
    with pytest.raises(Exception, match="not supported"):
        s4.run("sysctl -w kernel.hostname=x")


ETHTOOL_MEASURED = [
    ("ethtool -K v0 gro off", 0, "", ""),
    ("ethtool -K v0 rx-gro on tso off", 0, "", ""),
    ("ethtool -K v0 highdma off", 0, "", ""),
    ("ethtool -K v0 foo off", 92, "", "netlink error: bit name not found (offset 52)\n"
     "netlink error: Operation not supported\n"),
    ("ethtool -K v0 gro maybe", 1, "", "ethtool (-K): flag 'maybe' for parameter '(null)' is "
     "not followed by 'on' or 'off'\n"),
    ("ethtool -K v0 gro", 1, "", "ethtool (-K): flag '(null)' for parameter '(null)' is not "
     "followed by 'on' or 'off'\n"),
    ("ethtool -K nodev gro off", 92, "", "netlink error: no device matches name (offset 24)\n"
     "netlink error: No such device\n"),
    ("ethtool -k nodev", 1, "", "netlink error: no device matches name (offset 24)\n"
     "netlink error: No such device\n"),
    ("ethtool -K v0", 1, "", "Could not change any device features\n"),
    ("ethtool -K lo tx off", 0, "Actual changes:\ntx-checksum-ip-generic: on [requested off]\n"
     "tx-checksum-sctp: on [requested off]\n", ""),
    ("ethtool -K lo loopback off", 1, "Actual changes:\nloopback: on [requested off]\n",
     "Could not change any device features\n"),
    ("ethtool -K v0 rxvlan off", 0, "", ""),
    ("ethtool -K v0 lro on", 1, "Actual changes:\nrx-lro: off [requested on]\n",
     "Could not change any device features\n"),
    ("ethtool --offload v0 gro on", 0, "", ""),
    ("ethtool", 1, "", "ethtool: bad command line argument(s)\nFor more information run "
     "ethtool -h\n"),
    ("ethtool -Z v0", 1, "", "ethtool: bad command line argument(s)\nFor more information run "
     "ethtool -h\n"),
]


@pytest.mark.parametrize("cmd,rc,out,err", ETHTOOL_MEASURED)
def test_ethtool_measured(s4, cmd: str, rc: int, out: str, err: str) -> None:  # type: ignore[no-untyped-def]
    assert s4.run(cmd) == (rc, out, err)


def test_ethtool_changes_features(s4) -> None:  # type: ignore[no-untyped-def]
    v0 = s4.world.init_net.get("v0")
    s4.ok("ethtool -K v0 gro off tso off")
    assert "rx-gro" not in v0.features and "tx-tcp-segmentation" not in v0.features
    out = s4.ok("ethtool -k v0")
    assert out.startswith("Features for v0:\nrx-checksumming: on\ntx-checksumming: on\n"
                          "\ttx-checksum-ipv4: off [fixed]\n")
    assert "generic-receive-offload: off\n" in out
    assert "tcp-segmentation-offload: off\n\ttx-tcp-segmentation: off\n" in out
    assert "large-receive-offload: off [fixed]\n" in out
    s4.ok("ethtool -K v0 gro on")
    assert "rx-gro" in v0.features


def test_echo(sh) -> None:  # type: ignore[no-untyped-def]
    assert sh.ok(["echo", "a", "b"]) == "a b\n"
    assert sh.ok(["echo", "-n", "x"]) == "x"
    assert sh.ok(["echo", "-e", "a\\tb\\n"]) == "a\tb\n\n"
    assert sh.ok(["echo", "-x"]) == "-x\n"
    assert sh.ok(["echo"]) == "\n"
