"""Time Machine shares: one folder per user, so that no Mac reads another's backups.

Samba serves each user of a Time Machine share the folder PATH/USER: the share's `path` ends
in `%u`, the name of the account the user logged in as. This is the one %-macro nasbox writes
into a path, and it is safe where another would not be: Samba fills it in only after the login,
with a name from `valid users` (names nasbox checked: lower-case letters, digits, `_` and `-`,
never `/` or `..`), and not the name a client asks for (which is `%U`). A user then sees only
their own folder: `..` and links cannot leave the share's path.

The folders are made at start, owned by their user, mode 0700. An existing one is left as it
is, with a warning when another user could read it on the host.
"""

from __future__ import annotations

import logging
import os
import stat

from nasbox import mounts
from nasbox.config.model import Config, Share

log = logging.getLogger(__name__)

USER_MACRO = "%u"  # the logged-in account's name (Samba's %U is the name the client sent)
FOLDER_MODE = 0o700


def user_folder(share: Share, user: str) -> str:
    return os.path.join(share.path, user)


def prepare(config: Config, uids: dict[str, int], gid: int) -> None:
    """At start: each user's folder in every Time Machine share."""
    for share in config.shares.values():
        if not share.time_machine or mounts.down_mount_for(share.path, config) is not None:
            continue
        for user in share.users:
            path = user_folder(share, user)
            try:
                os.mkdir(path, FOLDER_MODE)
            except FileExistsError:
                _check(share, user, path, uids[user])
                continue
            os.chown(path, uids[user], gid)
            os.chmod(path, FOLDER_MODE)


def _check(share: Share, user: str, path: str, uid: int) -> None:
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        log.warning(
            "share %s: %s is not a folder (a link or a file); %s's Mac cannot back up there",
            share.name,
            path,
            user,
        )
    elif st.st_uid != uid or st.st_mode & 0o077:
        log.warning(
            "share %s: %s (owner %d, mode %o) is not %s's alone (uid %d, mode 700): other accounts on the host "
            "may read the backups in it",
            share.name,
            path,
            st.st_uid,
            stat.S_IMODE(st.st_mode),
            user,
            uid,
        )
