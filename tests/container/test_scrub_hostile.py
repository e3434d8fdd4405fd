"""A share user's attack on the scrub, for real: over SMB against the image, the scrub run by
`docker exec`."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob
from tests.container.helpers import USERS, nasbox_container, workspace
from tests.support.access_matrix import SHARE, WRITER, matrix_env
from tests.support.smbclient import output, smbclient

pytestmark = pytest.mark.container


def forged_database(tmp_path: Path, name: str, content: bytes, victim: os.stat_result) -> Path:
    """What the attacker makes with nasbox itself: a parity set of her content under the
    victim's name (100% redundancy: par2 can rebuild all of it), and a catalog row that
    matches the victim's size, mtime, ctime and inode, so a scrub takes the victim for a
    corrupt copy."""
    directory = tmp_path / "forge"
    directory.mkdir()
    (directory / name).write_bytes(content)
    database = tmp_path / "forged-parity"
    Scrub(
        ScrubJob(name="forge", directory=str(directory), database=str(database), redundancy=100, schedule="daily")
    ).run()
    db = sqlite3.connect(database / ".nasbox-scrub" / "catalog.sqlite", isolation_level=None)
    db.execute(
        "UPDATE files SET mtime_ns = ?, inode = ?, ctime_ns = ?, settled = 1",
        (victim.st_mtime_ns, victim.st_ino, victim.st_ctime_ns),
    )
    db.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to upload
    db.close()
    return database


def test_a_share_user_cannot_plant_a_scrub_database(tmp_path: Path) -> None:
    with workspace() as ws:
        victim = ws.docs / "root-only.conf"
        original = os.urandom(30_000)
        victim.write_bytes(original)
        os.chown(victim, 0, 0)
        victim.chmod(0o644)  # alice may read it, not write it
        env = {**matrix_env(USERS, "/data/docs", "/data/other"), "SCRUB_DOCS": "/data/docs .pardatabase 5% weekly"}
        with nasbox_container(ws, env, "scrub-forge") as box:
            first = box.exec("scrub", "--now")
            assert first.returncode == 0, first.stdout + first.stderr
            st = victim.stat()
            forged = forged_database(tmp_path, victim.name, os.urandom(30_000), st)
            upload = "; ".join(
                f"{'put ' + str(path) if path.is_file() else 'mkdir'} .pardatabase/{path.relative_to(forged)}"
                for path in sorted(forged.rglob("*"))
                if path.is_file() or path.is_dir()
            )
            attack = smbclient(
                box.server(),
                SHARE,
                USERS["writer"],
                WRITER[1],
                "rename .pardatabase old-parity; mkdir .pardatabase; " + upload,
            )
            planted = ws.docs / ".pardatabase" / ".nasbox-scrub" / "catalog.sqlite"
            scrub = box.exec("scrub", "--now")
            assert victim.read_bytes() == original, scrub.stdout
            assert victim.stat().st_mtime_ns == st.st_mtime_ns
            if planted.stat().st_uid == box.uid(USERS["writer"]):  # Samba let her plant it: the scrub refuses it
                assert scrub.returncode == 75, scrub.stdout + scrub.stderr
                assert "refused: /data/docs/.pardatabase is owned by uid" in scrub.stdout
            else:  # Samba refused the attack itself: nasbox's own catalog is still in place
                assert planted.stat().st_uid == 0 and not (ws.docs / "old-parity").exists(), output(attack)
                assert scrub.returncode == 0, scrub.stdout + scrub.stderr
