"""The skb contract: push/pull/put/trim move offsets, never the payload."""
from hypothesis import given, strategies as st

from netstack.packet.skb import CHECKSUM_PARTIAL, UNSET, Packet


def test_push_pull_keep_payload_in_place() -> None:
    p = Packet(b"payload", headroom=16)
    buf_id = id(p.buf)
    off = p.push(4)
    p.buf[off:off + 4] = b"HDR!"
    assert p.bytes() == b"HDR!payload"
    assert id(p.buf) == buf_id and p.headroom == 12
    p.pull(4)
    assert p.bytes() == b"payload"


def test_push_beyond_headroom_expands_and_moves_offsets() -> None:
    p = Packet(b"abc", headroom=2)
    p.reset_network_header()
    p.ip_summed = CHECKSUM_PARTIAL
    p.csum_start = p.data
    nh = p.network_header
    p.push(10)
    assert p.bytes()[10:] == b"abc"
    assert p.buf[p.network_header:p.network_header + 3] == b"abc"
    assert p.network_header > nh and p.csum_start == p.network_header


def test_put_trim_and_may_pull() -> None:
    p = Packet(b"ab", headroom=0)
    off = p.put(3)
    p.buf[off:off + 3] = b"cde"
    assert p.bytes() == b"abcde" and len(p) == 5
    assert p.may_pull(5) and not p.may_pull(6)
    p.trim(1)
    assert p.bytes() == b"a"


def test_pull_beyond_tail_is_refused() -> None:
    p = Packet(b"ab")
    try:
        p.pull(3)
    except ValueError:
        pass
    else:
        raise AssertionError("pull beyond tail must fail")


def test_clone_is_deep() -> None:
    p = Packet(b"xyz")
    p.mark = 7
    q = p.clone()
    q.buf[q.data] = ord("X")
    assert p.bytes() == b"xyz" and q.bytes() == b"Xyz" and q.mark == 7
    assert q.mac_header == UNSET


@given(st.binary(max_size=64), st.lists(st.integers(0, 40), max_size=6))
def test_push_then_pull_roundtrip(data: bytes, pushes: list[int]) -> None:
    p = Packet(data, headroom=8)
    for n in pushes:
        p.push(n)
    for n in reversed(pushes):
        p.pull(n)
    assert p.bytes() == data
