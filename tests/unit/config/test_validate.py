"""Validation: every rule names where the value came from and what was expected, all at once,
never printing a password."""
from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from nasbox.config import ConfigError, load_config
from nasbox.config.checker import schema
from nasbox.config.load import YamlLoader

REPO = Path(__file__).resolve().parents[3]
SHARE = {"access": "write", "paths": ["/data/docs"], "users": ["alice:pw"]}


def test_yaml_items(load):
    config = load(yaml_data={
        "server": {"name": "HomeNAS", "timezone": "Europe/Berlin"},
        "users": {"alice": {"password": "a", "uid": 1500}},
        "shares": {"documents": {"access": "write", "paths": ["/data/docs"], "users": ["alice"],
                                 "comment": "Docs"}},
        "sync": {"docs": {"source": "/data/docs", "destination": "/backup/docs", "schedule": "daily",
                          "max_delete": "10%", "exclude": ["*.tmp"]}},
        "scrub": {"docs": {"directory": "/backup/docs", "database": "/var/par", "redundancy": "10%",
                           "schedule": "weekly", "verify_older_than": "2w"}},
    })
    assert config.users["alice"].uid == 1500
    assert config.shares["documents"].comment == "Docs"
    assert config.sync["docs"].max_delete == "10%"
    assert config.scrub["docs"].database == "/var/par"  # absolute DATABASE stays
    assert config.scrub["docs"].verify_older_than_s == 14 * 86400


def test_env_item_overrides_yaml_item_of_same_kind_and_name(load):
    config = load({"SYNC_DOCS": "/data/new /backup/new hourly", "NAS_NAME": "FromEnv"},
                  {"server": {"name": "FromYaml", "workgroup": "HOME"},
                   "sync": {"docs": {"source": "/a", "destination": "/b", "schedule": "daily",
                                     "exclude": ["x"]},
                            "other": {"source": "/c", "destination": "/d", "schedule": "daily"}}})
    assert config.sync["docs"].source == "/data/new"
    assert config.sync["docs"].exclude == ()  # the whole item is replaced
    assert config.sync["other"].source == "/c"
    assert (config.server.name, config.server.workgroup) == ("FromEnv", "HOME")


