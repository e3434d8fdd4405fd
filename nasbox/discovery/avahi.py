"""mDNS/DNS-SD with avahi-daemon, without D-Bus: its configuration and one static service file.

The file announces `_smb._tcp` on port 445 (Finder's sidebar, Linux file managers),
`_device-info._tcp` with the model Samba tells Macs (`fruit:model`, so Finder shows that
icon), and, when a share is for Time Machine, `_adisk._tcp` with one `dkN` record per such
share, which makes it a backup disk in Time Machine's list. smbd would announce the same
itself, but only through avahi's D-Bus interface; nasbox's smb.conf turns that off, so
nothing is announced twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from nasbox.config.model import Config
from nasbox.samba.options import normalized
from nasbox.samba.smbconf import FRUIT_MODEL, UnsafeValue, environment
from nasbox.text import is_one_line

SERVICE_FILE = "nasbox.service"


def services_dir() -> Path:
    """Where avahi-daemon reads static services (fixed in its build); tests point it elsewhere."""
    return Path(os.environ.get("NASBOX_AVAHI_SERVICES", "/etc/avahi/services"))


def xml_value(value: Any) -> str:
    """A value for the service file: on one line (a DNS-SD TXT string is one line of its
    record) and escaped for XML."""
    text = str(value)
    if not is_one_line(text):
        raise UnsafeValue(f"refusing to write {text!r} into avahi's configuration")
    return escape(text, {'"': "&quot;"})


def model(config: Config) -> str:
    """fruit:model as Samba tells it to Macs: nasbox's, or the one samba_options set."""
    given = {normalized(name): value for name, value in config.server.samba_options}
    return given.get("fruit:model", FRUIT_MODEL)


def render_service(config: Config, port: int = 445) -> str:
    return (
        environment(xml_value)
        .get_template("avahi.service.j2")
        .render(
            name=config.server.name,
            port=port,
            model=model(config),
            time_machine=sorted(share.name for share in config.shares.values() if share.time_machine),
        )
    )


def render_daemon_conf(config: Config) -> str:
    return environment().get_template("avahi-daemon.conf.j2").render(host_name=config.server.name)


def write(config: Config, daemon_conf: Path) -> None:
    """avahi-daemon's configuration at daemon_conf, and nasbox's service file."""
    daemon_conf.write_text(render_daemon_conf(config), encoding="utf-8")
    directory = services_dir()
    directory.mkdir(parents=True, exist_ok=True)
    service = directory / SERVICE_FILE
    service.write_text(render_service(config), encoding="utf-8")
    service.chmod(0o644)  # avahi-daemon reads it after dropping root; nasbox's umask is 077
