# Loose reverse-path filtering (RFC 3704 loose mode) on the router.
ip netns exec r sysctl -w net.ipv4.conf.all.rp_filter=2
ip netns exec r sysctl -w net.ipv4.conf.v1r.rp_filter=2
