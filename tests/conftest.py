"""Suite-wide settings.

Hypothesis: under CI (``CI`` set, as ``.ci/run`` is run) every property test draws the same
examples on every run (``derandomize``) and keeps no example database, so a submission's
result does not depend on the luck of the draw; locally the draws are random, which is what
finds new bugs (run with ``CI=1`` to reproduce CI's draws exactly).  No deadline: the
2-core shared machines make per-example timing meaningless.
"""
from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