@pytest.mark.parametrize("env, expected", [
    ({"SHARE_A": "rw a /a u:p"}, "env SHARE_A: access: expected one of read, write, got 'rw'"),
    ({"SHARE_A": "write a data/a u:p"}, "env SHARE_A: paths[0]: expected an absolute path, got 'data/a'"),
    ({"SHARE_A": "write a /a,x u:p"}, "env SHARE_A: paths[1]: expected an absolute path, got 'x'"),
    ({"SHARE_A": "write homes /a u:p"}, "env SHARE_A: share name 'homes' is reserved by Samba; expected another name"),
    ({"SHARE_A": "write a /a Alice:secret"},
     "env SHARE_A: users[0]: expected 'user' or 'user:password', the user name of lower-case letters, "
     "digits, '_' and '-' (at most 32)"),
    ({"SHARE_A": "write a /a bob"},
     "env SHARE_A: users[0]: user bob has no password: expected USER_<ID>=bob:PASSWORD, users.bob.password "
     "or bob:PASSWORD here"),
    ({"SYNC_A": "/a /b often"},
     "env SYNC_A: schedule: expected hourly, daily, weekly, monthly or a 5-field cron expression, got 'often'"),
    ({"SYNC_A": "/a /b '61 * * * *'"},
     "env SYNC_A: schedule: expected hourly, daily, weekly, monthly or a 5-field cron expression, got '61 * * * *'"),
    ({"SYNC_A": "/a /b '0 0 * * * *'"},
     "env SYNC_A: schedule: expected hourly, daily, weekly, monthly or a 5-field cron expression, got '0 0 * * * *'"),
    ({"SYNC_A": "relative /b daily"}, "env SYNC_A: source: expected an absolute path, got 'relative'"),
    ({"SYNC_A": "/data /data/backup daily"},
     "env SYNC_A: destination: expected a path outside the source (and the source outside it)"),
    ({"SCRUB_A": "/b .par 5 weekly"},
     "env SCRUB_A: redundancy: expected a percentage from 1% to 100%, with its '%', got '5'"),
    ({"SCRUB_A": "/b .par 0% weekly"},
     "env SCRUB_A: redundancy: expected a percentage from 1% to 100%, with its '%', got '0%'"),
    ({"SCRUB_A": "/b .par 101% weekly"},
     "env SCRUB_A: redundancy: expected a percentage from 1% to 100%, with its '%', got '101%'"),
    ({"SCRUB_A": "b .par 5% weekly"}, "env SCRUB_A: directory: expected an absolute path, got 'b'"),
    ({"SCRUB_A": "/b . 5% weekly"},
     "env SCRUB_A: database: expected a directory of its own (not DIRECTORY or above it, no '..')"),
    ({"SCRUB_A": "/b ../par 5% weekly"},
     "env SCRUB_A: database: expected a directory of its own (not DIRECTORY or above it, no '..')"),
    ({"SCRUB_A": "/a /db 5% weekly", "SCRUB_B": "/b /db 5% weekly"},
     "env SCRUB_B: database: already the database of scrub a; expected one database per job"),
    ({"SCRUB_A": "/data/b /data 5% weekly"},
     "env SCRUB_A: database: expected a directory of its own (not DIRECTORY or above it, no '..')"),
    ({"MOUNT_A": "mnt host u:p share /"}, "env MOUNT_A: mountpoint: expected an absolute path, got 'mnt'"),
    ({"MOUNT_A": "/mnt host u share /"},
     "env MOUNT_A: no password: expected password or password_file (env: CREDENTIALS user:password or MOUNT_A_PASSWORD)"),
    ({"MOUNT_A": "/mnt host u:p share sub"}, "env MOUNT_A: subdir: expected a path inside the share starting with '/', got 'sub'"),
    ({"NOTIFY_A": "pager x"}, "env NOTIFY_A: type: expected one of webhook, mailbox, apprise, healthchecks, got 'pager'"),
    ({"NOTIFY_A": "webhook ftp://x"}, "env NOTIFY_A: target: expected an http:// or https:// URL"),
    ({"NOTIFY_A": "apprise not-a-url"}, "env NOTIFY_A: target: expected an Apprise URL such as tgram://TOKEN/CHAT"),
    ({"NOTIFY_A": "webhook https://x sometimes"},
     "env NOTIFY_A: on[0]: expected one of good, info, warning, error, got 'sometimes'"),
    ({"NOTIFY_A": "mailbox admin@example.com"},
     "env NOTIFY_A: a mailbox needs SMTP settings: expected SMTP_HOST or smtp.host"),
    ({"TZ": "Mars/Olympus"}, "env TZ: expected an IANA time zone such as Europe/Berlin, got 'Mars/Olympus'"),
    ({"PUID": "abc"}, "env PUID: expected a UID from 1, got 'abc'"),
    ({"NAS_NAME": "a-name-far-too-long"},
     "env NAS_NAME: expected a server name of letters, digits and '-' (at most 15, NetBIOS), got 'a-name-far-too-long'"),
    ({"LOG_LEVEL": "loud"}, "env LOG_LEVEL: expected one of debug, info, warning, error, got 'loud'"),
    ({"SMTP_HOST": "mail", "SMTP_SECURITY": "ssl"}, "env SMTP_SECURITY: expected one of starttls, tls, none, got 'ssl'"),
    ({"SMTP_HOST": "mail", "SMTP_USER": "nas"},
     "nasbox.yaml: smtp: username given without a password: expected SMTP_PASSWORD or smtp.password"),
    ({"SMTP_PORT": "25"}, "nasbox.yaml: smtp: missing required key 'host'"),
    ({"USER_ROOT": "root:pw"}, "env USER_ROOT: 'root' is an account of the image; expected another user name"),
    ({"SHARE_A": "write a /a nobody:pw"},
     "env SHARE_A: users[0]: 'nobody' is an account of the image; expected another user name"),
])
def test_rule(problems, env, expected):
    assert problems(env) == [expected]


