"""One offsite run: the guards, the repository, the backup, the deletion hold, the retention;
or, with --check, the repository check.

Guards, in order, each skipping the run (exit 75, status warning) with nothing sent:
1. SOURCE (or a repository on this machine) on a configured mount that is down; SOURCE
   missing; a local repository's parent directory missing (a disk that did not mount);
2. SOURCE empty (parity databases, versions and nasbox's state not counted);
3. the job is held (below), unless --force.
Locks a killed run of nasbox left are removed (nasbox.offsite.stale).
The backup is made with the job's last snapshot as its parent: the one nasbox approved last
(nasbox.offsite.record), or, when nasbox has none noted (a first run, a new /config), the
job's latest in the repository, after restic has read the repository's config with the
password: missing, the repository is created (`restic init`, which never writes over an
existing one); a wrong password, an unreachable server or any other failure is an error and
nothing is created or sent. (So the usual run is one restic call, the backup, and the
retention's: each call opens the repository again, which costs a key derivation.)
restic reports how many of the files it saw were in the parent (changed or not), so the files
the new snapshot drops are the parent's file count minus those, at no extra cost; the
parent's count is the one noted when it was made, or counted in the repository (`restic ls`)
when it was not noted. A snapshot that drops more files than `max_delete` (default half the
parent's) is forgotten again at once (its data stays until the next prune) and the job is
held, across restarts, until a run with --force, which approves the count the hold saw and no
more. Then the snapshots `keep` no longer keeps are forgotten and pruned.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from nasbox import mounts, paths, state
from nasbox.config import Config
from nasbox.holds import Holds, held_since
from nasbox.limits import deletion_limit
from nasbox.not_data import has_entries, not_data
from nasbox.offsite.kind import OffsiteJob, shown_repository
from nasbox.offsite.record import Record
from nasbox.offsite.restic import Outcome, Ran, Restic, Snapshot, json_lines
from nasbox.offsite.stale import remove_killed_runs_locks
from nasbox.progress import human_bytes
from nasbox.result import JobResult

log = logging.getLogger(__name__)

MAX_DETAIL_LINES = 20
CACHE_DIR = "restic-cache"  # restic's index cache, under /config/state: it survives a new container


def cache_dir(state_dir: Path) -> Path:
    return state_dir / CACHE_DIR


class Failed(Exception):
    """A step failed: the run's result says why."""

    def __init__(self, status: str, summary: str, skipped: bool = False):
        super().__init__(summary)
        self.status, self.summary, self.skipped = status, summary, skipped


@dataclass(frozen=True)
class BackupSummary:
    """restic backup's closing JSON message."""

    snapshot: str | None
    files_new: int
    files_changed: int
    files_unmodified: int
    data_added: int
    bytes_processed: int
    duration_s: float

    @classmethod
    def of(cls, ran: Ran) -> BackupSummary | None:
        found = [m for m in ran.json_lines() if m.get("message_type") == "summary"]
        if not found:
            return None
        s = found[-1]
        return cls(
            snapshot=s.get("snapshot_id"),
            files_new=s.get("files_new", 0),
            files_changed=s.get("files_changed", 0),
            files_unmodified=s.get("files_unmodified", 0),
            data_added=s.get("data_added", 0),
            bytes_processed=s.get("total_bytes_processed", 0),
            duration_s=float(s.get("total_duration", 0.0)),
        )

    @property
    def files(self) -> int:
        return self.files_new + self.files_changed + self.files_unmodified


