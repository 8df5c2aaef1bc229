"""Just enough BTF to read BTF-defined maps (``.maps``) from a clang object.

The format is include/uapi/linux/btf.h: a header (magic ``0xeB9F``, version 1,
``hdr_len``, then the type and string sections as offsets from the end of the
header), a sequence of ``struct btf_type`` records each followed by kind-specific
data, and a string table.  Type ids count from 1 (0 is ``void``).

libbpf (``parse_btf_map_def`` in tools/lib/bpf/libbpf.c) reads a map definition
such as::

    struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, struct flow);
             __uint(max_entries, 1024); } flows SEC(".maps");

by walking the anonymous struct: ``__uint(name, N)`` is a member of type
``int (*)[N]`` (so N is the array's ``nelems``) and ``__type(name, T)`` a member of
type ``T *`` (the key/value size is ``sizeof(T)``).  :func:`map_defs` does that for
every ``VAR`` of the ``.maps`` ``DATASEC``.  Everything else in BTF (func info,
CO-RE relocations) is parsed only as far as needed to skip it; malformed BTF raises
:class:`BtfError`, never an arbitrary exception.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .errors import BpfError, NotSupported

BTF_MAGIC = 0xEB9F
MAX_RESOLVE_DEPTH = 32  # kernel/bpf/btf.c

# enum btf_kind
KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD, KIND_TYPEDEF = range(1, 9)
KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC = range(9, 16)
KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64 = range(16, 20)

KIND_NAMES = {KIND_INT: "INT", KIND_PTR: "PTR", KIND_ARRAY: "ARRAY", KIND_STRUCT: "STRUCT", KIND_UNION: "UNION",
              KIND_ENUM: "ENUM", KIND_FWD: "FWD", KIND_TYPEDEF: "TYPEDEF", KIND_VOLATILE: "VOLATILE",
              KIND_CONST: "CONST", KIND_RESTRICT: "RESTRICT", KIND_FUNC: "FUNC", KIND_FUNC_PROTO: "FUNC_PROTO",
              KIND_VAR: "VAR", KIND_DATASEC: "DATASEC", KIND_FLOAT: "FLOAT", KIND_DECL_TAG: "DECL_TAG",
              KIND_TYPE_TAG: "TYPE_TAG", KIND_ENUM64: "ENUM64"}
_MODIFIERS = {KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG}
_SIZED = {KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_FLOAT, KIND_DATASEC}
#: Bytes following ``struct btf_type``: fixed, and per ``vlen`` entry.
_EXTRA = {KIND_INT: (4, 0), KIND_ARRAY: (12, 0), KIND_STRUCT: (0, 12), KIND_UNION: (0, 12), KIND_ENUM: (0, 8),
          KIND_FUNC_PROTO: (0, 8), KIND_VAR: (4, 0), KIND_DATASEC: (0, 12), KIND_DECL_TAG: (4, 0),
          KIND_ENUM64: (0, 12)}


class BtfError(BpfError):
    """Malformed or unusable BTF (``.BTF`` section)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"elf: section '.BTF': {message}")
        self.message = message


@dataclass
class BtfType:
    """One ``struct btf_type`` with its trailing data decoded into ``members`` / ``array``."""

    id: int
    kind: int
    name: str
    vlen: int
    kind_flag: bool
    size_or_type: int
    #: STRUCT/UNION: (name, type, bit offset); DATASEC: (var type id, offset, size); others empty.
    members: list[tuple[str | int, int, int]] = field(default_factory=list)
    #: ARRAY: (elem type, index type, nelems)
    array: tuple[int, int, int] | None = None


