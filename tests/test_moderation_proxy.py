"""``type: moderation`` through the real proxy, the real SDK and a real classifier on loopback."""

from __future__ import annotations

import asyncio
import socket

import anthropic

from filters.moderation.windows import window_end
from tests.conftest import openai_client
from tests.moderation_support import FLAGGED, REPLY, findings, moderated, stream

BEFORE = REPLY[: REPLY.index(FLAGGED)]
"""The two approved sentences before the flagged one."""
AFTER = REPLY[REPLY.index(FLAGGED) + len(FLAGGED) :]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_hold_never_releases_a_flagged_sentence() -> None:
    """Hold mode: the approved sentences arrive, the flagged one never, then content_filter."""
    async with moderated({"mode": "hold", "window_chars": 60}, inter_token_ms=2) as m:
        got = await stream(m.proxy_url)
    assert BEFORE == got.text
    assert ["content_filter"] == got.finish_reasons


async def test_hold_pipelines_windows_so_it_lags_one_round_trip() -> None:
    """Six sentences are judged in parallel: about one classifier round trip, not six."""
    text = "".join(f"Sentence number {i} is fine. " for i in range(6))
    async with moderated({"mode": "hold", "max_in_flight": 8}, latency_ms=400) as m:
        got = await stream(m.proxy_url, text)
        assert 6 == m.calls.peak_in_flight
    assert text == got.text
    assert ["stop"] == got.finish_reasons
    assert got.total_s < 4 * 0.400  # one window after another would take 2.4 s


async def test_bounded_exposes_at_most_max_unverified_chars() -> None:
    """Bounded mode streams before any verdict, and shows at most 12 flagged characters."""
    stage = {"mode": "bounded", "max_unverified_chars": 12, "window_chars": 60}
    async with moderated(stage, latency_ms=100, inter_token_ms=2) as m:
        got = await stream(m.proxy_url, at_first=lambda: m.calls.answered)
    assert 0 == got.at_first  # the first text went out before any verdict was in
    assert got.text.startswith(BEFORE)
    leaked = got.text[len(BEFORE) :]
    assert FLAGGED.startswith(leaked)
    assert len(leaked) <= 12
    assert ["content_filter"] == got.finish_reasons


async def test_bounded_with_no_budget_is_hold() -> None:
    """``max_unverified_chars: 0`` releases nothing ahead of its verdict, like hold."""
    stage = {"mode": "bounded", "max_unverified_chars": 0, "window_chars": 60}
    async with moderated(stage, inter_token_ms=2) as m:
        got = await stream(m.proxy_url)
    assert BEFORE == got.text
    assert ["content_filter"] == got.finish_reasons


async def test_monitor_adds_no_ttft_and_ends_the_stream_when_flagged() -> None:
    """Monitor mode: the first token does not wait for the classifier; the flagged verdict,
    arriving after the reply's last token, still ends the stream with content_filter."""
    async with moderated({"mode": "monitor"}, latency_ms=150, inter_token_ms=1) as m:
        got = await stream(m.proxy_url, at_first=lambda: m.calls.answered)
    assert 0 == got.at_first  # the first text went out before any verdict was in
    assert REPLY == got.text
    assert ["content_filter"] == got.finish_reasons


async def test_monitor_blocks_mid_stream_as_soon_as_the_verdict_is_in() -> None:
    """A verdict arriving while the reply still streams cuts the rest of it off."""
    tail = " ".join(["More words keep coming"] * 20)
    async with moderated({"mode": "monitor"}, latency_ms=30, inter_token_ms=10) as m:
        got = await stream(m.proxy_url, REPLY + " " + tail)
    assert got.text.startswith(BEFORE + FLAGGED)
    assert len(got.text) < len(REPLY + " " + tail)
    assert ["content_filter"] == got.finish_reasons


async def test_monitor_with_action_flag_only_records_a_finding() -> None:
    """``action: flag`` lets the reply finish normally and records the categories."""
    async with moderated({"mode": "monitor", "action": "flag"}) as m:
        got = await stream(m.proxy_url)
        found = await findings(m)
    assert REPLY == got.text
    assert ["stop"] == got.finish_reasons
    assert [("moderation:violence", "flagged")] == [(f["rule"], f["action"]) for f in found]


