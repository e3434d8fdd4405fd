"""A dashboard over a real configuration, history and hold: a sync job `docs` held by a
safety check, a scrub job `backup` whose last run repaired a file."""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from nasbox import state
from nasbox.config import Config
from nasbox.history import History
from nasbox.result import JobResult
from nasbox.sync.engine import Holds
from nasbox.web.app import create_app

ADMIN_PASSWORD = "Adm1n-secret-pw"
VIEWER_PASSWORD = "V1ewer-secret-pw"
METRICS_TOKEN = "Metr1cs-secret-token"
SECRETS = (ADMIN_PASSWORD, VIEWER_PASSWORD, METRICS_TOKEN)


def record(history: History, kind: str, job: str, status: str, summary: str, started: float,
           stats: dict[str, int | float]) -> None:
    run_id = history.start(kind, job, "schedule")
    history.db.execute("UPDATE runs SET started = ? WHERE id = ?", (started, run_id))
    history.finish(run_id, JobResult(job, kind, status, summary, started, started + 12.5, stats=stats))


@pytest.fixture
def web_config(load: Callable[..., Config], tmp_path: Path) -> Config:
    for name in ("data", "backup", "scrubbed"):
        (tmp_path / name).mkdir()
    return load({
        "SHARE_DATA": f"write data {tmp_path / 'data'} alice:{VIEWER_PASSWORD}",
        "SYNC_DOCS": f"{tmp_path / 'data'} {tmp_path / 'backup'} daily",
        "SCRUB_BACKUP": f"{tmp_path / 'scrubbed'} .pardatabase 5% weekly",
        "WEB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "WEB_VIEWERS": "alice",
    })


@pytest.fixture
def seeded(web_config: Config) -> Config:
    history = History()
    now = time.time()
    try:
        for i in range(5):
            record(history, "sync", "docs", "good", f"copied {i}", now - (5 - i) * 86400,
                   {"transferred": i, "bytes_transferred": 1000 * i})
        record(history, "scrub", "backup", "warning", "1 file repaired: photo.jpg", now - 3600,
               {"files": 40, "bytes_verified": 4096, "repaired": 1, "unrepairable": 0})
    finally:
        history.close()
    Holds(state.state_dir()).hold("docs", "the run would delete 900 of 1000 files")
    return web_config


@pytest.fixture
def app(seeded: Config) -> Flask:
    return create_app(seeded)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def sign_in(client: FlaskClient, user: str, password: str) -> str:
    """Signs in; the CSRF token of the session."""
    answer = client.post("/login", data={"user": user, "password": password})
    assert answer.status_code == 302, answer.text
    return csrf_of(client.get("/").text)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)
