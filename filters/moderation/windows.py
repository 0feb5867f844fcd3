"""Where a window closes: at a sentence end, or at ``window_chars`` when none comes.

A window's end depends only on the text, never on how the upstream split it: the first
sentence end inside the first ``window_chars`` characters wins, and a sentence end is only
recognised once the character after it has arrived (``end.`` followed by whitespace, a
closing quote or bracket in between allowed; a CJK full stop followed by anything that is
not one). So the classifier sees the same windows for any chunking of the same reply.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(
    r"[.!?]+[\"'\u201d\u2019)\]]*\s|[\u3002\uff01\uff1f]+(?=[^\u3002\uff01\uff1f])|\n"
)


def window_end(text: str, start: int, size: int) -> int | None:
    """Where the window beginning at ``start`` ends, or None while it is still open.

    Without a sentence end in its first ``size`` characters the window is cut at ``size``,
    at the last whitespace of its second half when there is one, so a word is rarely split.
    """
    stop = start + size
    found = _SENTENCE_END.search(text, start, stop)
    if found is not None:
        return found.end()
    if len(text) < stop:
        return None
    space = max(text.rfind(" ", start + size // 2, stop), text.rfind("\n", start + size // 2, stop))
    return space + 1 if space >= 0 else stop


def split_windows(text: str, size: int) -> tuple[list[str], str]:
    """The windows that are closed at the start of ``text``, and the open rest."""
    closed: list[str] = []
    start = 0
    while (end := window_end(text, start, size)) is not None:
        closed.append(text[start:end])
        start = end
    return closed, text[start:]
