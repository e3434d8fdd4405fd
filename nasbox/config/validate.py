"""Check the merged configuration against the JSON Schema and nasbox's own rules, and build
the model: server, users and shares, mounts, notifications here; each job kind's section in
its own package (nasbox.kinds). Every problem is collected, so the user sees all of them at
once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from nasbox import mount_cmds, paths, state
from nasbox.config.checker import Checker
from nasbox.config.model import (
    ADMIN,
    STATUSES,
    Config,
    Mount,
    NotifyTarget,
    Server,
    Share,
    Smtp,
    User,
    Web,
)
from nasbox.config.sources import KeyPath, Origins
from nasbox.durations import seconds
from nasbox.kinds import KINDS
from nasbox.notify import TYPES
from nasbox.samba import recycle, smbconf
from nasbox.samba.literal import not_literal
from nasbox.samba.options import PassedThrough, passed_through
from nasbox.samba.passwd import foreign_accounts
from nasbox.samba.previous_versions import shown_versions

# Section names Samba gives a meaning of its own.
RESERVED_SHARE_NAMES = {"global", "homes", "printers", "print$", "ipc$"}
SMTP_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def build_server(c: Checker, users: dict[str, User]) -> Server:
    fields = c.clean("server")
    fields["hosts_allow"] = tuple(fields.get("hosts_allow", ()))
    if "space_warning" in fields:
        fields["space_warning"] = int(fields["space_warning"].rstrip("%"))
    fields["discovery"] = tuple(fields.get("discovery", ()))
    fields["web"] = build_web(c, fields.get("web", {}), users)
    passed = passed_through(c, ("server", "samba_options"), fields.pop("samba_options", {}), "global")
    return Server(**fields, samba_options=passed.options, vfs_modules=passed.modules)


def build_web(c: Checker, fields: dict[str, Any], users: dict[str, User]) -> Web:
    where: KeyPath = ("server", "web")
    for i, viewer in enumerate(fields.get("viewers", ())):
        if viewer == ADMIN:
            c.problem(where + ("viewers", i), f"{ADMIN} is the administrator's sign-in name; expected another user")
        elif viewer not in users:
            c.problem(where + ("viewers", i), f"{viewer} is not a configured user; expected a name under users")
    return Web(
        port=fields.get("port", Web.port),
        admin_password=c.secret(fields, where, None, key="admin_password"),
        viewers=tuple(fields.get("viewers", ())),
        metrics_token=c.secret(fields, where, None, key="metrics_token"),
    )


@dataclass
class ShareItem:
    """One share item as given (a read and a write item of one name are merged later)."""

    where: KeyPath
    fields: dict[str, Any]
    members: list[str]  # its user names, passwords stripped


# Where each user's password was given: user -> (password, where).
Passwords = dict[str, tuple[str, KeyPath]]


def build_users_and_shares(c: Checker) -> tuple[dict[str, User], dict[str, Share]]:
    image_accounts = foreign_accounts()
    passwords, uids = read_users(c, image_accounts)
    items = read_share_items(c, image_accounts, passwords)
    check_every_member_has_a_password(c, items, passwords)
    check_unique_uids(c, uids)
    users = {name: User(name=name, password=pw, uid=uids.get(name)) for name, (pw, _) in passwords.items()}
    return users, merge_shares(c, items)


def read_users(c: Checker, image_accounts: dict[str, int]) -> tuple[Passwords, dict[str, int]]:
    passwords: Passwords = {}
    uids: dict[str, int] = {}
    for name, item in c.clean("users").items():
        if name in image_accounts:
            c.problem(("users", name), f"{name!r} is an account of the image; expected another user name")
        password = c.secret(item, ("users", name), "no password: expected password or password_file")
        if password is not None:
            passwords[name] = (password, ("users", name))
        if "uid" in item:
            uids[name] = item["uid"]
    return passwords, uids


def read_share_items(c: Checker, image_accounts: dict[str, int], passwords: Passwords) -> list[ShareItem]:
    """The share items with usable names; `user:password` members add to passwords."""
    items = []
    for key, fields in c.clean("shares").items():
        where: KeyPath = ("shares", key)
        name = fields.get("name", key)
        if name.lower() in RESERVED_SHARE_NAMES:
            c.problem(where, f"share name {name!r} is reserved by Samba; expected another name")
            continue
        members = []
        for i, entry in enumerate(fields["users"]):
            user, has_password, password = entry.partition(":")
            if user in image_accounts:
                c.problem(where + ("users", i), f"{user!r} is an account of the image; expected another user name")
            members.append(user)
            if has_password:
                given = passwords.setdefault(user, (password, where + ("users", i)))
                if given[0] != password:
                    c.problem(
                        where + ("users", i),
                        f"user {user} has another password in "
                        f"{c.origins.where(given[1]).rstrip(': ')}; expected one password per user",
                    )
        check_share_paths(c, where, fields["paths"])
        items.append(ShareItem(where, fields, members))
    return items


def check_share_paths(c: Checker, where: KeyPath, directories: list[str]) -> None:
    for i, directory in enumerate(directories):
        if os.path.lexists(directory) and not os.path.isdir(directory):
            c.problem(where + ("paths", i), f"{directory} exists but is not a directory; expected a directory")
        if paths.inside(str(state.home()), directory):
            c.problem(
                where + ("paths", i),
                f"{directory} holds nasbox's own state ({state.home()}); expected a directory that does not",
            )


def check_every_member_has_a_password(c: Checker, items: list[ShareItem], passwords: Passwords) -> None:
    declared = set(c.clean("users"))  # a user whose password_file failed is reported once
    for item in items:
        for i, user in enumerate(item.members):
            if user not in passwords and user not in declared:
                c.problem(
                    item.where + ("users", i),
                    f"user {user} has no password: expected "
                    f"USER_<ID>={user}:PASSWORD, users.{user}.password or {user}:PASSWORD here",
                )


def merge_shares(c: Checker, items: list[ShareItem]) -> dict[str, Share]:
    """One Share per name (case-insensitive, as clients see them): all members may read, the
    write items' members may write; the items must agree on the paths."""
    groups: dict[str, list[ShareItem]] = {}
    for item in items:
        groups.setdefault(item.fields.get("name", item.where[1]).lower(), []).append(item)
    shares: dict[str, Share] = {}
    for first, *others in groups.values():
        for other in others:
            if other.fields["paths"] != first.fields["paths"]:
                c.problem(
                    other.where + ("paths",),
                    f"expected the same paths as the share of the same name "
                    f"in {c.origins.where(first.where).rstrip(': ')}",
                )
        group = [first, *others]
        readers = {u for item in group if item.fields["access"] == "read" for u in item.members}
        writers = {u for item in group if item.fields["access"] == "write" for u in item.members}
        name = first.fields.get("name", first.where[1])
        retention = agreed(c, group, "recycle")
        max_size = agreed(c, group, "time_machine_max_size")
        given = agreed(c, group, "samba_options")
        passed = passed_through(c, given[0].where + ("samba_options",), given[1], "share") if given else PassedThrough()
        shares[name] = Share(
            name=name,
            path=first.fields["paths"][0],
            extra_paths=tuple(first.fields["paths"][1:]),
            read_users=tuple(sorted(readers - writers)),
            write_users=tuple(sorted(writers)),
            comment=next((i.fields["comment"] for i in group if "comment" in i.fields), ""),
            time_machine=any(i.fields.get("time_machine", False) for i in group),
            samba_options=passed.options,
            vfs_modules=passed.modules,
            recycle=retention[1] if retention else "",
            time_machine_max_size=max_size[1] if max_size else "",
        )
        if max_size and not shares[name].time_machine:
            c.problem(max_size[0].where + ("time_machine_max_size",), "expected time_machine: true beside it")
        if retention:
            check_recycle_bin(c, retention[0].where + ("recycle",), shares[name])
    return shares


