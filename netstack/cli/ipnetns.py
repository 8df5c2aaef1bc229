"""``ip netns`` (ip/ipnetns.c): add, delete, list, exec.

``exec`` runs the rest of the line as a command inside the namespace, the way
``ip netns exec NS CMD`` does with ``setns`` + ``execvp``; only commands netstack
implements can be run there (anything else is "not supported").
"""
from __future__ import annotations

from typing import Callable

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Ctx, matches
from netstack.cli.jsonout import dumps
from netstack.core.world import NetnsError
from netstack.errors import NotSupported

#: Set by netstack.cli.scenario: runs argv in a context (avoids an import cycle).
Runner = Callable[[Ctx, list[str]], int]


def do_netns(ctx: Ctx, argv: list[str], run: Runner) -> int:
    """``do_netns``: ``list`` when no argument, then add/delete/exec/list by ``matches``."""
    if not argv:
        return _list(ctx)
    cmd, rest = argv[0], argv[1:]
    if matches(cmd, "list") or matches(cmd, "show") or cmd == "lst":
        return _list(ctx)
    if matches(cmd, "add"):
        if not rest:
            raise ToolError("No netns name specified\n", 1)
        if len(rest) > 1:
            raise NotSupported("ip netns add NAME ID")
        try:
            ctx.world.netns_add(rest[0])
        except NetnsError as e:
            raise ToolError(f"{e}\n", 1) from None
        return 0
    if matches(cmd, "delete"):
        if not rest:
            raise ToolError("No netns name specified\n", 1)
        if rest[0] == "-all" or rest[0] == "--all":
            raise NotSupported("ip netns delete -all")
        try:
            ctx.world.netns_del(rest[0])
        except NetnsError as e:
            raise ToolError(f"{e}\n", 1) from None
        return 0
    if matches(cmd, "exec"):
        if not rest:
            raise ToolError("No netns name specified\n", 1)
        if len(rest) < 2:
            raise ToolError("No command specified\n", 1)
        try:
            net = ctx.world.netns(rest[0])
        except NetnsError as e:
            raise ToolError(f"{e}\n", 255) from None
        sub = Ctx(ctx.world, net, ctx.stdout, ctx.stderr, ctx.cwd, ns_name=rest[0])
        return run(sub, rest[1:])
    if cmd in ("identify", "pids", "monitor", "set", "list-id", "attach") or \
            matches(cmd, "identify") or matches(cmd, "pids") or matches(cmd, "monitor"):
        raise NotSupported(f"ip netns {cmd}")
    raise ToolError(f'Command "{cmd}" is unknown, try "ip netns help".\n', 255)


def _list(ctx: Ctx) -> int:
    """``ip netns list``: one name a line (creation order: the kernel lists /run/netns in
    readdir order, which netstack cannot reproduce), with ``(id: N)`` when the current
    namespace has allocated an id for it."""
    names = list(ctx.world.namespaces)
    if ctx.json:
        ctx.stdout.write(dumps([{"name": n} for n in names], ctx.pretty) + "\n")
        return 0
    for n in names:
        other = ctx.world.namespaces[n]
        if id(other) in ctx.net.nsids:
            ctx.stdout.write(f"{n} (id: {ctx.net.nsids[id(other)]})\n")
        else:
            ctx.stdout.write(f"{n}\n")
    return 0