async def test_mask_replaces_the_flagged_sentence_and_keeps_streaming() -> None:
    """``action: mask`` in hold mode: the flagged sentence becomes the mask, the rest flows."""
    async with moderated({"mode": "hold", "action": "mask", "window_chars": 60}) as m:
        got = await stream(m.proxy_url)
    assert BEFORE + "[FILTERED]" + AFTER == got.text
    assert ["stop"] == got.finish_reasons


async def test_a_dead_classifier_fails_closed() -> None:
    """No service listening: nothing is released and the stream ends with content_filter."""
    url = f"http://127.0.0.1:{_closed_port()}/v1/moderations"
    async with moderated({"mode": "hold"}, classifier_url=url) as m:
        got = await stream(m.proxy_url, "A harmless sentence. Another one.")
        found = await findings(m)
    assert "" == got.text
    assert ["content_filter"] == got.finish_reasons
    assert "moderation_error" == found[0]["rule"]


async def test_a_dead_classifier_ends_a_monitored_stream_too() -> None:
    """Monitor mode fails closed as well: the stream is ended, not completed."""
    url = f"http://127.0.0.1:{_closed_port()}/v1/moderations"
    async with moderated({"mode": "monitor"}, classifier_url=url) as m:
        got = await stream(m.proxy_url, "A harmless sentence. Another one.")
    assert ["content_filter"] == got.finish_reasons


async def test_a_slow_classifier_times_out_by_on_error() -> None:
    """A verdict later than ``timeout_ms`` blocks by default and passes with on_error: pass."""
    text = "A harmless sentence. Another one."
    async with moderated({"timeout_ms": 40}, latency_ms=200) as m:
        closed = await stream(m.proxy_url, text)
    async with moderated({"timeout_ms": 40, "on_error": "pass"}, latency_ms=200) as m:
        opened = await stream(m.proxy_url, text)
    assert ("", ["content_filter"]) == (closed.text, closed.finish_reasons)
    assert (text, ["stop"]) == (opened.text, opened.finish_reasons)


async def test_a_phrase_across_two_windows_is_caught_through_context() -> None:
    """``three purple`` is cut between two windows; only ``context_chars`` lets it be seen."""
    text = "one two three purple falcon flies over."
    assert 14 == window_end(text, 0, 16)  # windows "one two three " and "purple falcon ..."
    words = {"three purple": "violence"}
    stage = {"mode": "hold", "window_chars": 16}
    async with moderated(stage | {"context_chars": 0}, flag_words=words) as m:
        blind = await stream(m.proxy_url, text)
    async with moderated(stage | {"context_chars": 10}, flag_words=words) as m:
        seeing = await stream(m.proxy_url, text)
    assert (text, ["stop"]) == (blind.text, blind.finish_reasons)
    assert ("one two three ", ["content_filter"]) == (seeing.text, seeing.finish_reasons)


async def test_llama_guard_verdicts_block_with_its_category_codes() -> None:
    """``api: llama-guard`` reads ``unsafe`` / ``S1`` from a chat model's reply."""
    stage = {"api": "llama-guard", "model": "llama-guard-3-8b", "window_chars": 60}
    async with moderated(stage, classifier_path="/v1/chat/completions") as m:
        got = await stream(m.proxy_url)
        found = await findings(m)
    assert (BEFORE, ["content_filter"]) == (got.text, got.finish_reasons)
    assert [("moderation:S1", "blocked")] == [(f["rule"], f["action"]) for f in found]


async def test_the_circuit_breaker_stops_calls_and_recovers() -> None:
    """Two failures open the breaker: the next stream fails closed without a call; once
    the reset time is over and the service is back, a trial call closes it again."""
    stage = {"breaker_failures": 2, "breaker_reset_ms": 300}
    text = "One harmless sentence."
    async with moderated(stage) as m:
        m.classifier.status = 503
        failed = [await stream(m.proxy_url, text) for _ in range(2)]
        assert 2 == m.calls.calls
        short_circuited = await stream(m.proxy_url, text)
        assert 2 == m.calls.calls
        m.classifier.status = None
        await asyncio.sleep(0.35)
        recovered = await stream(m.proxy_url, text)
        assert 3 == m.calls.calls
    assert all(["content_filter"] == f.finish_reasons for f in failed)
    assert ["content_filter"] == short_circuited.finish_reasons
    assert (text, ["stop"]) == (recovered.text, recovered.finish_reasons)


