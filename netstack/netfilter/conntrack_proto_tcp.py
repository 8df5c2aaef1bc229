"""TCP connection tracking: state machine and window tracking.

net/netfilter/nf_conntrack_proto_tcp.c: ``tcp_conntracks`` (the transition table, copied
verbatim), ``tcp_in_window`` (the four window bounds of "Real Stateful TCP Packet Filtering
in IP Filter", RFC 793), ``tcp_error`` (short/malformed headers, bad checksum at
PRE_ROUTING, invalid flag combinations), ``tcp_new`` (SYN or, with ``tcp_loose``, a
mid-stream pickup) and ``nf_conntrack_tcp_packet`` (IGNORE handling, the reopen-from
TIME_WAIT rule, RST validation, ASSURED, retransmission and unacknowledged timeouts).
Sequence numbers use RFC 1982 serial arithmetic (``before``/``after``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

# States (enum tcp_conntrack).
NONE, SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE, \
    SYN_SENT2 = range(10)
TCP_CONNTRACK_MAX = 10
IGNORE = 11
RETRANS = 10   # timeout slot indices past the states
UNACK = 11

STATE_NAMES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
               "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2")

#: sysctl name of each timeout slot (net.netfilter.nf_conntrack_tcp_timeout_*).
TIMEOUT_SYSCTLS = ("", "syn_sent", "syn_recv", "established", "fin_wait", "close_wait",
                   "last_ack", "time_wait", "close", "syn_sent2", "max_retrans",
                   "unacknowledged")

# Packet index (enum tcp_bit_set).
SYN_SET, SYNACK_SET, FIN_SET, ACK_SET, RST_SET, NONE_SET = range(6)

# ip_ct_tcp_state.flags
IP_CT_TCP_FLAG_WINDOW_SCALE = 0x01
IP_CT_TCP_FLAG_SACK_PERM = 0x02
IP_CT_TCP_FLAG_CLOSE_INIT = 0x04
IP_CT_TCP_FLAG_BE_LIBERAL = 0x08
IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED = 0x10
IP_CT_TCP_FLAG_MAXACK_SET = 0x20

sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2 = range(10)
sIV = TCP_CONNTRACK_MAX
sIG = IGNORE

#: tcp_conntracks[dir][index][old_state], as in Linux 6.x: an original-direction SYN/ACK is
#: only valid in simultaneous open (SYN_SENT2/SYN_RECV), and a reply-direction SYN in
#: TIME_WAIT reopens the connection with the roles switched.
TCP_CONNTRACKS = (
    (  # ORIGINAL
        (sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2),  # syn
        (sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR),  # synack
        (sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV),  # fin
        (sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV),  # ack
        (sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL),  # rst
        (sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV),  # none
    ),
    (  # REPLY
        (sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2),  # syn
        (sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR),  # synack
        (sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV),  # fin
        (sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG),  # ack
        (sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL),  # rst
        (sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV),  # none
    ),
)

# TCP header flag bits.
TH_FIN, TH_SYN, TH_RST, TH_PSH, TH_ACK, TH_URG, TH_ECE, TH_CWR = (1, 2, 4, 8, 16, 32, 64, 128)

#: tcp_valid_flags: PSH, ECE and CWR are masked off first.
VALID_FLAGS = frozenset((TH_SYN, TH_SYN | TH_URG, TH_SYN | TH_ACK, TH_RST, TH_RST | TH_ACK,
                         TH_FIN | TH_ACK, TH_FIN | TH_ACK | TH_URG, TH_ACK, TH_ACK | TH_URG))

MAXACKWINCONST = 66000
M32 = 0xFFFFFFFF


def before(a: int, b: int) -> bool:
    """RFC 1982 ``before(seq1, seq2)``: (s32)(seq1 - seq2) < 0."""
    d = (a - b) & M32
    return d >= 0x80000000


def after(a: int, b: int) -> bool:
    return before(b, a)


@dataclass(slots=True)
class TcpDir:
    """``struct ip_ct_tcp_state``: one direction's window view."""

    td_end: int = 0
    td_maxend: int = 0
    td_maxwin: int = 0
    td_maxack: int = 0
    td_scale: int = 0
    flags: int = 0


@dataclass(slots=True)
class TcpCt:
    """``struct ip_ct_tcp``."""

    seen: list[TcpDir] = field(default_factory=lambda: [TcpDir(), TcpDir()])
    state: int = NONE
    last_dir: int = 0
    retrans: int = 0
    last_index: int = NONE_SET
    last_seq: int = 0
    last_ack: int = 0
    last_end: int = 0
    last_win: int = 0
    last_wscale: int = 0
    last_flags: int = 0


