"""The effective configuration as plain data for `nasbox config show`, secrets masked."""
from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

from nasbox.config.model import Config

MASK = "***"


def redact_url(url: str) -> str:
    """Keep what identifies a target (scheme and host), mask what may be a token."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}/{MASK}" if parts.scheme else MASK


def redacted_target(kind: str, target: str) -> str:
    """A notification target fit to print: a mailbox as it is, a URL without what may be a
    token (an Apprise URL may keep one in its host part)."""
    if kind == "mailbox":
        return target
    if kind == "apprise":
        return f"{urlsplit(target).scheme}://{MASK}"
    return redact_url(target)


def masked(config: Config) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    for user in data["users"].values():
        user["password"] = MASK
    for mount in data["mounts"].values():
        mount["password"] = MASK
        mount["options"] = dict(mount["options"])
    if data["smtp"] and data["smtp"]["password"] is not None:
        data["smtp"]["password"] = MASK
    for target in data["notify"].values():
        target["target"] = redacted_target(target["type"], target["target"])
    return _plain(data)


def _plain(value: Any) -> Any:
    """Tuples to lists, so that YAML and JSON print them alike."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
