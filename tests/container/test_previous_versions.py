"""The container left alone with a sync that keeps versions, scheduled every minute: the source
changes between two runs, and a client on the host sees the versions as Previous Versions
through the published port, in the source's share and in the destination's."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.container.helpers import USERS, nasbox_container, workspace
from tests.support.access_matrix import READER, REFUSED, WRITER
from tests.support.smbclient import output, smbclient

pytestmark = pytest.mark.container

FIRST, SECOND = "the first draft\n", "the second draft, rewritten\n"


def versions_of(backup: Path) -> list[str]:
    root = backup / "docs" / ".nasbox-versions"
    return sorted(p.name for p in root.iterdir() if p.name.startswith("@GMT-")) if root.is_dir() else []


def wait_for_versions(backup: Path, count: int, box, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(versions_of(backup)) < count:
        assert time.monotonic() < deadline, f"no version {count} after {timeout} s; log:\n{box.logs()}"
        time.sleep(1)
    return versions_of(backup)


def test_versions_of_a_scheduled_sync_are_previous_versions_through_the_published_port(tmp_path: Path) -> None:
    with workspace() as ws:
        backup = ws.root / "backup"
        backup.mkdir()
        backup.chmod(0o755)
        (ws.docs / "report.txt").write_text(FIRST)
        env = {
            "USER_ALICE": f"alice:{WRITER[1]}", "USER_BOB": f"bob:{READER[1]}",
            "SHARE_DOCS_W": "write docs /data/docs alice", "SHARE_DOCS_R": "read docs /data/docs bob",
            "SHARE_BACKUP": "read backup /backup/docs alice,bob",
            "SYNC_DOCS": "/data/docs /backup/docs '* * * * *'", "SYNC_DOCS_VERSIONS": "last=10",
        }
        with nasbox_container(ws, env, "versions", extra_mounts={backup: "/backup"}) as box:
            first = wait_for_versions(backup, 1, box, 90)
            (ws.docs / "report.txt").write_text(SECOND)
            names = wait_for_versions(backup, 2, box, 90)
            assert names[0] == first[0]

            reader = (USERS["reader"], READER[1])
            for share in ("docs", "backup"):
                listed = smbclient(box.server(), share, *reader, 'allinfo "report.txt"')
                assert listed.returncode == 0, output(listed)
                assert re.findall(r"^@GMT-[0-9.-]+$", listed.stdout, re.MULTILINE) == names[::-1], listed.stdout
                assert listed.stdout.count("create_time:") == 3, listed.stdout  # the file, then each version
                local = tmp_path / f"{share}.txt"
                got = smbclient(box.server(), share, *reader, f'get "{names[0]}/report.txt" {local}')
                assert got.returncode == 0 and local.read_text() == FIRST, output(got)

            # Not even the share's writer changes a version, and the kernel refuses it as well.
            attempt = tmp_path / "attempt.txt"
            attempt.write_text("overwritten\n")
            put = smbclient(box.server(), "docs", USERS["writer"], WRITER[1], f'put {attempt} "{names[0]}/report.txt"')
            assert any(status in output(put) for status in (*REFUSED, "NT_STATUS_")), output(put)
            assert (backup / "docs" / ".nasbox-versions" / names[0] / "report.txt").read_text() == FIRST
            touched = box.exec("touch", f"/run/nasbox-versions/docs/{names[0]}/report.txt")
            assert touched.returncode != 0 and "Read-only file system" in touched.stderr, touched.stderr
