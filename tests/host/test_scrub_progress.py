"""The progress a scrub shows on a terminal, against real par2 on real files."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from nasbox.progress import Progress
from nasbox.scrub import engine
from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob

pytestmark = pytest.mark.host

DRAW = re.compile(r"\r\S+ \S+ \[[# ]{20}\] +(\d+)% (\d+)/(\d+) files, ([^\r\x1b]*)")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def draws_of_a_scrub(monkeypatch: pytest.MonkeyPatch, job: ScrubJob) -> list[tuple[int, int, int, str]]:
    """Every bar the run drew: (percent, files done, files in all, the rest of the line)."""
    screen = Terminal()

    def on_the_terminal(label: str, total_files: int, total_bytes: int) -> Progress:
        progress = Progress(label, total_files, total_bytes, stream=screen)
        progress.interval_s = 0  # draw at every step
        return progress

    monkeypatch.setattr(engine, "Progress", on_the_terminal)
    assert Scrub(job, workers=2).run().status == "info"  # all five found before the first is done
    return [(int(p), int(done), int(total), rest) for p, done, total, rest in DRAW.findall(screen.getvalue())]


def test_a_first_scrub_shows_its_total_and_reaches_100_percent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    directory = tmp_path / "data"
    for i, relative in enumerate(["a.bin", "b.bin", "sub/c.bin", "sub/d.bin", "sub/deeper/e.bin"]):
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]) * (20_000 + 1000 * i))
    job = ScrubJob(name="t", directory=str(directory), database=str(directory / ".pardatabase"), redundancy=5,
                   schedule="weekly")
    draws = draws_of_a_scrub(monkeypatch, job)
    assert draws, "no progress was drawn"
    assert {total for _, _, total, _ in draws} == {5}, draws
    assert draws[0][0] < 100 and draws[-1][:3] == (100, 5, 5), draws  # the bar moves, to the end
    assert any("ETA" in rest for *_, rest in draws), draws  # time left, while there is some
