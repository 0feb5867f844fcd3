"""Timed record and replay, and the HTML report checked in headless Chromium."""

from __future__ import annotations

import asyncio
import html.parser
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from pipeline.config import parse_config
from pipeline.replay import ReplayResult, record, replay
from pipeline.replay_html import render_html
from pipeline.scanner import Decision, Hit, MatchFactory, Rules, block, replace
from pipeline.simulator import bound_port, start_simulator
from pipeline.stage import StageConfig
from pipeline.timing import Timeline, sidecar


class CompetitorFactory(MatchFactory[StageConfig]):
    """Masks a competitor's name (the earlier stage)."""

    def __init__(self, config: StageConfig) -> None:
        super().__init__(config, Rules.from_phrases({"competitor": ["Acme Cloud"]}))

    def on_match(self, hit: Hit) -> Decision:
        return replace("[COMPETITOR]")


class HarmFactory(MatchFactory[StageConfig]):
    """Blocks a self-harm phrase (the later stage)."""

    def __init__(self, config: StageConfig) -> None:
        super().__init__(config, Rules.from_phrases({"self_harm": ["hurt myself"]}))

    def on_match(self, hit: Hit) -> Decision:
        return block("self-harm")


CONFIG = """
routes:
  - name: chat
    upstream: {url: "http://127.0.0.1:9"}
    stages:
      - {type: "tests.test_replay_timed:CompetitorFactory", id: brand}
      - {type: "tests.test_replay_timed:HarmFactory", id: harm}
"""
CHUNKS = ["Try Acme", " Cloud to", "day. Some", " days I", " hurt my", "self, I", " said."]
DELAY_MS = 30.0