class TcpSeg:
    """The parsed fields of one segment the tracker needs."""

    __slots__ = ("seq", "ack", "win", "flags", "doff", "datalen", "options")

    def __init__(self, buf: bytes | bytearray, off: int, l4len: int) -> None:
        self.seq = int.from_bytes(buf[off + 4:off + 8], "big")
        self.ack = int.from_bytes(buf[off + 8:off + 12], "big")
        self.flags = buf[off + 13]
        self.doff = (buf[off + 12] >> 4) * 4
        self.win = int.from_bytes(buf[off + 14:off + 16], "big")
        self.datalen = l4len - self.doff
        self.options = bytes(buf[off + 20:off + self.doff])

    @property
    def syn(self) -> bool:
        return bool(self.flags & TH_SYN)

    @property
    def fin(self) -> bool:
        return bool(self.flags & TH_FIN)

    @property
    def rst(self) -> bool:
        return bool(self.flags & TH_RST)

    @property
    def ackf(self) -> bool:
        return bool(self.flags & TH_ACK)

    def end(self) -> int:
        """``segment_seq_plus_len``: SYN and FIN count as one."""
        return (self.seq + self.datalen + (1 if self.syn else 0) + (1 if self.fin else 0)) & M32


def tcp_error_check(buf: bytes | bytearray, off: int, l4len: int) -> str | None:
    """``tcp_error`` without the checksum: the reason a segment is invalid, or None."""
    if l4len < 20:
        return "short packet"
    doff = (buf[off + 12] >> 4) * 4
    if doff < 20 or l4len < doff:
        return "truncated/malformed packet"
    if (buf[off + 13] & ~(TH_ECE | TH_CWR | TH_PSH) & 0xFF) not in VALID_FLAGS:
        return "invalid tcp flag combination"
    return None


def get_conntrack_index(flags: int) -> int:
    if flags & TH_RST:
        return RST_SET
    if flags & TH_SYN:
        return SYNACK_SET if flags & TH_ACK else SYN_SET
    if flags & TH_FIN:
        return FIN_SET
    if flags & TH_ACK:
        return ACK_SET
    return NONE_SET


def tcp_options(seg: TcpSeg, st: TcpDir) -> None:
    """Window scale and SACK-permitted from the options (``tcp_options``)."""
    opt = seg.options
    st.td_scale = 0
    st.flags = 0
    i, n = 0, len(opt)
    while i < n:
        kind = opt[i]
        if kind == 0:
            return
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n:
            return
        size = opt[i + 1]
        if size < 2 or size > n - i:
            return
        if kind == 4 and size == 2:
            st.flags |= IP_CT_TCP_FLAG_SACK_PERM
        elif kind == 3 and size == 3:
            st.td_scale = min(opt[i + 2], 14)
            st.flags |= IP_CT_TCP_FLAG_WINDOW_SCALE
        i += size


def tcp_sack(seg: TcpSeg, sack: int) -> int:
    """Highest right edge of the SACK blocks (``tcp_sack``)."""
    opt = seg.options
    if len(opt) == 12 and opt[:4] == b"\x01\x01\x08\x0a":
        return sack
    i, n = 0, len(opt)
    while i < n:
        kind = opt[i]
        if kind == 0:
            return sack
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n:
            return sack
        size = opt[i + 1]
        if size < 2 or size > n - i:
            return sack
        if kind == 5 and size >= 10 and (size - 2) % 8 == 0:
            for j in range(i + 2, i + size, 8):
                tmp = int.from_bytes(opt[j + 4:j + 8], "big")
                if after(tmp, sack):
                    sack = tmp
            return sack
        i += size
    return sack


