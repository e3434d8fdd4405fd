"""Check the merged configuration against the JSON Schema and nasbox's own rules, and build
the model. Every problem is collected, so the user sees all of them at once."""
from __future__ import annotations

import json
import os
import re
import zoneinfo
from functools import cache
from pathlib import PurePosixPath
from typing import Any

import jsonschema
from croniter import croniter

from nasbox.config.model import (
    STATUSES, Config, Mount, NotifyTarget, ScrubJob, Server, Share, Smtp, SyncJob, User,
)
from nasbox.config.sources import Origins, Path
from nasbox.passwd import foreign_accounts
from nasbox.resources import schema_file
from nasbox.scrub.guards import database_problem

NAMED_SCHEDULES = ("hourly", "daily", "weekly", "monthly")
# Section names Samba gives a meaning of its own.
RESERVED_SHARE_NAMES = {"global", "homes", "printers", "print$", "ipc$"}
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
SMTP_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.IGNORECASE)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@cache
def schema() -> dict[str, Any]:
    return json.loads(schema_file().read_text(encoding="utf-8"))


# Formats the schema names that JSON Schema does not know; checked in the schema pass so that
# they are reported together with every other problem.
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("schedule")
def is_schedule(expression: object) -> bool:
    return not isinstance(expression, str) or expression in NAMED_SCHEDULES or (
        len(expression.split()) == 5 and croniter.is_valid(expression)
    )


@FORMATS.checks("timezone", raises=(zoneinfo.ZoneInfoNotFoundError, ValueError))
def is_timezone(name: object) -> bool:
    return not isinstance(name, str) or zoneinfo.ZoneInfo(name) is not None


def is_secret(path: Path) -> bool:
    """Passwords, and share user entries (they may be user:password)."""
    return bool(path) and "password" in str(path[-1]) or path[:1] == ("shares",) and path[2:3] == ("users",)


def shown(path: Path, value: Any) -> str:
    """A value fit for an error line: never a password, never a whole essay."""
    if is_secret(path) or isinstance(value, (dict, list)):
        return ""
    text = repr(value)
    return f", got {text if len(text) <= 60 else text[:57] + '...'}"


def describe(error: jsonschema.ValidationError) -> tuple[Path, str]:
    """Turn a schema error into (path, message) in nasbox's words."""
    path: Path = tuple(error.absolute_path)
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
        self.broken: set[Path] = set()

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(self.origins.where(path) + message)

    def check_schema(self) -> None:
        validator = jsonschema.Draft202012Validator(schema(), format_checker=FORMATS)
        for error in sorted(validator.iter_errors(self.raw), key=lambda e: [str(p) for p in e.absolute_path]):
            path, message = describe(error)
            self.problem(path, message)
            self.broken.add(path[:2])

    def clean(self, section: str) -> dict[str, Any]:
        """The schema-valid entries of a section (items, or the fields of server and smtp)."""
        entries = self.raw.get(section)
        if (section,) in self.broken or not isinstance(entries, dict):
            return {}
        return {k: v for k, v in entries.items() if (section, k) not in self.broken}

    def secret(self, item: dict[str, Any], path: Path, missing: str | None) -> str | None:
        """password or the contents of password_file; `missing` is the problem when neither is
        given (None: the password is optional)."""
        if "password" in item and "password_file" in item:
            self.problem(path, "both password and password_file are given; expected one of them")
            return None
        if "password_file" in item:
            try:
                with open(item["password_file"], encoding="utf-8") as f:
                    return f.read().removesuffix("\n")
            except OSError as e:
                self.problem(path + ("password_file",), f"cannot read {item['password_file']}: {e.strerror}")
                return None
        if "password" not in item and missing:
            self.problem(path, missing)
        return item.get("password")


def build_server(c: Checker) -> Server:
    fields = c.clean("server")
    fields["hosts_allow"] = tuple(fields.get("hosts_allow", ()))
    return Server(**fields)


