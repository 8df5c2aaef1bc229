# More control-plane corners: anycast on forwarding toggles, IPv4 ECMP, goto rules, flushes.
ip netns add c
ip -n c link add d0 index 3 address 02:00:00:00:90:01 type veth peer name e0 index 13 address 02:00:00:00:90:11
ip -n c link add d1 index 4 address 02:00:00:00:90:02 type veth peer name e1 index 14 address 02:00:00:00:90:12
ip netns exec c sysctl -q -w net.ipv6.conf.all.accept_dad=0
ip netns exec c sysctl -q -w net.ipv6.conf.d0.accept_dad=0 net.ipv6.conf.d1.accept_dad=0 net.ipv6.conf.e0.accept_dad=0 net.ipv6.conf.e1.accept_dad=0
ip -n c link set lo up
ip -n c link set d0 up
ip -n c link set e0 up
ip -n c link set d1 up
ip -n c link set e1 up
ip -n c addr add 2001:db8:a::1/64 dev d0
ip -n c addr add 2001:db8:b::1/64 dev d1 preferred_lft 0
ip -n c addr add 2001:db8:c::1/120 dev d1
ip netns exec c sysctl -q -w net.ipv6.conf.all.forwarding=1
ip -n c addr add 2001:db8:e::1/64 dev d0
ip netns exec c sysctl -q -w net.ipv6.conf.d1.forwarding=0
ip -n c addr add 10.1.0.1/24 dev d0
ip -n c addr add 10.2.0.1/24 dev d1
ip -n c addr add 127.0.0.2/8 dev lo
ip -n c addr add 10.9.9.9/32 dev lo
ip -n c route add default nexthop via 10.1.0.254 weight 3 nexthop via 10.2.0.254 weight 1
ip -n c route add 10.20.0.0/16 via 10.1.0.253 metric 10
ip -n c route add 10.20.0.0/16 via 10.2.0.253 metric 20
ip -n c route del 10.20.0.0/16 metric 10
ip -n c -6 route add 2001:db8:77::/64 via 2001:db8:a::fe src 2001:db8:a::1 proto static metric 5
ip -n c -6 route add 2001:db8:78::/64 dev d1 proto 42 table 30
ip -n c -6 route del 2001:db8:77::/64 dev d0
ip -n c rule add pref 10 goto 20
ip -n c rule add pref 11 goto 12
ip -n c rule add pref 12 table 12
ip -n c rule del pref 12
ip -n c addr flush dev d1
ip -n c -6 addr flush dev d1
