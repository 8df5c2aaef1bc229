"""ELF loading of clang-built objects (tests/bpf/progs): maps, global data, relocations,
subprograms, program types -- run in the model and, as root, in the kernel (same .o,
relocated by our loader, loaded through our bpf(2) wrapper) with identical results."""
from __future__ import annotations

import errno
import mmap
import struct

import pytest

from netstack.bpf import btf as B
from netstack.bpf import context as C
from netstack.bpf import insn as I
from netstack.bpf import loader as L
from netstack.bpf import maps as M
from netstack.bpf import progs as P
from netstack.bpf.check import verify
from netstack.bpf.elf import ElfError, parse
from netstack.bpf.errors import BpfError, NotSupported
from netstack.bpf.kernel import KernelBpfError, available

from .progs.frames import FRAMES, ipv4, obj

KERNEL_REASON = available()
needs_kernel = pytest.mark.skipif(KERNEL_REASON is not None, reason=f"bpf(2) unusable here: {KERNEL_REASON}")


# -- section names ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name,expected", [
    ("xdp", (6, False)), ("xdp.frags", (6, True)), ("xdp/devmap", (6, False)), ("xdp/legacy", None),
    ("tc", (3, False)), ("tc/ingress", (3, False)), ("tcx/egress", (3, False)), ("classifier", (3, False)),
    ("action", (4, False)), ("socket", (1, False)), ("socket/foo", None), ("kprobe/ip_rcv", (2, False)),
    ("kprobe", (2, False)), ("kprobefoo", None), ("tracepoint/net/netif_receive_skb", (5, False)),
    ("tp/x/y", (5, False)), ("raw_tp/kfree_skb", (17, False)), ("fentry/ip_rcv", (26, False)),
    ("cgroup_skb/ingress", (8, False)), ("sk_skb/stream_verdict", (14, False)), (".text", None),
])
def test_section_names_map_to_libbpf_prog_types(name: str, expected: tuple[int, bool] | None) -> None:
    assert L.section_prog_type(name) == expected


# -- what each object declares ---------------------------------------------------------------------
def _shape(spec: L.ObjectSpec) -> dict[str, tuple[int, int, int, int, int, str]]:
    return {n: (m.map_type, m.key_size, m.value_size, m.max_entries, m.map_flags, m.kind) for n, m in spec.maps.items()}


def test_btf_defined_maps_read_from_btf() -> None:
    spec = L.open_object(obj("btf_maps"))
    assert spec.license == "GPL"
    shape = _shape(spec)
    assert shape["flows"] == (M.BPF_MAP_TYPE_HASH, 12, 16, 1024, 0, "btf")        # __type(key, struct flow)
    assert shape["last_seen"] == (M.BPF_MAP_TYPE_LRU_HASH, 4, 8, 128, 0, "btf")   # __uint(key_size, ...)
    assert shape["totals"] == (M.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 2, 0, "btf")
    assert shape["prefixes"] == (M.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 16, M.BPF_F_NO_PREALLOC, "btf")
    assert [(p.name, p.section, p.prog_type) for p in spec.programs] == [("tc_flows", "classifier", 3)]


def test_legacy_maps_section() -> None:
    spec = L.open_object(obj("legacy_maps"))
    assert _shape(spec) == {"port_hits": (M.BPF_MAP_TYPE_HASH, 2, 8, 64, 0, "legacy"),
                            "verdicts": (M.BPF_MAP_TYPE_ARRAY, 4, 4, 4, 0, "legacy")}


