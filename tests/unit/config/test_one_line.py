"""No configuration value can add a line to a generated file or a log: each is refused by
`config check` naming its field, and the renderers refuse it again if validation let it
through."""
from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import pytest

from nasbox import mounts, supervisor
from nasbox.config.model import Config, Mount, Server, Share
from nasbox.samba import smbconf
from nasbox.text import OneLineFormatter, escaped

SHARE = {"access": "write", "paths": ["/data/docs"], "users": ["alice:pw"]}
FIELD_REFUSED = "expected text without control characters (newline, tab, ...) and in UTF-8"
NAME_REFUSED = "expected a name without control characters (newline, tab, ...) and in UTF-8"


@pytest.mark.parametrize("yaml_data, field", [
    ({"server": {"hosts_allow": ["127.0.0.1\n[evil]\npath = /\nforce user = root"]}}, "server.hosts_allow[0]"),
    ({"server": {"hosts_allow": ["127.0.0.1 0.0.0.0/0"]}}, "server.hosts_allow[0]"),
    ({"shares": {"docs\n[evil]": SHARE}}, "shares"),
    ({"shares": {"docs": {**SHARE, "paths": ["/data/docs\nforce user = root"]}}}, "shares.docs.paths[0]"),
    ({"shares": {"docs": {**SHARE, "comment": "Docs\n    admin users = alice"}}}, "shares.docs.comment"),
    ({"shares": {"docs": {**SHARE, "comment": "Docs\r[etc]\rpath = /etc"}}}, "shares.docs.comment"),
    ({"shares": {"docs": {**SHARE, "comment": "Docs\u2028x"}}}, "shares.docs.comment"),
    ({"shares": {"docs": {**SHARE, "comment": "joins the next line \\"}}}, "shares.docs.comment"),
    ({"shares": {"docs": {**SHARE, "paths": ["/data/docs\\"]}}}, "shares.docs.paths[0]"),
    ({"users": {"alice": {"password": "same\nsame"}}}, "users.alice.password"),
    ({"shares": {"docs": {**SHARE, "users": ["alice:p\nw"]}}}, "shares.docs.users[0]"),
    ({"sync": {"../../etc/x": {"source": "/a", "destination": "/b", "schedule": "daily"}}}, "sync"),
    ({"sync": {"job\n2026-01-01 nasbox ERROR forged": {"source": "/a", "destination": "/b", "schedule": "daily"}}},
     "sync"),
    ({"mounts": {"m": {"mountpoint": "/m", "host": "h", "share": "s", "username": "u\ndomain=evil",
                       "password": "p"}}}, "mounts.m.username"),
    ({"mounts": {"m": {"mountpoint": "/m", "host": "h", "share": "s", "username": "u", "password": "p",
                       "options": {"vers": "3.0,uid=0"}}}}, "mounts.m.options.vers"),
    ({"smtp": {"host": "mail", "from": "nas@example.com\nBcc: all@example.com"}}, "smtp.from"),
])
def test_value_that_would_break_a_line_is_refused(problems, yaml_data, field):
    found = problems(yaml_data=yaml_data)
    assert any(p.startswith(f"nasbox.yaml: {field}: ") for p in found), found
    assert "\n" not in "".join(found)  # the error itself stays on its line
    assert not any(secret in "".join(found) for secret in ("same", "p\\nw"))  # passwords never echoed


# A trailing newline passes a pattern ending in `$` (Python's `$` matches before it): the
# one-line rule catches what the schema's patterns let through.
@pytest.mark.parametrize("yaml_data, expected", [
    ({"users": {"alice\n": {"password": "pw"}}}, "nasbox.yaml: users.alice\\n: " + NAME_REFUSED),
    ({"shares": {"docs\n": SHARE}}, "nasbox.yaml: shares.docs\\n: " + NAME_REFUSED),
    ({"sync": {"job\n": {"source": "/a", "destination": "/b", "schedule": "daily"}}},
     "nasbox.yaml: sync.job\\n: " + NAME_REFUSED),
    ({"server": {"hosts_allow": ["127.0.0.1\n"]}}, "nasbox.yaml: server.hosts_allow[0]: " + FIELD_REFUSED),
    ({"server": {"name": "nas\n"}}, "nasbox.yaml: server.name: " + FIELD_REFUSED),
    ({"shares": {"docs": {**SHARE, "users": ["alice\n"]}}}, "nasbox.yaml: shares.docs.users[0]: " + FIELD_REFUSED),
    ({"smtp": {"host": "mail", "from": "nas@example.com\n"}}, "nasbox.yaml: smtp.from: " + FIELD_REFUSED),
    ({"users": {"alice": {"password": "pw\n"}}}, "nasbox.yaml: users.alice.password: " + FIELD_REFUSED),
])
def test_trailing_newline_is_refused(problems, yaml_data, expected):
    assert expected in problems(yaml_data=yaml_data)


