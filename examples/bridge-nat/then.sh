# Shown after the traffic of examples/bridge-nat/run.py.
echo "== switch forwarding database =="
bridge -n sw fdb show br br0
echo "== switch filter (bridge family) =="
ip netns exec sw nft list table bridge filter
echo "== router NAT =="
ip netns exec r nft list table ip nat
echo "== router connections =="
ip netns exec r conntrack -L
