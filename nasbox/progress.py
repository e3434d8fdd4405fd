"""Progress of a long run: a bar on a terminal, a log line at intervals otherwise."""
from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


class Progress:
    def __init__(self, label: str, total_files: int, total_bytes: int, stream: TextIO = sys.stderr,
                 interval_s: float = 10.0):
        self.label = label
        self.total_files, self.total_bytes = total_files, total_bytes
        self.files = self.bytes = 0
        self.stream = stream
        self.tty = stream.isatty()
        self.interval_s = 0.1 if self.tty else interval_s
        self.started = self.last = time.monotonic()

    def advance(self, files: int = 0, nbytes: int = 0) -> None:
        self.files += files
        self.bytes += nbytes
        now = time.monotonic()
        if now - self.last >= self.interval_s:
            self.last = now
            self._show(now)

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        rate = self.bytes / elapsed
        text = f"{self.files}/{self.total_files} files, {human_bytes(self.bytes)}, {human_bytes(rate)}/s"
        if self.total_bytes and rate > 0 and self.bytes < self.total_bytes:
            eta = int((self.total_bytes - self.bytes) / rate)
            text += f", ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}"
        return text

    def _show(self, now: float) -> None:
        if not self.tty:
            log.info("%s: %s", self.label, self.line(now))
            return
        done = min(1.0, self.bytes / self.total_bytes) if self.total_bytes else 0.0
        bar = "#" * int(done * 20)
        self.stream.write(f"\r{self.label} [{bar:<20}] {done:4.0%} {self.line(now)}\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
