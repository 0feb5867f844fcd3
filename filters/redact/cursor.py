"""Where a redact stage stands in its channel: what is released, dropped and held.

The scanner decides; this base class writes the decisions out. Without a view the text
scanned is the channel's own and offsets are stream offsets; with one (``normalise``) the
scanner reads view text, and every release, replacement and drop is mapped back here to
the original characters through the :class:`~pipeline.textview.TextView`.
"""

from __future__ import annotations

import regex

from filters.redact.rules import Plan, Rule
from pipeline.stage import Finding
from pipeline.textview import TextView

CONTEXT = 32
"""Released input kept for lookbehinds; custom patterns' lookbehinds must fit in it."""
STRING_BODY = regex.compile(r'[^"\\]*(?:\\.[^"\\]*)*', regex.DOTALL)


class JsonCursor:
    """Whether the raw JSON released so far ends inside a string (``normalise: false``).

    A value outside any string (a card number written as a JSON number) is replaced by a
    quoted placeholder so the document still parses.
    """

    __slots__ = ("_escape", "in_string")

    def __init__(self) -> None:
        self.in_string = False
        self._escape = False

    def advance(self, text: str) -> None:
        """Move past ``text``, the next piece of the document."""
        i, n = 0, len(text)
        while i < n:
            if not self.in_string:
                i = text.find('"', i)
                if i < 0:
                    return
                self.in_string = True
            elif self._escape:
                self._escape = False
            else:
                i = STRING_BODY.match(text, i).end()
                if i == n:
                    return
                # Either the closing quote or a backslash whose escaped char is still to come.
                self.in_string = text[i] != '"'
                self._escape = self.in_string
            i += 1


class Cursor:
    """The output side of one channel's redaction: positions, releases, replacements."""

    __slots__ = (
        "_ctx",
        "_flat",
        "_found",
        "_json",
        "_orig",
        "_out",
        "_pem_escape",
        "_plan",
        "_pos",
        "_sbase",
        "_view",
    )

    def __init__(self, plan: Plan, *, json: bool) -> None:
        self._plan = plan
        norm = plan.normaliser
        self._view: TextView | None = None if norm is None else norm.view(json=json)
        self._json = JsonCursor() if plan.json else None
        self._ctx = ""
        self._pos = 0
        """Stream offset (in the view, when there is one) of the first character not yet
        released or dropped."""
        self._orig = 0
        """With a view: original characters released or dropped."""
        self._sbase = 0
        """Where ``_pos`` lies in the text being scanned."""
        self._flat = True
        """The text being scanned is the output itself from ``_pos`` on: no view, or one
        that maps it one to one with ``_orig`` in step."""
        self._pem_escape = False
        self._out: list[str] = []
        self._found: list[Finding] = []

    def _accepts(self, rule: Rule, s: str, start: int, end: int) -> bool:
        """``Plan.accepts``, and through a JSON view: no structural quote inside."""
        value = s[start:end]
        view = self._view
        if view is not None and '"' in value and view.json:
            at = self._pos - self._sbase
            q = value.find('"')
            while q >= 0:
                if not view.in_string(at + start + q):
                    return False
                q = value.find('"', q + 1)
        return self._plan.accepts(rule, value)

    def _limit(self, start: int, n: int) -> int:
        """Where the window of a candidate at ``s[start]`` ends: ``bound`` original
        characters on, or the end of the text."""
        bound = self._plan.bound
        if self._flat:
            return min(n, start + bound)
        assert self._view is not None
        at = self._pos - self._sbase
        return min(n, self._view.reach(at + start, bound) - at)

    def _string_end(self, text: str) -> tuple[int, bool]:
        """In JSON, where the string being dropped ends in ``text`` (-1: not in it) and
        whether ``text`` ends halfway through an escape. Text channels have no end."""
        view = self._view
        if view is not None:
            if not view.json:
                return -1, False
            q = text.find('"')
            while q >= 0 and view.in_string(self._pos + q):
                q = text.find('"', q + 1)
            return q, False
        if not self._plan.json:
            return -1, False
        i = 1 if self._pem_escape else 0
        if i > len(text):
            return -1, True
        j = STRING_BODY.match(text, i).end()
        if j == len(text):
            return -1, False
        return (j, False) if text[j] == '"' else (-1, True)

    def _plain(self, s: str, start: int, end: int) -> None:
        """Release ``s[start:end]``: as is, or through a view its original characters."""
        view = self._view
        if view is None or self._flat:
            # Without a view, or where it is the original itself: the text is the output.
            if start < end:
                piece = s[start:end]
                self._out.append(piece)
                if view is not None:
                    self._orig += end - start
                elif self._json is not None:
                    self._json.advance(piece)
            return
        cut = view.cut(self._pos + end - self._sbase)
        if cut > self._orig:
            self._out.append(view.original(self._orig, cut))
            self._orig = cut

    def _replace(self, placeholder: str, start: int, end: int) -> tuple[int, int]:
        """Write ``placeholder`` for ``s[start:end]``; return the replaced span in the
        stage's input (original) offsets."""
        view = self._view
        if view is not None:
            at = self._pos - self._sbase
            first, last = view.span(at + start, at + end)
            if first > self._orig:
                self._out.append(view.original(self._orig, first))
            self._out.append(view.encode(placeholder, at + start))
            self._orig = last
            return first, last
        if self._json is not None and not self._json.in_string:
            placeholder = f'"{placeholder}"'
        self._out.append(placeholder)
        return self._at(self._sbase, start), self._at(self._sbase, end)

    def _at(self, base: int, index: int) -> int:
        """Stream offset of ``s[index]`` when ``s[base]`` is the first undecided char."""
        return self._pos + index - base

    def _advance(self, s: str, base: int, upto: int) -> None:
        """Everything before ``s[upto]`` is decided."""
        self._pos += upto - base
        self._ctx = s[max(0, upto - CONTEXT) : upto]

    def _drop(self, piece: str) -> None:
        self._pos += len(piece)
        self._ctx = (self._ctx + piece)[-CONTEXT:]
        if self._view is not None:
            self._orig = max(self._orig, self._view.cut(self._pos))