class Offsite:
    def __init__(
        self, job: OffsiteJob, config: Config, state_dir: Path | None = None, force: bool = False, check: bool = False
    ):
        self.job, self.config = job, config
        self.force, self.checking = force, check
        self.state_dir = state_dir or state.state_dir()
        self.holds = Holds(self.state_dir, "offsite")
        self.record = Record(self.state_dir, job.name)
        self.restic = Restic(job, config, cache_dir(self.state_dir))
        self.source = paths.real(job.source)
        self.started = 0.0
        self.details: list[str] = []
        self.stats: dict[str, int | float] = {}

    def run(self) -> JobResult:
        self.started = time.time()
        self.source = paths.real(self.job.source)  # resolved now: the only path restic is given
        why_not = self._guard()
        if why_not:
            return self._result("warning", f"skipped: {why_not}", skipped=True)
        hold = None if self.force or self.checking else self.holds.get(self.job.name)
        if hold:
            return self._result("warning", f"skipped: {held_since(self.job.name, hold, 'offsite')}", skipped=True)
        earlier = self.record.killed_runs()
        this_run = self.record.start_run()
        try:
            if earlier:
                self.details += remove_killed_runs_locks(self.restic, self.record, earlier)
            return self._check() if self.checking else self._backup()
        except Failed as failed:
            return self._result(failed.status, failed.summary, skipped=failed.skipped)
        finally:
            if not self.restic.killed:
                self.record.end_runs(this_run)

    def _guard(self) -> str | None:
        job = self.job
        local = job.local_repository
        for path in (job.source, self.source, *([local, paths.real(local)] if local else [])):
            down = mounts.down_mount_for(path, self.config)
            if down is not None:
                return f"{path} is on mount {down.name} ({mounts.unc(down)}), which is not mounted"
        if not os.path.isdir(self.source):
            return f"source {job.source} is missing"
        if local and not os.path.isdir(os.path.dirname(paths.real(local).rstrip("/")) or "/"):
            return f"the parent directory of the repository {local} is missing"
        if not has_entries(self.source, set(not_data(self.config, [self.source], self.state_dir))):
            return f"source {job.source} is empty (not mounted?)"
        return None

    def _open(self) -> bool:
        """Make sure the repository is there and opens with the password, creating it when
        (and only when) restic says there is none; whether it was created."""
        probe = self.restic.run(self.restic.commands.probe())
        if probe.outcome is Outcome.MISSING:
            made = self.restic.run(self.restic.commands.init())
            if not made.ok:
                raise Failed("error", f"cannot create the repository {self._where()}: {made.message}")
            self.details.append(f"created the repository {self._where()}")
            return True
        if not probe.ok:
            raise Failed("error", self._failure(probe, "cannot open the repository"))
        return False

    def _failure(self, ran: Ran, what: str) -> str:
        """A failed call in words, restic's own last (masked)."""
        where = self._where()
        if ran.outcome is Outcome.MISSING:
            return f"{what} {where}: there is no repository there"
        if ran.outcome is Outcome.WRONG_PASSWORD:
            return f"{what} {where}: wrong password (no key of the repository opens with it)" + (
                "" if self.checking else "; nothing was sent"
            )
        if ran.outcome is Outcome.LOCKED:
            return f"{what} {where}: locked by another process: {ran.message}"
        return f"{what} {where}: {ran.message}"

    def _where(self) -> str:
        return shown_repository(self.job.repository)

    def _parent(self) -> tuple[str | None, int]:
        """The snapshot this backup's deletions are counted against and its file count: the
        last one approved, as remembered; when nothing is, the job's latest in the repository
        (None on a first backup), which is created if missing."""
        known = self.record.snapshot()
        if known and known.get("source") == self.source:  # a new source starts a lineage of its own
            return known["id"], int(known["files"])
        if self._open():
            return None, 0  # a new repository has no snapshot
        return self._latest()

    def _latest(self) -> tuple[str | None, int]:
        listed = self.restic.run(self.restic.commands.latest(self.source))
        if not listed.ok:
            raise Failed("error", self._failure(listed, "cannot list the snapshots of"))
        found = [Snapshot.of(data) for data in listed.json() or []]
        if not found:
            return None, 0
        latest = max(found, key=lambda snapshot: snapshot.time)
        nodes = self.restic.run(self.restic.commands.files(latest.id))
        if not nodes.ok:
            raise Failed("error", self._failure(nodes, f"cannot read snapshot {latest.short_id} of"))
        return latest.id, sum(1 for node in nodes.json_lines() if node.get("type") == "file")

    def _backup(self) -> JobResult:
        parent, parent_files = self._parent()
        excluded = [os.path.join(self.source, path) for path in not_data(self.config, [self.source], self.state_dir)]
        ran = self.restic.run(self.restic.commands.backup(self.source, parent, excluded))
        if ran.outcome is Outcome.NO_SUCH_SNAPSHOT and self.record.snapshot():
            # The remembered snapshot is gone (forgotten by hand, another repository):
            # count against the job's latest instead.
            self.record.forget_snapshot()
            parent, parent_files = self._parent()
            ran = self.restic.run(self.restic.commands.backup(self.source, parent, excluded))
        summary = BackupSummary.of(ran)
        if ran.outcome not in (Outcome.DONE, Outcome.INCOMPLETE) or summary is None or summary.snapshot is None:
            status = "warning" if ran.outcome is Outcome.LOCKED else "error"
            raise Failed(status, self._failure(ran, "backup to"), skipped=ran.outcome is Outcome.LOCKED)
        dropped = parent_files - summary.files_changed - summary.files_unmodified if parent else 0
        self.stats = {
            "files_new": summary.files_new,
            "files_changed": summary.files_changed,
            "files_unmodified": summary.files_unmodified,
            "files_dropped": dropped,
            "bytes_added": summary.data_added,
            "bytes_processed": summary.bytes_processed,
            "restic_duration_s": round(summary.duration_s, 3),
        }
        line = (
            f"snapshot {summary.snapshot[:8]}: {summary.files_new} files new, {summary.files_changed} changed, "
            f"{dropped} dropped, {human_bytes(summary.data_added)} added in {summary.duration_s:.1f} s"
        )
        if parent is not None:
            self._hold_if_too_many_dropped(summary.snapshot, dropped, parent_files)
        self.record.approve(summary.snapshot, self.source, time.strftime("%Y-%m-%dT%H:%M:%S%z"), summary.files)
        if self.force and self.holds.get(self.job.name):
            self.holds.release(self.job.name)
            self.details.append("the hold was released (--force)")
        status = "good"
        if ran.outcome is Outcome.INCOMPLETE:
            status = "warning"
            line += "; some files could not be read (the snapshot lacks them)"
            self.details += unreadable(ran)
        if not self._apply_retention():
            status = "warning"
            line += "; the retention failed (see details)"
        return self._result(status, line)

    def _hold_if_too_many_dropped(self, snapshot: str, dropped: int, parent_files: int) -> None:
        approved = (self.holds.get(self.job.name) or {}).get("deletions", 0) if self.force else 0
        allowed = max(deletion_limit(self.job.max_delete, parent_files), approved)
        if dropped <= allowed:
            return
        reason = (
            f"it would drop {dropped} of the {parent_files} files of the last snapshot (max_delete: limit {allowed})"
        )
        if approved:
            reason += f"; the hold --force releases counted {approved}: the source changed since"
            self.holds.release(self.job.name)
        self.holds.hold(self.job.name, reason, dropped)
        forgot = self.restic.run(self.restic.commands.forget_snapshot(snapshot))
        if not forgot.ok:
            self.details.append(f"could not forget the held snapshot {snapshot[:8]}: {forgot.message}")
        else:
            self.details.append(f"forgot the held snapshot {snapshot[:8]} (its data goes at the next prune)")
        raise Failed(
            "warning",
            f"held: {reason}; check the source, then run `nasbox offsite {self.job.name} --now --force`",
            skipped=True,
        )

    def _apply_retention(self) -> bool:
        """Forget what `keep` no longer keeps, and prune when something was forgotten; False
        when restic failed (the backup stands)."""
        if self.job.keep is None:
            return True
        forgot = self.restic.run(self.restic.commands.forget(self.source, self.job.keep))
        if not forgot.ok:
            self.details.append(self._failure(forgot, "cannot forget old snapshots in"))
            return False
        removed = sum(len(group.get("remove") or []) for group in forgot.json() or [])
        self.stats["snapshots_forgotten"] = removed
        if not removed:
            return True
        self.details.append(f"forgot {removed} snapshot(s) ({self.job.keep.text()})")
        pruned = self.restic.run(self.restic.commands.prune())
        if not pruned.ok:
            self.details.append(self._failure(pruned, "cannot prune"))
            return False
        self.details.append("pruned the data no snapshot uses")
        return True

    def _check(self) -> JobResult:
        read_data = self.job.check.read_data if self.job.check else 0
        ran = self.restic.run(self.restic.commands.check(read_data))
        reading = f", read back {read_data}% of the data" if read_data else ""
        if ran.ok:
            return self._result("good", f"repository {self._where()} checked: no errors{reading}")
        if ran.outcome is Outcome.LOCKED:
            raise Failed("warning", self._failure(ran, "cannot check"), skipped=True)
        if ran.outcome is not Outcome.FAILED:  # no repository, a wrong password, no answer: nothing was checked
            raise Failed("error", self._failure(ran, "cannot check"))
        self.details += [line for line in ran.stdout.splitlines() + ran.stderr.splitlines() if "error" in line.lower()]
        return self._result("error", self._failure(ran, f"check found problems{reading} in"))

    def _result(self, status: str, summary: str, skipped: bool = False) -> JobResult:
        lines = [self.restic.mask(line) for line in self.details]
        if len(lines) > MAX_DETAIL_LINES:
            lines = lines[:MAX_DETAIL_LINES] + [f"... and {len(lines) - MAX_DETAIL_LINES} more"]
        finished = time.time()
        return JobResult(
            job=self.job.name,
            kind="offsite",
            status=status,
            summary=self.restic.mask(summary),
            started=self.started,
            finished=finished,
            details=lines,
            stats={**self.stats, "duration_s": round(finished - self.started, 3)},
            skipped=skipped,
        )


def unreadable(ran: Ran) -> list[str]:
    """The files restic could not read, each once, from its JSON error lines (masked stderr):
    `item: what failed`."""
    found: dict[str, str] = {}
    for message in json_lines(ran.stderr):
        if message.get("message_type") != "error":
            continue
        error = message.get("error") or {}
        if "message" in error:  # restic 0.16 and later
            why = str(error["message"])
        else:  # before: the Go error's fields
            code = error.get("Err")
            why = f"{error.get('Op', 'read')}: {os.strerror(code) if isinstance(code, int) else code}"
        found.setdefault(str(message.get("item", "?")), why)
    return [f"{item}: {why}" for item, why in found.items()]
