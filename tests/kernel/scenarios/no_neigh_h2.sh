# Forget h2's link-layer address so the router has to ARP for it.
ip -n r neigh del 10.0.2.1 dev v2r
