"""Running restic for one offsite job, and reading what it says.

The password reaches restic through a pipe (`RESTIC_PASSWORD_FILE=/dev/fd/N`), never a file
on disk, an argument or nasbox's own environment; the repository and the back end's
credentials through the environment of that one restic process. Whatever restic prints that
nasbox passes on (summaries, details, logs) has every secret of the job masked first.

restic's exit codes changed over its versions, so an outcome is read from the code and,
for the versions before 0.17 (which exit 1 for most failures), from restic's message:
0 done; 3 a snapshot was made but some files could not be read; 10 (or "unable to open
config file" with "does not exist") no repository; 11 (or "already locked") locked; 12 (or
"wrong password") wrong password; "no matching ID found" a snapshot named is not there; 130
or a signal interrupted; anything else failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from nasbox import commands, stop
from nasbox.config import Config
from nasbox.notify.urls import MASK
from nasbox.offsite.kind import OffsiteJob
from nasbox.offsite.restic_cmds import Call, ResticCommands

MAX_MESSAGE_LINES = 5
RCLONE_STAMP = re.compile(r"^rclone: \d{4}/\d\d/\d\d \d\d:\d\d:\d\d ")
RCLONE_CHATTER = re.compile(r"^rclone: (NOTICE|INFO|DEBUG) *:")
# restic's own variables that would override or clash with nasbox's (a user's, set in the
# container for restic by hand), emptied for nasbox's restic: restic reads empty as unset.
UNSET = {"RESTIC_PASSWORD_COMMAND": "", "RESTIC_PASSWORD": "", "RESTIC_REPOSITORY_FILE": "", "RESTIC_KEY_HINT": ""}


class Outcome(Enum):
    DONE = "done"
    INCOMPLETE = "incomplete"  # a snapshot was made without some files (exit 3)
    MISSING = "missing"  # no repository there
    LOCKED = "locked"
    NO_SUCH_SNAPSHOT = "no such snapshot"
    WRONG_PASSWORD = "wrong password"
    TIMED_OUT = "timed out"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


CODES = {0: Outcome.DONE, 3: Outcome.INCOMPLETE, 10: Outcome.MISSING, 11: Outcome.LOCKED, 12: Outcome.WRONG_PASSWORD}


@dataclass
class Ran:
    """One restic call as it ended: its outcome, output, and a masked message for people."""

    outcome: Outcome
    code: int | None  # None: stopped at its time limit
    stdout: str
    stderr: str  # masked
    timeout: float = 0

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.DONE

    def json_lines(self) -> list[dict[str, Any]]:
        return json_lines(self.stdout)

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def message(self) -> str:
        """What went wrong, in restic's words (secrets masked): its fatal line and what its ssh
        or rclone said, or its last lines."""
        lines = said(self.stderr)
        if self.outcome is Outcome.TIMED_OUT:  # restic's last word is the retry it was waiting in
            return f"restic did not finish within {self.timeout:g} s" + (f"; last: {lines[-1]}" if lines else "")
        texts = []
        for line in lines:
            if line.startswith("{"):  # restic 0.18's --json error lines
                with contextlib.suppress(json.JSONDecodeError, AttributeError):
                    line = str(json.loads(line).get("message", line))
            texts.append(line)
        fatal = [t for t in texts if t.startswith("Fatal:")]
        # What ssh or rclone said (a host key refused, a login denied), which restic passes on.
        helpers = [t for t in texts if t.startswith(("subprocess ", "rclone: "))]
        shown = helpers[-2:] + fatal[-1:] if fatal else texts[-MAX_MESSAGE_LINES:]
        return " | ".join(shown) or f"restic exited {self.code}"


def said(stderr: str) -> list[str]:
    """restic's lines worth showing: rclone's (which restic passes on as `rclone: ...`)
    without their time stamps, and without its notices (such as its config file missing,
    which a remote configured by variables never has)."""
    lines = []
    for line in stderr.splitlines():
        line = RCLONE_STAMP.sub("rclone: ", line.strip())
        if line and not RCLONE_CHATTER.match(line):
            lines.append(line)
    return lines


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON messages among restic's lines (--json: one per line)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return found


def outcome_of(code: int, stderr: str) -> Outcome:
    if code in CODES and code != 0:
        return CODES[code]
    if code == 0:
        return Outcome.DONE
    if code == 130 or code < 0:
        return Outcome.INTERRUPTED
    if "wrong password or no key found" in stderr:
        return Outcome.WRONG_PASSWORD
    if "already locked" in stderr:
        return Outcome.LOCKED
    if is_missing(stderr):
        return Outcome.MISSING
    if "no matching ID found" in stderr:
        return Outcome.NO_SUCH_SNAPSHOT
    return Outcome.FAILED


def is_missing(stderr: str) -> bool:
    """restic before 0.17 says a repository is missing only in words; 0.18 retries a missing
    S3 bucket for minutes, saying why while it does."""
    text = stderr.lower()
    return ("unable to open config file" in text and ("does not exist" in text or "no such file" in text)) or (
        "bucket does not exist" in text
    )


@dataclass(frozen=True)
class Snapshot:
    id: str
    short_id: str
    time: datetime
    paths: tuple[str, ...]
    host: str

    @classmethod
    def of(cls, data: dict[str, Any]) -> Snapshot:
        return cls(
            id=data["id"],
            short_id=data.get("short_id", data["id"][:8]),
            time=parse_time(data["time"]),
            paths=tuple(data.get("paths") or ()),
            host=data.get("hostname", ""),
        )


def parse_time(text: str) -> datetime:
    """restic's RFC 3339 times, nanoseconds and all (Python 3.11 reads at most microseconds)."""
    head, dot, rest = text.partition(".")
    if not dot:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    digits = len(rest) - len(rest.lstrip("0123456789"))
    return datetime.fromisoformat(f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}".replace("Z", "+00:00"))


