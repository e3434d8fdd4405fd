"""`nasbox scrub [JOB...] --now [--update-only] [--no-wait]` (also `scrub` on PATH)."""
from __future__ import annotations

import logging

from nasbox.config import load_config
from nasbox.result import EXIT_SKIPPED, JobResult, combined_exit_code
from nasbox.locks import Busy
from nasbox.scrub.engine import Scrub

log = logging.getLogger(__name__)


def scrub(names: list[str], update_only: bool, wait: bool) -> int:
    jobs = load_config().scrub
    unknown = sorted(set(names) - set(jobs))
    if unknown:
        log.error("no scrub job named %s; configured: %s", ", ".join(unknown), ", ".join(sorted(jobs)) or "none")
        return 2
    results: list[JobResult] = []
    for name in names or sorted(jobs):
        try:
            result = Scrub(jobs[name], update_only=update_only).run(wait_for_lock=wait)
        except Busy as e:
            log.warning("%s; skipped (--no-wait)", e)
            return EXIT_SKIPPED
        log.info("scrub %s: %s: %s", name, result.status, result.summary)
        results.append(result)
    return combined_exit_code(results)
