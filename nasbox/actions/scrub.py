"""`nasbox scrub [JOB...] --now [--update-only] [--force] [--no-wait]` (also `scrub` on PATH)."""
from __future__ import annotations

from nasbox.config import load_config
from nasbox.jobs import run_named
from nasbox.scrub.engine import Scrub, scrub_databases


def scrub(names: list[str], update_only: bool, wait: bool, trigger: str = "now", force: bool = False) -> int:
    config = load_config()
    return run_named(config, "scrub", names, wait, trigger, lambda name: Scrub(
        config.scrub[name], update_only=update_only, databases=scrub_databases(config), force=force).run)