def test_env_values_are_checked_alike(problems):
    assert problems({"USER_A": "alice:same\tsame"}) == ["env USER_A: password: " + FIELD_REFUSED]
    assert problems({"SHARE_A": "write 'docs' '/data/docs\n[evil]' alice:pw"}) == [
        "env SHARE_A: paths[0]: " + FIELD_REFUSED]


def test_undecodable_environment_bytes_are_refused(problems):
    # os.environ hands bytes that are not UTF-8 over as lone surrogates.
    assert problems({"SHARE_A": "write docs /data/docs alice:pw\udcff"}) == [
        "env SHARE_A: users[0]: " + FIELD_REFUSED]


def test_password_file_with_two_lines_is_refused(problems, tmp_path: Path):
    secret = tmp_path / "user"
    secret.write_text("alice:same\nsame\n")  # only the final newline is dropped
    assert problems({"USER_A_FILE": str(secret)}) == ["env USER_A_FILE: password: " + FIELD_REFUSED]


# ---- the renderers' own fence ---------------------------------------------------------

def model_with(**share_fields: str) -> Config:
    share = Share(name="docs", path="/data/docs", write_users=("alice",))
    return Config(shares={"docs": dataclasses.replace(share, **share_fields)})


@pytest.mark.parametrize("fields", [
    {"comment": "x\n[evil]\npath = /"},
    {"path": "/data\n    force user = root"},
    {"comment": "x\\"},
    {"name": "docs]\n[evil"},
])
def test_smb_conf_refuses_what_validation_would_have_refused(fields):
    with pytest.raises(smbconf.UnsafeValue):
        smbconf.render(model_with(**fields))


def test_smb_conf_refuses_an_unchecked_hosts_allow_entry():
    with pytest.raises(smbconf.UnsafeValue):
        smbconf.render(Config(server=Server(hosts_allow=("127.0.0.1\n[evil]",))))


def test_supervisor_config_keeps_percent_signs_literal_and_refuses_newlines():
    program = supervisor.Program("x", ["/bin/echo", "%(ENV_HOME)s"])
    assert "command=/bin/echo '%%(ENV_HOME)s'" in supervisor.render([program], Path("/run"), "info")
    with pytest.raises(smbconf.UnsafeValue):
        supervisor.render([supervisor.Program("x", ["/bin/echo", "a\n[program:evil]"])], Path("/run"), "info")


def test_mount_options_and_credentials_cannot_be_extended():
    mount = Mount("m", "/m", "h", "s", "/", "u", "p", options=(("vers", "3.0,uid=0"),))
    with pytest.raises(ValueError):
        mounts.options(mount, Config(), Path("/dev/shm/x"))
    with pytest.raises(ValueError):
        mounts.write_credentials(dataclasses.replace(mount, password="p\ndomain=evil"), Path("/dev/shm/nbx-test"))


