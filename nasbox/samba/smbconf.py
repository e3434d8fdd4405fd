"""Render smb.conf from the configuration and check it with testparm."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import jinja2

from nasbox import commands
from nasbox.config.model import Config
from nasbox.resources import templates_dir
from nasbox.samba import samba_cmds

LOG_LEVELS = {"debug": 3, "info": 1, "warning": 0, "error": 0}


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render(config: Config, port: int = 445, state_paths: Mapping[str, str] | None = None) -> str:
    """smb.conf text; state_paths overrides Samba's directories (private dir, lock directory,
    ...) for an smbd that runs outside the image, as the host tests do."""
    return environment().get_template("smb.conf.j2").render(
        server=config.server,
        shares=sorted(config.shares.values(), key=lambda s: s.name.lower()),
        port=port,
        log_level=LOG_LEVELS[config.server.log_level],
        paths=dict(state_paths or {}),
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
