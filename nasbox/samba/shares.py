"""The directories behind the shares: present, writable by their write users, xattr-capable.

Nothing here changes the ownership of existing data: it warns, naming the fix, instead.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

from nasbox import mounts, state
from nasbox.config import Config

log = logging.getLogger(__name__)


def can_write(uid: int, gid: int, st: os.stat_result) -> bool:
    """May a user (uid, primary group gid) create files in a directory with this stat?"""
    if st.st_uid == uid:
        bits = stat.S_IWUSR | stat.S_IXUSR
    elif st.st_gid == gid:
        bits = stat.S_IWGRP | stat.S_IXGRP
    else:
        bits = stat.S_IWOTH | stat.S_IXOTH
    return st.st_mode & bits == bits


def supports_user_xattrs(path: Path) -> bool:
    try:
        os.setxattr(path, "user.nasbox-check", b"1")
        os.removexattr(path, "user.nasbox-check")
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise
    return True


def prepare(config: Config, uids: dict[str, int], gid: int) -> None:
    for share in config.shares.values():
        down = mounts.down_mount_for(share.path, config)
        if down is not None:  # creating it would fill the mountpoint and block the mount
            log.warning("share %s: %s is on mount %s, which is not mounted", share.name, share.path, down.name)
            continue
        for path in map(Path, (share.path, *share.extra_paths)):
            if not path.exists():
                # Group-writable and setgid so that every write user of the share can use it.
                state.public_directory(path)
                os.chown(path, 0, gid)
                path.chmod(0o2775)
                log.warning(
                    "share %s: %s did not exist and was created inside the container; "
                    "mount a host directory there to keep its data",
                    share.name,
                    path,
                )
        st = os.stat(share.path)
        # A Time Machine share's users write in folders of their own (nasbox.samba.time_machine).
        for user in () if share.time_machine else share.write_users:
            if not can_write(uids[user], gid, st):
                log.warning(
                    "share %s: user %s (uid %d, gid %d) cannot write %s (owner %d:%d, mode %o); "
                    "set users.%s.uid to the owner's UID, or change the directory's owner on the host",
                    share.name,
                    user,
                    uids[user],
                    gid,
                    share.path,
                    st.st_uid,
                    st.st_gid,
                    stat.S_IMODE(st.st_mode),
                    user,
                )
        if not supports_user_xattrs(Path(share.path)):
            log.warning(
                "share %s: %s has no extended attributes; macOS clients will fail to copy some files",
                share.name,
                share.path,
            )
