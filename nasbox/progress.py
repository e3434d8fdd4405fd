"""Progress of a long run, as people meet it: on a terminal a bar with a total, a rate and an
time left, redrawn in place; elsewhere (docker logs, the scheduler) a log line every 10 s.

Our own code rather than tqdm or rich: both draw on a terminal well, but neither writes
throttled log lines, which is where most runs go (scheduled jobs); this does both in a page.
A scrub counts its work from what it knows before it starts and corrects the total as it
walks; a sync shows what rsync's own overall progress (--info=progress2) says.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)

BAR_WIDTH = 20


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Display:
    """Where progress goes: redrawn on a terminal, logged at intervals otherwise."""

    def __init__(self, label: str, stream: TextIO = sys.stderr, interval_s: float = 10.0):
        self.label = label
        self.stream = stream
        self.tty = stream.isatty()
        self.interval_s = 0.1 if self.tty else interval_s
        self.last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.interval_s:
            return False
        self.last = now
        return True

    def show(self, fraction: float | None, text: str) -> None:
        if not self.tty:
            log.info("%s: %s", self.label, text)
            return
        done = min(1.0, max(0.0, fraction or 0.0))
        bar = "#" * int(done * BAR_WIDTH)
        self.stream.write(f"\r{self.label} [{bar:<{BAR_WIDTH}}] {done:4.0%} {text}\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


class Progress:
    """Files and bytes done of a total: the total may grow as the work finds more."""

    def __init__(
        self, label: str, total_files: int, total_bytes: int, stream: TextIO = sys.stderr, interval_s: float = 10.0
    ):
        self.display = Display(label, stream, interval_s)
        self.total_files, self.total_bytes = total_files, total_bytes
        self.files = self.bytes = 0
        self.started = time.monotonic()

    @property
    def interval_s(self) -> float:
        return self.display.interval_s

    @interval_s.setter
    def interval_s(self, value: float) -> None:
        self.display.interval_s = value

    def found(self, files: int = 0, nbytes: int = 0) -> None:
        """More work than the total said: the total is corrected, never below what is done."""
        self.total_files += files
        self.total_bytes += nbytes

    def advance(self, files: int = 0, nbytes: int = 0) -> None:
        self.files += files
        self.bytes += nbytes
        if self.display.due():
            total = max(self.total_bytes, self.bytes)
            self.display.show(self.bytes / total if total else None, self.line(time.monotonic()))

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        rate = self.bytes / elapsed
        total_files, total_bytes = max(self.total_files, self.files), max(self.total_bytes, self.bytes)
        text = f"{self.files}/{total_files} files, {human_bytes(self.bytes)}, {human_bytes(rate)}/s"
        if total_bytes and rate > 0 and self.bytes < total_bytes:
            text += f", ETA {clock((total_bytes - self.bytes) / rate)}"
        return text

    def finish(self) -> None:
        self.display.finish()


# rsync --info=progress2: "  214958084  42%   19.93MB/s    0:00:01 (xfr#3, to-chk=5/10)"
RSYNC_PROGRESS = re.compile(r"^\s*([\d,]+)\s+(\d+)%\s+(\S+/s)\s+(\d+:\d\d:\d\d)")


class TransferProgress:
    """rsync's overall progress, fed its output as it comes."""

    def __init__(self, label: str, stream: TextIO = sys.stderr, interval_s: float = 10.0):
        self.display = Display(label, stream, interval_s)

    def output(self, segment: str) -> None:
        found = RSYNC_PROGRESS.match(segment)
        if found and self.display.due():
            done, percent, rate, left = found.groups()
            text = f"{human_bytes(int(done.replace(',', '')))}, {rate}, ETA {left}"
            self.display.show(int(percent) / 100, text)

    def finish(self) -> None:
        self.display.finish()
