# Odds and ends: address removal side effects, neighbour states, renames, IPv6 on MTU changes.
ip netns add m
ip -n m link add d0 index 3 address 02:00:00:00:80:01 type veth peer name e0 index 13 address 02:00:00:00:80:11
ip -n m link add d1 index 4 address 02:00:00:00:80:02 type veth peer name e1 index 14 address 02:00:00:00:80:12
ip netns exec m sysctl -q -w net.ipv6.conf.all.accept_dad=0
ip netns exec m sysctl -q -w net.ipv6.conf.d0.accept_dad=0 net.ipv6.conf.d1.accept_dad=0 net.ipv6.conf.e0.accept_dad=0 net.ipv6.conf.e1.accept_dad=0
ip netns exec m sysctl -q -w net.ipv6.conf.d1.keep_addr_on_down=1
ip -n m link set lo up
ip -n m link set d0 up
ip -n m link set e0 up
ip -n m link set d1 up
ip -n m link set e1 up
ip -n m addr add 10.1.0.1/24 dev d0
ip -n m addr add 10.1.0.2/24 dev d0
ip -n m addr add 10.1.0.3/24 dev d0
ip -n m addr add 10.2.0.1/24 dev d0 scope link
ip -n m addr add 10.3.0.1/8 broadcast 10.255.255.254 dev d0 label d0:b
ip -n m route add 10.50.0.0/16 via 10.1.0.254 src 10.1.0.2
ip -n m route add 10.51.0.0/16 dev d0 src 10.1.0.3 proto 99 tos 0x10
ip -n m route add 10.52.0.0/16 via 10.2.0.254 table 7
ip -n m addr del 10.1.0.3/24 dev d0
ip -n m addr del 10.1.0.1/24 dev d0
ip -n m addr add 2001:db8:d1::1/64 dev d1
ip -n m addr add 2001:db8:d0::1/64 dev d0
ip -n m -6 route add 2001:db8:99::/64 via 2001:db8:d1::fe
ip -n m neigh add 10.1.0.20 lladdr 02:00:00:00:00:20 dev d0 nud stale
ip -n m neigh add 10.1.0.21 lladdr 02:00:00:00:00:21 dev d0 nud noarp
ip -n m neigh add 10.1.0.22 lladdr 02:00:00:00:00:22 dev d0 nud reachable
ip -n m neigh add proxy 10.1.0.99 dev d0
ip -n m -6 neigh add 2001:db8:d0::5 lladdr 02:00:00:00:00:05 dev d0 nud stale router
ip -n m link set d1 down
ip -n m link set d0 mtu 1200
ip -n m link set e1 down
ip -n m link set e1 name e1x
ip -n m link set e1x up
ip -n m -6 rule add not from 2001:db8::/32 iif d0 table 5 pref 100
ip -n m rule add from 10.1.0.0/24 iif lo oif d1 table 8
