"""Precision and recall of the profanity stage over the labelled corpus in corpus/profanity/.

``profane.txt``, ``evasive.txt`` and ``homoglyph.txt`` mark every span the stage must flag
with ``[[...]]``; ``innocent.txt`` holds look-alikes that must pass untouched. Every item
runs under :func:`tests.chunking_support.corpus_chunkings` (whole, one character per
piece, random splits), each chunking counted on its own. Recall must reach 0.95 over the
marked items, and no innocent item may be flagged. Run with ``pytest -s`` to see the
table (README, "Profanity: precision and recall").

The loader lives here and is imported by test_profanity.py, which replays the same
sentences through random chunkings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from filters.profanity import ProfanityConfig, ProfanityFactory
from pipeline.testing import run_factory
from tests.chunking_support import corpus_chunkings

CORPUS = Path(__file__).parent / "corpus" / "profanity"
KINDS = ("profane", "evasive", "homoglyph", "innocent")
MARK = re.compile(r"\[\[(.+?)\]\]")
RECALL_TARGET = 0.95


@dataclass(frozen=True)
class Sample:
    """One corpus line, markers removed, with the spans the stage must flag."""

    kind: str
    text: str
    labels: tuple[tuple[int, int], ...]


def parse(kind: str, line: str) -> Sample:
    """A sample from a corpus line: ``[[...]]`` marks a span that must be flagged."""
    text, labels, position = "", [], 0
    for mark in MARK.finditer(line):
        text += line[position : mark.start()]
        labels.append((len(text), len(text) + len(mark.group(1))))
        text += mark.group(1)
        position = mark.end()
    return Sample(kind, text + line[position:], tuple(labels))


@cache
def samples() -> tuple[Sample, ...]:
    """Every item of the corpus, in file order."""
    return tuple(
        parse(kind, line)
        for kind in KINDS
        for line in (CORPUS / f"{kind}.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )


def _overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(start < span[1] and span[0] < end for start, end in spans)


@dataclass
class Score:
    """Counts for one corpus file."""

    items: int = 0
    labels: int = 0
    found: int = 0
    """Labels overlapped by a finding."""
    findings: int = 0
    false: int = 0
    """Findings that overlap no label."""

    @property
    def recall(self) -> float:
        return self.found / self.labels if self.labels else 1.0

    @property
    def precision(self) -> float:
        return (self.findings - self.false) / self.findings if self.findings else 1.0


@cache
def scores() -> dict[str, Score]:
    """Score per corpus file for the default configuration, with a printed table."""
    factory = ProfanityFactory(ProfanityConfig())
    table = {kind: Score() for kind in KINDS}
    for sample in samples():
        score = table[sample.kind]
        score.items += 1
        for pieces in corpus_chunkings(sample.text, sample.text):
            spans = [(f.start, f.end) for f in run_factory(factory, pieces).findings]
            score.labels += len(sample.labels)
            score.found += sum(_overlaps(label, spans) for label in sample.labels)
            score.findings += len(spans)
            score.false += sum(not _overlaps(span, list(sample.labels)) for span in spans)
    print(
        f"\n{'file':<10}{'items':>7}{'labels':>8}{'found':>7}{'false+':>8}{'recall':>8}{'prec.':>7}"
    )
    for kind, s in table.items():
        print(
            f"{kind:<10}{s.items:>7}{s.labels:>8}{s.found:>7}{s.false:>8}"
            f"{s.recall:>8.3f}{s.precision:>7.3f}"
        )
    return table


def test_corpus_is_large_enough() -> None:
    """The corpus holds at least 150 items, with every kind represented."""
    kinds = {sample.kind for sample in samples()}
    assert set(KINDS) == kinds
    assert len(samples()) >= 150


def test_recall_on_profane_and_evasive_items() -> None:
    """At least 95% of the marked words, plain, disguised or homoglyphs, are flagged."""
    table = scores()
    marked = [table[kind] for kind in KINDS if kind != "innocent"]
    labels = sum(score.labels for score in marked)
    found = sum(score.found for score in marked)
    assert found / labels >= RECALL_TARGET


def test_no_innocent_look_alike_is_flagged() -> None:
    """Precision is 1.0 on the look-alikes: not one finding in innocent.txt."""
    assert scores()["innocent"].findings == 0


def test_findings_in_profane_items_all_hit_a_label() -> None:
    """Every finding in the marked items covers a marked word."""
    table = scores()
    assert (1.0, 1.0, 1.0) == tuple(table[k].precision for k in ("profane", "evasive", "homoglyph"))


def test_every_class_is_caught_under_every_chunking() -> None:
    """Recall is 1.0 on each marked file, whole, per character and in random splits."""
    table = scores()
    assert (1.0, 1.0, 1.0) == tuple(table[k].recall for k in ("profane", "evasive", "homoglyph"))
