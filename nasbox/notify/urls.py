"""What the URL-based target types share: the check of an http(s) URL, and which parts of a
URL may hold a token (services put them in the path, the query, or the host part)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "***"
HTTP_URL = re.compile(r"^https?://\S+$")


def http_url_problem(target: str) -> str | None:
    return None if HTTP_URL.match(target) else "expected an http:// or https:// URL"


def redact_url(url: str) -> str:
    """Keep what identifies a target (scheme and host), mask what may be a token."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}/{MASK}" if parts.scheme else MASK


def url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    return [part for part in (url, parts.netloc, parts.path, parts.query) if len(part) > 1]
