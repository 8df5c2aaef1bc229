# Host "h" (the DUT) behind gateway 10.0.7.254, played by the harness from
# namespace "o" (its end of the veth is out0).  Both the old and the new gateway
# have permanent neighbour entries, so an accepted redirect creates the route
# exception at once (__ip_do_redirect needs a NUD_VALID neighbour for the new
# gateway) and `ip route get` shows it.  accept_redirects, shared_media and
# secure_redirects keep their namespace defaults (1, 1, 1).
#
#   h:eth0 02:00:00:00:70:01 (10.0.7.1/24) --- out0 02:00:00:00:70:fe :o
ip netns add h
ip netns add o
ip netns exec h sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec o sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n h link add eth0 index 2 address 02:00:00:00:70:01 type veth peer name out0 index 3 address 02:00:00:00:70:fe netns o
ip -n h addr add 10.0.7.1/24 dev eth0
ip -n h link set lo up
ip -n h link set eth0 up
ip -n o link set out0 up
ip -n h route add default via 10.0.7.254
ip -n h neigh add 10.0.7.254 lladdr 02:00:00:00:70:fe dev eth0 nud permanent
ip -n h neigh add 10.0.7.253 lladdr 02:00:00:00:70:fd dev eth0 nud permanent
