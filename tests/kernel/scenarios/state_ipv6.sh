# IPv6 addresses and routes, fixed MACs so link-locals are deterministic.
ip netns add a
ip netns add b
ip netns exec a sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip netns exec b sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.default.router_solicitations=0
ip netns exec a sysctl -q -w net.ipv6.conf.all.forwarding=1
ip -n a link add va index 10 address 02:00:00:00:50:01 type veth peer name vb index 20 address 02:00:00:00:50:02 netns b
ip -n a link add dm index 11 address 02:00:00:00:50:03 type veth peer name em index 12 address 02:00:00:00:50:04
ip -n a link set lo up
ip -n a link set va up
ip -n a link set dm up
ip -n a link set em up
ip -n b link set lo up
ip -n b link set vb up
ip -n a addr add 2001:db8:1::1/64 dev va nodad
ip -n a addr add 2001:db8:1::2/64 dev va nodad
ip -n a addr add 2001:db8:9::1/128 dev dm nodad
ip -n a addr add 2001:db8:8::1/64 dev dm nodad noprefixroute
ip -n a addr add 2001:db8:7::1/64 dev dm nodad metric 77
ip -n a addr del 2001:db8:1::2/64 dev va
ip -n b addr add 2001:db8:1::b/64 dev vb nodad
ip -n b -6 route add default via 2001:db8:1::1
ip -n b -6 route add 2001:db8:5::/64 via fe80::ff:fe00:5001 dev vb metric 10
ip -n b -6 route append 2001:db8:5::/64 via 2001:db8:1::1 metric 10
ip -n b -6 route add 2001:db8:6::/64 dev vb metric 1 mtu 1400 pref high
ip -n b -6 route replace 2001:db8:6::/64 dev vb metric 1 mtu 1300
ip -n b -6 route add 2001:db8:4::/64 dev vb table 44
ip -n a -6 route add 2001:db8:3::/64 nexthop via 2001:db8:1::b dev va nexthop via fe80::ff:fe00:5002 dev va
ip -n a -6 route del 2001:db8:9::1/128 dev dm
ip -n a -6 neigh add 2001:db8:1::b lladdr 02:00:00:00:50:02 dev va
ip -n a -6 neigh add fe80::ff:fe00:5002 lladdr 02:00:00:00:50:02 dev va router
