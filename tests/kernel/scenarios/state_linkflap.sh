# Link down/up: routes through the device go, addresses stay, kernel routes return.
ip netns add f
ip -n f link add v0 index 4 address 02:00:00:00:40:01 type veth peer name v1 index 5 address 02:00:00:00:40:02
ip netns exec f sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip netns exec f sysctl -q -w net.ipv6.conf.v0.accept_dad=0 net.ipv6.conf.v1.accept_dad=0
ip -n f link set lo up
ip -n f link set v0 up
ip -n f link set v1 up
ip -n f addr add 10.1.0.1/24 dev v0
ip -n f addr add 10.2.0.1/24 dev v1
ip -n f addr add 2001:db8:a::1/64 dev v0 nodad
ip -n f route add 10.9.0.0/16 via 10.1.0.254
ip -n f route add 10.10.0.0/16 via 10.2.0.254 table 10
ip -n f -6 route add 2001:db8:b::/64 via 2001:db8:a::fe
ip -n f neigh add 10.1.0.7 lladdr 02:00:00:00:00:07 dev v0
ip -n f neigh add 10.2.0.8 lladdr 02:00:00:00:00:08 dev v1 nud permanent
ip -n f link set v1 down
ip -n f link set v0 mtu 1400
ip -n f link set v0 down
ip -n f link set v0 up
ip -n f link set v1 up
ip -n f link add d9 index 9 address 02:00:00:00:40:09 type veth peer name e9 index 19 address 02:00:00:00:40:19
ip -n f addr add 10.3.0.1/24 dev d9
