"""`config check` refuses a scrub DATABASE that would destroy data: one holding files nasbox
did not write, or DIRECTORY itself reached through a symlink."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def test_database_holding_user_files_is_refused(tmp_path: Path, problems: Callable[..., list[str]]) -> None:
    (tmp_path / "docs" / "reports").mkdir(parents=True)
    (tmp_path / "docs" / "reports" / "q1.pdf").write_bytes(b"user data")
    found = problems({"SCRUB_DOCS": f"{tmp_path}/docs reports 5% weekly"})
    assert found == [
        f"env SCRUB_DOCS: database: {tmp_path}/docs/reports holds files nasbox did not write (q1.pdf); "
        "expected a new or empty directory, or the database of this job (with its .nasbox-scrub folder)"
    ]


def test_database_that_is_the_directory_through_a_symlink_is_refused(
    tmp_path: Path, problems: Callable[..., list[str]]
) -> None:
    (tmp_path / "docs").mkdir()
    os.symlink(tmp_path / "docs", tmp_path / "alias")
    found = problems({"SCRUB_DOCS": f"{tmp_path}/docs {tmp_path}/alias 5% weekly"})
    assert len(found) == 1 and "is " in found[0] and "or above it (resolved: " in found[0], found


def test_database_that_is_a_file_is_refused(tmp_path: Path, problems: Callable[..., list[str]]) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "par").write_text("x")
    assert problems({"SCRUB_DOCS": f"{tmp_path}/docs {tmp_path}/par 5% weekly"}) == [
        f"env SCRUB_DOCS: database: {tmp_path}/par exists and is not a directory; expected a directory"
    ]


def test_databases_nasbox_may_use(tmp_path: Path, load: Callable[..., object]) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "fresh-disk" / "lost+found").mkdir(parents=True)  # a new ext4 filesystem's root
    (tmp_path / "used" / ".nasbox-scrub").mkdir(parents=True)
    (tmp_path / "used" / "a.bin.par2").write_bytes(b"parity")
    env = {
        f"SCRUB_{name.upper().replace('-', '_')}": f"{tmp_path}/docs {tmp_path}/{name} 5% weekly"
        for name in ("empty", "fresh-disk", "used", "absent")
    }
    config = load(env)
    assert len(config.scrub) == 4


def test_config_check_exits_78_naming_the_database(tmp_path: Path) -> None:
    (tmp_path / "docs" / "mine").mkdir(parents=True)
    (tmp_path / "docs" / "mine" / "letter.txt").write_text("dear")
    checked = subprocess.run(
        [sys.executable, "-m", "nasbox", "config", "check"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "NASBOX_CONFIG": "/dev/null",
            "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
            "SCRUB_DOCS": f"{tmp_path}/docs mine 5% weekly",
        },
    )
    assert checked.returncode == 78
    assert f"{tmp_path}/docs/mine holds files nasbox did not write (letter.txt)" in checked.stdout + checked.stderr
    assert (tmp_path / "docs" / "mine" / "letter.txt").read_text() == "dear"


def test_scrub_max_delete(load: Callable[..., object], problems: Callable[..., list[str]]) -> None:
    scrub = {"directory": "/data/docs", "database": ".par", "redundancy": "5%", "schedule": "weekly"}
    config = load(yaml_data={"scrub": {"docs": {**scrub, "max_delete": "30%"}, "more": {**scrub, "directory": "/x"}}})
    assert (config.scrub["docs"].max_delete, config.scrub["more"].max_delete) == ("30%", None)
    assert problems(yaml_data={"scrub": {"docs": {**scrub, "max_delete": "150%"}}}) == [
        "nasbox.yaml: scrub.docs.max_delete: expected a file count or a percentage such as 50%, got '150%'"
    ]
