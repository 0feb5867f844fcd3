"""Word-level alignment of a stage's input and output, for the replay report.

A character diff of ``Acme Cloud`` against ``[COMPETITOR]`` interleaves the letters the two
happen to share (``[C|loud|OMPETITOR]``); a reader wants "these words became that". So the
texts are cut into words, runs of spaces and runs of punctuation, and aligned token by
token (:mod:`difflib`). The same alignment maps an offset in a later stage's input back
through every earlier stage to the upstream text, so findings can be shown where the
upstream put them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Alignment", "align", "to_upstream"]

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]+")


def _tokens(text: str) -> tuple[list[str], list[int]]:
    """The tokens of ``text`` and the offset where each starts (plus the end)."""
    pieces = _TOKEN.findall(text)
    starts = [0]
    for piece in pieces:
        starts.append(starts[-1] + len(piece))
    return pieces, starts


@dataclass(frozen=True, slots=True)
class Alignment:
    """``before`` and ``after`` as aligned character ranges: (op, a1, a2, b1, b2)."""

    before: str
    after: str
    ops: tuple[tuple[str, int, int, int, int], ...]

    def back(self, offset: int, *, end: bool = False) -> int:
        """Where ``offset`` in ``after`` came from in ``before`` (a rewritten run maps to
        its whole source: its start, or with ``end`` its end)."""
        for op, a1, a2, b1, b2 in self.ops:
            if b1 <= offset < b2 or (end and b1 < offset <= b2):
                if op == "equal":
                    return a1 + offset - b1
                return a2 if end else a1
        return len(self.before) if offset >= len(self.after) else 0


def align(before: str, after: str) -> Alignment:
    """Word-level alignment of two texts."""
    a, a_at = _tokens(before)
    b, b_at = _tokens(after)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    ops = tuple(
        (op, a_at[i1], a_at[i2], b_at[j1], b_at[j2]) for op, i1, i2, j1, j2 in matcher.get_opcodes()
    )
    return Alignment(before, after, ops)


def to_upstream(chain: Sequence[Alignment], start: int, end: int) -> tuple[int, int]:
    """A span in the input of the stage after ``chain`` (each alignment one earlier stage,
    first stage first), mapped back to the upstream text."""
    for alignment in reversed(chain):
        start, end = alignment.back(start), alignment.back(end, end=True)
    return start, end
