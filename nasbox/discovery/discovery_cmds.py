"""The one place the command lines of the discovery daemons are built (nmbd's is Samba's:
nasbox.samba.samba_cmds). Each runs in the foreground, logging to stdout or stderr."""

from __future__ import annotations

# Shown in Windows' device properties as its maker and model (wsdd2's metadata answer).
WSD_DEVICE = {"vendor": "nasbox", "model": "nasbox"}


def wsdd2(host_name: str, workgroup: str) -> list[str]:
    """WS-Discovery only (-w): wsdd2's other protocol, LLMNR, would clash with the host's
    resolver (systemd-resolved) under host networking, and Windows finds nasbox without it.
    The names are given, so wsdd2 does not ask testparm. One -b per property: in a list
    (`vendor:a,model:b`) wsdd2 keeps the comma in every value but the last."""
    device = [arg for key, value in WSD_DEVICE.items() for arg in ("-b", f"{key}:{value}")]
    return ["wsdd2", "-w", "-H", host_name, "-N", host_name.upper(), "-G", workgroup, *device]


def avahi_daemon(conf: str) -> list[str]:
    return ["avahi-daemon", f"--file={conf}", "--no-rlimits"]
