#!/bin/bash
# Two hosts on a VLAN-unaware bridge, an nft bridge-family filter on the switch, and a
# router that masquerades the LAN behind its WAN address.
# Runs unchanged under bash on a real kernel (as root) and in netstack (examples/bridge-nat/README.md).
#
#   h1 eth0 10.10.0.1 ─┐
#                      ├─ sw: br0 (p1 p2 p0) ── r: lan 10.10.0.254 | wan 203.0.113.1 ── srv eth0 203.0.113.2
#   h2 eth0 10.10.0.2 ─┘
#
# No IPv6 anywhere (no MLD/RS/DAD on the wire), fixed MACs and ifindexes: the frames on
# the wire depend only on the injected traffic.
ip netns add h1
ip netns add h2
ip netns add sw
ip netns add r
ip netns add srv
ip netns exec h1 sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec h2 sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec sw sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec r sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec srv sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec r sysctl -q -w net.ipv4.ip_forward=1
ip netns exec r sysctl -q -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
ip netns exec srv sysctl -q -w net.ipv4.icmp_ratemask=0
ip netns exec h1 sysctl -q -w net.ipv4.icmp_ratemask=0

# The switch: a bridge with STP off (ports forward at once) and three ports.
ip -n sw link add br0 index 10 address 02:00:00:00:0b:00 type bridge stp_state 0 mcast_snooping 0
ip -n sw link add p1 index 11 type veth peer name eth0 index 21 address 02:00:00:00:01:01 netns h1
ip -n sw link add p2 index 12 type veth peer name eth0 index 22 address 02:00:00:00:01:02 netns h2
ip -n sw link add p0 index 13 type veth peer name lan index 23 address 02:00:00:00:01:fe netns r
ip -n sw link set p1 address 02:00:00:00:0b:01 master br0
ip -n sw link set p2 address 02:00:00:00:0b:02 master br0
ip -n sw link set p0 address 02:00:00:00:0b:03 master br0
ip -n r link add wan index 14 address 02:00:00:00:02:fe type veth peer name eth0 index 24 address 02:00:00:00:02:02 netns srv

ip -n h1 addr add 10.10.0.1/24 dev eth0
ip -n h2 addr add 10.10.0.2/24 dev eth0
ip -n r addr add 10.10.0.254/24 dev lan
ip -n r addr add 203.0.113.1/24 dev wan
ip -n srv addr add 203.0.113.2/24 dev eth0

# Bridge-family filter on the switch: h2 may not reach h1's UDP port 7 (echo) service.
ip netns exec sw nft add table bridge filter
ip netns exec sw nft add chain bridge filter forward '{ type filter hook forward priority 0; policy accept; }'
ip netns exec sw nft add rule bridge filter forward ether saddr 02:00:00:00:01:02 ip daddr 10.10.0.1 udp dport 7 counter drop

# The router hides the LAN behind 203.0.113.1.
ip netns exec r nft add table ip nat
ip netns exec r nft add chain ip nat postrouting '{ type nat hook postrouting priority srcnat; policy accept; }'
ip netns exec r nft add rule ip nat postrouting ip saddr 10.10.0.0/24 oifname wan counter masquerade

ip -n sw link set br0 up
ip -n sw link set p1 up
ip -n sw link set p2 up
ip -n sw link set p0 up
ip -n h1 link set lo up
ip -n h1 link set eth0 up
ip -n h2 link set lo up
ip -n h2 link set eth0 up
ip -n r link set lo up
ip -n r link set lan up
ip -n r link set wan up
ip -n srv link set lo up
ip -n srv link set eth0 up

ip -n h1 route add default via 10.10.0.254
ip -n h2 route add default via 10.10.0.254
