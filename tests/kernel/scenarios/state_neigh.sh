# Neighbour administration: add/replace/change/del in every NUD state, router flag,
# IPv4 and IPv6 proxy entries (dumped in pneigh hash-bucket order), flush by device.
ip netns add n
ip -n n link add d0 index 3 address 02:00:00:00:d0:01 type veth peer name e0 index 13 address 02:00:00:00:d0:11
ip netns exec n sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.d0.accept_dad=0 net.ipv6.conf.e0.accept_dad=0 net.ipv6.conf.e0.router_solicitations=0 net.ipv6.conf.d0.router_solicitations=0
ip -n n link set lo up
ip -n n link set d0 up
ip -n n link set e0 up
ip -n n addr add 10.1.0.1/24 dev d0
ip -n n addr add 2001:db8:1::1/64 dev d0 nodad
ip -n n neigh add 10.1.0.10 lladdr 02:00:00:00:00:10 dev d0
ip -n n neigh replace 10.1.0.10 lladdr 02:00:00:00:00:11 dev d0 nud reachable
ip -n n neigh add 10.1.0.11 lladdr 02:00:00:00:00:12 dev d0 nud stale
ip -n n neigh change 10.1.0.11 lladdr 02:00:00:00:00:13 dev d0
ip -n n neigh add 10.1.0.12 dev d0 nud incomplete
ip -n n neigh add 10.1.0.13 lladdr 02:00:00:00:00:14 dev d0 nud noarp
ip -n n neigh add 10.1.0.14 lladdr 02:00:00:00:00:15 dev d0 nud permanent
ip -n n neigh del 10.1.0.14 dev d0
ip -n n neigh add 10.1.0.15 lladdr 02:00:00:00:00:16 dev d0 nud delay
ip -n n neigh add 10.1.0.16 lladdr 02:00:00:00:00:17 dev d0 nud probe
ip -n n neigh add 10.1.0.17 lladdr 02:00:00:00:00:18 dev d0 nud failed
ip -n n -6 neigh add 2001:db8:1::10 lladdr 02:00:00:00:00:20 dev d0 router
ip -n n -6 neigh add 2001:db8:1::11 lladdr 02:00:00:00:00:21 dev d0 nud stale
ip -n n -6 neigh add proxy 2001:db8:1::99 dev d0
ip -n n neigh add proxy 10.1.0.99 dev d0
ip -n n neigh add proxy 10.1.0.98 dev e0
ip -n n neigh flush dev e0
ip -n n -6 neigh replace 2001:db8:1::11 lladdr 02:00:00:00:00:22 dev d0 nud permanent
