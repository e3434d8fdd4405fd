"""One sync job: the guards that keep a backup from deleting itself, rsync, and its outcome.

Guards, in order, each skipping the run (exit 75, status warning) rather than risking data:
1. SOURCE missing, DESTINATION's parent missing, or either on a configured mount that is down;
   the marker file (`require_marker`) missing from SOURCE;
2. SOURCE empty while DESTINATION is not (a disk that did not mount looks like this);
3. the job is held (below), unless --force;
4. a dry run counts the deletions first; more than `max_delete` (default half the files in
   DESTINATION, directories not counted) holds the job, across restarts, until a run with --force. When the dry run
   lists nothing to change, it is the whole run; a first copy into an empty DESTINATION
   needs none.
Parity databases of scrub jobs and nasbox's own state inside DESTINATION are excluded, so
--delete never touches them; the real run also carries --max-delete as a second fence.
"""
from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from nasbox import commands, mounts, state, stop
from nasbox.config import Config
from nasbox.config.model import SyncJob
from nasbox.limits import deletion_limit
from nasbox.progress import human_bytes
from nasbox.result import JobResult
from nasbox.scrub.engine import Scrub, scrub_databases
from nasbox.sync import rsync_cmds

log = logging.getLogger(__name__)

HOLDS_FILE = "sync-holds.json"
MAX_DETAIL_LINES = 20
DELETIONS_STOPPED = "Deletions stopped due to --max-delete limit"


class Holds:
    """Held sync jobs, kept under /config/state so that a hold survives restarts."""

    def __init__(self, state_dir: Path):
        self.path = state_dir / HOLDS_FILE

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict]]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            holds = state.read_json(self.path, {})
            before = dict(holds)
            yield holds
            if holds != before:
                state.write_json(self.path, holds)

    def get(self, job: str) -> dict | None:
        return state.read_json(self.path, {}).get(job)

    def hold(self, job: str, reason: str) -> None:
        with self._locked() as holds:
            holds.setdefault(job, {"since": time.time(), "reason": reason})

    def release(self, job: str) -> None:
        with self._locked() as holds:
            holds.pop(job, None)


def has_entries(directory: str, ignore: set[str]) -> bool:
    return any(name not in ignore for name in os.listdir(directory))


