"""Where the files of the repository's config/ directory are found at run time."""
from __future__ import annotations

from pathlib import Path

# In a source checkout: config/ beside the package; in the image: the copy the Dockerfile makes.
_SOURCE_TREE = Path(__file__).resolve().parent.parent / "config"
_IMAGE = Path("/usr/share/nasbox")


def resource_dir() -> Path:
    return _SOURCE_TREE if _SOURCE_TREE.is_dir() else _IMAGE


def schema_file() -> Path:
    return resource_dir() / "nasbox.schema.json"


def templates_dir() -> Path:
    return resource_dir() / "templates"
