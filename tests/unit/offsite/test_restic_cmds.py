"""restic's command lines: nothing secret in them, a fixed --host, the pinned ssh command."""
from __future__ import annotations

from pathlib import Path

import pytest

from nasbox.offsite.kind import OffsiteJob
from nasbox.offsite.restic_cmds import ResticCommands, SftpProblem, anchored, sftp_target, ssh_command
from nasbox.versions.retention import Keep


def job(**fields) -> OffsiteJob:
    base = {"name": "docs", "source": "/data/docs", "repository": "rest:https://nas:url-pw@host/docs",
            "schedule": "daily", "password": "repo-pw", "env": (("AWS_SECRET_ACCESS_KEY", "env-pw"),)}
    return OffsiteJob(**{**base, **fields})


def test_no_secret_in_any_command_line():
    commands = ResticCommands(job(keep=Keep(last=3)), "nasbox", Path("/config/state/restic-cache"))
    calls = [commands.probe(), commands.init(), commands.latest("/data/docs"), commands.backup("/data/docs", None, []),
             commands.forget("/data/docs", Keep(last=3)), commands.prune(), commands.check(5), commands.unlock(),
             commands.restore("abcd", "/data/docs/a", "/tmp/x")]
    for call in calls:
        text = " ".join(call.argv)
        assert not any(secret in text for secret in ("url-pw", "repo-pw", "env-pw", "rest:")), text
        assert call.timeout > 0


def test_backup_command_line():
    commands = ResticCommands(job(exclude=("*.tmp",), upload_kib=1024), "nasbox", Path("/c"))
    call = commands.backup("/data/docs", "1a2b3c4d", ["/data/docs/.pardatabase", "/data/docs/odd[1]"])
    assert call.argv == ["restic", "--cache-dir", "/c", "backup", "--json", "--host", "nasbox", "--parent",
                         "1a2b3c4d", "--limit-upload", "1024", "--exclude", "*.tmp", "--exclude",
                         "/data/docs/.pardatabase", "--exclude", "/data/docs/odd\\[1\\]", "--", "/data/docs"]
    assert call.timeout == 86400


def test_retention_and_listing_are_this_servers_snapshots_of_this_source():
    commands = ResticCommands(job(), "nasbox", Path("/c"))
    forget = commands.forget("/data/docs", Keep(last=2, daily=7, monthly=12))
    assert forget.argv[3:] == ["forget", "--json", "--host", "nasbox", "--path", "/data/docs", "--keep-last=2",
                               "--keep-daily=7", "--keep-monthly=12"]
    assert commands.snapshots("/data/docs").argv[3:] == ["snapshots", "--json", "--no-lock", "--host", "nasbox",
                                                         "--path", "/data/docs"]
    assert commands.check(0).argv[3:] == ["check"]
    assert commands.check(10).argv[3:] == ["check", "--read-data-subset=10%"]
    assert commands.unlock().argv[3:] == ["unlock"]  # never --remove-all


@pytest.mark.parametrize(("repository", "expected"), [
    ("sftp:backup@nas2:/srv/restic", ("backup", "nas2", None)),
    ("sftp:nas2.lan:/srv/restic", (None, "nas2.lan", None)),
    ("sftp://backup@10.0.0.5:2222//srv/restic", ("backup", "10.0.0.5", 2222)),
    ("sftp://backup@[::1]:2222//srv", ("backup", "[::1]", 2222)),
])
def test_sftp_targets(repository, expected):
    assert sftp_target(repository) == expected


@pytest.mark.parametrize("repository", ["sftp:-oProxyCommand=sh:/x", "sftp:nas2", "sftp:a b@nas:/x",
                                        "sftp://u@-evil/x"])
def test_sftp_targets_that_could_become_options_are_refused(repository):
    with pytest.raises(SftpProblem):
        sftp_target(repository)


def test_ssh_command_pins_the_host_key():
    sftp = job(repository="sftp://backup@10.0.0.5:2222//srv/restic", ssh_known_hosts="/config/known_hosts",
               ssh_key="/config/id_ed25519")
    assert ssh_command(sftp) == (
        "ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/config/known_hosts -o GlobalKnownHostsFile=/dev/null "
        "-o BatchMode=yes -o ServerAliveInterval=60 -o ServerAliveCountMax=3 -i /config/id_ed25519 "
        "-o IdentitiesOnly=yes -p 2222 -l backup 10.0.0.5 -s sftp")
    argv = ResticCommands(sftp, "nasbox", Path("/c")).probe().argv
    assert argv[3:5] == ["-o", f"sftp.command={ssh_command(sftp)}"]


def test_anchored_escapes_globs():
    assert anchored("/data/a*b?[c]\\d") == "/data/a\\*b\\?\\[c\\]\\\\d"