def test_global_data_sections_become_single_element_arrays() -> None:
    spec = L.open_object(obj("global_data"))
    ro, data, bss = spec.maps[".rodata"], spec.maps[".data"], spec.maps[".bss"]
    assert (ro.map_type, ro.key_size, ro.max_entries) == (M.BPF_MAP_TYPE_ARRAY, 4, 1)
    assert ro.map_flags == L.BPF_F_MMAPABLE | L.BPF_F_RDONLY_PROG and data.map_flags == L.BPF_F_MMAPABLE
    assert ro.init == struct.pack("<I", 17) + bytes([0xDE, 0xAD, 0xBE, 0xEF]) + b"drop proto %u len %u\0"
    assert data.init == struct.pack("<Q", 1000)
    assert bss.init == bytes(40) and bss.value_size == 40
    assert ro.obj_name == "global_d.rodata"  # libbpf's internal map name
    code = spec.link("xdp_globals", lambda m: {".rodata": 7, ".data": 8, ".bss": 9}[m.name])
    values = [(ins.imm, code[i + 1].imm) for i, ins in enumerate(code)
              if ins.opcode == 0x18 and ins.src == I.BPF_PSEUDO_MAP_VALUE]
    # packets (.data+0), last_len (.bss+0), bytes_by_proto (.bss+8), drop_proto (.rodata+0), magic (.rodata+4),
    # and the printk format, relocated against the .rodata *section* symbol with the offset in imm (8)
    assert sorted(values) == sorted([(8, 0), (9, 0), (9, 8), (7, 0), (7, 4), (7, 8)])
    rodata_relocs = [r for r in spec.elf.section("xdp").relocs if r.sym.shndx == ro.section]  # type: ignore[union-attr]
    assert {r.sym.type for r in rodata_relocs} == {"STT_OBJECT", "STT_SECTION"}


def test_multi_program_object_and_lookup_by_section() -> None:
    spec = L.open_object(obj("multi"))
    assert [(p.name, p.section, p.type_name) for p in spec.programs] == [
        ("m_xdp", "xdp", "xdp"), ("m_tc_in", "tc/ingress", "sched_cls"), ("m_tc_out", "tc/egress", "sched_cls"),
        ("m_sock", "socket", "socket_filter"), ("m_kprobe", "kprobe/ip_rcv", "kprobe")]
    assert spec.program("tc/egress").name == "m_tc_out"
    with pytest.raises(L.LoaderError, match="no such program"):
        spec.program("nope")
    with pytest.raises(NotSupported, match="program type 2"):
        L.load_object(spec, only=["m_kprobe"])  # recognised, but kprobes are not runnable here
    lo = L.load_object(spec, only=["m_xdp", "m_tc_out"])
    assert set(lo.programs) == {"m_xdp", "m_tc_out"}


def test_subprograms_appended_once_and_unused_ones_left_out() -> None:
    spec = L.open_object(obj("subprog"))
    code = spec.link("xdp_calls", lambda m: 0)
    # xdp_calls (17) + sum_words (16) + classify (4) + fold (13); never_called (3) is not appended
    assert len(code) == 17 + 16 + 4 + 13
    targets = sorted(i + ins.imm + 1 for i, ins in enumerate(code) if ins.opcode == 0x85 and ins.src == 1)
    assert targets == [17, 33, 37]
    assert code[33:37] == I.decode(spec.elf.section(".text").data[0:32])  # classify first in .text
    tc = spec.link("tc_calls", lambda m: 0)
    assert len(tc) == 18 + 13 + 16 + 4


def test_program_and_subprogram_verify_structurally() -> None:
    lo = L.load_object(obj("subprog"))
    assert set(lo.programs) == {"xdp_calls", "tc_calls"}
    assert lo.program("tc").name == "tc_calls"


# -- running in the model ------------------------------------------------------------------------
def _u64(m: M.BpfMap, key: int) -> int:
    return int.from_bytes(m.lookup(struct.pack("<I", key))[:8], "little")


def test_xdp_parser_counts_per_protocol() -> None:
    lo = L.load_object(obj("xdp_count"))
    prog = lo.programs["xdp_count"]
    results = {n: P.prog_test_run(prog, FRAMES[n])[0] for n in ("udp53", "tcp", "icmp", "ttl1", "ipv6", "arp")}
    assert results == {"udp53": C.XDP_PASS, "tcp": C.XDP_PASS, "icmp": C.XDP_PASS, "ttl1": C.XDP_DROP,
                       "ipv6": C.XDP_PASS, "arp": C.XDP_PASS}
    counts = lo.maps["proto_count"]
    assert (_u64(counts, 17), _u64(counts, 6), _u64(counts, 1), _u64(counts, 58), _u64(counts, 255)) == (2, 1, 1, 1, 1)
    assert P.prog_test_run(prog, FRAMES["short"])[0] == C.XDP_DROP  # IPv4 EtherType, no header


