"""/metrics: numbers and job names only (no paths, users or hosts), in Prometheus's text
format. Built from the status document and the newest run of each job, on each scrape."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nasbox.history import History, Run

CONTENT_TYPE = CONTENT_TYPE_LATEST
STATUSES = ("good", "info", "warning", "error", "running")
JOB_LABELS = ["kind", "job"]

# What a run counted, per kind: (bytes, files) read from its stats.
COUNTED = {"sync": ("bytes_transferred", "transferred"), "scrub": ("bytes_verified", "files")}


def run_numbers(run: Run) -> dict[str, float]:
    """The last run's numbers that have a metric."""
    numbers: dict[str, float] = {"start_timestamp_seconds": run.started}
    if run.duration_s is not None:
        numbers["duration_seconds"] = run.duration_s
    bytes_key, files_key = COUNTED.get(run.kind, ("bytes", "files"))
    for metric, key in (("bytes", bytes_key), ("files", files_key)):
        if key in run.stats:
            numbers[metric] = run.stats[key]
    for key in ("repaired", "unrepairable"):
        if key in run.stats:
            numbers[f"{key}_files"] = run.stats[key]
    return numbers


def filesystem_label(holds: list[str]) -> str:
    """What a filesystem holds by name ("share docs, sync docs"): its entries' paths left out."""
    return ", ".join(dict.fromkeys(entry.split(":", 1)[0] for entry in holds))


class StatusCollector(Collector):
    def __init__(self, document: dict[str, Any], history: History, smbd_up: bool, sessions: int | None):
        self.document, self.history, self.smbd_up, self.sessions = document, history, smbd_up, sessions

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("nasbox_smbd_up", "Whether smbd answers an SMB2 negotiate (1) or not (0).")
        up.add_metric([], 1 if self.smbd_up else 0)
        yield up
        if self.sessions is not None:
            sessions = GaugeMetricFamily("nasbox_smb_sessions", "Connected SMB sessions.")
            sessions.add_metric([], self.sessions)
            yield sessions
        yield from self.job_metrics()
        yield from self.filesystem_metrics()

    def job_metrics(self) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            "nasbox_job_last_run_status",
            "The last run's status: 1 for the status it had.",
            labels=JOB_LABELS + ["status"],
        )
        held = GaugeMetricFamily(
            "nasbox_job_held", "Whether a safety check holds the job (1) or not.", labels=JOB_LABELS
        )
        next_run = GaugeMetricFamily(
            "nasbox_job_next_run_timestamp_seconds", "When the job runs next (Unix time).", labels=JOB_LABELS
        )
        last = {
            "start_timestamp_seconds": "When the last run started (Unix time).",
            "duration_seconds": "How long the last run took.",
            "bytes": "Bytes the last run copied (sync) or verified (scrub).",
            "files": "Files the last run copied (sync) or looked at (scrub).",
            "repaired_files": "Files the last run repaired.",
            "unrepairable_files": "Damaged files the last run could not repair.",
        }
        families = {
            name: GaugeMetricFamily(f"nasbox_job_last_run_{name}", text, labels=JOB_LABELS)
            for name, text in last.items()
        }
        for job in self.document["jobs"]:
            labels = [job["kind"], job["name"]]
            held.add_metric(labels, 1 if job.get("held") else 0)
            next_run.add_metric(labels, datetime.fromisoformat(job["next_run"]).timestamp())
            runs = self.history.runs(job["kind"], job["name"], limit=1)
            if not runs:
                continue
            for value in STATUSES:
                status.add_metric(labels + [value], 1 if (runs[0].status or "running") == value else 0)
            for name, number in run_numbers(runs[0]).items():
                families[name].add_metric(labels, number)
        yield from (status, held, next_run, *families.values())

    def filesystem_metrics(self) -> Iterator[Metric]:
        size = GaugeMetricFamily("nasbox_filesystem_size_bytes", "Size of a filesystem.", labels=["holds"])
        free = GaugeMetricFamily("nasbox_filesystem_free_bytes", "Free space of a filesystem.", labels=["holds"])
        for fs in self.document["filesystems"]:
            label = [filesystem_label(fs["holds"])]
            size.add_metric(label, fs["size"])
            free.add_metric(label, fs["free"])
        yield size
        yield free


def exposition(document: dict[str, Any], history: History, smbd_up: bool, sessions: int | None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(document, history, smbd_up, sessions))
    return generate_latest(registry)
