"""Deterministic random chunkings for the corpus scores: whole, one character per piece,
and seeded random splits, so a precision/recall figure is the same on every run."""

from __future__ import annotations

import random
from collections.abc import Iterator

RANDOM_SPLITS = 3
"""Random chunkings per item, besides whole and one character per piece."""


def corpus_chunkings(text: str, seed: str) -> Iterator[list[str]]:
    """``text`` whole, in single characters, and in :data:`RANDOM_SPLITS` random splits of
    1 to 8 characters per piece (seeded by ``seed``, so every run splits alike)."""
    yield [text]
    yield list(text)
    rng = random.Random(seed)
    for _ in range(RANDOM_SPLITS):
        pieces, at = [], 0
        while at < len(text):
            size = rng.randint(1, 8)
            pieces.append(text[at : at + size])
            at += size
        yield pieces
