"""``ip link set dev X xdp|xdpgeneric|xdpdrv [obj FILE] [sec S] | off`` and the XDP parts of
``ip link show`` (iproute2 6.1 ip/iplink_xdp.c, lib/bpf_legacy.c, with libbpf 1.1).

Measured on Linux 6.18 with iproute2 6.1 (root, veth in a namespace):

* ``xdp`` is "auto": native on a driver with ``ndo_bpf`` (veth), else generic (lo);
  ``xdpdrv`` forces native ("Underlying driver does not support XDP in native mode."),
  ``xdpgeneric`` forces generic; native and generic on one device at once is refused
  ("Native and generic XDP can't be active at the same time."), exit 2.
* ``off`` removes the program (whatever the mode word); removing nothing succeeds.
* The default section is ``prog``; a missing section prints ``object file doesn't contain
  sec S``, an unreadable object ``Cannot initialize ELF context!``, both exit 255.  Several
  programs in one section: the first one is loaded.  The program type is forced to XDP.
* ``ip link show``: ``mtu 1500 xdpgeneric qdisc ...`` (``xdp`` for native) and a line
  ``    prog/xdp id N name NAME tag TAG jited `` (trailing blank); ``-j``: an ``xdp`` object
  after ``mtu`` with ``mode`` (1 native, 2 generic), ``prog`` and ``attached``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.errors import NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.bpf.progs import Program
    from netstack.cli.ipcommon import Ctx
    from netstack.core.netdevice import NetDevice

XDP_WORDS = ("xdp", "xdpgeneric", "xdpdrv", "xdpoffload")
#: XDP_ATTACHED_* (uapi if_link.h) as ``ip -j`` prints them
XDP_ATTACHED_DRV = 1
XDP_ATTACHED_SKB = 2
#: devices whose driver implements ``ndo_bpf`` (native XDP)
NATIVE_KINDS = frozenset({"veth"})


class ObjLoadError(Exception):
    """Loading FILE/SEC failed; ``lines`` is what the tool prints before its own message."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass
class LoadedProg:
    """A program loaded from an object for attaching, with the object's maps."""

    prog: "Program"
    path: str
    section: str
    maps: dict[str, Any]


def load_prog(ctx: Any, path: str, section: str, prog_type: int, *, jit: bool = True
              ) -> LoadedProg:
    """Open ``path`` (relative to ``ctx.cwd``, the scenario's directory), create its maps,
    link the first program of ``section`` and load it as ``prog_type`` (iproute2 forces the
    type), then (``jit``) compile it to native code as the kernel JIT would.  Errors:
    :class:`ObjLoadError`."""
    from netstack.bpf import loader
    from netstack.bpf.errors import BpfError
    from netstack.bpf.progs import Program
    full = path if os.path.isabs(path) else os.path.join(ctx.cwd, path)
    try:
        with open(full, "rb") as f:
            raw = f.read()
        spec = loader.open_object(raw, name=os.path.basename(path))
    except (OSError, BpfError):
        raise ObjLoadError("Cannot initialize ELF context!\n") from None
    cand = [p for p in spec.programs if p.section == section]
    if not cand:
        raise ObjLoadError(f"object file doesn't contain sec {section}\n")
    p = cand[0]
    try:
        maps = {name: loader.create_model_map(ms) for name, ms in spec.maps.items()}
        code = spec.link(p, lambda ms: maps[ms.name].fd)
        prog = Program(prog_type, code, name=p.name[:15])
    except BpfError as e:
        raise ObjLoadError(f"libbpf: prog '{p.name}': BPF program load failed: {e}\n"
                           f"libbpf: failed to load object '{path}'\n") from None
    if jit:
        try:
            from netstack.bpf.jit import jit_program
            jit_program(prog)
        except NotSupported:
            pass  # too large for the JIT: stays interpreted, and ip/tc do not print "jited"
    return LoadedProg(prog, path, section, maps)


def prog_desc(prog: "Program") -> str:
    """``id N name NAME tag TAG [jited]`` (bpf_prog_info as ip/tc print it)."""
    from netstack.bpf.loader import prog_tag
    jited = " jited" if type(prog.vm).__name__ == "JitProgVm" else ""
    name = f" name {prog.name}" if prog.name else ""
    return f"id {prog.prog_id}{name} tag {prog_tag(prog.insns)}{jited}"


def prog_json(prog: "Program") -> dict[str, Any]:
    from netstack.bpf.loader import prog_tag
    d: dict[str, Any] = {"id": prog.prog_id}
    if prog.name:
        d["name"] = prog.name
    d["tag"] = prog_tag(prog.insns)
    d["jited"] = int(type(prog.vm).__name__ == "JitProgVm")
    return d


