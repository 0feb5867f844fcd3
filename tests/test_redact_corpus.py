"""Precision and recall of the redact stage over the labelled corpus in corpus/redact/.

Every valid value of ``values.yaml`` must be redacted by its detector in every template
of ``templates.yaml`` (recall 1.0), no look-alike may be redacted by any detector (no
false positives), and the mixed documents of ``documents.yaml`` must come out exactly as
labelled. Run with ``pytest -s`` to see the per-detector table.

The loader lives here and is imported by test_redact.py, which replays the same samples
through random chunkings.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

from filters.redact import RedactConfig, RedactFactory
from filters.redact.detectors import BUILTIN, BUILTIN_NAMES
from pipeline.stage import Channel, Finding
from pipeline.testing import JSON_CHANNEL, TEXT_CHANNEL, run_factory

CORPUS = Path(__file__).parent / "corpus" / "redact"
PLACEHOLDERS = "".join(f"[{spec.label}]" for spec in BUILTIN)
LEAK = 5
"""A secret's substrings of this length or longer must never reach the output."""


@dataclass(frozen=True)
class Sample:
    """One text of the corpus with the spans that must be redacted."""

    name: str
    text: str
    channel: Channel
    labels: tuple[tuple[str, int, int], ...]
    """(detector, start, end) of every secret in ``text``."""

    def secrets(self) -> Iterator[str]:
        """The secrets as written in ``text`` (JSON-escaped in JSON samples)."""
        return (self.text[start:end] for _, start, end in self.labels)

    @cached_property
    def telltales(self) -> frozenset[str]:
        """The secrets' substrings of ``LEAK`` characters that may not reach the output:
        all of them except those also found around the secrets or inside a placeholder
        (``PRIVATE`` of a BEGIN line)."""
        outside = self.text
        for secret in self.secrets():
            outside = outside.replace(secret, "\0")
        innocent = f"{outside}\0{PLACEHOLDERS}"
        grams = (s[i : i + LEAK] for s in self.secrets() for i in range(len(s) - LEAK + 1))
        return frozenset(gram for gram in grams if gram not in innocent)

    def leaks(self, output: str) -> set[str]:
        """The telltales found in ``output``: any part of a secret (5+ characters)."""
        if len(output) < LEAK:
            return set()
        return {gram for gram in self.telltales if gram in output}


def _fill(template: Any, value: str) -> Any:
    if isinstance(template, str):
        return template.replace("{value}", value)
    if isinstance(template, dict):
        return {k: _fill(v, value) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, value) for v in template]
    return template


def _sample(name: str, text: str, channel: Channel, secrets: list[tuple[str, str]]) -> Sample:
    labels = []
    for detector, value in secrets:
        written = json.dumps(value)[1:-1] if channel is JSON_CHANNEL else value
        start = text.index(written)
        labels.append((detector, start, start + len(written)))
    return Sample(name, text, channel, tuple(labels))


def _source_sample(name: str, source: str, secrets: list[tuple[str, str]]) -> Sample:
    """A JSON channel fed ``source`` as written, its secrets as written there."""
    labels = []
    for detector, written in secrets:
        start = source.index(written)
        labels.append((detector, start, start + len(written)))
    return Sample(name, source, JSON_CHANNEL, tuple(labels))


def _load(name: str) -> Any:
    return yaml.safe_load((CORPUS / name).read_text(encoding="utf-8"))


@cache
def samples() -> tuple[Sample, ...]:
    """Every corpus text: values in templates, then the documents."""
    values, templates = _load("values.yaml"), _load("templates.yaml")
    found: list[Sample] = []
    for detector, entries in values.items():
        for kind in ("valid", "lookalikes"):
            for n, value in enumerate(entries[kind]):
                secrets = [(detector, value)] if kind == "valid" else []
                name = f"{detector}.{kind}{n}"
                for t, template in enumerate(templates["text"]):
                    text = template.replace("{value}", value)
                    found.append(_sample(f"{name}.text{t}", text, TEXT_CHANNEL, secrets))
                for t, template in enumerate(templates["json"]):
                    text = json.dumps(_fill(template, value))
                    found.append(_sample(f"{name}.json{t}", text, JSON_CHANNEL, secrets))
    for doc in _load("documents.yaml"):
        secrets = [(s["detector"], s["value"]) for s in doc["secrets"]]
        if "json_source" in doc:
            found.append(_source_sample(doc["name"], doc["json_source"], secrets))
        elif "json" in doc:
            found.append(_sample(doc["name"], json.dumps(doc["json"]), JSON_CHANNEL, secrets))
        else:
            found.append(_sample(doc["name"], doc["text"], TEXT_CHANNEL, secrets))
    return tuple(found)