def agreed(c: Checker, group: list[ShareItem], key: str) -> tuple[ShareItem, Any] | None:
    """The value of key in the items of one share that give it, and the first such item; the
    others must give the same."""
    giving = [item for item in group if key in item.fields]
    for other in giving[1:]:
        if other.fields[key] != giving[0].fields[key]:
            c.problem(
                other.where + (key,),
                f"expected the same {key} as the share of the same name "
                f"in {c.origins.where(giving[0].where).rstrip(': ')}",
            )
    return (giving[0], giving[0].fields[key]) if giving else None


def check_recycle_bin(c: Checker, where: KeyPath, share: Share) -> None:
    if seconds(share.recycle) == 0:
        c.problem(where, "expected a retention above zero, such as 30d")
    if share.time_machine:
        c.problem(
            where,
            "a Time Machine share keeps no recycle bin (Time Machine deletes old backups itself, and its size "
            "limit counts only backups); expected recycle or time_machine, not both",
        )
    problem = recycle.folder_problem(share)
    if problem:
        c.problem(where, problem)


def check_unique_uids(c: Checker, uids: dict[str, int]) -> None:
    taken: dict[int, str] = {}
    for name, uid in sorted(uids.items()):
        if uid in taken:
            c.problem(("users", name, "uid"), f"uid {uid} is already used by user {taken[uid]}; expected a unique uid")
        taken[uid] = name


