# h1's entry on the router is STALE (not permanent), so an ARP may update it.
ip -n r neigh replace 10.0.1.1 lladdr 02:00:00:00:01:01 dev v1r nud stale