def tcp_in_window(state: TcpCt, direction: int, index: int, seg: TcpSeg,
                  be_liberal: bool,
                  seq_offset: "Callable[[int, int], int] | None" = None) -> bool:
    """``tcp_in_window``: the four bounds; updates both directions' views on success.
    ``seq_offset(dir, seq)`` is ``nf_ct_seq_offset`` for a connection whose payload a NAT
    helper resized: acknowledgements are mapped back to the receiver's own numbering."""
    sender = state.seen[direction]
    receiver = state.seen[1 - direction]
    seq = seg.seq
    ack = sack = seg.ack
    win = seg.win
    end = seg.end()
    if receiver.flags & IP_CT_TCP_FLAG_SACK_PERM:
        sack = tcp_sack(seg, sack)
    if seq_offset is not None:
        receiver_offset = seq_offset(1 - direction, (ack - 1) & M32)
        ack = (ack - receiver_offset) & M32
        sack = (sack - receiver_offset) & M32

    if sender.td_maxwin == 0:
        if seg.syn:
            sender.td_end = sender.td_maxend = end
            sender.td_maxwin = win or 1
            tcp_options(seg, sender)
            if not (sender.flags & IP_CT_TCP_FLAG_WINDOW_SCALE
                    and receiver.flags & IP_CT_TCP_FLAG_WINDOW_SCALE):
                sender.td_scale = receiver.td_scale = 0
            if not seg.ackf:
                return True
        else:
            sender.td_end = end
            swin = (win << sender.td_scale) & M32
            sender.td_maxwin = swin or 1
            sender.td_maxend = (end + sender.td_maxwin) & M32
            if receiver.td_maxwin == 0:
                receiver.td_end = receiver.td_maxend = sack
    elif ((state.state == SYN_SENT and direction == 0)
          or (state.state == SYN_RECV and direction == 1)) and after(end, sender.td_end):
        sender.td_end = sender.td_maxend = end
        sender.td_maxwin = win or 1
        tcp_options(seg, sender)

    if not seg.ackf:
        ack = sack = receiver.td_end
    elif (seg.flags & (TH_ACK | TH_RST)) == (TH_ACK | TH_RST) and ack == 0:
        ack = sack = receiver.td_end

    if seq == end and (not seg.rst or (seq == 0 and state.state == SYN_SENT)):
        seq = end = sender.td_end

    maxackwin = sender.td_maxwin if sender.td_maxwin > MAXACKWINCONST else MAXACKWINCONST
    if (before(seq, (sender.td_maxend + 1) & M32)
            and after(end, (sender.td_end - receiver.td_maxwin - 1) & M32)
            and before(sack, (receiver.td_end + 1) & M32)
            and after(sack, (receiver.td_end - maxackwin - 1) & M32)):
        if not seg.syn:
            win = (win << sender.td_scale) & M32
        swin = (win + (sack - ack)) & M32
        if sender.td_maxwin < swin:
            sender.td_maxwin = swin
        if after(end, sender.td_end):
            sender.td_end = end
            sender.flags |= IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED
        if seg.ackf:
            if not sender.flags & IP_CT_TCP_FLAG_MAXACK_SET:
                sender.td_maxack = ack
                sender.flags |= IP_CT_TCP_FLAG_MAXACK_SET
            elif after(ack, sender.td_maxack):
                sender.td_maxack = ack
        if receiver.td_maxwin != 0 and after(end, sender.td_maxend):
            receiver.td_maxwin = (receiver.td_maxwin + end - sender.td_maxend) & M32
        if after((sack + win) & M32, (receiver.td_maxend - 1) & M32):
            receiver.td_maxend = (sack + win) & M32
            if win == 0:
                receiver.td_maxend = (receiver.td_maxend + 1) & M32
        if ack == receiver.td_end:
            receiver.flags &= ~IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED
        if index == ACK_SET:
            if (state.last_dir == direction and state.last_seq == seq
                    and state.last_ack == ack and state.last_end == end
                    and state.last_win == win):
                state.retrans += 1
            else:
                state.last_dir = direction
                state.last_seq = seq
                state.last_ack = ack
                state.last_end = end
                state.last_win = win
                state.retrans = 0
        return True
    return bool(sender.flags & IP_CT_TCP_FLAG_BE_LIBERAL) or be_liberal


def tcp_new(state: TcpCt, seg: TcpSeg, loose: bool) -> bool:
    """``tcp_new``: initialise the original direction from the first segment.  False when
    the segment cannot open a connection (the packet is then invalid)."""
    new_state = TCP_CONNTRACKS[0][get_conntrack_index(seg.flags)][NONE]
    if new_state >= TCP_CONNTRACK_MAX:
        return False
    s0 = state.seen[0]
    if new_state == SYN_SENT:
        s0.td_end = seg.end()
        s0.td_maxwin = seg.win or 1
        s0.td_maxend = s0.td_end
        tcp_options(seg, s0)
    elif not loose:
        return False
    else:
        s0.td_end = seg.end()
        s0.td_maxwin = seg.win or 1
        s0.td_maxend = (s0.td_end + s0.td_maxwin) & M32
        s0.flags = state.seen[1].flags = IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL
    state.last_index = NONE_SET
    return True


# Results of tcp_packet.
ACCEPT = 1          # tracked, timeout in .timeout
INVALID = -1        # -NF_ACCEPT: packet invalid, ct untouched
KILL_ACCEPT = 2     # RST before any reply: delete the entry, accept the packet
REPEAT = 3          # reopen: kill the old entry and look up again


