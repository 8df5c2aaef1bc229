# IPv4 secondaries and promotion (net/ipv4/devinet.c __inet_del_ifa).
ip netns add s
ip -n s link add d0 index 7 address 02:00:00:00:20:01 type veth peer name e0 index 17 address 02:00:00:00:20:11
ip -n s link set lo up
ip -n s link set d0 up
ip -n s link set e0 up
ip netns exec s sysctl -q -w net.ipv4.conf.d0.promote_secondaries=1
ip -n s addr add 10.1.0.1/24 dev d0
ip -n s addr add 10.1.0.2/24 dev d0
ip -n s addr add 10.1.0.3/24 dev d0 label d0:x
ip -n s addr add 10.1.0.4/16 dev d0
ip -n s addr add 10.2.0.1/24 brd + dev d0
ip -n s addr add 10.2.0.9/24 dev d0
ip -n s addr add 10.3.0.1/32 dev d0
ip -n s addr add 10.4.0.1 peer 10.4.0.2 dev d0
ip -n s addr add 10.5.0.1/24 dev d0 metric 50
ip -n s addr add 10.6.0.1/24 dev d0 noprefixroute
ip -n s addr del 10.1.0.1/24 dev d0
ip -n s addr del 10.2.0.1/24 dev d0
ip -n s link add d1 index 8 address 02:00:00:00:20:02 type veth peer name e1 index 18 address 02:00:00:00:20:12
ip -n s link set d1 up
ip -n s link set e1 up
ip -n s addr add 10.7.0.1/24 dev d1
ip -n s addr add 10.7.0.2/24 dev d1
ip -n s addr add 10.7.0.3/24 dev d1
ip -n s addr del 10.7.0.1/24 dev d1
