"""A dashboard's data, as the web tests see it: a sync job `docs` held by a safety check, a
scrub job `backup` whose last run repaired a file, and the secrets that must never show."""
from __future__ import annotations

import re
import time
from pathlib import Path

from nasbox import state
from nasbox.history import History
from nasbox.result import JobResult
from nasbox.sync.engine import Holds

ADMIN_PASSWORD = "Adm1n-secret-pw"
VIEWER_PASSWORD = "V1ewer-secret-pw"
METRICS_TOKEN = "Metr1cs-secret-token"
SECRETS = (ADMIN_PASSWORD, VIEWER_PASSWORD, METRICS_TOKEN)
HOLD_REASON = "the run would delete 900 of 1000 files"
REPAIRED = "1 file repaired: photo.jpg"
SYNC_RUNS = 5


def environment(root: Path) -> dict[str, str]:
    """nasbox's variables for the dashboard's configuration; its directories made under root."""
    for name in ("data", "backup", "scrubbed"):
        (root / name).mkdir(exist_ok=True)
    return {
        "SHARE_DATA": f"write data {root / 'data'} alice:{VIEWER_PASSWORD}",
        "SYNC_DOCS": f"{root / 'data'} {root / 'backup'} daily",
        "SCRUB_BACKUP": f"{root / 'scrubbed'} .pardatabase 5% weekly",
        "WEB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "WEB_VIEWERS": "alice",
    }


def record(history: History, kind: str, job: str, status: str, summary: str, started: float,
           stats: dict[str, int | float]) -> None:
    run_id = history.start(kind, job, "schedule")
    history.db.execute("UPDATE runs SET started = ? WHERE id = ?", (started, run_id))
    history.finish(run_id, JobResult(job, kind, status, summary, started, started + 12.5, stats=stats))


def seed(sync_runs: int = SYNC_RUNS) -> None:
    """The runs and the hold, under the current NASBOX_HOME."""
    history = History()
    now = time.time()
    try:
        for i in range(sync_runs):
            record(history, "sync", "docs", "good", f"copied {i}", now - (sync_runs - i) * 3600,
                   {"transferred": i, "bytes_transferred": 1000 * i})
        record(history, "scrub", "backup", "warning", REPAIRED, now - 1800,
               {"files": 40, "bytes_verified": 4096, "repaired": 1, "unrepairable": 0, "protected": 40,
                "parity_bytes": 2 << 20, "oldest_verified_at": now - 3 * 86400})
    finally:
        history.close()
    Holds(state.state_dir()).hold("docs", HOLD_REASON)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)
