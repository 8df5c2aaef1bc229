"""Run the public bpf_conformance suite (../shared/bpf_conformance) against netstack.bpf.

Each positive ``.data`` test is checked three ways: our assembler must produce
exactly the suite's own bytecode (``bytecode.json``), and running both our
assembly and the suite's bytes must give the expected R0.  Negative tests must
fail the way the suite's runner expects (assembler message, loader rejection,
or a result that differs from the wrong expectation).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from netstack.bpf import conformance, conformance_plugin
from netstack.bpf.asm import assemble
from netstack.bpf.errors import AsmError, BpfVerifyError
from netstack.bpf.insn import encode, from_hex

_ROOT = Path(__file__).resolve().parents[2]
_CANDIDATES = [_ROOT.parent / "shared" / "bpf_conformance", Path("/work/shared/bpf_conformance")]
SUITE = next((p for p in _CANDIDATES if (p / "bytecode.json").is_file()), None)

if SUITE is None:
    pytest.skip(f"bpf_conformance suite not found (looked in {', '.join(map(str, _CANDIDATES))})",
                allow_module_level=True)

BYTECODE: dict[str, dict[str, object]] = json.loads((SUITE / "bytecode.json").read_text())
POSITIVE = sorted(p.name for p in SUITE.glob("*.data"))
NEGATIVE = sorted(p.name for p in (SUITE / "negative").glob("*.data"))


def test_suite_is_complete() -> None:
    assert len(POSITIVE) == 313 and set(POSITIVE) == set(BYTECODE)
    assert len(NEGATIVE) >= 59


@pytest.mark.parametrize("name", POSITIVE)
def test_positive(name: str) -> None:
    test = conformance.load(SUITE / name)
    ref = BYTECODE[name]
    assert test.result is not None and test.result == ref["result"]
    ours = test.program()
    if test.raw is None:
        assert encode(ours).hex() == ref["bytecode"], "assembler output differs from the suite's"
    mem = bytes.fromhex(str(ref.get("mem", "")))
    assert mem == test.mem
    assert conformance.execute(ours, test.mem) == test.result
    assert conformance.execute(from_hex(str(ref["bytecode"])), mem) == test.result


# Assembler messages the suite's own CMake tests expect (tools/tests.cmake).
ASM_ERRORS = {
    "invalid_imm32_dec_range.data": "Immediate out of 32-bit range: 2147483648",
    "invalid_imm32_hex_range.data": "Immediate out of 32-bit range: 0x100000000",
    "invalid_label.data": "Invalid label: NOT_A_LABEL",
    "invalid_lock.data": "Invalid number of operands",
    "invalid_lock2.data": "Invalid number of operands for lock",
    "invalid_mnemonic.data": "Invalid mnemonic: ldxq",
    "invalid_offset.data": "Failed to decode register and offset: %r1",
    "invalid_offset_range.data": "Offset out of 16-bit range: +0x10000",
    "invalid_operand_count.data": "Invalid number of operands for mnemonic: lddw",
    "invalid_register.data": "Invalid register: %r50",
}
NO_PROGRAM = {"empty.data", "empty_instructions.data", "invalid_unknown_directive.data"}


@pytest.mark.parametrize("name", NEGATIVE)
def test_negative(name: str) -> None:
    text = (SUITE / "negative" / name).read_text()
    if name in NO_PROGRAM:
        with pytest.raises(conformance.DataFileError):
            conformance.parse(text, name).program()
        return
    test = conformance.parse(text, name)
    if name in ASM_ERRORS:
        with pytest.raises(AsmError) as info:
            test.program()
        assert ASM_ERRORS[name] in info.value.message
        assert info.value.line >= 1
        return
    insns = test.program()
    if name == "incorrect_return_value_high_bits.data":
        # The file expects the wrong value; the suite counts a match as a failure.
        assert test.result is not None and conformance.execute(insns, test.mem) != test.result
        return
    assert test.error is not None, name
    with pytest.raises(BpfVerifyError) as err:
        conformance.execute(insns, test.mem)
    if name.startswith("unused-"):
        assert "reserved fields" in err.value.message
    else:  # error.data: `or %r0, %r10` reads R0 before any write
        assert err.value.message == "R0 !read_ok"


def test_every_negative_is_classified() -> None:
    known = NO_PROGRAM | set(ASM_ERRORS) | {"incorrect_return_value_high_bits.data", "error.data"}
    assert {n for n in NEGATIVE if not n.startswith("unused-")} <= known


@pytest.mark.parametrize("name", ["add.data", "mem-len.data", "call_unwind_fail.data", "lock_cmpxchg.data"])
def test_plugin_protocol(name: str) -> None:
    ref = BYTECODE[name]
    prog = " ".join(f"{b:02x}" for b in bytes.fromhex(str(ref["bytecode"])))
    mem = " ".join(f"{b:02x}" for b in bytes.fromhex(str(ref.get("mem", ""))))
    out = io.StringIO()
    rc = conformance_plugin.main([mem] if mem else [], io.StringIO(prog), out)
    assert rc == 0
    assert int(out.getvalue().strip(), 16) == ref["result"]


def test_plugin_reports_errors() -> None:
    out = io.StringIO()
    # ldxw r0, [r1+8] on 4 bytes of memory: out of bounds.
    assert conformance_plugin.main(["01 02 03 04"], io.StringIO("61 10 08 00 00 00 00 00 95 00 00 00 00 00 00 00"),
                                   out) == 1
    assert "invalid read of 4 bytes" in out.getvalue()
    out = io.StringIO()
    assert conformance_plugin.main(["--elf"], io.StringIO(""), out) == 1
    assert "not supported" in out.getvalue()


def test_implicit_exit_label_and_relative_targets() -> None:
    insns = assemble("mov %r0, 1\njeq %r0, 1, exit\nmov %r0, 2\nexit\n")
    assert insns[1].off == 1
    assert conformance.execute(insns) == 1
