"""Hypothesis strategies for chunk-boundary properties (needs ``streamsieve[testing]``)."""

from __future__ import annotations

from hypothesis import strategies as st

from pipeline.testing.run import split_at

__all__ = ["chunkings"]


@st.composite
def chunkings(draw: st.DrawFn, text: str) -> list[str]:
    """A random split of ``text`` into non-empty pieces, down to one character each."""
    if len(text) <= 1:
        return [text] if text else []
    mode = draw(st.sampled_from(["random", "chars", "whole"]))
    if mode == "chars":
        return list(text)
    if mode == "whole":
        return [text]
    cuts = draw(st.lists(st.integers(min_value=1, max_value=len(text) - 1), max_size=len(text)))
    return split_at(text, cuts)
