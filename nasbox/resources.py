"""Where nasbox's files outside the package are: config/ (the JSON Schema, the example YAML)
and services/ (the templates of smb.conf and of the supervisor's configuration).

They stand beside the package in a source checkout; the image copies them to
/usr/share/nasbox and names that place in NASBOX_RESOURCES.
"""

from __future__ import annotations

import os
from pathlib import Path

SOURCE_TREE = Path(__file__).resolve().parent.parent


def root() -> Path:
    return Path(os.environ.get("NASBOX_RESOURCES") or SOURCE_TREE)


def schema_file() -> Path:
    return root() / "config" / "nasbox.schema.json"


def templates_dir() -> Path:
    return root() / "services"
