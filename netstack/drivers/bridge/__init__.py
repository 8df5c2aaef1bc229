"""The Linux bridge (net/bridge/): device, ports, FDB, forwarding, STP, VLAN filtering.

``register(world)`` is not needed: a bridge is created by ``ip link add … type bridge``
(netstack/cli/iplink_bridge.py → :func:`br_device.br_dev_newlink`)."""
