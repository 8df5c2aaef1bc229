# Shrink the h2 link to MTU 1000 so 1400-byte datagrams need fragmenting.
ip -n r link set v2r mtu 1000
ip -n h2 link set v2h mtu 1000
