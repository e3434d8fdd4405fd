"""Read the YAML file and the environment and merge them into one YAML-shaped dictionary."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from nasbox.config.environment import read_environment
from nasbox.config.sources import Origins

DEFAULT_CONFIG_FILE = "/config/nasbox.yaml"


class YamlLoader(yaml.SafeLoader):
    """YAML with YAML 1.2 booleans: only true and false. In YAML 1.1 the contract's own key
    `on:` (and values such as `no`) would turn into booleans."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    YamlLoader.yaml_implicit_resolvers.setdefault(_first, []).append(
        ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"))
    )


def without_quotes(problem: str | None) -> str:
    """A YAML parser's problem without the text it quotes, but for punctuation (`expected ','
    or '}'`): the offending token may be a password (`password: *secret` is an undefined
    alias 'secret', `password: !secret` an unknown tag '!secret'). Only the position and the
    kind of problem are shown."""
    return re.sub(
        r"'[^']*'",
        lambda quoted: quoted.group() if not any(c.isalnum() for c in quoted.group()) else "'...'",
        problem or "syntax error",
    )


def read_yaml(path: Path, origins: Origins, required: bool) -> tuple[dict[str, Any], list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, ([f"{origins.yaml_name}: cannot read {path}: no such file"] if required else [])
    except OSError as e:
        return {}, [f"{origins.yaml_name}: cannot read {path}: {e.strerror}"]
    try:
        data = yaml.load(text, Loader=YamlLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return {}, [f"{origins.yaml_name}: {at}invalid YAML: {without_quotes(getattr(e, 'problem', None))}"]
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        return {}, [f"{origins.yaml_name}: expected a mapping of sections (server, users, shares, ...)"]
    return data, []


def merge(from_yaml: dict[str, Any], from_env: dict[str, Any]) -> dict[str, Any]:
    """An env item replaces the YAML item of the same kind and name; env globals override keys,
    and those of server.web (WEB_PORT, ...) each key of that mapping."""
    merged = dict(from_yaml)
    for section, values in from_env.items():
        base = merged.get(section)
        if isinstance(base, dict):
            merged[section] = {**base, **values}
            if section == "server" and isinstance(base.get("web"), dict) and "web" in values:
                merged[section]["web"] = {**base["web"], **values["web"]}
        else:
            # Not a mapping in YAML: keep the YAML value so that the schema reports it.
            merged[section] = values if base is None else base
    return merged


def load_raw(environ: Mapping[str, str]) -> tuple[dict[str, Any], Origins, list[str]]:
    """The merged YAML-shaped configuration, where each part came from, and the problems met
    while reading (unreadable files, bad YAML, bad env spec strings)."""
    path = Path(environ.get("NASBOX_CONFIG", DEFAULT_CONFIG_FILE))
    origins = Origins(yaml_name=path.name)
    from_yaml, problems = read_yaml(path, origins, required="NASBOX_CONFIG" in environ)
    from_env, env_problems = read_environment(environ, origins)
    return merge(from_yaml, from_env), origins, problems + env_problems
