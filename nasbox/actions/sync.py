"""`nasbox sync [JOB...] --now [--dry-run] [--force] [--no-wait]`."""
from __future__ import annotations

from nasbox.config import load_config
from nasbox.jobs import run_named
from nasbox.sync.engine import Sync


def sync(names: list[str], dry_run: bool, force: bool, wait: bool, trigger: str = "now") -> int:
    config = load_config()
    return run_named(config, "sync", names, wait, trigger, lambda name: Sync(
        config.sync[name], config, dry_run=dry_run, force=force).run)
