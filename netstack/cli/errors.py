"""How a command fails inside the CLI.

Why an exception and not a return code: every command is parsed and validated in full
before it touches any state, and the failure can come from deep inside a parser
(``invarg`` in iproute2's utils.c calls ``exit(-1)`` from wherever it is).  Raising
:class:`ToolError` with exactly the text the real tool writes on stderr and its exit
status reproduces that, and :func:`netstack.cli.scenario.run_command` turns it back into a
printed message and an integer exit code.
"""
from __future__ import annotations


class ToolError(Exception):
    """A command failed: ``stderr`` is the tool's own message (with its newlines),
    ``exit_code`` its exit status (iproute2's ``exit(-1)`` is 255), ``stdout`` anything the
    tool printed on stdout before failing (ethtool's "Actual changes:" block)."""

    def __init__(self, stderr: str, exit_code: int = 1, stdout: str = "") -> None:
        super().__init__(stderr.rstrip("\n"))
        self.stderr = stderr
        self.exit_code = exit_code
        self.stdout = stdout
