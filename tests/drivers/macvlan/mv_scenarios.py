"""Macvlan topologies for the differential tests (plain bash, run on both sides).

``mvs`` holds the lower device ``va`` and the macvlans; ``mvh`` holds the outer veth end
``vh`` the harness sends from and captures on (the "wire" and the adjacent switch that
hairpins VEPA traffic).  IPv6 is off and nothing has an address, so the only frames are
the injected ones and what the macvlan port makes of them.
"""
from __future__ import annotations

MAC_VA = "02:00:00:00:0a:01"
MAC_VH = "02:00:00:00:0b:01"
MAC_SRCOK = "02:00:00:00:0b:02"      # allowed source of the source-mode macvlan
MAC = {f"m{i}": f"02:00:00:00:00:1{i}" for i in range(1, 7)}

BASE = """ip netns add mvh
ip netns add mvs
ip netns exec mvh sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec mvh sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec mvs sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec mvs sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip -n mvs link add va index 11 address 02:00:00:00:0a:01 type veth peer name vh index 21 address 02:00:00:00:0b:01 netns mvh
"""

MODES = BASE + """ip -n mvs link add link va name m1 index 31 address 02:00:00:00:00:11 type macvlan mode bridge
ip -n mvs link add link va name m2 index 32 address 02:00:00:00:00:12 type macvlan mode bridge
ip -n mvs link add link va name m3 index 33 address 02:00:00:00:00:13 type macvlan mode vepa
ip -n mvs link add link va name m4 index 34 address 02:00:00:00:00:14 type macvlan mode vepa
ip -n mvs link add link va name m5 index 35 address 02:00:00:00:00:15 type macvlan mode private
ip -n mvs link add link va name m6 index 36 address 02:00:00:00:00:16 type macvlan mode source macaddr add 02:00:00:00:0b:02
ip -n mvh link set vh up
ip -n mvs link set va up
ip -n mvs link set m1 up
ip -n mvs link set m2 up
ip -n mvs link set m3 up
ip -n mvs link set m4 up
ip -n mvs link set m5 up
ip -n mvs link set m6 up
"""

PASSTHRU = BASE + """ip -n mvs link add link va name mp index 31 type macvlan mode passthru
ip -n mvh link set vh up
ip -n mvs link set va up
ip -n mvs link set mp up
"""

PROMISC = BASE + """ip -n mvs link add link va name m1 index 31 address 02:00:00:00:00:11 promisc on type macvlan mode bridge
ip -n mvs link add link va name m2 index 32 address 02:00:00:00:00:12 type macvlan mode source macaddr set 02:00:00:00:00:03 02:00:00:00:00:02 02:00:00:00:00:01 02:00:00:00:07:01
ip -n mvs link add link va name m4 index 34 address 02:00:00:00:00:14 allmulticast on type macvlan mode private bcqueuelen 77
ip -n mvs link add link m1 name m5 index 35 address 02:00:00:00:00:15 type macvlan mode source nodst
ip -n mvs link set m2 type macvlan macaddr del 02:00:00:00:00:02
ip -n mvs link set m5 type macvlan macaddr add 02:00:00:00:00:01
ip -n mvs link set va up
ip -n mvs link set m1 up
ip -n mvs link set m4 up
ip -n mvs link set m5 up
ip -n mvs link set m4 promisc on
ip -n mvs link set m1 address 02:00:00:00:00:21
ip -n mvs link set m1 allmulticast on
ip -n mvs link set m1 allmulticast off
"""

NOBCQUEUE = BASE + """ip -n mvs link add link va name m1 index 31 address 02:00:00:00:00:11 type macvlan mode bridge bcqueuelen 0
ip -n mvs link add link va name m2 index 32 address 02:00:00:00:00:12 type macvlan mode vepa bcqueuelen 0
ip -n mvh link set vh up
ip -n mvs link set va up
ip -n mvs link set m1 up
ip -n mvs link set m2 up
"""

# Two bridge-mode macvlans in their own namespaces with IPv4 addresses: the stacks talk
# through the port (ARP, echo), the wire sees what leaves it.
STACKS = BASE + """ip netns add mva
ip netns add mvb
ip netns exec mva sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec mva sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec mvb sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec mvb sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip -n mvs link add link va name m1 index 31 address 02:00:00:00:00:11 type macvlan mode bridge
ip -n mvs link add link va name m2 index 32 address 02:00:00:00:00:12 type macvlan mode bridge
ip -n mvs link set m1 netns mva
ip -n mvs link set m2 netns mvb
ip -n mvh link set vh up
ip -n mvs link set va up
ip -n mva link set m1 up
ip -n mvb link set m2 up
ip -n mva addr add 10.7.0.1/24 dev m1
ip -n mvb addr add 10.7.0.2/24 dev m2
"""
