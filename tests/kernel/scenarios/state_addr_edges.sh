# Address edge cases: replace, /30 /31, explicit broadcast, addresses on lo, a v4-mapped
# IPv6 address, addrgenmode none, MAC change while up, deleting a link-local, IPv6 MTU floor.
ip netns add e
ip -n e link add d0 index 3 address 02:00:00:00:b0:01 type veth peer name e0 index 13 address 02:00:00:00:b0:11
ip -n e link add d1 index 4 address 02:00:00:00:b0:02 type veth peer name e1 index 14 address 02:00:00:00:b0:12
ip netns exec e sysctl -q -w net.ipv6.conf.all.accept_dad=0
ip netns exec e sysctl -q -w net.ipv6.conf.d0.accept_dad=0 net.ipv6.conf.d1.accept_dad=0 net.ipv6.conf.e0.accept_dad=0 net.ipv6.conf.e1.accept_dad=0
ip -n e link set lo up
ip -n e addr add 10.1.0.1/24 dev d0
ip -n e addr add 2001:db8:1::1/64 dev d0
ip -n e link set d0 up
ip -n e link set e0 up
ip -n e addr replace 10.1.0.1/24 dev d0 label d0:r
ip -n e addr add 10.4.0.1/30 dev d0
ip -n e addr add 10.5.0.1/31 dev d0
ip -n e addr add 10.6.0.1/24 dev d0 broadcast 10.6.0.77
ip -n e addr add 127.0.0.5/8 dev lo
ip -n e addr add 192.0.2.1/24 dev lo
ip -n e -6 addr add 2001:db8:2::1/64 dev lo
ip -n e -6 addr add ::ffff:1.2.3.4/128 dev d0 nodad
ip -n e link set d1 addrgenmode none
ip -n e link set d1 up
ip -n e link set e1 up
ip -n e link set d0 address 02:00:00:00:b0:99
ip -n e -6 addr del fe80::ff:fe00:b011/64 dev e0
ip -n e link set e1 mtu 1280
ip -n e -6 route add 2001:db8:9::/64 via fe80::1 dev e1 metric 3
ip -n e route add 10.9.0.0/16 via 10.4.0.2
ip -n e route add 10.10.0.0/16 via 10.5.0.0
ip -n e addr del 10.4.0.1/30 dev d0
ip -n e addr change 10.7.0.1/24 dev d0
ip -n e addr replace 10.6.0.1/24 dev d0 metric 12
ip -n e -6 addr replace 2001:db8:5::1/64 dev d0 nodad
ip -n e -6 addr change 2001:db8:5::1/64 dev d0 nodad metric 9
ip -n e -6 addr change 2001:db8:5::1/64 dev d0 nodad noprefixroute
ip -n e -6 addr change 2001:db8:6::1/64 dev d0 nodad
ip -n e -6 addr replace 2001:db8:6::1/64 dev d0 nodad metric 33
