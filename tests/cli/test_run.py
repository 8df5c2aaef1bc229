"""``netstack run`` end to end: pcaps injected in virtual time, captures, --then, summary."""
from __future__ import annotations

import io
import json
import struct

import pytest

from netstack.cli.main import main
from netstack.cli.run import RunOptions, parse_endpoint, run
from netstack.packet.pcap import PcapWriter, open_capture

T0 = 1_700_000_000_000_000_000
SRC = bytes.fromhex("020000000001")


def frame(i: int) -> bytes:
    """A broadcast frame of an EtherType nobody handles (counted as UNHANDLED_PROTO)."""
    return b"\xff" * 6 + SRC + b"\x88\xb5" + bytes([i]) * 46


@pytest.fixture
def files(tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "setup.sh").write_text(
        "ip netns add a\n"
        "ip -n a link add v0 type veth peer name v1\n"
        "ip -n a link set v0 up\nip -n a link set v1 up\n")
    (tmp_path / "then.sh").write_text("ip -n a -j -s link show v1\n")
    with PcapWriter(str(tmp_path / "one.pcap")) as w:
        w.write(frame(1), T0)
        w.write(frame(2), T0 + 1000)
        w.write(frame(3), T0 + 5000)
        w.write(frame(4), T0 + 5000)
    with PcapWriter(str(tmp_path / "two.pcap"), nanosecond=False) as w:
        w.write(frame(9), T0 + 2000)
    return tmp_path


def test_inject_capture_then_and_summary(files) -> None:  # type: ignore[no-untyped-def]
    out, err = io.StringIO(), io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:v0=one.pcap", "--inject"),
                                   parse_endpoint("a:v0=two.pcap", "--inject")],
                      [parse_endpoint("a:v1=cap.pcap", "--capture")], "then.sh")
    assert run(opts, out, err, cwd=str(files)) == 0
    stats = json.loads(out.getvalue())[0]["stats64"]
    assert stats["rx"]["packets"] == 5 and stats["rx"]["bytes"] == 5 * 60
    with open_capture(str(files / "cap.pcap")) as r:
        got = [(f.ts_ns, f.data[14]) for f in r]
    # merged in timestamp order, stamped with virtual time relative to the first frame
    assert got == [(0, 1), (1000, 2), (2000, 9), (5000, 3), (5000, 4)]
    text = err.getvalue()
    assert text.startswith("== netstack run: 5 frames injected, virtual time 0.000005000 s")
    # The capture on v1 is an AF_PACKET-like tap: it takes the unhandled frames, so the
    # kernel counts no drop (__netif_receive_skb_core delivers to the last ptype_all entry).
    assert "drops: none" in text
    v0_row = next(ln for ln in text.splitlines() if ln.split()[:2] == ["a", "v0"])
    # frames 3 and 4 share a timestamp: one batch, one doorbell (4 doorbells for 5 frames)
    assert v0_row.split() == ["a", "v0", "0", "0", "5", "300", "0", "0", "4"]


def test_json_summary_quiet_and_trace(files) -> None:  # type: ignore[no-untyped-def]
    out, err = io.StringIO(), io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:v0=one.pcap", "--inject")], json=True)
    assert run(opts, out, err, cwd=str(files)) == 0
    s = json.loads(err.getvalue())
    assert s["injected"] == 4 and s["drops"] == {"a": {"UNHANDLED_PROTO": 4}}
    assert {d["dev"] for d in s["devices"] if d["netns"] == "a"} == {"lo", "v0", "v1"}
    out, err = io.StringIO(), io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:v0=one.pcap", "--inject")], trace=True,
                      quiet=True)
    assert run(opts, out, err, cwd=str(files)) == 0
    lines = err.getvalue().splitlines()
    assert lines and all("#" in ln for ln in lines) and "kfree_skb" in err.getvalue()
    assert out.getvalue() == ""


def test_trace_limit_caps_the_trace_and_says_so(files) -> None:  # type: ignore[no-untyped-def]
    out, err = io.StringIO(), io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:v0=one.pcap", "--inject")], trace=True,
                      quiet=True, trace_limit=3)
    assert run(opts, out, err, cwd=str(files)) == 0
    lines = err.getvalue().splitlines()
    assert len([ln for ln in lines if ln.startswith("[")]) == 3
    assert lines[-1].startswith("... trace stopped after 3 lines (")


