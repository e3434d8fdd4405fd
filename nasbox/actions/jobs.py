"""`nasbox KIND [JOB...] --now [--no-wait] [options of the kind]`, for every job kind
(`nasbox sync`, `nasbox scrub`, and `scrub` on PATH)."""

from __future__ import annotations

import argparse

from nasbox.config import load_config
from nasbox.jobkind import JobKind
from nasbox.jobs import run_named


def run_now(kind: JobKind, args: argparse.Namespace) -> int:
    config = load_config()
    return run_named(
        config,
        kind,
        args.jobs,
        wait=not args.no_wait,
        trigger=args.trigger,
        make_action=lambda job: kind.runner(config, job, args),
    )
