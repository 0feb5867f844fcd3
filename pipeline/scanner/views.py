"""The text a scan reads: the normalised view (:mod:`pipeline.textview`) or the input as is.

Both expose the same small surface, in absolute offsets counted from the channel's start:
``feed``/``finish`` return the view text that became stable, ``span``/``cut`` map view
offsets back to the input, ``original`` reads the input, ``encode`` writes a replacement
safely at a view offset (JSON-escaped inside a string), ``forget`` drops what was
released. The scan is written once against it; a stage opting out of normalisation gets
the identity view, which costs nothing on the hot path.
"""

from __future__ import annotations

from typing import Protocol

from pipeline.scanner.jsontext import JsonCursor, json_safe
from pipeline.textview import MAX_CLUSTER, TextView

__all__ = ["VIEW_SLACK", "VIEW_WIDTH", "IdentityView", "View", "normalised"]

VIEW_WIDTH = 6
"""Input characters one view character may come from when bounding hold-back (a JSON
``\\uXXXX`` escape); longer spellings count against the limit, and its overflow policy
(``block`` for scanning stages) stops them."""
VIEW_SLACK = MAX_CLUSTER + 12
"""The view's own unstable tail: a cluster still growing, a surrogate pair escape."""


class View(Protocol):
    """What the scan needs from a view of one channel."""

    @property
    def held(self) -> int: ...
    def feed(self, text: str) -> str: ...
    def finish(self) -> str: ...
    def span(self, start: int, end: int) -> tuple[int, int]: ...
    def cut(self, v: int) -> int: ...
    def original(self, start: int, end: int) -> str: ...
    def encode(self, replacement: str, v: int) -> str: ...
    def forget(self, orig: int) -> None: ...
    def rewritable(self, start: int, end: int) -> bool:
        """Whether the input span ``[start, end)`` may be replaced without breaking a JSON
        document (no string boundary inside, no escape cut in half)."""
        ...


def _json_rewritable(text: str) -> bool:
    """JSON text without an unescaped quote and not ending inside an escape."""
    bare = text.replace("\\\\", "").replace('\\"', "")
    return '"' not in bare and not bare.endswith("\\")


class IdentityView:
    """The input is the view: offsets map to themselves."""

    __slots__ = ("_at", "_base", "_cursor", "_kept")

    def __init__(self, *, json: bool) -> None:
        self._kept = ""
        self._base = 0
        self._cursor = JsonCursor() if json else None
        self._at = 0
        """JSON: how far the cursor has read (input offset)."""

    @property
    def held(self) -> int:
        return 0

    def feed(self, text: str) -> str:
        self._kept += text
        return text

    def finish(self) -> str:
        return ""

    def span(self, start: int, end: int) -> tuple[int, int]:
        return start, end

    def cut(self, v: int) -> int:
        return v

    def original(self, start: int, end: int) -> str:
        return self._kept[start - self._base : end - self._base]

    def _advance(self, to: int) -> JsonCursor | None:
        cursor = self._cursor
        if cursor is not None and to > self._at:
            cursor.advance(self.original(self._at, to))
            self._at = to
        return cursor

    def encode(self, replacement: str, v: int) -> str:
        cursor = self._advance(v)
        return replacement if cursor is None else json_safe(replacement, in_string=cursor.in_string)

    def rewritable(self, start: int, end: int) -> bool:
        cursor = self._advance(start)
        if cursor is None:
            return True
        return cursor.safe_start and _json_rewritable(self.original(start, end))

    def forget(self, orig: int) -> None:
        self._advance(orig)
        drop = orig - self._base
        if drop > 4096:
            self._kept = self._kept[drop:]
            self._base = orig


class _Normalised:
    """A :class:`TextView` with the JSON check the scan needs."""

    __slots__ = ("_json", "_view")

    def __init__(self, view: TextView, *, json: bool) -> None:
        self._view = view
        self._json = json

    @property
    def held(self) -> int:
        return self._view.held

    def feed(self, text: str) -> str:
        return self._view.feed(text)

    def finish(self) -> str:
        return self._view.finish()

    def span(self, start: int, end: int) -> tuple[int, int]:
        return self._view.span(start, end)

    def cut(self, v: int) -> int:
        return self._view.cut(v)

    def original(self, start: int, end: int) -> str:
        return self._view.original(start, end)

    def encode(self, replacement: str, v: int) -> str:
        return self._view.encode(replacement, v)

    def forget(self, orig: int) -> None:
        self._view.forget(orig)

    def rewritable(self, start: int, end: int) -> bool:
        # Escapes are atomic in the view's map, so a span never cuts one in half.
        return not self._json or _json_rewritable(self._view.original(start, end))


def normalised(view: TextView, *, json: bool) -> View:
    """``view`` behind the scan's :class:`View` surface."""
    return _Normalised(view, json=json)
