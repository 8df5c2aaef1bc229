# Route types and metrics (net/ipv4/fib_semantics.c, fib_trie.c).
ip netns add t
ip -n t link add d0 index 3 address 02:00:00:00:30:01 type veth peer name e0 index 13 address 02:00:00:00:30:11
ip -n t link set lo up
ip -n t link set d0 up
ip -n t link set e0 up
ip -n t addr add 192.0.2.1/24 dev d0
ip -n t route add blackhole 10.1.0.0/16
ip -n t route add unreachable 10.2.0.0/16 metric 20
ip -n t route add prohibit 10.3.0.0/16 table 50
ip -n t route add throw 10.4.0.0/16 table 50
ip -n t route add 10.5.0.0/16 via 192.0.2.254 mtu 1400 metric 7
ip -n t route add 10.6.0.0/16 via 192.0.2.254 advmss 1300 hoplimit 9 proto static
ip -n t route add 10.7.0.0/16 dev d0 scope link src 192.0.2.1
ip -n t route add 10.8.0.0/16 via 192.0.2.253 metric 5
ip -n t route append 10.8.0.0/16 via 192.0.2.252 metric 5
ip -n t route replace 10.9.0.0/16 via 192.0.2.251 mtu lock 1300
ip -n t route add local 10.10.0.1 dev d0
ip -n t route add broadcast 10.11.0.255 dev d0
ip -n t route add unicast 10.12.0.0/16 via 192.0.2.250 dev d0 onlink
ip -n t route add 10.13.0.0/16 nexthop via 192.0.2.249 weight 2 nexthop via 192.0.2.248
ip -n t -6 route add blackhole 2001:db8:1::/48
ip -n t -6 route add unreachable 2001:db8:2::/48 metric 30
ip -n t -6 route add prohibit 2001:db8:3::/48 table 50
ip -n t route del 10.8.0.0/16 via 192.0.2.253
