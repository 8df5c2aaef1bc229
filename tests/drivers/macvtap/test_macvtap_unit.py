"""Unit and property tests for the tap queue (tap_queue.py), macvtap and ipvtap, for what
the kernel differential cannot show: ipvtap (no module on the oracle), several queues
(the kernel's flow hash uses a boot-random key), queue bookkeeping, bad input."""
from __future__ import annotations

import errno
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt_frames import mac, tcp_frame, udp_frame, vh
from netstack.cli.scenario import run_script
from netstack.core.dev import dev_queue_xmit
from netstack.core.world import World
from netstack.drivers.ipvtap import IpvtapDevice
from netstack.drivers.macvtap import MacvtapDevice
from netstack.drivers.tap_queue import (IFF_ATTACH_QUEUE, IFF_DETACH_QUEUE, TapQueue,
                                        tap_chardev_open)
from netstack.errors import KernelError

V1 = "02:00:00:00:00:02"
MT = "02:00:00:00:00:10"


def world(extra: str = "", kind: str = "macvtap",
          opts: str = "mode bridge") -> tuple[World, object]:
    w = World()
    run_script(w, "ip netns add u\n"
                  "ip netns exec u sysctl -qw net.ipv6.conf.all.disable_ipv6=1\n"
                  "ip netns exec u sysctl -qw net.ipv6.conf.default.disable_ipv6=1\n"
                  "ip -n u link add v0 type veth peer name v1\n"
                  f"ip -n u link set v1 address {V1}\n"
                  f"ip -n u link add link v0 name mt address {MT} type {kind} {opts}\n"
                  + extra +
                  "ip -n u link set v0 up\nip -n u link set v1 up\nip -n u link set mt up\n",
               stdout=io.StringIO(), stderr=io.StringIO())
    net = w.netns("u")
    w.run_until_idle()
    return w, net


def inject(w: World, net: object, frame: bytes) -> None:
    dev_queue_xmit(w.new_packet(frame), net.get("v1"))  # type: ignore[attr-defined]
    w.run_until_idle()


def drain(q: TapQueue) -> list[bytes]:
    out = []
    while (b := q.read()) is not None:
        out.append(b)
    return out


def test_macvtap_defaults_and_chardev() -> None:
    w, net = world()
    mt = net.get("mt")
    assert isinstance(mt, MacvtapDevice)
    assert mt.txqlen == 500 and mt.qdisc() == "pfifo_fast"
    with pytest.raises(KernelError) as e:
        tap_chardev_open(net, f"/dev/tap{net.get('v0').ifindex}")
    assert e.value.errno == errno.ENOENT
    q = tap_chardev_open(net, f"/dev/tap{mt.ifindex}")
    assert q.flags == 0x4000 | 0x1000 | 0x0002 and q.vnet_hdr_sz == 10
    assert q.ring_size == 500 and mt.numvtaps == 1 and mt.numqueues == 1
    assert q.get_iff() == ("mt", 0x5002)


def test_read_buffer_shorter_than_the_header_loses_the_packet() -> None:
    w, net = world()
    q = net.get("mt").tap_open()
    inject(w, net, udp_frame(MT, V1, 20))
    inject(w, net, udp_frame(MT, V1, 21))
    with pytest.raises(KernelError):
        q.read(5)
    got = q.read(30)
    assert got is not None and len(got) == 30  # truncated to the buffer
    assert q.read() is None


