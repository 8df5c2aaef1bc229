"""``netstack bpf``: bpftool-style commands on the in-process registry."""
from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest

from netstack.bpf import loader as L
from netstack.cli import bpf_cmd
from netstack.cli.main import main as netstack_main

from .progs.frames import FRAMES, obj


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = bpf_cmd.main(list(argv), out, err)
    return rc, out.getvalue(), err.getvalue()


def batch(tmp_path: Path, text: str, *opts: str) -> tuple[int, str, str]:
    f = tmp_path / "batch.txt"
    f.write_text(text)
    return run(*opts, "batch", "file", str(f))


@pytest.fixture
def frame(tmp_path: Path) -> str:
    p = tmp_path / "frame.bin"
    p.write_bytes(FRAMES["udp53"])
    return str(p)


def test_prog_load_show_plain_and_json(tmp_path: Path) -> None:
    tag = L.prog_tag(L.open_object(obj("xdp_count")).link("xdp_count", lambda m: 0))
    rc, out, err = batch(tmp_path, f"prog load {obj('xdp_count')} /sys/fs/bpf/xc\nprog show\nmap show\n")
    assert (rc, err) == (0, "")
    assert out == (f"1: xdp  name xdp_count  tag {tag}  gpl\n\txlated 440B  not jited  map_ids 1\n"
                   "1: array  name proto_count  flags 0x0\n\tkey 4B  value 8B  max_entries 256\n")
    rc, out, _ = batch(tmp_path, f"prog load {obj('xdp_count')}\nprog show id 1\n", "-j")
    lines = out.splitlines()
    assert lines[0] == "null"
    assert json.loads(lines[1]) == {"id": 1, "type": "xdp", "name": "xdp_count", "tag": tag, "gpl_compatible": True,
                                    "orphaned": False, "bytes_xlated": 440, "jited": False, "map_ids": [1]}


def test_prog_run_obj_section_form(frame: str) -> None:
    rc, out, err = run("prog", "run", obj("global_data"), "xdp", "--data-in", frame, "--repeat", "3")
    assert rc == 0 and err == ""
    assert out.startswith("Return value: 2, duration (average): ") and out.endswith("ns\n")
    rc, out, _ = run("-j", "prog", "run", obj("xdp_count"), "xdp", "--data-in", frame)
    assert rc == 0 and json.loads(out)["retval"] == 2


def test_prog_run_bpftool_form_with_data_out(tmp_path: Path, frame: str) -> None:
    out_file = tmp_path / "out.bin"
    rc, out, err = batch(tmp_path, f"prog load {obj('tc_rewrite')} pin\n"
                                   f"prog run pinned pin data_in {frame} data_out {out_file}\n"
                                   f"prog run name tc_rewrite data_in {frame} data_out -\n")
    assert rc == 0, err
    data = out_file.read_bytes()
    assert data[30:34] == bytes([10, 0, 0, 99])
    lines = out.splitlines()
    assert lines[0] == "Return value: 0, duration: " + lines[0].split(": ")[-1]
    # bpftool hex_print: offset, 16 bytes in pairs, printable characters
    assert lines[1] == "0000000\t0000 0000 0000 0202 0202 0202 0800 4500 | ........ ......E."
    assert lines[-1].startswith("Return value: 0")


def test_map_commands(tmp_path: Path) -> None:
    rc, out, err = batch(tmp_path, "\n".join([
        "map create /sys/fs/bpf/h type hash key 4 value 8 entries 4 name h",
        "map update pinned /sys/fs/bpf/h key 1 0 0 0 value hex 0a 0b 0c 0d 0e 0f 10 11",
        "map update name h key 0x02 0 0 0 value 1 2 3 4 5 6 7 8 noexist",
        "map lookup id 1 key 1 0 0 0",
        "map lookup id 1 key 9 0 0 0",
        "m getnext id 1",
        "map delete id 1 key 2 0 0 0",
        "map dump id 1",
        "map show",
    ]))
    assert (rc, err) == (0, "")
    assert out == ("key: 01 00 00 00  value: 0a 0b 0c 0d 0e 0f 10 11\n"
                   "key:\n09 00 00 00\n\nNot found\n"
                   "key:\nNone\nnext key:\n01 00 00 00\n"  # bucket order for the model's hash seed
                   "key: 01 00 00 00  value: 0a 0b 0c 0d 0e 0f 10 11\nFound 1 element\n"
                   "1: hash  name h  flags 0x0\n\tkey 4B  value 8B  max_entries 4\n")