@dataclass(frozen=True)
class Lock:
    id: str
    time: datetime
    hostname: str
    pid: int
    exclusive: bool


@dataclass
class Restic:
    """restic for one job: each call with the job's password, repository and back end."""

    job: OffsiteJob
    config: Config
    cache_dir: Path
    # Set when a call was stopped (time limit, signal): restic may have left its lock behind.
    killed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.commands = ResticCommands(self.job, self.config.server.name, self.cache_dir)
        self.secrets = sorted(set(self.job.secrets), key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def run(self, call: Call) -> Ran:
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        reader, writer = os.pipe()
        try:
            os.write(writer, self.job.password.encode())
            os.close(writer)
            writer = -1
            env = {
                **dict(self.job.env),
                **UNSET,
                "RESTIC_REPOSITORY": self.job.repository,
                "RESTIC_PASSWORD_FILE": f"/dev/fd/{reader}",
                "TZ": self.config.server.timezone,  # forget's days and weeks are the server's
            }
            try:
                completed = commands.run(
                    call.argv, check=False, timeout=call.timeout, separate_stderr=True, pass_fds=(reader,), env=env
                )
            except subprocess.TimeoutExpired as e:
                self.killed = True
                said = os.fsdecode(e.stderr or b"")
                outcome = Outcome.MISSING if is_missing(said) else Outcome.TIMED_OUT
                return Ran(outcome, None, os.fsdecode(e.stdout or b""), self.mask(said), call.timeout)
        finally:
            os.close(reader)
            if writer >= 0:
                os.close(writer)
        if completed.returncode < 0 or completed.returncode == 130:
            self.killed = True
        stop.check()  # nasbox is stopping: the call was cut short, the run ends here
        said = completed.stderr or ""
        return Ran(outcome_of(completed.returncode, said), completed.returncode, completed.stdout, self.mask(said))

    def locks(self) -> tuple[list[Lock], Ran]:
        listed = self.run(self.commands.list_locks())
        found: list[Lock] = []
        if not listed.ok:
            return found, listed
        for lock_id in listed.stdout.split():
            shown = self.run(self.commands.cat_lock(lock_id))
            if not shown.ok:  # removed meanwhile: its owner finished
                continue
            data = shown.json()
            found.append(
                Lock(
                    id=lock_id,
                    time=parse_time(data["time"]),
                    hostname=data.get("hostname", ""),
                    pid=int(data.get("pid", 0)),
                    exclusive=bool(data.get("exclusive")),
                )
            )
        return found, listed
