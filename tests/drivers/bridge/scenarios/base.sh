# Bridge br0 in "b" with ports p1..p3; the hosts h1..h3 (e1..e3) are played by the harness.
ip netns add h1
ip netns add h2
ip netns add h3
ip netns add b
ip netns exec b sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec b sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec h1 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h1 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec h3 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h3 sysctl -w net.ipv6.conf.default.disable_ipv6=1
# mcast_snooping 0: no 224.0.0.106 membership, so the bridge sends no IGMP reports
ip -n b link add br0 address 02:00:00:00:0b:00 type bridge mcast_snooping 0
ip -n b link add p1 index 11 address 02:00:00:00:0b:01 type veth peer name e1 index 21 address 02:00:00:00:01:01 netns h1
ip -n b link add p2 index 12 address 02:00:00:00:0b:02 type veth peer name e2 index 22 address 02:00:00:00:02:01 netns h2
ip -n b link add p3 index 13 address 02:00:00:00:0b:03 type veth peer name e3 index 23 address 02:00:00:00:03:01 netns h3
ip -n b link set p1 master br0
ip -n b link set p2 master br0
ip -n b link set p3 master br0
ip -n h1 link set e1 up
ip -n h2 link set e2 up
ip -n h3 link set e3 up
ip -n b link set p1 up
ip -n b link set p2 up
ip -n b link set p3 up
ip -n b link set br0 up
