"""Banning addresses that keep failing to log in (CONTRACT 6, the seed's fail2ban: 5 failures,
1 hour).

smbd runs under `nasbox smbd`, which passes every line smbd logs on to stdout (marked as
smbd's) and watches its JSON authentication audit (`auth_json_audit:2` in smb.conf) for
failures. An address that fails MAX_FAILURES times within FIND_WINDOW_S is rejected on port
445 for BAN_S, with iptables in the container's own network namespace: that needs the
NET_ADMIN capability; without it, nasbox says so at start and bans nothing.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from nasbox import commands

log = logging.getLogger(__name__)

MAX_FAILURES = 5
FIND_WINDOW_S = 600.0
BAN_S = 3600.0

# {"timestamp": "...", "type": "Authentication", "Authentication": {..., "status":
#   "NT_STATUS_WRONG_PASSWORD", "remoteAddress": "ipv4:172.17.0.1:51936", ...}}
# The JSON line, not the human one (`Auth: ... user [NAME] ... remote host [ADDRESS] mapped to
# [NAME]`): there the client's user and workstation names stand unquoted beside the status
# and the address, so a name holding `remote host [ipv4:10.0.0.9:1]` would pose as them.
AUDIT_PREFIX = '{"timestamp": '
SMBD_TAG = "smbd: "


def is_json_audit(line: str) -> bool:
    return line.startswith(AUDIT_PREFIX)


def failed_login(line: str) -> str | None:
    """The address of a failed login that a JSON audit line reports, else None."""
    if not is_json_audit(line):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    auth = event.get("Authentication")
    if event.get("type") != "Authentication" or not isinstance(auth, dict):
        return None
    status, remote = auth.get("status"), auth.get("remoteAddress")
    if not isinstance(status, str) or status == "NT_STATUS_OK" or not isinstance(remote, str):
        return None
    family, _, address_and_port = remote.partition(":")
    if family not in ("ipv4", "ipv6"):
        return None
    try:
        return str(ipaddress.ip_address(address_and_port.rpartition(":")[0].strip("[]")))
    except ValueError:
        return None


def tagged(line: str) -> str:
    """A line of smbd's log as nasbox passes it on: smbd writes names clients chose (a share
    name holding a newline ends up on a line of its own), so every line it writes is marked
    as smbd's and none can pass for a record of nasbox's or the supervisor's."""
    return f"{SMBD_TAG}{line}"


def iptables(address: str) -> str:
    return "ip6tables" if ipaddress.ip_address(address).version == 6 else "iptables"


def rule(address: str) -> list[str]:
    return ["INPUT", "-s", address, "-p", "tcp", "--dport", "445", "-j", "REJECT", "--reject-with", "tcp-reset"]


def firewall_available() -> bool:
    """Whether this container may change its firewall (it has NET_ADMIN)."""
    try:
        return commands.run(["iptables", "-S", "INPUT"], check=False).returncode == 0
    except FileNotFoundError:
        return False


@dataclass
class Banner:
    """Counts failures per address and decides bans; the firewall does the rest."""

    failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    banned: dict[str, float] = field(default_factory=dict)  # address -> when the ban ends

    def failure(self, address: str, now: float) -> bool:
        """Record a failure; True when the address is to be banned now."""
        if address in self.banned:
            return False
        times = self.failures[address]
        times.append(now)
        while times and times[0] < now - FIND_WINDOW_S:
            times.popleft()
        if len(times) < MAX_FAILURES:
            return False
        del self.failures[address]
        self.banned[address] = now + BAN_S
        return True

    def expired(self, now: float) -> list[str]:
        ended = [a for a, until in self.banned.items() if until <= now]
        for address in ended:
            del self.banned[address]
        return ended


def ban(address: str) -> None:
    commands.run([iptables(address), "-I", *rule(address)])
    log.warning("banned %s for %d minutes after %d failed logins", address, BAN_S // 60, MAX_FAILURES)


def unban(address: str) -> None:
    commands.run([iptables(address), "-D", *rule(address)], check=False)
    log.info("ban of %s ended", address)


def guard_smbd(smbd_argv: list[str]) -> int:
    """Run smbd, pass its log on, ban repeat offenders; stop smbd on SIGTERM."""
    enforce = firewall_available()
    banner = Banner()
    lock = threading.Lock()
    # Files clients create get their modes from the share's masks, not from nasbox's private umask.
    smbd = subprocess.Popen(smbd_argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", bufsize=1, umask=0o022)
    signal.signal(signal.SIGTERM, lambda *_: smbd.terminate())

    def lift_expired_bans() -> None:
        while smbd.poll() is None:
            time.sleep(10)
            with lock:
                for address in banner.expired(time.time()):
                    unban(address)

    threading.Thread(target=lift_expired_bans, daemon=True).start()
    for line in smbd.stdout:  # type: ignore[union-attr]
        if not is_json_audit(line):  # the human audit line beside it says the same to people
            sys.stdout.write(tagged(line))
            sys.stdout.flush()
        address = failed_login(line)
        if address and enforce:
            with lock:
                if banner.failure(address, time.time()):
                    ban(address)
    with lock:
        for address in list(banner.banned):
            unban(address)
    return smbd.wait()
