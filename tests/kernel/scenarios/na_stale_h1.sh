# h1's IPv6 entry on the router is STALE (not permanent), so an NA may update it.
ip -n r neigh replace 2001:db8:1::1 lladdr 02:00:00:00:01:01 dev v1r nud stale
