"""A real SMB client for the tests: Samba's smbclient, run as a subprocess."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Server:
    host: str
    port: int


def smbclient(server: Server, share: str | None, user: str | None, password: str | None,
              commands: str | None = None, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run smbclient against //host/share (or list shares with share=None).
    user=None: anonymous (-N)."""
    argv = ["smbclient", "-p", str(server.port)]
    argv += ["-N"] if user is None else ["-U", f"{user}%{password or ''}"]
    argv += [f"--option={o}" for o in options]
    argv += ["-L", server.host] if share is None else [f"//{server.host}/{share}"]
    if commands is not None:
        argv += ["-c", commands]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr
