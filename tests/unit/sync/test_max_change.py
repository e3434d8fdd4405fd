"""max_change: its configuration, the share-of-files rule it shares with max_delete, and the
reading of what a preview would rewrite."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nasbox import exits
from nasbox.limits import DELETIONS, REWRITES, deletion_limit
from nasbox.sync import rsync_cmds
from nasbox.sync.kind import SyncJob

REPO = Path(__file__).resolve().parents[3]
SYNC = {"source": "/data/docs", "destination": "/backup/docs", "schedule": "daily"}


def test_max_change_is_a_count_or_a_percentage(load) -> None:
    config = load(yaml_data={"sync": {"docs": {**SYNC, "max_change": "10%"}, "more": {**SYNC, "max_change": 3},
                                      "plain": SYNC}})
    assert [config.sync[name].max_change for name in ("docs", "more", "plain")] == ["10%", 3, None]


@pytest.mark.parametrize("value", [-1, "150%", "abc", "10", True])
def test_bad_max_change_is_named(problems, value) -> None:
    assert problems(yaml_data={"sync": {"docs": {**SYNC, "max_change": value}}}) == [
        f"nasbox.yaml: sync.docs.max_change: expected a file count or a percentage such as 50%, got {value!r}"
    ]


def test_config_check_exits_78_for_a_bad_max_change(tmp_path: Path) -> None:
    path = tmp_path / "nasbox.yaml"
    path.write_text(yaml.safe_dump({"sync": {"docs": {**SYNC, "max_change": "150%"}}}))
    checked = subprocess.run([sys.executable, "-m", "nasbox", "config", "check"], capture_output=True, text=True,
                             timeout=60, env={**os.environ, "NASBOX_CONFIG": str(path), "PYTHONPATH": str(REPO)})
    assert checked.returncode == exits.CONFIG == 78
    assert "sync.docs.max_change: expected a file count or a percentage such as 50%, got '150%'" in checked.stderr


@pytest.mark.parametrize("setting, total, limit", [
    (None, 200, 50), (None, 3, 10), (None, 40, 10), ("50%", 40, 20), ("0%", 1000, 10), (0, 1000, 0), (7, 3, 7),
])
def test_rewrite_limit(setting, total, limit) -> None:
    assert REWRITES.limit(setting, total) == limit


def test_deletions_keep_no_floor() -> None:
    assert (deletion_limit(None, 3), deletion_limit("30%", 10), deletion_limit(2, 10)) == (1, 3, 2)
    assert DELETIONS.limit(None, 3) == deletion_limit(None, 3)


def test_rewrites_are_existing_files_copied_over() -> None:
    output = "\n".join([
        ">f+++++++++ new.txt",
        ">f.st...... grown.txt",
        ">f..t...... same-size.txt",
        ">fcst...... sub/checked.txt",
        ".f...p..... mode-only.txt",
        ".f..t...... mtime-only.txt",
        "*deleting   gone.txt",
        ">f..t...... line\\#012break and back\\#134#012slash",
        "cL+++++++++ link -> target",
        "",
        "Number of files: 9 (reg: 8, dir: 1)",
    ])
    resized, same_size = rsync_cmds.rewrites(output)
    assert resized == [b"grown.txt", b"sub/checked.txt"]
    assert same_size == [b"same-size.txt", b"line\nbreak and back\\#012slash"]


def test_content_check_command_line() -> None:
    job = SyncJob("docs", "/data/docs", "/backup/docs/", "daily", exclude=("*.tmp",), hard_links=True)
    assert rsync_cmds.content_check(job, "/tmp/list") == [
        "rsync", "-a", "--checksum", "--dry-run", "--itemize-changes", "--files-from=/tmp/list", "--from0",
        "--", "/data/docs/", "/backup/docs/"]
