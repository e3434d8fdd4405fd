"""A real SMB client for the tests: Samba's smbclient (and smbcacls, and Samba's Python
bindings), run as a subprocess."""
from __future__ import annotations

import os
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


# Reads each path exactly as given, where smbclient would first resolve `..` itself. Runs in
# the system Python, which has Debian's python3-samba.
RAW_READ = """
import os, sys
from samba import credentials
from samba.samba3 import libsmb_samba_internal as libsmb, param
lp = param.get_context()
lp.load("/dev/null")
creds = credentials.Credentials()
creds.guess(lp)
creds.set_username(os.environ["SMB_USER"])
creds.set_password(os.environ["SMB_PASSWORD"])
creds.set_kerberos_state(credentials.DONT_USE_KERBEROS)
conn = libsmb.Conn("127.0.0.1", sys.argv[1], lp, creds)
for path in sys.argv[2:]:
    try:
        conn.loadfile(path)
        print("read", path)
    except Exception as refused:
        print("refused", path, refused)
"""


def raw_read(server: Server, share: str, user: str, password: str,
             paths: list[str]) -> subprocess.CompletedProcess[str]:
    """Try to read each path of share with Samba's Python bindings, which send a path as it is
    given: one line per path, `read PATH` or `refused PATH STATUS`. Like smbcacls, they connect
    to port 445 on 127.0.0.1 only, so server is one reached from inside the container."""
    if (server.host, server.port) != ("127.0.0.1", 445):
        raise ValueError(f"Samba's Python bindings connect to 127.0.0.1:445 only, not {server.host}:{server.port}")
    env = {**os.environ, "SMB_USER": user, "SMB_PASSWORD": password}
    argv = [*server.prefix(), "/usr/bin/python3", "-c", RAW_READ, share, *paths]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr
