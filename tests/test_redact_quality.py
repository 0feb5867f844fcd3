"""Per-detector precision and recall of the redact stage under random chunkings.

The corpus of ``test_redact_corpus.py`` is fed whole, one character per piece, and cut at
random points (seeded by the text's name, so a run is repeatable); the figures must be the
same for every chunking, and the README's table must be the one computed here.
"""

from __future__ import annotations

import random
from pathlib import Path

from pipeline.testing import split_at
from tests.test_redact_corpus import Sample, score, table, whole

README = Path(__file__).parent.parent / "README.md"
START, END = "<!-- redact-quality:start -->", "<!-- redact-quality:end -->"


def one_char(sample: Sample) -> list[str]:
    """One character per piece: the hardest split."""
    return list(sample.text)


def random_cuts(sample: Sample) -> list[str]:
    """Pieces of 1 to 8 characters, cut where the text's own seed says."""
    rng = random.Random(sample.name)
    cuts, at = [], 0
    while at < len(sample.text):
        at += rng.randint(1, 8)
        cuts.append(at)
    return split_at(sample.text, cuts)


def test_figures_are_the_same_under_every_chunking_and_in_the_readme() -> None:
    """Whole, one character per piece and random pieces give one table, with no miss, no
    false positive and no leak; the README shows that table."""
    tallies = [score(chunks_of) for chunks_of in (whole, one_char, random_cuts)]
    for tally in tallies:
        assert [] == tally.failures
    tables = {table(tally) for tally in tallies}
    assert 1 == len(tables)
    readme = README.read_text(encoding="utf-8")
    shown = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert tables.pop() == shown
