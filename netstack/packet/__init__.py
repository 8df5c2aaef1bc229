"""Packet layer: skb, header codecs, checksums, hashes, flow dissector, pcap.

Codec modules (one per header, zero-copy ``XxxView.parse(buf, off)`` plus
``build_xxx(...)``): ethernet, vlan, arp, ipv4, ipv6, icmp, icmpv6, udp, tcp,
sctp.  Arithmetic: checksum, jhash, crc32c, siphash, toeplitz,
flow_dissector.  Parsers raise only :class:`netstack.packet.errors.ParseError`
whose ``reason`` is a kernel drop-reason name.  See docs/codecs.md.

Nothing is imported here on purpose: importing ``netstack.packet.skb`` must
not pull in every codec.
"""