def build_mounts(c: Checker) -> dict[str, Mount]:
    mounts: dict[str, Mount] = {}
    mountpoints: dict[str, str] = {}
    for name, item in c.clean("mounts").items():
        path: KeyPath = ("mounts", name)
        password = c.secret(
            item,
            path,
            f"no password: expected password or password_file "
            f"(env: CREDENTIALS user:password or MOUNT_{name.upper()}_PASSWORD)",
        )
        if item["mountpoint"] in mountpoints:
            c.problem(
                path + ("mountpoint",),
                f"already used by mount {mountpoints[item['mountpoint']]}; expected a mountpoint of its own",
            )
        mountpoints[item["mountpoint"]] = name
        if password is None:
            continue
        for key in sorted(mount_cmds.CREDENTIAL_OPTIONS & set(item.get("options", {}))):
            c.problem(
                path + ("options", key),
                "credentials are not mount options (the command line and config "
                "show would reveal them); expected username and password or password_file",
            )
        options = tuple(sorted((k, v if isinstance(v, bool) else str(v)) for k, v in item.get("options", {}).items()))
        mounts[name] = Mount(
            name=name,
            mountpoint=item["mountpoint"],
            host=item["host"],
            share=item["share"],
            subdir=item.get("subdir", "/"),
            username=item["username"],
            password=password,
            options=options,
        )
    return mounts


def check_databases_apart(c: Checker, config: Config) -> None:
    """A scrub DATABASE is root's alone: Samba hides one that lies inside a share (by its
    name, which must reach Samba as written), but a share whose path lies inside it would
    serve its parity and catalog, and a sync into it would overwrite them."""
    for job in config.scrub.values():
        for share in config.shares.values():
            if paths.inside(share.path, job.database):
                c.problem(
                    ("scrub", job.name, "database"),
                    f"share {share.name} serves {share.path}, inside this "
                    "database; expected a database no share reaches",
                )
                continue
            where = paths.below(job.database, share.path)
            problem = hiding_problem(PurePosixPath(where).name) if where else None
            if problem:
                c.problem(
                    ("scrub", job.name, "database"),
                    f"share {share.name} holds this database, and Samba "
                    f"cannot hide its name: it holds {problem}; expected another name",
                )
        for sync in config.sync.values():
            if paths.inside(sync.destination, job.database):
                c.problem(
                    ("sync", sync.name, "destination"),
                    f"{sync.destination} lies inside the database of "
                    f"scrub {job.name}; expected a destination outside every parity database",
                )


