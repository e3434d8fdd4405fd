"""The one place command lines for the container's accounts are built (shadow's tools)."""

from __future__ import annotations

from nasbox.samba.passwd import MARK

NOLOGIN = "/usr/sbin/nologin"


def add_group(gid: int, name: str) -> list[str]:
    return ["groupadd", "--gid", str(gid), name]


def add_user(name: str, uid: int, group: str) -> list[str]:
    """An account with no home and no login shell, marked as nasbox's own."""
    return [
        "useradd",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        NOLOGIN,
        "--comment",
        MARK,
        "--no-user-group",
        "--gid",
        group,
        "--uid",
        str(uid),
        name,
    ]


def change_user(name: str, uid: int, group: str) -> list[str]:
    return ["usermod", "--uid", str(uid), "--gid", group, name]
