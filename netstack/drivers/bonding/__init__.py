"""Bonding (drivers/net/bonding): the device, its options, hash policies, 802.3ad,
tlb/alb and the /proc status file.  See docs/bonding.md."""
