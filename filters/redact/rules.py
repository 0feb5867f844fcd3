"""What every channel of one kind shares: compiled rules, the plan, numbering.

A :class:`Plan` is built once per route and channel kind by the factory; each opened
stage reads it and never writes it. Its ``triggered`` picks the detectors a feed can
concern, which is what keeps the per-token cost of prose low.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from filters.redact.config import ReplacementStyle
from filters.redact.detectors import Tail
from filters.redact.validators import Validator
from pipeline.textview import Normaliser

DEFAULT_HOLDBACK = 256
"""Characters one channel may hold when ``max_holdback_chars`` is not set."""

ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_LONG_FEED = 64
_MEMO_PIECE = 16
"""New text up to this long has its triggered detectors remembered (tokens are short)."""
_MEMO_SIZE = 4096
"""Remembered pieces per plan before the table starts afresh: memory stays bounded."""
"""Past this many characters a feed triggers detectors by the characters it contains,
wherever they are: a superset, found without a Python loop over every character."""

Event = tuple[int, int, int, int, int]
"""(start, kind, -length, rule index, end): the smallest tuple is the candidate to act on."""


class Numbering:
    """Numbers for the ``numbered`` style: the same value gets the same number.

    One per response and factory, shared by the response's channels through
    ``Channel.scope``. Values are kept only as digests keyed with a random per-instance
    key.
    """

    __slots__ = ("_counts", "_key", "_numbers")

    def __init__(self) -> None:
        self._key = b""  # drawn on first use: most channels never number anything
        self._numbers: dict[tuple[str, bytes], int] = {}
        self._counts: dict[str, int] = {}

    def number(self, label: str, value: str) -> int:
        """The number of ``value`` among values labelled ``label`` (1 for the first)."""
        if not self._key:
            self._key = secrets.token_bytes(16)
        digest = hashlib.blake2b(value.encode(), key=self._key, digest_size=16).digest()
        number = self._numbers.get((label, digest))
        if number is None:
            number = self._counts.get(label, 0) + 1
            self._counts[label] = number
            self._numbers[label, digest] = number
        return number


@dataclass(frozen=True, slots=True)
class Rule:
    """A detector compiled for one channel kind, with its resolved style."""

    name: str
    label: str
    rx: Any  # regex.Pattern: the regex module ships no type stubs
    validate: Validator | None
    lookahead: int
    decisive: bool
    tail: Tail
    tail_rx: Any
    style: ReplacementStyle
    openings: tuple[Any, Any, Any]
    """Where a candidate may start (``re`` or ``regex`` patterns, or None), by how the
    text being scanned reads: the channel's own (raw JSON with a backslash: escape-aware
    boundaries), the text one (text, or JSON without a backslash, where the boundary
    after an escape cannot apply, so the two read the same), and the text one for ASCII
    text (an ASCII twin where it has Unicode classes, which stdlib ``re`` searches
    several times slower)."""
    needs: str
    """``DetectorSpec.needs``: without it in the text, ``opening`` finds the candidate."""
    wraps: bool
    """The pattern may cross a line break: a rejected value is tried again without the
    part after the break."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a stage needs that is shared by every channel of one kind."""

    rules: tuple[Rule, ...]
    bound: int
    json: bool
    mask: str
    mask_text: str
    hash_key: bytes
    hash_length: int
    allow: frozenset[str]
    allow_rx: tuple[Any, ...]
    overflow_rx: Any
    starters: dict[str, int]
    """Per character, the bit mask of the detectors whose matches can start with it."""
    inner: dict[str, int]
    """``starters`` for a character right after an ASCII letter or digit: only the
    detectors whose left boundary allows that; the others start only where a word does
    (in JSON, where no backslash precedes: ``\\n`` is a boundary too)."""
    anywhere: int
    """Bit mask of the detectors whose matches can start with any character."""
    unicode: int
    """Bit mask of the detectors whose matches can start with a non-ASCII character."""
    normaliser: Normaliser | None
    """The view's normaliser: the stage reads the channel through a view (``None``: raw)."""
    memo: dict[tuple[str, bool, bool, int], tuple[int, ...]] = field(
        default_factory=dict, init=False, compare=False
    )
    """``triggered``'s remembered answers (each plan its own: rules differ)."""

    def triggered(self, s: str, fresh: int, live: dict[int, Event], plain: bool) -> tuple[int, ...]:
        """Indices of the detectors to run on the new text ``s[fresh:]``: those with a
        live candidate and those that can start at one of its characters. ``plain``:
        ``s`` is text or JSON without a backslash.

        Prose repeats its tokens, so the answer for a token (with whether a letter or
        digit precedes it and which candidates are live) is remembered, in a bounded
        table shared by the route's channels."""
        new = s[fresh:]
        running = 0
        for i in live:
            running |= 1 << i
        key = (new, fresh > 0 and s[fresh - 1] in ALNUM, plain, running)
        known = self.memo.get(key)
        if known is None:
            known = _bits(self._starting(new, key[1], plain) | running)
            if len(new) <= _MEMO_PIECE:
                if len(self.memo) >= _MEMO_SIZE:
                    self.memo.clear()
                self.memo[key] = known
        return known

    def _starting(self, new: str, after_alnum: bool, plain: bool) -> int:
        """The bit mask of the detectors that can start at a character of ``new``."""
        starters = self.starters
        inner = self.inner if plain else starters
        mask = self.anywhere if new else 0
        if len(new) > _LONG_FEED:
            # A whole response in one feed: a loop over every character would cost more
            # than the searches it saves, so any occurrence of a first character counts.
            for char in set(new):
                mask |= starters.get(char, 0)
        else:
            table = inner if after_alnum else starters
            for char in new:
                mask |= table.get(char, 0)
                table = inner if char in ALNUM else starters
        if self.unicode and not new.isascii():
            mask |= self.unicode
        return mask

    def accepts(self, rule: Rule, value: str) -> bool:
        """Whether a candidate is redacted: valid, not allowed, JSON-safe to replace
        (``json`` is set for raw JSON only: a view re-encodes what it replaces)."""
        if self.json and ('"' in value or "\\" in value):
            return False
        if rule.validate is not None and not rule.validate(value):
            return False
        return value not in self.allow and not any(rx.fullmatch(value) for rx in self.allow_rx)

    def render(self, rule: Rule, value: str, numbering: Numbering) -> str:
        """The placeholder for ``value`` in ``rule``'s style."""
        style = rule.style
        if style is ReplacementStyle.MASK:
            return self.mask_text
        if style is ReplacementStyle.TYPED:
            return f"[{rule.label}]"
        if style is ReplacementStyle.NUMBERED:
            return f"[{rule.label}_{numbering.number(rule.label, value)}]"
        if style is ReplacementStyle.HASH:
            digest = hmac.new(self.hash_key, value.encode(), hashlib.sha256).hexdigest()
            return f"[{rule.label}:{digest[: self.hash_length]}]"
        kept = value.replace(" ", "").replace("-", "").rstrip(".")
        return f"[{rule.label} ****{kept[-4:] if len(kept) >= 8 else ''}]"


def _bits(mask: int) -> tuple[int, ...]:
    """The indices of the set bits of ``mask``, lowest first."""
    indices = []
    while mask:
        lowest = mask & -mask
        indices.append(lowest.bit_length() - 1)
        mask ^= lowest
    return tuple(indices)
