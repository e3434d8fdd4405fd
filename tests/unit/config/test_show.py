"""`nasbox config show`: the effective configuration with every secret masked."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from nasbox.config.show import masked
from nasbox.notify.urls import redact_url

ENV = {
    "SHARE_DOCS": "write docs /data/docs alice:hunter2",
    "MOUNT_NAS": "/mnt/nas 10.0.0.2 backup:hunter3 docs /",
    "SMTP_HOST": "mail.example.com", "SMTP_USER": "nas", "SMTP_PASSWORD": "hunter4",
    "NOTIFY_HOOK": "webhook https://hooks.example.com/services/T0KEN/S3CRET",
    "NOTIFY_APP": "apprise tgram://B0TTOKEN/12345",
    "NOTIFY_MAIL": "mailbox admin@example.com",
}
SECRETS = ("hunter2", "hunter3", "hunter4", "T0KEN", "S3CRET", "B0TTOKEN")


def test_masked_keeps_what_identifies_and_hides_secrets(load):
    data = masked(load(ENV))
    text = json.dumps(data)
    assert not any(secret in text for secret in SECRETS)
    assert data["users"]["alice"]["password"] == "***"
    assert data["mounts"]["nas"]["password"] == "***"
    assert data["smtp"]["password"] == "***"
    assert data["notify"]["hook"]["target"] == "https://hooks.example.com/***"
    assert data["notify"]["app"]["target"] == "tgram://***"  # Apprise URLs may carry tokens anywhere
    assert data["notify"]["mail"]["target"] == "admin@example.com"
    assert data["shares"]["docs"]["write_users"] == ["alice"]


def test_redact_url_without_scheme():
    assert redact_url("not a url") == "***"


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nasbox", *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "NASBOX_HOME": os.environ["NASBOX_HOME"],
                               "NASBOX_CONFIG": "/dev/null", **env}, timeout=60)


def test_cli_config_show_yaml_and_json():
    as_yaml = run_cli("config", "show", env=ENV)
    as_json = run_cli("config", "show", "--json", env=ENV)
    assert as_yaml.returncode == 0 and as_json.returncode == 0, as_yaml.stderr + as_json.stderr
    assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout)
    for secret in SECRETS:
        assert secret not in as_yaml.stdout + as_yaml.stderr + as_json.stdout + as_json.stderr


def test_cli_config_check_exit_codes():
    good = run_cli("config", "check", env=ENV)
    assert good.returncode == 0, good.stderr
    bad = run_cli("config", "check", env={"SHARE_X": "rw x rel alice:hunter2", "TZ": "Nowhere"})
    assert bad.returncode == 78
    assert bad.stderr.splitlines() == [
        "configuration invalid:",
        "  env TZ: expected an IANA time zone such as Europe/Berlin, got 'Nowhere'",
        "  env SHARE_X: access: expected one of read, write, got 'rw'",
        "  env SHARE_X: paths[0]: expected an absolute path, got 'rel'",
    ]


def test_cli_usage_error_exits_2():
    assert run_cli("config", "frobnicate", env={}).returncode == 2
    assert run_cli(env={}).returncode == 2


def test_help_lists_only_the_commands_people_run():
    result = run_cli("--help", env={})
    assert result.returncode == 0
    assert "SUPPRESS" not in result.stdout
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("    ")}
    assert {"run", "config", "scrub", "sync", "status"} <= listed
    assert not listed & {"scheduler", "smbd", "supervisor-watchdog"}, listed
