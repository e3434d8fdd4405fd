"""The one place mount command lines are built. Never a password in them: mount.cifs reads
it from a credentials file."""
from __future__ import annotations


def mount_cifs(unc: str, mountpoint: str, options: str) -> list[str]:
    return ["mount", "-t", "cifs", unc, mountpoint, "-o", options]


def unmount(mountpoint: str) -> list[str]:
    return ["umount", mountpoint]
