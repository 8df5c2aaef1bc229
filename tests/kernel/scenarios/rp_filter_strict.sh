# Strict reverse-path filtering (RFC 3704 strict mode) on the router.
ip netns exec r sysctl -w net.ipv4.conf.all.rp_filter=1
ip netns exec r sysctl -w net.ipv4.conf.v1r.rp_filter=1
