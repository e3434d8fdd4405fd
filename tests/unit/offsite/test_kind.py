"""Offsite jobs in the configuration: every key from YAML and from the environment, the
rules with their messages, secrets kept out of errors and `config show`, the schedule."""
from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from nasbox.config.show import masked
from nasbox.offsite.kind import KIND, Check
from nasbox.versions.retention import Keep

ITEM = {"source": "/data/docs", "repository": "/backup/restic", "schedule": "daily", "password": "pw-1"}


def test_env_item_and_its_options(load, tmp_path: Path):
    secret = tmp_path / "aws-secret"
    secret.write_text("s3-SECRET-value\n")
    known_hosts = tmp_path / "known_hosts"
    config = load(env={
        "OFFSITE_DOCS": "/data/docs s3:https://s3.example.com/bucket '0 3 * * *'",
        "OFFSITE_DOCS_PASSWORD": "repo-pw",
        "OFFSITE_DOCS_ENV": f"AWS_ACCESS_KEY_ID=AKIA1 AWS_SECRET_ACCESS_KEY_FILE={secret}",
        "OFFSITE_DOCS_KEEP": "daily=7,weekly=4",
        "OFFSITE_DOCS_CHECK": "0 4 * * 0 5%",
        "OFFSITE_DOCS_EXCLUDE": "*.tmp,cache",
        "OFFSITE_DOCS_BWLIMIT": "1.5M",
        "OFFSITE_DOCS_MAX_DELETE": "100",
        "OFFSITE_DOCS_SSH_KNOWN_HOSTS": str(known_hosts),
        "OFFSITE_DOCS_TIMEOUT": "2h",
    })
    job = config.jobs["offsite"]["docs"]
    assert (job.source, job.repository, job.schedule, job.password) == (
        "/data/docs", "s3:https://s3.example.com/bucket", "0 3 * * *", "repo-pw")
    assert dict(job.env) == {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s3-SECRET-value"}
    assert job.keep == Keep(daily=7, weekly=4) and job.check == Check("0 4 * * 0", 5)
    assert job.exclude == ("*.tmp", "cache") and job.upload_kib == 1536 and job.max_delete == 100
    assert job.ssh_known_hosts == str(known_hosts) and job.timeout_s == 7200
    assert job.local_repository is None


def test_password_file_from_env(load, tmp_path: Path):
    (tmp_path / "pw").write_text("from-a-file\n")
    config = load(env={"OFFSITE_DOCS": "/data/docs /backup/restic daily",
                       "OFFSITE_DOCS_PASSWORD_FILE": str(tmp_path / "pw")})
    job = config.jobs["offsite"]["docs"]
    assert job.password == "from-a-file" and job.local_repository == "/backup/restic"


def test_yaml_item_with_env_files(load, tmp_path: Path):
    (tmp_path / "key").write_text("k3y")
    config = load(yaml_data={"offsite": {"docs": {
        **ITEM, "env": {"RESTIC_REST_USERNAME": "nas", "RESTIC_REST_PASSWORD_FILE": str(tmp_path / "key")},
        "keep": {"last": 3}, "check": {"schedule": "weekly"}, "max_delete": "10%", "bwlimit": "512"}}})
    job = config.jobs["offsite"]["docs"]
    assert dict(job.env) == {"RESTIC_REST_USERNAME": "nas", "RESTIC_REST_PASSWORD": "k3y"}
    assert job.keep == Keep(last=3) and job.check == Check("weekly", 0)
    assert job.max_delete == "10%" and job.upload_kib == 512 and job.timeout_s == 86400


def test_rules_and_their_messages(problems, tmp_path: Path):
    found = problems(yaml_data={"offsite": {
        "nopw": {k: v for k, v in ITEM.items() if k != "password"},
        "relative": {**ITEM, "repository": "backup/restic"},
        "inside": {**ITEM, "repository": "/data/docs/.restic"},
        "sftp": {**ITEM, "repository": "sftp:nas@backup.example.com:/srv/restic"},
        "badhost": {**ITEM, "repository": "sftp:-oProxyCommand=x:/srv", "ssh_known_hosts": "/k"},
        "reserved": {**ITEM, "env": {"RESTIC_PASSWORD": "x", "AWS_A": "1", "AWS_A_FILE": "/nope"}},
        "unread": {**ITEM, "env": {"AWS_SECRET_ACCESS_KEY_FILE": str(tmp_path / "missing")}},
        "nokeep": {**ITEM, "keep": {"daily": 0}},
        "badcheck": {**ITEM, "check": {"schedule": "weekly", "read_data": 101}},
        "badpath": {**ITEM, "ssh_key": "/keys/my key"},
    }})
    assert found == [
        "nasbox.yaml: offsite.badcheck.check.read_data: expected a percentage from 0 to 100, got 101",
        "nasbox.yaml: offsite.badpath.ssh_key: expected an absolute path without spaces, quotes or backslashes, "
        "got '/keys/my key'",
        "nasbox.yaml: offsite.badhost.repository: expected a host name or address after sftp: (letters, digits, "
        "'.', '-', not starting '-')",
        "nasbox.yaml: offsite.inside.repository: expected a repository outside the source (and the source outside it)",
        "nasbox.yaml: offsite.nokeep.keep: expected a count above 0 for at least one of last, hourly, daily, weekly, "
        "monthly, yearly",
        "nasbox.yaml: offsite.nopw: no password: expected password or password_file (env OFFSITE_NOPW_PASSWORD)",
        "nasbox.yaml: offsite.relative.repository: expected an absolute path or a restic back end (local:, sftp:, "
        "rest:, s3:, swift:, b2:, azure:, gs:, rclone:)",
        "nasbox.yaml: offsite.reserved.env.AWS_A_FILE: both AWS_A and AWS_A_FILE are given; expected one of them",
        "nasbox.yaml: offsite.reserved.env.RESTIC_PASSWORD: set by nasbox for restic; expected a variable of the "
        "back end",
        "nasbox.yaml: offsite.sftp: an sftp: repository needs ssh_known_hosts: the server's host key is pinned, "
        "not trusted on first use",
        f"nasbox.yaml: offsite.unread.env.AWS_SECRET_ACCESS_KEY_FILE: cannot read {tmp_path / 'missing'}: "
        "No such file or directory",
    ]


def test_env_option_problems_never_echo_the_value(problems):
    found = problems(env={"OFFSITE_DOCS": "/data/docs /backup/restic daily", "OFFSITE_DOCS_PASSWORD": "pw",
                          "OFFSITE_DOCS_ENV": "AWS_SECRET_ACCESS_KEY s3cr3t-value"})
    assert found == ["env OFFSITE_DOCS_ENV: expected NAME=VALUE words, NAME of letters, digits and '_'"]
    found = problems(yaml_data={"offsite": {"docs": {**ITEM, "env": {"AWS_SECRET_ACCESS_KEY": 12345},
                                                     "repository": 67890}}})
    assert not any("12345" in line or "67890" in line for line in found)


def test_config_show_masks_the_password_the_credentials_and_a_url_password(load):
    config = load(yaml_data={"offsite": {"docs": {
        **ITEM, "password": "repo-s3cr3t", "repository": "rest:https://nas:url-s3cr3t@backup.example.com:8000/docs",
        "env": {"AWS_SECRET_ACCESS_KEY": "env-s3cr3t"}}}})
    shown = masked(config)["jobs"]["offsite"]["docs"]
    assert "s3cr3t" not in repr(shown) and "s3cr3t" not in repr(config)
    assert shown["repository"] == "rest:https://nas:***@backup.example.com:8000/docs"
    assert shown["password"] == "***" and shown["env"] == {"AWS_SECRET_ACCESS_KEY": "***"}


def test_the_check_is_an_entry_of_its_own(load):
    config = load(yaml_data={"offsite": {
        "docs": {**ITEM, "check": {"schedule": "weekly", "read_data": 10}}, "plain": ITEM}})
    entries = KIND.schedule(config.jobs["offsite"]["docs"], ZoneInfo("UTC"))
    assert [(e.cron, e.purpose, e.extra_args) for e in entries] == [
        ("30 2 * * *", "run", ()), ("0 4 * * 0", "check", ("--check",))]
    assert len(KIND.schedule(config.jobs["offsite"]["plain"], ZoneInfo("UTC"))) == 1


def test_paths_lock_the_source_and_a_local_repository(load):
    config = load(yaml_data={"offsite": {"docs": ITEM, "away": {**ITEM, "repository": "rest:https://h/x"}}})
    assert KIND.paths(config.jobs["offsite"]["docs"]) == ["/data/docs", "/backup/restic"]
    assert KIND.paths(config.jobs["offsite"]["away"]) == ["/data/docs"]


def test_env_words_from_a_file_of_lines(load, tmp_path: Path):
    (tmp_path / "s3.env").write_text("AWS_ACCESS_KEY_ID=AKIA1\nAWS_SECRET_ACCESS_KEY='with space'\n")
    config = load(env={"OFFSITE_DOCS": "/data/docs s3:https://h/b daily", "OFFSITE_DOCS_PASSWORD": "pw",
                       "OFFSITE_DOCS_ENV_FILE": str(tmp_path / "s3.env")})
    assert dict(config.jobs["offsite"]["docs"].env) == {"AWS_ACCESS_KEY_ID": "AKIA1",
                                                         "AWS_SECRET_ACCESS_KEY": "with space"}
