"""netstack: the Linux networking dataplane in userspace Python, packet for packet."""
from netstack.api import CommandResult, Frame, Stack
from netstack.errors import KernelError, NotSupported, ScenarioError

__all__ = ["Stack", "CommandResult", "Frame", "ScenarioError", "KernelError", "NotSupported"]
__version__ = "0.1.0"
