"""Every test gets its own NASBOX_HOME (/config), NASBOX_RUN_DIR (/run/nasbox) and
NASBOX_VERSION_VIEWS (/run/nasbox-versions), so that nothing a test runs on the host touches
the machine's /config or /run."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def nasbox_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    home, run = tmp_path / "nasbox-home", tmp_path / "nasbox-run"
    monkeypatch.setenv("NASBOX_HOME", str(home))
    monkeypatch.setenv("NASBOX_RUN_DIR", str(run))
    monkeypatch.setenv("NASBOX_VERSION_VIEWS", str(tmp_path / "nasbox-version-views"))
    return {"home": home, "run": run}
