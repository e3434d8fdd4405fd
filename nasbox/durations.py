"""Durations written as a whole number and a unit: `90s`, `15m`, `12h`, `30d`, `2w` (a scrub's
verify_older_than, a share's recycle retention). The schema's `duration` holds the form."""

from __future__ import annotations

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(text: str) -> int:
    """The seconds of a duration of the schema's form, such as 30d."""
    return int(text[:-1]) * UNITS[text[-1]]
