"""A checked view of a clang-built eBPF ELF object (``clang -target bpf -c``).

libbpf (tools/lib/bpf/libbpf.c ``bpf_object__elf_init`` / ``bpf_object__elf_collect``)
reads an object's sections, its symbol table and the ``.rel<sec>`` relocation
sections.  This module does the same with pyelftools and nothing more: it
returns plain data (:class:`ElfObject`, :class:`Section`, :class:`Symbol`,
:class:`Reloc`) that :mod:`netstack.bpf.loader` turns into maps and programs.

The input is untrusted.  pyelftools raises a zoo of exception types on
malformed files (its own ``ELFError``, construct errors, ``struct.error``,
``IndexError``, ``UnicodeDecodeError`` ...), so every step that touches a
section is wrapped and re-raised as :class:`ElfError` naming the section, the
way libbpf's ``pr_warn("elf: ... section %s")`` messages do.  Sizes are checked
against the file before anything is allocated, so a hostile header cannot make
the loader allocate gigabytes or loop.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from .errors import BpfError, NotSupported

EM_BPF = 247
SHT_PROGBITS = "SHT_PROGBITS"
SHT_NOBITS = "SHT_NOBITS"
SHT_REL = "SHT_REL"
SHF_EXECINSTR = 0x4

# ELF relocation types of the BPF backend (llvm/lib/Target/BPF; Documentation/bpf/llvm_reloc.rst)
R_BPF_NONE = 0
R_BPF_64_64 = 1        # lddw: 64-bit immediate split over two slots
R_BPF_64_ABS64 = 2     # data: 64-bit absolute (BTF/DWARF)
R_BPF_64_ABS32 = 3     # data: 32-bit absolute (BTF/DWARF)
R_BPF_64_NODYLD32 = 4  # .BTF.ext line/func info
R_BPF_64_32 = 10       # call: imm is (target - pc - 1) in slots

#: Largest NOBITS section (.bss) we allocate; the kernel's array-map value limit is far above
#: anything a real program has, but a hostile header must not make us allocate gigabytes.
MAX_NOBITS = 1 << 24

T = TypeVar("T")


class ElfError(BpfError):
    """A malformed or unusable ELF object; ``section`` names where (``""`` for the header)."""

    def __init__(self, section: str, message: str) -> None:
        super().__init__(f"elf: section {section!r}: {message}" if section else f"elf: {message}")
        self.section = section
        self.message = message


@dataclass(frozen=True)
class Symbol:
    """An ``Elf64_Sym``: ``shndx`` is the section index (or -1 for undefined / special)."""

    name: str
    value: int
    size: int
    type: str       # STT_FUNC, STT_OBJECT, STT_SECTION, STT_NOTYPE, ...
    bind: str       # STB_GLOBAL, STB_LOCAL, STB_WEAK
    shndx: int


@dataclass(frozen=True)
class Reloc:
    """An ``Elf64_Rel`` of a BPF object: byte offset in its section, type, symbol."""

    offset: int
    type: int
    sym: Symbol


@dataclass
class Section:
    """One section; ``data`` is its bytes (zeros for NOBITS), ``relocs`` from ``.rel<name>``."""

    index: int
    name: str
    type: str
    flags: int
    data: bytes
    relocs: list[Reloc] = field(default_factory=list)

    @property
    def is_code(self) -> bool:
        return self.type == SHT_PROGBITS and bool(self.flags & SHF_EXECINSTR)


@dataclass
class ElfObject:
    """The parts of an object libbpf looks at."""

    sections: list[Section]
    symbols: list[Symbol]

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def by_index(self, index: int) -> Section | None:
        for s in self.sections:
            if s.index == index:
                return s
        return None

    def symbols_in(self, index: int) -> list[Symbol]:
        return [s for s in self.symbols if s.shndx == index]


def _guard(section: str, what: Callable[[], T]) -> T:
    """Run one pyelftools step; any failure becomes an :class:`ElfError` naming ``section``."""
    try:
        return what()
    except (ElfError, NotSupported):
        raise
    except Exception as exc:  # noqa: BLE001 - pyelftools raises arbitrary types on hostile input
        raise ElfError(section, f"malformed ({type(exc).__name__}: {exc})") from None


def parse(data: bytes) -> ElfObject:
    """Parse an eBPF relocatable object; raises :class:`ElfError` / :class:`NotSupported`."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

    data = bytes(data)
    if len(data) < 64 or data[:4] != b"\x7fELF":
        raise ElfError("", "not an ELF file (bad magic or shorter than the ELF header)")
    if data[4] != 2:
        raise NotSupported("32-bit ELF objects (eBPF objects are ELFCLASS64)")
    if data[5] != 1:
        raise NotSupported("big-endian eBPF objects")
    elf = _guard("", lambda: ELFFile(io.BytesIO(data)))
    machine = _guard("", lambda: elf["e_machine"])
    if machine not in ("EM_BPF", EM_BPF):
        raise ElfError("", f"e_machine is {machine}, not EM_BPF")
    if _guard("", lambda: elf["e_type"]) != "ET_REL":
        raise ElfError("", "not a relocatable object (e_type must be ET_REL)")
    nsec = _guard("", elf.num_sections)
    if nsec * 64 > len(data):
        raise ElfError("", f"{nsec} section headers do not fit in {len(data)} bytes")

    raw: list[tuple[int, object]] = []
    for i in range(nsec):
        raw.append((i, _guard(f"#{i}", lambda i=i: elf.get_section(i))))
    names: dict[int, str] = {}
    for i, sec in raw:
        names[i] = _guard(f"#{i}", lambda sec=sec: str(sec.name))  # type: ignore[attr-defined]

    # Symbols: the (single) SHT_SYMTAB section.
    symbols: list[Symbol] = []
    symtab_index = -1
    for i, sec in raw:
        if isinstance(sec, SymbolTableSection) and sec["sh_type"] == "SHT_SYMTAB":
            if symtab_index >= 0:
                raise ElfError(names[i], "more than one symbol table")
            symtab_index = i
            symbols = _guard(names[i], lambda sec=sec: _read_symbols(sec, nsec, len(data)))
    if symtab_index < 0:
        raise ElfError("", "no symbol table (.symtab)")

    sections: list[Section] = []
    by_index: dict[int, Section] = {}
    for i, sec in raw:
        if i == 0:
            continue
        name = names[i]
        stype = _guard(name, lambda sec=sec: sec["sh_type"])  # type: ignore[index]
        if stype not in (SHT_PROGBITS, SHT_NOBITS):
            continue
        size = _guard(name, lambda sec=sec: int(sec["sh_size"]))  # type: ignore[index]
        if stype == SHT_NOBITS:
            if size > MAX_NOBITS:
                raise ElfError(name, f"NOBITS section of {size} bytes is too large")
            body = bytes(size)
        else:
            off = _guard(name, lambda sec=sec: int(sec["sh_offset"]))  # type: ignore[index]
            if off + size > len(data):
                raise ElfError(name, f"section data [{off}, {off + size}) runs past the end of the file")
            body = data[off:off + size]
        flags = _guard(name, lambda sec=sec: int(sec["sh_flags"]))  # type: ignore[index]
        s = Section(i, name, stype, flags, body)
        sections.append(s)
        by_index[i] = s

    for i, sec in raw:
        if not isinstance(sec, RelocationSection):
            continue
        name = names[i]
        if _guard(name, lambda sec=sec: sec["sh_type"]) != SHT_REL:
            raise ElfError(name, "RELA relocations are not used by the BPF backend")
        target = _guard(name, lambda sec=sec: int(sec["sh_info"]))
        link = _guard(name, lambda sec=sec: int(sec["sh_link"]))
        if link != symtab_index:
            raise ElfError(name, f"relocations refer to section #{link}, not the symbol table")
        dest = by_index.get(target)
        if target >= nsec or target <= 0:
            raise ElfError(name, f"relocations for section #{target}, which does not exist")
        if dest is None or not dest.is_code:
            continue  # relocations of data/BTF/debug sections: libbpf skips them too ("skipping relo section")
        dest.relocs = _guard(name, lambda sec=sec, dest=dest: _read_relocs(sec, symbols, dest))
    return ElfObject(sections, symbols)


