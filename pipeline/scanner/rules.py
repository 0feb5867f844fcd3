"""Rules: what a scanning stage looks for, compiled once per route.

Every rule (a phrase list or a ``regex`` pattern) becomes one named alternative of a single
pattern, so one search per piece of text serves any number of rules. Next to it lives its
*never-complete twin* (the same alternation followed by ``(?!)``): searched with
``partial=True`` it can only ever report a candidate that runs into the end of the text,
which, with the complete matches ending right at the end of the text (:attr:`Rules.at_end`),
is exactly the set of places where more text could still change the outcome. That
twin is what makes hold-back correct with overlapping alternatives: ``regex`` prefers a
complete match to an earlier partial one, so a plain partial search finds ``of`` in
``you son of a`` and misses that ``son of a gun`` may still start at ``son``.

The natural bound (:attr:`Rules.longest`) is derived from the patterns: the most
characters any alternative can read, its look-aheads included.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import regex

__all__ = ["Rules", "UnboundedPatternError", "pattern_width", "phrase_pattern"]

_UNBOUNDED = sys.maxsize
_SCOPED_FLAGS = (
    (regex.IGNORECASE, "i"),
    (regex.MULTILINE, "m"),
    (regex.DOTALL, "s"),
    (regex.VERBOSE, "x"),
)


class UnboundedPatternError(ValueError):
    """A pattern may match text of any length, so no hold-back bound follows from it."""


def phrase_pattern(phrase: str, *, whole_words: bool = True) -> str:
    """The pattern for one literal phrase: any whitespace between its words, and (with
    ``whole_words``) no word character right before or after it."""
    words = phrase.split()
    if not words:
        raise ValueError("a phrase needs at least one non-space character")
    body = r"\s".join(regex.escape(word) for word in words)
    return rf"(?<!\w){body}(?!\w)" if whole_words else body


def pattern_width(source: str) -> int:
    """The most characters a match of ``source`` can read, its look-aheads included.

    Read from the standard library's parse of the pattern, which covers the syntax both
    ``re`` and ``regex`` share. Raises :class:`UnboundedPatternError` for an unbounded
    repeat (``+``, ``*``, ``{n,}``) or syntax only ``regex`` knows.
    """
    try:
        parsed = re._parser.parse(source)  # type: ignore[attr-defined]
    except (re.error, OverflowError) as exc:
        raise UnboundedPatternError(
            f"cannot derive a bound from {source!r} ({exc}); pass longest= explicitly"
        ) from None
    width = _width(parsed)
    if width >= _UNBOUNDED:
        raise UnboundedPatternError(
            f"{source!r} can match unboundedly long text; bound every repeat "
            "(say \\d{4,8} rather than \\d+) or pass longest= explicitly"
        )
    return width


def _width(items: Any) -> int:
    """Upper bound of the characters read by a parsed (sub)pattern."""
    c = re._constants  # type: ignore[attr-defined]
    total = 0
    for op, arg in items:
        if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN, c.CATEGORY):
            total += 1
        elif op is c.BRANCH:
            total += max((_width(branch) for branch in arg[1]), default=0)
        elif op is c.SUBPATTERN:
            total += _width(arg[-1])
        elif op is c.ATOMIC_GROUP:
            total += _width(arg)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            _, high, inner = arg
            inner_width = _width(inner)
            if inner_width and high >= c.MAXREPEAT:
                return _UNBOUNDED
            total += high * inner_width
        elif op in (c.ASSERT, c.ASSERT_NOT):
            direction, inner = arg
            if direction > 0:  # a look-ahead reads past the match: it counts
                total += _width(inner)
        elif op is c.GROUPREF_EXISTS:
            _, yes, no = arg
            total += max(_width(yes), _width(no) if no else 0)
        elif op is c.GROUPREF:
            return _UNBOUNDED  # as long as the group it repeats: not known here
        if total >= _UNBOUNDED:
            return _UNBOUNDED
    return total


def _scoped(pattern: str | regex.Pattern[str]) -> str:
    """A pattern's source with its compile flags carried inline, ``(?i:...)``."""
    if isinstance(pattern, str):
        return pattern
    flags = "".join(letter for flag, letter in _SCOPED_FLAGS if pattern.flags & flag)
    return f"(?{flags}:{pattern.pattern})" if flags else pattern.pattern


