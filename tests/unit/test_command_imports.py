"""What each command loads: a verb that runs one job, or prints help, does not pay for the
dashboard, smb.conf rendering, mail, cron arithmetic or the other kinds' engines."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Loaded where they are used: rendering (jinja2), sending mail (smtplib), schedule times
# (croniter), the web dashboard (flask), and the engines of kinds the command does not run.
NEVER_FOR_A_JOB = {"jinja2", "smtplib", "croniter", "flask", "apprise", "nasbox.web", "nasbox.sync.engine",
                   "nasbox.scrub.engine"}
NEVER_FOR_HELP = NEVER_FOR_A_JOB | {"yaml", "jsonschema", "nasbox.config.validate", "psutil", "sqlite3"}


def imported(tmp_path: Path, *args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NASBOX_CONFIG": "/dev/null", "NASBOX_HOME": str(tmp_path / "home"),
           "NASBOX_RUN_DIR": str(tmp_path / "run"), "OFFSITE_DOCS": f"{tmp_path / 'missing'} {tmp_path / 'repo'} daily",
           "OFFSITE_DOCS_PASSWORD": "secret"}
    ran = subprocess.run([sys.executable, "-X", "importtime", "-m", "nasbox", *args], env=env, capture_output=True,
                         text=True, timeout=60)
    names = {line.rsplit("|", 1)[-1].strip() for line in ran.stderr.splitlines() if line.startswith("import time:")}
    return {part for name in names for part in (name, name.split(".")[0])}, ran


def test_an_offsite_run_loads_what_it_needs(tmp_path):
    names, ran = imported(tmp_path, "offsite", "docs", "--now")
    assert ran.returncode == 75 and "is missing" in ran.stdout  # the run itself ran (and skipped)
    assert {"yaml", "jsonschema", "nasbox.offsite.engine"} <= names  # the configuration is validated in full
    assert not names & NEVER_FOR_A_JOB


def test_help_loads_no_configuration(tmp_path):
    names, ran = imported(tmp_path, "--help")
    assert ran.returncode == 0 and "offsite" in ran.stdout
    assert not names & NEVER_FOR_HELP
