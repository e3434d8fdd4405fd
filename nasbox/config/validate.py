"""Check the merged configuration against the JSON Schema and nasbox's own rules, and build
the model: server, users and shares, mounts, notifications here; each job kind's section in
its own package (nasbox.kinds). Every problem is collected, so the user sees all of them at
once."""
from __future__ import annotations

import os
from typing import Any

from nasbox import paths, state
from nasbox.config.checker import Checker
from nasbox.config.model import (
    STATUSES,
    Config,
    Mount,
    NotifyTarget,
    Server,
    Share,
    Smtp,
    User,
)
from nasbox.config.sources import KeyPath, Origins
from nasbox.kinds import KINDS
from nasbox.notify import TYPES
from nasbox.samba.passwd import foreign_accounts

# Section names Samba gives a meaning of its own.
RESERVED_SHARE_NAMES = {"global", "homes", "printers", "print$", "ipc$"}
SMTP_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def build_server(c: Checker) -> Server:
    fields = c.clean("server")
    fields["hosts_allow"] = tuple(fields.get("hosts_allow", ()))
    return Server(**fields)


def build_users_and_shares(c: Checker) -> tuple[dict[str, User], dict[str, Share]]:
    passwords: dict[str, tuple[str, KeyPath]] = {}  # user -> (password, where it was given)
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

    references: list[tuple[str, KeyPath]] = []
    groups: dict[str, list[tuple[KeyPath, dict[str, Any], list[str]]]] = {}
    for key, item in c.clean("shares").items():
        path: KeyPath = ("shares", key)
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
            if paths.inside(str(state.home()), directory):
                c.problem(path + ("paths", i), f"{directory} holds nasbox's own state ({state.home()}); "
                          "expected a directory that does not")
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
        path: KeyPath = ("mounts", name)
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


def check_databases_apart(c: Checker, config: Config) -> None:
    """A scrub DATABASE is root's alone: Samba hides one that lies inside a share, but a share
    whose path lies inside it would serve its parity and catalog, and a sync into it would
    overwrite them."""
    for job in config.scrub.values():
        for share in config.shares.values():
            if paths.inside(share.path, job.database):
                c.problem(("scrub", job.name, "database"), f"share {share.name} serves {share.path}, inside this "
                          "database; expected a database no share reaches")
        for sync in config.sync.values():
            if paths.inside(sync.destination, job.database):
                c.problem(("sync", sync.name, "destination"), f"{sync.destination} lies inside the database of "
                          f"scrub {job.name}; expected a destination outside every parity database")


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
        path: KeyPath = ("notify", name)
        kind, target = item["type"], item["target"]
        problem = TYPES[kind].check(target)  # never echoes the target: URLs carry tokens
        if problem:
            c.problem(path + ("target",), problem)
        if TYPES[kind].NEEDS_SMTP and smtp is None:
            c.problem(path, f"a {kind} needs SMTP settings: expected SMTP_HOST or smtp.host")
        on = tuple(s for s in STATUSES if s in item.get("on", STATUSES))
        targets[name] = NotifyTarget(name=name, type=kind, target=target, on=on, jobs=tuple(item.get("jobs", ())))
    return targets


def validate(raw: dict[str, Any], origins: Origins) -> tuple[Config | None, list[str]]:
    """The model and no problems, or None and every problem found."""
    c = Checker(raw, origins)
    c.check_schema()
    c.check_text(c.raw)
    server = build_server(c)
    users, shares = build_users_and_shares(c)
    smtp = build_smtp(c)
    config = Config(
        server=server, users=users, shares=shares, mounts=build_mounts(c),
        jobs={kind.name: kind.build(c) for kind in KINDS.values()}, notify=build_notify(c, smtp), smtp=smtp,
    )
    check_databases_apart(c, config)
    return (None, c.problems) if c.problems else (config, [])
