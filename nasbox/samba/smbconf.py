"""Render smb.conf from the configuration and check it with testparm.

Every value is written through `smb_value`, which refuses anything Samba would not read as
written (nasbox.samba.literal): a control character that would end its line, a trailing
backslash that would join the next, a %-macro, spaces or quotes Samba strips. So no value
can start another option or section, or name another path than the one nasbox checked,
whatever validation let through.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from nasbox import commands, paths
from nasbox.config.model import Config, Share
from nasbox.resources import templates_dir
from nasbox.samba import samba_cmds
from nasbox.samba.literal import not_literal
from nasbox.samba.previous_versions import shown_versions
from nasbox.samba.recycle import RECYCLE_DIR
from nasbox.samba.time_machine import USER_MACRO
from nasbox.scrub.trust import PRIVATE as SCRUB_PRIVATE
from nasbox.sync.rsync_cmds import PARTIAL_DIR
from nasbox.versions.store import NAME_FORMAT, VERSIONS_DIR

if TYPE_CHECKING:
    import jinja2

LOG_LEVELS = {"debug": 3, "info": 1, "warning": 0, "error": 0}
# nasbox's own folders, refused to clients in every share (a share may hold a scrub DATABASE
# or a sync DESTINATION, where they live). A version is still read through its @GMT- name:
# Samba checks the names the client gives, never the snapshot path it makes of them.
PRIVATE_NAMES = (os.fsdecode(SCRUB_PRIVATE), PARTIAL_DIR, VERSIONS_DIR)
# Every share's modules (macOS support). A share that shows versions adds shadow_copy2 below
# them, next to the filesystem: what streams_xattr does to the extended attributes holding
# named streams then passes through shadow_copy2, which refuses changes to a version.
VFS_OBJECTS = ("catia", "fruit", "streams_xattr")
# The model Samba tells Macs, and mDNS announces: Finder draws a server rack for it.
FRUIT_MODEL = "RackMac"
# Deleted at once rather than kept in a recycle bin: lock and temporary files programs make
# and delete as they work (Office, LibreOffice, macOS Finder).
RECYCLE_EXCLUDE = "~$*,*.tmp,.~lock.*,.DS_Store"


class UnsafeValue(ValueError):
    """A value that would change the structure of a generated file."""


class Unexpanded(str):
    """The value of an option Samba reads without expanding %-macros (a module's own option,
    such as shadow:format): its '%' stand as written; the rest is checked as any value."""


def smb_value(value: Any) -> str:
    text = str(value)
    problem = not_literal(text.replace("%", "") if isinstance(value, Unexpanded) else text)
    if problem:
        raise UnsafeValue(f"refusing to write {text!r} into smb.conf: it holds {problem}")
    return text


def environment(finalize: Callable[[Any], str] = smb_value) -> jinja2.Environment:
    """Templates of nasbox's generated files; finalize is the last word on every value."""
    import jinja2  # loaded only to render: validation and the job commands import this module too

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        finalize=finalize,
    )


def hidden_names(share: Share, config: Config) -> list[str]:
    """Names Samba hides and refuses in this share: nasbox's private folders, and every scrub
    DATABASE that lies inside the share, however it is reached (a second mount of one
    directory is the same place: paths.inside)."""
    names = set(PRIVATE_NAMES)
    for job in config.scrub.values():
        where = paths.below(job.database, share.path)  # its path as the share reaches it
        if where not in (None, "."):
            names.add(PurePosixPath(where).name)
    return sorted(names)


def share_modules(share: Share, config: Config) -> tuple[str, ...]:
    """The share's vfs objects: the modules samba_options add, above nasbox's own (which keep
    their order), recycle where the share keeps a recycle bin, and shadow_copy2 next to the
    filesystem where it shows versions."""
    extra = tuple(dict.fromkeys(config.server.vfs_modules + share.vfs_modules))
    recycling = ("recycle",) if share.recycle else ()
    below = ("shadow_copy2",) if shown_versions(share, config) else ()
    return extra + VFS_OBJECTS + recycling + below


def render(config: Config, port: int = 445, state_paths: Mapping[str, str] | None = None) -> str:
    """smb.conf text; state_paths overrides Samba's directories (private dir, lock directory,
    ...) for an smbd that runs outside the image, as the host tests do."""
    return (
        environment()
        .get_template("smb.conf.j2")
        .render(
            server=config.server,
            shares=sorted(config.shares.values(), key=lambda s: s.name.lower()),
            hidden={share.name: hidden_names(share, config) for share in config.shares.values()},
            versions={share.name: shown_versions(share, config) for share in config.shares.values()},
            global_modules=config.server.vfs_modules + VFS_OBJECTS,
            modules={share.name: share_modules(share, config) for share in config.shares.values()},
            version_format=Unexpanded(NAME_FORMAT),
            port=port,
            recycle_dir=RECYCLE_DIR,
            user_macro=Unexpanded(USER_MACRO),
            fruit_model=FRUIT_MODEL,
            recycle_exclude=RECYCLE_EXCLUDE,
            log_level=LOG_LEVELS[config.server.log_level],
            paths=dict(state_paths or {}),
        )
    )


# What testparm says, exit code 0 or not, of an option Samba does not apply: one it does not
# know, and a server-wide one in a share.
NOT_APPLIED = ("Unknown parameter", "Global parameter")
# What testparm always says on stderr, problem or not.
TESTPARM_CHATTER = ("Load smb config files", "Loaded services file", "Server role", "Weak crypto")


def testparm_problem(conf: Path) -> str | None:
    """What testparm finds wrong in the smb.conf at conf (its own words), or None."""
    result = commands.run(samba_cmds.testparm(str(conf)), check=False, separate_stderr=True)
    said = [line for line in (result.stderr or "").splitlines() if line and not line.startswith(TESTPARM_CHATTER)]
    if result.returncode == 0 and not any(marker in line for line in said for marker in NOT_APPLIED):
        return None
    return f"testparm exited {result.returncode}: " + " | ".join(said[-5:])


def write(config: Config, conf: Path, **kwargs: Any) -> None:
    """Write smb.conf and check it with testparm; a file testparm rejects is not kept."""
    candidate = conf.with_name(conf.name + ".new")
    candidate.write_text(render(config, **kwargs), encoding="utf-8")
    problem = testparm_problem(candidate)
    if problem:
        candidate.unlink()
        raise commands.CommandError(samba_cmds.testparm(str(candidate)), 1, problem)
    candidate.replace(conf)


def text_problem(text: str) -> str | None:
    """What testparm finds wrong in smb.conf text, or None."""
    with tempfile.TemporaryDirectory(prefix="nasbox-smbconf-") as scratch:
        conf = Path(scratch) / "smb.conf"
        conf.write_text(text, encoding="utf-8")
        return testparm_problem(conf)


def check(config: Config) -> str | None:
    """What testparm finds wrong in the smb.conf config renders (for `config check`), or None."""
    return text_problem(render(config))
