"""Banning addresses that keep failing to log in: 5 failures within 10 minutes, banned for an
hour.

smbd runs under `nasbox smbd`, which passes every line smbd logs on to stdout (marked as
smbd's) and watches its JSON authentication audit (`auth_json_audit:2` in smb.conf) for
failures. An address that fails MAX_FAILURES times within FIND_WINDOW_S is rejected on port
445 for BAN_S, with iptables in the container's own network namespace: that needs the
NET_ADMIN capability; without it, nasbox says so at start and bans nothing.

The container's gateways are never banned: behind Docker's userland proxy every client
arrives from the gateway, so banning it would shut out everyone, the host included. Failures
from there are reported instead, and `nasbox status` shows that the ban cannot see the
clients' addresses. The ban keeps its state in STATE_FILE for `nasbox status`.

Other sign-ins (the web dashboard's) report their failures with report_failure: one address
a line in REPORTED_FILE, which the ban takes in at its next look (every CHECK_S) and counts
as smbd's own failures.
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
from pathlib import Path
from typing import Any

from nasbox import capabilities, commands, locks, routes, state
from nasbox.samba import firewall_cmds

log = logging.getLogger(__name__)

MAX_FAILURES = 5
FIND_WINDOW_S = 600.0
BAN_S = 3600.0
STATE_FILE = "login-ban.json"
REPORTED_FILE = "login-failures"
CHECK_S = 10.0

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
        return plain_address(address_and_port.rpartition(":")[0].strip("[]"))
    except ValueError:
        return None


def tagged(line: str) -> str:
    """A line of smbd's log as nasbox passes it on: smbd writes names clients chose (a share
    name holding a newline ends up on a line of its own), so every line it writes is marked
    as smbd's and none can pass for a record of nasbox's or the supervisor's."""
    return f"{SMBD_TAG}{line}"


