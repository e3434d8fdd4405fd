"""The effective configuration as plain data for `nasbox config show`, secrets masked."""

from __future__ import annotations

import dataclasses
from typing import Any

from nasbox.config.model import Config
from nasbox.kinds import KINDS
from nasbox.notify import TYPES
from nasbox.notify.urls import MASK


def masked(config: Config) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    for user in data["users"].values():
        user["password"] = MASK
    for mount in data["mounts"].values():
        mount["password"] = MASK
        mount["options"] = dict(mount["options"])
    web = data["server"]["web"]
    for secret in ("admin_password", "metrics_token"):
        if web[secret] is not None:
            web[secret] = MASK
    if data["smtp"] and data["smtp"]["password"] is not None:
        data["smtp"]["password"] = MASK
    for target in data["notify"].values():
        target["target"] = TYPES[target["type"]].redact(target["target"])
    for kind, jobs in data["jobs"].items():
        data["jobs"][kind] = {name: KINDS[kind].shown(job) for name, job in jobs.items()}
    return _plain(data)


def _plain(value: Any) -> Any:
    """Tuples to lists, so that YAML and JSON print them alike."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
