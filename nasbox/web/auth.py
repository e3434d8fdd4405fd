"""Signing in: the administrator (`admin` and server.web.admin_password) may act, viewers
(server.web.viewers, with their users' passwords) may only look. Sessions live in this
process's memory: a restart signs everyone out. Every action carries the session's CSRF
token. Wrong passwords count per address as smbd's failed logins do (nasbox.samba.login_ban):
an address that fails too often is refused here for the ban's time, and reported to the ban
that guards smbd."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from nasbox.config.model import ADMIN, Config
from nasbox.samba import login_ban

SESSION_COOKIE = "nasbox_session"
SESSION_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    user: str
    admin: bool
    csrf: str
    expires: float


def same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def role(config: Config, user: str, password: str) -> bool | None:
    """True for the administrator, False for a viewer, None for a wrong name or password."""
    web = config.server.web
    if user == ADMIN and web.admin_password is not None:
        return True if same(password, web.admin_password) else None
    if user in web.viewers and user in config.users:
        return False if same(password, config.users[user].password) else None
    return None


class Sessions:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, user: str, admin: bool) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self._sessions = {t: s for t, s in self._sessions.items() if s.expires > now}
            self._sessions[token] = Session(user, admin, secrets.token_urlsafe(32), now + SESSION_S)
        return token

    def get(self, token: str | None) -> Session | None:
        with self._lock:
            session = self._sessions.get(token or "")
        return session if session and session.expires > time.time() else None

    def end(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)


class LoginFailures:
    """Failed sign-ins per address, counted by the login ban's rule."""

    def __init__(self) -> None:
        self._banner = login_ban.Banner()
        self._lock = threading.Lock()

    def refused(self, address: str) -> bool:
        with self._lock:
            self._banner.expired(time.time())
            return address in self._banner.banned

    def failure(self, address: str) -> None:
        with self._lock:
            login_ban.report_failure(address)
            self._banner.failure(address, time.time())
