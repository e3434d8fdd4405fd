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
