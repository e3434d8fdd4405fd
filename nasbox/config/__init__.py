"""Configuration: read (load), check and build the model (validate), print it masked (show)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from nasbox.config.model import Config
from nasbox.config.sources import ConfigError

__all__ = ["Config", "ConfigError", "load_config"]


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """The validated configuration from NASBOX_CONFIG and the environment; raises ConfigError
    listing every problem."""
    # Loaded here, not with the package: the YAML parser, the JSON Schema and every section's
    # rules are for commands that read a configuration (`nasbox --help` and `health` read none).
    from nasbox.config.load import load_raw
    from nasbox.config.validate import validate

    raw, origins, problems = load_raw(os.environ if environ is None else environ)
    config, more = validate(raw, origins)
    problems += more
    if problems or config is None:
        raise ConfigError(problems)
    return config