def _covers(finding: Finding, label: tuple[str, int, int]) -> bool:
    rule, start, end = label
    return finding.rule == rule and finding.start <= start and finding.end >= end


def _overlaps(finding: Finding, label: tuple[str, int, int]) -> bool:
    _, start, end = label
    return finding.start < end and start < finding.end


@dataclass
class Tally:
    found: Counter[str]
    missed: Counter[str]
    true_findings: Counter[str]
    false_findings: Counter[str]
    failures: list[str]


def whole(sample: Sample) -> list[str]:
    """The whole text in one piece."""
    return [sample.text]


def score(chunks_of: Callable[[Sample], list[str]] = whole) -> Tally:
    """Findings, misses and leaks over the corpus, each text fed as ``chunks_of`` cuts it."""
    factory = RedactFactory(RedactConfig())
    tally = Tally(Counter(), Counter(), Counter(), Counter(), [])
    for sample in samples():
        run = run_factory(factory, chunks_of(sample), sample.channel)
        for label in sample.labels:
            hit = any(_covers(f, label) for f in run.findings)
            (tally.found if hit else tally.missed)[label[0]] += 1
            if not hit:
                tally.failures.append(f"missed {label[0]} in {sample.name}")
        for f in run.findings:
            if any(_covers(f, label) for label in sample.labels if label[0] == f.rule):
                tally.true_findings[f.rule] += 1
            elif not any(_overlaps(f, label) for label in sample.labels):
                tally.false_findings[f.rule] += 1
                tally.failures.append(f"false {f.rule} {sample.text[f.start : f.end]!r}")
        if leaked := sample.leaks(run.text):
            tally.failures.append(f"leaked {sorted(leaked)} in {sample.name}")
        if sample.channel is JSON_CHANNEL:
            json.loads(run.text)
    return tally


def table(tally: Tally) -> str:
    """The per-detector figures as a Markdown table (the README shows this one)."""
    rows = [
        "| redact detector | labels | found | false positives | precision | recall |",
        "|---|---|---|---|---|---|",
    ]
    for name in BUILTIN_NAMES:
        labels = tally.found[name] + tally.missed[name]
        findings = tally.true_findings[name] + tally.false_findings[name]
        precision = tally.true_findings[name] / findings if findings else 1.0
        recall = tally.found[name] / labels if labels else 1.0
        rows.append(
            f"| {name} | {labels} | {tally.found[name]} | {tally.false_findings[name]} "
            f"| {precision:.3f} | {recall:.3f} |"
        )
    return "\n".join(rows)


def _table(tally: Tally) -> str:
    rows = [f"{'detector':<16}{'labels':>7}{'found':>7}{'false+':>7}{'precision':>10}{'recall':>8}"]
    for name in BUILTIN_NAMES:
        labels = tally.found[name] + tally.missed[name]
        findings = tally.true_findings[name] + tally.false_findings[name]
        precision = tally.true_findings[name] / findings if findings else 1.0
        recall = tally.found[name] / labels if labels else 1.0
        rows.append(
            f"{name:<16}{labels:>7}{tally.found[name]:>7}{tally.false_findings[name]:>7}"
            f"{precision:>10.3f}{recall:>8.3f}"
        )
    return "\n".join(rows)


def test_corpus_recall_and_precision() -> None:
    """Every labelled secret is redacted by its detector, nothing else is, and no part of
    a secret reaches the output."""
    tally = score()
    print(f"\nredact corpus: {len(samples())} texts\n{_table(tally)}")
    assert [] == tally.failures


def test_corpus_covers_every_detector() -> None:
    """Each built-in detector has valid values and look-alikes in the corpus."""
    values = _load("values.yaml")
    assert set(BUILTIN_NAMES) == set(values)
    assert all(entries["valid"] and entries["lookalikes"] for entries in values.values())
