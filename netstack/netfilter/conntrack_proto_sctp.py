"""SCTP connection tracking (net/netfilter/nf_conntrack_proto_sctp.c, Linux 6.x table).

The state follows the chunks of each packet through ``sctp_conntracks`` (copied from the
kernel: the version without HEARTBEAT_ACKED, where an INIT leaves the entry CLOSED and the
INIT_ACK moves it to COOKIE_WAIT).  Chunks other than the eleven control chunks (DATA,
SACK …) do not change the state.  Entering ESTABLISHED sets ASSURED.  ``do_basic_checks``
rejects packets whose chunk list is malformed or in which INIT/INIT_ACK/SHUTDOWN_COMPLETE
is not the only chunk.  Verification-tag checks are not modelled: packets with a wrong tag
are tracked as if their tag were right.
"""
from __future__ import annotations

from dataclasses import dataclass

NONE, CLOSED, COOKIE_WAIT, COOKIE_ECHOED, ESTABLISHED, SHUTDOWN_SENT, SHUTDOWN_RECD, \
    SHUTDOWN_ACK_SENT, HEARTBEAT_SENT = range(9)
SCTP_CONNTRACK_MAX = 9
STATE_NAMES = ("NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED",
               "SHUTDOWN_SENT", "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT")
#: sysctl suffix of each state's timeout (NONE has none: 0 s).
TIMEOUT_NAMES = ("", "closed", "cookie_wait", "cookie_echoed", "established", "shutdown_sent",
                 "shutdown_recd", "shutdown_ack_sent", "heartbeat_sent")

sNO, sCL, sCW, sCE, sES, sSS, sSR, sSA, sHS = range(9)
sIV = SCTP_CONNTRACK_MAX

SCTP_CONNTRACKS = (
    (  # ORIGINAL
        (sCL, sCL, sCW, sCE, sES, sSS, sSR, sSA, sCW),  # init
        (sCL, sCL, sCW, sCE, sES, sSS, sSR, sSA, sCL),  # init_ack
        (sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL),  # abort
        (sCL, sCL, sCW, sCE, sSS, sSS, sSR, sSA, sCL),  # shutdown
        (sSA, sCL, sCW, sCE, sES, sSA, sSA, sSA, sSA),  # shutdown_ack
        (sCL, sCL, sCW, sCE, sES, sSS, sSR, sSA, sCL),  # error
        (sCL, sCL, sCE, sCE, sES, sSS, sSR, sSA, sCL),  # cookie_echo
        (sCL, sCL, sCW, sCE, sES, sSS, sSR, sSA, sCL),  # cookie_ack
        (sCL, sCL, sCW, sCE, sES, sSS, sSR, sCL, sCL),  # shutdown_comp
        (sHS, sCL, sCW, sCE, sES, sSS, sSR, sSA, sHS),  # heartbeat
        (sCL, sCL, sCW, sCE, sES, sSS, sSR, sSA, sHS),  # heartbeat_ack
    ),
    (  # REPLY
        (sIV, sCL, sCW, sCE, sES, sSS, sSR, sSA, sIV),  # init
        (sIV, sCW, sCW, sCE, sES, sSS, sSR, sSA, sIV),  # init_ack
        (sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sIV),  # abort
        (sIV, sCL, sCW, sCE, sSR, sSS, sSR, sSA, sIV),  # shutdown
        (sIV, sCL, sCW, sCE, sES, sSA, sSA, sSA, sIV),  # shutdown_ack
        (sIV, sCL, sCW, sCL, sES, sSS, sSR, sSA, sIV),  # error
        (sIV, sCL, sCW, sCE, sES, sSS, sSR, sSA, sIV),  # cookie_echo
        (sIV, sCL, sCW, sES, sES, sSS, sSR, sSA, sIV),  # cookie_ack
        (sIV, sCL, sCW, sCE, sES, sSS, sSR, sCL, sIV),  # shutdown_comp
        (sIV, sCL, sCW, sCE, sES, sSS, sSR, sSA, sHS),  # heartbeat
        (sIV, sCL, sCW, sCE, sES, sSS, sSR, sSA, sES),  # heartbeat_ack
    ),
)

#: chunk type -> table row (``sctp_cid_to_index``); others (DATA, SACK …) are skipped.
CID_INDEX = {1: 0, 2: 1, 6: 2, 7: 3, 8: 4, 9: 5, 10: 6, 11: 7, 14: 8, 4: 9, 5: 10}
_ALONE = frozenset((1, 2, 14))


@dataclass(slots=True)
class SctpCt:
    """``struct ip_ct_sctp`` (state and the last direction)."""

    state: int = NONE
    last_dir: int = 0


def _chunks(buf: bytes | bytearray, off: int, l4len: int) -> list[int] | None:
    """Chunk types of the packet, or None when ``do_basic_checks`` fails."""
    if l4len < 12:
        return None
    types: list[int] = []
    o, end = off + 12, off + l4len
    while o + 4 <= end:
        ctype = buf[o]
        clen = int.from_bytes(buf[o + 2:o + 4], "big")
        if clen < 4:
            return None
        if ctype in _ALONE and types:
            return None
        types.append(ctype)
        o += (clen + 3) & ~3
    if not types or (len(types) > 1 and types[0] in _ALONE):
        return None
    return types


def sctp_new(buf: bytes | bytearray, off: int, l4len: int) -> SctpCt | None:
    """``sctp_new``: an empty state for a valid first packet, None when invalid."""
    types = _chunks(buf, off, l4len)
    if types is None:
        return None
    for c in types:
        idx = CID_INDEX.get(c)
        if idx is not None and SCTP_CONNTRACKS[0][idx][NONE] == sIV:
            return None
    return SctpCt()


def sctp_packet(st: SctpCt, direction: int, buf: bytes | bytearray, off: int,
                l4len: int) -> tuple[int, str, bool]:
    """``nf_conntrack_sctp_packet``: (1 or -1 for invalid, timeout sysctl suffix,
    became ESTABLISHED)."""
    types = _chunks(buf, off, l4len)
    if types is None:
        return -1, "", False
    assured = False
    for c in types:
        idx = CID_INDEX.get(c)
        if idx is None:
            continue
        old = st.state
        new = SCTP_CONNTRACKS[direction][idx][old]
        if new == sIV:
            return -1, "", False
        st.state = new
        st.last_dir = direction
        if old != new and new == ESTABLISHED:
            assured = True
    name = TIMEOUT_NAMES[st.state]
    return 1, name, assured
