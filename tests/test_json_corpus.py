"""Precision and recall of the ``json`` stage on the labelled corpus in corpus/json/.

``jsontestsuite.txt`` holds every UTF-8 case of JSONTestSuite's test_parsing/ (cited in the
file), ``streamsieve.txt`` cases of our own (trailing whitespace, model habits). A positive
is an invalid document: the stage must block it without ever releasing a complete-looking
document; a valid one must pass byte-identical. Every item runs under
:func:`tests.chunking_support.corpus_chunkings` (whole, one character per piece, random
splits); a chunking counts on its own. Run with ``pytest -s`` for the table (README).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from filters.json import JsonConfig, JsonFactory
from pipeline.stage import Channel, ChannelKind
from pipeline.testing import run_factory
from tests.chunking_support import corpus_chunkings

CORPUS = Path(__file__).parent / "corpus" / "json"
FILES = ("jsontestsuite", "streamsieve")
CHANNEL = Channel("choice0.content", ChannelKind.JSON)


@dataclass(frozen=True)
class Case:
    """One corpus line: whether the document is valid, its name and its text."""

    source: str
    valid: bool
    name: str
    text: str


@cache
def cases() -> tuple[Case, ...]:
    """Every case of the corpus files, in file order."""
    found = []
    for source in FILES:
        for line in (CORPUS / f"{source}.txt").read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                expect, name, literal = line.split(" ", 2)
                assert expect in ("valid", "invalid"), line
                found.append(Case(source, expect == "valid", name, json.loads(literal)))
    return tuple(found)


@dataclass
class Score:
    """Counts over every chunking of one corpus file (positive: an invalid document)."""

    runs: int = 0
    true_pos: int = 0
    false_pos: int = 0
    false_neg: int = 0
    misses: tuple[str, ...] = ()

    @property
    def precision(self) -> float:
        caught = self.true_pos + self.false_pos
        return self.true_pos / caught if caught else 1.0

    @property
    def recall(self) -> float:
        positives = self.true_pos + self.false_neg
        return self.true_pos / positives if positives else 1.0


def _outcome(case: Case, pieces: list[str], factory: JsonFactory) -> str | None:
    """``None`` when the run is right, else what went wrong."""
    run = run_factory(factory, pieces, CHANNEL)
    if case.valid:
        return None if (None, case.text) == (run.block, run.text) else "blocked or changed"
    if run.block is None:
        return "passed"
    try:
        json.loads(run.text)
    except ValueError:
        return None
    return "released a complete-looking document" if run.text.strip() else None


@cache
def scores() -> dict[str, Score]:
    """Score per corpus file for the default configuration, with a printed table."""
    factory = JsonFactory(JsonConfig())
    table = {source: Score() for source in FILES}
    for case in cases():
        score = table[case.source]
        for pieces in corpus_chunkings(case.text, case.name):
            score.runs += 1
            wrong = _outcome(case, pieces, factory)
            if wrong is None:
                score.true_pos += not case.valid
            elif case.valid:
                score.false_pos += 1
                score.misses += (f"{case.name}: {wrong}",)
            else:
                score.false_neg += 1
                score.misses += (f"{case.name}: {wrong}",)
    print(f"\n{'file':<15}{'items':>7}{'runs':>7}{'precision':>11}{'recall':>8}")
    for source, s in table.items():
        items = sum(c.source == source for c in cases())
        print(f"{source:<15}{items:>7}{s.runs:>7}{s.precision:>11.3f}{s.recall:>8.3f}")
    return table


def test_corpus_covers_every_class() -> None:
    """Both files load, with valid and invalid documents and the trailing-whitespace class."""
    assert {c.source for c in cases()} == set(FILES)
    assert len(cases()) >= 300
    assert any(c.valid for c in cases())
    assert any(not c.valid for c in cases())
    assert sum(c.name.startswith("ws_after") for c in cases()) >= 5


@pytest.mark.parametrize("source", FILES)
def test_every_case_is_judged_right_under_every_chunking(source: str) -> None:
    """Precision and recall are 1.0: every invalid document is blocked before it reads as
    complete, and every valid one passes byte-identical, however it is split."""
    score = scores()[source]
    assert () == score.misses
    assert (1.0, 1.0) == (score.precision, score.recall)
