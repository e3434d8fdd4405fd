"""A Time Machine share through a real smbd: each user writes into a folder of their own and
cannot reach anyone else's, by name, by `..` or by asking for another user name."""
from __future__ import annotations

import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbox.config import load_config
from nasbox.samba import time_machine
from tests.host.conftest import smbd_serving
from tests.support.smbclient import output, smbclient

pytestmark = pytest.mark.host


@pytest.fixture
def root() -> Iterator[Path]:
    # Not under pytest's tmp_path: its parent is mode 0700, which the share's users cannot pass.
    place = Path(tempfile.mkdtemp(prefix="nasbox-tm-"))
    place.chmod(0o755)
    yield place
    shutil.rmtree(place)


def test_each_user_backs_up_into_a_folder_of_their_own(root, host_users):
    alice, carol = host_users["writer"], host_users["outsider"]
    share = root / "tm"
    share.mkdir()
    (root / "band").write_text("sparsebundle band\n")
    (root / "nasbox.yaml").write_text(
        f"shares:\n  tm: {{access: write, paths: [{share}], users: ['{alice}:pa', '{carol}:pc'], time_machine: true}}\n"
    )
    config = load_config({"NASBOX_CONFIG": str(root / "nasbox.yaml")})
    uids = {user: pwd.getpwnam(user).pw_uid for user in (alice, carol)}
    time_machine.prepare(config, uids, gid=pwd.getpwnam(alice).pw_gid)  # as at the container's start
    with smbd_serving(config, root / "smbd") as server:
        put = smbclient(server, "tm", alice, "pa", f"mkdir Mac.sparsebundle; put {root}/band Mac.sparsebundle/b0")
        assert put.returncode == 0 and "NT_STATUS" not in put.stdout, output(put)
        assert (share / alice / "Mac.sparsebundle" / "b0").read_text() == "sparsebundle band\n"

        theirs = smbclient(server, "tm", carol, "pc", "ls; ls ../*; ls " + alice + "/*")
        assert "Mac.sparsebundle" not in theirs.stdout, output(theirs)
        assert "b0" not in theirs.stdout
        # Asking for alice's name with carol's password is a failed login, not alice's folder.
        posing = smbclient(server, "tm", alice, "pc", "ls")
        assert posing.returncode != 0 and "Mac.sparsebundle" not in posing.stdout
    assert sorted(p.name for p in share.iterdir()) == sorted([alice, carol])
    assert list((share / carol).iterdir()) == []