def _csum_ok(data: bytes) -> bool:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


@pytest.mark.parametrize("proto", [17, 6])
def test_tc_rewrite_fixes_l3_and_l4_checksums(proto: int) -> None:
    prog = L.load_object(obj("tc_rewrite")).programs["tc_rewrite"]
    frame = ipv4(proto, dport=53)
    verdict, out, fields = prog.run_tc(frame)
    assert verdict == C.TC_ACT_OK and fields.mark == 0x42
    ip, l4 = out[14:34], out[34:]
    assert ip[16:20] == bytes([10, 0, 0, 99]) and l4[2:4] == struct.pack("!H", 8080)
    assert _csum_ok(ip)
    assert _csum_ok(ip[12:20] + struct.pack("!BBH", 0, proto, len(l4)) + l4)
    assert prog.run_tc(FRAMES["icmp"])[0] == C.TC_ACT_SHOT


def test_socket_filter_ld_abs_and_load_bytes() -> None:
    prog = L.load_object(obj("socket_filter")).programs["udp53"]
    assert P.prog_test_run(prog, FRAMES["udp53"])[0] == len(FRAMES["udp53"]) - 14  # skb->len from L3
    assert P.prog_test_run(prog, FRAMES["ip_opts"])[0] == len(FRAMES["ip_opts"]) - 14
    assert P.prog_test_run(prog, FRAMES["udp_other"])[0] == 64
    assert P.prog_test_run(prog, FRAMES["tcp"])[0] == 0
    assert P.prog_test_run(prog, FRAMES["arp"])[0] == 0


def test_global_data_read_write_and_rodata_patch() -> None:
    lo = L.load_object(obj("global_data"))
    prog = lo.programs["xdp_globals"]
    assert P.prog_test_run(prog, FRAMES["udp53"])[0] == C.XDP_PASS
    env = P.RunEnv()
    assert P.prog_test_run_full(prog, FRAMES["magic"], env=env).retval == C.XDP_DROP  # proto 17, dst[3] == magic[3]
    assert env.trace_log == [f"drop proto 17 len {len(FRAMES['magic'])}"]
    assert P.prog_test_run(prog, FRAMES["tcp"])[0] == C.XDP_PASS
    assert _u64(lo.maps[".data"], 0) == 1003
    bss = lo.maps[".bss"].lookup(bytes(4))
    assert struct.unpack_from("<I", bss, 0)[0] == len(FRAMES["tcp"])
    # bytes_by_proto[proto & 3]: UDP (17) -> 1, TCP (6) -> 2
    assert struct.unpack_from("<4Q", bss, 8) == (0, 2 * len(FRAMES["udp53"]), len(FRAMES["tcp"]), 0)
    # A skeleton patches .rodata before load: drop TCP instead of UDP.
    spec = L.open_object(obj("global_data"))
    ro = spec.maps[".rodata"]
    assert ro.init is not None
    ro.init = struct.pack("<I", 6) + ro.init[4:]
    prog2 = L.load_object(spec).programs["xdp_globals"]
    assert P.prog_test_run(prog2, ipv4(6, dst=bytes([1, 2, 3, 0xEF])))[0] == C.XDP_DROP
    assert P.prog_test_run(prog2, FRAMES["magic"])[0] == C.XDP_PASS


def test_ringbuf_records() -> None:
    lo = L.load_object(obj("ringbuf"))
    prog = lo.programs["xdp_ringbuf"]
    for name in ("udp53", "tcp", "short", "icmp"):
        P.prog_test_run(prog, FRAMES[name])
    rb = lo.maps["events"]
    assert isinstance(rb, M.RingBuf)
    recs = rb.consume()
    frames = [FRAMES[n] for n in ("udp53", "tcp", "icmp")]
    expect = [struct.pack("<II", len(f), 1) + f[:16] for f in frames]
    assert recs == expect[:2] + [expect[2], expect[2]]  # third kept frame also via ringbuf_output
    assert struct.unpack("<I", lo.maps[".bss"].lookup(bytes(4)))[0] == 3


