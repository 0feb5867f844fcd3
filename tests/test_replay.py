"""Replay and record: a recorded stream through a route's stages, offline, and its HTML report."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from pathlib import Path

import pytest

from pipeline.cli import _parser
from pipeline.config import Protocol, load_config, parse_config
from pipeline.replay import ReplayError, ReplayResult, detect_protocol, rechunk, replay
from pipeline.simulator import SIM_STATS, bound_port, start_simulator

DATA = Path(__file__).resolve().parent / "data"
RECORDING = DATA / "chat_recording.sse"
CONFIG = DATA / "replay.yaml"
FILTERED = (
    "Here is the plan. The [MASKED] handshake stays between us; write to ops@[DOMAIN] if the "
    "[MASKED] word changes. Nothing else is [MASKED], café owners included."
)


def run_replay(seed: int | None = None, config_path: Path = CONFIG) -> ReplayResult:
    """Replay the checked-in chat recording through the ``chat`` route."""
    config = load_config(config_path)
    return asyncio.run(replay(config, "chat", RECORDING.read_bytes(), seed=seed))


def cli(*argv: str) -> argparse.Namespace:
    """The real CLI parser's reading of ``argv``."""
    return _parser().parse_args(argv)


def test_replay_gives_the_client_text_and_findings() -> None:
    """The recording's text comes out masked by both stages, with one finding per match."""
    result = run_replay()
    assert {"choice0.content": FILTERED} == result.texts()
    assert Protocol.OPENAI_CHAT == result.protocol
    assert [("secrets", 22, 28), ("domains", 72, 83), ("secrets", 89, 95)] == [
        (f.stage, f.start, f.end) for f in result.findings[:3]
    ]
    assert result.blocked is None
    assert result.client_bytes.endswith(b"data: [DONE]\n\n")


def test_rechunked_replay_is_deterministic_and_matches_the_unsplit_one() -> None:
    """A seed fixes the random reads: same output twice, and the same text as one read per event."""
    first, second, plain = run_replay(seed=11), run_replay(seed=11), run_replay()
    assert first.reads == second.reads
    assert first.reads > plain.reads
    assert first.client_bytes == second.client_bytes
    assert plain.texts() == first.texts()
    assert [(f.stage, f.start, f.end) for f in plain.findings] == [
        (f.stage, f.start, f.end) for f in first.findings
    ]


def test_rechunk_cuts_rejoin_to_the_recording() -> None:
    """Random reads are reproducible, mostly tiny, and rejoin to the exact bytes."""
    data = RECORDING.read_bytes()
    reads = rechunk(data, 5)
    assert data == b"".join(reads)
    assert reads == rechunk(data, 5)
    assert reads != rechunk(data, 6)
    assert sum(len(r) <= 8 for r in reads) > len(reads) / 2
    assert all(r.endswith(b"\n\n") for r in rechunk(data, None))


def test_stage_stats_report_hold_back_and_time() -> None:
    """Per stage: calls, the most held (within the declared bound), median held 0, time > 0."""
    stats = {s.stage: s for s in run_replay().stats()}
    assert ["secrets", "domains"] == list(stats)
    assert 3 == stats["secrets"].held_max  # "sec" of a coming "secret"
    assert 0 == stats["secrets"].held_p50
    assert stats["domains"].held_max <= len("example.com") - 1
    assert all(s.calls > 40 and s.seconds > 0 for s in stats.values())


def test_cli_replay_prints_the_report_and_writes_a_self_contained_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """replay --html prints text, findings and stats, and writes a page with no remote resource."""
    page = tmp_path / "report.html"
    args = cli(
        "replay", "--config", str(CONFIG), "--route", "chat", "--rechunk", "3", "--html",
        str(page), str(RECORDING),
    )  # fmt: skip
    assert 0 == args.handler(args)
    printed = capsys.readouterr().out
    assert FILTERED in printed
    assert "findings: 4" in printed
    assert "random reads, seed 3" in printed
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.IGNORECASE)
    assert "<link" not in html
    assert "<script>" in html
    assert "<style>" in html
    assert "<td>secrets</td><td>choice0.content</td><td>word</td><td>redacted</td>" in html
    assert 'class="held"' in html
    assert "<del>secret</del><ins>[MASKED]</ins>" in html


