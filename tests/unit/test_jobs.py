"""Which runs may not run together: a job with itself, and jobs whose paths overlap."""
from __future__ import annotations

from nasbox.config import load_config
from nasbox.jobs import all_jobs, conflicting


def test_jobs_whose_paths_overlap_conflict(tmp_path):
    config = load_config({"NASBOX_CONFIG": "/dev/null",
                          "SYNC_DOCS": f"{tmp_path}/docs {tmp_path}/backup/docs daily",
                          "SYNC_PHOTOS": f"{tmp_path}/photos {tmp_path}/backup/photos daily",
                          "SCRUB_BACKUP": f"{tmp_path}/backup .par 5% weekly",
                          "SCRUB_OTHER": f"{tmp_path}/other .par 5% weekly"})
    assert all_jobs(config) == [("sync", "docs"), ("sync", "photos"), ("scrub", "backup"), ("scrub", "other")]
    assert conflicting(config, "sync", "docs") == [("sync", "docs"), ("scrub", "backup")]
    assert conflicting(config, "scrub", "backup") == [("sync", "docs"), ("sync", "photos"), ("scrub", "backup")]
    assert conflicting(config, "scrub", "other") == [("scrub", "other")]
