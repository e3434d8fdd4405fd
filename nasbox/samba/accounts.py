"""Container accounts for the configured users and their Samba passwords.

Each user is a container account with no login shell, in the group of GID PGID. Its UID is
the configured `uid`, else the one it was given before (remembered in /config/state so that
file ownership on the host stays right across restarts and re-creations), else the first
free UID from PUID. A UID once given is never handed to another user.
"""

from __future__ import annotations

import grp
import logging
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nasbox import commands, state
from nasbox.config import Config
from nasbox.samba import account_cmds, samba_cmds
from nasbox.samba.passwd import foreign_accounts

log = logging.getLogger(__name__)

GROUP = "nasbox"
UIDS_FILE = "uids.json"


@dataclass(frozen=True)
class Plan:
    uids: dict[str, int]  # every configured user
    remembered: dict[str, int]  # what the state file will hold
    gid: int


def assign_uids(
    explicit: Mapping[str, int | None], remembered: Mapping[str, int], foreign: set[int], first: int
) -> dict[str, int]:
    """UIDs for the users in explicit (name -> configured uid or None)."""
    taken = foreign | {u for u in explicit.values() if u is not None}
    uids: dict[str, int] = {}
    for name, uid in sorted(explicit.items()):
        if uid is not None:
            uids[name] = uid
        elif name in remembered and remembered[name] not in taken:
            uids[name] = remembered[name]
    taken |= set(remembered.values())
    candidate = first
    for name in sorted(set(explicit) - set(uids)):
        while candidate in taken:
            candidate += 1
        uids[name] = candidate
        taken.add(candidate)
    return uids


def plan(config: Config, state_dir: Path) -> Plan:
    """Decide every account before changing any (validation has refused the names of the
    image's own accounts)."""
    foreign = foreign_accounts()
    remembered: dict[str, int] = state.read_json(state_dir / UIDS_FILE, {})
    uids = assign_uids(
        {n: u.uid for n, u in config.users.items()}, remembered, set(foreign.values()), config.server.puid
    )
    for name, uid in uids.items():
        if name in remembered and remembered[name] != uid:
            log.warning("user %s: uid changes from %d to %d", name, remembered[name], uid)
    return Plan(uids=uids, remembered={**remembered, **uids}, gid=config.server.pgid)


def apply(config: Config, account_plan: Plan, state_dir: Path) -> None:
    try:
        group = grp.getgrgid(account_plan.gid).gr_name
    except KeyError:
        commands.run(account_cmds.add_group(account_plan.gid, GROUP))
        group = GROUP
    for name, uid in sorted(account_plan.uids.items()):
        try:
            current = pwd.getpwnam(name)
        except KeyError:
            commands.run(account_cmds.add_user(name, uid, group))
            continue
        if (current.pw_uid, current.pw_gid) != (uid, account_plan.gid):
            commands.run(account_cmds.change_user(name, uid, group))
    state.write_json(state_dir / UIDS_FILE, account_plan.remembered)
    set_samba_passwords(config)


def set_samba_passwords(config: Config, conf: str = samba_cmds.SMB_CONF) -> None:
    """Samba's database holds exactly the configured users with their configured passwords."""
    for user in config.users.values():
        commands.run(samba_cmds.set_password(user.name, conf), stdin=f"{user.password}\n{user.password}\n")
    listed = commands.run(samba_cmds.list_users(conf)).stdout.splitlines()
    for name in {line.split(":", 1)[0] for line in listed if ":" in line} - set(config.users):
        commands.run(samba_cmds.delete_user(name, conf))
        log.info("user %s: removed from Samba (no longer configured)", name)
