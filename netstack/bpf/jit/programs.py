"""Reference XDP programs (bpf_conformance assembler syntax) shared by the JIT tests and bench/bpf.py.

Each is what ``clang -O2`` makes of the usual parser code: bounds checks
against ``data_end`` before every header read, as the kernel verifier
demands, so the same text loads into the kernel for the benchmark.
"""
from __future__ import annotations

import struct

#: Ethernet -> IPv4 (IHL honoured) -> UDP; XDP_DROP for UDP to port 53, XDP_PASS otherwise,
#: XDP_ABORTED for a frame too short for the headers it claims.
PARSER_UDP = """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r0, 2
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, short
ldxh %r5, [%r2+12]
jne %r5, 0x0008, exit
mov %r4, %r2
add %r4, 34
jgt %r4, %r3, short
ldxb %r5, [%r2+14]
mov %r6, %r5
and %r6, 0xf0
jne %r6, 0x40, exit
and %r5, 0x0f
lsh %r5, 2
jlt %r5, 20, short
ldxb %r6, [%r2+23]
jne %r6, 17, exit
mov %r4, %r2
add %r4, 14
add %r4, %r5
mov %r7, %r4
add %r7, 8
jgt %r7, %r3, short
ldxh %r6, [%r4+2]
be16 %r6
jne %r6, 53, exit
mov %r0, 1
exit
short:
mov %r0, 0
exit
"""

#: PARSER_UDP plus a per-protocol packet counter in an array map (``{counters}`` is its fd):
#: one ``bpf_map_lookup_elem`` and an atomic add per IPv4 frame.
PARSER_COUNT = """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, 34
jgt %r4, %r3, pass
ldxh %r5, [%r2+12]
jne %r5, 0x0008, pass
ldxb %r5, [%r2+23]
stxw [%r10-4], %r5
mov %r2, %r10
add %r2, -4
lddw %r1, {counters}, 1
call 1
jeq %r0, 0, pass
mov %r1, 1
lock add [%r0+0], %r1
pass:
mov %r0, 2
exit
"""


def udp_frame(dport: int = 53, payload: bytes = b"", size: int = 64) -> bytes:
    """An Ethernet/IPv4/UDP frame padded to ``size`` bytes (checksums left zero: parsers ignore them)."""
    udp_len = 8 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 1, 0, 64, 17, 0, bytes([10, 0, 0, 1]),
                     bytes([10, 0, 0, 2]))
    udp = struct.pack("!HHHH", 4000, dport, udp_len, 0) + payload
    eth = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    return (eth + ip + udp).ljust(size, b"\0")