def plain_address(text: str) -> str:
    """An address as the ban compares them: without an IPv6 zone, IPv4-mapped IPv6 as IPv4."""
    address = ipaddress.ip_address(text.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


def firewall_available() -> bool:
    """Whether this container may change its firewall (it has NET_ADMIN)."""
    try:
        return commands.run(firewall_cmds.list_rules(), check=False).returncode == 0
    except FileNotFoundError:
        return False


@dataclass
class Banner:
    """Counts failures per address and decides bans; the firewall does the rest."""

    gateways: frozenset[str] = frozenset()  # never banned
    failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    banned: dict[str, float] = field(default_factory=dict)  # address -> when the ban ends
    gateway_warned_at: float | None = None  # the last report of failures from a gateway

    def failure(self, address: str, now: float) -> bool:
        """Record a failure; True when the address is to be banned now. A gateway never is."""
        if address in self.banned or address in self.gateways:
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

    def gateway_failure(self, address: str, now: float) -> bool:
        """Whether address is a gateway whose failure is to be reported now: the first one, then
        once per window."""
        if address not in self.gateways:
            return False
        due = self.gateway_warned_at is None or now - self.gateway_warned_at >= FIND_WINDOW_S
        if due:
            self.gateway_warned_at = now
        return due

    def expired(self, now: float) -> list[str]:
        ended = [a for a, until in self.banned.items() if until <= now]
        for address in ended:
            del self.banned[address]
        return ended


def ban(address: str) -> None:
    commands.run(firewall_cmds.ban(address))
    log.warning("banned %s for %d minutes after %d failed logins", address, BAN_S // 60, MAX_FAILURES)


def unban(address: str) -> None:
    commands.run(firewall_cmds.unban(address), check=False)
    log.info("ban of %s ended", address)


def warn_gateway(address: str) -> None:
    log.warning(
        "failed logins come from %s, the container's gateway: clients reach smbd through "
        "Docker's proxy, so their real addresses are unknown and nobody is banned for them "
        "(the ban needs real client addresses: host networking, or Docker's userland proxy "
        "disabled)",
        address,
    )


def start_notice() -> None:
    """Said once at the container's start: what the ban can and cannot do here (a missing
    NET_ADMIN capability is said by nasbox.capabilities)."""
    if not firewall_available():
        if "NET_ADMIN" in capabilities.held():
            log.warning("login ban: iptables fails here; addresses that keep failing to log in are not banned")
        return
    log.info(
        "login ban: %d failed logins within %d minutes ban an address for %d minutes",
        MAX_FAILURES,
        FIND_WINDOW_S // 60,
        BAN_S // 60,
    )
    gateways = routes.gateways()
    if gateways:
        log.info(
            "login ban: never bans the gateway %s; behind Docker's userland proxy every client "
            "comes from there, so the ban needs real client addresses (host networking, or the "
            "userland proxy disabled)",
            ", ".join(sorted(gateways)),
        )


def state_file() -> Path:
    return state.run_dir() / STATE_FILE


def save_state(enforce: bool, banner: Banner) -> None:
    state.write_json(
        state_file(),
        {
            "enforcing": enforce,
            "gateways": sorted(banner.gateways),
            "banned": banner.banned,
            "gateway_warned_at": banner.gateway_warned_at,
        },
    )


def status() -> dict[str, Any]:
    """The ban's state for `nasbox status`: in words, why, its gateways and current bans."""
    saved = state.read_json(state_file(), None)
    if saved is None:
        return {"state": "not running", "detail": "smbd's login ban has not started", "gateways": [], "banned": []}
    gateways = ", ".join(saved["gateways"])
    if not saved["enforcing"]:
        words, detail = "inactive", "no NET_ADMIN capability"
    elif saved["gateway_warned_at"] is not None:
        words, detail = (
            "cannot see client addresses",
            (f"behind Docker's proxy: failed logins arrive from the gateway {gateways}, which is never banned"),
        )
    else:
        words, detail = "active", f"never bans the gateway {gateways}" if gateways else ""
    return {"state": words, "detail": detail, "gateways": saved["gateways"], "banned": sorted(saved["banned"])}


def reported_file() -> Path:
    return state.run_dir() / REPORTED_FILE


def report_failure(address: str) -> None:
    """A failed sign-in elsewhere than smbd (the web dashboard), counted by the running ban."""
    path = reported_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with locks.locked(path.with_suffix(".lock")), open(path, "a", encoding="utf-8") as f:
        f.write(plain_address(address) + "\n")


def take_reported_failures() -> list[str]:
    """The addresses report_failure wrote since the last look, each a valid address."""
    path = reported_file()
    if not path.exists():
        return []
    with locks.locked(path.with_suffix(".lock")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        path.unlink()
    found = []
    for line in lines:
        try:
            found.append(plain_address(line))
        except ValueError:
            continue
    return found


def run_smbd(smbd_argv: list[str]) -> int:
    """Run smbd, pass its log on, ban repeat offenders; stop smbd on SIGTERM."""
    enforce = firewall_available()
    banner = Banner(gateways=frozenset(routes.gateways()))
    lock = threading.Lock()
    save_state(enforce, banner)
    # Not commands.run, which waits for the end: smbd runs for as long as the container, its
    # log read line by line. Files clients create get their modes from the share's masks,
    # not from nasbox's private umask.
    smbd = subprocess.Popen(
        smbd_argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1, umask=0o022
    )
    signal.signal(signal.SIGTERM, lambda *_: smbd.terminate())

    def count_failure(address: str) -> None:
        with lock:
            now = time.time()
            if banner.gateway_failure(address, now):
                warn_gateway(address)
                save_state(enforce, banner)
            elif banner.failure(address, now):
                ban(address)
                save_state(enforce, banner)

    def lift_expired_bans() -> None:
        while smbd.poll() is None:
            time.sleep(CHECK_S)
            with lock:
                ended = banner.expired(time.time())
                for address in ended:
                    unban(address)
                if ended:
                    save_state(enforce, banner)
            for address in take_reported_failures():
                if enforce:
                    count_failure(address)

    threading.Thread(target=lift_expired_bans, daemon=True).start()
    for line in smbd.stdout:  # type: ignore[union-attr]
        if not is_json_audit(line):  # the human audit line beside it says the same to people
            sys.stdout.write(tagged(line))
            sys.stdout.flush()
        address = failed_login(line)
        if address is not None and enforce:
            count_failure(address)
    with lock:
        for address in list(banner.banned):
            unban(address)
    state_file().unlink(missing_ok=True)
    return smbd.wait()
