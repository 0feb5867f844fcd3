"""Texts made from a scanning stage's own rules, to try overlapping alternatives.

With the words ``son of a gun`` and ``of``, a hand-written scan that releases ``you son``
then masks ``of`` has already lost: ``son of a gun`` was still possible. Such faults show
only on texts where alternatives overlap, which the author may not think to write. For a
:class:`pipeline.scanner.MatchFactory` the kit samples matches of each rule (hypothesis
``from_regex``), strings several together (touching, spaced, one inside another's place,
the last one cut short) and checks every chunking against the one-feed result.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from hypothesis import strategies as st

from pipeline.scanner import MatchFactory

__all__ = ["rule_texts"]

_MAX_SAMPLE = 40


def rule_texts(factory: Any) -> st.SearchStrategy[str] | None:
    """Texts from the rules of ``factory``, or None when it has no rules to sample."""
    if not isinstance(factory, MatchFactory):
        return None
    samples = []
    for source in factory.rules.sources:
        try:
            compiled = re.compile(source)
        except (re.error, OverflowError):  # regex-only syntax: this rule is not sampled
            continue
        samples.append(st.from_regex(compiled, fullmatch=True).filter(_short))
    if not samples:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _composed(st.one_of(samples))


def _short(text: str) -> bool:
    return 0 < len(text) <= _MAX_SAMPLE


@st.composite
def _composed(draw: st.DrawFn, match: st.SearchStrategy[str]) -> str:
    pieces = draw(st.lists(match, min_size=1, max_size=3))
    glue = draw(st.sampled_from(["", " ", " x "]))
    text = draw(st.sampled_from(["", "a "])) + glue.join(pieces)
    cut = draw(st.integers(min_value=max(1, len(text) - 3), max_value=len(text)))
    return text[:cut] + draw(st.sampled_from(["", " ", ".", "s"]))
