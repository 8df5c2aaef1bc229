"""A netstack bridge topology for BR1's unit tests (no kernel needed): br0 in "b" with
ports p1..p3 whose peers e1..e3 sit in h1..h3, the hosts the tests play.  (A module of
its own rather than conftest.py: several test directories have a conftest module.)"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from netstack.api import Stack  # noqa: E402

BASE = (Path(__file__).with_name("scenarios") / "base.sh").read_text()


class Bridge:
    def __init__(self, extra: str = "") -> None:
        self.s = Stack()
        self.s.run_script(BASE + extra)
        self.caps = {i: self.s.capture(f"h{i}", f"e{i}") for i in (1, 2, 3)}

    def send(self, h: int, frame: bytes, advance: float = 0.001) -> None:
        self.s.inject(f"h{h}", f"e{h}", [frame])
        self.s.advance(advance)

    def got(self, h: int) -> list[bytes]:
        return [f.data for f in self.caps[h]]

    def counts(self) -> tuple[int, int, int]:
        return len(self.caps[1]), len(self.caps[2]), len(self.caps[3])

    def sh(self, line: str) -> str:
        r = self.s.command(line)
        assert r.rc == 0, (line, r.stderr)
        return r.stdout

    def run(self, line: str):  # type: ignore[no-untyped-def]
        return self.s.command(line)

    @property
    def br(self):  # type: ignore[no-untyped-def]
        return self.s.world.netns("b").get("br0").br
