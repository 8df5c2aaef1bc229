"""Exceptions shared across netstack's layers."""
from __future__ import annotations


class NetstackError(Exception):
    """Base class."""


class NotSupported(NetstackError):
    """A feature netstack does not model (yet): raised instead of doing something else.
    The message starts with ``not supported:``."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not supported: {what}")


class ScenarioError(NetstackError):
    """A scenario line failed; ``str()`` is the ``SCRIPT:LINE: …`` summary, ``tool_stderr``
    what the real tool would have printed, ``exit_code`` the tool's exit status."""

    def __init__(self, script: str, line: int, message: str, tool_stderr: str = "",
                 exit_code: int = 1) -> None:
        super().__init__(f"{script}:{line}: {message}")
        self.script = script
        self.line = line
        self.message = message
        self.tool_stderr = tool_stderr
        self.exit_code = exit_code


class KernelError(NetstackError):
    """A netlink-style failure: ``errno`` plus the kernel's extack message (if any).

    Configuration APIs (address/route/neighbour/link changes) raise this with the errno
    the kernel returns (errno.EEXIST, ENOENT, EINVAL, ENETUNREACH, ENODEV …) so the CLI can
    print exactly what iproute2 prints for that errno ("RTNETLINK answers: File exists",
    "Error: Nexthop has invalid gateway." …)."""

    def __init__(self, errno_: int, extack: str = "") -> None:
        super().__init__(f"errno {errno_}" + (f": {extack}" if extack else ""))
        self.errno = errno_
        self.extack = extack