@pytest.mark.parametrize("data, expected", [
    ({"shares": {"documents": {**SHARE, "access": "rw"}}},
     "nasbox.yaml: shares.documents.access: expected one of read, write, got 'rw'"),
    ({"shares": {"documents": {**SHARE, "path": "/x"}}},
     "nasbox.yaml: shares.documents: unknown key 'path'; expected one of: access, comment, name, paths, "
     "recycle, samba_options, time_machine, time_machine_max_size, users"),
    ({"shares": {"documents": {"access": "write", "users": ["a:b"]}}},
     "nasbox.yaml: shares.documents: missing required key 'paths'"),
    ({"shares": {"documents": {**SHARE, "paths": "/data/docs"}}},
     "nasbox.yaml: shares.documents.paths: expected a list of absolute paths, got '/data/docs'"),
    ({"shares": []}, "nasbox.yaml: shares: expected a mapping"),
    ({"sharez": {}}, "nasbox.yaml: unknown key 'sharez'; expected one of: mounts, notify, offsite, scrub, "
                     "server, shares, smtp, sync, users"),
    ({"users": {"Alice": {"password": "x"}}},
     "nasbox.yaml: users: 'Alice': expected a user name of lower-case letters, digits, '_' and '-' (at most 32)"),
    ({"users": {"alice": {}}}, "nasbox.yaml: users.alice: no password: expected password or password_file"),
    ({"users": {"alice": {"password": "x", "password_file": "/x"}}},
     "nasbox.yaml: users.alice: both password and password_file are given; expected one of them"),
    ({"users": {"alice": {"password": "x", "uid": 500}}}, "nasbox.yaml: users.alice.uid: expected a UID from 1000, got 500"),
    ({"users": {"a": {"password": "x", "uid": 2000}, "b": {"password": "y", "uid": 2000}}},
     "nasbox.yaml: users.b.uid: uid 2000 is already used by user a; expected a unique uid"),
    ({"sync": {"d": {"source": "/a", "destination": "/b", "schedule": "daily", "max_delete": "lots"}}},
     "nasbox.yaml: sync.d.max_delete: expected a file count or a percentage such as 50%, got 'lots'"),
    ({"sync": {"d": {"source": "/a", "destination": "/b", "schedule": "daily", "require_marker": "../x"}}},
     "nasbox.yaml: sync.d.require_marker: expected a file name inside the source, without '..'"),
    ({"scrub": {"d": {"directory": "/a", "database": "db", "redundancy": "5%", "schedule": "daily",
                      "verify_percent": 0}}},
     "nasbox.yaml: scrub.d.verify_percent: expected a percentage from 1 to 100, got 0"),
    ({"mounts": {"a": {"mountpoint": "/m", "host": "h", "share": "s", "username": "u", "password": "p"},
                 "b": {"mountpoint": "/m", "host": "h", "share": "t", "username": "u", "password": "p"}}},
     "nasbox.yaml: mounts.b.mountpoint: already used by mount a; expected a mountpoint of its own"),
    ({"shares": {"a": SHARE, "b": {**SHARE, "name": "a", "paths": ["/other"]}}},
     "nasbox.yaml: shares.b.paths: expected the same paths as the share of the same name in nasbox.yaml: shares.a"),
    ({"shares": {"a": SHARE, "b": {**SHARE, "users": ["alice:other"]}}},
     "nasbox.yaml: shares.b.users[0]: user alice has another password in nasbox.yaml: shares.a.users[0]; "
     "expected one password per user"),
])
def test_yaml_rule(problems, data, expected):
    assert problems(yaml_data=data) == [expected]


def test_every_problem_at_once_from_both_sources(problems):
    found = problems({"SHARE_X": "rw x relative alice:hunter2", "TZ": "Nowhere", "SYNC_Y": "/a"},
                     {"scrub": {"d": {"directory": "/d", "database": "db", "redundancy": "5", "schedule": "often"}},
                      "users": {"bob": {"password": "x", "shell": "/bin/sh"}}})
    assert found == [
        "env SYNC_Y: expected 3 words SOURCE DESTINATION SCHEDULE, got 1 (quote a cron expression: '0 2 * * *')",
        "nasbox.yaml: scrub.d.redundancy: expected a percentage from 1% to 100%, with its '%', got '5'",
        "nasbox.yaml: scrub.d.schedule: expected hourly, daily, weekly, monthly or a 5-field cron expression, got 'often'",
        "env TZ: expected an IANA time zone such as Europe/Berlin, got 'Nowhere'",
        "env SHARE_X: access: expected one of read, write, got 'rw'",
        "env SHARE_X: paths[0]: expected an absolute path, got 'relative'",
        "nasbox.yaml: users.bob: unknown key 'shell'; expected one of: password, password_file, uid",
    ]


@pytest.mark.parametrize("env, data", [
    ({"SHARE_A": "write a /a 'alice:pa ss"}, None),
    ({"SHARE_A": "write a /a Alice:hunter2"}, None),
    ({"SHARE_A": "write a /a alice:hunter2,bob:hunter2x"}, {"users": {"bob": {"password": "hunter2y"}}}),
    ({"USER_A": "alice:hunter2", "SHARE_A": "rw a /a alice"}, None),
    ({"SMTP_PASSWORD": "hunter2"}, None),
    ({"MOUNT_A": "mnt h u:hunter2 s /"}, None),
    (None, {"users": {"alice": {"password": 12345}}, "smtp": {"host": "h", "password": ["hunter2"]}}),
    (None, "users: {alice: {password: hunter2}\n"),
])
def test_passwords_never_appear_in_problems(problems, load, tmp_path, env, data):
    if isinstance(data, str):  # broken YAML
        path = tmp_path / "broken.yaml"
        path.write_text(data)
        with pytest.raises(ConfigError) as caught:
            load_config({"NASBOX_CONFIG": str(path)})
        found = caught.value.problems
    else:
        found = problems(env, data)
    assert found
    for word in ("hunter2", "pa ss", "12345"):
        assert all(word not in line for line in found), found


