"""Clang-built eBPF objects -> maps and :class:`~netstack.bpf.progs.Program`s (libbpf's job).

Two phases, as libbpf's ``bpf_object__open`` / ``bpf_object__load``
(tools/lib/bpf/libbpf.c):

* :func:`open_object` reads the ELF (:mod:`netstack.bpf.elf`) into an
  :class:`ObjectSpec`: the license (``license`` section) and kernel version
  (``version``), map definitions from the legacy ``maps`` section (``struct
  bpf_map_def``) and from BTF-defined ``.maps`` (:mod:`netstack.bpf.btf`), one
  single-element array map per global-data section (``.data*``, ``.rodata*``,
  ``.bss*``, holding the section's bytes; ``.rodata`` maps are
  ``BPF_F_RDONLY_PROG``), and the programs: every function symbol of an
  executable section other than ``.text``, its type from the section name by
  libbpf's ``section_defs`` rules.  Functions in ``.text`` are subprograms.

* :meth:`ObjectSpec.link` produces a program's final instructions with a
  caller-supplied ``fd`` for each map, exactly as ``bpf_object__relocate`` does:
  ``R_BPF_64_64`` on an ``lddw`` becomes ``BPF_PSEUDO_MAP_FD`` (map symbol) or
  ``BPF_PSEUDO_MAP_VALUE`` with the byte offset in the second slot (global data:
  ``insn[1].imm = insn[0].imm + sym.st_value``); every subprogram reached by a
  ``call`` (``R_BPF_64_32``, or a call inside ``.text`` that needs no relocation)
  is appended once after the program and the call's ``imm`` re-targeted
  (``sub_insn_idx = sym_off / 8 + imm + 1``).  Subprograms nobody calls are not
  appended -- the kernel verifier rejects unreachable instructions.

:func:`load_object` links every program against model maps (created with
:func:`netstack.bpf.progs.new_map`, global data written in) and builds the
Programs.  :func:`load_kernel` does the same against the real kernel through
:mod:`netstack.bpf.kernel`, for differential tests.

Clang reads ``ctx->data`` / ``ctx->data_end`` with 32-bit loads; the kernel's
``convert_ctx_access`` rewrites them into 64-bit pointer loads, and our context
regions (:mod:`netstack.bpf.context`) return the full pointer for such a load, so
no rewrite is needed here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

from . import btf as B
from . import insn as I
from . import maps as M
from .elf import R_BPF_64_32, R_BPF_64_64, ElfError, ElfObject, Reloc, Section, Symbol, parse
from .errors import BpfError, BpfVerifyError, NotSupported
from .insn import Insn
from .kernel import KMap, KProg
from .progs import Program, new_map

# enum bpf_prog_type (include/uapi/linux/bpf.h)
PROG_TYPE_NAMES = {
    1: "socket_filter", 2: "kprobe", 3: "sched_cls", 4: "sched_act", 5: "tracepoint", 6: "xdp",
    7: "perf_event", 8: "cgroup_skb", 9: "cgroup_sock", 10: "lwt_in", 11: "lwt_out", 12: "lwt_xmit",
    13: "sock_ops", 14: "sk_skb", 15: "cgroup_device", 16: "sk_msg", 17: "raw_tracepoint",
    18: "cgroup_sock_addr", 19: "lwt_seg6local", 20: "lirc_mode2", 21: "sk_reuseport", 22: "flow_dissector",
    23: "cgroup_sysctl", 24: "raw_tracepoint_writable", 25: "cgroup_sockopt", 26: "tracing",
    27: "struct_ops", 28: "ext", 29: "lsm", 30: "sk_lookup", 31: "syscall", 32: "netfilter",
}

#: libbpf's ``section_defs`` (subset): (pattern, prog_type, is_xdp_frags).  A pattern ending in
#: ``+`` matches the bare prefix or ``prefix/anything``; one ending in ``/`` matches any name
#: starting with it; anything else must match exactly (libbpf >= 1.0 ``sec_def_matches``).
SECTION_DEFS: tuple[tuple[str, int, bool], ...] = (
    ("socket", 1, False),
    ("sk_reuseport/migrate", 21, False), ("sk_reuseport", 21, False),
    ("kprobe+", 2, False), ("uprobe+", 2, False), ("uprobe.s+", 2, False), ("kretprobe+", 2, False),
    ("uretprobe+", 2, False), ("uretprobe.s+", 2, False), ("kprobe.multi+", 2, False),
    ("kretprobe.multi+", 2, False), ("ksyscall+", 2, False), ("kretsyscall+", 2, False),
    ("usdt+", 2, False),
    ("tc/ingress", 3, False), ("tc/egress", 3, False), ("tcx/ingress", 3, False), ("tcx/egress", 3, False),
    ("tc", 3, False), ("classifier", 3, False), ("action", 4, False),
    ("tracepoint+", 5, False), ("tp+", 5, False),
    ("raw_tracepoint+", 17, False), ("raw_tp+", 17, False),
    ("raw_tracepoint.w+", 24, False), ("raw_tp.w+", 24, False),
    ("tp_btf+", 26, False), ("fentry+", 26, False), ("fmod_ret+", 26, False), ("fexit+", 26, False),
    ("fentry.s+", 26, False), ("fmod_ret.s+", 26, False), ("fexit.s+", 26, False), ("iter+", 26, False),
    ("iter.s+", 26, False), ("freplace+", 28, False), ("lsm+", 29, False), ("lsm.s+", 29, False),
    ("xdp.frags/devmap", 6, True), ("xdp/devmap", 6, False), ("xdp.frags/cpumap", 6, True),
    ("xdp/cpumap", 6, False), ("xdp.frags", 6, True), ("xdp", 6, False),
    ("perf_event", 7, False), ("lwt_in", 10, False), ("lwt_out", 11, False), ("lwt_xmit", 12, False),
    ("lwt_seg6local", 19, False), ("sockops", 13, False), ("sk_skb/stream_parser", 14, False),
    ("sk_skb/stream_verdict", 14, False), ("sk_skb", 14, False), ("sk_msg", 16, False),
    ("lirc_mode2", 20, False), ("flow_dissector", 22, False),
    ("cgroup_skb/ingress", 8, False), ("cgroup_skb/egress", 8, False), ("cgroup/skb", 8, False),
    ("cgroup/sock_create", 9, False), ("cgroup/sock_release", 9, False), ("cgroup/sock", 9, False),
    ("cgroup/post_bind4", 9, False), ("cgroup/post_bind6", 9, False), ("cgroup/dev", 15, False),
    ("cgroup/bind4", 18, False), ("cgroup/bind6", 18, False), ("cgroup/connect4", 18, False),
    ("cgroup/connect6", 18, False), ("cgroup/sendmsg4", 18, False), ("cgroup/sendmsg6", 18, False),
    ("cgroup/recvmsg4", 18, False), ("cgroup/recvmsg6", 18, False), ("cgroup/getpeername4", 18, False),
    ("cgroup/getpeername6", 18, False), ("cgroup/getsockname4", 18, False),
    ("cgroup/getsockname6", 18, False), ("cgroup/sysctl", 23, False), ("cgroup/getsockopt", 25, False),
    ("cgroup/setsockopt", 25, False), ("struct_ops+", 27, False), ("sk_lookup", 30, False),
    ("syscall", 31, False), ("netfilter", 32, False),
)

BPF_F_RDONLY_PROG = 1 << 7
BPF_F_MMAPABLE = 1 << 10
LEGACY_MAP_DEF_SIZE = 20  # struct bpf_map_def: type, key_size, value_size, max_entries, map_flags
_LDDW = I.BPF_LD | I.BPF_IMM | I.BPF_DW
_CALL = I.BPF_JMP | I.BPF_CALL


class LoaderError(BpfError):
    """An object that parses as ELF but cannot be turned into programs (libbpf's -EINVAL cases)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


def section_prog_type(sec_name: str) -> tuple[int, bool] | None:
    """``(prog_type, xdp_frags)`` for a program section name, or ``None`` when libbpf knows none."""
    for pat, ptype, frags in SECTION_DEFS:
        if pat.endswith("+"):
            pre = pat[:-1]
            ok = sec_name == pre or sec_name.startswith(pre + "/")
        elif pat.endswith("/"):
            ok = sec_name.startswith(pat)
        else:
            ok = sec_name == pat
        if ok:
            return ptype, frags
    return None


@dataclass
class MapSpec:
    """A map the object defines; ``kind`` is ``"btf"``, ``"legacy"`` or ``"data"``."""

    name: str
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    kind: str
    section: int          # ELF section index the definition (or the data) lives in
    offset: int = 0       # symbol value of the definition (legacy / btf)
    init: bytes | None = None  # initial value of a global-data map
    obj_name: str = ""    # libbpf's internal name ("<obj8>.data") for global data


@dataclass
class ProgSpec:
    """One program: a function of an executable section."""

    name: str
    section: str
    sec_index: int
    prog_type: int | None
    xdp_frags: bool
    start: int            # first slot within the section
    count: int            # number of slots

    @property
    def type_name(self) -> str:
        return PROG_TYPE_NAMES.get(self.prog_type or 0, "unspec")


@dataclass
class _Func:
    sec: Section
    start: int   # slot index in the section
    count: int
    name: str


@dataclass
class ObjectSpec:
    """An opened (not yet loaded) object; see the module docstring."""

    name: str
    elf: ElfObject
    license: str
    kern_version: int
    maps: dict[str, MapSpec]
    programs: list[ProgSpec]
    btf: B.Btf | None = None
    _funcs: dict[int, list[_Func]] = field(default_factory=dict)
    #: section name -> byte offsets of instructions with CO-RE relocations (.BTF.ext)
    core_relos: dict[str, list[int]] = field(default_factory=dict)

    def program(self, which: str) -> ProgSpec:
        """A program by function name, or by section name when that is unambiguous."""
        for p in self.programs:
            if p.name == which:
                return p
        hits = [p for p in self.programs if p.section == which]
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise LoaderError(which, f"section holds {len(hits)} programs ({', '.join(p.name for p in hits)}); "
                                     "name one")
        raise LoaderError(which, "no such program or section in the object")

    # -- linking ---------------------------------------------------------------------------------
    def _func_at(self, sec: Section, slot: int) -> _Func:
        for f in self._funcs.get(sec.index, []):
            if f.start == slot:
                return f
        raise LoaderError(sec.name, f"call target at insn {slot} is not the start of a function")

    def _map_for(self, sym: Symbol, where: str) -> MapSpec:
        for m in self.maps.values():
            if m.section == sym.shndx and (m.kind == "data" or m.offset == sym.value):
                return m
        raise LoaderError(where, f"relocation against symbol {sym.name!r} that is no map nor global data")

    def link(self, prog: ProgSpec | str, fd_of: Callable[[MapSpec], int]) -> list[Insn]:
        """The program's final instruction slots with maps resolved by ``fd_of`` and subprograms appended."""
        p = self.program(prog) if isinstance(prog, str) else prog
        main_sec = self.elf.by_index(p.sec_index)
        assert main_sec is not None
        out: list[Insn] = []
        placed: dict[tuple[int, int], int] = {}
        work: list[tuple[_Func, int]] = []

        def place(f: _Func) -> int:
            key = (f.sec.index, f.start)
            if key not in placed:
                placed[key] = len(out)
                out.extend(_slots(f.sec, f.start, f.count))
                work.append((f, placed[key]))
            return placed[key]

        place(_Func(main_sec, p.start, p.count, p.name))
        while work:
            f, base = work.pop(0)
            core = [o for o in self.core_relos.get(f.sec.name, []) if f.start <= o // 8 < f.start + f.count]
            if core:
                raise NotSupported(f"{f.sec.name}+{core[0]}: CO-RE relocations (BPF_CORE_READ, "
                                   "preserve_access_index) need the kernel's BTF")
            relocs = {r.offset // 8: r for r in f.sec.relocs if f.start <= r.offset // 8 < f.start + f.count}
            for r in f.sec.relocs:
                if r.offset % 8:
                    raise LoaderError(f.sec.name, f"relocation at offset {r.offset} is not slot-aligned")
            i = 0
            while i < f.count:
                ins = out[base + i]
                rel = relocs.get(f.start + i)
                where = f"{f.sec.name}+{(f.start + i) * 8}"
                if ins.opcode == _LDDW:
                    if i + 1 >= f.count:
                        raise LoaderError(where, "lddw without its second slot")
                    if rel is not None:
                        out[base + i], out[base + i + 1] = self._reloc_lddw(ins, out[base + i + 1], rel,
                                                                            fd_of, where)
                    elif ins.src not in (0,):
                        raise LoaderError(where, f"lddw with pseudo source {ins.src} and no relocation")
                    i += 2
                    continue
                if rel is not None and rel.type != R_BPF_64_32:
                    raise LoaderError(where, f"relocation type {rel.type} on a non-lddw instruction")
                if ins.opcode == _CALL and ins.src == I.BPF_PSEUDO_CALL:
                    if rel is not None:
                        tsec = self.elf.by_index(rel.sym.shndx)
                        if tsec is None or not tsec.is_code:
                            raise LoaderError(where, f"call to {rel.sym.name!r} outside any code section")
                        target = rel.sym.value // 8 + ins.imm + 1
                    else:
                        tsec, target = f.sec, f.start + i + ins.imm + 1
                    callee = self._func_at(tsec, target)
                    tbase = place(callee)
                    out[base + i] = ins._replace(imm=tbase + (target - callee.start) - (base + i) - 1)
                elif rel is not None:
                    raise LoaderError(where, "R_BPF_64_32 relocation on an instruction that is not a call")
                elif ins.opcode == _CALL and ins.src == I.BPF_PSEUDO_KFUNC_CALL:
                    raise NotSupported(f"{where}: kfunc calls")
                i += 1
        return out

    def _reloc_lddw(self, ins: Insn, hi: Insn, rel: Reloc, fd_of: Callable[[MapSpec], int],
                    where: str) -> tuple[Insn, Insn]:
        if rel.type != R_BPF_64_64:
            raise LoaderError(where, f"relocation type {rel.type} on lddw (expected R_BPF_64_64)")
        sym = rel.sym
        if sym.shndx < 0:
            raise NotSupported(f"{where}: extern symbol {sym.name!r} (.kconfig/.ksyms)")
        tsec = self.elf.by_index(sym.shndx)
        if tsec is not None and tsec.is_code:
            raise NotSupported(f"{where}: lddw of a function address (BPF_PSEUDO_FUNC callbacks)")
        m = self._map_for(sym, where)
        if m.kind == "data":
            off = ins.imm + sym.value
            if not 0 <= off < max(m.value_size, 1):
                raise LoaderError(where, f"offset {off} outside {m.name!r} ({m.value_size} bytes)")
            return (ins._replace(src=I.BPF_PSEUDO_MAP_VALUE, imm=fd_of(m)), hi._replace(imm=off))
        return (ins._replace(src=I.BPF_PSEUDO_MAP_FD, imm=fd_of(m)), hi._replace(imm=0))


def _slots(sec: Section, start: int, count: int) -> list[Insn]:
    data = sec.data[start * 8:(start + count) * 8]
    if len(data) != count * 8:
        raise ElfError(sec.name, f"function at insn {start} runs past the section end")
    return I.decode(data)


def _cstr(sec: Section) -> str:
    raw = sec.data.split(b"\0", 1)[0]
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ElfError(sec.name, "not a valid string") from None


def _is_data_section(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in (".data", ".rodata", ".bss"))


def _legacy_maps(elf: ElfObject, sec: Section, out: dict[str, MapSpec]) -> None:
    """``bpf_object__init_user_maps``: the section is split evenly among its symbols."""
    syms = [s for s in elf.symbols_in(sec.index) if s.type != "STT_SECTION" and s.name]
    if not syms or not sec.data or len(sec.data) % len(syms):
        raise ElfError(sec.name, f"unable to determine map definition size ({len(sec.data)} bytes, "
                                 f"{len(syms)} symbols)")
    size = len(sec.data) // len(syms)
    if size < 4 * 4:
        raise ElfError(sec.name, f"map definitions of {size} bytes are too short")
    for s in syms:
        if s.value + size > len(sec.data):
            raise ElfError(sec.name, f"map {s.name!r} definition runs past the section end")
        raw = sec.data[s.value:s.value + size].ljust(LEGACY_MAP_DEF_SIZE, b"\0")
        if any(raw[LEGACY_MAP_DEF_SIZE:]):
            raise NotSupported(f"map {s.name!r}: unrecognised fields beyond struct bpf_map_def")
        vals = [int.from_bytes(raw[j:j + 4], "little") for j in range(0, LEGACY_MAP_DEF_SIZE, 4)]
        out[s.name] = MapSpec(s.name, vals[0], vals[1], vals[2], vals[3], vals[4], "legacy", sec.index, s.value)


def _btf_maps(elf: ElfObject, sec: Section, btf: B.Btf | None, out: dict[str, MapSpec]) -> None:
    if btf is None:
        raise ElfError(sec.name, "BTF-defined maps need a .BTF section")
    defs = B.map_defs(btf)
    for s in elf.symbols_in(sec.index):
        if s.type == "STT_SECTION" or not s.name:
            continue
        d = defs.get(s.name)
        if d is None:
            raise ElfError(sec.name, f"map {s.name!r} has no BTF definition in DATASEC '.maps'")
        if d.name in out:
            raise ElfError(sec.name, f"map {s.name!r} defined twice")
        out[s.name] = MapSpec(s.name, d.map_type, d.key_size, d.value_size, d.max_entries, d.map_flags, "btf",
                              sec.index, s.value)


def _obj_name(path: str) -> str:
    base = os.path.basename(path)
    return base[:-2] if base.endswith(".o") else base


def open_object(source: str | bytes | os.PathLike[str], name: str = "") -> ObjectSpec:
    """Parse an object (a path or its bytes); raises :class:`ElfError`, :class:`B.BtfError`,
    :class:`LoaderError` or :class:`NotSupported` -- never anything else."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        name = name or "obj"
    else:
        try:
            with open(source, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise LoaderError(str(source), exc.strerror or str(exc)) from None
        name = name or _obj_name(str(source))
    elf = parse(data)
    btf_sec = elf.section(".BTF")
    btf = B.Btf(btf_sec.data) if btf_sec is not None else None
    ext_sec = elf.section(".BTF.ext")
    core = B.core_relo_offsets(ext_sec.data, btf) if ext_sec is not None and btf is not None else {}
    lic_sec = elf.section("license")
    license_ = _cstr(lic_sec) if lic_sec is not None else ""
    ver_sec = elf.section("version")
    kver = 0
    if ver_sec is not None:
        if len(ver_sec.data) != 4:
            raise ElfError("version", f"must be 4 bytes, is {len(ver_sec.data)}")
        kver = int.from_bytes(ver_sec.data, "little")

    maps: dict[str, MapSpec] = {}
    programs: list[ProgSpec] = []
    funcs: dict[int, list[_Func]] = {}
    for sec in elf.sections:
        if sec.name == "maps":
            _legacy_maps(elf, sec, maps)
        elif sec.name == ".maps":
            _btf_maps(elf, sec, btf, maps)
        elif _is_data_section(sec.name) and not sec.is_code:
            if not sec.data:
                continue
            flags = BPF_F_MMAPABLE | (BPF_F_RDONLY_PROG if sec.name.startswith(".rodata") else 0)
            obj = (name[:8] + sec.name)[:15]  # libbpf internal_map_name: 8 chars of the object name
            maps[sec.name] = MapSpec(sec.name, M.BPF_MAP_TYPE_ARRAY, 4, len(sec.data), 1, flags, "data",
                                     sec.index, 0, sec.data, obj)
        elif sec.is_code:
            fl = _functions(elf, sec)
            funcs[sec.index] = fl
            if sec.name == ".text":
                continue
            pt = section_prog_type(sec.name)
            for f in fl:
                programs.append(ProgSpec(f.name, sec.name, sec.index, pt[0] if pt else None,
                                         pt[1] if pt else False, f.start, f.count))
    return ObjectSpec(name, elf, license_, kver, maps, programs, btf, funcs, core)


def _functions(elf: ElfObject, sec: Section) -> list[_Func]:
    """The functions of a code section from its ``STT_FUNC`` symbols (the whole section when none)."""
    if len(sec.data) % 8:
        raise ElfError(sec.name, f"size {len(sec.data)} is not a multiple of 8")
    nslots = len(sec.data) // 8
    out: list[_Func] = []
    for s in elf.symbols_in(sec.index):
        if s.type != "STT_FUNC":
            continue
        if s.value % 8 or s.size % 8 or s.size == 0 or s.value + s.size > len(sec.data):
            raise ElfError(sec.name, f"function {s.name!r} has a bad offset/size ({s.value}, {s.size})")
        out.append(_Func(sec, s.value // 8, s.size // 8, s.name))
    if not out and nslots:
        out.append(_Func(sec, 0, nslots, sec.name.replace("/", "_")))
    out.sort(key=lambda f: f.start)
    return out


# -- loading into the model --------------------------------------------------------------------
@dataclass
class LoadedObject:
    """The result of :func:`load_object`: model maps by name, Programs by function name."""

    spec: ObjectSpec
    maps: dict[str, M.BpfMap]
    programs: dict[str, Program]

    def program(self, which: str) -> Program:
        """A loaded program by function name, or by section name when unambiguous."""
        return self.programs[self.spec.program(which).name]


def create_model_map(ms: MapSpec) -> M.BpfMap:
    """``bpf(BPF_MAP_CREATE)`` in the model for one spec, with global data written in."""
    m = new_map(ms.map_type, ms.key_size, ms.value_size, ms.max_entries, ms.map_flags,
                name=ms.obj_name or ms.name[:15])
    if ms.init is not None:
        m.update(bytes(4), ms.init)
    return m


def load_object(source: str | bytes | os.PathLike[str] | ObjectSpec,
                only: Iterable[str] | None = None, *, verifier: bool | None = None) -> LoadedObject:
    """Open (unless given a spec), create every map, link and load the programs (all, or ``only``).

    Each program is verified as ``bpf(BPF_PROG_LOAD)`` does (``verifier=None`` follows
    :data:`netstack.bpf.progs.VERIFY_ON_LOAD`; ``False`` skips the path-sensitive verifier).  A
    refused program raises :class:`BpfVerifyError` with ``errno``, the level-1 ``log`` and
    ``prog_name`` -- what libbpf prints (``libbpf: prog 'NAME': BPF program load failed: ...``,
    then the log between ``-- BEGIN PROG LOAD LOG --`` and ``-- END PROG LOAD LOG --``).
    """
    spec = source if isinstance(source, ObjectSpec) else open_object(source)
    models = {name: create_model_map(ms) for name, ms in spec.maps.items()}
    wanted = [spec.program(w) for w in only] if only is not None else spec.programs
    programs: dict[str, Program] = {}
    for p in wanted:
        if p.prog_type is None:
            raise LoaderError(p.section, f"program '{p.name}': unknown section name, cannot guess the type")
        if p.xdp_frags:
            raise NotSupported(f"program '{p.name}': XDP multi-buffer (xdp.frags) programs")
        code = spec.link(p, lambda ms: models[ms.name].fd)
        try:
            programs[p.name] = Program(p.prog_type, code, name=p.name, verifier=verifier)
        except BpfVerifyError as exc:
            exc.prog_name = p.name
            raise
    return LoadedObject(spec, models, programs)


def load_kernel(spec: ObjectSpec, which: str, log_level: int = 1) -> tuple[KProg, dict[str, KMap]]:
    """Load one program of ``spec`` into the running kernel: ``(KProg, {name: KMap})``.

    Maps are created with the same attributes (global data written in, as libbpf does before
    ``BPF_MAP_FREEZE``), then the program is linked against their fds.  The caller closes them.
    """
    p = spec.program(which)
    if p.prog_type is None:
        raise LoaderError(p.section, f"program '{p.name}': unknown section name")
    kmaps: dict[str, KMap] = {}
    try:
        for name, ms in spec.maps.items():
            km = KMap(ms.map_type, ms.key_size, ms.value_size, ms.max_entries, ms.map_flags)
            kmaps[name] = km
            if ms.init is not None:
                km.update(bytes(4), ms.init)
        code = spec.link(p, lambda ms: kmaps[ms.name].fd)
        return KProg(p.prog_type, code, license=spec.license or "", log_level=log_level), dict(kmaps)
    except BaseException:
        for km in kmaps.values():
            km.close()
        raise


MAP_TYPE_NAMES = {
    1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array", 5: "percpu_hash", 6: "percpu_array",
    7: "stack_trace", 8: "cgroup_array", 9: "lru_hash", 10: "lru_percpu_hash", 11: "lpm_trie",
    12: "array_of_maps", 13: "hash_of_maps", 14: "devmap", 15: "sockmap", 16: "cpumap", 17: "xskmap",
    18: "sockhash", 19: "cgroup_storage", 20: "reuseport_sockarray", 21: "percpu_cgroup_storage",
    22: "queue", 23: "stack", 24: "sk_storage", 25: "devmap_hash", 26: "struct_ops", 27: "ringbuf",
    28: "inode_storage", 29: "task_storage", 30: "bloom_filter", 31: "user_ringbuf", 32: "cgrp_storage",
    33: "arena",
}


def prog_tag(insns: Iterable[Insn]) -> str:
    """``bpf_prog_calc_tag`` (kernel/bpf/core.c): the first 8 bytes of the SHA-256 (SHA-1 before
    Linux 6.18; measured on 6.18 through /proc/PID/fdinfo ``prog_tag``) of the program
    with the map fds of ``lddw`` (``BPF_PSEUDO_MAP_FD`` / ``_VALUE``) zeroed in both slots, as hex."""
    import hashlib
    out: list[Insn] = []
    was_ld_map = False
    for ins in insns:
        if not was_ld_map and ins.opcode == _LDDW and ins.src in (I.BPF_PSEUDO_MAP_FD, I.BPF_PSEUDO_MAP_VALUE):
            was_ld_map = True
            ins = ins._replace(imm=0)
        elif was_ld_map and ins.opcode == 0 and ins.dst == 0 and ins.src == 0 and ins.off == 0:
            was_ld_map = False
            ins = ins._replace(imm=0)
        else:
            was_ld_map = False
        out.append(ins)
    return hashlib.sha256(I.encode(out)).digest()[:8].hex()