class Btf:
    """A parsed ``.BTF`` section: ``types[id]`` (``types[0]`` is ``None`` for void)."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 24:
            raise BtfError("shorter than the BTF header")
        magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != BTF_MAGIC:
            raise BtfError(f"bad magic 0x{magic:04x} (big-endian BTF is not supported)")
        if version != 1:
            raise BtfError(f"unsupported BTF version {version}")
        if hdr_len < 24 or hdr_len > len(data):
            raise BtfError(f"bad header length {hdr_len}")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
        body = data[hdr_len:]
        if type_off + type_len > len(body) or str_off + str_len > len(body):
            raise BtfError("type or string section runs past the end of .BTF")
        self.strings = body[str_off:str_off + str_len]
        self.types: list[BtfType | None] = [None]
        self._parse_types(body[type_off:type_off + type_len])

    def _str(self, off: int) -> str:
        if off == 0 and not self.strings:
            return ""
        if off >= len(self.strings):
            raise BtfError(f"string offset {off} out of range")
        end = self.strings.find(b"\0", off)
        if end < 0:
            raise BtfError(f"unterminated string at offset {off}")
        try:
            return self.strings[off:end].decode()
        except UnicodeDecodeError:
            raise BtfError(f"string at offset {off} is not UTF-8") from None

    def _parse_types(self, buf: bytes) -> None:
        pos = 0
        while pos < len(buf):
            if pos + 12 > len(buf):
                raise BtfError(f"truncated type record at offset {pos}")
            name_off, info, st = struct.unpack_from("<III", buf, pos)
            pos += 12
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            if kind not in KIND_NAMES:
                raise BtfError(f"type [{len(self.types)}]: unknown kind {kind}")
            fixed, per = _EXTRA.get(kind, (0, 0))
            need = fixed + per * vlen
            if pos + need > len(buf):
                raise BtfError(f"type [{len(self.types)}]: truncated {KIND_NAMES[kind]} data")
            t = BtfType(len(self.types), kind, self._str(name_off), vlen, bool(info >> 31), st)
            if kind == KIND_ARRAY:
                t.array = struct.unpack_from("<III", buf, pos)
            elif kind in (KIND_STRUCT, KIND_UNION):
                for i in range(vlen):
                    m_name, m_type, m_off = struct.unpack_from("<III", buf, pos + 12 * i)
                    t.members.append((self._str(m_name), m_type, m_off))
            elif kind == KIND_DATASEC:
                for i in range(vlen):
                    t.members.append(struct.unpack_from("<III", buf, pos + 12 * i))
            pos += need
            self.types.append(t)

    def get(self, tid: int) -> BtfType:
        if not 0 < tid < len(self.types):
            raise BtfError(f"type id {tid} out of range")
        t = self.types[tid]
        assert t is not None
        return t

    def skip_mods(self, tid: int) -> BtfType:
        """Follow typedef/const/volatile/restrict/type_tag (``skip_mods_and_typedefs``)."""
        for _ in range(MAX_RESOLVE_DEPTH):
            t = self.get(tid)
            if t.kind not in _MODIFIERS:
                return t
            tid = t.size_or_type
        raise BtfError(f"type [{tid}]: modifier chain too long")

    def size_of(self, tid: int, depth: int = 0) -> int:
        """``btf__resolve_size``: bytes of a type (pointers are 8 bytes)."""
        if depth > MAX_RESOLVE_DEPTH:
            raise BtfError(f"type [{tid}]: cannot resolve size (loop or chain too deep)")
        t = self.get(tid)
        if t.kind in _SIZED:
            return t.size_or_type
        if t.kind == KIND_PTR:
            return 8
        if t.kind == KIND_ARRAY:
            assert t.array is not None
            return t.array[2] * self.size_of(t.array[0], depth + 1)
        if t.kind in _MODIFIERS or t.kind == KIND_VAR:
            return self.size_of(t.size_or_type, depth + 1)
        raise BtfError(f"type [{tid}] {KIND_NAMES[t.kind]} has no size")

    def datasec(self, name: str) -> BtfType | None:
        for t in self.types:
            if t is not None and t.kind == KIND_DATASEC and t.name == name:
                return t
        return None


@dataclass
class MapDef:
    """A BTF-defined map: the fields ``bpf(BPF_MAP_CREATE)`` needs."""

    name: str
    map_type: int = 0
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    map_flags: int = 0
    numa_node: int = 0
    pinning: int = 0
    key_type_id: int = 0
    value_type_id: int = 0


_INT_FIELDS = {"type": "map_type", "max_entries": "max_entries", "map_flags": "map_flags",
               "numa_node": "numa_node", "key_size": "key_size", "value_size": "value_size",
               "pinning": "pinning"}


def _field_int(btf: Btf, map_name: str, m_name: str, m_type: int) -> int:
    """``get_map_field_int``: the member must be ``int (*)[N]``; the value is N."""
    ptr = btf.skip_mods(m_type)
    if ptr.kind != KIND_PTR:
        raise BtfError(f"map '{map_name}': attr '{m_name}': expected PTR, got {KIND_NAMES[ptr.kind]}")
    arr = btf.skip_mods(ptr.size_or_type)
    if arr.kind != KIND_ARRAY or arr.array is None:
        raise BtfError(f"map '{map_name}': attr '{m_name}': type [{ptr.size_or_type}] is not an array")
    return arr.array[2]


def parse_map_def(btf: Btf, name: str, var_type: int) -> MapDef:
    """``parse_btf_map_def`` for one ``.maps`` variable."""
    st = btf.skip_mods(var_type)
    if st.kind != KIND_STRUCT:
        raise BtfError(f"map '{name}': unexpected def kind {KIND_NAMES[st.kind]}")
    d = MapDef(name)
    for m_name, m_type, _off in st.members:
        if m_name in _INT_FIELDS:
            val = _field_int(btf, name, str(m_name), m_type)
            attr = _INT_FIELDS[str(m_name)]
            if attr in ("key_size", "value_size") and getattr(d, attr) and getattr(d, attr) != val:
                raise BtfError(f"map '{name}': conflicting {m_name} {getattr(d, attr)} != {val}")
            setattr(d, attr, val)
        elif m_name in ("key", "value"):
            ptr = btf.skip_mods(m_type)
            if ptr.kind != KIND_PTR:
                raise BtfError(f"map '{name}': {m_name} spec is not PTR: {KIND_NAMES[ptr.kind]}")
            size = btf.size_of(ptr.size_or_type)
            attr = f"{m_name}_size"
            if getattr(d, attr) and getattr(d, attr) != size:
                raise BtfError(f"map '{name}': conflicting {m_name} size {getattr(d, attr)} != {size}")
            setattr(d, attr, size)
            setattr(d, f"{m_name}_type_id", ptr.size_or_type)
        elif m_name == "values":
            raise NotSupported(f"map '{name}': initial 'values' (map-in-map / prog array init)")
        elif m_name == "map_extra":
            raise NotSupported(f"map '{name}': map_extra")
        else:
            raise BtfError(f"map '{name}': unknown field '{m_name}'")
    if d.pinning:
        raise NotSupported(f"map '{name}': pinning")
    return d


def map_defs(btf: Btf) -> dict[str, MapDef]:
    """Every map of the ``.maps`` DATASEC, by variable name (empty when there is none)."""
    sec = btf.datasec(".maps")
    if sec is None:
        return {}
    out: dict[str, MapDef] = {}
    for var_id, _off, _size in sec.members:
        var = btf.get(int(var_id))
        if var.kind != KIND_VAR:
            raise BtfError(f"DATASEC '.maps' entry [{var_id}] is {KIND_NAMES[var.kind]}, not VAR")
        out[var.name] = parse_map_def(btf, var.name, var.size_or_type)
    return out


def core_relo_offsets(ext: bytes, btf: Btf) -> dict[str, list[int]]:
    """Byte offsets of the instructions carrying CO-RE relocations, by section name.

    ``.BTF.ext`` (``struct btf_ext_header``: magic, version, flags, hdr_len, then
    func_info / line_info and, when ``hdr_len >= 32``, ``core_relo_off``/``core_relo_len``,
    all relative to the end of the header).  The CO-RE part is a record size followed by
    per-section blocks ``{sec_name_off, num_info, struct bpf_core_relo[num_info]}`` whose
    first field is ``insn_off``.  libbpf rewrites those instructions against the running
    kernel's BTF (``bpf_core_apply_relo``); the loader refuses them instead of running the
    compile-time offsets as if they had been relocated.
    """
    if len(ext) < 24:
        raise BtfError(".BTF.ext shorter than its header")
    magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", ext, 0)
    if magic != BTF_MAGIC or version != 1:
        raise BtfError(f".BTF.ext: bad magic 0x{magic:04x} or version {version}")
    if hdr_len < 32 or hdr_len > len(ext):
        return {}  # no CO-RE section in this header layout
    off, length = struct.unpack_from("<II", ext, 24)
    body = ext[hdr_len:]
    if off + length > len(body):
        raise BtfError(".BTF.ext: CO-RE relocation info runs past the section end")
    data = body[off:off + length]
    out: dict[str, list[int]] = {}
    if len(data) < 4:
        return out
    rec = struct.unpack_from("<I", data, 0)[0]
    if rec < 16 or rec % 4:
        raise BtfError(f".BTF.ext: CO-RE record size {rec} is invalid")
    pos = 4
    while pos < len(data):
        if pos + 8 > len(data):
            raise BtfError(".BTF.ext: truncated CO-RE section header")
        name_off, num = struct.unpack_from("<II", data, pos)
        pos += 8
        if pos + num * rec > len(data):
            raise BtfError(".BTF.ext: truncated CO-RE records")
        out.setdefault(btf._str(name_off), []).extend(
            struct.unpack_from("<I", data, pos + i * rec)[0] for i in range(num))
        pos += num * rec
    return out
