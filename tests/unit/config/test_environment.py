"""Environment variables: spec strings, globals, _FILE secrets."""
from __future__ import annotations

from pathlib import Path

from nasbox.config.model import Mount, NotifyTarget
from nasbox.scrub.kind import ScrubJob
from nasbox.sync.kind import SyncJob


def test_share_spec_string(load):
    config = load({"SHARE_DOCS": "write Documents /data/docs,/data/more alice:pw1,bob", "USER_BOB": "bob:pw2"})
    share = config.shares["Documents"]
    assert share.path == "/data/docs"
    assert share.extra_paths == ("/data/more",)
    assert share.write_users == ("alice", "bob")
    assert config.users["alice"].password == "pw1"
    assert config.users["bob"].password == "pw2"


def test_read_and_write_items_of_one_name_are_one_share(load):
    config = load({
        "SHARE_DOCS_W": "write docs /data/docs alice:a",
        "SHARE_DOCS_R": "read docs /data/docs bob:b,alice",
    })
    assert list(config.shares) == ["docs"]
    assert config.shares["docs"].write_users == ("alice",)
    assert config.shares["docs"].read_users == ("bob",)  # alice may write, so she is a writer


def test_quotes_work_as_in_a_shell(load):
    config = load({
        "SYNC_DOCS": "/data/docs '/backup/my docs' '0 2 * * *'",
        "SCRUB_DOCS": "/backup/docs .pardatabase 5% \"30 3 * * 0\"",
    })
    assert config.sync["docs"] == SyncJob(name="docs", source="/data/docs", destination="/backup/my docs",
                                          schedule="0 2 * * *")
    assert config.scrub["docs"] == ScrubJob(name="docs", directory="/backup/docs",
                                            database="/backup/docs/.pardatabase", redundancy=5,
                                            schedule="30 3 * * 0")


def test_mount_credentials_inline_or_in_password_variable(load, tmp_path: Path):
    secret = tmp_path / "nas"
    secret.write_text("from-file\n")
    config = load({
        "MOUNT_A": "/mnt/a 10.0.0.1 backup:inline docs /",
        "MOUNT_B": "/mnt/b nas.local backup docs /sub",
        "MOUNT_B_PASSWORD": "from-var",
        "MOUNT_C": "/mnt/c nas.local backup docs /",
        "MOUNT_C_PASSWORD_FILE": str(secret),
    })
    assert config.mounts["a"].password == "inline"
    assert config.mounts["b"] == Mount(name="b", mountpoint="/mnt/b", host="nas.local", share="docs",
                                       subdir="/sub", username="backup", password="from-var")
    assert config.mounts["c"].password == "from-file"  # trailing newline dropped


def test_notify_with_optional_status_filter(load):
    config = load({"NOTIFY_OPS": "webhook https://example.com/hook warning,error",
                   "NOTIFY_ALL": "healthchecks https://hc.example.com/ping/abc"})
    assert config.notify["ops"].on == ("warning", "error")
    assert config.notify["all"] == NotifyTarget(name="all", type="healthchecks",
                                                target="https://hc.example.com/ping/abc")


def test_globals(load):
    config = load({"NAS_NAME": "HomeNAS", "WORKGROUP": "HOME", "TZ": "Europe/Berlin", "PUID": "1001",
                   "PGID": "100", "LOG_LEVEL": "debug", "SMTP_HOST": "mail.example.com", "SMTP_USER": "nas",
                   "SMTP_PASSWORD": "pw", "SMTP_FROM": "nas@example.com", "SMTP_SECURITY": "tls"})
    assert (config.server.name, config.server.workgroup, config.server.timezone) == ("HomeNAS", "HOME", "Europe/Berlin")
    assert (config.server.puid, config.server.pgid, config.server.log_level) == (1001, 100, "debug")
    assert config.smtp.port == 465  # the default for tls
    assert (config.smtp.username, config.smtp.password, config.smtp.sender) == ("nas", "pw", "nas@example.com")


def test_file_variant_reads_the_value(load, tmp_path: Path):
    (tmp_path / "share").write_text("write docs /data/docs alice:from-secret\n")
    (tmp_path / "user").write_text("bob:p w:with colon\n")
    config = load({"SHARE_DOCS_FILE": str(tmp_path / "share"), "USER_BOB_FILE": str(tmp_path / "user"),
                   "SHARE_X": "read x /x bob"})
    assert config.users["alice"].password == "from-secret"
    assert config.users["bob"].password == "p w:with colon"  # USER_ values are taken literally


def test_file_variant_problems(problems, tmp_path: Path):
    found = problems({"SHARE_DOCS": "write docs /d a:b", "SHARE_DOCS_FILE": "/nonexistent",
                      "USER_X_FILE": str(tmp_path / "missing")})
    assert "env SHARE_DOCS_FILE: both SHARE_DOCS and SHARE_DOCS_FILE are set; expected one of them" in found
    assert f"env USER_X_FILE: cannot read {tmp_path / 'missing'}: No such file or directory" in found


def test_wrong_word_counts(problems):
    found = problems({"SHARE_A": "write a /a", "SYNC_B": "/a /b 0 2 * * *", "SCRUB_C": "/c",
                      "MOUNT_D": "/mnt/d host user:pw share", "NOTIFY_E": "webhook"})
    assert found == [
        "env MOUNT_D: expected 5 words MOUNTPOINT HOST CREDENTIALS SHARE SUBDIR, got 4",
        "env NOTIFY_E: expected 2 words TYPE TARGET [ON], got 1",
        "env SCRUB_C: expected 4 words DIRECTORY DATABASE REDUNDANCY SCHEDULE, got 1 (quote a cron expression: '0 2 * * *')",
        "env SHARE_A: expected 4 words ACCESS NAME PATHS USERS, got 3",
        "env SYNC_B: expected 3 words SOURCE DESTINATION SCHEDULE, got 7 (quote a cron expression: '0 2 * * *')",
    ]


def test_unbalanced_quotes_do_not_echo_the_value(problems):
    found = problems({"SHARE_A": "write a /a 'alice:sec ret"})
    assert found == ["env SHARE_A: cannot split the value into words (unbalanced quotes?)"]


def test_user_variable_needs_name_and_password(problems):
    assert problems({"USER_A": "justaname"}) == ["env USER_A: expected name:password"]


def test_mount_password_without_mount(problems):
    assert problems({"MOUNT_NAS_PASSWORD": "x"}) == ["env MOUNT_NAS_PASSWORD: there is no MOUNT_NAS for this password"]


def test_other_variables_are_ignored(load):
    config = load({"PATH": "/usr/bin", "HOME": "/root", "SHAREDIR": "x", "SYNCHRONIZE": "yes"})
    assert config.shares == {} and config.sync == {}
