# Shown after the traffic of examples/macvlan-firewall/run.py.
echo "== router filter counters =="
ip netns exec r nft list table inet filter
echo "== router connections =="
ip netns exec r conntrack -L