class Sync:
    def __init__(self, job: SyncJob, config: Config, state_dir: Path | None = None,
                 dry_run: bool = False, force: bool = False):
        self.job, self.config = job, config
        self.dry_run, self.force = dry_run, force
        self.state_dir = state_dir or state.state_dir()
        self.holds = Holds(self.state_dir)
        self.started = 0.0

    def run(self) -> JobResult:
        self.started = time.time()
        if os.path.lexists(self.job.destination) and not os.path.isdir(self.job.destination):
            return self._result("error", f"{self.job.destination} exists and is not a directory")
        why_not = self._guard()
        if why_not:
            return self._result("warning", f"skipped: {why_not}", skipped=True)
        os.makedirs(self.job.destination, exist_ok=True)
        protected = self.protected()
        limit: int | None = None
        # A preview counts deletions, unless nothing can be deleted (a first copy) or --force.
        if not self.force and has_entries(self.job.destination, {rsync_cmds.PARTIAL_DIR, *protected}):
            preview = self._rsync(protected, dry_run=True)
            if preview.returncode not in (0, 24):
                return self._classify(preview, dry_run=True)
            planned = rsync_cmds.parse_stats(preview.stdout)
            present = planned.files - planned.created + planned.deleted  # files in DESTINATION now
            limit = deletion_limit(self.job.max_delete, present)
            if planned.deleted > limit:
                reason = (f"it would delete {planned.deleted} of {present} files in {self.job.destination} "
                          f"(limit {limit})")
                if not self.dry_run:
                    self.holds.hold(self.job.name, reason)
                return self._result("warning", f"held: {reason}; check the source, then run "
                                    f"`nasbox sync {self.job.name} --now --force`", skipped=True)
            if self.dry_run or not rsync_cmds.changes_listed(preview.stdout):
                return self._classify(preview, dry_run=self.dry_run)  # the preview says it all
        completed = self._rsync(protected, dry_run=self.dry_run, max_delete=limit)
        result = self._classify(completed, dry_run=self.dry_run)
        if result.status != "error" and not result.skipped and not self.dry_run:
            if self.force and self.holds.get(self.job.name):
                self.holds.release(self.job.name)
                result.details.append("the hold was released (--force)")
            result.details += self._update_parity()
        return result

    def _guard(self) -> str | None:
        job = self.job
        for path in (job.source, job.destination):
            down = mounts.down_mount_for(path, self.config)
            if down is not None:
                return f"{path} is on mount {down.name} ({mounts.unc(down)}), which is not mounted"
        if not os.path.isdir(job.source):
            return f"source {job.source} is missing"
        if not os.path.isdir(os.path.dirname(job.destination.rstrip("/")) or "/"):
            return f"the parent directory of {job.destination} is missing"
        if job.require_marker and not os.path.exists(os.path.join(job.source, job.require_marker)):
            return f"the marker {job.require_marker} is missing from {job.source} (disk absent?)"
        ignored = {rsync_cmds.PARTIAL_DIR, *self.protected()}  # a source with only its parity is empty
        if not has_entries(job.source, ignored) and os.path.isdir(job.destination) and has_entries(
                job.destination, ignored):
            return f"source {job.source} is empty but {job.destination} is not (not mounted?)"
        hold = self.holds.get(job.name)
        if hold and not self.force:
            since = time.strftime("%Y-%m-%d %H:%M", time.localtime(hold["since"]))
            return f"held since {since}: {hold['reason']}; run `nasbox sync {job.name} --now --force`"
        return None

    def protected(self) -> list[str]:
        """Paths, relative to DESTINATION or SOURCE, that rsync must leave alone: in
        DESTINATION --delete must never touch them, from SOURCE they are not data to copy
        (parity databases of scrub jobs, nasbox's own state)."""
        candidates = [job.database for job in self.config.scrub.values()]
        candidates += [str(state.state_dir()), str(state.log_dir()), str(self.state_dir)]
        return sorted({str(PurePosixPath(p).relative_to(root)) for p in candidates
                       for root in (PurePosixPath(self.job.destination), PurePosixPath(self.job.source))
                       if PurePosixPath(p).is_relative_to(root) and PurePosixPath(p) != root})

    def _rsync(self, protected: list[str], dry_run: bool, max_delete: int | None = None):
        argv = rsync_cmds.sync(self.job, protected, dry_run=dry_run, max_delete=max_delete)
        completed = commands.run(argv, check=False, timeout=None, separate_stderr=True)
        stop.check()  # rsync was terminated: its partial file waits in the partial dir
        return completed

    def _classify(self, completed, dry_run: bool) -> JobResult:
        stats = rsync_cmds.parse_stats(completed.stdout)
        errors = [line for line in completed.stderr.splitlines() if line.startswith("rsync")]
        what = "would transfer" if dry_run else "transferred"
        summary = (f"{stats.transferred} files {what} ({human_bytes(stats.bytes_transferred)}), "
                   f"{stats.deleted} deleted, {human_bytes(stats.bytes_per_s)}/s")
        code = completed.returncode
        if code == 25 or DELETIONS_STOPPED in completed.stderr:
            self.holds.hold(self.job.name, "rsync's --max-delete stopped deletions")
            return self._result("warning", f"held: rsync's --max-delete stopped deletions; {summary}",
                                stats, errors, skipped=True)
        if code == 0:
            return self._result("info" if dry_run else "good", ("dry run: " if dry_run else "") + summary, stats)
        if code == 24:
            return self._result("warning", f"{summary}; some files vanished while copying", stats, errors)
        if code == 23:
            status = "error" if self.job.partial_is_error else "warning"
            return self._result(status, f"{summary}; some files were not transferred", stats, errors)
        return self._result("error", f"rsync exited {code}: {errors[-1] if errors else 'no message'}", stats, errors)

    def _update_parity(self) -> list[str]:
        """The parity update of each scrub job whose directory this sync wrote into."""
        lines = []
        destination = PurePosixPath(self.job.destination)
        for scrub_job in self.config.scrub.values():
            directory = PurePosixPath(scrub_job.directory)
            if directory.is_relative_to(destination) or destination.is_relative_to(directory):
                update = Scrub(scrub_job, update_only=True, databases=scrub_databases(self.config)).run()
                lines.append(f"parity update of scrub {scrub_job.name}: {update.status}: {update.summary}")
        return lines

    def _result(self, status: str, summary: str, stats: rsync_cmds.Stats | None = None,
                details: list[str] | None = None, skipped: bool = False) -> JobResult:
        lines = list(details or [])
        if len(lines) > MAX_DETAIL_LINES:
            lines = lines[:MAX_DETAIL_LINES] + [f"... and {len(lines) - MAX_DETAIL_LINES} more"]
        finished = time.time()
        numbers = dict((stats or rsync_cmds.Stats()).__dict__)
        numbers["duration_s"] = round(finished - self.started, 3)
        return JobResult(job=self.job.name, kind="sync", status=status, summary=summary,
                         started=self.started, finished=finished, details=lines, stats=numbers, skipped=skipped)