def test_missing_password_file_is_named(problems, tmp_path):
    found = problems(yaml_data={"users": {"alice": {"password_file": str(tmp_path / "none")}}})
    assert found == [f"nasbox.yaml: users.alice.password_file: cannot read {tmp_path / 'none'}: No such file or directory"]


def test_password_file_is_read(load, tmp_path):
    (tmp_path / "alice").write_text("s3cret\n")
    config = load(yaml_data={"users": {"alice": {"password_file": str(tmp_path / "alice")}}})
    assert config.users["alice"].password == "s3cret"


def test_explicit_config_file_must_exist(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config({"NASBOX_CONFIG": str(tmp_path / "missing.yaml")})
    assert caught.value.problems == [f"missing.yaml: cannot read {tmp_path / 'missing.yaml'}: no such file"]


def test_yaml_syntax_error_gives_position(tmp_path):
    path = tmp_path / "nasbox.yaml"
    path.write_text("shares:\n  docs: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_config({"NASBOX_CONFIG": str(path)})
    [problem] = caught.value.problems
    assert problem.startswith("nasbox.yaml: line 3, column 1: invalid YAML")


@pytest.mark.parametrize("password, problem", [
    ("*hunter2", "found undefined alias '...'"),  # YAML reads a leading * as an alias
    ("!hunter2", "could not determine a constructor for the tag '...'"),
])
def test_yaml_syntax_error_never_quotes_a_password(tmp_path, password, problem):
    path = tmp_path / "nasbox.yaml"
    path.write_text(f"users:\n  alice:\n    password: {password}\n")
    with pytest.raises(ConfigError) as caught:
        load_config({"NASBOX_CONFIG": str(path)})
    assert caught.value.problems == [f"nasbox.yaml: line 3, column 15: invalid YAML: {problem}"]


def test_repr_hides_passwords(load):
    config = load({"SHARE_A": "write a /a alice:hunter2", "MOUNT_M": "/m h u:hunter2 s /",
                   "SMTP_HOST": "h", "SMTP_USER": "u", "SMTP_PASSWORD": "hunter2",
                   "NOTIFY_W": "webhook https://hooks.example.com/T0KEN"})
    assert "hunter2" not in repr(config) and "T0KEN" not in repr(config)


def test_example_configuration_is_valid_but_for_its_secret_files():
    example = REPO / "config" / "nasbox.example.yaml"
    data = yaml.load(example.read_text(), Loader=YamlLoader)
    jsonschema.Draft202012Validator(schema()).validate(data)
    with pytest.raises(ConfigError) as caught:
        load_config({"NASBOX_CONFIG": str(example)})
    assert caught.value.problems and all("cannot read /run/secrets/" in p for p in caught.value.problems)


def test_compose_example_configuration_is_valid():
    compose = yaml.safe_load((REPO / "compose" / "compose.yaml").read_text())
    environment = compose["services"]["nasbox"]["environment"]
    config = load_config({"NASBOX_CONFIG": "/dev/null", **{k: str(v) for k, v in environment.items()}})
    assert config.shares["demo"].write_users == ("demo",)


def test_yaml_on_key_and_yes_are_not_booleans(tmp_path):
    # YAML 1.1 reads `on` as true and `yes` as a boolean; nasbox reads YAML 1.2 booleans.
    path = tmp_path / "nasbox.yaml"
    path.write_text("notify:\n  ops: {type: webhook, target: 'https://x.example', on: [warning]}\n"
                    "shares:\n  tm: {access: write, paths: [/tm], users: ['a:b'], time_machine: yes}\n")
    with pytest.raises(ConfigError) as caught:
        load_config({"NASBOX_CONFIG": str(path)})
    assert caught.value.problems == ["nasbox.yaml: shares.tm.time_machine: expected a boolean, got 'yes'"]
    path.write_text(path.read_text().replace("yes", "true"))
    config = load_config({"NASBOX_CONFIG": str(path)})
    assert config.notify["ops"].on == ("warning",) and config.shares["tm"].time_machine is True
