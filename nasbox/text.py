"""Text that must stay on one line: the one rule for what a configuration value, a generated
file's value and a log message may hold, and how a log keeps every record on its own line.

smb.conf, the supervisor's configuration, mount options, credentials files and logs are all
line-based: a newline in a value would start a new option, section or log record there.
"""

from __future__ import annotations

import logging
import re

# C0 and C1 control characters (newline, carriage return, tab, escape, NEL ...), DEL, the
# Unicode line and paragraph separators, and lone surrogates (bytes that were not UTF-8).
NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def is_one_line(text: str) -> bool:
    return NOT_ONE_LINE.search(text) is None


def escaped(text: str) -> str:
    """text with every character that could break a line written as a visible escape."""
    return NOT_ONE_LINE.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode(), text)


class OneLineFormatter(logging.Formatter):
    """A formatter whose records cannot forge another record: the message (job names, file
    names, anything a user chose) is escaped onto one line, and the lines of a traceback are
    indented, so that every line starting in column 0 is the start of a real record."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escaped(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]
        return "\n".join("    " + escaped(line) for line in super().formatException(ei).splitlines())
