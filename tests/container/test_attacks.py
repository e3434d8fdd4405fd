"""Attacks on the image as a share user on the LAN and an admin's typo would make them: a
share user must never reach nasbox's parity databases, and no configuration value may add a
share, an option or a log line."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.container.helpers import CAPS, IMAGE, USERS, Nasbox, client_netns, docker, nasbox_container, workspace
from tests.support.access_matrix import SHARE, WRITER, matrix_env
from tests.support.smbclient import Server, output, smbclient

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
            (index,) = [p for p in (ws.docs / ".pardatabase").rglob("*.par2") if ".vol" not in p.name]
            index_path = str(index.relative_to(ws.docs))  # the parity set of report.txt
            forged = tmp_path / "forged.par2"
            forged.write_bytes(b"PAR2\0PKT forged")
            attempts = {
                "rename .pardatabase old-db": lambda: (ws.docs / ".pardatabase").is_dir(),
                "get .pardatabase/.nasbox-scrub/catalog.sqlite catalog": lambda: not (tmp_path / "catalog").exists(),
                "ls .pardatabase/*": lambda: True,
                f"put forged.par2 {index_path}": lambda: index.read_bytes() != forged.read_bytes(),
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


def loot_config(share: str) -> Callable[[Nasbox, Path], str | None]:
    """An attack: what the share gave away of /config, if anything."""
    def attack(box: Nasbox, tmp_path: Path) -> str | None:
        answer = output(smbclient(box.server(), share, USERS["writer"], WRITER[1], f"lcd {tmp_path}; get nasbox.yaml"))
        return answer if (tmp_path / "nasbox.yaml").exists() else None
    return attack


def write_to_read_only_share(box: Nasbox, tmp_path: Path) -> str | None:
    (tmp_path / "note.txt").write_text("written where alice may only read\n")
    answer = output(smbclient(box.server(), "ro", USERS["writer"], WRITER[1], f"lcd {tmp_path}; put note.txt"))
    return answer if box.exec("test", "-e", "/data/ro/note.txt").returncode == 0 else None


def rename_database(box: Nasbox, tmp_path: Path) -> str | None:
    box.exec("scrub", "--now")
    answer = output(smbclient(box.server(), SHARE, USERS["writer"], WRITER[1], "rename 100%db stolen"))
    return answer if box.exec("test", "-d", "/data/docs/stolen").returncode == 0 else None


ALICE = ["alice"]
SAMBA_WOULD_REWRITE = {
    # Samba strips the quotes around a value: the share served /config.
    "quoted path": ({"shares": {"loot": {"access": "write", "paths": ['/config"'], "users": ALICE}}}, {},
                    loot_config("loot"), "nasbox.yaml: shares.loot.paths[0]:"),
    # %S is the share's name.
    "macro in path": ({"shares": {"config": {"access": "write", "paths": ["/%S"], "users": ALICE}}}, {},
                      loot_config("config"), "nasbox.yaml: shares.config.paths[0]:"),
    # [global ] is [global]: the share's write list became the default of every share.
    "share named 'global '": ({"shares": {"global ": {"access": "write", "paths": ["/data/other"], "users": ALICE},
                                          "ro": {"access": "read", "paths": ["/data/ro"], "users": ALICE}}}, {},
                              write_to_read_only_share, "nasbox.yaml: shares: 'global ':"),
    # veto files expands %-macros too: `/100%db/` hid nothing, and alice renamed the database.
    "macro in a database name": ({}, {"SCRUB_DOCS": "/data/docs 100%db 5% weekly"},
                                 rename_database, "env SCRUB_DOCS: database:"),
}


@pytest.mark.parametrize("case", SAMBA_WOULD_REWRITE)
def test_value_samba_reads_otherwise_is_refused(tmp_path: Path, case: str) -> None:
    """Samba expands %-macros and strips spaces and quotes as it reads smb.conf: a value it
    reads otherwise than nasbox checked served /config, a read-only share or the database."""
    yaml_data, env, attack, field = SAMBA_WOULD_REWRITE[case]
    with workspace() as ws:
        (ws.config / "nasbox.yaml").write_text(yaml.safe_dump(yaml_data))
        with nasbox_container(ws, {**MATRIX_ENV, **env}, "attack-literal", ready=False) as box:
            exit_code = wait_for_exit_or_service(box)
            if exit_code is None:  # it started: try what the attacker did
                took = attack(box, tmp_path)
                assert took is None, f"{case}: the attack worked: {took}"
            log = box.logs()
    assert exit_code == 78, f"{case}: {log}"
    assert field in log, log


def test_database_reached_through_a_second_mount_is_hidden(tmp_path: Path) -> None:
    """A share can reach a scrub DATABASE through another mount of the same host folder (two
    volumes of one directory): Samba must hide it there too."""
    with workspace() as ws:
        ws.root.chmod(0o755)  # alice passes it to reach /whole/docs
        (ws.docs / "report.txt").write_text("quarterly numbers\n")
        (ws.config / "nasbox.yaml").write_text(yaml.safe_dump(
            {"shares": {"whole": {"access": "write", "paths": ["/whole/docs"], "users": ["alice"]}}}))
        env = {**MATRIX_ENV, "SCRUB_DOCS": "/data/docs .pardatabase 5% weekly"}
        with nasbox_container(ws, env, "attack-bind", extra_mounts={ws.root: "/whole"}) as box:
            assert box.exec("scrub", "--now").returncode == 0
            for command in ("ls", "rename .pardatabase old-db", "ls .pardatabase/*"):
                answer = output(smbclient(box.server(), "whole", USERS["writer"], WRITER[1], command))
                assert ".pardatabase  " not in answer, f"{command}: {answer}"
            assert (ws.docs / ".pardatabase" / ".nasbox-scrub").is_dir()
            assert not (ws.docs / "old-db").exists()


def test_a_user_name_cannot_choose_whom_the_login_ban_bans() -> None:
    """smbd's human audit line writes the client's user name beside the status and the address:
    a name holding `remote host [ipv4:10.9.8.7:1]` had the ban hit 10.9.8.7 instead of the
    attacker, who could then guess passwords for ever. The attacker here is a client of its
    own on the bridge (not behind the published port's proxy, whose gateway is never banned)."""
    forged = "a] status [NT_STATUS_WRONG_PASSWORD] workstation [x] remote host [ipv4:10.9.8.7:1] b"
    env = {"USER_ALICE": f"alice:{WRITER[1]}", "SHARE_DOCS": "write docs /data/docs alice"}
    with workspace() as ws, nasbox_container(ws, env, "attack-ban", caps=[*CAPS, "NET_ADMIN"]) as box, \
            client_netns() as netns:
        attacker = Server(box.address(), 445, netns=netns)
        for _ in range(5):
            assert smbclient(attacker, "docs", forged, "wrong", "ls").returncode != 0
        rules = box.exec("iptables", "-S", "INPUT").stdout
        assert "10.9.8.7" not in rules, rules
        refused = smbclient(attacker, "docs", "alice", WRITER[1], "ls")
        assert refused.returncode != 0, output(refused)  # the attacker's own address is banned


def test_a_share_name_cannot_forge_a_log_record() -> None:
    """smbd logs the share name a client asks for; one holding a newline put a line of the
    client's choosing into `docker logs`, in column 0 like nasbox's own records."""
    forged = "x\n2026-01-01T00:00:00+0000 nasbox ERROR forged"
    with workspace() as ws, nasbox_container(ws, MATRIX_ENV, "attack-smbd-log") as box:
        smbclient(box.server(), forged, USERS["writer"], WRITER[1], "ls")
        time.sleep(1)
        log = box.logs()
    assert "forged" in log.lower(), log  # smbd did log it,
    assert not [line for line in log.splitlines() if line.lower().startswith("2026-01-01")], log  # on its own line


def test_state_left_readable_by_an_older_version_is_made_private() -> None:
    """An older version wrote state and logs with mode 0644 in 0755 directories; they stayed so
    after an upgrade. Links there are not followed."""
    with workspace() as ws:
        outside = ws.root / "not-nasbox.txt"
        outside.write_text("someone else's\n")
        outside.chmod(0o644)
        for directory, files in {"state": ["history.sqlite", "sync-holds.json"], "state/scrub": ["docs.json"],
                                 "logs": ["sync-docs.log.1"]}.items():
            (ws.config / directory).mkdir(mode=0o755)
            (ws.config / directory).chmod(0o755)
            for name in files:
                (ws.config / directory / name).write_text("{}" if name.endswith(".json") else "")
                (ws.config / directory / name).chmod(0o644)
        (ws.config / "logs" / "link").symlink_to(outside)
        with nasbox_container(ws, MATRIX_ENV, "attack-legacy-state"):
            readable = {str(p.relative_to(ws.config)): oct(p.stat().st_mode & 0o777)
                        for p in [ws.config / "state", ws.config / "logs", *ws.config.rglob("*")]
                        if not p.is_symlink() and p.stat().st_mode & 0o077}
        assert readable == {}, readable
        assert outside.stat().st_mode & 0o777 == 0o644
