"""Samba options passed through reach a real smbd, which honours them: seen with smbclient."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbox.config import load_config
from tests.host.conftest import smbd_serving
from tests.support.smbclient import smbclient

pytestmark = pytest.mark.host


@pytest.fixture
def root() -> Iterator[Path]:
    # Not under pytest's tmp_path: its parent is mode 0700, which the share's users cannot pass.
    place = Path(tempfile.mkdtemp(prefix="nasbox-options-"))
    place.chmod(0o755)
    (place / "docs").mkdir()
    (place / "docs" / "hello.txt").write_text("hello\n")
    yield place
    shutil.rmtree(place)


def served_listing(root: Path, user: str, options: dict) -> tuple[str, str]:
    """What `smbclient -L` lists, and what `ls` shows in the share, with these options."""
    yaml_file = root / "nasbox.yaml"
    yaml_file.write_text(
        "shares:\n"
        f"  docs: {{access: write, paths: [{root / 'docs'}], users: ['{user}:pw'], samba_options: {options['share']}}}\n"
        f"server: {{samba_options: {options['server']}}}\n"
    )
    config = load_config({"NASBOX_CONFIG": str(yaml_file)})
    with smbd_serving(config, root / "smbd") as server:
        listing = smbclient(server, None, user, "pw")
        inside = smbclient(server, "docs", user, "pw", "ls")
    assert listing.returncode == 0 and inside.returncode == 0, listing.stdout + inside.stdout
    return listing.stdout, inside.stdout


def test_passed_options_are_honoured_by_smbd(root, host_users):
    user = host_users["writer"]
    plain_list, _ = served_listing(root, user, {"share": {}, "server": {}})
    assert "docs" in plain_list and "Family files" not in plain_list

    listing, inside = served_listing(
        root, user, {"share": {"browseable": False}, "server": {"server string": "Family files"}}
    )
    assert "IPC Service (Family files)" in listing  # the server-wide option
    assert "docs" not in listing  # the share's: no longer listed...
    assert "hello.txt" in inside  # ...and still served
