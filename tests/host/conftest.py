"""Host layer: a real smbd on a high port with nasbox's rendered smb.conf."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from nasbox.config import Config, load_config
from nasbox.health import smb_answers
from nasbox.samba import accounts, samba_cmds, smbconf
from nasbox.samba.passwd import MARK
from tests.support.access_matrix import Matrix, add_foreign_file, matrix_env, populate
from tests.support.smbclient import Server

pytestmark = pytest.mark.host

# Host accounts for the test users (smbd maps logins to Unix accounts), removed afterwards.
HOST_USERS = {"writer": "nbxalice", "reader": "nbxbob", "outsider": "nbxcarol"}


def require_host_tools() -> None:
    missing = [t for t in ("smbd", "smbclient", "smbpasswd", "useradd") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"host tools missing: {', '.join(missing)} (run .ci/setup)")
    if os.geteuid() != 0:
        pytest.fail("the host layer runs smbd and creates test accounts: run as root")


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def host_users() -> Iterator[dict[str, str]]:
    require_host_tools()
    for name in HOST_USERS.values():
        try:
            pwd.getpwnam(name)
        except KeyError:
            # Marked as nasbox's own, as nasbox marks the accounts it makes in the container.
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            "--comment", MARK, name], check=True)
    yield dict(HOST_USERS)
    for name in HOST_USERS.values():
        subprocess.run(["userdel", name], check=False)


def state_paths(root: Path) -> dict[str, str]:
    paths = {}
    for key in ("private dir", "lock directory", "state directory", "cache directory",
                "pid directory", "ncalrpc dir", "binddns dir"):
        directory = root / key.split()[0]
        directory.mkdir(parents=True, exist_ok=True)
        paths[key] = str(directory)
    return paths


@contextmanager
def smbd_serving(config: Config, root: Path) -> Iterator[Server]:
    """A real smbd with nasbox's smb.conf for config on a free port, its files under root;
    stopped, with the RPC helpers it started, on the way out."""
    port = free_port()
    conf = root / "smb.conf"
    smbconf.write(config, conf, port=port, state_paths=state_paths(root / "state"))
    accounts.set_samba_passwords(config, str(conf))

    # A session of its own: smbd signals its whole process group when it stops.
    smbd = subprocess.Popen(samba_cmds.smbd(str(conf)), stdout=open(root / "smbd.log", "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not smb_answers(port=port, timeout=1)[0]:
            if smbd.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"smbd did not come up:\n{(root / 'smbd.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server("127.0.0.1", port)
    finally:
        smbd.terminate()
        smbd.wait(timeout=20)
        # smbd's RPC helpers (samba-dcerpcd, rpcd_*) detach from it: find them by config file.
        helpers = [p for p in psutil.process_iter(["cmdline"]) if str(conf) in " ".join(p.info["cmdline"] or ())]
        for helper in helpers:
            helper.terminate()
        psutil.wait_procs(helpers, timeout=10)


@pytest.fixture(scope="session")
def matrix(host_users: dict[str, str]) -> Iterator[Matrix]:
    # Not under pytest's tmp_path: its parent is mode 0700, which the share's users cannot pass.
    root = Path(tempfile.mkdtemp(prefix="nasbox-smbd-"))
    root.chmod(0o755)
    docs, other = root / "docs", root / "other"
    docs.mkdir()
    other.mkdir()
    populate(docs)
    for directory, owner in ((docs, host_users["writer"]), (other, host_users["outsider"])):
        for path in [directory, *directory.rglob("*")]:
            os.lchown(path, pwd.getpwnam(owner).pw_uid, -1)
    add_foreign_file(docs)  # root's again: the loop gave it to the writer
    config = load_config({"NASBOX_CONFIG": "/dev/null", **matrix_env(host_users, str(docs), str(other))})
    try:
        with smbd_serving(config, root) as server:
            yield Matrix(server=server, share_dir=docs, other_dir=other, users=host_users)
    finally:
        shutil.rmtree(root)
