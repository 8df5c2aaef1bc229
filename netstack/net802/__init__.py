"""IEEE 802.1 protocols beside the bridge/VLAN code (the kernel's net/802/): the MRP
applicant (:mod:`netstack.net802.mrp`) with its MVRP application for vlan devices
(:mod:`netstack.net802.mvrp`), and the GARP applicant plus the LLC SAP 0x42 demux of
net/802/stp.c (:mod:`netstack.net802.garp`) with its GVRP application
(:mod:`netstack.net802.gvrp`).  See docs/vlan.md."""