async def test_identical_windows_of_one_response_are_judged_once() -> None:
    """With ``n: 2`` both choices carry the same two sentences: two calls, not four."""
    text = "First sentence is fine. Second one too."
    async with moderated({"mode": "hold"}) as m:
        got = await stream(m.proxy_url, text, n=2)
        assert 2 == m.calls.calls
    assert {0: text, 1: text} == got.by_choice
    assert ["stop", "stop"] == got.finish_reasons


async def test_concurrent_classifier_calls_are_capped_per_process() -> None:
    """``max_concurrent_calls: 2``: four streams of six windows never have more than two
    calls at the classifier at once, and all complete."""
    text = "".join(f"Sentence {i} is fine. " for i in range(6))
    stage = {"mode": "hold", "max_concurrent_calls": 2, "timeout_ms": 5000}
    async with moderated(stage, latency_ms=15) as m:
        results = await asyncio.gather(*(stream(m.proxy_url, text) for _ in range(4)))
        assert 2 == m.calls.peak_in_flight
    assert all((text, ["stop"]) == (r.text, r.finish_reasons) for r in results)


async def test_metrics_count_verdicts_latency_and_exposure() -> None:
    """The proxy's registry carries the classifier's latency, verdicts and exposure."""
    stage = {"mode": "bounded", "max_unverified_chars": 30, "window_chars": 60}
    async with moderated(stage) as m:
        await stream(m.proxy_url)
        text = m.metrics.render().decode()
    labels = 'route="chat",stage="moderation"'
    assert f'streamsieve_moderation_verdicts_total{{{labels},verdict="flagged"}}' in text
    assert f'streamsieve_moderation_verdicts_total{{{labels},verdict="ok"}} 2.0' in text
    assert f'streamsieve_moderation_classifier_seconds_count{{outcome="ok",{labels}}} 2.0' in text
    assert (
        f'streamsieve_moderation_released_ahead_chars_count{{mode="bounded",{labels}}} 3.0' in text
    )


async def test_an_anthropic_stream_ends_with_a_refusal_when_flagged() -> None:
    """The same stage on Anthropic Messages: the SDK's final message stops with refusal."""
    async with moderated({"mode": "hold", "window_chars": 60}) as m:
        client = anthropic.AsyncAnthropic(base_url=m.proxy_url, api_key="x", max_retries=0)
        async with (
            client,
            client.messages.stream(
                model="claude-sonnet-4-20250514",
                max_tokens=200,
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"sim": {"text": REPLY}},
            ) as response,
        ):
            message = await response.get_final_message()
    text = "".join(block.text for block in message.content if block.type == "text")
    assert (BEFORE, "refusal") == (text, message.stop_reason)


async def test_a_non_streamed_reply_goes_through_the_same_windows() -> None:
    """Without ``stream`` the whole reply is one piece: the flagged sentence is still cut."""
    async with moderated({"mode": "hold", "window_chars": 60}) as m:
        completion = await openai_client(m.proxy_url).chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"sim": {"text": REPLY}},
        )
    choice = completion.choices[0]
    assert "content_filter" == choice.finish_reason
    assert "forbidden" not in (choice.message.content or "")


async def test_two_choices_are_masked_alike_on_shared_verdicts() -> None:
    """``n: 2`` with ``action: mask``: each choice masks the flagged sentence only, and the
    choices share their calls (five windows, at most two asked again without context)."""
    async with moderated({"mode": "hold", "action": "mask", "window_chars": 60}) as m:
        got = await stream(m.proxy_url, n=2)
        assert m.calls.calls <= 5 + 2
    assert {0: BEFORE + "[FILTERED]" + AFTER, 1: BEFORE + "[FILTERED]" + AFTER} == got.by_choice
    assert ["stop", "stop"] == got.finish_reasons
