"""The ``streamsieve replay --html`` page: one self-contained file, inline CSS and JS only.

It shows, per channel, the text as the upstream sent it and as the client received it with a
slider over the upstream events (drag it to watch the client lag behind), which characters
each stage held back and for how many events, and what each stage changed. No network
resource is referenced, so the page can be attached to a review or opened offline.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterator, Sequence
from html import escape

from pipeline.replay import ReplayResult, StageCall

_CSS = """
body { font: 14px/1.5 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; } h3 { font-size: 1em; }
.text { white-space: pre-wrap; font-family: ui-monospace, monospace; background: #f6f6f6;
        padding: .5em; border-radius: 4px; }
.row { display: grid; grid-template-columns: 7em 1fr; gap: .5em; margin: .3em 0; }
.label { color: #666; padding-top: .5em; }
.future { opacity: .12; }
.held { background: hsl(40 100% calc(92% - var(--lag) * 4%)); border-bottom: 2px solid #c80; }
.dropped { background: #fcc; text-decoration: line-through; }
del { background: #fdd; } ins { background: #dfd; text-decoration: none; }
table { border-collapse: collapse; } td, th { padding: .2em .8em; border-bottom: 1px solid #ddd; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.blocked { color: #a00; font-weight: bold; }
#step { width: 30em; vertical-align: middle; }
"""

_JS = """
const slider = document.getElementById('step');
const shown = document.getElementById('shown');
function show() {
  const step = Number(slider.value);
  shown.textContent = step;
  for (const el of document.querySelectorAll('[data-step]')) {
    el.classList.toggle('future', Number(el.dataset.step) > step);
  }
}
slider.addEventListener('input', show);
show();
"""


def render_html(result: ReplayResult) -> str:
    """The whole report page for one replay."""
    last = max(result.events - 1, 0)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>streamsieve replay: {escape(result.route)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Replay of route {escape(result.route)} ({escape(result.protocol.value)})</h1>",
        f"<p>{result.events} upstream events, {result.size} bytes in {result.reads} reads. "
        "Time runs in upstream events: a recording keeps the bytes, not when they came.</p>",
    ]
    if result.blocked:
        parts.append(f'<p class="blocked">Blocked: {escape(result.blocked)}</p>')
    parts.append(
        f'<p><label>After event <input type="range" id="step" min="0" max="{last}" '
        f'value="{last}"> <output id="shown">{last}</output> of {last}</label><br>'
        "Drag to see what the upstream had sent and what the client had received by then.</p>"
    )
    for key in dict.fromkeys([*result.upstream, *result.client]):
        parts.extend(_channel(result, key))
    parts.extend(_findings(result))
    parts.extend(_stats(result))
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts)


def _pieces(pieces: Sequence[tuple[int, str]]) -> str:
    return "".join(
        f'<span data-step="{step}" title="event {step}">{escape(text)}</span>'
        for step, text in pieces
    )


def _channel(result: ReplayResult, key: str) -> Iterator[str]:
    yield f"<h2>Channel {escape(key)}</h2>"
    yield (
        '<div class="row"><span class="label">upstream</span>'
        f'<div class="text">{_pieces(result.upstream.get(key, []))}</div></div>'
    )
    yield (
        '<div class="row"><span class="label">client</span>'
        f'<div class="text">{_pieces(result.client.get(key, []))}</div></div>'
    )
    for stage in result.stage_ids:
        calls = [c for c in result.calls if c.stage == stage and c.channel == key]
        if not calls:
            continue
        yield f"<h3>Stage {escape(stage)}</h3>"
        yield (
            '<div class="row"><span class="label">held back</span>'
            f'<div class="text">{_held(calls)}</div></div>'
        )
        yield (
            '<div class="row"><span class="label">changed</span>'
            f'<div class="text">{_changes(calls)}</div></div>'
        )


def _held(calls: Sequence[StageCall]) -> str:
    """The stage's input, each run of characters marked with how long the stage held it.

    A character is decided once the characters fed so far minus ``held`` reach past it;
    one still undecided at the end was discarded by a block.
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
        if went is None:
            out.append(f'<span class="dropped" title="discarded by the block">{piece}</span>')
        elif went > came:
            lag = went - came
            out.append(
                f'<span class="held" style="--lag:{min(lag, 10)}" title="arrived at event '
                f'{came}, released at event {went}: held {lag} event(s)">{piece}</span>'
            )
        else:
            out.append(piece)
    return "".join(out)


def _changes(calls: Sequence[StageCall]) -> str:
    """The stage's input against its output: removed text struck, added text marked."""
    before = "".join(call.fed for call in calls)
    after = "".join(call.released for call in calls)
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    out = []
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            out.append(escape(before[a1:a2]))
            continue
        if a2 > a1:
            out.append(f"<del>{escape(before[a1:a2])}</del>")
        if b2 > b1:
            out.append(f"<ins>{escape(after[b1:b2])}</ins>")
    return "".join(out)


def _findings(result: ReplayResult) -> Iterator[str]:
    yield f"<h2>Findings ({len(result.findings)})</h2>"
    if not result.findings:
        return
    yield "<table><tr><th>stage</th><th>channel</th><th>rule</th><th>action</th><th>span</th></tr>"
    for f in result.findings:
        yield (
            f"<tr><td>{escape(f.stage)}</td><td>{escape(f.channel)}</td><td>{escape(f.rule)}</td>"
            f'<td>{escape(f.action)}</td><td class="n">[{f.start}, {f.end})</td></tr>'
        )
    yield "</table>"


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