def test_multi_queue_flow_selection_and_detach() -> None:
    """tap_get_queue: by flow hash over the enabled queues; a detached queue gets
    nothing and the last enabled one takes its index (tap_disable_queue)."""
    w, net = world()
    mt = net.get("mt")
    qs = [mt.tap_open() for _ in range(3)]
    assert [q.queue_index for q in qs] == [0, 1, 2]
    for i in range(30):
        f = udp_frame(MT, V1, 20)
        f = f[:34] + (4000 + i).to_bytes(2, "big") + f[36:40] + b"\0\0" + f[42:]
        inject(w, net, f)
    counts = [len(drain(q)) for q in qs]
    assert sum(counts) == 30 and sum(1 for c in counts if c) >= 2
    same = [drain(q) for q in qs]
    for _ in range(5):
        inject(w, net, udp_frame(MT, V1, 20))  # one flow → one queue
    assert sorted(len(drain(q)) for q in qs) == [0, 0, 5]
    del same
    qs[0].set_queue(IFF_DETACH_QUEUE)
    assert qs[2].queue_index == 0 and mt.taps == [qs[2], qs[1]]
    for i in range(10):
        inject(w, net, udp_frame(MT, V1, 20 + i))
    assert drain(qs[0]) == [] and len(drain(qs[1])) + len(drain(qs[2])) == 10
    qs[0].set_queue(IFF_ATTACH_QUEUE)
    assert qs[0].queue_index == 2
    qs[1].close()
    assert mt.numqueues == 2 and [q.queue_index for q in mt.taps] == [0, 1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["attach", "detach", "close"])),
                max_size=25))
def test_queue_bookkeeping_invariant(steps: list[tuple[int, str]]) -> None:
    """Any attach/detach/close sequence keeps ``taps[i].queue_index == i``, the enabled
    queues exactly the ``taps`` array, and refuses what the kernel refuses (EINVAL)."""
    w, net = world()
    mt = net.get("mt")
    qs = [mt.tap_open() for _ in range(4)]
    for i, what in steps:
        q = qs[i]
        try:
            if what == "attach":
                q.set_queue(IFF_ATTACH_QUEUE)
            elif what == "detach":
                q.set_queue(IFF_DETACH_QUEUE)
            else:
                q.close()
        except KernelError as e:
            assert e.errno == errno.EINVAL
        assert all(t.queue_index == j for j, t in enumerate(mt.taps))
        assert {id(t) for t in mt.taps} == {id(t) for t in qs if t.enabled and not t.closed}
        assert mt.numqueues == sum(1 for t in qs if not t.closed)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([0x5002, 0x1002]))
def test_fuzz_writes_never_raise(data: bytes, flags: int) -> None:
    """Malformed writes return -EINVAL (counted as tx_dropped), never an exception."""
    w, net = _FUZZ
    mt = net.get("mt")
    q = mt.tap_open()
    q.set_iff(flags)
    before = mt.stats.tx_dropped
    r = q.write(data)
    q.close()
    assert r == len(data) or (r == -errno.EINVAL and mt.stats.tx_dropped == before + 1)


_FUZZ = world()


def test_tso_segmented_per_reader_offload_and_ring_drop_of_segments() -> None:
    """tap_handle_frame: a GSO frame for a reader without TSO is segmented; when the
    ring fills mid-list the rest is freed without counting (as the kernel)."""
    w, net = world("ip -n u link add link v0 name m2 address 02:00:00:00:00:20 "
                   "type macvtap mode bridge\nip -n u link set m2 up\n"
                   "ip -n u link set m2 txqueuelen 2\n")
    a = net.get("mt").tap_open()
    b = net.get("m2").tap_open()
    b.set_offload(0)
    assert a.write(vh(1, 1, 54, 1000, 34, 16) + tcp_frame("02:00:00:00:00:20", MT, 3500)) > 0
    got = drain(b)
    assert [len(x) for x in got] == [10 + 1054, 10 + 1054]
    assert net.get("m2").stats.rx_dropped == 0
    b.set_offload(0x3)
    a.write(vh(1, 1, 54, 1000, 34, 16) + tcp_frame("02:00:00:00:00:20", MT, 3500))
    (one,) = drain(b)
    assert one[1] == 1 and int.from_bytes(one[4:6], "little") == 1000


