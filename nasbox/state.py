"""Where nasbox keeps what must survive a restart, and how it writes it: atomically, mode 0600.

/config (NASBOX_HOME) holds state/ and logs/; /run/nasbox (NASBOX_RUN_DIR) what lives only
as long as the container: locks, the scheduler's heartbeat, the supervisor's configuration.
Both are read at each call so that tests and development runs can point them elsewhere."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any



def home() -> Path:
    return Path(os.environ.get("NASBOX_HOME", "/config"))


def state_dir() -> Path:
    return home() / "state"


def log_dir() -> Path:
    return home() / "logs"


def run_dir() -> Path:
    return Path(os.environ.get("NASBOX_RUN_DIR", "/run/nasbox"))


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def write_json(path: Path, data: Any) -> None:
    """Replace path with data; a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
