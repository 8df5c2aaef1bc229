# Shown after the traffic of examples/vxlan-overlay/run.py.
echo "== hv1 bridge FDB (VM MACs learned on the tunnel port) =="
bridge -n hv1 fdb show br br0
echo "== hv1 VXLAN FDB (default remote, learned VTEP) =="
bridge -n hv1 fdb show dev vx0
echo "== hv1 vx0 counters =="
ip -n hv1 -s link show vx0