async def recorded(tmp_path: Path) -> Path:
    """A reply recorded from the simulator (the upstream), paced at DELAY_MS per delta."""
    simulator = await start_simulator("127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{bound_port(simulator)}/v1/chat/completions"
        body = {
            "model": "gpt-4o",
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
            "sim": {"chunks": CHUNKS, "inter_token_delay_ms": DELAY_MS, "seed": 7},
        }
        out = tmp_path / "reply.sse"
        await record(url, out, json.dumps(body).encode())
        saved = out.read_bytes()  # the wire bytes alone, as curl -N would save them
        assert saved.startswith(b"data: {")
        assert saved.endswith(b"data: [DONE]\n\n")
        return out
    finally:
        await simulator.cleanup()


async def test_record_keeps_read_times_beside_unchanged_bytes(tmp_path: Path) -> None:
    """The sidecar times every read; the times rise and span the simulator's pacing."""
    out = await recorded(tmp_path)
    timeline = Timeline.load(sidecar(out), out.read_bytes())
    times = [ms for ms, _ in timeline.reads]
    assert times == sorted(times)
    assert times[-1] - times[0] >= DELAY_MS * (len(CHUNKS) - 2)
    with pytest.raises(ValueError, match="do not belong together"):
        Timeline.load(sidecar(out), out.read_bytes() + b"\n")


async def timed_replay(tmp_path: Path, pace: float | None = None) -> ReplayResult:
    out = await recorded(tmp_path)
    data = out.read_bytes()
    config = parse_config(CONFIG)
    return await replay(config, "chat", data, timeline=Timeline.load(sidecar(out), data), pace=pace)


async def test_replay_places_events_at_their_recorded_times(tmp_path: Path) -> None:
    """Each event carries the time its read arrived; the block still ends the stream."""
    result = await timed_replay(tmp_path)
    assert result.step_ms is not None
    assert result.events == len(result.step_ms)
    assert result.step_ms == sorted(result.step_ms)
    assert "self-harm" == result.blocked
    assert {"choice0.content": "Try [COMPETITOR] today. Some days I "} == result.texts()


async def test_paced_replay_waits_as_the_upstream_did(tmp_path: Path) -> None:
    """--pace 2 takes about half the recorded time, and measures its own event times."""
    out = await recorded(tmp_path)
    data = out.read_bytes()
    timeline = Timeline.load(sidecar(out), data)
    config = parse_config(CONFIG)
    started = time.monotonic()
    result = await replay(config, "chat", data, timeline=timeline, pace=2.0)
    elapsed_ms = (time.monotonic() - started) * 1000
    assert result.step_ms is not None
    recorded_span = timeline.reads[-1][0] - timeline.reads[0][0]
    blocked_at = result.step_ms[-1]
    assert elapsed_ms >= blocked_at >= recorded_span / 2 * 0.5
    assert 2.0 == result.paced


class _Dom(html.parser.HTMLParser):
    """The parts of the rendered DOM the test reads: text per element id and class."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[dict[str, str]] = []
        self.texts: dict[str, list[str]] = {}
        self.svgs: list[dict[str, str]] = []
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        attributes["tag"] = tag
        if tag == "svg":
            self.svgs.append(attributes)
        if tag == "tr":
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._row.append("")
        self.stack.append(attributes)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        for attributes in self.stack:
            for name in (attributes.get("id", ""), *attributes.get("class", "").split()):
                if name:
                    self.texts.setdefault(name, []).append(data)
        if self._row:
            self._row[-1] += data


def chromium_dom(page: Path) -> str:
    """The page's DOM after its script ran, from headless Chromium (skips without it)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium; scripts/test does)")
    with tempfile.TemporaryDirectory() as profile:
        flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}",
        ]  # fmt: skip
        result = subprocess.run(
            [browser, *flags, "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert 0 == result.returncode, result.stderr[-2000:]
    return result.stdout


async def test_the_report_renders_what_the_replay_says_in_chromium(tmp_path: Path) -> None:
    """Milliseconds, word diffs, the later block apart from removals, upstream spans."""
    result = await timed_replay(tmp_path)
    page = tmp_path / "report.html"
    page.write_text(render_html(result), encoding="utf-8")
    dom_text = await asyncio.to_thread(chromium_dom, page)
    dom = _Dom()
    dom.feed(dom_text)
    assert result.step_ms is not None
    last = f"{result.step_ms[-1]:.1f} ms"
    assert [last] == dom.texts["shown"]  # the script ran and labels time in ms
    assert "milliseconds" in "".join(dom.texts["timing"])
    brand = dom_text.split('data-stage="brand"')[1].split('data-stage="harm"')[0]
    assert "<del>Acme Cloud</del><ins>[COMPETITOR]</ins>" in brand  # words, not letters
    assert 1 == brand.count("<del>")  # nothing the later block dropped is struck here
    assert 'class="dropped"' not in brand
    charts = [svg for svg in dom.svgs if "holdback" in svg.get("class", "")]
    assert {"ms"} == {svg["data-unit"] for svg in charts}
    for svg in charts:
        times = [float(point.split(":")[0]) for point in svg["data-points"].split(",")]
        assert times == sorted(times)
        assert set(times) <= {round(ms, 1) for ms in result.step_ms}
    (harm,) = [row for row in dom.rows if len(row) == 7 and row[0] == "harm"]
    finding = next(f for f in result.findings if f.stage == "harm")
    assert f"[{finding.start}, {finding.end})" == harm[4]  # stage input span
    upstream = "".join(text for _, text in result.upstream["choice0.content"])
    start = upstream.index("hurt myself")
    assert [f"[{start}, {start + len('hurt myself')})", "hurt myself"] == harm[5:7]
    assert harm[4] != harm[5]  # the earlier mask shifted the harm stage's coordinates


def test_untimed_reports_say_events(tmp_path: Path) -> None:
    """Without a timing file the page says so and labels time as events."""
    result = ReplayResult("chat", parse_config(CONFIG).proxy.routes[0].protocol, 0, 0)
    page = render_html(result)
    assert "keeps no times" in page
    assert "event 0" in page
