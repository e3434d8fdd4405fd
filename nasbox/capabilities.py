"""Which Linux capabilities nasbox needs for what is configured, and what it says at start about
the ones the container lacks or holds in vain.

One table (FEATURES) says which feature needs which capability; the container's effective set
is read from /proc/self/status (CapEff). A box that mounts nothing and shows no versions should
not run with SYS_ADMIN, which lets a process do nearly anything root can.

Mounting (CIFS, the read-only views of versions) also needs an AppArmor profile that allows
mount: Docker's default profile, docker-default, forbids it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nasbox.config.model import Config
from nasbox.mounttable import holding, mount_table
from nasbox.samba.previous_versions import shown_jobs

log = logging.getLogger(__name__)

STATUS = Path("/proc/self/status")
APPARMOR_PROFILE = (Path("/proc/self/attr/apparmor/current"), Path("/proc/self/attr/current"))
# Bit numbers of the capabilities nasbox asks for (linux/capability.h).
BITS = {"DAC_READ_SEARCH": 2, "NET_ADMIN": 12, "SYS_ADMIN": 21}


def mounted_names(config: Config) -> str:
    return ", ".join(sorted(config.mounts))


def snapshot_jobs(config: Config) -> list[str]:
    """Versioned sync jobs whose destination lies on btrfs: their versions are snapshots, and
    removing a snapshot needs SYS_ADMIN (unless mounted with user_subvol_rm_allowed)."""
    table = mount_table()
    found = []
    for job in config.sync.values():
        on = holding(PurePosixPath(os.path.realpath(job.destination)), table) if job.versions else None
        if on is not None and on.fstype == "btrfs":
            found.append(job.name)
    return sorted(found)


@dataclass(frozen=True)
class Feature:
    capabilities: tuple[str, ...]
    # What the configuration asks of it, as a phrase ("" when it asks nothing of it).
    asked: Callable[[Config], str]
    # What does not happen without the capabilities, given that phrase.
    lost: Callable[[str], str]
    mounts: bool = False  # needs the mount system call (AppArmor)


FEATURES = (
    Feature(
        ("SYS_ADMIN", "DAC_READ_SEARCH"),
        mounted_names,
        lambda names: f"the CIFS mounts {names} cannot be mounted, and their jobs are skipped",
        mounts=True,
    ),
    Feature(
        ("SYS_ADMIN",),
        lambda config: ", ".join(sorted(shown_jobs(config))),
        lambda jobs: f"shares show no Previous Versions of the sync jobs {jobs}",
        mounts=True,
    ),
    Feature(
        ("SYS_ADMIN",),
        lambda config: ", ".join(snapshot_jobs(config)),
        lambda jobs: f"old versions of the sync jobs {jobs}, btrfs snapshots, cannot be removed",
    ),
    Feature(
        ("NET_ADMIN",),
        lambda config: "always",  # the login ban is always on
        lambda _: "addresses that keep failing to log in are not banned",
    ),
)


def effective(status: str) -> set[str]:
    """The capabilities of BITS in the CapEff line of /proc/PID/status text."""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            mask = int(line.split()[1], 16)
            return {name for name, bit in BITS.items() if mask >> bit & 1}
    return set()


def held() -> set[str]:
    return effective(STATUS.read_text(encoding="ascii"))


def apparmor_profile() -> str | None:
    """This process's AppArmor profile ("docker-default (enforce)", "unconfined"), or None
    where AppArmor is off."""
    for path in APPARMOR_PROFILE:
        try:
            text = path.read_text(encoding="utf-8", errors="replace").strip("\0\n ")
        except OSError:
            continue
        return text or None
    return None


def report(config: Config, holding_now: set[str], profile: str | None) -> list[tuple[int, str]]:
    """(log level, message) for each capability the configuration needs and the container
    lacks, each it holds that nothing configured needs, and an AppArmor profile in the way."""
    lines: list[tuple[int, str]] = []
    needed: set[str] = set()
    mounting = []
    for feature in FEATURES:
        asked = feature.asked(config)
        if not asked:
            continue
        needed |= set(feature.capabilities)
        if feature.mounts:
            mounting.append(feature.lost(asked))
        missing = [cap for cap in feature.capabilities if cap not in holding_now]
        if missing:
            names = " and ".join(missing)
            lines.append(
                (
                    logging.WARNING,
                    f"no {names} capabilit{'ies' if len(missing) > 1 else 'y'}: {feature.lost(asked)} "
                    f"(add {names} to cap_add)",
                )
            )
    for cap in sorted(holding_now - needed):
        lines.append((logging.INFO, f"the container holds {cap}, which nothing configured needs: drop it from cap_add"))
    if mounting and profile is not None and not profile.startswith("unconfined"):
        lines.append(
            (
                logging.WARNING,
                f"the AppArmor profile {profile} forbids mounts: {'; '.join(mounting)} "
                "(add security_opt apparmor:unconfined)",
            )
        )
    return lines


def start_notice(config: Config) -> None:
    """Said once at the container's start."""
    for level, message in report(config, held(), apparmor_profile()):
        log.log(level, message)
