"""The job-kind registry, the JSON Schema and the CLI agree: every kind has its section, its
verb and its environment variable, and nothing else claims to be a job kind."""
from __future__ import annotations

import argparse

from nasbox.cli import parser, verbs
from nasbox.config.checker import schema
from nasbox.config.environment import SPECS
from nasbox.jobkind import JobKind
from nasbox.kinds import KINDS


def job_sections() -> set[str]:
    """Sections of the schema whose items have a schedule: the job kinds."""
    sections = schema()["properties"]
    items = {name: section.get("additionalProperties") for name, section in sections.items()}
    return {name for name, item in items.items() if isinstance(item, dict) and "schedule" in item.get("properties", {})}


def test_registry_schema_and_cli_agree():
    assert set(KINDS) == job_sections()
    assert set(KINDS) <= verbs()
    for name, kind in KINDS.items():
        assert isinstance(kind, JobKind) and kind.name == name
        items = schema()["properties"][name]["additionalProperties"]
        keys = set(items["properties"])
        words = {w.lower() for w in kind.env_words}
        # An environment item names only keys the schema knows, and can give every required one.
        assert words <= keys and set(items["required"]) <= words, name
        assert SPECS[name.upper()] == (name, list(kind.env_words))


def test_every_kind_verb_takes_the_common_options():
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in KINDS:
        options = {o for action in commands.choices[name]._actions for o in action.option_strings}
        assert {"--now", "--no-wait", "--trigger"} <= options, name
