"""One sync job: the guards that keep a backup from deleting itself, rsync, and its outcome.

SOURCE and DESTINATION are resolved (symlinks, `..`) at the start of every run and only the
resolved paths are given to rsync; a DESTINATION that is, holds or lies in SOURCE (or in a
scrub job's parity database) is an error: nothing is copied or deleted.
Guards, in order, each skipping the run (exit 75, status warning) rather than risking data:
1. SOURCE missing, DESTINATION's parent missing, or either on a configured mount that is down;
   the marker file (`require_marker`) missing from SOURCE;
2. SOURCE empty while DESTINATION is not (a disk that did not mount looks like this);
3. the job is held (below), unless --force, which approves the deletions and rewrites the
   hold counted and no more (a source that lost or changed more since holds the job anew); a
   dry run still shows its preview;
4. a dry run counts the deletions and the rewrites first; more deletions than `max_delete`
   (default half the files in DESTINATION, directories not counted), or more rewrites than
   `max_change` (default a quarter of them, never fewer than 10; ransomware rewrites nearly
   all) holds the job, across restarts, until a run with --force. A rewrite is an existing
   file rsync would copy over with other bytes: a new file is none, nor is a change of
   attributes only (mode, owner, or an mtime over the same bytes). When the dry run lists
   nothing to change, it is the whole run; a first copy into an empty DESTINATION needs none
   (nor a forced run), but the dry run that measures its space ends it the same way.
Then the space guard: the copy may write no more than leaves the job's `min_free` free on
DESTINATION's filesystem (nasbox.space), by the bytes the preview (or, for a first copy, a dry
run) would transfer; short of it the run is an error and nothing is copied or deleted. A
disk that fills anyway (another writer) stops rsync: its partial file waits in the partial
directory, and the next run with space completes the copy.
After a run that completed and changed DESTINATION (or the first), a job with `versions`
takes a read-only version of DESTINATION (nasbox.versions) and prunes the ones its retention
no longer keeps; a held or failed run takes and prunes none.
Parity databases of scrub jobs, the versions and nasbox's own state inside DESTINATION are
excluded, so --delete never touches them; the copy carries --max-delete set to the
deletions the preview counted, a second fence against a source that shrinks in between
(rsync has none for rewrites).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from nasbox import commands, mounts, paths, space, state, stop
from nasbox.config import Config
from nasbox.history import record_run
from nasbox.holds import Holds, held_since
from nasbox.limits import REWRITES, deletion_limit
from nasbox.not_data import has_entries, not_data
from nasbox.progress import TransferProgress, human_bytes
from nasbox.result import JobResult
from nasbox.samba import version_views
from nasbox.scrub.engine import Scrub, scrub_databases
from nasbox.sync import rsync_cmds
from nasbox.sync.kind import SyncJob
from nasbox.versions.store import Versions, VersionsError

log = logging.getLogger(__name__)

MAX_DETAIL_LINES = 20
DELETIONS_STOPPED = "Deletions stopped due to --max-delete limit"
NO_SPACE = "No space left on device"  # strerror(ENOSPC), as rsync reports it


def utc_now() -> datetime:
    return datetime.now(UTC)


class Sync:
    def __init__(
        self,
        job: SyncJob,
        config: Config,
        state_dir: Path | None = None,
        dry_run: bool = False,
        force: bool = False,
        clock: Callable[[], datetime] = utc_now,
    ):
        self.job, self.config = job, config
        self.dry_run, self.force = dry_run, force
        self.clock = clock  # the moment a version is taken at
        # Set by the copy: whether it ran to the end, and whether it changed anything.
        self.complete, self.changed = False, True
        self.state_dir = state_dir or state.state_dir()
        self.holds = Holds(self.state_dir)
        self.started = 0.0
        self.source, self.destination = paths.real(job.source), paths.real(job.destination)

    def run(self) -> JobResult:
        self.started = time.time()
        job = self.job
        # Resolved again now, checked, and the only paths rsync is given: a link that
        # changes later cannot redirect this run.
        self.source, self.destination = paths.real(job.source), paths.real(job.destination)
        clash = self._clash()
        if clash:
            return self._result("error", f"{clash}; nothing was copied or deleted")
        if os.path.lexists(self.destination) and not os.path.isdir(self.destination):
            return self._result("error", f"{job.destination} exists and is not a directory")
        why_not = self._guard()
        if why_not:
            return self._result("warning", f"skipped: {why_not}", skipped=True)
        existing = self.holds.get(job.name)
        hold = None if self.force else existing
        if hold and not self.dry_run:
            return self._result("warning", f"skipped: {held_since(job.name, hold)}", skipped=True)
        os.makedirs(self.destination, exist_ok=True)
        protected = self.protected()
        result = self._copy(protected, existing if self.force else None)
        if hold:  # a dry run of a held job: the preview, and that the job stays held
            result.summary = f"{held_since(job.name, hold)}; {result.summary}"
            if result.status != "error":  # a failed preview stays an error
                result.status, result.skipped = "warning", True
        if result.status != "error" and not result.skipped and not self.dry_run:
            if self.force and self.holds.get(job.name):
                self.holds.release(job.name)
                result.details.append("the hold was released (--force)")
            if self.job.versions and self.complete:
                self._keep_versions(result)
            result.details += self._update_parity()
        return result

    def _keep_versions(self, result: JobResult) -> None:
        """A version of DESTINATION as this run left it, when it changed, and the retention applied."""
        versions = Versions(self.destination)
        assert self.job.versions is not None
        try:
            with self._vouching():  # linking and unlinking moves the ctime of the mirror's files
                version = None
                if self.changed or versions.owed() or not versions.all():
                    version, counts = versions.take(self.clock(), set(self.protected()), self.job.min_free)
                    if version is not None:
                        made = f" ({counts.directories} directories, {counts.links} links)" if counts else " (snapshot)"
                        result.details.append(f"version {version.name} taken{made}")
                version_views.refresh(self.job)  # so that Previous Versions show the versions
                removed = versions.prune(self.job.versions, ZoneInfo(self.config.server.timezone), version)
            result.details += [f"version {v.name} pruned ({self.job.versions.text()})" for v in removed]
        except VersionsError as e:
            result.status = "error"
            result.summary += f"; {e}"

    @contextmanager
    def _vouching(self) -> Iterator[None]:
        """Scrub.vouching of every scrub job whose DIRECTORY overlaps DESTINATION."""
        with ExitStack() as stack:
            for scrub_job in self.config.scrub.values():
                if paths.overlap(scrub_job.directory, self.destination):
                    stack.enter_context(Scrub(scrub_job, databases=scrub_databases(self.config)).vouching())
            yield

    def _copy(self, protected: list[str], approved: dict | None = None) -> JobResult:
        """The preview, the guard on its deletions and rewrites, and the copy (or only the
        preview). approved: the hold --force releases; no more deletions and rewrites than it
        counted (or max_delete and max_change allow) may happen, since the source may have
        changed after the hold."""
        limit: int | None = None
        # A preview counts deletions and rewrites, unless nothing can be deleted or rewritten
        # (a first copy) or --force passes a hold that counted nothing.
        previewed = not self.force or (approved is not None and "deletions" in approved)
        if previewed and has_entries(self.destination, {rsync_cmds.PARTIAL_DIR, *protected}):
            preview = self._rsync(protected, dry_run=True)
            if preview.returncode not in (0, 24):
                return self._classify(preview, dry_run=True)
            planned = rsync_cmds.parse_stats(preview.stdout)
            present = planned.files - planned.created + planned.deleted  # files in DESTINATION now
            counted = approved or {}
            allowed = max(deletion_limit(self.job.max_delete, present), counted.get("deletions", 0))
            allowed_rewrites = max(REWRITES.limit(self.job.max_change, present), counted.get("rewrites", 0))
            rewrites = self._rewrites(preview.stdout, allowed_rewrites)
            over = []
            if planned.deleted > allowed:
                over.append(
                    f"it would delete {planned.deleted} of {present} files in {self.job.destination} "
                    f"(max_delete: limit {allowed})"
                )
            if rewrites > allowed_rewrites:
                over.append(
                    f"it would rewrite {rewrites} of {present} files in {self.job.destination} "
                    f"(max_change: limit {allowed_rewrites})"
                )
            if over:
                reason = "; ".join(over)
                if approved is not None:
                    reason += (
                        f"; the hold --force releases counted {counted.get('deletions', 0)} deletions and "
                        f"{counted.get('rewrites', 0)} rewrites: the source changed since"
                    )
                result = self._classify(preview, dry_run=True)  # its details: what would change
                if self.dry_run:  # a dry run holds nothing
                    result.summary = f"held: {reason}; {result.summary}"
                else:
                    if approved is not None:  # held anew, for what the source holds now
                        self.holds.release(self.job.name)
                    self.holds.hold(self.job.name, reason, planned.deleted, rewrites)
                    result.summary = (
                        f"held: {reason}; check the source, then run `nasbox sync {self.job.name} --now --force`"
                    )
                result.status, result.skipped = "warning", True
                return result
            if short := self._short_of_space(planned):
                if not self.dry_run:
                    return self._result("error", f"skipped: {short}; nothing was copied or deleted")
                result = self._classify(preview, dry_run=True)  # a dry run shows what it would have done
                result.summary, result.status = f"would be skipped: {short}; {result.summary}", "warning"
                return result
            if self.dry_run or not rsync_cmds.changes_listed(preview.stdout):
                self.changed = False
                return self._classify(preview, dry_run=self.dry_run)  # the preview says it all
            # The copy deletes no more than the preview planned (directories included, as
            # rsync counts them): a source that shrinks meanwhile stops it, and holds the job.
            limit = planned.deleted_entries
        elif not self.dry_run:  # no preview: a dry run measures what the copy will write
            measured = self._rsync(protected, dry_run=True)
            if measured.returncode not in (0, 24):
                return self._classify(measured, dry_run=True)
            if short := self._short_of_space(rsync_cmds.parse_stats(measured.stdout)):
                return self._result("error", f"skipped: {short}; nothing was copied or deleted")
            if not rsync_cmds.changes_listed(measured.stdout):  # the whole run, as with a preview
                self.changed = False
                return self._classify(measured, dry_run=False)
        if self.job.versions and not self.dry_run:
            try:
                Versions(self.destination).owe()
            except (OSError, VersionsError) as e:
                return self._result("error", f"cannot note the version owed: {e}; nothing was copied")
        return self._classify(self._rsync(protected, dry_run=self.dry_run, max_delete=limit), dry_run=self.dry_run)

    def _short_of_space(self, planned: rsync_cmds.TransferStats) -> str | None:
        """Why the copy would leave less than min_free on DESTINATION's filesystem, or None. It
        writes at most the bytes of the files it transfers (each in a temporary file that
        replaces the old one) and an inode for each file and directory it creates."""
        return space.shortfall(
            self.destination, planned.bytes_transferred, self.job.min_free, inodes=planned.created_entries
        )

    def _clash(self) -> str | None:
        """Why this run may not touch DESTINATION, checked on the paths as they are now."""
        job = self.job
        if paths.overlap(self.source, self.destination):
            return (
                f"source {job.source} and destination {job.destination} are the same place or one holds "
                f"the other{paths.resolved_note(job.source, job.destination)}"
            )
        for scrub_job in self.config.scrub.values():
            if paths.inside(self.destination, scrub_job.database):
                return (
                    f"destination {job.destination} lies in the parity database {scrub_job.database} of "
                    f"scrub {scrub_job.name}{paths.resolved_note(job.destination, scrub_job.database)}"
                )
        for own in map(str, {*state.own_directories(), self.state_dir}):
            if paths.inside(self.destination, own):
                return (
                    f"destination {job.destination} lies in nasbox's own {own}"
                    f"{paths.resolved_note(job.destination, own)}"
                )
        return None

    def _guard(self) -> str | None:
        job = self.job
        for path in (job.source, job.destination, self.source, self.destination):  # as written, and where they lead
            down = mounts.down_mount_for(path, self.config)
            if down is not None:
                return f"{path} is on mount {down.name} ({mounts.unc(down)}), which is not mounted"
        if not os.path.isdir(self.source):
            return f"source {job.source} is missing"
        if not os.path.isdir(os.path.dirname(self.destination)):
            return f"the parent directory of {job.destination} is missing"
        if job.require_marker and not os.path.exists(os.path.join(self.source, job.require_marker)):
            return f"the marker {job.require_marker} is missing from {job.source} (disk absent?)"
        ignored = {rsync_cmds.PARTIAL_DIR, *self.protected()}  # a source with only its parity is empty
        if (
            not has_entries(self.source, ignored)
            and os.path.isdir(self.destination)
            and has_entries(self.destination, ignored)
        ):
            return f"source {job.source} is empty but {job.destination} is not (not mounted?)"
        return None

    def protected(self) -> list[str]:
        """Paths, relative to DESTINATION or SOURCE as rsync walks them (resolved), that rsync
        must leave alone: in DESTINATION --delete must never touch them, from SOURCE they are
        not data to copy (see not_data)."""
        return not_data(self.config, [self.destination, self.source], self.state_dir)

    def _rewrites(self, preview: str, allowed: int) -> int:
        """The files in DESTINATION the copy would rewrite, from the preview's output. rsync
        copies a file of the same size whose mtime changed; it counts unless its bytes are the
        same (a `touch`, a folder copied back), which is read on both sides only when the
        count decides whether the job is held."""
        resized, same_size = rsync_cmds.rewrites(preview)
        if len(resized) > allowed or len(resized) + len(same_size) <= allowed:
            return len(resized) + len(same_size)
        return len(resized) + self._differing(same_size)

    def _differing(self, names: list[bytes]) -> int:
        """How many of the files named (relative to SOURCE) differ in their bytes from
        DESTINATION's copies; all of them when rsync cannot tell (one vanished, say)."""
        with tempfile.NamedTemporaryFile(prefix="nasbox-compare-") as listed:
            listed.write(b"\0".join(names))
            listed.flush()
            argv = rsync_cmds.content_check(self._resolved(), listed.name)
            completed = commands.run(argv, check=False, timeout=None, separate_stderr=True)
        stop.check()
        if completed.returncode != 0:
            return len(names)
        resized, same_size = rsync_cmds.rewrites(completed.stdout)
        return len(resized) + len(same_size)

    def _resolved(self) -> SyncJob:
        """The job with the paths this run resolved, the only ones rsync is given."""
        return dataclasses.replace(self.job, source=self.source, destination=self.destination)

    def _rsync(self, protected: list[str], dry_run: bool, max_delete: int | None = None):
        resolved = self._resolved()
        if dry_run:  # a preview lists, it copies nothing: no progress to show
            argv = rsync_cmds.sync(resolved, protected, dry_run=True, max_delete=max_delete)
            completed = commands.run(argv, check=False, timeout=None, separate_stderr=True)
        else:
            argv = rsync_cmds.sync(resolved, protected, max_delete=max_delete, progress=True)
            transfer = TransferProgress(f"sync {self.job.name}")
            completed = commands.run(argv, check=False, timeout=None, separate_stderr=True, on_output=transfer.output)
            transfer.finish()
        stop.check()  # rsync was terminated: its partial file waits in the partial dir
        return completed

    def _classify(self, completed, dry_run: bool) -> JobResult:
        stats = rsync_cmds.parse_stats(completed.stdout, completed.stderr)
        errors = [line for line in completed.stderr.splitlines() if line.strip()]
        details = errors + rsync_cmds.changes(completed.stdout) * dry_run  # a preview shows what would change
        what = "would transfer" if dry_run else "transferred"
        summary = (
            f"{stats.transferred} files {what} ({human_bytes(stats.bytes_transferred)}), "
            f"{stats.deleted} deleted, {human_bytes(stats.bytes_per_s)}/s"
        )
        code = completed.returncode
        self.complete = not dry_run and code in (0, 24)
        if code == 25 or DELETIONS_STOPPED in completed.stderr:
            reason = "rsync's --max-delete stopped deletions (more than the preview planned: the source changed)"
            self.holds.hold(self.job.name, reason)
            return self._result("warning", f"held: {reason}; {summary}", stats, details, skipped=True)
        if code == 0:
            return self._result(
                "info" if dry_run else "good", ("dry run: " if dry_run else "") + summary, stats, details
            )
        full = [line for line in errors if NO_SPACE in line]
        if full:  # rsync's last line is then about the broken pipe to the receiver that stopped
            return self._result("error", f"the destination's filesystem is full: {full[0]}; {summary}", stats, details)
        if code == 24:
            return self._result("warning", f"{summary}; some files vanished while copying", stats, details)
        if code == 23:
            status = "error" if self.job.partial_is_error else "warning"
            return self._result(status, f"{summary}; some files were not transferred", stats, details)
        return self._result("error", f"rsync exited {code}: {errors[-1] if errors else 'no message'}", stats, details)

    def _update_parity(self) -> list[str]:
        """The parity update of each scrub job whose directory this sync wrote into."""
        lines = []
        for scrub_job in self.config.scrub.values():
            if paths.overlap(scrub_job.directory, self.destination):
                scrub = Scrub(scrub_job, update_only=True, databases=scrub_databases(self.config))
                update = record_run("scrub", scrub_job.name, "update", scrub.run)
                stop.check()  # a stop during the update ends the sync's run too
                lines.append(f"parity update of scrub {scrub_job.name}: {update.status}: {update.summary}")
        return lines

    def _result(
        self,
        status: str,
        summary: str,
        stats: rsync_cmds.TransferStats | None = None,
        details: list[str] | None = None,
        skipped: bool = False,
    ) -> JobResult:
        lines = list(details or [])
        if len(lines) > MAX_DETAIL_LINES:
            lines = lines[:MAX_DETAIL_LINES] + [f"... and {len(lines) - MAX_DETAIL_LINES} more"]
        finished = time.time()
        numbers = dict((stats or rsync_cmds.TransferStats()).__dict__)
        numbers["duration_s"] = round(finished - self.started, 3)
        return JobResult(
            job=self.job.name,
            kind="sync",
            status=status,
            summary=summary,
            started=self.started,
            finished=finished,
            details=lines,
            stats=numbers,
            skipped=skipped,
        )
