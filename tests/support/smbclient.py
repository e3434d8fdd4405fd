"""A real SMB client for the tests: Samba's smbclient (and smbcacls), run as a subprocess."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    # A network namespace to connect from (/proc/PID/ns/net): the client then has that
    # namespace's address, as a program in that container would.
    netns: str | None = None

    def prefix(self) -> list[str]:
        return [] if self.netns is None else ["nsenter", f"--net={self.netns}"]


def credentials(user: str | None, password: str | None) -> list[str]:
    return ["-N"] if user is None else ["-U", f"{user}%{password or ''}"]


def smbclient(server: Server, share: str | None, user: str | None, password: str | None,
              commands: str | None = None, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run smbclient against //host/share (or list shares with share=None).
    user=None: anonymous (-N)."""
    argv = [*server.prefix(), "smbclient", "-p", str(server.port), *credentials(user, password)]
    argv += [f"--option={o}" for o in options]
    argv += ["-L", server.host] if share is None else [f"//{server.host}/{share}"]
    if commands is not None:
        argv += ["-c", commands]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def smbcacls(server: Server, share: str, user: str, password: str, path: str,
             *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run smbcacls on //host/share/path. It has no port option: it always connects to 445, so
    server is usually one reached from inside the container's network namespace."""
    if server.port != 445:
        raise ValueError(f"smbcacls connects to port 445 only, not {server.port}")
    argv = [*server.prefix(), "smbcacls", f"//{server.host}/{share}", path, *credentials(user, password), *arguments]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr
