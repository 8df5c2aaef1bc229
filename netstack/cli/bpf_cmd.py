"""``netstack bpf``: bpftool's commands on the netstack eBPF runtime.

The grammar and output follow bpftool (tools/bpf/bpftool/{main,prog,map}.c):
keywords may be abbreviated to any unique prefix (``p s`` is ``prog show``),
``-j``/``--json`` prints JSON (``-p``/``--pretty`` indented, as bpftool's
json_writer), errors print ``Error: ...`` on stderr (or ``{"error": ...}`` on
stdout with ``-j``) and exit 255, as bpftool's ``return -1`` from ``main`` does.

Objects live in an in-process registry for one invocation -- there is no
kernel to keep them -- so ``batch file FILE`` (bpftool's batch mode, ``-`` for
stdin) is how several commands share programs and maps, like a scenario.
``PATH`` arguments of ``prog load`` / ``map create`` are pin names inside that
registry (``pinned PATH`` finds them again); nothing is written to bpffs.

Commands::

    prog { show | list } [PROG]
    prog load OBJ [PATH] [section SEC] [type TYPE]     (first program, or SEC's)
    prog loadall OBJ [PATH]
    prog dump xlated PROG [opcodes]
    prog run PROG data_in FILE [data_out FILE] [ctx_in FILE] [ctx_out FILE] [repeat N]
    prog run OBJ SEC --data-in FILE [--data-out FILE] [--repeat N]
    map { show | list } [MAP]
    map create PATH type TYPE key KEY_SIZE value VALUE_SIZE entries N name NAME [flags F]
    map update MAP key [hex] BYTES value [hex] BYTES [any | exist | noexist]
    map lookup MAP key [hex] BYTES
    map getnext MAP [key [hex] BYTES]
    map delete MAP key [hex] BYTES
    map dump MAP
    verify OBJ [section SEC] [log_level N]   (the verifier's verdict and log per program)
    asm FILE [out FILE]             (conformance syntax -> hex slots, or raw bytes to FILE)
    disasm FILE [llvm | conformance]  (raw slots, hex text, or an ELF object's programs)
    batch file FILE
    PROG := { id ID | name NAME | tag TAG | pinned PATH }    MAP := { id ID | name NAME | pinned PATH }

What the model cannot know is left out rather than invented: ``loaded_at``,
``uid``, ``memlock`` and jited sizes.  ``xlated`` is the loaded program (the
model does not rewrite instructions), printed in llvm-objdump syntax with map
references shown as bpftool does (``map[id:N]``).
"""
from __future__ import annotations

import errno as E
import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TextIO

from netstack.bpf import insn as I
from netstack.bpf import loader as L
from netstack.bpf import maps as M
from netstack.bpf import progs as P
from netstack.bpf.asm import assemble
from netstack.bpf.check import verify as check_structure
from netstack.bpf.disasm import disassemble
from netstack.bpf.errors import BpfError, BpfVerifyError
from netstack.cli import jsonout

EXIT_ERR = 255
_PROG_TYPES = {v: k for k, v in L.PROG_TYPE_NAMES.items()}
_MAP_TYPES = {v: k for k, v in L.MAP_TYPE_NAMES.items()}
_PERCPU = (M.BPF_MAP_TYPE_PERCPU_HASH, M.BPF_MAP_TYPE_PERCPU_ARRAY, M.BPF_MAP_TYPE_LRU_PERCPU_HASH)


class CliError(Exception):
    """A bpftool ``p_err``: printed as ``Error: <message>``."""


@dataclass
class ProgEntry:
    id: int
    prog: P.Program
    gpl: bool
    map_ids: list[int]


@dataclass
class MapEntry:
    id: int
    map: M.BpfMap


@dataclass
class Session:
    """The in-process registry and output settings of one invocation."""

    out: TextIO
    err: TextIO = field(default_factory=lambda: sys.stderr)
    json: bool = False
    pretty: bool = False
    progs: dict[int, ProgEntry] = field(default_factory=dict)
    maps: dict[int, MapEntry] = field(default_factory=dict)
    pinned: dict[str, tuple[str, int]] = field(default_factory=dict)

    def emit_json(self, value: Any) -> None:
        self.out.write(jsonout.dumps(value, self.pretty) + "\n")

    def add_map(self, m: M.BpfMap) -> int:
        for e in self.maps.values():
            if e.map is m:
                return e.id
        mid = len(self.maps) + 1
        self.maps[mid] = MapEntry(mid, m)
        return mid