def test_blocked_replay_reports_the_block() -> None:
    """A blocking stage ends the replayed stream the protocol's way and the report says why."""
    text = CONFIG.read_text().replace("word: secret", "word: secret\n        block: true")
    config = parse_config(text, "blocking.yaml")
    result = asyncio.run(replay(config, "chat", RECORDING.read_bytes()))
    assert {"choice0.content": "Here is the plan. The "} == result.texts()
    assert "word 'secret'" == result.blocked
    assert b'"finish_reason":"content_filter"' in result.client_bytes


def test_unknown_route_and_protocol_are_refused_with_the_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong route name exits 2 listing the routes; undetectable bytes ask for --protocol."""
    args = cli("replay", "--config", str(CONFIG), "--route", "nope", str(RECORDING))
    assert 2 == args.handler(args)
    assert "no route named 'nope'; routes: chat" in capsys.readouterr().err
    with pytest.raises(ReplayError, match="pass --protocol"):
        detect_protocol(b"data: hello\n\n")


@pytest.mark.parametrize(
    ("recording", "expected"),
    [
        (b'event: message_start\ndata: {"type":"message_start"}\n\n', Protocol.ANTHROPIC_MESSAGES),
        (b'data: {"type":"response.created","response":{}}\n\n', Protocol.OPENAI_RESPONSES),
        (b'data: {"object":"chat.completion.chunk","choices":[]}\n\n', Protocol.OPENAI_CHAT),
        (b': ping\n\ndata: {"object":"text_completion"}\n\n', Protocol.OPENAI_COMPLETIONS),
    ],
    ids=["anthropic", "responses", "chat", "completions"],
)
def test_protocol_is_detected_from_the_events(recording: bytes, expected: Protocol) -> None:
    """The first telling event decides the protocol when neither flag nor route names one."""
    assert expected == detect_protocol(recording)


async def test_record_saves_a_stream_that_replays(tmp_path: Path) -> None:
    """record POSTs to the simulator on loopback; the saved bytes replay to the same text."""
    simulator = await start_simulator("127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{bound_port(simulator)}/v1/chat/completions"
        body = {
            "model": "gpt-4o-mini",
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
            "sim": {"text": "A secret at example.com, kept.", "sse_split": "bytes"},
        }
        out = tmp_path / "saved.sse"
        args = cli(
            "record", "--url", url, "--out", str(out), "--header", "X-Team: moderation",
            "--data", json.dumps(body),
        )  # fmt: skip
        assert 0 == await asyncio.to_thread(args.handler, args)
        seen = simulator.app[SIM_STATS].last_request
        assert seen is not None
        assert "moderation" == seen["headers"]["X-Team"]
        config = load_config(CONFIG)
        result = await replay(config, "chat", out.read_bytes(), seed=2)
        assert {"choice0.content": "A [MASKED] at [DOMAIN], kept."} == result.texts()
    finally:
        await simulator.cleanup()


async def test_record_reports_an_upstream_error(tmp_path: Path) -> None:
    """An error reply is saved but the command exits 1 and says so."""
    simulator = await start_simulator("127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{bound_port(simulator)}/v1/chat/completions"
        body = {"model": "m", "stream": True, "messages": [], "sim": {"status": 500}}
        args = cli(
            "record", "--url", url, "--out", str(tmp_path / "e.sse"), "--data", json.dumps(body)
        )
        assert 1 == await asyncio.to_thread(args.handler, args)
    finally:
        await simulator.cleanup()
