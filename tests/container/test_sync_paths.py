"""In the image: sync paths that meet through two volumes of one host folder, or through a link
that changes after the configuration was checked."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.helpers import IMAGE, NAME_PREFIX, docker

pytestmark = pytest.mark.container


@pytest.fixture
def host_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix=NAME_PREFIX))
    try:
        yield root
    finally:
        shutil.rmtree(root)


def test_a_backup_volume_inside_the_source_volume_is_refused(host_dir):
    """Two volumes of one host folder: /backup is /data/backup."""
    (host_dir / "backup").mkdir()
    result = docker("run", "--rm", "-v", f"{host_dir}:/data", "-v", f"{host_dir}/backup:/backup",
                    "-e", "SYNC_DOCS=/data /backup/docs daily", IMAGE, "nasbox", "config", "check")
    output = result.stdout + result.stderr
    assert result.returncode == 78, output
    assert "env SYNC_DOCS: destination: expected a path outside the source" in output, output


def test_a_link_changed_after_the_check_stops_the_next_run(host_dir):
    """Every run reads the configuration again, and checks it where the paths lead now."""
    (host_dir / "src").mkdir()
    (host_dir / "src" / "a.txt").write_text("precious")
    script = "\n".join([
        "set -u",
        "mkdir /elsewhere && ln -s /elsewhere /tmp/backup",
        "nasbox config check || exit 90",
        "rm /tmp/backup && ln -s /data/src /tmp/backup",  # the backup now lies inside the source
        "nasbox sync docs --now --force; echo \"exit=$?\"",
    ])
    result = docker("run", "--rm", "-v", f"{host_dir}:/data", "-e", "SYNC_DOCS=/data/src /tmp/backup/docs daily",
                    IMAGE, "sh", "-c", script)
    output = result.stdout + result.stderr
    assert "exit=78" in output, output
    assert "env SYNC_DOCS: destination: expected a path outside the source" in output, output
    assert "/tmp/backup/docs is /data/src/docs" in output, output
    assert sorted(p.name for p in (host_dir / "src").iterdir()) == ["a.txt"]
