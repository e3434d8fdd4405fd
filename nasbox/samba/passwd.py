"""The container's own accounts, as opposed to those nasbox made for configured users."""

from __future__ import annotations

import pwd

MARK = "nasbox user"  # GECOS of the accounts nasbox makes, so it never touches others


def foreign_accounts() -> dict[str, int]:
    """name -> UID of every account nasbox did not make (root, backup, nobody, ...)."""
    return {p.pw_name: p.pw_uid for p in pwd.getpwall() if p.pw_gecos != MARK}