def build_users_and_shares(c: Checker) -> tuple[dict[str, User], dict[str, Share]]:
    passwords: dict[str, tuple[str, Path]] = {}  # user -> (password, where it was given)
    uids: dict[str, int] = {}
    image_accounts = foreign_accounts()
    for name, item in c.clean("users").items():
        if name in image_accounts:
            c.problem(("users", name), f"{name!r} is an account of the image; expected another user name")
        password = c.secret(item, ("users", name), "no password: expected password or password_file")
        if password is not None:
            passwords[name] = (password, ("users", name))
        if "uid" in item:
            uids[name] = item["uid"]

    references: list[tuple[str, Path]] = []
    groups: dict[str, list[tuple[Path, dict[str, Any], list[str]]]] = {}
    for key, item in c.clean("shares").items():
        path: Path = ("shares", key)
        name = item.get("name", key)
        if name.lower() in RESERVED_SHARE_NAMES:
            c.problem(path, f"share name {name!r} is reserved by Samba; expected another name")
            continue
        members = []
        for i, entry in enumerate(item["users"]):
            user, has_password, password = entry.partition(":")
            if user in image_accounts:
                c.problem(path + ("users", i), f"{user!r} is an account of the image; expected another user name")
            members.append(user)
            references.append((user, path + ("users", i)))
            if has_password:
                given = passwords.setdefault(user, (password, path + ("users", i)))
                if given[0] != password:
                    c.problem(path + ("users", i), f"user {user} has another password in "
                              f"{c.origins.where(given[1]).rstrip(': ')}; expected one password per user")
        for i, directory in enumerate(item["paths"]):
            if os.path.lexists(directory) and not os.path.isdir(directory):
                c.problem(path + ("paths", i), f"{directory} exists but is not a directory; expected a directory")
        groups.setdefault(name.lower(), []).append((path, item, members))

    declared = set(c.clean("users"))  # a user whose password_file failed is reported once
    for user, path in references:
        if user not in passwords and user not in declared:
            c.problem(path, f"user {user} has no password: expected USER_<ID>={user}:PASSWORD, "
                      f"users.{user}.password or {user}:PASSWORD here")

    shares: dict[str, Share] = {}
    for items in groups.values():
        (first_path, first, _), *others = items
        for path, item, _ in others:
            if item["paths"] != first["paths"]:
                c.problem(path + ("paths",), f"expected the same paths as the share of the same name "
                          f"in {c.origins.where(first_path).rstrip(': ')}")
        readers = {u for _, item, members in items if item["access"] == "read" for u in members}
        writers = {u for _, item, members in items if item["access"] == "write" for u in members}
        name = first.get("name", first_path[1])
        shares[name] = Share(
            name=name,
            path=first["paths"][0],
            extra_paths=tuple(first["paths"][1:]),
            read_users=tuple(sorted(readers - writers)),
            write_users=tuple(sorted(writers)),
            comment=next((i["comment"] for _, i, _ in items if "comment" in i), ""),
            time_machine=any(i.get("time_machine", False) for _, i, _ in items),
        )

    taken: dict[int, str] = {}
    for name, uid in sorted(uids.items()):
        if uid in taken:
            c.problem(("users", name, "uid"), f"uid {uid} is already used by user {taken[uid]}; expected a unique uid")
        taken[uid] = name
    users = {name: User(name=name, password=pw, uid=uids.get(name)) for name, (pw, _) in passwords.items()}
    return users, shares


def build_mounts(c: Checker) -> dict[str, Mount]:
    mounts: dict[str, Mount] = {}
    mountpoints: dict[str, str] = {}
    for name, item in c.clean("mounts").items():
        path: Path = ("mounts", name)
        password = c.secret(item, path, f"no password: expected password or password_file "
                            f"(env: CREDENTIALS user:password or MOUNT_{name.upper()}_PASSWORD)")
        if item["mountpoint"] in mountpoints:
            c.problem(path + ("mountpoint",), f"already used by mount {mountpoints[item['mountpoint']]}; "
                      "expected a mountpoint of its own")
        mountpoints[item["mountpoint"]] = name
        if password is None:
            continue
        options = tuple(sorted((k, v if isinstance(v, bool) else str(v)) for k, v in item.get("options", {}).items()))
        mounts[name] = Mount(
            name=name, mountpoint=item["mountpoint"], host=item["host"], share=item["share"],
            subdir=item.get("subdir", "/"), username=item["username"], password=password, options=options,
        )
    return mounts


def overlap(a: str, b: str) -> bool:
    pa, pb = PurePosixPath(a), PurePosixPath(b)
    return pa.is_relative_to(pb) or pb.is_relative_to(pa)


