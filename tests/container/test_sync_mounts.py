"""Sync jobs and CIFS mounts in the real container: bind-mounted data copied, a hold that
survives a restart, and the offline-share path (this kernel has no CIFS, so every mount
fails as an offline share does)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.container.helpers import docker, nasbox_container, workspace

pytestmark = pytest.mark.container

USERS = {"USER_ALICE": "alice:alice-pw"}
MOUNT_PASSWORD = "mount-s3cret-pw"


def test_sync_copies_bind_mounted_data_and_a_hold_survives_a_restart(tmp_path: Path) -> None:
    with workspace() as ws:
        backup = ws.root / "backup"
        backup.mkdir()
        for i in range(10):
            (ws.docs / f"report-{i}.txt").write_text(f"report {i}\n")
        env = {**USERS, "SHARE_DOCS": "write docs /data/docs alice", "SYNC_DOCS": "/data/docs /backup/docs daily"}
        with nasbox_container(ws, env, "sync", extra_mounts={backup: "/backup"}) as box:
            first = box.exec("nasbox", "sync", "docs", "--now")
            assert first.returncode == 0, first.stdout + first.stderr
            assert "sync docs: good:" in first.stdout
            assert (backup / "docs" / "report-3.txt").read_text() == "report 3\n"

            files = sum(1 for p in ws.docs.rglob("*") if not p.is_dir() or p.is_symlink())
            for i in range(9):  # more than half of the source disappears
                (ws.docs / f"report-{i}.txt").unlink()
            held = box.exec("nasbox", "sync", "docs", "--now")
            assert held.returncode == 75 and f"held: it would delete 9 of {files} files" in held.stdout, held.stdout
            assert len(list((backup / "docs").glob("report-*.txt"))) == 10

            assert docker("restart", "-t", "10", box.name).returncode == 0
            box.wait_ready()
            still = box.exec("nasbox", "sync", "docs", "--now")
            assert still.returncode == 75 and "held since" in still.stdout, still.stdout
            assert len(list((backup / "docs").glob("report-*.txt"))) == 10

            forced = box.exec("nasbox", "sync", "docs", "--now", "--force")
            assert forced.returncode == 0, forced.stdout
            assert sorted(p.name for p in (backup / "docs").glob("report-*.txt")) == ["report-9.txt"]


def test_offline_share_keeps_the_container_up_and_skips_its_jobs(tmp_path: Path) -> None:
    with workspace() as ws:
        env = {**USERS, "SHARE_DOCS": "write docs /data/docs alice",
               "MOUNT_NAS": "/mnt/nas 127.0.0.1 backup documents /", "MOUNT_NAS_PASSWORD": MOUNT_PASSWORD,
               "SYNC_NAS": "/mnt/nas /data/docs/nas-copy daily"}
        with nasbox_container(ws, env, "mount") as box:  # ready: smbd answers despite the mount
            status = box.exec("nasbox", "mount", "--status")
            assert status.returncode == 0
            assert "nas: //127.0.0.1/documents on /mnt/nas: NOT MOUNTED" in status.stdout, status.stdout
            retry = box.exec("nasbox", "mount")
            assert retry.returncode == 75
            skipped = box.exec("nasbox", "sync", "nas", "--now")
            assert skipped.returncode == 75
            assert "/mnt/nas is on mount nas (//127.0.0.1/documents), which is not mounted" in skipped.stdout
            assert not (ws.docs / "nas-copy").exists()

            mode = box.exec("stat", "-c", "%a %U", "/dev/shm/nasbox-credentials/nas")
            assert mode.stdout.split() == ["600", "root"]
            # Nowhere else: not in logs, command lines, nor the environment of smbd.
            assert MOUNT_PASSWORD not in box.logs()
            argvs = box.exec("sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
            assert argvs.stdout and MOUNT_PASSWORD not in argvs.stdout
            smbd_env = box.exec("sh", "-c", "cat /proc/$(cat /run/samba/smbd.pid)/environ | tr '\\0' '\\n'")
            assert smbd_env.returncode == 0 and "TZ=UTC" in smbd_env.stdout
            assert MOUNT_PASSWORD not in smbd_env.stdout and "MOUNT_NAS" not in smbd_env.stdout
            assert "nasbox mount --keep" in argvs.stdout  # the keeper retries, and unmounts on stop
