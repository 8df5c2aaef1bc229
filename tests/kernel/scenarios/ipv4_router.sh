# IPv4 router "r" between two hosts "h1" and "h2" (played by the harness).
#
#   h1:v1h 02:00:00:00:01:01 --- v1r 02:00:00:00:01:fe  r  v2r 02:00:00:00:02:fe --- v2h 02:00:00:00:02:01 :h2
#          (10.0.1.1)               10.0.1.254/24            10.0.2.254/24              (10.0.2.1)
#
# Hosts carry no addresses and have IPv6 disabled; the router has IPv6 disabled
# too, so nothing but the injected traffic and its consequences is on the wire.
ip netns add h1
ip netns add h2
ip netns add r
ip netns exec h1 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h1 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec r sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec r sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec r sysctl -w net.ipv4.ip_forward=1
ip netns exec r sysctl -w net.ipv4.icmp_ratemask=0
ip netns exec r sysctl -w net.ipv4.conf.all.rp_filter=0
ip netns exec r sysctl -w net.ipv4.conf.default.rp_filter=0
# Explicit ifindexes: a veth whose ifindex equals its peer's gets its operstate
# from the *delayed* linkwatch path (up to 1 s late; IPv6 ignores the link
# until then).  Distinct indexes make the event urgent, hence immediate.
ip -n r link add v1r index 11 address 02:00:00:00:01:fe type veth peer name v1h index 21 address 02:00:00:00:01:01 netns h1
ip -n r link add v2r index 12 address 02:00:00:00:02:fe type veth peer name v2h index 22 address 02:00:00:00:02:01 netns h2
ip -n r addr add 10.0.1.254/24 dev v1r
ip -n r addr add 10.0.2.254/24 dev v2r
ip -n r neigh add 10.0.1.1 lladdr 02:00:00:00:01:01 dev v1r nud permanent
ip -n r neigh add 10.0.2.1 lladdr 02:00:00:00:02:01 dev v2r nud permanent
ip -n h1 link set v1h up
ip -n h2 link set v2h up
ip -n r link set v1r up
ip -n r link set v2r up