@dataclass(frozen=True, slots=True, eq=False)
class Rules:
    """Compiled rules: one alternation with a group per rule, its twin, and its bound.

    Earlier rules win over later ones at the same start (regex alternation order); phrase
    lists are sorted longest first, so ``son of a gun`` wins over ``son``.
    """

    pattern: regex.Pattern[str]
    """Finds complete matches (leftmost start, first alternative that matches there).
    Without groups: named groups make every search about three times slower."""
    named: regex.Pattern[str]
    """The same alternation with a group per rule, matched only where a match starts."""
    open_candidates: regex.Pattern[str]
    """The never-complete twin: with ``partial=True``, where a match may still start."""
    at_end: regex.Pattern[str]
    """Complete matches that end exactly at the end of the text: ``\\b``, ``$`` and
    ``\\Z`` hold there without asking for more text, yet more text could undo them."""
    names: tuple[str, ...]
    """Rule name per alternative, in order (group ``_r0`` is ``names[0]``...)."""
    sources: tuple[str, ...]
    """Each alternative's pattern source, flags inline (the kit builds texts from them)."""
    longest: int
    """The natural bound: the most characters one candidate can span."""

    @classmethod
    def from_patterns(
        cls,
        patterns: Mapping[str, str | regex.Pattern[str]]
        | Iterable[tuple[str, str | regex.Pattern[str]]],
        *,
        ignore_case: bool = False,
        longest: int | None = None,
    ) -> Rules:
        """Rules from ``{rule name: pattern}`` (sources or compiled ``regex`` patterns).

        Each pattern is bounded by its own width unless ``longest`` is given (then matches
        longer than it are ignored). Use named groups for back-references: every pattern
        is wrapped in a group, so numbered ones would shift.
        """
        items = list(patterns.items() if isinstance(patterns, Mapping) else patterns)
        if not items:
            raise ValueError("no rules: give at least one pattern or phrase")
        sources: list[str] = []
        widths: list[int] = []
        for name, pattern in items:
            source = _scoped(pattern)
            try:
                compiled = regex.compile(source)
            except regex.error as exc:
                raise ValueError(f"rule {name}: not a valid regex: {exc}") from None
            if compiled.fullmatch(""):
                raise ValueError(f"rule {name} matches empty text, which finds nothing")
            sources.append(source)
            if longest is None:
                widths.append(pattern_width(source))
        named = "|".join(f"(?P<_r{i}>{source})" for i, source in enumerate(sources))
        alternation = "|".join(f"(?:{source})" for source in sources)
        flags = regex.IGNORECASE if ignore_case else 0
        return cls(
            pattern=regex.compile(alternation, flags),
            named=regex.compile(named, flags),
            open_candidates=regex.compile(f"(?:{alternation})(?!)", flags),
            at_end=regex.compile(f"(?:{alternation})\\Z", flags),
            names=tuple(name for name, _ in items),
            sources=tuple(f"(?i:{source})" if ignore_case else source for source in sources),
            longest=longest if longest is not None else max(widths),
        )

    @classmethod
    def from_phrases(
        cls,
        phrases: Mapping[str, Iterable[str]],
        *,
        ignore_case: bool = True,
        whole_words: bool = True,
    ) -> Rules:
        """Rules from ``{rule name: [phrase, ...]}``: literal, longest phrase first."""
        items = [
            (name, phrase_pattern(phrase, whole_words=whole_words))
            for phrase, name in sorted(
                ((p, n) for n, ps in phrases.items() for p in ps),
                key=lambda pair: -len(pair[0]),
            )
        ]
        return cls.from_patterns(items, ignore_case=ignore_case)

    def rule_of(self, match: regex.Match[str]) -> str:
        """The name of the rule whose alternative produced ``match`` (of :attr:`pattern`):
        the same alternation, matched at the same place, tells it by its group."""
        named = self.named.match(match.string, match.start(), match.endpos)
        if named is None or named.lastgroup is None:
            raise LookupError("not a match of these rules")
        index = next(i for i in range(len(self.names)) if named.start(f"_r{i}") >= 0)
        return self.names[index]
