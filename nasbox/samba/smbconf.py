"""Render smb.conf from the configuration and check it with testparm.

Every value is written through `smb_value`, which refuses anything Samba would not read as
written (nasbox.samba.literal): a control character that would end its line, a trailing
backslash that would join the next, a %-macro, spaces or quotes Samba strips. So no value
can start another option or section, or name another path than the one nasbox checked,
whatever validation let through.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from nasbox import commands, paths
from nasbox.config.model import Config, Share
from nasbox.resources import templates_dir
from nasbox.samba import samba_cmds
from nasbox.samba.literal import not_literal
from nasbox.samba.previous_versions import shown_versions
from nasbox.scrub.trust import PRIVATE as SCRUB_PRIVATE
from nasbox.sync.rsync_cmds import PARTIAL_DIR
from nasbox.versions.store import NAME_FORMAT, VERSIONS_DIR

LOG_LEVELS = {"debug": 3, "info": 1, "warning": 0, "error": 0}
# nasbox's own folders, refused to clients in every share (a share may hold a scrub DATABASE
# or a sync DESTINATION, where they live). A version is still read through its @GMT- name:
# Samba checks the names the client gives, never the snapshot path it makes of them.
PRIVATE_NAMES = (os.fsdecode(SCRUB_PRIVATE), PARTIAL_DIR, VERSIONS_DIR)
# Every share's modules (macOS support). A share that shows versions adds shadow_copy2 below
# them, next to the filesystem: what streams_xattr does to the extended attributes holding
# named streams then passes through shadow_copy2, which refuses changes to a version.
VFS_OBJECTS = ("catia", "fruit", "streams_xattr")


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
            vfs_objects=VFS_OBJECTS,
            version_format=Unexpanded(NAME_FORMAT),
            port=port,
            log_level=LOG_LEVELS[config.server.log_level],
            paths=dict(state_paths or {}),
        )
    )


def write(config: Config, conf: Path, **kwargs) -> None:
    """Write smb.conf and check it with testparm; a file testparm rejects is not kept.
    testparm exits 0 on unknown parameters, so its output is read too."""
    candidate = conf.with_name(conf.name + ".new")
    candidate.write_text(render(config, **kwargs), encoding="utf-8")
    argv = samba_cmds.testparm(str(candidate))
    result = commands.run(argv, check=False)
    if result.returncode != 0 or "Unknown parameter" in result.stdout:
        candidate.unlink()
        raise commands.CommandError(argv, result.returncode, result.stdout)
    candidate.replace(conf)
