"""Progress: a bar on a terminal, log lines at intervals otherwise."""
from __future__ import annotations

import io
import logging

from nasbox.progress import Progress, TransferProgress, human_bytes


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
    assert "scrub docs: 3/3 files, 4.0 KiB," in caplog.text  # never fewer in all than done


def test_human_bytes():
    assert [human_bytes(n) for n in (5, 2048, 3 << 30)] == ["5 B", "2.0 KiB", "3.0 GiB"]


def test_a_total_found_to_be_larger_is_corrected():
    screen = Terminal()
    progress = Progress("scrub docs", total_files=2, total_bytes=2 << 20, stream=screen)
    progress.interval_s = 0
    progress.found(files=2, nbytes=2 << 20)
    progress.advance(files=1, nbytes=1 << 20)
    assert "[#####               ]  25% 1/4 files, 1.0 MiB," in screen.getvalue()


def test_rsyncs_overall_progress_on_a_terminal_and_in_the_log(caplog):
    screen = Terminal()
    transfer = TransferProgress("sync docs", stream=screen, interval_s=0)
    transfer.display.interval_s = 0
    for segment in ("", "     32768   0%    0.00kB/s    0:00:00  ", "  21495808  42%   19.93MB/s    0:00:01  "):
        transfer.output(segment)
    assert screen.getvalue().endswith("\rsync docs [########            ]  42% 20.5 MiB, 19.93MB/s, ETA 0:00:01\x1b[K")
    logged = TransferProgress("sync docs", stream=io.StringIO(), interval_s=0)
    with caplog.at_level(logging.INFO):
        logged.output("  50000000 100%   20.00MB/s    0:00:02 (xfr#1, to-chk=0/2)")
    assert "sync docs: 47.7 MiB, 20.00MB/s, ETA 0:00:02" in caplog.text
