"""The moderation benchmark drawn as an SVG, by hand: no plotting library to install.

Three panels share one legend: added time to first token, added total time, and the
exposure (characters from the flagged sentence on that reached the client), each with a
group of bars per classifier latency and one bar per mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from benchmarks.moderation_bench import Row

COLOURS = {"hold": "#4c72b0", "bounded": "#dd8452", "monitor": "#55a868"}
_PANEL_W, _PANEL_H = 300, 250
_TOP, _LEFT, _BOTTOM = 96, 58, 40
_ROUND = (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
_INTERVALS = {1: 5, 1.2: 4, 1.5: 3, 2: 4, 2.5: 5, 3: 3, 4: 4, 5: 5, 6: 3, 8: 4, 10: 5}
"""Grid lines per axis top, so every tick is a round number too."""


def nice_ceiling(value: float) -> float:
    """The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of
    ten) at or above ``value``, at least 1."""
    if value <= 1:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in _ROUND if m * power >= value)


def render_svg(rows: Sequence[Row], max_unverified: int) -> str:
    """The whole chart as SVG text."""
    modes = [m for m in COLOURS if any(r.mode == m for r in rows)]
    latencies = sorted({r.latency_ms for r in rows})
    by_key = {(r.latency_ms, r.mode): r for r in rows}
    panels: list[tuple[str, str, Callable[[Row], float]]] = [
        ("Added time to first token", "ms", lambda r: r.added_ttft_ms),
        ("Added total time", "ms", lambda r: r.added_total_ms),
        ("Exposure: flagged text shown", "chars", lambda r: float(r.exposure_chars or 0)),
    ]
    width = _LEFT + len(panels) * (_PANEL_W + _LEFT)
    height = _TOP + _PANEL_H + _BOTTOM + 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="16" y="24" font-size="16" font-weight="bold">'
        "moderation stage: what each mode costs, by classifier latency</text>",
    ]
    for index, mode in enumerate(modes):
        x = 16 + index * 110
        parts.append(f'<rect x="{x}" y="40" width="12" height="12" fill="{COLOURS[mode]}"/>')
        parts.append(f'<text x="{x + 17}" y="50">{escape(mode)}</text>')
    for index, (title, unit, value) in enumerate(panels):
        left = _LEFT + index * (_PANEL_W + _LEFT)
        values = [value(by_key[(lat, m)]) for lat in latencies for m in modes if (lat, m) in by_key]
        guide = float(max_unverified) if unit == "chars" else None
        top = nice_ceiling(1.1 * max([*values, guide or 0.0, 1.0]))  # room for labels
        parts.extend(_panel(left, title, unit, top, latencies, modes, by_key, value, guide))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(
    left: float,
    title: str,
    unit: str,
    top: float,
    latencies: Sequence[float],
    modes: Sequence[str],
    by_key: dict[tuple[float, str], Row],
    value: Callable[[Row], float],
    guide: float | None,
) -> list[str]:
    """One panel: axes, ticks, a bar group per latency, and the bounded budget line."""
    base = _TOP + _PANEL_H

    def y(v: float) -> float:
        return base - max(0.0, v) / top * _PANEL_H

    out = [
        f'<text x="{left}" y="{_TOP - 12}" font-weight="bold">{escape(title)} ({unit})</text>',
        f'<line x1="{left}" y1="{_TOP}" x2="{left}" y2="{base}" stroke="#333"/>',
        f'<line x1="{left}" y1="{base}" x2="{left + _PANEL_W}" y2="{base}" stroke="#333"/>',
    ]
    multiple = round(top / 10.0 ** math.floor(math.log10(top)), 1)
    intervals = _INTERVALS.get(multiple, 4)
    for step in range(intervals + 1):
        tick = top * step / intervals
        out.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{left + _PANEL_W}" y2="{y(tick):.1f}" '
            'stroke="#ddd"/>'
        )
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
    group_w = _PANEL_W / max(1, len(latencies))
    bar_w = group_w * 0.7 / max(1, len(modes))
    for g, latency in enumerate(latencies):
        start = left + g * group_w + group_w * 0.15
        for b, mode in enumerate(modes):
            row = by_key.get((latency, mode))
            if row is None:
                continue
            v = value(row)
            x = start + b * bar_w
            out.append(
                f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w - 2:.1f}" '
                f'height="{base - y(v):.1f}" fill="{COLOURS[mode]}"/>'
            )
            out.append(
                f'<text x="{x + bar_w / 2 - 1:.1f}" y="{y(v) - 4:.1f}" text-anchor="middle" '
                f'font-size="10">{v:.0f}</text>'
            )
        out.append(
            f'<text x="{left + (g + 0.5) * group_w:.1f}" y="{base + 18}" text-anchor="middle">'
            f"{latency:.0f} ms classifier</text>"
        )
    if guide is not None:
        out.append(
            f'<line x1="{left}" y1="{y(guide):.1f}" x2="{left + _PANEL_W}" y2="{y(guide):.1f}" '
            'stroke="#dd8452" stroke-dasharray="5,4"/>'
        )
        out.append(
            f'<text x="{left + 6}" y="{y(guide) - 5:.1f}" '
            f'font-size="10" fill="#a0522d">max_unverified_chars {guide:g}</text>'
        )
    return out
