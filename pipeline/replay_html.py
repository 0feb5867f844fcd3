"""The ``streamsieve replay --html`` page: one self-contained file, inline CSS and JS only.

Per channel it shows the text as the upstream sent it and as the client received it, with
a slider over the upstream events (drag it to watch the client lag behind). When the
recording has its timing sidecar, time is in milliseconds since the request was sent:
each piece shows when it arrived and when it was released. Per stage: its hold-back over
time (a chart), which characters it held and for how long, what it changed as a word-level
diff, and every call. Text a stage still held when a *later* stage blocked is shown as cut
off by that block, not as this stage's removal. Findings are listed in the stage's own
input coordinates and mapped back to the upstream text, each column labelled. No network
resource is referenced, so the page can be attached to a review or opened offline.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from html import escape

from pipeline.replay import ReplayResult, StageCall
from pipeline.replay_diff import Alignment, align, to_upstream

_CSS = """
body { font: 14px/1.5 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; } h3 { font-size: 1em; }
.text { white-space: pre-wrap; font-family: ui-monospace, monospace; background: #f6f6f6;
        padding: .5em; border-radius: 4px; }
.row { display: grid; grid-template-columns: 9em 1fr; gap: .5em; margin: .3em 0; }
.label { color: #666; padding-top: .5em; }
.future { opacity: .12; }
.held { background: hsl(40 100% calc(92% - var(--lag) * 4%)); border-bottom: 2px solid #c80; }
.dropped { background: #fcc; text-decoration: line-through; }
.cut { color: #888; background: #eee; border-bottom: 2px dotted #888; }
del { background: #fdd; } ins { background: #dfd; text-decoration: none; }
table { border-collapse: collapse; } td, th { padding: .2em .8em; border-bottom: 1px solid #ddd; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.t { font-family: ui-monospace, monospace; white-space: pre-wrap; }
.blocked { color: #a00; font-weight: bold; }
svg.holdback { background: #fafafa; border: 1px solid #ddd; }
#step { width: 30em; vertical-align: middle; }
"""

_JS = """
const slider = document.getElementById('step');
const shown = document.getElementById('shown');
const times = JSON.parse(slider.dataset.times || 'null');
function show() {
  const step = Number(slider.value);
  shown.textContent = times ? `${times[step].toFixed(1)} ms` : `event ${step}`;
  for (const el of document.querySelectorAll('[data-step]')) {
    el.classList.toggle('future', Number(el.dataset.step) > step);
  }
}
slider.addEventListener('input', show);
show();
"""

_CHART_W, _CHART_H = 600, 80


class _Clock:
    """Step to display time: ms when the replay is timed, else the event index."""

    def __init__(self, result: ReplayResult) -> None:
        self.result = result
        self.timed = result.step_ms is not None and bool(result.step_ms)

    def value(self, step: int) -> float:
        at = self.result.at(step)
        return at if at is not None else float(step)

    def label(self, step: int) -> str:
        at = self.result.at(step)
        return f"{at:.1f} ms" if at is not None else f"event {step}"

    def lag(self, came: int, went: int) -> str:
        a, b = self.result.at(came), self.result.at(went)
        if a is not None and b is not None:
            return f"{b - a:.1f} ms"
        return f"{went - came} event(s)"


def render_html(result: ReplayResult) -> str:
    """The whole report page for one replay."""
    clock = _Clock(result)
    last = max(result.events - 1, 0)
    if clock.timed:
        paced = f", paced at {result.paced:g}x" if result.paced else ""
        timing = (
            "Times are milliseconds since the request was sent, from the recording's "
            f"timing file{paced}."
        )
        times = "[" + ",".join(f"{clock.value(s):.1f}" for s in range(last + 1)) + "]"
    else:
        timing = "This recording keeps no times (no timing file): time runs in upstream events."
        times = "null"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>streamsieve replay: {escape(result.route)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Replay of route {escape(result.route)} ({escape(result.protocol.value)})</h1>",
        f"<p>{result.events} upstream events, {result.size} bytes in {result.reads} reads. "
        f'<span id="timing">{escape(timing)}</span></p>',
    ]
    if result.blocked:
        parts.append(f'<p class="blocked">Blocked: {escape(result.blocked)}</p>')
    parts.append(
        f'<p><label>Up to <input type="range" id="step" min="0" max="{last}" value="{last}" '
        f"data-times='{times}'> <output id=\"shown\">{clock.label(last)}</output></label><br>"
        "Drag to see what the upstream had sent and what the client had received by then.</p>"
    )
    chains: dict[str, list[Alignment]] = {}
    for key in dict.fromkeys([*result.upstream, *result.client]):
        parts.extend(_channel(result, key, clock, chains.setdefault(key, [])))
    parts.extend(_findings(result, chains))
    parts.extend(_stats(result))
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts)


def _pieces(pieces: Sequence[tuple[int, str]], clock: _Clock, kind: str) -> str:
    return "".join(
        f'<span data-step="{step}" data-ms="{clock.value(step):.1f}" '
        f'title="{kind} at {clock.label(step)}">{escape(text)}</span>'
        for step, text in pieces
    )


def _channel(
    result: ReplayResult, key: str, clock: _Clock, chain: list[Alignment]
) -> Iterator[str]:
    yield f'<h2 data-channel="{escape(key)}">Channel {escape(key)}</h2>'
    yield (
        '<div class="row"><span class="label">upstream (arrived)</span>'
        f'<div class="text upstream">{_pieces(result.upstream.get(key, []), clock, "arrived")}'
        "</div></div>"
    )
    yield (
        '<div class="row"><span class="label">client (released)</span>'
        f'<div class="text client">{_pieces(result.client.get(key, []), clock, "released")}'
        "</div></div>"
    )
    yield from _arrivals(result, key, clock)
    for stage in result.stage_ids:
        calls = [c for c in result.calls if c.stage == stage and c.channel == key]
        if not calls:
            continue
        blocked_here = any(c.block for c in calls)
        fed = "".join(c.fed for c in calls)
        undecided = calls[-1].held if result.blocked and not blocked_here else 0
        decided = fed[: len(fed) - undecided]
        released = "".join(c.released for c in calls)
        alignment = align(decided, released)
        yield f'<h3 data-stage="{escape(stage)}">Stage {escape(stage)}</h3>'
        yield (
            '<div class="row"><span class="label">held back over time</span>'
            f"<div>{_chart(calls, clock)}</div></div>"
        )
        yield (
            '<div class="row"><span class="label">held back</span>'
            f'<div class="text">{_held(calls, clock, cut_by_later=undecided > 0)}</div></div>'
        )
        yield (
            '<div class="row"><span class="label">changed (words)</span>'
            f'<div class="text diff">{_changes(alignment, fed[len(decided) :])}</div></div>'
        )
        yield from _calls(calls, clock)
        chain.append(align(fed, released))


def _arrivals(result: ReplayResult, key: str, clock: _Clock) -> Iterator[str]:
    """Per event: what arrived from the upstream and what the client got, side by side."""
    came = dict(_joined(result.upstream.get(key, [])))
    went = dict(_joined(result.client.get(key, [])))
    yield "<details><summary>Arrival vs release, per event</summary>"
    yield '<table class="arrivals"><tr><th>time</th><th>arrived</th><th>released</th></tr>'
    for step in sorted({*came, *went}):
        yield (
            f'<tr data-row-step="{step}"><td class="n">{clock.label(step)}</td>'
            f'<td class="t">{escape(came.get(step, ""))}</td>'
            f'<td class="t">{escape(went.get(step, ""))}</td></tr>'
        )
    yield "</table></details>"


def _joined(pieces: Sequence[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    for step, run in itertools.groupby(pieces, key=lambda piece: piece[0]):
        yield step, "".join(text for _, text in run)


def _chart(calls: Sequence[StageCall], clock: _Clock) -> str:
    """Characters held after each call against time, as an inline SVG step line."""
    points = [(clock.value(c.step), c.held) for c in calls]
    x0, x1 = points[0][0], points[-1][0]
    top = max(held for _, held in points) or 1
    span = (x1 - x0) or 1.0

    def xy(x: float, held: int) -> str:
        left = (x - x0) / span * (_CHART_W - 10) + 5
        return f"{left:.1f},{_CHART_H - 5 - held / top * (_CHART_H - 20):.1f}"

    line = " ".join(xy(x, held) for x, held in points)
    data = ",".join(f"{x:.1f}:{held}" for x, held in points)
    unit = "ms" if clock.timed else "event"
    units = "ms" if clock.timed else "events"
    return (
        f'<svg class="holdback" width="{_CHART_W}" height="{_CHART_H}" data-points="{data}" '
        f'data-unit="{unit}" role="img" aria-label="characters held over time">'
        f'<polyline fill="none" stroke="#c80" stroke-width="2" points="{line}"/>'
        f'<text x="5" y="12" font-size="11">max {top} held · {x0:.1f} to {x1:.1f} {units}'
        "</text></svg>"
    )


def _held(calls: Sequence[StageCall], clock: _Clock, *, cut_by_later: bool) -> str:
    """The stage's input, each run of characters marked with how long the stage held it.

    A character is decided once the characters fed so far minus ``held`` reach past it.
    One still undecided at the end was discarded: by this stage's own block (struck), or
    by a later stage's block (``cut``: this stage never decided it).
    """
    arrived: list[int] = []
    decided: list[int] = []
    for call in calls:
        arrived.extend([call.step] * len(call.fed))
        settled = len(arrived) - call.held
        decided.extend([call.step] * (settled - len(decided)))
    text = "".join(call.fed for call in calls)
    marks = [(a, decided[i] if i < len(decided) else None) for i, a in enumerate(arrived)]
    out = []
    at = 0
    for (came, went), run in itertools.groupby(marks):
        size = len(list(run))
        piece = escape(text[at : at + size])
        at += size
        if went is None and cut_by_later:
            out.append(
                f'<span class="cut" title="still held when a later stage blocked: never '
                f'decided here">{piece}</span>'
            )
        elif went is None:
            out.append(f'<span class="dropped" title="discarded by the block">{piece}</span>')
        elif went > came:
            out.append(
                f'<span class="held" style="--lag:{min(went - came, 10)}" title="arrived at '
                f"{clock.label(came)}, released at {clock.label(went)}: held "
                f'{clock.lag(came, went)}">{piece}</span>'
            )
        else:
            out.append(piece)
    return "".join(out)


def _changes(alignment: Alignment, cut: str) -> str:
    """The stage's decided input against its output, word by word; ``cut`` is input a
    later block left undecided, shown apart rather than as removed."""
    out = []
    before, after = alignment.before, alignment.after
    for op, a1, a2, b1, b2 in alignment.ops:
        if op == "equal":
            out.append(escape(before[a1:a2]))
            continue
        if a2 > a1:
            out.append(f"<del>{escape(before[a1:a2])}</del>")
        if b2 > b1:
            out.append(f"<ins>{escape(after[b1:b2])}</ins>")
    if cut:
        out.append(
            f'<span class="cut" title="cut off by a later stage\'s block">{escape(cut)}</span>'
        )
    return "".join(out)


def _calls(calls: Sequence[StageCall], clock: _Clock) -> Iterator[str]:
    yield "<details><summary>Every call</summary>"
    yield (
        '<table class="calls"><tr><th>time</th><th>call</th><th>fed</th><th>released</th>'
        "<th>held after</th></tr>"
    )
    for c in calls:
        yield (
            f'<tr><td class="n">{clock.label(c.step)}</td><td>{c.method}</td>'
            f'<td class="t">{escape(c.fed)}</td><td class="t">{escape(c.released)}</td>'
            f'<td class="n">{c.held}</td></tr>'
        )
    yield "</table></details>"


def _findings(result: ReplayResult, chains: dict[str, list[Alignment]]) -> Iterator[str]:
    yield f"<h2>Findings ({len(result.findings)})</h2>"
    if not result.findings:
        return
    yield (
        "<p>Spans in characters. <em>Stage input</em>: the text that stage was fed on the "
        "channel (after the stages before it). <em>Upstream</em>: the same span in the text "
        "the upstream sent, mapped back through the earlier stages' changes.</p>"
    )
    yield (
        '<table class="findings"><tr><th>stage</th><th>channel</th><th>rule</th><th>action</th>'
        "<th>stage input span</th><th>upstream span</th><th>upstream text</th></tr>"
    )
    order = {stage: index for index, stage in enumerate(result.stage_ids)}
    for f in result.findings:
        chain = chains.get(f.channel, [])
        upstream = "".join(text for _, text in result.upstream.get(f.channel, []))
        earlier = _earlier(result, f.channel, order.get(f.stage, 0))
        a, b = to_upstream(chain[:earlier], f.start, f.end)
        yield (
            f"<tr><td>{escape(f.stage)}</td><td>{escape(f.channel)}</td><td>{escape(f.rule)}</td>"
            f'<td>{escape(f.action)}</td><td class="n">[{f.start}, {f.end})</td>'
            f'<td class="n upstream-span">[{a}, {b})</td>'
            f'<td class="t">{escape(upstream[a:b])}</td></tr>'
        )
    yield "</table>"


def _earlier(result: ReplayResult, channel: str, index: int) -> int:
    """How many stages before stage ``index`` ran on ``channel``."""
    ran = {c.stage for c in result.calls if c.channel == channel}
    return sum(1 for stage in result.stage_ids[:index] if stage in ran)


def _stats(result: ReplayResult) -> Iterator[str]:
    yield "<h2>Stages</h2>"
    yield (
        "<table><tr><th>stage</th><th>calls</th><th>held max</th><th>held p50</th>"
        "<th>time (ms)</th><th>µs per call</th></tr>"
    )
    for s in result.stats():
        yield (
            f'<tr><td>{escape(s.stage)}</td><td class="n">{s.calls}</td>'
            f'<td class="n">{s.held_max}</td><td class="n">{s.held_p50:.1f}</td>'
            f'<td class="n">{s.seconds * 1e3:.3f}</td>'
            f'<td class="n">{s.micros_per_call:.1f}</td></tr>'
        )
    yield "</table>"
