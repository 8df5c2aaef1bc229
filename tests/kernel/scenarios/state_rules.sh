# Policy routing: several tables, rules with every selector netstack models.
ip netns add p
ip -n p link add d0 index 5 address 02:00:00:00:10:01 type veth peer name e0 index 15 address 02:00:00:00:10:11
ip -n p link add d1 index 6 address 02:00:00:00:10:02 type veth peer name e1 index 16 address 02:00:00:00:10:12
ip -n p link set lo up
ip -n p link set d0 up
ip -n p link set d1 up
ip -n p link set e0 up
ip -n p link set e1 up
ip -n p addr add 192.0.2.1/24 dev d0
ip -n p addr add 198.51.100.1/24 dev d1
ip -n p route add default via 192.0.2.254 table 100
ip -n p route add 203.0.113.0/24 via 198.51.100.254 table 100
ip -n p route add default via 198.51.100.254 table 200
ip -n p route add blackhole 10.0.0.0/8 table 200
ip -n p rule add from 192.0.2.0/24 table 100
ip -n p rule add to 203.0.113.0/24 lookup 200 pref 1000
ip -n p rule add fwmark 7 table 200
ip -n p rule add fwmark 0x10/0xf0 table 100 pref 2000
ip -n p rule add iif d1 table 200 pref 3000
ip -n p rule add oif d0 table 100 pref 3001
ip -n p rule add from 10.9.0.0/16 blackhole pref 4000
ip -n p rule add from 10.8.0.0/16 unreachable pref 4001
ip -n p rule add from 10.7.0.0/16 prohibit pref 4002
ip -n p rule add to 10.6.0.0/16 goto 32766 pref 4003
ip -n p rule add from 10.5.0.0/16
ip -n p rule add not from 10.4.0.0/16 table main suppress_prefixlength 0 pref 5000
ip -n p rule add tos 0x10 table 100 pref 5001
ip -n p rule del pref 4001
ip -n p -6 rule add from 2001:db8:1::/48 table 100
ip -n p -6 rule add to 2001:db8:2::/48 table 200 pref 600