def test_map_json_and_percpu(tmp_path: Path) -> None:
    rc, out, err = batch(tmp_path, "map create p type percpu_array key 4 value 4 entries 2 name pa\n"
                                   "map update name pa key 1 0 0 0 value 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0\n"
                                   "map lookup name pa key 1 0 0 0\n"
                                   "map dump name pa\n", "-j")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[:2] == ["null", "null"]
    assert json.loads(lines[2]) == {"key": ["0x01", "0x00", "0x00", "0x00"], "values": [
        {"cpu": 0, "value": ["0x01", "0x00", "0x00", "0x00"]}, {"cpu": 1, "value": ["0x02", "0x00", "0x00", "0x00"]}]}
    assert len(json.loads(lines[3])) == 2
    rc, out, _ = batch(tmp_path, "map create p type percpu_array key 4 value 4 entries 2 name pa\n"
                                 "map lookup name pa key 1 0 0 0\n")
    assert out == "key:\n01 00 00 00\nvalue (CPU 00): 00 00 00 00\nvalue (CPU 01): 00 00 00 00\n"


@pytest.mark.parametrize("line,message", [
    ("map update id 1 key 1 0 0 value 1 2 3 4 5 6 7 8", "error parsing byte: value"),  # reads 4 args
    ("map lookup id 1 key 1 0 0", "key expected 4 bytes got 3"),
    ("map update id 1 key 1 0 0 0 value 1 2 3 4 5 6 7 8 exist", "update failed: No such file or directory"),
    ("map lookup id 7 key 1 0 0 0", "get map by id (7): ENOENT"),
    ("map create q type nosuch key 4 value 4 entries 1 name q", "unrecognized map type: nosuch"),
    ("map create q type hash key 0 value 4 entries 1 name q", "map create failed: Invalid argument"),
    ("map dance id 1", "unknown map command 'dance'"),
    ("prog show id 3", "get by id (3): ENOENT"),
    ("frob", "unknown object 'frob'"),
])
def test_errors_bpftool_style(tmp_path: Path, line: str, message: str) -> None:
    rc, out, err = batch(tmp_path, "map create /m type hash key 4 value 8 entries 4 name h\n" + line + "\n")
    assert rc == 255
    assert err.splitlines() == [f"Error: {message}", "Error: error in batch file at line 2"]
    rc, out, err = batch(tmp_path, "map create /m type hash key 4 value 8 entries 4 name h\n" + line + "\n", "-j")
    assert json.loads(out.splitlines()[-2]) == {"error": message} and err == ""


def test_dump_xlated_llvm_syntax_with_map_references(tmp_path: Path) -> None:
    rc, out, err = batch(tmp_path, f"prog load {obj('global_data')}\nprog dump xlated id 1\n"
                                   "prog dump xlated name xdp_globals opcodes\n")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "   0: w2 = *(u32 *)(r1 + 4)"  # llvm-objdump syntax (clang 14 build of global_data.c)
    assert "   2: r3 = map[id:2][0]+0 ll" in lines  # packets in .data (maps: .rodata=1, .data=2, .bss=3)
    assert "   9: r3 = map[id:3][0]+0 ll" in lines  # last_len in .bss
    assert any(line.endswith(" = map[id:1][0]+8 ll") for line in lines)  # the printk format in .rodata
    assert lines.count("   4: r4 = *(u64 *)(r3 + 0)") == 2
    i = lines.index("   2: r3 = map[id:2][0]+0 ll", lines.index("   2: r3 = map[id:2][0]+0 ll") + 1)
    raw = lines[i + 1].split()
    assert len(raw) == 16 and raw[:2] == ["18", "23"] and raw[8:] == ["00"] * 8  # lddw r3, src 2 (map value)


def test_verify_and_bad_object(tmp_path: Path) -> None:
    rc, out, err = run("verify", obj("subprog"))
    assert rc == 0, err
    assert out.splitlines()[0] == "xdp/xdp_calls (xdp): accepted"
    assert "tc/tc_calls (sched_cls): accepted" in out
    data = bytearray(Path(obj("xdp_count")).read_bytes())
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    idx = next(s.index for s in L.open_object(bytes(data)).elf.sections if s.name == "xdp")
    struct.pack_into("<Q", data, shoff + 64 * idx + 0x18, 1 << 40)
    bad = tmp_path / "bad.o"
    bad.write_bytes(bytes(data))
    rc, out, err = run("verify", str(bad))
    assert rc == 255 and err.startswith("Error: elf: section 'xdp': ")
    rc, out, err = run("prog", "load", str(tmp_path / "missing.o"))
    assert rc == 255 and "No such file or directory" in err