def test_legacy_maps_program_uses_both_maps() -> None:
    lo = L.load_object(obj("legacy_maps"))
    prog = lo.programs["xdp_legacy"]
    lo.maps["verdicts"].update(struct.pack("<I", 53 & 3), struct.pack("<I", C.XDP_DROP))
    assert P.prog_test_run(prog, FRAMES["udp53"])[0] == C.XDP_DROP
    assert P.prog_test_run(prog, FRAMES["udp53"])[0] == C.XDP_DROP
    assert P.prog_test_run(prog, FRAMES["udp_other"])[0] == C.XDP_PASS
    hits = lo.maps["port_hits"]
    assert int.from_bytes(hits.lookup(struct.pack("<H", 53)), "little") == 2
    assert int.from_bytes(hits.lookup(struct.pack("<H", 8000)), "little") == 1


# -- the same objects in the kernel ---------------------------------------------------------------
RUNNABLE = [("xdp_count", "xdp_count"), ("tc_rewrite", "tc_rewrite"), ("socket_filter", "udp53"),
            ("ringbuf", "xdp_ringbuf"), ("global_data", "xdp_globals"), ("subprog", "xdp_calls"),
            ("subprog", "tc_calls"), ("btf_maps", "tc_flows"), ("legacy_maps", "xdp_legacy"),
            ("multi", "m_xdp"), ("multi", "m_tc_in"), ("multi", "m_tc_out"), ("multi", "m_sock")]


def _kernel_dump(km: object, ms: L.MapSpec) -> object:
    from netstack.bpf.kernel import KMap
    assert isinstance(km, KMap)
    if ms.map_type == M.BPF_MAP_TYPE_RINGBUF:
        cons, prod = km.mmap_ringbuf()
        try:
            cpos = struct.unpack_from("<Q", cons, 0)[0]
            ppos = struct.unpack_from("<Q", prod, 0)[0]
            data = bytes(prod[mmap.PAGESIZE:mmap.PAGESIZE + 2 * ms.max_entries])
        finally:
            cons.close()
            prod.close()
        recs = []
        mask = ms.max_entries - 1
        while cpos < ppos:
            length = struct.unpack_from("<I", data, cpos & mask)[0]
            size = length & 0x3FFFFFFF
            if not length & (1 << 30):
                recs.append(data[(cpos & mask) + 8:(cpos & mask) + 8 + size])
            cpos += (size + 8 + 7) & ~7
        return recs
    out = {}
    key = None
    while True:
        try:
            key = km.get_next_key(key)
        except KernelBpfError:
            break
        out[key] = km.lookup(key, _user_size(ms))
    return _normalise(out, ms)


def _user_size(ms: L.MapSpec) -> int:
    per = ms.map_type in (M.BPF_MAP_TYPE_PERCPU_ARRAY, M.BPF_MAP_TYPE_PERCPU_HASH)
    return ((ms.value_size + 7) & ~7) * 2 if per else ms.value_size


def _normalise(d: dict[bytes, bytes], ms: L.MapSpec) -> dict[bytes, object]:
    """Per-CPU values: the sum over CPUs (the kernel runs test_run on whichever CPU it is on)."""
    if ms.map_type not in (M.BPF_MAP_TYPE_PERCPU_ARRAY, M.BPF_MAP_TYPE_PERCPU_HASH):
        return dict(d)
    step = (ms.value_size + 7) & ~7
    return {k: sum(int.from_bytes(v[i:i + 8], "little") for i in range(0, len(v), step)) for k, v in d.items()}


def _model_dump(m: M.BpfMap, ms: L.MapSpec) -> object:
    if isinstance(m, M.RingBuf):
        return m.consume()
    return _normalise({k: m.lookup(k) for k in m.keys()}, ms)


