"""Progress: a bar on a terminal, log lines at intervals otherwise."""
from __future__ import annotations

import io
import logging

from nasbox.progress import Progress, human_bytes


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_on_a_terminal():
    screen = Terminal()
    progress = Progress("scrub docs", total_files=10, total_bytes=100 << 20, stream=screen)
    progress.interval_s = 0  # draw at every step
    progress.advance(files=5, nbytes=50 << 20)
    assert "\rscrub docs [##########          ]  50% 5/10 files, 50.0 MiB," in screen.getvalue()
    assert "ETA 0:" in screen.getvalue()
    progress.finish()
    assert screen.getvalue().endswith("\r\x1b[K")


def test_log_lines_elsewhere(caplog):
    pipe = io.StringIO()
    progress = Progress("scrub docs", total_files=0, total_bytes=0, stream=pipe, interval_s=0)
    with caplog.at_level(logging.INFO):
        progress.advance(files=3, nbytes=4096)
    assert pipe.getvalue() == ""
    assert "scrub docs: 3/0 files, 4.0 KiB," in caplog.text


def test_human_bytes():
    assert [human_bytes(n) for n in (5, 2048, 3 << 30)] == ["5 B", "2.0 KiB", "3.0 GiB"]
