#!/bin/bash
# A VXLAN overlay between two "hypervisors": each has a bridge joining its VM's veth and a
# VXLAN device (VNI 100) over the underlay link between them.
# Runs unchanged under bash on a real kernel (as root) and in netstack (examples/vxlan-overlay/README.md).
#
#   vm1 eth0 192.168.100.1 ── tap1 ┐ hv1            hv2 ┌ tap2 ── eth0 192.168.100.2 vm2
#                                  br0 ── vx0 ═ u1 10.0.0.1 ──── u2 10.0.0.2 ═ vx0 ── br0
#
# No IPv6 anywhere, fixed MACs and ifindexes.  The VMs' MTU leaves room for the 50 bytes
# of outer headers (Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8) inside the underlay's 1500.
ip netns add vm1
ip netns add vm2
ip netns add hv1
ip netns add hv2
ip netns exec vm1 sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec vm2 sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec hv1 sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec hv2 sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1

# The underlay.
ip -n hv1 link add u1 index 11 address 02:00:00:00:00:01 type veth peer name u2 index 21 address 02:00:00:00:00:02 netns hv2
ip -n hv1 addr add 10.0.0.1/24 dev u1
ip -n hv2 addr add 10.0.0.2/24 dev u2

# Hypervisor 1: bridge, VXLAN towards hv2, the VM's port.
ip -n hv1 link add br0 index 12 address 02:00:00:00:0b:01 type bridge stp_state 0 mcast_snooping 0
ip -n hv1 link add vx0 index 13 address 02:00:00:00:0c:01 type vxlan id 100 local 10.0.0.1 remote 10.0.0.2 dev u1 dstport 4789
ip -n hv1 link add tap1 index 14 address 02:00:00:00:0d:01 type veth peer name eth0 index 24 address 02:00:00:00:a0:01 netns vm1
ip -n hv1 link set vx0 master br0
ip -n hv1 link set tap1 master br0

# Hypervisor 2: the mirror image.
ip -n hv2 link add br0 index 12 address 02:00:00:00:0b:02 type bridge stp_state 0 mcast_snooping 0
ip -n hv2 link add vx0 index 13 address 02:00:00:00:0c:02 type vxlan id 100 local 10.0.0.2 remote 10.0.0.1 dev u2 dstport 4789
ip -n hv2 link add tap2 index 14 address 02:00:00:00:0d:02 type veth peer name eth0 index 24 address 02:00:00:00:a0:02 netns vm2
ip -n hv2 link set vx0 master br0
ip -n hv2 link set tap2 master br0

ip -n vm1 link set eth0 mtu 1450
ip -n vm2 link set eth0 mtu 1450
ip -n vm1 addr add 192.168.100.1/24 dev eth0
ip -n vm2 addr add 192.168.100.2/24 dev eth0

ip -n hv1 link set u1 up
ip -n hv2 link set u2 up
ip -n hv1 link set br0 up
ip -n hv2 link set br0 up
ip -n hv1 link set vx0 up
ip -n hv2 link set vx0 up
ip -n hv1 link set tap1 up
ip -n hv2 link set tap2 up
ip -n vm1 link set lo up
ip -n vm2 link set lo up
ip -n vm1 link set eth0 up
ip -n vm2 link set eth0 up