def is_prefix(word: str, full: str) -> bool:
    """bpftool's ``is_prefix``: a non-empty prefix of the keyword."""
    return bool(word) and full.startswith(word)


def _dispatch(word: str, table: dict[str, Callable[..., None]], what: str) -> Callable[..., None]:
    """bpftool ``cmd_select``: the first command, in the table's order, that ``word`` prefixes."""
    for k, fn in table.items():
        if is_prefix(word, k):
            return fn
    raise CliError(f"unknown {what} '{word}'")


def _int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise CliError(f"can't parse {what} '{text}'") from None


def _need(args: list[str], what: str) -> str:
    if not args:
        raise CliError(f"expected {what}")
    return args.pop(0)


# -- object references -----------------------------------------------------------------------------
def _prog_ref(s: Session, args: list[str]) -> ProgEntry:
    kind = _need(args, "'id', 'name', 'tag' or 'pinned'")
    val = _need(args, f"{kind} value")
    if is_prefix(kind, "id"):
        e = s.progs.get(_int(val, "prog id"))
        if e is None:
            raise CliError(f"get by id ({val}): {E.errorcode[E.ENOENT]}")
        return e
    if is_prefix(kind, "pinned"):
        ref = s.pinned.get(val)
        if ref is None or ref[0] != "prog":
            raise CliError(f"bpf obj get ({val}): No such file or directory")
        return s.progs[ref[1]]
    if is_prefix(kind, "name") or is_prefix(kind, "tag"):
        by_name = is_prefix(kind, "name")
        hits = [e for e in s.progs.values()
                if (e.prog.name == val if by_name else L.prog_tag(e.prog.insns) == val.lower())]
        if not hits:
            raise CliError(f"can't find requested program by {kind} '{val}'")
        if len(hits) > 1:
            raise CliError(f"several programs match this {kind}")
        return hits[0]
    raise CliError(f"expected 'id', 'name', 'tag' or 'pinned', got: '{kind}'?")


def _map_ref(s: Session, args: list[str]) -> MapEntry:
    kind = _need(args, "'id', 'name' or 'pinned'")
    val = _need(args, f"{kind} value")
    if is_prefix(kind, "id"):
        e = s.maps.get(_int(val, "map id"))
        if e is None:
            raise CliError(f"get map by id ({val}): {E.errorcode[E.ENOENT]}")
        return e
    if is_prefix(kind, "pinned"):
        ref = s.pinned.get(val)
        if ref is None or ref[0] != "map":
            raise CliError(f"bpf obj get ({val}): No such file or directory")
        return s.maps[ref[1]]
    if is_prefix(kind, "name"):
        hits = [e for e in s.maps.values() if e.map.name == val]
        if not hits:
            raise CliError(f"can't find map by name '{val}'")
        if len(hits) > 1:
            raise CliError("several maps match this name")
        return hits[0]
    raise CliError(f"expected 'id', 'name' or 'pinned', got: '{kind}'?")


