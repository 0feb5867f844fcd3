"""The benchmark runs end to end and reports figures for every target; timings never asserted."""

from __future__ import annotations

import dataclasses
import json

from benchmarks.bench import (
    QUICK,
    Variant,
    build_scenarios,
    percentile,
    render,
    run_benchmark,
    split_variants,
)

MASK = "tests.stages_for_tests:MaskWordFactory"
VARIANTS = (
    Variant("sieve", ()),
    Variant("sieve+mask", (MASK,)),
    Variant("sieve+mask-json", (MASK,), json_content=True),
)
TARGETS = ["direct", "baseline", "sieve", "sieve+mask", "sieve+mask-json"]


def test_quick_run_reports_figures_for_every_target() -> None:
    """A tiny run yields counts, latencies, CPU and hold-back figures for each target."""
    settings = dataclasses.replace(QUICK, concurrency=2, requests=1, tokens=10, variants=VARIANTS)

    result = run_benchmark(settings)

    assert ["prose", "pii"] == [scenario.name for scenario in result.scenarios]
    for scenario in result.scenarios:
        assert TARGETS == [row.target for row in scenario.targets]
        for row in scenario.targets:
            assert (2, 0, None) == (row.completed, row.errors, row.first_error)
            assert 0 < row.tokens
            assert all(isinstance(v, float) for v in (row.ttft_ms.p50, row.gap_ms.p99))
        direct, baseline, *sieves = scenario.targets
        assert (None, None) == (direct.cpu_s_per_1k_tokens, direct.added_ttft_ms)
        assert 1.0 == baseline.cpu_vs_baseline
        for row in sieves:
            assert isinstance(row.cpu_vs_baseline, float)
            assert row.added_ttft_ms is not None
            assert isinstance(row.added_ttft_ms.p50, float)
        [holdback] = scenario.holdback
        assert (MASK, scenario.tokens_per_reply) == (holdback.chain, holdback.feeds)
        assert 0 < holdback.cpu_ms_per_1k_chars
    # Per scenario: 3 streamsieve targets for TTFT, 2 with stages for CPU; 1 hold-back row.
    assert 2 * (3 + 2) + 1 == len(result.checks)
    assert "scenario pii" in render(result)
    assert (
        result.scenarios[0].name == json.loads(json.dumps(result.to_json()))["scenarios"][0]["name"]
    )


def test_variant_with_unknown_stage_is_skipped_and_named() -> None:
    """A variant whose stage type does not resolve is left out, with the type in the reason."""
    usable, skipped = split_variants([Variant("plain", ()), Variant("odd", ("no-such-stage",))])

    assert ["plain"] == [variant.name for variant in usable]
    assert 1 == len(skipped)
    assert "no-such-stage" in skipped[0]


def test_scenarios_chunk_losslessly_and_json_text_parses() -> None:
    """Chunks join back to the reply, stay token-sized, and the JSON rendition is valid JSON."""
    for scenario in build_scenarios(60):
        assert 60 <= len(scenario.chunks)
        assert all(1 <= len(chunk) <= 4 for chunk in scenario.chunks + scenario.json_chunks)
        document = json.loads("".join(scenario.json_chunks))
        assert " ".join(document["notes"]) == "".join(scenario.chunks)


def test_percentile_interpolates_between_ranks() -> None:
    """Percentiles interpolate linearly between ranks, and an empty sample has none."""
    assert 2.5 == percentile([4.0, 1.0, 3.0, 2.0], 50)
    assert 3.97 == round(percentile([1.0, 2.0, 3.0, 4.0], 99) or 0.0, 2)
    assert percentile([], 50) is None
