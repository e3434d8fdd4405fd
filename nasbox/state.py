"""Where nasbox keeps what must survive a restart, and how it writes it: atomically, mode 0600.

/config (NASBOX_HOME) holds state/ and logs/; /run/nasbox (NASBOX_RUN_DIR) what lives only
as long as the container: locks, the scheduler's heartbeat, the supervisor's configuration
(where each is: nasbox.places).

Every nasbox process runs with umask 077 (PRIVATE_UMASK), so whatever it creates (history,
logs, locks, parity) is its own; the few directories meant for others (a share's path, a
mountpoint) are made with `public_directory`."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from nasbox import places

PRIVATE_UMASK = 0o077


def home() -> Path:
    return Path(places.home())


def state_dir() -> Path:
    return home() / "state"


def log_dir() -> Path:
    return home() / "logs"


def run_dir() -> Path:
    return Path(places.run_dir())


def own_directories() -> list[Path]:
    """nasbox's alone: private (made so at every start), and no sync may write into them
    (rsync --delete would wipe the history)."""
    return [state_dir(), log_dir(), run_dir()]


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


def keep_private(*paths: Path) -> None:
    """Mode 0600 for files an older version may have left readable by others."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path, 0o600)


def make_private(*roots: Path) -> None:
    """Create roots with mode 0700, and make what is below them private: directories 0700,
    files 0600. At every start, for what a version without the private umask left readable
    by others. Links are left alone (chmod would change what they point to)."""
    for root in roots:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for directory, _, files in os.walk(root):  # os.walk does not enter linked directories
            if not os.path.islink(directory):
                os.chmod(directory, 0o700)
            for name in files:
                path = os.path.join(directory, name)
                if stat.S_ISREG(os.lstat(path).st_mode):
                    os.chmod(path, 0o600)


def public_directory(path: Path) -> None:
    """Create path and its missing parents with mode 0755, so that share users can reach it
    (the umask would make them 0700)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir()
        directory.chmod(0o755)
