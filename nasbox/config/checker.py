"""The mechanics of checking a configuration: the JSON Schema pass, the one-line rule for
every key and value, and the Checker that collects every problem, each naming where its
value came from. The rules of each section use it (nasbox.config.validate, and each job
kind's own `build`)."""

from __future__ import annotations

import json
import zoneinfo
from functools import cache
from typing import Any

import jsonschema

from nasbox import schedules
from nasbox.config.sources import KeyPath, Origins
from nasbox.resources import schema_file
from nasbox.text import is_one_line


@cache
def schema() -> dict[str, Any]:
    return json.loads(schema_file().read_text(encoding="utf-8"))


# Formats the schema names that JSON Schema does not know; checked in the schema pass so that
# they are reported together with every other problem.
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("schedule")
def is_schedule(expression: object) -> bool:
    return not isinstance(expression, str) or schedules.is_valid(expression)


@FORMATS.checks("timezone", raises=(zoneinfo.ZoneInfoNotFoundError, ValueError))
def is_timezone(name: object) -> bool:
    return not isinstance(name, str) or zoneinfo.ZoneInfo(name) is not None


def is_secret(path: KeyPath) -> bool:
    """Passwords and tokens, share user entries (they may be user:password), an offsite job's
    back-end variables and its repository (a URL may carry a password)."""
    return (
        (bool(path) and any(word in str(path[-1]) for word in ("password", "token")))
        or (path[:1] == ("shares",) and path[2:3] == ("users",))
        or (path[:1] == ("offsite",) and path[2:3] in (("env",), ("repository",)))
    )


def shown(path: KeyPath, value: Any) -> str:
    """A value fit for an error line: never a password, never a whole essay."""
    if is_secret(path) or isinstance(value, (dict, list)):
        return ""
    text = repr(value)
    return f", got {text if len(text) <= 60 else text[:57] + '...'}"


def describe(error: jsonschema.ValidationError) -> tuple[KeyPath, str]:
    """Turn a schema error into (path, message) in nasbox's words."""
    path: KeyPath = tuple(error.absolute_path)
    rule, sub = error.validator, error.schema
    expected = sub.get("description") if isinstance(sub, dict) else None
    if "propertyNames" in error.absolute_schema_path:
        return path, f"{error.instance!r}: expected {expected}"
    if rule == "additionalProperties":
        known = sorted(sub.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        return path, f"unknown key {', '.join(map(repr, unknown))}; expected one of: {', '.join(known)}"
    if rule == "required":  # one error per missing key; the message starts with its name
        return path, f"missing required key {error.message.removesuffix(' is a required property')}"
    if rule == "enum":
        return path, f"expected one of {', '.join(map(str, error.validator_value))}{shown(path, error.instance)}"
    if rule == "type":
        kinds = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        wanted = expected or " or ".join({"object": "a mapping", "array": "a list"}.get(k, f"a {k}") for k in kinds)
        return path, f"expected {wanted}{shown(path, error.instance)}"
    return path, f"expected {expected or error.message}{shown(path, error.instance)}"


class Checker:
    def __init__(self, raw: dict[str, Any], origins: Origins):
        self.raw = raw
        self.origins = origins
        self.problems: list[str] = []
        self.broken: set[KeyPath] = set()
        self.reported: set[KeyPath] = set()  # values the schema pass found wrong already

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.origins.where(path) + message)

    def check_schema(self) -> None:
        validator = jsonschema.Draft202012Validator(schema(), format_checker=FORMATS)
        for error in sorted(validator.iter_errors(self.raw), key=lambda e: [str(p) for p in e.absolute_path]):
            path, message = describe(error)
            self.problem(path, message)
            self.broken.add(path[:2])
            self.reported.add(path)

    def check_text(self, value: Any, path: KeyPath = ()) -> None:
        """Every key and string value on one line: each ends up in a line-based file (smb.conf,
        the supervisor's configuration, mount options, credentials, mail headers) or a log."""
        if path in self.reported:
            return
        if isinstance(value, str):
            if not is_one_line(value):
                self.problem(path, "expected text without control characters (newline, tab, ...) and in UTF-8")
                self.broken.add(path[:2])
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and not is_one_line(key):
                    self.problem(
                        path + (key,), "expected a name without control characters (newline, tab, ...) and in UTF-8"
                    )
                    self.broken.add((path + (key,))[:2])
                else:
                    self.check_text(item, path + (key,))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.check_text(item, path + (index,))

    def clean(self, section: str) -> dict[str, Any]:
        """The schema-valid entries of a section (items, or the fields of server and smtp)."""
        entries = self.raw.get(section)
        if (section,) in self.broken or not isinstance(entries, dict):
            return {}
        return {k: v for k, v in entries.items() if (section, k) not in self.broken}

    def secret(self, item: dict[str, Any], path: KeyPath, missing: str | None, key: str = "password") -> str | None:
        """item[key] or the contents of the file item[key_file]; `missing` is the problem when
        neither is given (None: the secret is optional)."""
        key_file = f"{key}_file"
        if key in item and key_file in item:
            self.problem(path, f"both {key} and {key_file} are given; expected one of them")
            return None
        if key_file in item:
            try:
                with open(item[key_file], encoding="utf-8") as f:
                    return f.read().removesuffix("\n")
            except OSError as e:
                self.problem(path + (key_file,), f"cannot read {item[key_file]}: {e.strerror}")
                return None
        if key not in item and missing:
            self.problem(path, missing)
        return item.get(key)
