"""``tc``: the clsact qdisc and cls_bpf filters (iproute2 6.1 tc/, net/sched/sch_ingress.c,
net/sched/cls_bpf.c, net/sched/cls_api.c).

Supported: ``tc [-n NS] [-j [-p]] qdisc add|del|show [dev X] [clsact]`` and
``tc filter add|del|show dev X ingress|egress [pref N] [protocol all] bpf [da] obj FILE
[sec S]``.  Everything else raises ``NotSupported``.

Measured on Linux 6.18 with tc 6.1 (root, veth in a namespace), reproduced here:

* ``qdisc show`` lists a device's root ``noqueue`` (``refcnt 2``) and ``clsact ffff: parent
  ffff:fff1``; ``noop`` (never-up devices, lo while down) is not dumped.  Without ``dev``
  the lines name the device.  Each line ends with a blank.
* Adding clsact twice: ``Error: Exclusivity flag on, cannot modify.`` (exit 2); deleting a
  missing one: ``Error: Invalid handle.`` (exit 2).
* A filter without clsact: ``Error: Parent Qdisc doesn't exists.`` + ``We have an error
  talking to the kernel`` (exit 2); ``del`` with an unknown pref: ``Error: Filter with
  specified priority/protocol not found.`` (same tail); ``del`` without pref removes all.
* Automatic pref: 49152, then one below the lowest pref >= 32768; a second filter with the
  same pref joins that cls_bpf instance with the next handle and is listed (and run) first.
* The default section is ``classifier``; object errors print libbpf's line then ``Unable to
  load program`` (exit 1).  The program type is forced to SCHED_CLS.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import matches, no_device
from netstack.cli.jsonout import dumps
from netstack.errors import NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.core.netdevice import NetDevice

_TALK = "We have an error talking to the kernel\n"


def do_tc(ctx: "Ctx", argv: list[str]) -> int:
    """``tc [OPTIONS] OBJECT COMMAND ...``."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        opt = argv[i].lstrip("-")
        if opt in ("n", "netns"):
            i += 1
            if i >= len(argv):
                raise ToolError('Command line is not complete. Try option "help"\n', 255)
            from netstack.core.world import NetnsError
            try:
                ctx.net = ctx.world.netns(argv[i])
            except NetnsError:
                raise ToolError(f'Cannot open network namespace "{argv[i]}": '
                                "No such file or directory\n", 255) from None
        elif opt in ("j", "json"):
            ctx.json = True
        elif opt in ("p", "pretty"):
            ctx.pretty = True
        else:
            raise NotSupported(f"tc {argv[i]}")
        i += 1
    rest = argv[i:]
    if not rest:
        raise NotSupported("tc without an object (usage text)")
    obj, args = rest[0], rest[1:]
    if matches(obj, "qdisc"):
        return _qdisc(ctx, args)
    if matches(obj, "filter"):
        return _filter(ctx, args)
    raise NotSupported(f"tc {obj}")


def _dev(ctx: "Ctx", name: str) -> "NetDevice":
    dev = ctx.net.get(name)
    if dev is None:
        raise no_device(name)
    return dev


# --------------------------------------------------------------------------- qdisc
def _qdisc(ctx: "Ctx", args: list[str]) -> int:
    from netstack.core import hooks
    cmd = args[0] if args else "show"
    dev_name: str | None = None
    kind: str | None = None
    i = 1 if args else 0
    while i < len(args):
        a = args[i]
        if a == "dev" and i + 1 < len(args):
            dev_name = args[i + 1]
            i += 2
            continue
        if a in ("clsact", "ingress") and kind is None:
            kind = a
        else:
            raise NotSupported(f"tc qdisc ... {a}")
        i += 1
    if matches(cmd, "show") or matches(cmd, "list") or cmd == "ls":
        _qdisc_show(ctx, _dev(ctx, dev_name) if dev_name is not None else None)
        return 0
    if dev_name is None:
        raise NotSupported("tc qdisc add/del without dev")
    dev = _dev(ctx, dev_name)
    if kind != "clsact":
        raise NotSupported(f"tc qdisc {cmd} {kind or '(no kind)'}: only clsact")
    if matches(cmd, "add"):
        if not hooks.clsact_add(dev):
            raise ToolError("Error: Exclusivity flag on, cannot modify.\n", 2)
        return 0
    if matches(cmd, "delete"):
        if not hooks.clsact_del(dev):
            raise ToolError("Error: Invalid handle.\n", 2)
        return 0
    raise NotSupported(f"tc qdisc {cmd}")


def _qdisc_rows(dev: "NetDevice") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    root = dev.qdisc()
    if root == "noqueue":
        rows.append({"kind": "noqueue", "handle": "0:", "root": True, "refcnt": 2})
    elif root != "noop":
        raise NotSupported(f"tc qdisc show for a {root} root qdisc")
    if getattr(dev, "tcx_ingress", None) is not None:
        rows.append({"kind": "clsact", "handle": "ffff:", "parent": "ffff:fff1"})
    return rows


