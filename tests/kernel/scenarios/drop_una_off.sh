ip netns exec r sysctl -w net.ipv6.conf.all.drop_unsolicited_na=0
ip netns exec r sysctl -w net.ipv6.conf.v1r.drop_unsolicited_na=0
