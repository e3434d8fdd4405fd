"""What smb.conf holds as written.

Samba rewrites some values as it reads them: it expands %-macros (%S, %U, %$(VAR), ...),
strips the spaces around a value or a section name and the double quotes around a value,
and joins a line ending in a backslash to the next. A share path, a share name or a hidden
name that Samba reads otherwise than nasbox checked it would serve or hide another place
than the one checked (`/config"` serves /config, a share named `global ` writes its options
into [global]). Samba has no escape for any of these, so such values are refused.
"""

from __future__ import annotations

from nasbox.text import is_one_line


def not_literal(text: str) -> str | None:
    """Why Samba would not read text as written (a phrase for an error message), or None."""
    if not is_one_line(text):
        return "a control character (newline, tab, ...)"
    if "%" in text:
        return "'%' (Samba expands %-macros)"
    if text != text.strip(" "):
        return "a leading or trailing space (Samba strips them)"
    if text.startswith('"') or text.endswith('"'):
        return "a leading or trailing '\"' (Samba strips them)"
    if text.endswith("\\"):
        return "a trailing '\\' (Samba joins the next line)"
    return None
