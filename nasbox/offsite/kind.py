"""The offsite job kind: its model, its validation, and how nasbox runs it. A job with `check`
also gets the repository check (`restic check`, reading back a share of the data) on its own
schedule."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from nasbox import durations, paths, state
from nasbox.jobkind import JobKind
from nasbox.notify.urls import MASK
from nasbox.schedules import ScheduleEntry, cron_of, next_fire
from nasbox.versions import retention
from nasbox.versions.retention import Keep

if TYPE_CHECKING:
    from nasbox.config.checker import Checker
    from nasbox.config.model import Config
    from nasbox.config.sources import KeyPath
    from nasbox.result import JobResult

DEFAULT_TIMEOUT = "24h"  # a backup, prune or check that takes longer is stopped: restic can hang on a dead server
# restic's back ends; a repository without one of these prefixes is a local path.
BACKENDS = ("local", "sftp", "rest", "s3", "swift", "b2", "azure", "gs", "rclone")
# Variables nasbox sets for restic itself: a job's env may not replace them.
RESERVED_VARIABLES = re.compile(r"^(RESTIC_(PASSWORD|REPOSITORY|KEY_HINT|HOST|CACHE_DIR)\w*|PATH|HOME|TZ|LD_\w+)$")
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The password reaches restic through a pipe, which holds 64 KiB before the writer waits.
MAX_PASSWORD_BYTES = 4096
# The password part of a URL's user information (rest:https://user:PASSWORD@host/).
URL_PASSWORD = re.compile(r"(?<=://)([^/@:]*):([^/@]*)@")
UNITS_KIB = {"": 1, "k": 1, "m": 1024, "g": 1024 * 1024}


@dataclass(frozen=True)
class Check:
    schedule: str
    read_data: int = 0  # percent of the repository's data read back and verified


@dataclass(frozen=True)
class OffsiteJob:
    name: str
    source: str
    repository: str = field(repr=False)  # a URL may carry a password
    schedule: str
    password: str = field(repr=False)
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # the back end's credentials
    keep: Keep | None = None  # None: no snapshot is ever forgotten
    exclude: tuple[str, ...] = ()
    upload_kib: int | None = None  # restic --limit-upload, KiB/s
    check: Check | None = None
    ssh_known_hosts: str | None = None
    ssh_key: str | None = None
    # None: the default, half the files in the latest snapshot.
    max_delete: int | str | None = None
    timeout_s: int = 86400

    @property
    def local_repository(self) -> str | None:
        """The directory of a repository on this machine's file systems, else None."""
        backend, colon, rest = self.repository.partition(":")
        if colon and backend in BACKENDS:
            return rest if backend == "local" else None
        return self.repository

    @property
    def secrets(self) -> list[str]:
        """Every text that must never be shown: the password, the back end's values, a password
        in the repository's URL."""
        found = [self.password, *(value for _, value in self.env)]
        found += [m.group(2) for m in URL_PASSWORD.finditer(self.repository) if m.group(2)]
        return [s for s in found if s]


def shown_repository(repository: str) -> str:
    """The repository with the password of its URL masked."""
    return URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", repository)


def upload_kib(bwlimit: str) -> int:
    """A bandwidth limit as sync writes it (KiB/s, or with K, M or G) in KiB/s, at least 1."""
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]?)", bwlimit).groups()  # type: ignore[union-attr]
    return max(1, round(float(number) * UNITS_KIB[unit.lower()]))


def read_env_words(text: str) -> dict[str, Any]:
    """OFFSITE_<ID>_ENV: `NAME=VALUE` words (NAME_FILE=PATH reads the value from a file). The
    values are never echoed: they are credentials."""
    try:
        words = shlex.split(text)
    except ValueError:
        raise ValueError("cannot split the value into words (unbalanced quotes?)") from None
    env: dict[str, str] = {}
    for word in words:
        name, equals, value = word.partition("=")
        if not equals or not VARIABLE.match(name):
            raise ValueError("expected NAME=VALUE words, NAME of letters, digits and '_'")
        env[name] = value
    return {"env": env}


def read_check(text: str) -> dict[str, Any]:
    """OFFSITE_<ID>_CHECK: `SCHEDULE [PERCENT%]`, e.g. `weekly 5%` or `0 3 * * 0 10%`."""
    words = text.split()
    if words and re.fullmatch(r"[0-9]+%", words[-1]):
        return {"check": {"schedule": " ".join(words[:-1]), "read_data": int(words[-1][:-1])}}
    return {"check": {"schedule": text.strip()}}


def count_or_percent(text: str) -> dict[str, Any]:
    return {"max_delete": int(text) if text.strip().isdigit() else text.strip()}