@dataclass
class XdpReq:
    """The parsed ``xdp*`` part of ``ip link set``."""

    word: str
    off: bool
    path: str = ""
    section: str = "prog"


def split_xdp(argv: list[str]) -> tuple[list[str], XdpReq | None]:
    """Take the ``xdp...`` keyword and its options out of ``ip link set``'s argv (iproute2
    ``xdp_parse``: everything after the keyword belongs to it)."""
    for i, a in enumerate(argv):
        if a in XDP_WORDS:
            return argv[:i], _parse(a, argv[i + 1:])
    return argv, None


def _parse(word: str, rest: list[str]) -> XdpReq:
    if word == "xdpoffload":
        raise NotSupported("ip link set ... xdpoffload (no offload-capable device)")
    if not rest:
        raise ToolError('Command line is not complete. Try option "help"\n', 255)
    if rest[0] == "off":
        if len(rest) > 1:
            raise NotSupported(f"ip link set ... {word} off {rest[1]}")
        return XdpReq(word, True)
    req = XdpReq(word, False)
    i = 0
    while i < len(rest):
        a = rest[i]
        if a in ("obj", "object-file", "sec", "section"):
            if i + 1 >= len(rest):
                raise ToolError('Command line is not complete. Try option "help"\n', 255)
            if a.startswith("o"):
                req.path = rest[i + 1]
            else:
                req.section = rest[i + 1]
            i += 2
        elif a in ("fd", "pinned", "object-pinned", "verbose", "verb", "program"):
            raise NotSupported(f"ip link set ... {word} {a}")
        elif i == 0:
            raise ToolError(f'What mode is "{a}"?\n', 255)
        else:
            raise NotSupported(f"ip link set ... {word} ... {a}")
    if not req.path:
        raise ToolError('Command line is not complete. Try option "help"\n', 255)
    return req


@dataclass
class PreparedXdp:
    """A validated, loaded XDP change waiting for the rest of ``ip link set`` to succeed."""

    dev: "NetDevice"
    req: XdpReq
    mode: str
    loaded: LoadedProg | None

    def commit(self) -> None:
        from netstack.core import hooks
        if self.req.off:
            hooks.xdp_detach(self.dev)
            return
        assert self.loaded is not None
        att = hooks.xdp_attach(self.dev, self.loaded.prog, self.mode)
        att.maps = self.loaded.maps


def prepare_xdp(ctx: "Ctx", dev_name: str | None, req: XdpReq) -> PreparedXdp:
    """Everything that can fail, before anything changes: device, mode, object, section."""
    dev = ctx.net.get(dev_name) if dev_name is not None else None
    if dev is None:
        raise ToolError(f'Cannot find device "{dev_name}"\n', 1)
    cur = getattr(dev, "xdp_prog", None)
    native_ok = dev.kind in NATIVE_KINDS
    if req.word == "xdpdrv" and not native_ok and not req.off:
        raise ToolError("Error: Underlying driver does not support XDP in native mode.\n", 2)
    mode = "xdpgeneric" if req.word == "xdpgeneric" or not native_ok else "xdp"
    if req.off:
        return PreparedXdp(dev, req, mode, None)
    if cur is not None and cur.mode != mode:
        raise ToolError("Error: Native and generic XDP can't be active at the same time.\n", 2)
    from netstack.bpf import context as C
    try:
        loaded = load_prog(ctx, req.path, req.section, C.BPF_PROG_TYPE_XDP)
    except ObjLoadError as e:
        raise ToolError(e.text, 255) from None
    return PreparedXdp(dev, req, mode, loaded)


# ------------------------------------------------------------------------- show
def mode_word(dev: "NetDevice") -> str:
    """What ``ip link show`` prints after ``mtu N``: `` xdpgeneric``, `` xdp`` or nothing."""
    att = getattr(dev, "xdp_prog", None)
    return f" {att.mode}" if att is not None else ""


def prog_line(dev: "NetDevice") -> str:
    """The ``prog/xdp`` line (with its newline), or ''."""
    att = getattr(dev, "xdp_prog", None)
    if att is None:
        return ""
    return f"    prog/xdp {prog_desc(att.prog)} \n"


def xdp_json(dev: "NetDevice") -> dict[str, Any] | None:
    """The ``xdp`` object of ``ip -j link show``, or None."""
    att = getattr(dev, "xdp_prog", None)
    if att is None:
        return None
    mode = XDP_ATTACHED_SKB if att.mode == "xdpgeneric" else XDP_ATTACHED_DRV
    p = prog_json(att.prog)
    return {"mode": mode, "prog": p, "attached": [{"mode": mode, "prog": dict(p)}]}

