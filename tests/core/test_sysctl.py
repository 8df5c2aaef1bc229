"""Sysctl table: defaults, ranges, per-device conf and the default→device copy rule."""
import errno

import pytest

from netstack.core.sysctl import SysctlError, SysctlTable


def table() -> SysctlTable:
    t = SysctlTable()
    t.register("net.ipv4.ip_forward", 0, 0, 1)
    t.register_conf("net.ipv4.conf", "rp_filter", 0, 0, 2)
    return t


def test_defaults_and_range() -> None:
    t = table()
    assert t.get("net.ipv4.ip_forward") == 0
    assert t.set("net.ipv4.ip_forward", " 1\n") == 1
    with pytest.raises(SysctlError) as e:
        t.set("net.ipv4.ip_forward", "2")
    assert e.value.errno == errno.EINVAL
    with pytest.raises(SysctlError) as e:
        t.get("net.ipv4.nope")
    assert e.value.errno == errno.ENOENT


def test_device_conf_copies_default_until_written() -> None:
    t = table()
    t.set("net.ipv4.conf.default.rp_filter", "2")
    t.add_device("eth0")
    t.add_device("eth1")
    assert t.conf("net.ipv4.conf", "eth0", "rp_filter") == 2
    t.set("net.ipv4.conf.eth1.rp_filter", "0")
    t.set("net.ipv4.conf.default.rp_filter", "1")
    # devinet_copy_dflt_conf: only devices never written explicitly follow default.
    assert t.conf("net.ipv4.conf", "eth0", "rp_filter") == 1
    assert t.conf("net.ipv4.conf", "eth1", "rp_filter") == 0
    t.del_device("eth0")
    assert "net.ipv4.conf.eth0.rp_filter" not in t


def test_on_write_hook() -> None:
    t = SysctlTable()
    seen: list[tuple[str, object, object]] = []
    t.register("net.x", 5, on_write=lambda k, o, n: seen.append((k, o, n)))
    t.set("net.x", "7")
    assert seen == [("net.x", 5, 7)]


def test_ipv6_conf_default_only_seeds_new_devices() -> None:
    t = SysctlTable()
    t.register_conf("net.ipv6.conf", "accept_dad", 1, 0, 2)
    t.register_conf("net.ipv6.neigh", "retrans_time_ms", 1000, has_all=False)
    t.add_device("eth0")
    t.set("net.ipv6.conf.default.accept_dad", "0")
    t.set("net.ipv6.neigh.default.retrans_time_ms", "500")
    assert t.conf("net.ipv6.conf", "eth0", "accept_dad") == 1        # addrconf: not copied
    assert t.conf("net.ipv6.neigh", "eth0", "retrans_time_ms") == 500   # neigh parms: copied
    t.add_device("eth1")
    assert t.conf("net.ipv6.conf", "eth1", "accept_dad") == 0