@needs_kernel
@pytest.mark.parametrize("objname,prog", RUNNABLE)
def test_same_object_in_kernel_and_model(objname: str, prog: str) -> None:
    spec = L.open_object(obj(objname))
    lo = L.load_object(spec, only=[prog])
    kprog, kmaps = L.load_kernel(spec, prog)
    try:
        assert "processed" in kprog.log or kprog.log == ""  # verifier accepted it
        if objname == "btf_maps":
            key, val = struct.pack("<I4s", 32, bytes([10, 0, 0, 1])), struct.pack("<I", 77)
            lo.maps["prefixes"].update(key, val)
            kmaps["prefixes"].update(key, val)
        if objname == "legacy_maps":
            for m in (lo.maps["verdicts"], kmaps["verdicts"]):
                m.update(struct.pack("<I", 1), struct.pack("<I", C.XDP_TX))
        model = lo.programs[prog]
        skb = model.prog_type != C.BPF_PROG_TYPE_XDP
        for name, frame in FRAMES.items():
            if skb and name == "short":  # refused by both (test_skb_test_run_of_a_bare_ethernet_header)
                with pytest.raises(KernelBpfError) as ke:
                    kprog.test_run(frame)
                with pytest.raises(P.TestRunError) as me:
                    P.prog_test_run(model, frame)
                assert me.value.errno == ke.value.errno == errno.EINVAL, name
                continue
            k_ret, k_out, _dur, _ctx = kprog.test_run(frame)
            try:
                m_ret, m_out, _ = P.prog_test_run(model, frame)
            except P.TestRunError as exc:
                pytest.fail(f"{name}: model refused what the kernel ran: {exc}")
            assert (m_ret, m_out) == (k_ret, k_out), name
        for name, ms in spec.maps.items():
            assert _model_dump(lo.maps[name], ms) == _kernel_dump(kmaps[name], ms), name
    finally:
        kprog.close()
        for km in kmaps.values():
            km.close()


@needs_kernel
def test_skb_test_run_of_a_bare_ethernet_header() -> None:
    # FRAMES["short"] is an Ethernet header with the IPv4 EtherType and nothing after it: 6.18
    # refuses it with EINVAL (progs._check_l3_header), and so does the model.
    spec = L.open_object(obj("multi"))
    kprog, kmaps = L.load_kernel(spec, "m_tc_in")
    try:
        with pytest.raises(KernelBpfError) as ke:
            kprog.test_run(FRAMES["short"])
        model = L.load_object(spec, only=["m_tc_in"]).programs["m_tc_in"]
        with pytest.raises(P.TestRunError) as me:
            P.prog_test_run(model, FRAMES["short"])
        assert me.value.errno == ke.value.errno
    finally:
        kprog.close()
        for km in kmaps.values():
            km.close()


@needs_kernel
def test_tc_rewrite_mark_matches_kernel_ctx_out() -> None:
    spec = L.open_object(obj("tc_rewrite"))
    model = L.load_object(spec).programs["tc_rewrite"]
    kprog, kmaps = L.load_kernel(spec, "tc_rewrite")
    try:
        ctx = bytes(C.SK_BUFF_SIZE)
        k_ret, k_out, _d, k_ctx = kprog.test_run(FRAMES["udp53"], ctx=ctx, ctx_out_size=C.SK_BUFF_SIZE)
        res = P.prog_test_run_full(model, FRAMES["udp53"], ctx=ctx)
        assert (res.retval, res.data_out, res.ctx_out) == (k_ret, k_out, k_ctx)
        assert struct.unpack_from("<I", k_ctx, 8)[0] == 0x42
    finally:
        kprog.close()
        assert not kmaps


@needs_kernel
def test_kernel_rejects_what_link_would_break() -> None:
    """Appending the whole .text (the unused function too) is what the kernel refuses: unreachable."""
    from netstack.bpf.kernel import KProg
    spec = L.open_object(obj("subprog"))
    code = spec.link("xdp_calls", lambda m: 0)
    junk = I.decode(spec.elf.section(".text").data[32:56])  # never_called
    with pytest.raises(KernelBpfError) as ei:
        KProg(C.BPF_PROG_TYPE_XDP, code + junk, license="GPL")
    assert "unreachable" in ei.value.log


# -- bad input ------------------------------------------------------------------------------------
def _read(name: str) -> bytes:
    with open(obj(name), "rb") as fh:
        return fh.read()


@pytest.mark.parametrize("data,match", [
    (b"", "not an ELF"), (b"\x7fELF", "not an ELF"), (b"MZ" + bytes(100), "not an ELF"),
])
def test_not_elf(data: bytes, match: str) -> None:
    with pytest.raises(ElfError, match=match):
        L.open_object(data)


