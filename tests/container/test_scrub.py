"""`docker exec nasbox scrub --now` protects and repairs a bind-mounted directory."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from nasbox.scrub.kind import ScrubJob
from tests.container.helpers import nasbox_container, workspace
from tests.support.access_matrix import matrix_env
from tests.support.parity import parity_of
from tests.support.rawdisk import loop_mount, rot

pytestmark = pytest.mark.container


def test_scrub_now_repairs_a_corrupted_file_in_a_bind_mount(tmp_path: Path) -> None:
    # photos is a filesystem image of its own, so that the file can rot below the filesystem.
    with workspace() as ws, loop_mount(ws.docs / "photos", image=tmp_path / "photos.img"):
        photo = ws.docs / "photos" / "cat.jpg"
        original = os.urandom(700_000)
        photo.write_bytes(original)
        env = {
            **matrix_env({"writer": "alice", "reader": "bob", "outsider": "carol"}, "/data/docs", "/data/other"),
            "SCRUB_DOCS": "/data/docs .pardatabase 5% weekly",
        }
        with nasbox_container(ws, env, "scrub") as box:
            deadline = time.monotonic() + 30  # smbd answers first: the runner may be a moment later
            while "runner: taking commands" not in box.logs():
                assert time.monotonic() < deadline, box.logs()
                time.sleep(0.2)
            first = box.exec("scrub", "--now")
            assert first.returncode == 0, first.stdout + first.stderr
            # The runner ran it; its output reached `docker exec`.
            assert "runner: `nasbox scrub --now` for pid" in box.logs()
            assert "scrub docs: info:" in first.stdout
            job = ScrubJob(
                name="docs",
                directory=str(ws.docs),
                database=str(ws.docs / ".pardatabase"),
                redundancy=5,
                schedule="weekly",
            )
            assert [p.is_file() for p in parity_of(job, "photos/cat.jpg")] == [True, True]

            st = photo.stat()
            rot(photo, [4242, 4243, 4244, 4245])  # bytes change; size, mtime and ctime do not
            assert photo.read_bytes() != original

            second = box.exec("scrub", "docs", "--now")
            assert second.returncode == 0, second.stdout + second.stderr
            assert "photos/cat.jpg: was corrupt and has been repaired" in second.stdout
            assert "scrub docs: warning:" in second.stdout
            assert photo.read_bytes() == original
            assert photo.stat().st_mtime_ns == st.st_mtime_ns
            assert sorted(os.listdir(photo.parent)) == ["cat.jpg"]

            update = box.exec("nasbox", "scrub", "--now", "--update-only")
            assert update.returncode == 0 and "scrub docs: good:" in update.stdout, update.stdout
