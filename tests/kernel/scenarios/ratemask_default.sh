# Restore the kernel's default ICMP rate mask (0x1818: dest unreachable,
# source quench, time exceeded, parameter problem are rate limited).
ip netns exec r sysctl -w net.ipv4.icmp_ratemask=6168
