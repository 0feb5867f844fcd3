"""One pass over the held text: where candidates start, and what each one turns out to be."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final, Literal

from filters.profanity.lexicon import Lexicon
from filters.profanity.names import Name, judge, title_case
from filters.profanity.rules import (
    ARTICLES,
    MAX_GAP,
    QUOTES,
    RULE,
    RUN_LETTER,
    SEPARATORS,
    SPLITTERS,
    TEXT_TOKEN,
)


class _Gap(enum.Enum):
    """How the characters after a word relate it to the next word."""

    JOINED = "joined"
    """One to :data:`MAX_GAP` separators, then the next word."""
    OPEN = "open"
    """Separators up to the end of what is visible: the next word may still join."""
    BROKEN = "broken"
    """Anything else: no run or phrase continues past this word."""


class _Pending(enum.Enum):
    PENDING = "pending"


_PENDING: Final = _Pending.PENDING
"""A candidate that more text could still turn into a match, or out of one."""


@dataclass(frozen=True, slots=True)
class Hit:
    start: int
    end: int
    rule: str


_Outcome = Hit | Literal[_Pending.PENDING] | None


class Scan:
    """One pass over the held text (behind its context) deciding all it can.

    Candidates start at words; a candidate is judged on the text from its start up to
    ``limit`` (its start plus the bound), never beyond, so the verdict is the same
    whatever else had arrived when it was made.
    """

    __slots__ = ("_bound", "_final", "_from_start", "_lead", "_lex", "_spans", "_text")

    def __init__(
        self,
        lex: Lexicon,
        text: str,
        bound: int,
        final: bool,
        *,
        from_start: bool = False,
        lead: str = "",
    ) -> None:
        self._lex = lex
        self._text = text
        self._bound = bound
        self._final = final
        self._from_start = from_start
        self._lead = lead
        """Released text before ``text``, read only by the names rule (its window)."""
        self._spans = [m.span() for m in TEXT_TOKEN.finditer(text)]

    def decide(self, origin: int) -> tuple[list[Hit], int]:
        """Hits in ``text[origin:]`` and the offset where the undecided text starts."""
        hits: list[Hit] = []
        cursor = origin
        size = len(self._text)
        compounds = self._lex.compounds
        for i, (start, end) in enumerate(self._spans):
            if end <= cursor:
                continue
            if start < cursor:
                # A word continuing text already decided: only a stem inside it counts.
                if compounds is not None:
                    cursor, held = self._stems(i, cursor, hits)
                    if held:
                        return hits, cursor
                continue
            limit = min(size, start + self._bound)
            closed = self._final and limit == size
            outcome = self._best_at(i, limit, closed)
            if isinstance(outcome, Hit) and self._lex.names:
                outcome = self._unless_name(i, outcome, closed)
            if outcome is _PENDING:
                if limit == size:
                    return hits, start
                # Still open at the bound: fail closed, the held span counts as a match.
                outcome = Hit(start, limit, RULE)
            if outcome is not None:
                hits.append(outcome)
                cursor = outcome.end
            elif compounds is not None:
                cursor, held = self._stems(i, start, hits)
                if held:
                    return hits, cursor
        return hits, size

    def _stems(self, i: int, cursor: int, hits: list[Hit]) -> tuple[int, bool]:
        """Add the stems inside word ``i`` from ``cursor`` on to ``hits``; returns the
        new cursor, and whether a stem's beginning at the end of the text must be held
        (the cursor is then where it starts)."""
        lex, text = self._lex, self._text
        assert lex.compounds is not None
        start, end = self._spans[i]
        closed = self._final or end < len(text)
        word = text[start:end]
        if not lex.accepts(word):
            return cursor, False
        for match in lex.compounds.inner.finditer(text, cursor, end, partial=not closed):
            ending = match.group("e") is not None
            if match.partial or (ending and not closed and match.end() + 2 >= end):
                # Not complete yet, or an ending stem whose word may still go on.
                return match.start(), True
            if ending and (
                match.start() == start or text[match.end() : end] not in ("", "'s", "\u2019s")
            ):
                continue
            if lex.accepts(match.group()):
                hits.append(Hit(match.start(), match.end(), lex.rule_for(match.group())))
                cursor = match.end()
        return cursor, False

    def _unless_name(self, i: int, hit: Hit, closed: bool) -> _Outcome:
        """``hit``, unless it is one word of the names list used as a name."""
        text, spans = self._text, self._spans
        start, end = spans[i]
        word = text[hit.start : hit.end]
        possessive = text[hit.end : end] in ("'s", "\u2019s")
        if hit.start != start or not (hit.end == end or possessive):
            return hit
        if word.lower() not in self._lex.names:
            return hit
        if not title_case(word):
            return hit
        # The names rule reads further back than the scan: re-read with the lead (rare).
        shift = len(self._lead)
        full = self._lead + text
        earlier = [m.span() for m in TEXT_TOKEN.finditer(full, 0, start + shift)]
        before = earlier[-1] if earlier else None
        after = spans[i + 1] if i + 1 < len(spans) else None
        if after is not None:
            after = (after[0] + shift, after[1] + shift)
        word_span = (start + shift, end + shift)
        verdict = judge(full, word_span, before, after, closed=closed, from_start=self._from_start)
        if verdict is Name.UNDECIDED:
            return _PENDING
        return None if verdict is Name.NAME else hit

    def _best_at(self, i: int, limit: int, closed: bool) -> _Outcome:
        unit = self._unit_at(i, limit, closed)
        if unit is _PENDING:
            return _PENDING
        best: Hit | None = unit
        for outcome in (self._run_at(i, limit, closed), self._split_at(i, limit, closed)):
            if outcome is _PENDING:
                return _PENDING
            if outcome is not None and (best is None or outcome.end > best.end):
                best = outcome
        return best

    def _unit_at(self, i: int, limit: int, closed: bool) -> _Outcome:
        """The longest word or phrase match starting at word ``i``."""
        lex, text, spans = self._lex, self._text, self._spans
        start, end = spans[i]
        joined = text[start : min(end, limit)]
        if lex.ruled_out(joined):
            return None
        pieces = [(start, 0)]  # (offset in text, offset in joined) of each word
        best: Hit | None = None
        k = i
        while True:
            if spans[k][1] >= limit and not closed:
                return _PENDING if lex.grows(joined) else best
            match = lex.whole(joined)
            if match is not None:
                best = self._unit_hit(match, pieces) or best
            if not lex.has_phrases:
                return best
            gap = self._gap_after(k, limit, closed)
            if gap is _Gap.BROKEN or not lex.continues(joined):
                return best
            if gap is _Gap.OPEN:
                return _PENDING
            k += 1
            pieces.append((spans[k][0], len(joined) + 1))
            joined += " " + text[spans[k][0] : min(spans[k][1], limit)]

    def _unit_hit(self, match: Any, pieces: list[tuple[int, int]]) -> Hit | None:
        word: str = match.group("w")
        if not self._lex.accepts(word):
            return None
        w_start, w_end = match.span("w")
        last_text, last_joined = pieces[-1]
        return Hit(
            pieces[0][0] + w_start, last_text + w_end - last_joined, self._lex.rule_for(word)
        )

    def _split_at(self, i: int, limit: int, closed: bool) -> _Outcome:
        """A word cut by punctuation (``f.u_ck``, ``sh-it``): the whole chain of words
        joined by one to :data:`MAX_GAP` of ``. - _ ~`` (no space: ``as sess`` is two
        words) spells one entry. Only a whole chain counts, so ``p-a-s-s`` is not ``ass``."""
        lex, text, spans = self._lex, self._text, self._spans
        after = spans[i][1]
        if after < len(text) and text[after] not in SPLITTERS:
            return None
        if i and self._joins(spans[i - 1][1], spans[i][0], SPLITTERS):
            return None
        pieces: list[tuple[int, int]] = []  # (offset in text, offset in joined) per word
        joined = ""
        k = i
        while True:
            start, end = spans[k][0], min(spans[k][1], limit)
            pieces.append((start, len(joined)))
            joined += text[start:end]
            if spans[k][1] >= limit and not closed:
                return _PENDING if k > i and lex.grows(joined) else None
            gap = self._gap_after(k, limit, closed, SPLITTERS)
            if gap is _Gap.BROKEN:
                match = lex.whole(joined) if k > i else None
                return None if match is None else self._split_hit(match, pieces)
            if not lex.grows(joined):
                return None
            if gap is _Gap.OPEN:
                return _PENDING
            k += 1

    def _split_hit(self, match: Any, pieces: list[tuple[int, int]]) -> Hit | None:
        """The text span of ``match`` over words concatenated as ``pieces`` lists them."""
        word: str = match.group("w")
        if not self._lex.accepts(word):
            return None
        w_start, w_end = match.span("w")
        first = next(t + w_start - j for t, j in reversed(pieces) if j <= w_start)
        last = next(t + w_end - j for t, j in reversed(pieces) if j < w_end)
        return Hit(first, last, self._lex.rule_for(word))

    def _run_at(self, i: int, limit: int, closed: bool) -> _Outcome:
        """A spaced-out word whose run of one-letter words starts at word ``i``."""
        spans, text = self._spans, self._text
        opening = RUN_LETTER.fullmatch(text, spans[i][0], min(spans[i][1], limit))
        if opening is None or self._continues_run(i):
            return None
        letters: list[str] = []
        starts: list[int] = []
        k = i
        while True:
            start, end = spans[k][0], min(spans[k][1], limit)
            letter = RUN_LETTER.fullmatch(text, start, end)
            if letter is None or (k > i and letter.start(1) > start):
                break
            letters.append(letter.group(1))
            starts.append(letter.start(1))
            if end == limit and not closed:
                return self._open_run("".join(letters), last_may_grow=True)
            if letter.end(1) < end:
                break
            gap = self._gap_after(k, limit, closed)
            if gap is _Gap.OPEN:
                return self._open_run("".join(letters), last_may_grow=False)
            if gap is _Gap.BROKEN:
                break
            k += 1
        word = "".join(letters)
        first = self._spelled(word)
        if first is None:
            return None
        return Hit(starts[first], starts[-1] + 1, self._lex.rule_for(word[first:]))

    def _open_run(self, letters: str, last_may_grow: bool) -> _Outcome:
        lex = self._lex
        if lex.viable(letters) or (letters[0] in ARTICLES and lex.viable(letters[1:])):
            return _PENDING
        # If the last one-letter word grows into a longer word, the run ends before it.
        if last_may_grow and self._spelled(letters[:-1]) is not None:
            return _PENDING
        return None

    def _spelled(self, letters: str) -> int | None:
        """Index of the run's first matched letter (1 after an article), if it spells."""
        lex = self._lex
        if len(letters) >= 2 and lex.spells(letters):
            return 0
        if len(letters) >= 3 and letters[0] in ARTICLES and lex.spells(letters[1:]):
            return 1
        return None

    def _continues_run(self, i: int) -> bool:
        """Word ``i`` is a later letter of a run that starts before it."""
        if i == 0 or self._text[self._spans[i][0]] in QUOTES:
            return False
        before_start, before_end = self._spans[i - 1]
        letter = RUN_LETTER.fullmatch(self._text, before_start, before_end)
        return (
            letter is not None
            and letter.end(1) == before_end
            and self._joins(before_end, self._spans[i][0])
        )

    def _joins(self, start: int, end: int, allowed: frozenset[str] = SEPARATORS) -> bool:
        gap = self._text[start:end]
        return len(gap) <= MAX_GAP and allowed.issuperset(gap)

    def _gap_after(
        self, k: int, limit: int, closed: bool, allowed: frozenset[str] = SEPARATORS
    ) -> _Gap:
        end = self._spans[k][1]
        following = self._spans[k + 1][0] if k + 1 < len(self._spans) else len(self._text)
        if not self._joins(end, min(following, limit), allowed):
            return _Gap.BROKEN
        if following < limit:
            return _Gap.JOINED
        return _Gap.BROKEN if closed else _Gap.OPEN
