"""The per-channel scan: hold back exactly what a match may still start in, decide the rest.

At each piece of text the stage looks at ``context + held + new`` and asks two questions:

1. Where is the leftmost *open candidate* — a place where more text could still make a
   match start, grow or change alternative? (:attr:`Rules.open_candidates`, searched with
   ``partial=True``.) Everything before it is decided and may go out.
2. Which complete matches start before that place? Their outcome can no longer change,
   so each is decided now: the ``on_match`` decision is applied and searching resumes
   after it (the standard left-to-right, non-overlapping scan).

The held tail starts at the open candidate; the released text keeps the last
``CONTEXT_CHARS`` characters as look-behind context, so ``(?<!\\w)`` sees the character
before a match that was already released. The result equals one scan over the whole text,
however the text was split — the property the compliance kit checks.
"""

from __future__ import annotations

from typing import Final

from pipeline.scanner.decisions import Action, Decision, Hit, OnMatch
from pipeline.scanner.jsontext import JsonCursor, json_safe
from pipeline.scanner.rules import Rules
from pipeline.stage import NOTHING, Channel, ChannelEnd, ChannelKind, Finding, Release

__all__ = ["CONTEXT_CHARS", "ScanStage"]

CONTEXT_CHARS: Final = 64
"""Released input kept for look-behinds (they may look back this far across feeds)."""


class ScanStage:
    """One channel's scan (a sync :class:`pipeline.stage.Stage`)."""

    __slots__ = (
        "_buffer",
        "_channel",
        "_context",
        "_cursor",
        "_done",
        "_mask",
        "_name",
        "_offset",
        "_on_match",
        "_rules",
    )

    def __init__(
        self, rules: Rules, on_match: OnMatch, channel: Channel, *, mask: str, name: str
    ) -> None:
        self._rules = rules
        self._on_match = on_match
        self._channel = channel
        self._mask = mask
        self._name = name
        self._buffer = ""
        self._context = ""
        self._offset = 0
        """Offset in the stage's input of the first held character."""
        self._cursor = JsonCursor() if channel.kind is ChannelKind.JSON else None
        self._done = False

    @property
    def held(self) -> int:
        return len(self._buffer)

    def feed(self, text: str) -> Release:
        if not text or self._done:
            return NOTHING
        return self._scan(self._buffer + text, final=False)

    def finish(self, end: ChannelEnd) -> Release:
        if self._done or not self._buffer:
            self._buffer = ""
            return NOTHING
        return self._scan(self._buffer, final=True)

    def _open_at(self, hay: str, at: int, final: bool) -> int:
        """Where the leftmost open candidate at or after ``at`` starts (``len`` if none)."""
        size = len(hay)
        if final:
            return size
        rules = self._rules
        longest = rules.longest
        # Candidates further back than ``longest`` from the end are ignored: no match that
        # long counts (only reachable with an explicit ``longest`` on unbounded patterns).
        first = size
        at_or_near_end = max(at, size - longest)
        while (candidate := rules.open_candidates.search(hay, at, partial=True)) is not None:
            start: int = candidate.start()
            if size - start <= longest:
                first = start
                break
            at = max(start + 1, at_or_near_end)
        ending = rules.at_end.search(hay, at_or_near_end, partial=False)
        if ending is not None and ending.start() < first:
            return int(ending.start())
        return first

    def _scan(self, body: str, *, final: bool) -> Release:
        base = len(self._context)
        hay = self._context + body
        to_input = self._offset - base  # hay index -> offset in the stage's input
        out: list[str] = []
        findings: list[Finding] = []
        decided = search_at = base
        hold = self._open_at(hay, base, final)
        cursor, cursor_at = self._cursor, base
        pattern, longest = self._rules.pattern, self._rules.longest
        while (match := pattern.search(hay, search_at)) is not None and match.start() < hold:
            start, stop = match.span()
            if stop == start or stop - start > longest:
                search_at = start + 1
                continue
            if cursor is not None:
                cursor.advance(hay[cursor_at:start])
                cursor_at = start
            hit = Hit(
                self._rules.rule_of(match),
                match[0],
                start + to_input,
                stop + to_input,
                self._channel,
            )
            decision = (
                self._on_match if isinstance(self._on_match, Decision) else self._on_match(hit)
            )
            replacement = self._replacement(decision, hit.text)
            if replacement is None:  # unsafe to rewrite here (inside a JSON escape or quote)
                search_at = start + 1
                continue
            out.append(hay[decided:start])
            if decision.action is not Action.KEEP:
                findings.append(
                    Finding(decision.rule or hit.rule, decision.action.value, hit.start, hit.end)
                )
            if decision.action is Action.BLOCK:
                self._done, self._buffer = True, ""
                reason = decision.text or f"{self._name}: {decision.rule or hit.rule}"
                return Release("".join(out), block=reason, findings=tuple(findings))
            out.append(replacement)
            if cursor is not None:
                cursor.advance(match[0])
                cursor_at = stop
            decided = search_at = stop
            if hold < stop:
                hold = self._open_at(hay, stop, final)
        out.append(hay[decided:hold])
        if cursor is not None:
            cursor.advance(hay[cursor_at:hold])
        self._offset = hold + to_input
        self._context = hay[max(0, hold - CONTEXT_CHARS) : hold]
        self._buffer = hay[hold:]
        return (
            Release("".join(out), findings=tuple(findings)) if findings else Release("".join(out))
        )

    def _replacement(self, decision: Decision, matched: str) -> str | None:
        """The text that goes out for the match, or None when it cannot be rewritten safely."""
        action = decision.action
        if action in (Action.FLAG, Action.KEEP, Action.BLOCK):
            return matched if action is not Action.BLOCK else ""
        text = self._mask if action is Action.MASK else decision.text
        cursor = self._cursor
        if cursor is None:
            return text
        trailing = len(matched) - len(matched.rstrip("\\"))
        if not cursor.safe_start or '"' in matched or trailing % 2:
            return None
        return json_safe(text, in_string=cursor.in_string)
