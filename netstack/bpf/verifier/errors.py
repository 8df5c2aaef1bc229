"""The verifier's internal rejection signal (carries the kernel's errno)."""
from __future__ import annotations

import errno as E


class Reject(Exception):
    """Raised inside the verifier for a refused program; becomes ``VerifierResult(accepted=False)``.

    ``message`` is the kernel's log line (already written to the log), ``errno`` what
    ``bpf(BPF_PROG_LOAD)`` returns: EACCES for safety violations, EINVAL for malformed
    programs, E2BIG for the size and complexity limits, EPERM for unprivileged refusals.
    """

    def __init__(self, message: str, errno: int = E.EACCES) -> None:
        super().__init__(message)
        self.message = message
        self.errno = errno
