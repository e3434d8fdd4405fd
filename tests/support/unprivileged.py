"""rsync as an unprivileged user: root reads every file, so a file rsync cannot read (exit 23)
needs rsync to run as someone else."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

NOBODY = 65534


def rsync_as_nobody(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rsync nasbox runs from now on runs as nobody, who owns tmp_path's tree and can
    pass its parents."""
    for path in (tmp_path, *tmp_path.rglob("*")):
        os.chown(path, NOBODY, NOBODY)
    for parent in tmp_path.parents:
        parent.chmod(parent.stat().st_mode | 0o005)
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    (wrappers / "rsync").write_text(
        f'#!/bin/sh\nexec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups {shutil.which("rsync")} "$@"\n'
    )
    (wrappers / "rsync").chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrappers}:{os.environ['PATH']}")