class OffsiteKind(JobKind):
    name = "offsite"
    summary = "back up to another place (SFTP, S3, REST server, ...) with restic, encrypted"
    env_words = ("SOURCE", "REPOSITORY", "SCHEDULE")
    env_options: ClassVar[dict[str, Callable[[str], dict[str, Any]]]] = {
        "PASSWORD": lambda text: {"password": text},
        "ENV": read_env_words,
        "KEEP": lambda text: {"keep": retention.parse(text)},
        "CHECK": read_check,
        "EXCLUDE": lambda text: {"exclude": [p for p in text.split(",") if p]},
        "BWLIMIT": lambda text: {"bwlimit": text.strip()},
        "MAX_DELETE": count_or_percent,
        "SSH_KNOWN_HOSTS": lambda text: {"ssh_known_hosts": text.strip()},
        "SSH_KEY": lambda text: {"ssh_key": text.strip()},
        "TIMEOUT": lambda text: {"timeout": text.strip()},
    }

    def build(self, c: Checker) -> dict[str, OffsiteJob]:
        jobs: dict[str, OffsiteJob] = {}
        for name, item in c.clean("offsite").items():
            where: KeyPath = ("offsite", name)
            password = c.secret(
                item, where, f"no password: expected password or password_file (env OFFSITE_{name.upper()}_PASSWORD)"
            )
            if password is not None and len(password.encode()) > MAX_PASSWORD_BYTES:
                c.problem(where + ("password",), f"expected a password of at most {MAX_PASSWORD_BYTES} bytes")
            env = read_env(c, where + ("env",), item.get("env", {}))
            keep = Keep(**item["keep"]) if "keep" in item else None
            if keep is not None and not keep:
                c.problem(
                    where + ("keep",), f"expected a count above 0 for at least one of {', '.join(retention.WORDS)}"
                )
            job = OffsiteJob(
                name=name,
                source=item["source"],
                repository=item["repository"],
                schedule=item["schedule"],
                password=password or "",
                env=tuple(sorted(env.items())),
                keep=keep,
                exclude=tuple(item.get("exclude", ())),
                upload_kib=upload_kib(item["bwlimit"]) if "bwlimit" in item else None,
                check=Check(**item["check"]) if "check" in item else None,
                ssh_known_hosts=item.get("ssh_known_hosts"),
                ssh_key=item.get("ssh_key"),
                max_delete=item.get("max_delete"),
                timeout_s=durations.seconds(item.get("timeout", DEFAULT_TIMEOUT)),
            )
            check_repository(c, where, job)
            jobs[name] = job
        return jobs

    def paths(self, job: OffsiteJob) -> list[str]:
        return [job.source] + ([job.local_repository] if job.local_repository else [])

    def schedule(self, job: OffsiteJob, tz: ZoneInfo) -> list[ScheduleEntry]:
        entries = super().schedule(job, tz)
        if job.check is not None:
            entries.append(ScheduleEntry(self.name, job.name, cron_of(job.check.schedule), "check", ("--check",)))
        return entries

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="check the repository (reading back check.read_data percent of the data) instead of a backup",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="pass a safety hold (a backup that drops more files than max_delete)",
        )

    def runner(self, config: Config, job: OffsiteJob, args: argparse.Namespace) -> Callable[[], JobResult]:
        from nasbox.offsite.engine import Offsite  # the engine only when a run needs it

        return Offsite(job, config, force=args.force, check=args.check).run

    def status(self, config: Config, job: OffsiteJob) -> dict[str, Any]:
        from nasbox.holds import Holds
        from nasbox.offsite.record import Record

        hold = Holds(state.state_dir(), self.name).get(job.name)
        tz = ZoneInfo(config.server.timezone)
        check = next_fire(cron_of(job.check.schedule), datetime.now(tz)) if job.check else None
        return {
            "held": hold["reason"] if hold else None,
            "snapshot": Record(state.state_dir(), job.name).snapshot(),  # the last one made, as nasbox noted it
            "next_check": check.isoformat(timespec="minutes") if check else None,
        }

    def shown(self, job: dict[str, Any]) -> dict[str, Any]:
        """The job as `config show` prints it: no password, no credential, no URL password."""
        return {
            **job,
            "password": MASK,
            "env": {name: MASK for name, _ in job["env"]},
            "repository": shown_repository(job["repository"]),
        }


def read_env(c: Checker, where: KeyPath, given: dict[str, str]) -> dict[str, str]:
    """The back end's variables, each NAME_FILE read into NAME."""
    env: dict[str, str] = {}
    for key, value in given.items():
        name = key.removesuffix("_FILE")
        if RESERVED_VARIABLES.match(name):
            c.problem(where + (key,), "set by nasbox for restic; expected a variable of the back end")
            continue
        if name == key:
            env.setdefault(name, value)
            continue
        if name in given:
            c.problem(where + (key,), f"both {name} and {key} are given; expected one of them")
            continue
        try:
            with open(value, encoding="utf-8") as f:
                env[name] = f.read().removesuffix("\n")
        except OSError as e:
            c.problem(where + (key,), f"cannot read {value}: {e.strerror}")
    return env


def check_repository(c: Checker, where: KeyPath, job: OffsiteJob) -> None:
    backend = job.repository.partition(":")[0]
    local = job.local_repository
    if local is not None:
        if not local.startswith("/"):
            c.problem(
                where + ("repository",),
                f"expected an absolute path or a restic back end ({', '.join(b + ':' for b in BACKENDS)})",
            )
        elif paths.overlap(local, job.source):
            c.problem(
                where + ("repository",),
                "expected a repository outside the source (and the source outside it)"
                + paths.resolved_note(job.source, local),
            )
    if backend == "sftp":
        from nasbox.offsite.restic_cmds import SftpProblem, sftp_target

        try:
            sftp_target(job.repository)
        except SftpProblem as e:
            c.problem(where + ("repository",), str(e))
        if job.ssh_known_hosts is None:
            c.problem(
                where,
                "an sftp: repository needs ssh_known_hosts: the server's host key is pinned, not trusted on first use",
            )


KIND = OffsiteKind()