def test_wrong_machine_and_class() -> None:
    data = bytearray(_read("xdp_count"))
    data[18:20] = (62).to_bytes(2, "little")  # EM_X86_64
    with pytest.raises(ElfError, match="EM_BPF"):
        L.open_object(bytes(data))
    data = bytearray(_read("xdp_count"))
    data[4] = 1
    with pytest.raises(NotSupported, match="32-bit"):
        L.open_object(bytes(data))


def test_clang_reads_ctx_data_with_32_bit_loads() -> None:
    """The kernel rewrites these loads into 64-bit pointer loads; our ctx region returns the pointer."""
    code = L.open_object(obj("xdp_count")).link("xdp_count", lambda m: 0)
    ldx_w = I.BPF_LDX | I.BPF_MEM | I.BPF_W
    ctx_loads = [(ins.src, ins.off) for ins in code[:3] if ins.opcode == ldx_w]
    assert sorted(ctx_loads) == [(1, 0), (1, 4)]  # r1 = ctx: xdp_md.data, xdp_md.data_end
    prog = L.load_object(obj("xdp_count")).programs["xdp_count"]
    assert P.prog_test_run(prog, FRAMES["ttl1"])[0] == C.XDP_DROP  # reached only through the packet pointers


def test_every_truncation_is_a_clear_error() -> None:
    data = _read("global_data")
    for n in range(0, len(data), 97):
        with pytest.raises(BpfError):
            L.open_object(data[:n])


def _section_header_offset(elf_bytes: bytes, index: int) -> int:
    shoff = struct.unpack_from("<Q", elf_bytes, 0x28)[0]
    return shoff + 64 * index


def test_section_data_past_end_names_the_section() -> None:
    data = bytearray(_read("xdp_count"))
    idx = next(s.index for s in parse(bytes(data)).sections if s.name == "xdp")
    struct.pack_into("<Q", data, _section_header_offset(bytes(data), idx) + 0x18, 1 << 40)  # sh_offset
    with pytest.raises(ElfError, match="'xdp'"):
        L.open_object(bytes(data))


