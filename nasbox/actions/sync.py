"""`nasbox sync [JOB...] --now [--dry-run] [--force] [--no-wait]`."""
from __future__ import annotations

import logging

from nasbox.config import load_config
from nasbox.locks import Busy, job_lock
from nasbox.result import EXIT_SKIPPED, JobResult, combined_exit_code
from nasbox.sync.engine import Sync

log = logging.getLogger(__name__)


def sync(names: list[str], dry_run: bool, force: bool, wait: bool) -> int:
    config = load_config()
    unknown = sorted(set(names) - set(config.sync))
    if unknown:
        log.error("no sync job named %s; configured: %s", ", ".join(unknown), ", ".join(sorted(config.sync)) or "none")
        return 2
    results: list[JobResult] = []
    for name in names or sorted(config.sync):
        try:
            with job_lock("sync", name, wait):
                result = Sync(config.sync[name], config, dry_run=dry_run, force=force).run()
        except Busy as e:
            log.warning("%s; skipped (--no-wait)", e)
            return EXIT_SKIPPED
        log.info("sync %s: %s: %s", name, result.status, result.summary)
        for line in result.details:
            log.info("sync %s: %s", name, line)
        results.append(result)
    return combined_exit_code(results)
