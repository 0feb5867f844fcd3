"""The moderation benchmark runs end to end and draws its chart; timings never asserted."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from benchmarks.moderation_bench import QUICK, run_benchmark, table
from benchmarks.moderation_chart import nice_ceiling, render_svg

SVG = "{http://www.w3.org/2000/svg}"


async def test_a_quick_run_measures_every_mode_and_draws_them() -> None:
    """One latency, one stream per route: a row per mode, hold exposing nothing, bounded
    within its budget, and a chart with a bar per mode in each of three panels."""
    rows = await run_benchmark(QUICK)

    assert ["baseline", "hold", "bounded", "monitor"] == [row.mode for row in rows]
    exposure = {row.mode: row.exposure_chars for row in rows}
    assert (None, 0) == (exposure["baseline"], exposure["hold"])
    assert 0 <= (exposure["bounded"] or 0) <= QUICK.max_unverified_chars
    assert all(row.ttft_ms > 0 and row.total_ms >= row.ttft_ms for row in rows)
    assert "| 10 ms | bounded |" in table(rows, QUICK)
    svg = ET.fromstring(render_svg(rows, QUICK.max_unverified_chars))  # noqa: S314 - our own output
    bars = [r for r in svg.iter(f"{SVG}rect") if r.get("fill") != "white"]
    assert 3 + 3 * 3 == len(bars)  # three legend swatches, three bars in each panel


def test_axis_tops_are_round_numbers() -> None:
    """An axis ends at the next round number: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times
    a power of ten."""
    assert [1.0, 2.5, 50.0, 800.0, 1200.0] == [nice_ceiling(v) for v in (0.3, 2.2, 41, 760, 1059)]
