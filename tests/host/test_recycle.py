"""The recycle bin through a real smbd: a file deleted with smbclient lands in the share's
`.nasbox-recycle` with its folder, a second deletion of the name keeps both, the user restores
one by moving it back; the scheduler empties the bin after the retention (its clock
injected); a sync and a scrub of the share leave the bin alone."""
from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from nasbox.config import Config, load_config
from nasbox.history import History
from nasbox.samba import recycle
from nasbox.scheduler import Scheduler
from nasbox.scrub.engine import Scrub, scrub_databases
from nasbox.sync.engine import Sync
from tests.host.conftest import smbd_serving
from tests.support.smbclient import Server, output, smbclient

pytestmark = pytest.mark.host

DAY = 86400


@pytest.fixture
def root() -> Iterator[Path]:
    # Not under pytest's tmp_path: its parent is mode 0700, which the share's users cannot pass.
    place = Path(tempfile.mkdtemp(prefix="nasbox-recycle-"))
    place.chmod(0o755)
    yield place
    shutil.rmtree(place)


def configured(root: Path, user: str) -> Config:
    docs = root / "docs"
    docs.mkdir()
    os.chown(docs, pwd.getpwnam(user).pw_uid, -1)
    return load_config({
        "NASBOX_CONFIG": "/dev/null",
        "SHARE_DOCS": f"write docs {docs} {user}:pw",
        "SHARE_DOCS_RECYCLE": "30d",
        "SYNC_DOCS": f"{docs} {root}/backup daily",
        "SCRUB_DOCS": f"{docs} {root}/parity 5% weekly",
    })


def run(server: Server, user: str, commands: str) -> str:
    result = smbclient(server, "docs", user, "pw", commands)
    assert result.returncode == 0 and "NT_STATUS" not in result.stdout, output(result)
    return result.stdout


def test_deleted_files_wait_in_the_bin_until_the_retention(root, host_users):
    user = host_users["writer"]
    config = configured(root, user)
    recycle.prepare(config, gid=pwd.getpwnam(user).pw_gid)  # as at the container's start
    docs, bin_ = root / "docs", root / "docs" / ".nasbox-recycle"
    for name, text in (("first", "first plan\n"), ("second", "second plan\n"), ("lock", "owner\n")):
        (root / name).write_text(text)
    with smbd_serving(config, root / "smbd") as server:
        run(server, user, f"mkdir Projects; put {root}/first Projects/plan.txt; del Projects/plan.txt; "
                          f"put {root}/second Projects/plan.txt; del Projects/plan.txt; "
                          f"put {root}/lock Projects/~$plan.docx; del Projects/~$plan.docx")
        assert sorted(p.name for p in (bin_ / "Projects").iterdir()) == ["Copy #1 of plan.txt", "plan.txt"]
        assert (bin_ / "Projects" / "plan.txt").read_text() == "first plan\n"
        assert (bin_ / "Projects" / "Copy #1 of plan.txt").read_text() == "second plan\n"
        assert not list(docs.glob("Projects/*"))  # and an Office lock file is simply gone

        # Hidden, not vetoed: the user sees the bin and restores by moving a file back.
        assert "plan.txt" in run(server, user, "ls .nasbox-recycle/Projects/*")
        run(server, user, 'rename ".nasbox-recycle/Projects/Copy #1 of plan.txt" Projects/plan.txt')
        assert (docs / "Projects" / "plan.txt").read_text() == "second plan\n"

    # A sync and a scrub of the share leave the bin out.
    assert Sync(config.sync["docs"], config, state_dir=root / "state").run().status == "good"
    assert (root / "backup" / "Projects" / "plan.txt").exists()
    assert not (root / "backup" / ".nasbox-recycle").exists()
    assert Scrub(config.scrub["docs"], databases=scrub_databases(config)).run().status in ("good", "info")
    catalog = sqlite3.connect(root / "parity" / ".nasbox-scrub" / "catalog.sqlite")
    try:
        protected = {os.path.join(os.fsdecode(d), os.fsdecode(n)) for d, n in catalog.execute("SELECT dir, name FROM files")}
    finally:
        catalog.close()
    assert protected == {"Projects/plan.txt"}

    # The scheduler empties the bin at its start and every hour, of what entered it 30 days ago.
    now = datetime.now().astimezone()
    for days, left in ((29, ["plan.txt"]), (31, [])):
        scheduler = Scheduler(config, History())
        scheduler.empty_recycle_bins(now + timedelta(days=days))
        assert scheduler.emptying is not None
        scheduler.emptying.join(timeout=30)
        assert sorted(p.name for p in bin_.rglob("*") if p.is_file()) == left
        scheduler.empty_recycle_bins(now + timedelta(days=days, minutes=59))  # not again within the hour
        assert not scheduler.emptying.is_alive() and scheduler.recycle_due == now + timedelta(days=days, hours=1)
    assert bin_.is_dir() and (docs / "Projects" / "plan.txt").exists()


def test_emptying_stays_on_the_bins_filesystem(tmp_path):
    bin_ = tmp_path / ".nasbox-recycle"
    mounted = bin_ / "mounted"
    mounted.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mounted)], check=True)
    try:
        (mounted / "elsewhere.txt").write_text("not the bin's\n")
        recycle.empty(str(bin_), DAY, now=time.time() + 2 * DAY)
        assert (mounted / "elsewhere.txt").read_text() == "not the bin's\n"
    finally:
        subprocess.run(["umount", str(mounted)], check=False)
