"""Environment variables -> the YAML-shaped dictionary, recording where each item came from.

Item variables (SHARE_, USER_, MOUNT_, NOTIFY_, and one per job kind: SYNC_, SCRUB_, ...)
hold spec strings, split into words as a shell would. Any variable may be given as X_FILE
instead (docker secrets). Values are never echoed in errors: they may hold passwords.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from nasbox.config.sources import Origins
from nasbox.kinds import KINDS

# Global variable -> where it goes in the YAML shape.
GLOBALS: dict[str, tuple[str, ...]] = {
    "NAS_NAME": ("server", "name"),
    "WORKGROUP": ("server", "workgroup"),
    "TZ": ("server", "timezone"),
    "PUID": ("server", "puid"),
    "PGID": ("server", "pgid"),
    "LOG_LEVEL": ("server", "log_level"),
    "MAX_PARALLEL_JOBS": ("server", "max_parallel_jobs"),
    "MIN_AVAILABLE_MEMORY_MB": ("server", "min_available_memory_mb"),
    "SPACE_WARNING": ("server", "space_warning"),
    "DISCOVERY": ("server", "discovery"),
    "SMTP_HOST": ("smtp", "host"),
    "SMTP_PORT": ("smtp", "port"),
    "SMTP_USER": ("smtp", "username"),
    "SMTP_PASSWORD": ("smtp", "password"),
    "SMTP_FROM": ("smtp", "from"),
    "SMTP_SECURITY": ("smtp", "security"),
    "WEB_PORT": ("server", "web", "port"),
    "WEB_ADMIN_PASSWORD": ("server", "web", "admin_password"),
    "WEB_VIEWERS": ("server", "web", "viewers"),
    "WEB_METRICS_TOKEN": ("server", "web", "metrics_token"),
}
INTEGER_GLOBALS = {"PUID", "PGID", "SMTP_PORT", "MAX_PARALLEL_JOBS", "MIN_AVAILABLE_MEMORY_MB", "WEB_PORT"}
LIST_GLOBALS = {"DISCOVERY", "WEB_VIEWERS"}  # comma-separated
ITEM_KINDS = ["SHARE", "USER", "MOUNT", "NOTIFY", *(name.upper() for name in KINDS)]
ITEM_VARIABLE = re.compile(rf"^({'|'.join(ITEM_KINDS)})_([A-Z0-9_]+)$")
MOUNT_PASSWORD = re.compile(r"^MOUNT_([A-Z0-9_]+)_PASSWORD$")

# Options of a share given by variables of their own: SHARE_DOCS_RECYCLE=30d.
SHARE_OPTIONS: dict[str, Callable[[str], dict[str, Any]]] = {"RECYCLE": lambda text: {"recycle": text}}

# kind -> (section, words of the spec string); words in [] are optional.
SPECS: dict[str, tuple[str, list[str]]] = {
    "SHARE": ("shares", ["ACCESS", "NAME", "PATHS", "USERS"]),
    "MOUNT": ("mounts", ["MOUNTPOINT", "HOST", "CREDENTIALS", "SHARE", "SUBDIR"]),
    "NOTIFY": ("notify", ["TYPE", "TARGET", "[ON]"]),
    **{name.upper(): (name, list(kind.env_words)) for name, kind in KINDS.items()},
}


def is_nasbox_variable(name: str) -> bool:
    return name in GLOBALS or ITEM_VARIABLE.match(name) is not None


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """environ without the variables that may hold secrets (items, SMTP, the web's), for the
    programs nasbox runs: they need none of them."""
    return {
        name: value
        for name, value in environ.items()
        if not (ITEM_VARIABLE.match(name.removesuffix("_FILE")) or name.startswith(("SMTP_", "WEB_")))
    }


def resolve_files(environ: Mapping[str, str]) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """{variable: (value, label)} with every X_FILE read into X."""
    values: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    for name, value in environ.items():
        if is_nasbox_variable(name) and not name.endswith("_FILE"):
            values[name] = (value, f"env {name}")
    for name, path in environ.items():
        base = name.removesuffix("_FILE")
        if base == name or not is_nasbox_variable(base):
            continue
        if base in environ:
            problems.append(f"env {name}: both {base} and {name} are set; expected one of them")
            continue
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            problems.append(f"env {name}: cannot read {path}: {e.strerror}")
            continue
        values[base] = (text.removesuffix("\n"), f"env {name}")
    return values, problems


def read_environment(environ: Mapping[str, str], origins: Origins) -> tuple[dict[str, Any], list[str]]:
    """Parse nasbox's variables into the YAML shape; origins learns each item's variable."""
    values, problems = resolve_files(environ)
    raw: dict[str, Any] = {}

    for name, (value, label) in sorted(values.items()):
        if name in GLOBALS:
            *parents, key = GLOBALS[name]
            parent = raw
            for part in parents:
                parent = parent.setdefault(part, {})
            parent[key] = global_value(name, value)
            origins.env[GLOBALS[name]] = label
            continue
        password_of = MOUNT_PASSWORD.match(name)
        if password_of:  # read with its mount
            if f"MOUNT_{password_of.group(1)}" not in values:
                problems.append(f"{label}: there is no MOUNT_{password_of.group(1)} for this password")
            continue
        option = item_option(name)
        if option:  # read with its item
            if option[0] not in values:
                problems.append(f"{label}: there is no {option[0]} for this option")
            continue
        kind, ident = ITEM_VARIABLE.match(name).groups()  # type: ignore[union-attr]
        item_name = ident.lower()
        if kind == "USER":
            user, sep, password = value.partition(":")
            if not sep or not user:
                problems.append(f"{label}: expected name:password")
                continue
            if user in raw.get("users", {}):
                problems.append(f"{label}: user {user} is already given by {origins.env[('users', user)]}")
                continue
            raw.setdefault("users", {})[user] = {"password": password}
            origins.env[("users", user)] = label
            continue

        section, words = SPECS[kind]
        try:
            parts = shlex.split(value)
        except ValueError:
            problems.append(f"{label}: cannot split the value into words (unbalanced quotes?)")
            continue
        required = [w for w in words if not w.startswith("[")]
        if not len(required) <= len(parts) <= len(words):
            hint = " (quote a cron expression: '0 2 * * *')" if "SCHEDULE" in words else ""
            problems.append(f"{label}: expected {len(required)} words {' '.join(words)}, got {len(parts)}{hint}")
            continue
        build = ITEM_BUILDERS.get(kind)
        # A job kind's item: each word under its name, lower-cased (SOURCE -> source).
        item = build(parts, values, ident) if build else {w.lower(): part for w, part in zip(words, parts, strict=True)}
        for suffix, read in item_options(kind).items():
            if f"{name}_{suffix}" in values:
                given, option_label = values[f"{name}_{suffix}"]
                try:
                    item.update(read(given))
                except ValueError as e:
                    problems.append(f"{option_label}: {e}")
        raw.setdefault(section, {})[item_name] = item
        origins.env[(section, item_name)] = label
    return raw, problems


def item_options(kind: str) -> dict[str, Callable[[str], dict[str, Any]]]:
    """The option variables of an item kind (SHARE, SYNC, ...): option -> its YAML keys."""
    return SHARE_OPTIONS if kind == "SHARE" else getattr(KINDS.get(kind.lower()), "env_options", {})


def global_value(name: str, value: str) -> int | str | list[str]:
    if name in INTEGER_GLOBALS and value.strip().isdigit():
        return int(value)
    if name in LIST_GLOBALS:
        return [word.strip() for word in _split_list(value) if word.strip()]
    return value


def item_option(name: str) -> tuple[str, str] | None:
    """(its item's variable, the option) for an item's option variable such as
    SYNC_DOCS_VERSIONS or SHARE_DOCS_RECYCLE, when it is one."""
    for kind in ITEM_KINDS:
        for option in item_options(kind):
            item, _, rest = name.rpartition(f"_{option}")
            if not rest and ITEM_VARIABLE.match(item) and item.startswith(f"{kind}_"):
                return item, option
    return None


def _split_list(word: str) -> list[str]:
    return word.split(",")


def _share(parts: list[str], values: dict, ident: str) -> dict[str, Any]:
    access, name, paths, users = parts
    return {"access": access, "name": name, "paths": _split_list(paths), "users": _split_list(users)}


def _mount(parts: list[str], values: dict, ident: str) -> dict[str, Any]:
    mountpoint, host, credentials, share, subdir = parts
    username, sep, password = credentials.partition(":")
    item: dict[str, Any] = {
        "mountpoint": mountpoint,
        "host": host,
        "share": share,
        "subdir": subdir,
        "username": username,
    }
    if sep:
        item["password"] = password
    elif f"MOUNT_{ident}_PASSWORD" in values:
        item["password"] = values[f"MOUNT_{ident}_PASSWORD"][0]
    return item


def _notify(parts: list[str], values: dict, ident: str) -> dict[str, Any]:
    item: dict[str, Any] = {"type": parts[0], "target": parts[1]}
    if len(parts) == 3:
        item["on"] = _split_list(parts[2])
    return item


ITEM_BUILDERS = {"SHARE": _share, "MOUNT": _mount, "NOTIFY": _notify}
