#!/bin/bash
# Two containers on macvlan (bridge mode) over their host's uplink, behind a router with a
# stateful nftables forward filter: replies and related ICMP errors pass by conntrack
# state, a few services are open from the LAN, telnet is refused with a TCP reset, port
# 6000 with an ICMP admin-prohibited, everything else is dropped and counted.  The
# containers reach each other inside the host (macvlan bridge mode), never via the router.
# Runs unchanged under bash on a real kernel (as root) and in netstack (examples/macvlan-firewall/README.md).
#
#   c1 eth0 10.20.0.1 (macvlan) ┐
#                               ├─ host: uplink ── lan 10.20.0.254  r  dmz 10.30.0.254 ── eth0 10.30.0.2 srv
#   c2 eth0 10.20.0.2 (macvlan) ┘
#
# No IPv6 anywhere, fixed MACs and ifindexes.
ip netns add c1
ip netns add c2
ip netns add host
ip netns add r
ip netns add srv
ip netns exec c1 sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec c2 sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec host sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec r sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec srv sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec r sysctl -q -w net.ipv4.ip_forward=1
ip netns exec r sysctl -q -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
ip netns exec c1 sysctl -q -w net.ipv4.icmp_ratemask=0
ip netns exec c2 sysctl -q -w net.ipv4.icmp_ratemask=0
ip netns exec r sysctl -q -w net.ipv4.icmp_ratemask=0
ip netns exec srv sysctl -q -w net.ipv4.icmp_ratemask=0

ip -n r link add lan index 11 address 02:00:00:00:01:fe type veth peer name uplink index 21 address 02:00:00:00:01:00 netns host
# The containers' interfaces: macvlans in bridge mode on the host's uplink, moved into
# the containers and renamed eth0 there.
ip -n host link add mv1 index 31 link uplink address 02:00:00:00:01:01 type macvlan mode bridge
ip -n host link add mv2 index 32 link uplink address 02:00:00:00:01:02 type macvlan mode bridge
ip -n host link set mv1 netns c1
ip -n host link set mv2 netns c2
ip -n c1 link set mv1 name eth0
ip -n c2 link set mv2 name eth0
ip -n r link add dmz index 12 address 02:00:00:00:02:fe type veth peer name eth0 index 22 address 02:00:00:00:02:02 netns srv
ip -n c1 addr add 10.20.0.1/24 dev eth0
ip -n c2 addr add 10.20.0.2/24 dev eth0
ip -n r addr add 10.20.0.254/24 dev lan
ip -n r addr add 10.30.0.254/24 dev dmz
ip -n srv addr add 10.30.0.2/24 dev eth0

ip -n host link set uplink up
ip -n c1 link set lo up
ip -n c1 link set eth0 up
ip -n c2 link set lo up
ip -n c2 link set eth0 up
ip -n r link set lo up
ip -n r link set lan up
ip -n r link set dmz up
ip -n srv link set lo up
ip -n srv link set eth0 up
ip -n c1 route add default via 10.20.0.254
ip -n c2 route add default via 10.20.0.254
ip -n srv route add default via 10.30.0.254

# The filter (inet family: one table for IPv4 and IPv6).
ip netns exec r nft add table inet filter
ip netns exec r nft add chain inet filter forward '{ type filter hook forward priority 0; policy drop; }'
ip netns exec r nft add rule inet filter forward ct state established,related counter accept
ip netns exec r nft add rule inet filter forward iifname lan udp dport 5000 counter accept
ip netns exec r nft add rule inet filter forward iifname lan icmp type echo-request counter accept
ip netns exec r nft add rule inet filter forward iifname lan tcp dport 23 counter reject with tcp reset
ip netns exec r nft add rule inet filter forward iifname lan udp dport 6000 counter reject with icmp type admin-prohibited
ip netns exec r nft add rule inet filter forward counter drop
