"""A one-line progress bar on stderr, redrawn in place: no dependency, readable in a log."""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressBar:
    """`label [#########...........] done/total, scanned` with `\\r` between updates."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, width: int = 30):
        self.label = label
        self.total = max(total, 0)
        self.stream = stream or sys.stderr
        self.width = width
        self.done = 0
        self.scanned = 0

    def update(self, done: int, scanned: int) -> None:
        self.done, self.scanned = done, scanned
        self.total = max(self.total, done)
        self.stream.write("\r" + self.line())
        self.stream.flush()

    def line(self) -> str:
        filled = self.width if self.total == 0 else self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        return f"{self.label} [{bar}] {self.done}/{self.total}, {self.scanned} scanned"

    def close(self) -> None:
        self.stream.write("\r" + self.line() + "\n")
        self.stream.flush()
