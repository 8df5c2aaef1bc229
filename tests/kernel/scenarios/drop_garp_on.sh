ip netns exec r sysctl -w net.ipv4.conf.all.drop_gratuitous_arp=1
ip netns exec r sysctl -w net.ipv4.conf.v1r.drop_gratuitous_arp=1
