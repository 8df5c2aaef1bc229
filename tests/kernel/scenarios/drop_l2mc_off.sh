ip netns exec r sysctl -w net.ipv4.conf.all.drop_unicast_in_l2_multicast=0
ip netns exec r sysctl -w net.ipv4.conf.v1r.drop_unicast_in_l2_multicast=0