def _qdisc_show(ctx: "Ctx", only: "NetDevice | None") -> None:
    devs = [only] if only is not None else [ctx.net.by_index[i] for i in sorted(ctx.net.by_index)]
    out: list[dict[str, Any]] = []
    text: list[str] = []
    for dev in devs:
        for r in _qdisc_rows(dev):
            where = "root refcnt 2" if r.get("root") else f"parent {r['parent']}"
            name = "" if only is not None else f"dev {dev.name} "
            text.append(f"qdisc {r['kind']} {r['handle']} {name}{where} \n")
            j: dict[str, Any] = {"kind": r["kind"], "handle": r["handle"]}
            if only is None:
                j["dev"] = dev.name
            if r.get("root"):
                j["root"], j["refcnt"] = True, 2
            else:
                j["parent"] = r["parent"]
            j["options"] = {}
            out.append(j)
    if ctx.json:
        ctx.stdout.write(dumps(out, ctx.pretty) + "\n")
    else:
        ctx.stdout.write("".join(text))


# -------------------------------------------------------------------------- filter
def _filter(ctx: "Ctx", args: list[str]) -> int:
    from netstack.bpf import context as C
    from netstack.cli.iplink_xdp import ObjLoadError, load_prog
    from netstack.core import hooks
    cmd = args[0] if args else "show"
    dev_name: str | None = None
    direction: str | None = None
    pref = 0
    da = False
    path = ""
    section = "classifier"
    kind: str | None = None
    i = 1 if args else 0
    while i < len(args):
        a = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else None
        if kind is None:
            if a == "dev" and nxt is not None:
                dev_name = nxt
                i += 2
                continue
            if a in ("ingress", "egress"):
                direction = a
            elif a in ("pref", "priority", "prio") and nxt is not None:
                try:
                    pref = int(nxt, 0)
                except ValueError:
                    raise ToolError('Illegal "preference"\n', 1) from None
                i += 2
                continue
            elif a == "protocol" and nxt == "all":
                i += 2
                continue
            elif a == "bpf":
                kind = a
            elif a in ("chain", "handle", "parent", "root", "block", "protocol"):
                raise NotSupported(f"tc filter ... {a}")
            else:
                raise ToolError(f'Unknown filter "{a}", hence option "{nxt}" is unparsable\n', 1)
        else:
            if a in ("da", "direct-action"):
                da = True
            elif a in ("obj", "object-file") and nxt is not None:
                path = nxt
                i += 2
                continue
            elif a in ("sec", "section") and nxt is not None:
                section = nxt
                i += 2
                continue
            else:
                raise NotSupported(f"tc filter ... bpf ... {a}")
        i += 1
    if dev_name is None:
        raise NotSupported("tc filter without dev")
    dev = _dev(ctx, dev_name)
    if direction is None:
        raise NotSupported("tc filter without ingress|egress")
    chain = getattr(dev, "tcx_ingress" if direction == "ingress" else "tcx_egress", None)
    if matches(cmd, "show") or matches(cmd, "list") or cmd == "ls":
        if kind is not None:
            raise NotSupported("tc filter show ... bpf")
        _filter_show(ctx, chain.filters if chain is not None else [])
        return 0
    if chain is None:
        raise ToolError("Error: Parent Qdisc doesn't exists.\n" + _TALK, 2)
    if matches(cmd, "add"):
        if kind is None:
            raise NotSupported("tc filter add without a classifier")
        if not path:
            raise ToolError("RTNETLINK answers: Invalid argument\n" + _TALK, 2)
        try:
            loaded = load_prog(ctx, path, section, C.BPF_PROG_TYPE_SCHED_CLS)
        except ObjLoadError as e:
            raise ToolError(e.text + "Unable to load program\n", 1) from None
        base = path.rsplit("/", 1)[-1]
        f = hooks.tc_attach(dev, direction, loaded.prog, pref=pref, direct_action=da,
                            name=f"{base}:[{section}]")
        f.maps = loaded.maps
        return 0
    if matches(cmd, "delete"):
        if kind is not None:
            raise NotSupported("tc filter del ... bpf")
        if pref and not any(f.pref == pref for f in chain.filters):
            raise ToolError("Error: Filter with specified priority/protocol not found.\n"
                            + _TALK, 2)
        hooks.tc_detach(dev, direction, pref)
        return 0
    raise NotSupported(f"tc filter {cmd}")


def _filter_show(ctx: "Ctx", filters: list[Any]) -> None:
    from netstack.cli.iplink_xdp import prog_desc, prog_json
    text: list[str] = []
    out: list[dict[str, Any]] = []
    last = None
    for f in filters:
        head = {"protocol": "all", "pref": f.pref, "kind": "bpf", "chain": 0}
        if f.pref != last:
            text.append(f"filter protocol all pref {f.pref} bpf chain 0 \n")
            out.append(dict(head))
            last = f.pref
        da = "direct-action " if f.direct_action else ""
        text.append(f"filter protocol all pref {f.pref} bpf chain 0 handle 0x{f.handle:x} "
                    f"{f.name} {da}not_in_hw {prog_desc(f.prog)} \n")
        opts: dict[str, Any] = {"handle": f"0x{f.handle:x}", "bpf_name": f.name}
        if f.direct_action:
            opts["direct-action"] = True
        opts["not_in_hw"] = True
        opts["prog"] = prog_json(f.prog)
        out.append({**head, "options": opts})
    if ctx.json:
        ctx.stdout.write(dumps(out, ctx.pretty) + "\n")
    else:
        ctx.stdout.write("".join(text))
