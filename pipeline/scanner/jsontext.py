"""Where a JSON document streamed as text is: inside a string or not.

A replacement written into a JSON channel must keep the document parseable: inside a
string it is escaped (``the "other" vendor`` becomes ``the \\"other\\" vendor``), outside
one (a number or ``true``) it becomes a JSON string of its own.
"""

from __future__ import annotations

import json

import regex

__all__ = ["JsonCursor", "json_safe"]

_STRING_STOP = regex.compile(r'["\\]')


class JsonCursor:
    """Follows the raw JSON text fed to it, one piece after another."""

    __slots__ = ("escaped", "in_string")

    def __init__(self) -> None:
        self.in_string = False
        self.escaped = False

    def advance(self, text: str) -> None:
        """Move past ``text``; only quotes and backslashes change the state."""
        at, size = 0, len(text)
        while at < size:
            if self.escaped:
                self.escaped = False
                at += 1
            elif self.in_string:
                stop = _STRING_STOP.search(text, at)
                if stop is None:
                    return
                at = stop.end()
                if stop[0] == "\\":
                    self.escaped = True
                else:
                    self.in_string = False
            else:
                quote = text.find('"', at)
                if quote < 0:
                    return
                self.in_string = True
                at = quote + 1

    @property
    def safe_start(self) -> bool:
        """Whether a match may start here: not in the middle of an escape sequence."""
        return not self.escaped


def json_safe(replacement: str, *, in_string: bool) -> str:
    """``replacement`` written so that the JSON around it still parses."""
    encoded = json.dumps(replacement, ensure_ascii=False)
    return encoded[1:-1] if in_string else encoded
