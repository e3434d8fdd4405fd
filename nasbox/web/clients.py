"""Connected clients and open files, as smbstatus reports them."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from nasbox import commands
from nasbox.samba import samba_cmds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clients:
    sessions: list[dict[str, str]] = field(default_factory=list)  # user, machine, dialect, encryption
    shares: list[dict[str, str]] = field(default_factory=list)  # share, machine, since
    open_files: list[dict[str, str]] = field(default_factory=list)  # share, file
    error: str | None = None  # why smbstatus could not tell


def parse(document: dict[str, Any]) -> Clients:
    sessions = [
        {
            "user": str(s.get("username", "")),
            "machine": str(s.get("remote_machine") or s.get("hostname", "")),
            "dialect": str(s.get("session_dialect", "")),
            "encryption": str((s.get("encryption") or {}).get("cipher", "")) or "-",
        }
        for s in (document.get("sessions") or {}).values()
    ]
    shares = [
        {
            "share": str(t.get("service", "")),
            "machine": str(t.get("machine", "")),
            "since": str(t.get("connected_at", "")),
        }
        for t in (document.get("tcons") or {}).values()
    ]
    open_files = [
        {"share": str(f.get("service_path", "")), "file": str(f.get("filename", ""))}
        for f in (document.get("open_files") or {}).values()
    ]
    return Clients(sessions, shares, open_files)


def clients() -> Clients:
    try:
        completed = commands.run(samba_cmds.smbstatus_json(), check=False, timeout=10, separate_stderr=True)
        # It prints notes such as "locking.tdb not initialised" before the JSON.
        start = completed.stdout.find("{")
        if completed.returncode != 0 or start < 0:
            return Clients(error=f"smbstatus exited {completed.returncode}")
        return parse(json.loads(completed.stdout[start:]))
    except (OSError, ValueError) as e:
        log.warning("smbstatus: %s", e)
        return Clients(error=f"smbstatus failed: {e}")