def test_offload_errors_and_deleted_device() -> None:
    w, net = world()
    mt = net.get("mt")
    q = mt.tap_open()
    with pytest.raises(KernelError):
        q.set_offload(0x100)
    q.set_offload(0x1 | 0x20 | 0x40)
    assert mt.tap_features == frozenset({"tx-checksum-ip-generic"})
    run_script(w, "ip -n u link del mt", stdout=io.StringIO(), stderr=io.StringIO())
    for fn, arg in ((q.set_offload, 0), (q.get_iff, None), (q.set_queue, IFF_ATTACH_QUEUE)):
        with pytest.raises(KernelError):
            fn() if arg is None else fn(arg)
    assert q.write(vh() + udp_frame(V1, MT, 10)) == 10 + 52
    with pytest.raises(KernelError) as e:
        mt.tap_open()
    assert e.value.errno == errno.ENODEV


@pytest.mark.parametrize("mode", ["l2", "l3"])
def test_ipvtap_reader_gets_frames_for_its_address(mode: str) -> None:
    """ipvtap (drivers/net/ipvlan/ipvtap.c): the ipvlan demux by IP address hands the
    frame to the device, whose rx_handler queues it for the reader."""
    w, net = world("ip -n u addr add 10.0.0.2/24 dev mt\n", "ipvtap", f"mode {mode}")
    it = net.get("mt")
    assert isinstance(it, IpvtapDevice) and it.txqlen == 500
    q = it.tap_open()
    v0 = net.get("v0")
    inject(w, net, v0.address + mac(V1) + udp_frame(MT, V1, 30)[12:])
    got = drain(q)
    assert len(got) == 1 and got[0][10:16] == v0.address
    seen: list[bytes] = []
    net.add_rx_tap(net.get("v1"), lambda p: seen.append(bytes(p.buf[p.mac_header:p.tail])))
    assert q.write(vh() + udp_frame(V1, MT, 30)) == 10 + 72
    w.run_until_idle()
    if mode == "l2":  # ipvlan_xmit_mode_l2: another MAC → out through the master
        assert udp_frame(V1, MT, 30) in seen
    else:  # ipvlan_xmit_mode_l3: 10.0.0.2 is the slave's own address → back to it
        assert udp_frame(V1, MT, 30) not in seen
        assert [x[10:] for x in drain(q)] == [udp_frame(V1, MT, 30)]


def test_ipvtap_l3s_reader_gets_nothing() -> None:
    """l3s: the device switch happens in the IP layer, after rx_handlers: the frame goes
    up the stack of the ipvtap, never to the reader (as the kernel)."""
    w, net = world("ip -n u addr add 10.0.0.2/24 dev mt\n", "ipvtap", "mode l3s")
    q = net.get("mt").tap_open()
    v0 = net.get("v0")
    inject(w, net, v0.address + mac(V1) + udp_frame(MT, V1, 30)[12:])
    assert drain(q) == []


def test_ipvtap_cli_and_full_ring_counts() -> None:
    w, net = world("ip -n u addr add 10.0.0.2/24 dev mt\nip -n u link set mt txqlen 1\n",
                   "ipvtap", "mode l2")
    out = io.StringIO()
    run_script(w, "ip -n u -d link show mt", stdout=out, stderr=io.StringIO())
    assert "qlen 1" in out.getvalue() and "ipvtap  mode l2 bridge" in out.getvalue()
    q = net.get("mt").tap_open()
    v0 = net.get("v0")
    for _ in range(3):
        inject(w, net, v0.address + mac(V1) + udp_frame(MT, V1, 30)[12:])
    assert len(drain(q)) == 1
    assert net.get("mt").stats.rx_dropped == 2


def test_ipvtap_hwaddr_ioctls() -> None:
    """SIOCGIFHWADDR works; SIOCSIFHWADDR is EOPNOTSUPP (ipvlan has no
    ``ndo_set_mac_address``); both ENOLINK once the device is gone."""
    w, net = world("", "ipvtap", "mode l2")
    it = net.get("mt")
    q = it.tap_open()
    assert q.get_hwaddr() == ("mt", 1, net.get("v0").address)
    with pytest.raises(KernelError) as e:
        q.set_hwaddr(mac("02:00:00:00:00:44"))
    assert e.value.errno == errno.EOPNOTSUPP
    run_script(w, "ip -n u link del mt", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(KernelError) as e:
        q.get_hwaddr()
    assert e.value.errno == errno.ENOLINK
