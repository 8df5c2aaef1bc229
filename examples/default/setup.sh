#!/bin/bash
# netstack's default scenario: two hosts and a router, IPv4 and IPv6.
# Runs unchanged under bash on a real kernel (as root) and in netstack:
#   bash examples/default/setup.sh            # real kernel
#   netstack run examples/default/setup.sh …  # netstack
#
#   h1 (10.0.1.1, 2001:db8:1::1) ── r (10.0.1.254 | 10.0.2.254) ── h2 (10.0.2.2, 2001:db8:2::2)

ip netns add h1
ip netns add r
ip netns add h2

# No DAD and no random flow labels: deterministic IPv6.  This comes before the links
# exist: a write to net.ipv6.conf.default.* only seeds devices created afterwards.
ip netns exec h1 sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip netns exec r sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip netns exec h2 sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip netns exec r sysctl -q -w net.ipv6.auto_flowlabels=0

# Fixed MAC addresses keep every run (and the kernel) byte-for-byte reproducible.
ip -n h1 link add eth0 address 02:00:00:00:01:01 type veth peer name r-h1 netns r address 02:00:00:00:01:fe
ip -n h2 link add eth0 address 02:00:00:00:02:02 type veth peer name r-h2 netns r address 02:00:00:00:02:fe

ip netns exec r sysctl -q -w net.ipv4.ip_forward=1
ip netns exec r sysctl -q -w net.ipv6.conf.all.forwarding=1
ip netns exec r sysctl -q -w net.ipv4.icmp_ratemask=0

ip -n h1 addr add 10.0.1.1/24 dev eth0
ip -n h1 addr add 2001:db8:1::1/64 dev eth0 nodad
ip -n r addr add 10.0.1.254/24 dev r-h1
ip -n r addr add 2001:db8:1::fe/64 dev r-h1 nodad
ip -n r addr add 10.0.2.254/24 dev r-h2
ip -n r addr add 2001:db8:2::fe/64 dev r-h2 nodad
ip -n h2 addr add 10.0.2.2/24 dev eth0
ip -n h2 addr add 2001:db8:2::2/64 dev eth0 nodad

ip -n h1 link set lo up
ip -n h1 link set eth0 up
ip -n r link set lo up
ip -n r link set r-h1 up
ip -n r link set r-h2 up
ip -n h2 link set lo up
ip -n h2 link set eth0 up

ip -n h1 route add default via 10.0.1.254
ip -n h1 -6 route add default via 2001:db8:1::fe
ip -n h2 route add default via 10.0.2.254
ip -n h2 -6 route add default via 2001:db8:2::fe
