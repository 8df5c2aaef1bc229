"""netstack side of the tap/vnet_hdr differential (same setup text as tap_oracle.py)."""
from __future__ import annotations

import io

from netstack.cli.scenario import run_script
from netstack.core.world import World
from netstack.drivers.tun import TunDevice
from .tap_oracle import setup_text


def run_netstack(frames: list[bytes], tap1_offload: int, veth_features: str,
                 extra: str = "", proto: int = 0x0800,
                 writer: tuple[str, str] = ("r", "tap0")
                 ) -> tuple[list[int], list[bytes], list[bytes]]:
    """As ``tap_oracle.run_kernel``: write into tap0, return results, tap1's reads and
    the IPv4 frames vB receives."""
    world = World()
    r, h = "OFFnr", "OFFnh"
    text = setup_text(r, h) + extra.format(r=r, h=h)
    if veth_features:
        text += f"ip netns exec {r} ethtool -K vA {veth_features}\n"
    run_script(world, text, stdout=io.StringIO(), stderr=io.StringIO())
    nr = world.netns(r)
    nh = world.netns(h)
    tap0 = (nr if writer[0] == "r" else nh).get(writer[1])
    tap1 = nr.get("tap1")
    assert isinstance(tap0, TunDevice) and isinstance(tap1, TunDevice)
    tap0.attach()
    tap1.attach()
    tap1.set_offload(tap1_offload)
    got: list[bytes] = []
    vb = nh.get("vB")
    nh.add_rx_tap(vb, lambda p: got.append(bytes(p.buf[p.mac_header:p.tail]))
                  if p.protocol == proto else None)
    world.run_until_idle()
    while tap1.read() is not None:
        pass
    results = tap0.write_list(frames)
    world.run_until_idle()
    out1: list[bytes] = []
    while (b := tap1.read()) is not None:
        out1.append(b)
    return results, out1, got