def test_truncated_btf_is_a_btf_error() -> None:
    spec = L.open_object(obj("btf_maps"))
    raw = spec.elf.section(".BTF").data  # type: ignore[union-attr]
    for n in (0, 10, 23, 40, len(raw) // 2):
        with pytest.raises(B.BtfError):
            B.map_defs(B.Btf(raw[:n]) if n >= 24 else B.Btf(raw[:n]))
    bad = bytearray(raw)
    bad[0:2] = b"\xeb\x9f"  # big-endian BTF
    with pytest.raises(B.BtfError, match="magic"):
        B.Btf(bytes(bad))


def test_unknown_section_type_refused_at_load() -> None:
    data = _read("multi").replace(b"kprobe/ip_rcv\0", b"kprobX/ip_rcv\0")
    spec = L.open_object(data)
    assert spec.program("m_kprobe").prog_type is None
    with pytest.raises(L.LoaderError, match="unknown section"):
        L.load_object(spec, only=["m_kprobe"])


hyp = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SEEDS = {n: _read(n) for n in ("global_data", "subprog", "btf_maps", "legacy_maps")}


def _interesting(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges a loader actually interprets: headers, symbols, relocations, BTF, maps, code."""
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shnum = struct.unpack_from("<H", data, 0x3C)[0]
    out = [(0, 64), (shoff, shoff + 64 * shnum)]
    strtab_idx = struct.unpack_from("<H", data, 0x3E)[0]
    s_off = struct.unpack_from("<Q", data, shoff + 64 * strtab_idx + 0x18)[0]
    for i in range(1, shnum):
        name_off, stype, flags, _addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + 64 * i)
        name = data[s_off + name_off:data.index(b"\0", s_off + name_off)].decode()
        if stype in (2, 9) and "debug" not in name or name in (".BTF", ".maps", "maps", "license", ".data",
                                                                ".rodata") or flags & 4:
            out.append((off, off + size))
    return [r for r in out if r[1] > r[0]]


_RANGES = {n: _interesting(d) for n, d in _SEEDS.items()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(_SEEDS)),
       edits=st.lists(st.tuples(st.integers(0, 1 << 30), st.floats(0, 1, exclude_max=True),
                                st.sampled_from([0, 1, 8, 24, 64, 0xFF, 0x7FFFFFFF, 0xFFFFFFFF])),
                      min_size=1, max_size=6),
       cut=st.floats(0.05, 1.0))
def test_fuzzed_objects_fail_cleanly(name: str, edits: list[tuple[int, float, int]], cut: float) -> None:
    """Hostile edits where they matter (section headers, symbols, relocations, BTF, map defs, code)."""
    data = bytearray(_SEEDS[name])
    ranges = _RANGES[name]
    for which, pos, val in edits:
        lo, hi = ranges[which % len(ranges)]
        at = lo + int(pos * (hi - lo))
        data[at:at + 4] = struct.pack("<I", val)[:len(data[at:at + 4])] if val > 0xFF else bytes([val])
    data = data[:max(1, int(cut * len(data)))] if cut < 0.98 else data
    try:
        spec = L.open_object(bytes(data))
        if all(m.max_entries <= 4096 and m.value_size <= 4096 for m in spec.maps.values()):
            models = {n: L.create_model_map(ms) for n, ms in spec.maps.items()}
            for p in spec.programs:
                # the structural checks only: the path-sensitive verifier's run time on hostile code is
                # its own tests' business, and would make this property test slow
                verify(spec.link(p, lambda ms: models[ms.name].fd))
        else:
            for p in spec.programs:
                spec.link(p, lambda ms: 1)
    except BpfError:
        pass


@needs_kernel
@pytest.mark.parametrize("objname,prog", [("global_data", "xdp_globals"), ("subprog", "xdp_calls"),
                                          ("xdp_count", "xdp_count")])
def test_prog_tag_matches_kernel_fdinfo(objname: str, prog: str) -> None:
    import re
    spec = L.open_object(obj(objname))
    kprog, kmaps = L.load_kernel(spec, prog)
    try:
        with open(f"/proc/self/fdinfo/{kprog.fd}") as fh:
            m = re.search(r"prog_tag:\s*([0-9a-f]{16})", fh.read())
        assert m is not None
        assert L.prog_tag(spec.link(prog, lambda ms: kmaps[ms.name].fd)) == m.group(1)
    finally:
        kprog.close()
        for km in kmaps.values():
            km.close()


_BTF = L.open_object(obj("btf_maps")).elf.section(".BTF").data  # type: ignore[union-attr]


@settings(max_examples=100, deadline=None)
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6))
def test_fuzzed_btf_fails_cleanly(edits: list[tuple[float, int]]) -> None:
    data = bytearray(_BTF)
    for pos, val in edits:
        data[int(pos * len(data))] = val
    try:
        B.map_defs(B.Btf(bytes(data)))
    except BpfError:
        pass


def _has_verifier() -> bool:
    try:
        from netstack.bpf.verifier.core import verify_program  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _has_verifier(), reason="netstack.bpf.verifier not installed")
def test_unchecked_packet_read_is_refused_by_the_verifier() -> None:
    from netstack.bpf.verifier.core import verify_program
    spec = L.open_object(obj("reject_bounds"))
    res = verify_program(spec.link("xdp_no_bounds", lambda m: 0), C.BPF_PROG_TYPE_XDP, log_level=1)
    assert not res.accepted
    assert "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)" in res.log.splitlines()


@needs_kernel
def test_kernel_refuses_the_same_object() -> None:
    with pytest.raises(KernelBpfError) as ei:
        L.load_kernel(L.open_object(obj("reject_bounds")), "xdp_no_bounds")
    assert "invalid access to packet, off=12 size=1" in ei.value.log


def test_core_relocations_are_refused_not_ignored() -> None:
    spec = L.open_object(obj("core_relo"))
    assert spec.core_relos == {"xdp": [48]}  # "r2 = 8", the offset of ttl
    with pytest.raises(NotSupported, match=r"xdp\+48: CO-RE relocations"):
        L.load_object(spec)
