"""The one place Samba command lines are built."""

from __future__ import annotations

SMB_CONF = "/etc/samba/smb.conf"


def smbd(conf: str = SMB_CONF) -> list[str]:
    # In the foreground, logging to stdout, in the supervisor's process group so that it
    # stops with the container.
    return ["smbd", "--foreground", "--no-process-group", "--debug-stdout", f"--configfile={conf}"]


def nmbd(conf: str = SMB_CONF) -> list[str]:
    """NetBIOS name service, in the foreground like smbd."""
    return ["nmbd", "--foreground", "--no-process-group", "--debug-stdout", f"--configfile={conf}"]


def testparm(conf: str = SMB_CONF) -> list[str]:
    return ["testparm", "--suppress-prompt", conf]


def list_parameters() -> list[str]:
    """Every option this Samba knows, with its scope, type and synonyms."""
    return ["testparm", "--show-all-parameters"]


def set_password(user: str, conf: str = SMB_CONF) -> list[str]:
    """Adds or updates user in Samba's database; the password twice on stdin."""
    return ["smbpasswd", "-c", conf, "-s", "-a", user]


def list_users(conf: str = SMB_CONF) -> list[str]:
    return ["pdbedit", "--configfile", conf, "--list"]


def delete_user(user: str, conf: str = SMB_CONF) -> list[str]:
    return ["smbpasswd", "-c", conf, "-x", user]


def smbstatus_json() -> list[str]:
    """Connected sessions, shares in use and open files, as JSON."""
    return ["smbstatus", "--json"]
