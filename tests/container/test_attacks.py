"""Attacks on the image as a share user on the LAN and an admin's typo would make them: a
share user must never reach nasbox's parity databases, and no configuration value may add a
share, an option or a log line."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from tests.container.helpers import IMAGE, USERS, docker, nasbox_container, workspace
from tests.support.access_matrix import SHARE, WRITER, matrix_env
from tests.support.smbclient import output, smbclient

pytestmark = pytest.mark.container

MATRIX_ENV = matrix_env(USERS, "/data/docs", "/data/other")
REFUSED = "NT_STATUS_"


def test_share_user_cannot_reach_the_parity_database(tmp_path: Path) -> None:
    with workspace() as ws:
        (ws.docs / "report.txt").write_text("quarterly numbers\n")
        env = {**MATRIX_ENV, "SCRUB_DOCS": "/data/docs .pardatabase 5% weekly"}
        with nasbox_container(ws, env, "attack-db") as box:
            scrub = box.exec("scrub", "--now")
            assert scrub.returncode == 0, scrub.stdout + scrub.stderr
            assert (ws.docs / ".pardatabase" / ".nasbox-scrub" / "catalog.sqlite").is_file()

            def as_writer(commands: str) -> str:
                return output(smbclient(box.server(), SHARE, USERS["writer"], WRITER[1],
                                        f"lcd {tmp_path}; {commands}"))

            listing = as_writer("ls")
            assert "report.txt" in listing and ".pardatabase" not in listing, listing
            forged = tmp_path / "forged.par2"
            forged.write_bytes(b"PAR2\0PKT forged")
            attempts = {
                "rename .pardatabase old-db": lambda: (ws.docs / ".pardatabase").is_dir(),
                "get .pardatabase/.nasbox-scrub/catalog.sqlite catalog": lambda: not (tmp_path / "catalog").exists(),
                "ls .pardatabase/*": lambda: True,
                "put forged.par2 .pardatabase/report.txt.par2": lambda: (
                    (ws.docs / ".pardatabase" / "report.txt.par2").read_bytes() != forged.read_bytes()),
                "get .PardataBase/.NASBOX-SCRUB/catalog.sqlite catalog2": lambda: not (tmp_path / "catalog2").exists(),
                "mkdir sub/.pardatabase": lambda: not (ws.docs / "sub" / ".pardatabase").exists(),
                "mkdir sub/.PARDATABASE": lambda: not (ws.docs / "sub" / ".PARDATABASE").exists(),
                "mkdir .nasbox-partial": lambda: not (ws.docs / ".nasbox-partial").exists(),
                "rmdir .pardatabase": lambda: (ws.docs / ".pardatabase").is_dir(),
            }
            for command, unharmed in attempts.items():
                answer = as_writer(command)
                assert REFUSED in answer, f"{command}: {answer}"
                assert unharmed(), f"{command} changed the database: {answer}"
            # The database stays root's, out of every user's reach on the host side too.
            st = (ws.docs / ".pardatabase").stat()
            assert st.st_uid == 0 and st.st_mode & 0o022 == 0, oct(st.st_mode)
        # nasbox's state and logs: files 0600 in directories 0700, history's -wal and -shm included.
        readable = {str(p.relative_to(ws.config)): oct(p.stat().st_mode & 0o777)
                    for p in [ws.config / "state", ws.config / "logs", *ws.config.rglob("*")]
                    if p.stat().st_mode & 0o077}
        assert {"state/history.sqlite", "logs/scrub-docs.log"} <= {
            str(p.relative_to(ws.config)) for p in ws.config.rglob("*")}
        assert readable == {}, readable


def wait_for_exit_or_service(box, timeout: float = 60) -> int | None:
    """The container's exit code, or None when smbd came up instead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = box.inspect()["State"]
        if not state["Running"]:
            return int(state["ExitCode"])
        if "supervisord started" in box.logs() and box.exec("nasbox", "health").returncode == 0:
            return None
        time.sleep(0.5)
    pytest.fail(f"neither exited nor served within {timeout} s:\n{box.logs()}")


def test_injected_share_never_serves_the_root_filesystem(tmp_path: Path) -> None:
    """A hosts_allow entry holding newlines once added `[evil] path = /, force user = root`:
    a share user downloaded /etc/shadow."""
    injected = "127.0.0.1 172.16.0.0/12\n[evil]\npath = /\nforce user = root\nvalid users = alice"
    with workspace() as ws:
        (ws.config / "nasbox.yaml").write_text(yaml.safe_dump({"server": {"hosts_allow": [injected]}}))
        with nasbox_container(ws, MATRIX_ENV, "attack-hosts", ready=False) as box:
            exit_code = wait_for_exit_or_service(box)
            if exit_code is None:  # it started: try what the attacker did
                stolen = smbclient(box.server(), "evil", USERS["writer"], WRITER[1],
                                   f"lcd {tmp_path}; get etc/shadow shadow")
                assert not (tmp_path / "shadow").exists(), output(stolen)
            log = box.logs()
    assert exit_code == 78, log
    assert "nasbox.yaml: server.hosts_allow[0]:" in log, log


@pytest.mark.parametrize("case, env, yaml_data, field", [
    ("share key", {}, {"shares": {"docs\n    admin users = alice": {
        "access": "write", "paths": ["/data/docs"], "users": ["alice:pw"]}}}, "nasbox.yaml: shares"),
    ("share path", {}, {"shares": {"docs": {
        "access": "write", "paths": ["/data/docs\n    force user = root"], "users": ["alice:pw"]}}},
     "nasbox.yaml: shares.docs.paths[0]:"),
    ("share comment", {}, {"shares": {"docs": {
        "access": "write", "paths": ["/data/docs"], "users": ["alice:pw"], "comment": "x\n[etc]\npath = /etc"}}},
     "nasbox.yaml: shares.docs.comment:"),
    ("user name", {"USER_A": "alice\n:pw"}, {}, "env USER_A"),
    ("share user", {"SHARE_A": "write docs /data/docs 'alice\n:pw'"}, {}, "env SHARE_A: users[0]:"),
    ("password", {"USER_A": "alice:same\nsame"}, {}, "env USER_A: password:"),
    ("job name", {}, {"sync": {"nightly\n2026-01-01T00:00:00+0000 nasbox ERROR forged": {
        "source": "/data/docs", "destination": "/backup/docs", "schedule": "daily"}}}, "nasbox.yaml: sync"),
])
def test_value_holding_a_newline_is_refused_by_config_check(tmp_path: Path, case, env, yaml_data, field) -> None:
    """Each once passed `config check` and then rewrote smb.conf, crashed the start (exit 1)
    or forged a log line."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "nasbox.yaml").write_text(yaml.safe_dump(yaml_data))
    args = ["run", "--rm", "-v", f"{config}:/config"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    for verb in (["nasbox", "config", "check"], ["nasbox", "run"]):
        result = docker(*args, IMAGE, *verb, timeout=60)
        assert result.returncode == 78, f"{case}: {verb}: {result.returncode}\n{result.stdout}{result.stderr}"
        assert field in result.stderr, f"{case}: {result.stderr}"
        assert "same" not in result.stdout + result.stderr
    assert os.listdir(config) == ["nasbox.yaml"]  # nothing changed on disk