def test_missing_and_corrupt_pcaps_fail_cleanly(files) -> None:  # type: ignore[no-untyped-def]
    (files / "bad.pcap").write_bytes(b"hello")
    # a truncated record after a valid header: detected while streaming
    good = (files / "one.pcap").read_bytes()
    (files / "trunc.pcap").write_bytes(good[:24 + 16 + 10])
    for name, msg in (("nope.pcap", "nope.pcap: cannot open capture file: No such file or directory"),
                      ("bad.pcap", "bad.pcap: not a pcap or pcapng file"),
                      ("trunc.pcap", "trunc.pcap: ")):
        err = io.StringIO()
        opts = RunOptions("setup.sh", [parse_endpoint(f"a:v0={name}", "--inject")], quiet=True)
        assert run(opts, io.StringIO(), err, cwd=str(files)) == 1
        assert err.getvalue().startswith("netstack: " + msg), err.getvalue()


def test_bad_device_and_failing_setup(files) -> None:  # type: ignore[no-untyped-def]
    err = io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:nodev=one.pcap", "--inject")], quiet=True)
    assert run(opts, io.StringIO(), err, cwd=str(files)) == 1
    assert err.getvalue() == 'netstack: --inject a:nodev: Cannot find device "nodev"\n'
    (files / "bad.sh").write_text("ip link add\n")
    err = io.StringIO()
    assert run(RunOptions("bad.sh"), io.StringIO(), err, cwd=str(files)) == 1
    assert err.getvalue().endswith("bad.sh:1: ip link add: Not enough information: \"type\" "
                                   "argument is required (exit status 1)\n")


def test_non_ethernet_linktype_is_refused(files) -> None:  # type: ignore[no-untyped-def]
    with PcapWriter(str(files / "raw.pcap"), linktype=101) as w:
        w.write(b"\x45" + bytes(19), T0)
    err = io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:v0=raw.pcap", "--inject")], quiet=True)
    assert run(opts, io.StringIO(), err, cwd=str(files)) == 1
    assert "link type 101 is not Ethernet" in err.getvalue()


def test_batches_of_at_most_64(files) -> None:  # type: ignore[no-untyped-def]
    with PcapWriter(str(files / "burst.pcap")) as w:
        for i in range(130):
            w.write(frame(i % 256), T0)
    err = io.StringIO()
    opts = RunOptions("setup.sh", [parse_endpoint("a:v0=burst.pcap", "--inject")], json=True)
    assert run(opts, io.StringIO(), err, cwd=str(files)) == 0
    s = json.loads(err.getvalue())
    v0 = next(d for d in s["devices"] if d["dev"] == "v0")
    assert v0["tx_packets"] == 130 and v0["doorbells"] == 3   # 64 + 64 + 2


def test_endpoint_parsing() -> None:
    assert parse_endpoint("ns1:eth0=x.pcap", "--inject").__dict__ == {
        "ns": "ns1", "dev": "eth0", "path": "x.pcap"}
    assert parse_endpoint("eth0=x.pcap", "--inject").ns == ""
    with pytest.raises(Exception, match="NS:DEV=FILE"):
        parse_endpoint("eth0", "--inject")


def test_main_entry_points(files, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(files)
    assert main(["run", "setup.sh", "--inject", "a:v0=one.pcap", "-q", "--then",
                 "then.sh"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)[0]["ifname"] == "v1" and cap.err == ""
    assert main(["ip", "link", "add", "x"]) == 1
    assert capsys.readouterr().err == 'Not enough information: "type" argument is required\n'
    assert main(["ip", "-br", "link"]) == 0
    assert capsys.readouterr().out.startswith("lo               DOWN")
    assert main(["ip", "link", "add", "t0", "type", "team"]) == 1
    assert capsys.readouterr().err == "netstack: not supported: ip link add type team\n"
    assert main(["run", "setup.sh", "--inject", "bogus"]) == 2


def test_pcap_record_layout_written_by_capture(files) -> None:  # type: ignore[no-untyped-def]
    opts = RunOptions("setup.sh", [parse_endpoint("a:v0=one.pcap", "--inject")],
                      [parse_endpoint("a:v1=c.pcap", "--capture")], quiet=True)
    assert run(opts, io.StringIO(), io.StringIO(), cwd=str(files)) == 0
    raw = (files / "c.pcap").read_bytes()
    magic, _maj, _min, _tz, _sig, _snap, linktype = struct.unpack_from("<IHHiIII", raw)
    assert magic == 0xA1B23C4D and linktype == 1
    sec, nsec, caplen, origlen = struct.unpack_from("<IIII", raw, 24)
    assert (sec, nsec, caplen, origlen) == (0, 0, 60, 60)
    assert raw[40:100] == frame(1)