def check_syncs_outside_nasbox(c: Checker, config: Config) -> None:
    """A sync into nasbox's state, logs or run directory would delete them (rsync --delete)."""
    for sync in config.sync.values():
        for own in map(str, state.own_directories()):
            if paths.inside(sync.destination, own):
                c.problem(
                    ("sync", sync.name, "destination"),
                    f"{sync.destination} lies in nasbox's own {own}; expected a destination outside it",
                )


def check_versioned_destinations(c: Checker, config: Config) -> None:
    """A linked version shares each unchanged file with the mirror: a client writing into a
    file of the destination in place would change it in every version too. So a share that
    reaches a versioned DESTINATION (serves it, lies inside it or holds it) has read users
    only. And a share's folder must reach Samba as written in the versions it shows."""
    for job in config.sync.values():
        if not job.versions:
            continue
        for share in config.shares.values():
            if share.write_users and paths.overlap(share.path, job.destination):
                c.problem(
                    ("sync", job.name, "versions"),
                    f"share {share.name} gives {', '.join(share.write_users)} write access to {share.path}, which "
                    f"reaches {job.destination}: a file changed in place there would change in every version "
                    f"of sync {job.name}; expected only read users on that share",
                )
    for share in config.shares.values():
        shown = shown_versions(share, config)
        problem = not_literal(shown.inside) if shown else None
        if shown and problem:
            c.problem(
                ("sync", shown.job, "versions"),
                f"share {share.name} shows the versions of this job, and Samba cannot find its folder in them "
                f"by the name {shown.inside!r}: it holds {problem}; expected a share path leading to a folder "
                "without it",
            )


def check_samba_options(c: Checker, config: Config) -> None:
    """testparm reads the whole smb.conf that samba_options make (each option was tried alone
    as it was read): options may refuse each other."""
    sections: list[Server | Share] = [config.server, *config.shares.values()]
    if any(section.samba_options or section.vfs_modules for section in sections):
        problem = smbconf.check(config)
        if problem:
            c.problem((), f"samba_options: Samba refuses the smb.conf they make together: {problem}")


def hiding_problem(name: str) -> str | None:
    """Why Samba's veto files could not hide exactly this name, or None: it must reach Samba
    as written, and '*' and '?' are its wildcards (`.par*` would hide the users' own files)."""
    return not_literal(name) or ("a wildcard ('*' or '?')" if {"*", "?"} & set(name) else None)


def build_smtp(c: Checker) -> Smtp | None:
    if "smtp" not in c.raw:
        return None
    fields = c.clean("smtp")
    if "host" not in fields:
        return None  # the schema has reported it
    password = c.secret(
        fields,
        ("smtp",),
        "username given without a password: expected SMTP_PASSWORD or smtp.password" if "username" in fields else None,
    )
    security = fields.get("security", "starttls")
    return Smtp(
        host=fields["host"],
        port=fields.get("port", SMTP_DEFAULT_PORTS[security]),
        username=fields.get("username"),
        password=password,
        sender=fields.get("from"),
        security=security,
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
    users, shares = build_users_and_shares(c)
    server = build_server(c, users)
    smtp = build_smtp(c)
    config = Config(
        server=server,
        users=users,
        shares=shares,
        mounts=build_mounts(c),
        jobs={kind.name: kind.build(c) for kind in KINDS.values()},
        notify=build_notify(c, smtp),
        smtp=smtp,
    )
    check_databases_apart(c, config)
    check_syncs_outside_nasbox(c, config)
    check_versioned_destinations(c, config)
    if not c.problems:
        check_samba_options(c, config)
    return (None, c.problems) if c.problems else (config, [])
