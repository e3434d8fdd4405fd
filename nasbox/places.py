"""Where nasbox's own directories are, as text: the one definition, read by nasbox.state
(which gives them as paths) and by the `nasbox` program before it loads anything else
(nasbox.relay). Both are read at each call so that tests and development runs can point
them elsewhere."""

from __future__ import annotations

import os


def home() -> str:
    """/config: what must survive a restart."""
    return os.environ.get("NASBOX_HOME", "/config")


def run_dir() -> str:
    """/run/nasbox: what lives only as long as the container."""
    return os.environ.get("NASBOX_RUN_DIR", "/run/nasbox")
