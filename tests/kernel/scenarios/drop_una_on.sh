ip netns exec r sysctl -w net.ipv6.conf.all.drop_unsolicited_na=1
ip netns exec r sysctl -w net.ipv6.conf.v1r.drop_unsolicited_na=1
