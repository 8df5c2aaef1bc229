# Devices created before `default.accept_dad=0` keep accept_dad=1 (the kernel copies
# conf.default into a device only when the device is created; IPv6 has no
# devinet_copy_dflt_conf), so their link-local addresses run DAD and stay tentative,
# without a local route, for at least retrans_time (1 s) after the link comes up.
ip netns add d
ip -n d link add v0 index 3 address 02:00:00:00:a0:01 type veth peer name v1 index 4 address 02:00:00:00:a0:02
ip netns exec d sysctl -q -w net.ipv6.conf.default.accept_dad=0
ip -n d link add w0 index 5 address 02:00:00:00:a0:03 type veth peer name w1 index 6 address 02:00:00:00:a0:04
ip -n d link set v0 up
ip -n d link set v1 up
ip -n d link set w0 up
ip -n d link set w1 up