def test_asm_and_disasm_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "p.s"
    src.write_text("mov %r0, 1\nlddw %r1, 0x1122334455667788\njeq %r0, 1, exit\nmov %r0, 2\nexit\n")
    rc, out, err = run("asm", str(src))
    assert rc == 0, err
    assert out.splitlines()[0] == "b7 00 00 00 01 00 00 00"
    hexfile = tmp_path / "p.hex"
    hexfile.write_text(out)
    binfile = tmp_path / "p.bin"
    assert run("asm", str(src), "out", str(binfile))[0] == 0
    rc, from_bin, _ = run("disasm", str(binfile), "conformance")
    rc2, from_hex, _ = run("disasm", str(hexfile), "conformance")
    assert rc == rc2 == 0 and from_bin == from_hex
    assert from_bin.splitlines()[0] == "mov %r0, 0x1" or from_bin.splitlines()[0].startswith("mov %r0")
    rc, llvm, _ = run("disasm", str(binfile))
    assert llvm.splitlines()[-1] == "exit"
    rc, elf_listing, _ = run("disasm", obj("subprog"))
    assert rc == 0
    assert elf_listing.splitlines()[0] == "xdp/xdp_calls:" and "tc/tc_calls:" in elf_listing


def test_abbreviations_help_and_main_dispatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = batch(tmp_path, f"p loada {obj('subprog')}\np s\n")
    assert rc == 0 and out.count("\n\txlated") == 2
    rc, out, err = run("prog", "loadall", obj("multi"))  # a kprobe program cannot run in the model
    assert rc == 255 and err == "Error: not supported: program type 2\n"
    assert run("help")[0] == 0
    assert run()[0] == 255
    assert netstack_main(["bpf", "map", "show"]) == 0
    assert capsys.readouterr().out == ""


def test_byte_parsing_like_strtoul(tmp_path: Path) -> None:
    rc, out, err = batch(tmp_path, "map create a type array key 4 value 4 entries 4 name a\n"
                                   "map update name a key 03 0 0 0 value 0x10 0377 257 9\n"  # octal, hex, 257 -> 1
                                   "map lookup name a key 3 0 0 0\n"
                                   "map update name a key hex 01 00 00 00 value hex ff 0x1 a 0\n"
                                   "map lookup name a key 1 0 0 0\n")
    assert rc == 0, err
    assert out == "key: 03 00 00 00  value: 10 ff 01 09\nkey: 01 00 00 00  value: ff 01 0a 00\n"
    rc, _, err = batch(tmp_path, "map create a type array key 4 value 4 entries 4 name a\n"
                                 "map update name a key 1 0 0 x value 1 2 3 4\n")
    assert rc == 255 and err.splitlines()[0] == "Error: error parsing byte: x"


def test_prog_references_and_pretty_json(tmp_path: Path, frame: str) -> None:
    tag = L.prog_tag(L.open_object(obj("subprog")).link("tc_calls", lambda m: 0))
    rc, out, err = batch(tmp_path, f"prog load {obj('subprog')} section tc type sched_act\n"
                                   f"prog show tag {tag}\n", "-p")
    assert rc == 0, err
    assert out.splitlines()[:3] == ["null", "{", '    "id": 1,']
    assert '"type": "sched_act",' in out
    rc, out, err = run("verify", obj("xdp_count"), "section", "xdp", "log_level", "1")
    assert rc == 0 and out.splitlines()[0] == "xdp/xdp_count (xdp): accepted"
    assert out.splitlines()[-1].startswith("processed ")
    rc, out, _ = run("-j", "verify", obj("xdp_count"))
    assert json.loads(out)[0]["verdict"] == "accepted"


def test_verify_prints_the_rejection_log() -> None:
    pytest.importorskip("netstack.bpf.verifier.core")
    rc, out, err = run("verify", obj("reject_bounds"))
    assert rc == 255 and err == "Error: verification failed\n"
    lines = out.splitlines()
    assert lines[0] == "xdp/xdp_no_bounds (xdp): rejected"
    assert "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)" in lines


def test_prog_load_of_a_rejected_program_prints_the_libbpf_log() -> None:
    pytest.importorskip("netstack.bpf.verifier.core")
    rc, out, err = run("prog", "load", obj("reject_bounds"))
    assert rc == 255 and out == ""
    lines = err.splitlines()
    assert lines[0] == "libbpf: prog 'xdp_no_bounds': BPF program load failed: Permission denied"
    assert lines[1] == "libbpf: prog 'xdp_no_bounds': -- BEGIN PROG LOAD LOG --"
    assert "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)" in lines
    assert lines[-2:] == ["-- END PROG LOAD LOG --", "Error: failed to load object file"]