def _read_symbols(sec: object, nsec: int, file_size: int) -> list[Symbol]:
    count = int(sec["sh_size"]) // max(int(sec["sh_entsize"]) or 24, 1)  # type: ignore[index]
    if count * 24 > file_size:
        raise ElfError(sec.name, f"{count} symbols do not fit in the file")  # type: ignore[attr-defined]
    out: list[Symbol] = []
    for sym in sec.iter_symbols():  # type: ignore[attr-defined]
        shndx = sym["st_shndx"]
        idx = shndx if isinstance(shndx, int) and 0 < shndx < nsec else -1
        out.append(Symbol(str(sym.name), int(sym["st_value"]), int(sym["st_size"]),
                          str(sym["st_info"]["type"]), str(sym["st_info"]["bind"]), idx))
    return out


def _read_relocs(sec: object, symbols: list[Symbol], dest: Section) -> list[Reloc]:
    name = sec.name  # type: ignore[attr-defined]
    n = sec.num_relocations()  # type: ignore[attr-defined]
    if n * 16 > int(sec["sh_size"]) + 16:  # type: ignore[index]
        raise ElfError(name, "relocation count exceeds the section size")
    out: list[Reloc] = []
    for rel in sec.iter_relocations():  # type: ignore[attr-defined]
        symi = int(rel["r_info_sym"])
        if not 0 <= symi < len(symbols):
            raise ElfError(name, f"relocation names symbol #{symi}, out of range")
        off = int(rel["r_offset"])
        if off >= len(dest.data) and dest.type != SHT_NOBITS:
            raise ElfError(name, f"relocation at offset {off} is outside {dest.name!r}")
        out.append(Reloc(off, int(rel["r_info_type"]), symbols[symi]))
    return out