# -- hex helpers -----------------------------------------------------------------------------------
def _hexs(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def _json_bytes(data: bytes) -> list[str]:
    return [f"0x{b:02x}" for b in data]


def _strtoul(tok: str, base: int) -> int | None:
    """C ``strtoul`` on a whole token (``base`` 0: ``0x`` hex, leading ``0`` octal); None if not all digits."""
    t = tok.strip()
    if base == 0:
        if t[:2].lower() == "0x":
            t, base = t[2:], 16
        elif len(t) > 1 and t[0] == "0":
            t, base = t[1:], 8
        else:
            base = 10
    elif base == 16 and t[:2].lower() == "0x":
        t = t[2:]
    try:
        return int(t, base) if t and t.isalnum() else None
    except ValueError:
        return None


def _parse_bytes(args: list[str], name: str, n: int) -> bytes:
    """bpftool ``parse_bytes``: exactly ``n`` arguments, one byte each (``hex`` switches the base
    from strtoul's automatic one to 16; wider values are truncated to a byte, as the C store does)."""
    base = 0
    if args and is_prefix(args[0], "hex"):
        args.pop(0)
        base = 16
    out = bytearray()
    while len(out) < n and args:
        v = _strtoul(args[0], base)
        if v is None:
            raise CliError(f"error parsing byte: {args[0]}")
        out.append(v & 0xFF)
        args.pop(0)
    if len(out) != n:
        raise CliError(f"{name} expected {n} bytes got {len(out)}")
    return bytes(out)


def hex_print(data: bytes) -> str:
    """bpftool prog.c ``hex_print``: offset, 16 bytes in pairs, printable characters."""
    lines = []
    for i in range(0, len(data), 16):
        row = data[i:i + 16]
        hx = "".join(f"{b:02x}{' ' if j % 2 else ''}" for j, b in enumerate(row, start=i))
        hx += "".join(f"  {' ' if j % 2 else ''}" for j in range(i + len(row), i + 16))
        asc = "".join((chr(b) if 32 <= b <= 126 else ".") + (" " if j == i + 7 else "")
                      for j, b in enumerate(row, start=i))
        lines.append(f"{i:07x}\t{hx}| {asc}")
    return "".join(line + "\n" for line in lines)


# -- prog ------------------------------------------------------------------------------------------
def _prog_json(e: ProgEntry) -> dict[str, Any]:
    p = e.prog
    d: dict[str, Any] = {"id": e.id, "type": L.PROG_TYPE_NAMES.get(p.prog_type, str(p.prog_type))}
    if p.name:
        d["name"] = p.name[:15]
    d.update({"tag": L.prog_tag(p.insns), "gpl_compatible": e.gpl, "orphaned": False,
              "bytes_xlated": 8 * len(p.insns), "jited": False})
    if e.map_ids:
        d["map_ids"] = e.map_ids
    return d


def _prog_plain(e: ProgEntry) -> str:
    d = _prog_json(e)
    head = f"{e.id}: {d['type']}  " + (f"name {d['name']}  " if "name" in d else "") + f"tag {d['tag']}"
    head += "  gpl" if e.gpl else ""
    tail = f"\txlated {d['bytes_xlated']}B  not jited"
    if e.map_ids:
        tail += "  map_ids " + ",".join(str(i) for i in e.map_ids)
    return f"{head}\n{tail}\n"


def prog_show(s: Session, args: list[str]) -> None:
    one = bool(args)
    entries = [_prog_ref(s, args)] if one else list(s.progs.values())
    _no_more(args)
    if s.json:  # bpftool: one object for "show PROG", an array for "show"
        s.emit_json(_prog_json(entries[0]) if one else [_prog_json(e) for e in entries])
    else:
        s.out.write("".join(_prog_plain(e) for e in entries))


def _gpl(license_: str) -> bool:
    """``license_is_gpl_compatible`` (include/linux/license.h)."""
    return license_ in ("GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL",
                        "Dual MPL/GPL")


def _load(s: Session, path: str, only: list[str] | None, ptype: int | None) -> list[ProgEntry]:
    spec = L.open_object(path)
    if ptype is not None:
        for p in spec.programs:
            if only is None or p.name in only or p.section in only:
                p.prog_type = ptype
    try:
        lo = L.load_object(spec, only)  # verifies each program, as BPF_PROG_LOAD
    except BpfVerifyError as exc:  # what libbpf prints when BPF_PROG_LOAD fails, then bpftool's p_err
        name = exc.prog_name
        s.err.write(f"libbpf: prog '{name}': BPF program load failed: {os.strerror(exc.errno or E.EINVAL)}\n"
                    f"libbpf: prog '{name}': -- BEGIN PROG LOAD LOG --\n{exc.log.rstrip()}\n"
                    "-- END PROG LOAD LOG --\n")
        raise CliError("failed to load object file") from None
    ids = {name: s.add_map(m) for name, m in lo.maps.items()}
    out = []
    for name, prog in lo.programs.items():
        assert isinstance(prog, P.Program)
        used = sorted({ids[n] for n, m in lo.maps.items() if any(m is pm for pm in prog.maps)})
        pid = len(s.progs) + 1
        s.progs[pid] = ProgEntry(pid, prog, _gpl(spec.license), used)
        out.append(s.progs[pid])
    return out


def prog_load(s: Session, args: list[str], loadall: bool = False) -> None:
    obj = _need(args, "OBJ")
    pin: str | None = None
    section: str | None = None
    ptype: int | None = None
    while args:
        w = args.pop(0)
        if w in ("section", "sec"):
            section = _need(args, "section name")
        elif w == "type":
            t = _need(args, "program type")
            # bpftool: libbpf_prog_type_by_name(TYPE), then TYPE + "/"; the uapi names work too.
            found = L.section_prog_type(t) or L.section_prog_type(t + "/")
            if found is None and t not in _PROG_TYPES:
                raise CliError(f"failed to guess program type from ELF section '{t}'")
            ptype = found[0] if found is not None else _PROG_TYPES[t]
        elif pin is None and not w.startswith("-"):
            pin = w
        else:
            raise CliError(f"unknown arg {w}")
    spec = L.open_object(obj)
    if not spec.programs:
        raise CliError("object file doesn't contain any bpf program")
    if loadall:
        only = None if section is None else [p.name for p in spec.programs if p.section == section]
    elif section is not None:
        only = [spec.program(section).name]
    else:
        only = [spec.programs[0].name]
    if only == []:
        raise CliError(f"no program in section '{section}'")
    entries = _load(s, obj, only, ptype)
    if pin is not None:
        if pin in s.pinned:
            raise CliError(f"can't pin the object ({pin}): File exists")
        s.pinned[pin] = ("prog", entries[0].id)
    if s.json:
        s.emit_json(None)


def prog_dump(s: Session, args: list[str]) -> None:
    what = _need(args, "'xlated' or 'jited'")
    if is_prefix(what, "jited"):
        raise CliError("not supported: jited dump (the model keeps no native image per program)")
    if not is_prefix(what, "xlated"):
        raise CliError(f"expected 'xlated' or 'jited', got: {what}")
    e = _prog_ref(s, args)
    opcodes = False
    while args:
        w = args.pop(0)
        if is_prefix(w, "opcodes"):
            opcodes = True
        else:
            raise CliError(f"unknown arg {w}")
    ids = {id(m): mid for mid, me in s.maps.items() for m in (me.map,)}
    rows = xlated_rows(e.prog, ids)
    if s.json:
        s.emit_json([{"disasm": text, **({"opcodes": {"code": f"0x{raw[0]:02x}", "raw": _json_bytes(raw)}}
                                         if opcodes else {})} for _pc, text, raw in rows])
        return
    for pc, text, raw in rows:
        s.out.write(f"{pc:4d}: {text}\n")
        if opcodes:
            s.out.write(f"       {_hexs(raw)}\n")


def xlated_rows(prog: P.Program, map_ids: dict[int, int]) -> list[tuple[int, str, bytes]]:
    """(slot, text, bytes) per instruction; ``lddw`` of a map reads ``map[id:N]`` as in bpftool."""
    insns = prog.insns
    text = disassemble(insns, "llvm")
    rows = []
    pc = 0
    for line in text:
        ins = insns[pc]
        width = 2 if ins.is_lddw else 1
        raw = I.encode(insns[pc:pc + width])
        if ins.is_lddw and ins.src in (I.BPF_PSEUDO_MAP_FD, I.BPF_PSEUDO_MAP_VALUE):
            m = M.FD_TABLE.get(ins.imm)
            mid = map_ids.get(id(m), 0)
            ref = f"map[id:{mid}]" + (f"[0]+{insns[pc + 1].imm}" if ins.src == I.BPF_PSEUDO_MAP_VALUE else "")
            line = f"r{ins.dst} = {ref} ll"
        rows.append((pc, line, raw))
        pc += width
    return rows


def _read_file(path: str, what: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise CliError(f"failed to open {what} file {path}: {exc.strerror}") from None


def _write_file(s: Session, path: str, data: bytes) -> None:
    if path == "-":
        if s.json:
            return
        s.out.write(hex_print(data))
        return
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise CliError(f"failed to open output file {path}: {exc.strerror}") from None


def prog_run(s: Session, args: list[str]) -> None:
    if args and args[0] not in ("id", "name", "tag", "pinned") and not any(
            is_prefix(args[0], k) for k in ("id", "name", "tag", "pinned")):
        obj = _need(args, "OBJ")
        sec = _need(args, "SECTION")
        e = _load(s, obj, [L.open_object(obj).program(sec).name], None)[0]
    else:
        e = _prog_ref(s, args)
    opts: dict[str, str] = {}
    while args:
        raw = args.pop(0)
        w = raw.lstrip("-").replace("-", "_")
        keys = ("data_in", "data_out", "data_size_out", "ctx_in", "ctx_out", "ctx_size_out", "repeat")
        hits = [k for k in keys if is_prefix(w, k)]
        if len(hits) != 1 and w not in keys:
            if len(hits) > 1:
                raise CliError(f"parameter '{raw}' is ambiguous")
            raise CliError("expected no more arguments, 'data_in', 'data_out', 'data_size_out', 'ctx_in', "
                           f"'ctx_out', 'ctx_size_out' or 'repeat', got: '{raw}'?")
        key = w if w in keys else hits[0]
        opts[key] = _need(args, key)
    data = _read_file(opts["data_in"], "data_in") if "data_in" in opts else b""
    ctx = _read_file(opts["ctx_in"], "ctx_in") if "ctx_in" in opts else None
    repeat = _int(opts.get("repeat", "1"), "repeat")
    size_out = _int(opts["data_size_out"], "data_size_out") if "data_size_out" in opts else None
    try:
        res = P.prog_test_run_full(e.prog, data, repeat, ctx, data_size_out=size_out)
    except P.TestRunError as exc:
        raise CliError(f"failed to run program: {os.strerror(exc.errno)}") from None
    if "data_out" in opts:
        _write_file(s, opts["data_out"], res.data_out)
    if "ctx_out" in opts:
        _write_file(s, opts["ctx_out"], res.ctx_out)
    if s.json:
        d: dict[str, Any] = {"retval": res.retval, "duration": res.duration}
        if opts.get("data_out") == "-":
            d["data_out"] = list(res.data_out)  # bpftool print_data_json: plain numbers
        if opts.get("ctx_out") == "-" and res.ctx_out:
            d["ctx_out"] = list(res.ctx_out)
        s.emit_json(d)
    else:
        s.out.write(f"Return value: {res.retval}, duration{' (average)' if repeat > 1 else ''}: "
                    f"{res.duration}ns\n")


def cmd_prog(s: Session, args: list[str]) -> None:
    verb = _need(args, "prog command")
    table: dict[str, Callable[..., None]] = {  # bpftool prog.c cmds[] order
        "show": prog_show, "list": prog_show, "dump": prog_dump, "load": prog_load,
        "loadall": lambda s, a: prog_load(s, a, True), "run": prog_run}
    _dispatch(verb, table, "prog command")(s, args)


# -- map -------------------------------------------------------------------------------------------
def _map_json(e: MapEntry) -> dict[str, Any]:
    m = e.map
    d: dict[str, Any] = {"id": e.id, "type": L.MAP_TYPE_NAMES.get(m.map_type, str(m.map_type))}
    if m.name:
        d["name"] = m.name
    d.update({"flags": m.map_flags, "bytes_key": m.key_size, "bytes_value": m.value_size,
              "max_entries": m.max_entries, "frozen": 0})
    return d


def map_show(s: Session, args: list[str]) -> None:
    one = bool(args)
    entries = [_map_ref(s, args)] if one else list(s.maps.values())
    _no_more(args)
    if s.json:
        s.emit_json(_map_json(entries[0]) if one else [_map_json(e) for e in entries])
        return
    for e in entries:
        d = _map_json(e)
        s.out.write(f"{e.id}: {d['type']}  " + (f"name {d['name']}  " if "name" in d else "")
                    + f"flags 0x{d['flags']:x}\n\tkey {d['bytes_key']}B  value {d['bytes_value']}B  "
                      f"max_entries {d['max_entries']}\n")


def map_create(s: Session, args: list[str]) -> None:
    pin = _need(args, "PATH")
    attrs: dict[str, str] = {}
    while args:
        w = args.pop(0)
        key = next((k for k in ("type", "key", "value", "entries", "name", "flags", "dev", "inner_map",
                                "offload_dev") if is_prefix(w, k)), None)
        if key is None:
            raise CliError(f"unknown arg {w}")
        if key in attrs:
            raise CliError(f"{key} specified twice")
        attrs[key] = _need(args, key)
    if "type" not in attrs:
        raise CliError("map type not specified")
    if "name" not in attrs:
        raise CliError("map name not specified")
    if attrs["type"] not in _MAP_TYPES:
        raise CliError(f"unrecognized map type: {attrs['type']}")
    if "inner_map" in attrs or "dev" in attrs or "offload_dev" in attrs:
        raise CliError("not supported: inner maps and offload devices")
    try:
        m = P.new_map(_MAP_TYPES[attrs["type"]], _int(attrs.get("key", "0"), "key size"),
                      _int(attrs.get("value", "0"), "value size"), _int(attrs.get("entries", "0"), "entries"),
                      _int(attrs.get("flags", "0"), "flags"), name=attrs["name"][:15])
    except M.MapError as exc:
        raise CliError(f"map create failed: {_strerror(exc)}") from None
    if pin in s.pinned:
        raise CliError(f"can't pin the object ({pin}): File exists")
    s.pinned[pin] = ("map", s.add_map(m))
    if s.json:
        s.emit_json(None)


def _strerror(exc: M.MapError) -> str:
    return os.strerror(exc.errno) if exc.errno > 0 and exc.errno != 524 else "Unknown error 524"


def _entry_plain(m: M.BpfMap, key: bytes, value: bytes | None) -> str:
    """bpftool map.c ``print_entry_plain``."""
    if m.map_type in _PERCPU and value is not None:
        step = (m.value_size + 7) & ~7
        out = f"key:\n{_hexs(key)}\n"
        for cpu in range(len(value) // step):
            out += f"value (CPU {cpu:02d}):{chr(10) if m.value_size > 16 else ' '}"
            out += _hexs(value[cpu * step:cpu * step + m.value_size]) + "\n"
        return out
    break_names = m.key_size > 16 or m.value_size > 16
    single = m.key_size + m.value_size <= 24 and not break_names
    sep = "\n" if break_names else " "
    out = ""
    if m.key_size:
        out += f"key:{sep}{_hexs(key)}" + ("  " if single else "\n")
    if m.value_size:
        out += f"value:{sep}" + (_hexs(value) if value is not None else "<no entry>")
    return out + "\n"


def _entry_json(m: M.BpfMap, key: bytes, value: bytes) -> dict[str, Any]:
    if m.map_type in _PERCPU:
        step = (m.value_size + 7) & ~7
        return {"key": _json_bytes(key), "values": [
            {"cpu": c, "value": _json_bytes(value[c * step:c * step + m.value_size])}
            for c in range(len(value) // step)]}
    return {"key": _json_bytes(key), "value": _json_bytes(value)}


def _key_arg(args: list[str], m: M.BpfMap) -> bytes:
    w = _need(args, "'key'")
    if not is_prefix(w, "key"):
        raise CliError(f"did not find key (got '{w}')")
    return _parse_bytes(args, "key", m.key_size)


def _no_more(args: list[str]) -> None:
    if args:
        raise CliError(f"too many arguments: '{args[0]}'")


def map_update(s: Session, args: list[str]) -> None:
    e = _map_ref(s, args)
    m = e.map
    key = _key_arg(args, m)
    w = _need(args, "'value'")
    if not is_prefix(w, "value"):
        raise CliError(f"did not find value (got '{w}')")
    value = _parse_bytes(args, "value", m.user_value_size)
    flags = M.BPF_ANY
    if args:
        f = args.pop(0)
        flags = {"any": M.BPF_ANY, "exist": M.BPF_EXIST, "noexist": M.BPF_NOEXIST}.get(f, -1)
        if flags < 0:
            raise CliError(f"unknown flag {f}")
    _no_more(args)
    try:
        m.update(key, value, flags)
    except M.MapError as exc:
        raise CliError(f"update failed: {_strerror(exc)}") from None
    if s.json:
        s.emit_json(None)


def map_lookup(s: Session, args: list[str]) -> None:
    e = _map_ref(s, args)
    m = e.map
    key = _key_arg(args, m)
    _no_more(args)
    try:
        value = m.lookup(key)
    except M.MapError as exc:
        if exc.errno == E.ENOENT:
            if s.json:
                s.emit_json(None)
            else:
                s.out.write(f"key:\n{_hexs(key)}\n\nNot found\n")
            return
        raise CliError(f"lookup failed: {_strerror(exc)}") from None
    if s.json:
        s.emit_json(_entry_json(m, key, value))
    else:
        s.out.write(_entry_plain(m, key, value))


def map_getnext(s: Session, args: list[str]) -> None:
    e = _map_ref(s, args)
    key = _key_arg(args, e.map) if args else None
    _no_more(args)
    try:
        nxt = e.map.get_next_key(key)
    except M.MapError as exc:
        if exc.errno == E.ENOENT:
            raise CliError("can't get next key: No such file or directory") from None
        raise CliError(f"can't get next key: {_strerror(exc)}") from None
    if s.json:
        s.emit_json({"key": _json_bytes(key) if key is not None else None, "next_key": _json_bytes(nxt)})
        return
    s.out.write("key:\n" + (_hexs(key) if key is not None else "None") + f"\nnext key:\n{_hexs(nxt)}\n")


def map_delete(s: Session, args: list[str]) -> None:
    e = _map_ref(s, args)
    key = _key_arg(args, e.map)
    _no_more(args)
    try:
        e.map.delete(key)
    except M.MapError as exc:
        raise CliError(f"delete failed: {_strerror(exc)}") from None
    if s.json:
        s.emit_json(None)


def map_dump(s: Session, args: list[str]) -> None:
    e = _map_ref(s, args)
    _no_more(args)
    m = e.map
    if isinstance(m, M.RingBuf) or not m.has_values:
        raise CliError(f"can't dump map of type {L.MAP_TYPE_NAMES.get(m.map_type, m.map_type)}")
    entries = [(k, m.lookup(k)) for k in m.keys()]
    if s.json:
        s.emit_json([_entry_json(m, k, v) for k, v in entries])
        return
    s.out.write("".join(_entry_plain(m, k, v) for k, v in entries))
    s.out.write(f"Found {len(entries)} element{'' if len(entries) == 1 else 's'}\n")


def cmd_map(s: Session, args: list[str]) -> None:
    verb = _need(args, "map command")
    table: dict[str, Callable[..., None]] = {  # bpftool map.c cmds[] order
        "show": map_show, "list": map_show, "dump": map_dump, "update": map_update, "lookup": map_lookup,
        "getnext": map_getnext, "delete": map_delete, "create": map_create}
    _dispatch(verb, table, "map command")(s, args)


# -- verify / asm / disasm ---------------------------------------------------------------------------
def _verifier() -> Callable[..., Any] | None:
    """The path-sensitive verifier (``netstack.bpf.verifier``) when it is installed, else None."""
    try:
        from netstack.bpf.verifier.core import verify_program
    except ImportError:
        return None
    return verify_program


def cmd_verify(s: Session, args: list[str]) -> None:
    obj = _need(args, "OBJ")
    section = None
    log_level = 1
    while args:
        w = args.pop(0)
        if w in ("section", "sec"):
            section = _need(args, "section name")
        elif w == "log_level":
            log_level = _int(_need(args, "log level"), "log level")
        else:
            raise CliError(f"unknown arg {w}")
    spec = L.open_object(obj)
    wanted = [p for p in spec.programs if section is None or p.section == section or p.name == section]
    if not wanted:
        raise CliError(f"no program in section '{section}'")
    verify_program = _verifier()
    models = {n: L.create_model_map(ms) for n, ms in spec.maps.items()}
    results: list[dict[str, Any]] = []
    failed = False
    for p in wanted:
        r: dict[str, Any] = {"name": p.name, "section": p.section, "type": p.type_name}
        try:
            if p.prog_type is None:
                raise CliError(f"failed to guess program type from ELF section '{p.section}'")
            code = spec.link(p, lambda ms: models[ms.name].fd)
            check_structure(code, entry_regs=(1,))
            if verify_program is None:
                r.update(verdict="accepted", log=f"processed {len(code)} insns (structural checks only: "
                                                 "netstack.bpf.verifier is not installed)")
            else:
                res = verify_program(code, p.prog_type, log_level=log_level)
                r.update(verdict="accepted" if res.accepted else "rejected", log=res.log.rstrip("\n"),
                         insns_processed=res.insn_processed)
                failed = failed or not res.accepted
        except (BpfError, CliError) as exc:
            failed = True
            r.update(verdict="rejected", log=str(exc))
        results.append(r)
    if s.json:
        s.emit_json(results)
    else:
        for r in results:
            s.out.write(f"{r['section']}/{r['name']} ({r['type']}): {r['verdict']}\n"
                        + (f"{r['log']}\n" if r["log"] else ""))
    if failed:
        raise CliError("verification failed")


def cmd_asm(s: Session, args: list[str]) -> None:
    path = _need(args, "FILE")
    out = None
    if args:
        if args.pop(0) not in ("out", "-o"):
            raise CliError("expected 'out FILE'")
        out = _need(args, "output file")
    _no_more(args)
    try:
        text = _read_file(path, "source").decode()
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a text file") from None
    insns = assemble(text)
    if out is not None:
        _write_file(s, out, I.encode(insns))
        return
    if s.json:
        s.emit_json([_hexs(I.encode([i])) for i in insns])
        return
    s.out.write("".join(_hexs(I.encode([i])) + "\n" for i in insns))


def cmd_disasm(s: Session, args: list[str]) -> None:
    path = _need(args, "FILE")
    syntax = "llvm"
    if args:
        syntax = args.pop(0)
        if syntax not in ("llvm", "conformance"):
            raise CliError(f"unknown syntax '{syntax}' (llvm or conformance)")
    _no_more(args)
    raw = _read_file(path, "program")
    listings: list[tuple[str, list[I.Insn]]] = []
    if raw[:4] == b"\x7fELF":
        spec = L.open_object(raw, name=path)
        for p in spec.programs:
            listings.append((f"{p.section}/{p.name}", spec.link(p, lambda m: 0)))
    else:
        try:
            text = raw.decode("ascii")
            is_hex = all(c in "0123456789abcdefABCDEF \t\r\n" for c in text)
        except UnicodeDecodeError:
            is_hex = False
        listings.append(("", I.from_hex(text) if is_hex and text.strip() else I.decode(raw)))
    if s.json:
        s.emit_json([{"program": name, "insns": disassemble(code, syntax)} for name, code in listings])
        return
    for name, code in listings:
        if name:
            s.out.write(f"{name}:\n")
        s.out.write("".join(line + "\n" for line in disassemble(code, syntax)))


# -- entry points ----------------------------------------------------------------------------------
_COMMANDS: dict[str, Callable[[Session, list[str]], None]] = {
    "prog": cmd_prog, "map": cmd_map, "verify": cmd_verify, "asm": cmd_asm, "disasm": cmd_disasm}


def run_one(s: Session, args: list[str]) -> None:
    """Run one command line (no options) against the session's registry."""
    word = _need(args, "OBJECT")
    if word == "batch":
        raise CliError("batch inside batch is not allowed")
    _dispatch(word, _COMMANDS, "object")(s, args)


def _batch(s: Session, args: list[str], err: TextIO) -> int:
    if not args or not is_prefix(args.pop(0), "file"):
        raise CliError("expected 'file'")
    path = _need(args, "batch file")
    _no_more(args)
    text = _read_file(path, "batch").decode(errors="replace")
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            run_one(s, shlex.split(line))
        except (CliError, BpfError) as exc:
            _report(s, err, str(exc))
            _report(s, err, f"error in batch file at line {n}")
            return EXIT_ERR
    return 0


def _report(s: Session, err: TextIO, message: str) -> None:
    if s.json:
        s.emit_json({"error": message})
    else:
        err.write(f"Error: {message}\n")


USAGE = ("Usage: netstack bpf [OPTIONS] OBJECT { COMMAND | help }\n"
         "       netstack bpf batch file FILE\n"
         "       OBJECT := { prog | map | verify | asm | disasm }\n"
         "       OPTIONS := { {-j|--json} [{-p|--pretty}] }\n")


def main(argv: Sequence[str], stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``netstack bpf ARGS``; returns the exit status (0, or 255 on error as bpftool)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = list(argv)
    s = Session(out, err)
    while args and args[0].startswith("-") and args[0] not in ("-",):
        opt = args.pop(0)
        if opt in ("-j", "--json"):
            s.json = True
        elif opt in ("-p", "--pretty"):
            s.json = s.pretty = True
        elif opt in ("-h", "--help"):
            out.write(USAGE)
            return 0
        else:
            err.write(f"Error: unknown option '{opt}'\n")
            return EXIT_ERR
    if not args or args[0] == "help":
        (out if args else err).write(USAGE)
        return 0 if args else EXIT_ERR
    try:
        if args[0] == "batch":
            return _batch(s, args[1:], err)
        run_one(s, args)
    except (CliError, BpfError) as exc:
        _report(s, err, str(exc))
        return EXIT_ERR
    return 0
