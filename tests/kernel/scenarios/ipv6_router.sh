# IPv6 router "r" between hosts "h1" and "h2" (played by the harness).
#
#   h1:v1h 02:00:00:00:01:01 --- v1r 02:00:00:00:01:fe  r  v2r 02:00:00:00:02:fe --- v2h 02:00:00:00:02:01 :h2
#      (2001:db8:1::1)             2001:db8:1::fe/64        2001:db8:2::fe/64           (2001:db8:2::1)
#
# v2r has MTU 1280 (the IPv6 minimum) to provoke Packet Too Big.  Determinism:
# no DAD (accept_dad=0 + nodad), no auto flow labels, no ICMPv6 rate limit,
# permanent neighbours.  IPv4 is left alone (no addresses: nothing is sent).
ip netns add h1
ip netns add h2
ip netns add r
ip netns exec h1 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h1 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec r sysctl -w net.ipv6.conf.all.forwarding=1
ip netns exec r sysctl -w net.ipv6.conf.all.accept_dad=0
ip netns exec r sysctl -w net.ipv6.conf.default.accept_dad=0
ip netns exec r sysctl -w net.ipv6.icmp.ratelimit=0
ip netns exec r sysctl -w net.ipv6.auto_flowlabels=0
# Explicit ifindexes: a veth whose ifindex equals its peer's gets its operstate
# from the *delayed* linkwatch path (up to 1 s late; IPv6 ignores the link
# until then).  Distinct indexes make the event urgent, hence immediate.
ip -n r link add v1r index 11 address 02:00:00:00:01:fe type veth peer name v1h index 21 address 02:00:00:00:01:01 netns h1
ip -n r link add v2r index 12 address 02:00:00:00:02:fe type veth peer name v2h index 22 address 02:00:00:00:02:01 netns h2
ip -n r link set v2r mtu 1280
ip -n h2 link set v2h mtu 1280
ip -n r addr add 2001:db8:1::fe/64 dev v1r nodad
ip -n r addr add 2001:db8:2::fe/64 dev v2r nodad
ip -n r neigh add 2001:db8:1::1 lladdr 02:00:00:00:01:01 dev v1r nud permanent
ip -n r neigh add 2001:db8:2::1 lladdr 02:00:00:00:02:01 dev v2r nud permanent
ip -n h1 link set v1h up
ip -n h2 link set v2h up
ip -n r link set v1r up
ip -n r link set v2r up