def build_sync(c: Checker) -> dict[str, SyncJob]:
    jobs: dict[str, SyncJob] = {}
    for name, item in c.clean("sync").items():
        path: Path = ("sync", name)
        if overlap(item["source"], item["destination"]):
            c.problem(path + ("destination",), "expected a path outside the source (and the source outside it)")
        marker = item.get("require_marker")
        if marker is not None and ".." in PurePosixPath(marker).parts:
            c.problem(path + ("require_marker",), "expected a file name inside the source, without '..'")
        jobs[name] = SyncJob(
            name=name, source=item["source"], destination=item["destination"], schedule=item["schedule"],
            exclude=tuple(item.get("exclude", ())), bwlimit=item.get("bwlimit"),
            max_delete=item.get("max_delete"), hard_links=item.get("hard_links", False),
            acls=item.get("acls", False), xattrs=item.get("xattrs", False),
            require_marker=marker, partial_is_error=item.get("partial_is_error", False),
        )
    return jobs


def build_scrub(c: Checker) -> dict[str, ScrubJob]:
    jobs: dict[str, ScrubJob] = {}
    databases: dict[str, str] = {}
    for name, item in c.clean("scrub").items():
        path: Path = ("scrub", name)
        directory = PurePosixPath(item["directory"])
        database = directory / item["database"]  # an absolute DATABASE replaces directory
        refused = None if ".." in database.parts else database_problem(str(directory), str(database))
        if ".." in database.parts or directory.is_relative_to(database):
            c.problem(path + ("database",), "expected a directory of its own (not DIRECTORY or above it, no '..')")
        elif str(database) in databases:
            c.problem(path + ("database",), f"already the database of scrub {databases[str(database)]}; "
                      "expected one database per job")
        elif refused:
            c.problem(path + ("database",), refused)
        databases[str(database)] = name
        older = item.get("verify_older_than", "0s")
        jobs[name] = ScrubJob(
            name=name, directory=str(directory), database=str(database),
            redundancy=int(item["redundancy"].rstrip("%")), schedule=item["schedule"],
            exclude=tuple(item.get("exclude", ())), verify_percent=item.get("verify_percent", 100),
            verify_older_than_s=int(older[:-1]) * DURATION_UNITS[older[-1]],
            nice=item.get("nice", 10), ionice=item.get("ionice", "idle"), max_delete=item.get("max_delete"),
        )
    return jobs


def build_smtp(c: Checker) -> Smtp | None:
    if "smtp" not in c.raw:
        return None
    fields = c.clean("smtp")
    if "host" not in fields:
        return None  # the schema has reported it
    password = c.secret(fields, ("smtp",), "username given without a password: expected "
                        "SMTP_PASSWORD or smtp.password" if "username" in fields else None)
    security = fields.get("security", "starttls")
    return Smtp(
        host=fields["host"], port=fields.get("port", SMTP_DEFAULT_PORTS[security]),
        username=fields.get("username"), password=password, sender=fields.get("from"), security=security,
    )


def build_notify(c: Checker, smtp: Smtp | None) -> dict[str, NotifyTarget]:
    targets: dict[str, NotifyTarget] = {}
    for name, item in c.clean("notify").items():
        path: Path = ("notify", name)
        kind, target = item["type"], item["target"]
        # Targets are not echoed: webhook and ping URLs carry tokens.
        if kind in ("webhook", "healthchecks") and not re.match(r"^https?://\S+$", target):
            c.problem(path + ("target",), "expected an http:// or https:// URL")
        elif kind == "apprise" and not URL.match(target):
            c.problem(path + ("target",), "expected an Apprise URL such as tgram://TOKEN/CHAT")
        elif kind == "mailbox":
            if not EMAIL.match(target):
                c.problem(path + ("target",), "expected an email address")
            if smtp is None:
                c.problem(path, "a mailbox needs SMTP settings: expected SMTP_HOST or smtp.host")
        on = tuple(s for s in STATUSES if s in item.get("on", STATUSES))
        targets[name] = NotifyTarget(name=name, type=kind, target=target, on=on, jobs=tuple(item.get("jobs", ())))
    return targets


def validate(raw: dict[str, Any], origins: Origins) -> tuple[Config | None, list[str]]:
    """The model and no problems, or None and every problem found."""
    c = Checker(raw, origins)
    c.check_schema()
    server = build_server(c)
    users, shares = build_users_and_shares(c)
    smtp = build_smtp(c)
    config = Config(
        server=server, users=users, shares=shares, mounts=build_mounts(c),
        sync=build_sync(c), scrub=build_scrub(c), notify=build_notify(c, smtp), smtp=smtp,
    )
    return (None, c.problems) if c.problems else (config, [])
