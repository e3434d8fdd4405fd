"""The validated configuration: what every other part of nasbox reads.

Built only by nasbox.config.validate; every value here has been checked.
Passwords are kept out of repr() so a stray log line cannot print them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasbox.scrub.kind import ScrubJob
    from nasbox.sync.kind import SyncJob

STATUSES = ("good", "info", "warning", "error")
ADMIN = "admin"  # the web dashboard's sign-in name for the administrator password


@dataclass(frozen=True)
class Web:
    """The web dashboard: served only with an administrator password."""

    port: int = 8080
    admin_password: str | None = field(default=None, repr=False)
    viewers: tuple[str, ...] = ()  # users (of `users`) who sign in with their password and may only look
    metrics_token: str | None = field(default=None, repr=False)  # a bearer token /metrics then requires


@dataclass(frozen=True)
class Server:
    name: str = "nasbox"
    workgroup: str = "WORKGROUP"
    timezone: str = "UTC"
    puid: int = 1000
    pgid: int = 1000
    log_level: str = "info"
    hosts_allow: tuple[str, ...] = ()
    max_parallel_jobs: int = 2
    min_available_memory_mb: int = 256  # jobs wait while less memory is available
    space_warning: int = 90  # percent used of a filesystem that is warned of
    samba_options: tuple[tuple[str, str], ...] = ()  # smb.conf lines after nasbox's own
    vfs_modules: tuple[str, ...] = ()  # modules added to nasbox's in every share
    discovery: tuple[str, ...] = ()  # announcements: wsd, mdns, netbios
    web: Web = field(default_factory=Web)


@dataclass(frozen=True)
class User:
    name: str
    password: str = field(repr=False)
    uid: int | None = None


@dataclass(frozen=True)
class Share:
    """One Samba share; read and write items with the same name are merged into one."""

    name: str
    path: str
    # A share item's further PATHS: created and checked like the path, not served.
    extra_paths: tuple[str, ...] = ()
    read_users: tuple[str, ...] = ()
    write_users: tuple[str, ...] = ()
    comment: str = ""
    time_machine: bool = False
    time_machine_max_size: str = ""  # each user's backups at most (500G); "": no limit
    samba_options: tuple[tuple[str, str], ...] = ()  # smb.conf lines after nasbox's own
    vfs_modules: tuple[str, ...] = ()  # modules added to nasbox's
    recycle: str = ""  # how long deleted files stay in the recycle bin (30d); "": no bin

    @property
    def users(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.read_users) | set(self.write_users)))


@dataclass(frozen=True)
class Mount:
    name: str
    mountpoint: str
    host: str
    share: str
    subdir: str
    username: str
    password: str = field(repr=False)
    options: tuple[tuple[str, str | bool], ...] = ()  # False drops an option of nasbox's, True sets a flag


@dataclass(frozen=True)
class NotifyTarget:
    name: str
    type: str
    target: str = field(repr=False)  # webhook and ping URLs often carry tokens
    on: tuple[str, ...] = STATUSES
    jobs: tuple[str, ...] = ()  # the job names it is for; empty: every job


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str | None = None
    security: str = "starttls"


@dataclass(frozen=True)
class Config:
    server: Server = field(default_factory=Server)
    users: dict[str, User] = field(default_factory=dict)
    shares: dict[str, Share] = field(default_factory=dict)
    mounts: dict[str, Mount] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> name -> its model
    notify: dict[str, NotifyTarget] = field(default_factory=dict)
    smtp: Smtp | None = None

    @property
    def sync(self) -> dict[str, SyncJob]:
        return self.jobs.get("sync", {})

    @property
    def scrub(self) -> dict[str, ScrubJob]:
        return self.jobs.get("scrub", {})
