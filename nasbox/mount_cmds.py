"""The one place mount command lines are built. Never a password in them: mount.cifs reads
it from a credentials file."""

from __future__ import annotations

# mount.cifs options that carry credentials (`user=name%password` included): they live in the
# credentials file, never in `-o`, where ps shows them and `config show` would print them.
CREDENTIAL_OPTIONS = frozenset({"user", "username", "pass", "password", "password2", "cred", "credentials"})


def mount_cifs(unc: str, mountpoint: str, options: str) -> list[str]:
    return ["mount", "-t", "cifs", unc, mountpoint, "-o", options]


def unmount(mountpoint: str) -> list[str]:
    return ["umount", mountpoint]


def bind(source: str, target: str) -> list[str]:
    """source shown at target as well (not what is mounted below source)."""
    return ["mount", "--bind", source, target]


def remount_read_only(target: str) -> list[str]:
    """A bind mount at target made read-only: the kernel refuses every change through it."""
    return ["mount", "-o", "remount,bind,ro", target]