def test_log_records_cannot_forge_another_record():
    record = logging.LogRecord("nasbox", logging.INFO, __file__, 1, "%s %s: started",
                               ("sync", "job\n2026-01-01T00:00:00+0000 nasbox ERROR forged"), None)
    line = OneLineFormatter("%(levelname)s %(message)s").format(record)
    assert line == "INFO sync job\\n2026-01-01T00:00:00+0000 nasbox ERROR forged: started"
    try:
        raise OSError("no such file: 'a\nERROR forged'")
    except OSError:
        import sys
        failed = logging.LogRecord("nasbox", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = OneLineFormatter("%(levelname)s %(message)s").format(failed).splitlines()
    assert lines[0] == "ERROR failed"
    assert all(line.startswith("    ") for line in lines[1:]), lines


def test_escaped_shows_every_control_character():
    assert escaped("a\nb\tc\x1bd\u2028") == "a\\nb\\tc\\x1bd\\u2028"
    assert not re.search(r"[\x00-\x1f]", escaped("".join(map(chr, range(32)))))


def test_no_share_serves_nasbox_state_or_a_parity_database(problems, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("NASBOX_HOME", str(tmp_path / "config"))
    assert problems({"SHARE_A": f"write a {tmp_path} alice:pw"}) == [
        f"env SHARE_A: paths[0]: {tmp_path} holds nasbox's own state ({tmp_path / 'config'}); "
        "expected a directory that does not"]
    assert problems({"SHARE_A": "write a /data/docs/.db/x alice:pw", "SCRUB_A": "/data/docs .db 5% weekly"}) == [
        "env SCRUB_A: database: share a serves /data/docs/.db/x, inside this database; "
        "expected a database no share reaches"]


def test_no_sync_writes_into_a_parity_database(problems):
    assert problems({"SYNC_A": "/data/src /backup/.db/copy daily", "SCRUB_B": "/backup .db 5% weekly"}) == [
        "env SYNC_A: destination: /backup/.db/copy lies inside the database of scrub b; "
        "expected a destination outside every parity database"]


# ---- values Samba does not read as written ----------------------------------------------

LITERAL_REFUSED = ("expected text Samba reads as written: no '%', no leading or trailing space or '\"', "
                   "not ending in '\\'")


@pytest.mark.parametrize("yaml_data, expected", [
    # Samba strips the quotes around a value: this share served /config.
    ({"shares": {"docs": {**SHARE, "paths": ['/config"']}}}, "shares.docs.paths[0]: " + LITERAL_REFUSED),
    # %S is the share's name: a share `config` at /%S served /config.
    ({"shares": {"config": {**SHARE, "paths": ["/%S"]}}}, "shares.config.paths[0]: " + LITERAL_REFUSED),
    # Samba strips the spaces: nasbox checked and hid for "/data/docs ", Samba served /data/docs.
    ({"shares": {"docs": {**SHARE, "paths": ["/data/docs "]}}}, "shares.docs.paths[0]: " + LITERAL_REFUSED),
    ({"shares": {"docs": {**SHARE, "comment": "%$(SMTP_PASSWORD)"}}}, "shares.docs.comment: " + LITERAL_REFUSED),
    ({"shares": {"docs": {**SHARE, "comment": '"quoted"'}}}, "shares.docs.comment: " + LITERAL_REFUSED),
    # [global ] is [global] to Samba: the share's write list became every share's.
    ({"shares": {"global ": SHARE}}, "shares: 'global ': expected a share name of letters, digits, spaces, '_', "
     "'.' and '-' (at most 80), not ending in a space"),
    ({"shares": {"docs": {**SHARE, "name": "homes "}}}, "shares.docs.name: expected a share name of letters, "
     "digits, spaces, '_', '.' and '-' (at most 80), not ending in a space, got 'homes '"),
    ({"server": {"hosts_allow": ["fe80::1%eth0"]}}, "server.hosts_allow[0]: expected an address, network or host "
     "name (letters, digits and . : / _ * [ ] -), got 'fe80::1%eth0'"),
])
def test_value_samba_would_rewrite_is_refused(problems, yaml_data, expected):
    found = problems(yaml_data=yaml_data)
    assert any(p.startswith("nasbox.yaml: " + expected) for p in found), found


def test_a_database_name_samba_cannot_hide_is_refused(problems):
    # veto files expands %-macros too: `/100%db/` (%d, smbd's pid) hid nothing.
    assert problems({"SHARE_A": "write a /data/docs alice:pw", "SCRUB_A": "/data/docs 100%db 5% weekly"}) == [
        "env SCRUB_A: database: share a holds this database, and Samba cannot hide its name: it holds '%' "
        "(Samba expands %-macros); expected another name"]
    # and reads * and ? as wildcards: a database `*` hid every file of the share.
    assert problems({"SHARE_A": "write a /data/docs alice:pw", "SCRUB_A": "/data/docs '.par*' 5% weekly"}) == [
        "env SCRUB_A: database: share a holds this database, and Samba cannot hide its name: it holds a "
        "wildcard ('*' or '?'); expected another name"]


@pytest.mark.parametrize("fields", [
    {"path": '/config"'}, {"path": "/%S"}, {"path": "/data/docs "}, {"comment": '"x"'}, {"name": "global "},
])
def test_smb_conf_refuses_what_samba_would_rewrite(fields):
    with pytest.raises(smbconf.UnsafeValue):
        smbconf.render(model_with(**fields))


@pytest.mark.parametrize("option", ["pass", "password", "user", "cred"])
def test_credentials_are_never_mount_options(problems, option):
    # `pass` put the password in mount's command line and `config show`; `user=u%secret` too.
    mount = {"mountpoint": "/m", "host": "h", "share": "s", "username": "u", "password": "p",
             "options": {option: "u%hunter2"}}
    assert problems(yaml_data={"mounts": {"m": mount}}) == [
        f"nasbox.yaml: mounts.m.options.{option}: credentials are not mount options (the command line and config "
        "show would reveal them); expected username and password or password_file"]
    with pytest.raises(ValueError):
        mounts.options(Mount("m", "/m", "h", "s", "/", "u", "p", options=((option, "x"),)), Config(), Path("/x"))