def tcp_packet(ct_status_seen_reply: bool, ct_status_assured: bool, state: TcpCt,
               direction: int, seg: TcpSeg, timeouts: list[int], be_liberal: bool,
               max_retrans: int,
               seq_offset: "Callable[[int, int], int] | None" = None) -> tuple[int, int, bool]:
    """``nf_conntrack_tcp_packet`` on a parsed segment.

    Returns (result, timeout seconds, set_assured)."""
    old_state = state.state
    index = get_conntrack_index(seg.flags)
    new_state = TCP_CONNTRACKS[direction][index][old_state]
    other = 1 - direction

    ignore = new_state == IGNORE
    if new_state == SYN_SENT and old_state >= TIME_WAIT:
        if ((state.seen[direction].flags | state.seen[other].flags) & IP_CT_TCP_FLAG_CLOSE_INIT
                or (state.last_dir == direction and state.last_index == RST_SET)):
            return REPEAT, 0, False
        ignore = True  # the kernel falls through into the IGNORE case
    if ignore:
        if (index == SYNACK_SET and state.last_index == SYN_SET and state.last_dir != direction
                and seg.ack == state.last_end):
            old_state = SYN_SENT
            new_state = SYN_RECV
            ld = state.seen[state.last_dir]
            ld.td_end = ld.td_maxend = state.last_end
            ld.td_maxwin = state.last_win or 1
            ld.td_scale = state.last_wscale
            ld.flags = state.last_flags
            state.seen[direction] = TcpDir()
        else:
            state.last_index = index
            state.last_dir = direction
            state.last_seq = seg.seq
            state.last_end = seg.end()
            state.last_win = seg.win
            if index == SYN_SET and direction == 0:
                tmp = TcpDir()
                tcp_options(seg, tmp)
                state.last_flags = 0
                state.last_wscale = 0
                if tmp.flags & IP_CT_TCP_FLAG_WINDOW_SCALE:
                    state.last_flags |= IP_CT_TCP_FLAG_WINDOW_SCALE
                    state.last_wscale = tmp.td_scale
                if tmp.flags & IP_CT_TCP_FLAG_SACK_PERM:
                    state.last_flags |= IP_CT_TCP_FLAG_SACK_PERM
            return ACCEPT, -1, False
    elif new_state == TCP_CONNTRACK_MAX:
        return INVALID, 0, False

    skip_window = False
    if new_state == CLOSE and index == RST_SET:
        rcv = state.seen[other]
        if rcv.flags & IP_CT_TCP_FLAG_MAXACK_SET and before(seg.seq, rcv.td_maxack):
            return INVALID, 0, False
        if (((ct_status_seen_reply and state.last_index == SYN_SET)
             or (not ct_status_assured and state.last_index == ACK_SET))
                and seg.ack == state.last_end):
            skip_window = True

    if not skip_window and not tcp_in_window(state, direction, index, seg, be_liberal,
                                             seq_offset):
        return INVALID, 0, False

    state.last_index = index
    state.last_dir = direction
    state.state = new_state
    if old_state != new_state and new_state == FIN_WAIT:
        state.seen[direction].flags |= IP_CT_TCP_FLAG_CLOSE_INIT

    if state.retrans >= max_retrans and timeouts[new_state] > timeouts[RETRANS]:
        timeout = timeouts[RETRANS]
    elif ((state.seen[0].flags | state.seen[1].flags) & IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED
          and timeouts[new_state] > timeouts[UNACK]):
        timeout = timeouts[UNACK]
    else:
        timeout = timeouts[new_state]

    if not ct_status_seen_reply:
        if seg.rst:
            return KILL_ACCEPT, timeout, False
        if index == SYN_SET and old_state == SYN_SENT:
            return ACCEPT, -1, False  # a retransmitted SYN does not renew the timeout
        if new_state == ESTABLISHED and timeout > timeouts[UNACK]:
            timeout = timeouts[UNACK]  # loose pickup: no 5-day timeout before a reply
        return ACCEPT, timeout, False
    if seg.rst and new_state == CLOSE and not ct_status_assured:
        # Measured on Linux 6.18 (kernel-as-oracle.md): a flow reset before it is
        # assured disappears from the table at once.
        return KILL_ACCEPT, timeout, False
    assured = (not ct_status_assured and old_state in (SYN_RECV, ESTABLISHED)
               and new_state == ESTABLISHED)
    return ACCEPT, timeout, assured
