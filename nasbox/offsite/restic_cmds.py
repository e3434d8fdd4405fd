"""Every restic command line nasbox runs, each with its wall-clock limit.

A command line never holds a secret: the repository (a URL may carry a password) and the
password file reach restic through the environment of that one process (nasbox.offsite.restic).
Every snapshot is made and looked up with a fixed `--host`, the server's name: a container's
hostname changes whenever it is recreated, and restic groups snapshots and finds a backup's
parent by host. restic can retry an unreachable server for many minutes, so every call has a
limit: a quick one for what reads a few files, the job's `timeout` for what reads or writes
the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nasbox.offsite.kind import OffsiteJob
from nasbox.versions.retention import WORDS, Keep

PROBE_S = 60  # `cat config`: one small file
LISTING_S = 300  # snapshots and locks: a few small files each
# What restic treats as a glob in a pattern; escaped in the paths nasbox excludes by name.
GLOB = re.compile(r"([*?\[\]\\])")
HOST = re.compile(r"^[A-Za-z0-9._\[\]:-]+$")
USER = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")


class SftpProblem(ValueError):
    """The sftp: repository cannot be reached by the ssh command nasbox builds."""


@dataclass(frozen=True)
class Call:
    argv: list[str]
    timeout: float


def sftp_target(repository: str) -> tuple[str | None, str, int | None]:
    """(user, host, port) of `sftp:[USER@]HOST:/PATH` or `sftp://[USER@]HOST[:PORT]/PATH`, as
    restic reads them."""
    if repository.startswith("sftp://"):
        parts = urlsplit(repository)
        user, host, port = parts.username, parts.hostname or "", parts.port
        if host and ":" in host:
            host = f"[{host}]"
    else:
        target = repository.removeprefix("sftp:")
        login, _, path = target.partition(":")
        user, at, host = login.rpartition("@")
        user, port = (user if at else None), None
        if not path:
            raise SftpProblem("expected sftp:[USER@]HOST:/PATH or sftp://[USER@]HOST[:PORT]/PATH")
    if not host or not HOST.match(host) or host.startswith("-"):
        raise SftpProblem("expected a host name or address after sftp: (letters, digits, '.', '-', not starting '-')")
    if user is not None and not USER.match(user):
        raise SftpProblem("expected a user name of letters, digits, '.', '_' and '-' before the host's '@'")
    return user, host, port


def ssh_command(job: OffsiteJob) -> str:
    """The ssh command restic runs for an sftp: repository: the host key checked against
    ssh_known_hosts (a host not listed, or a changed key, is refused), never a prompt."""
    user, host, port = sftp_target(job.repository)
    words = ["ssh", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={job.ssh_known_hosts}"]
    words += ["-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]
    words += ["-o", "ServerAliveInterval=60", "-o", "ServerAliveCountMax=3"]  # a dead server ends the session
    if job.ssh_key:
        words += ["-i", job.ssh_key, "-o", "IdentitiesOnly=yes"]
    if port is not None:
        words += ["-p", str(port)]
    if user is not None:
        words += ["-l", user]
    return " ".join([*words, host.strip("[]"), "-s", "sftp"])


def anchored(path: str) -> str:
    """An exclude pattern that matches exactly this absolute path."""
    return GLOB.sub(r"\\\1", path)


class ResticCommands:
    def __init__(self, job: OffsiteJob, host: str, cache_dir: Path):
        self.job, self.host, self.cache_dir = job, host, cache_dir

    def _restic(self, *words: str) -> list[str]:
        argv = ["restic", "--cache-dir", str(self.cache_dir)]
        if self.job.repository.startswith("sftp:"):
            argv += ["-o", f"sftp.command={ssh_command(self.job)}"]
        return argv + list(words)

    def probe(self) -> Call:
        """Whether the repository is there and the password opens it: its config, as JSON."""
        return Call(self._restic("cat", "config", "--no-lock"), PROBE_S)

    def init(self) -> Call:
        return Call(self._restic("init"), LISTING_S)

    def latest(self, source: str) -> Call:
        return Call(self._restic("snapshots", "--json", "--no-lock", *self._ours(source), "--latest", "1"), LISTING_S)

    def snapshots(self, source: str) -> Call:
        return Call(self._restic("snapshots", "--json", "--no-lock", *self._ours(source)), LISTING_S)

    def files(self, snapshot: str) -> Call:
        """Every node of a snapshot, one JSON line each (as long as the tree: the job's timeout)."""
        return Call(self._restic("ls", "--json", "--no-lock", snapshot), self.job.timeout_s)

    def backup(self, source: str, parent: str | None, excluded: list[str]) -> Call:
        words = ["backup", "--json", "--host", self.host]
        if parent is not None:  # the snapshot the run's deletions are counted against
            words += ["--parent", parent]
        if self.job.upload_kib is not None:
            words += ["--limit-upload", str(self.job.upload_kib)]
        for pattern in self.job.exclude:
            words += ["--exclude", pattern]
        for path in excluded:
            words += ["--exclude", anchored(path)]
        return Call(self._restic(*words, "--", source), self.job.timeout_s)

    def forget_snapshot(self, snapshot: str) -> Call:
        return Call(self._restic("forget", snapshot), LISTING_S)

    def forget(self, source: str, keep: Keep) -> Call:
        """The job's snapshots that `keep` no longer keeps; the data goes with `prune`."""
        policy = [f"--keep-{word}={getattr(keep, word)}" for word in WORDS if getattr(keep, word)]
        return Call(self._restic("forget", "--json", *self._ours(source), *policy), LISTING_S)

    def prune(self) -> Call:
        return Call(self._restic("prune"), self.job.timeout_s)

    def check(self, read_data: int) -> Call:
        subset = [f"--read-data-subset={read_data}%"] if read_data else []
        return Call(self._restic("check", *subset), self.job.timeout_s)

    def list_locks(self) -> Call:
        return Call(self._restic("list", "locks", "--no-lock"), LISTING_S)

    def cat_lock(self, lock: str) -> Call:
        return Call(self._restic("cat", "lock", "--no-lock", lock), LISTING_S)

    def unlock(self) -> Call:
        """Removes the locks restic finds stale, and only those (never --remove-all)."""
        return Call(self._restic("unlock"), LISTING_S)

    def restore(self, snapshot: str, include: str, target: str) -> Call:
        return Call(
            self._restic("restore", snapshot, "--target", target, "--include", anchored(include)),
            self.job.timeout_s,
        )

    def _ours(self, source: str) -> list[str]:
        """The snapshots of this job: made by this server, of this source."""
        return ["--host", self.host, "--path", source]
