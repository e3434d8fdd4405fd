"""Versions seen as Windows "Previous Versions" through a real smbd configured by nasbox, with
Samba's own client: `allinfo` lists a file's versions, a file fetched through an `@GMT-` path
holds its old content, in the share of a sync's source (and shares inside it or reached
through a symlink) and in a read-only share of its destination; versions as hard-linked trees
and as btrfs snapshots."""
from __future__ import annotations

import errno
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nasbox.config import Config, load_config
from nasbox.samba import version_views
from nasbox.samba.previous_versions import shown_jobs
from nasbox.sync.engine import Sync
from nasbox.versions.store import VERSIONS_DIR, Versions
from tests.host.conftest import smbd_serving
from tests.support.access_matrix import OUTSIDER, READER, REFUSED, WRITER
from tests.support.files import tree
from tests.support.smbclient import Server, output, smbclient

pytestmark = pytest.mark.host

# The content of reports/q.txt in each of the three versions, oldest first.
CONTENTS = ("first draft\n", "second draft, longer\n", "final\n")
START = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Served:
    server: Server
    source: Path
    destination: Path
    versions: list[str]  # their @GMT- names, oldest first
    view: Path  # the read-only view Samba reads them through
    users: dict[str, str]


def run_sync(config: Config, state: Path, moment: datetime) -> None:
    result = Sync(config.sync["docs"], config, state_dir=state, clock=lambda: moment).run()
    assert result.status == "good", result.summary


@pytest.fixture(scope="module", params=["linked", "btrfs"])
def served(request: pytest.FixtureRequest, host_users: dict[str, str]) -> Iterator[Served]:
    # Not under pytest's tmp_path: its parent is mode 0700, which the share's users cannot pass.
    root = Path(tempfile.mkdtemp(prefix="nasbox-versions-"))
    root.chmod(0o755)
    backup = root / "backup"
    backup.mkdir()
    mounted = False
    views = root / "views"
    patch = pytest.MonkeyPatch()
    patch.setenv("NASBOX_VERSION_VIEWS", str(views))
    try:
        destination = backup / "docs"
        if request.param == "btrfs":  # a destination that is a subvolume: versions are snapshots
            image = root / "btrfs.img"
            subprocess.run(["truncate", "-s", "128M", str(image)], check=True)
            subprocess.run(["mkfs.btrfs", "-q", str(image)], check=True, capture_output=True)
            subprocess.run(["mount", "-o", "loop", str(image), str(backup)], check=True)
            mounted = True
            backup.chmod(0o755)
            subprocess.run(["btrfs", "-q", "subvolume", "create", str(destination)], check=True)
        source, other = root / "data" / "docs", root / "other"
        source.mkdir(parents=True)
        other.mkdir()
        (root / "linked").symlink_to(source)
        writer, outsider = (pwd.getpwnam(host_users[role]).pw_uid for role in ("writer", "outsider"))
        os.chown(other, outsider, -1)
        w, r, o = host_users["writer"], host_users["reader"], host_users["outsider"]
        config = load_config({
            "NASBOX_CONFIG": "/dev/null",
            f"USER_{w.upper()}": f"{w}:{WRITER[1]}",
            f"USER_{r.upper()}": f"{r}:{READER[1]}",
            f"USER_{o.upper()}": f"{o}:{OUTSIDER[1]}",
            "SHARE_DOCS_W": f"write docs {source} {w}",
            "SHARE_DOCS_R": f"read docs {source} {r}",
            "SHARE_REPORTS": f"read reports {source}/reports {r}",
            "SHARE_LINKED": f"read linked {root}/linked {r}",
            "SHARE_BACKUP": f"read backup {destination} {w},{r}",
            "SHARE_OTHER": f"write other {other} {o}",
            "SYNC_DOCS": f"{source} {destination} daily",
            "SYNC_DOCS_VERSIONS": "last=5",
        })
        # As at the container's start: before the first version, so the sync mounts the view.
        version_views.prepare(config, shown_jobs(config))
        state = root / "state"
        for i, content in enumerate(CONTENTS):
            files = {"reports/q.txt": content, "keep.txt": "never changes\n"}
            if i == 0:
                files["gone.txt"] = "deleted after the first version\n"
            else:
                (source / "gone.txt").unlink(missing_ok=True)
            tree(source, files)
            for path in [source, *source.rglob("*")]:
                os.lchown(path, writer, -1)
            run_sync(config, state, START + timedelta(days=i))
        names = [v.name for v in Versions(str(destination)).all()]
        assert len(names) == 3
        assert Versions(str(destination)).snapshots() == (request.param == "btrfs")
        with smbd_serving(config, root / "smbd") as server:
            yield Served(server, source, destination, names, version_views.view("docs"), host_users)
    finally:
        patch.undo()
        if views.exists():
            for place in views.iterdir():
                subprocess.run(["umount", str(place)], check=False, capture_output=True)
        if mounted:
            subprocess.run(["umount", str(backup)], check=False)
        shutil.rmtree(root)


def as_reader(served: Served, share: str, commands: str) -> subprocess.CompletedProcess[str]:
    return smbclient(served.server, share, served.users["reader"], READER[1], commands)


