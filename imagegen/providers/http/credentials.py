"""Keeping API keys secret: a string that never shows itself, and scrubbing keys from text.

A provider keeps its key in a :class:`Secret`, so no ``repr``, log line or traceback shows it.
Provider text that goes into an exception message passes through :func:`redact` (the key and
anything shaped like one become a marker) and :func:`quote` (one line, truncated).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MAX_QUOTED_CHARS", "REDACTED", "Secret", "quote", "redact"]

#: Longest piece of provider text quoted in an exception message.
MAX_QUOTED_CHARS = 500
REDACTED = "[redacted]"


class Secret:
    """A string that never shows itself in ``repr``, ``str`` or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret, for the one header that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def redact(text: str, secret: Secret, patterns: Iterable[str] = ()) -> str:
    """Return ``text`` with ``secret`` and matches of the key-like ``patterns`` replaced."""
    key = secret.reveal()
    if key:
        text = text.replace(key, REDACTED)
    for pattern in patterns:
        text = re.sub(pattern, REDACTED, text)
    return text


def quote(text: str) -> str:
    """Return already redacted ``text`` on one line, truncated to :data:`MAX_QUOTED_CHARS`."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 1] + "…"
