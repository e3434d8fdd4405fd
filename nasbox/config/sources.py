"""Where each configuration value came from, so that errors can name it.

An error about `shares.docs.access` reads `env SHARE_DOCS: access: ...` when the share came
from the environment and `nasbox.yaml: shares.docs.access: ...` when it came from the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nasbox.text import escaped

# Where a value sits in the configuration: ("shares", "docs", "paths", 0).
KeyPath = tuple[str | int, ...]


class ConfigError(Exception):
    """Invalid configuration; carries every problem found, one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Origins:
    yaml_name: str = "nasbox.yaml"
    # (section, key) of env items and env globals, (section, key, key) of nested globals
    # such as WEB_PORT -> "env VARIABLE"
    env: dict[KeyPath, str] = field(default_factory=dict)

    def where(self, path: KeyPath) -> str:
        """The prefix of an error line about the value at path."""
        depth = next((n for n in (3, 2) if tuple(path[:n]) in self.env), 2)
        label = self.env.get(tuple(path[:depth]))
        if label is not None:
            rest = dotted(path[depth:])
            return f"{label}: {rest}: " if rest else f"{label}: "
        return f"{self.yaml_name}: {dotted(path)}: " if path else f"{self.yaml_name}: "


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        if not isinstance(part, int):
            part = escaped(part)  # a key may hold a control character: it is reported, not printed
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