def listed_versions(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The @GMT- names allinfo prints, each followed by the times of the file in it."""
    return re.findall(r"^(@GMT-[0-9.-]+)$", result.stdout, re.MULTILINE)


def fetched(served: Served, share: str, path: str, tmp_path: Path) -> str:
    local = tmp_path / f"fetched-{len(list(tmp_path.iterdir()))}"
    result = as_reader(served, share, f'get "{path}" {local}')
    assert result.returncode == 0 and local.exists(), output(result)
    return local.read_text()


@pytest.mark.parametrize("share, path", [("docs", "reports/q.txt"), ("backup", "reports/q.txt"),
                                         ("reports", "q.txt"), ("linked", "reports/q.txt")])
def test_allinfo_lists_every_version_newest_first(served: Served, share: str, path: str) -> None:
    result = as_reader(served, share, f'allinfo "{path}"')
    assert result.returncode == 0, output(result)
    assert listed_versions(result) == served.versions[::-1]
    # The file itself, then once in each version (Samba's own test counts them so).
    assert result.stdout.count("\ncreate_time:") + result.stdout.startswith("create_time:") == 4, result.stdout


@pytest.mark.parametrize("share, path", [("docs", "reports/q.txt"), ("backup", "reports/q.txt"),
                                         ("reports", "q.txt"), ("linked", "reports/q.txt")])
def test_a_file_fetched_through_a_gmt_path_holds_that_versions_content(
        served: Served, share: str, path: str, tmp_path: Path) -> None:
    for name, content in zip(served.versions, CONTENTS):
        assert fetched(served, share, f"{name}/{path}", tmp_path) == content, name
    assert fetched(served, share, path, tmp_path) == CONTENTS[-1]


@pytest.mark.parametrize("share", ["docs", "backup"])
def test_a_deleted_file_comes_back_from_the_version_that_has_it(
        served: Served, share: str, tmp_path: Path) -> None:
    assert not (served.source / "gone.txt").exists()
    assert fetched(served, share, f"{served.versions[0]}/gone.txt", tmp_path) == "deleted after the first version\n"
    later = as_reader(served, share, f'get "{served.versions[1]}/gone.txt" {tmp_path / "x"}')
    assert "NT_STATUS_OBJECT_NAME_NOT_FOUND" in output(later), output(later)


def test_a_user_without_access_to_the_share_sees_no_version(served: Served, tmp_path: Path) -> None:
    outsider = (served.users["outsider"], OUTSIDER[1])
    for share in ("docs", "backup"):
        result = smbclient(served.server, share, *outsider, f'allinfo "{served.versions[0]}/reports/q.txt"')
        assert "NT_STATUS_ACCESS_DENIED" in output(result), output(result)
    # Their own share shows no versions, and no @GMT- path leads out of it.
    own = smbclient(served.server, "other", *outsider,
                    f'get "{served.versions[0]}/reports/q.txt" {tmp_path / "x"}; ls')
    assert "NT_STATUS_OBJECT_PATH_NOT_FOUND" in output(own) and not (tmp_path / "x").exists(), output(own)


def test_a_version_cannot_be_changed_through_the_share(served: Served, tmp_path: Path) -> None:
    """Not even a file the version shares with the mirror (keep.txt), by its owner, in the
    share where she may write: Samba reads versions through a read-only mount."""
    local = tmp_path / "attempt.txt"
    local.write_text("overwritten\n")
    first = served.versions[0]
    writer = (served.users["writer"], WRITER[1])
    for share in ("docs", "backup"):
        for path in (f"{first}/reports/q.txt", f"{first}/keep.txt"):
            for command in (f'put {local} "{path}"', f'del "{path}"', f'rename "{path}" "{path}.x"',
                            f'setmode "{path}" +r', f'mkdir "{first}/new"'):
                result = smbclient(served.server, share, *writer, command)
                assert any(s in output(result) for s in REFUSED + ("NT_STATUS_",)), (share, command, output(result))
    version = served.destination / VERSIONS_DIR / first
    assert (version / "reports" / "q.txt").read_text() == CONTENTS[0]
    assert (version / "keep.txt").read_text() == (served.destination / "keep.txt").read_text() == "never changes\n"
    assert (version / "keep.txt").stat().st_mode & 0o222 and not (version / "new").exists()
    with pytest.raises(OSError) as refused:  # by the kernel, for root too
        (served.view / first / "keep.txt").open("a")
    assert refused.value.errno == errno.EROFS


def test_the_versions_directory_is_hidden_and_refused(served: Served, tmp_path: Path) -> None:
    listing = as_reader(served, "backup", "ls")
    assert listing.returncode == 0 and "keep.txt" in listing.stdout, output(listing)
    assert VERSIONS_DIR not in listing.stdout
    direct = as_reader(served, "backup", f'get "{VERSIONS_DIR}/{served.versions[0]}/reports/q.txt" {tmp_path / "x"}')
    assert "NT_STATUS_OBJECT_PATH_NOT_FOUND" in output(direct) and not (tmp_path / "x").exists(), output(direct)
