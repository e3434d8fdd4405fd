"""Which discovery daemons run, what they are given, and what nasbox says about them at
start. Each is a program of the supervisor, its log on stdout."""

from __future__ import annotations

import logging
from pathlib import Path

from nasbox.config.model import Config
from nasbox.discovery import avahi, discovery_cmds, network
from nasbox.samba import samba_cmds

log = logging.getLogger(__name__)

AVAHI_CONF = "avahi-daemon.conf"
NAMES = {"wsd": "WS-Discovery (Windows)", "mdns": "mDNS (macOS, Linux)", "netbios": "NetBIOS (old clients)"}


def daemons(config: Config, run_dir: Path) -> list[tuple[str, list[str]]]:
    """(program name, argv) of each daemon server.discovery asks for."""
    asked = config.server.discovery
    found = []
    if "wsd" in asked:
        found.append(("wsdd2", discovery_cmds.wsdd2(config.server.name, config.server.workgroup)))
    if "mdns" in asked:
        found.append(("avahi", discovery_cmds.avahi_daemon(str(run_dir / AVAHI_CONF))))
    if "netbios" in asked:
        found.append(("nmbd", samba_cmds.nmbd()))
    return found


def prepare(config: Config, run_dir: Path) -> None:
    """At start: the daemons' files, and what they will do here."""
    if not config.server.discovery:
        return
    if "mdns" in config.server.discovery:
        avahi.write(config, run_dir / AVAHI_CONF)
    log.info(
        "discovery: announcing %s in workgroup %s by %s",
        config.server.name,
        config.server.workgroup,
        ", ".join(NAMES[kind] for kind in config.server.discovery),
    )
    bridged = network.bridged_interfaces()
    if bridged:
        log.warning(
            "discovery is on, but this container is on a Docker bridge network (its default route leaves "
            "through %s, one end of a veth pair): its announcements reach only the containers on that bridge, "
            "not the LAN; run it with network_mode: host (compose/host-network.yaml)",
            ", ".join(bridged),
        )
