"""The simulator's classifiers, read by the real ``openai`` SDK as a client would."""

from __future__ import annotations

import time

import openai
import pytest

from tests.moderation_support import classifier


def sdk(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=url.removesuffix("/moderations"), api_key="sk-test", max_retries=0
    )


async def test_moderations_flag_inputs_with_a_configured_word() -> None:
    """``forbidden`` is flagged as violence; every other category is false, scored low."""
    async with classifier() as c, sdk(c.url) as client:
        reply = await client.moderations.create(input="a forbidden act")
    result = reply.results[0]
    assert (True, True, False) == (
        result.flagged,
        result.categories.violence,
        result.categories.hate,
    )
    assert result.category_scores.violence > 0.9 > result.category_scores.hate


async def test_a_list_of_inputs_gets_one_result_each() -> None:
    """Two inputs, two results, in order."""
    async with classifier() as c, sdk(c.url) as client:
        reply = await client.moderations.create(input=["all fine", "FORBIDDEN things"])
    assert [False, True] == [r.flagged for r in reply.results]


async def test_the_flag_words_and_latency_are_scriptable() -> None:
    """Words map to categories; each answer waits the scripted latency."""
    words = {"sneer": "harassment"}
    async with classifier(latency_ms=60, flag_words=words) as c, sdk(c.url) as client:
        started = time.perf_counter()
        reply = await client.moderations.create(input="a sneer")
        elapsed = time.perf_counter() - started
    assert reply.results[0].categories.harassment
    assert elapsed >= 0.06


async def test_a_scripted_failure_is_an_http_error() -> None:
    """``status`` makes every classification answer with that HTTP error."""
    async with classifier() as c, sdk(c.url) as client:
        c.settings.status = 503
        with pytest.raises(openai.InternalServerError) as raised:
            await client.moderations.create(input="anything")
    assert 503 == raised.value.status_code


async def test_the_guard_model_replies_safe_or_unsafe_with_codes() -> None:
    """A ``*guard*`` model on chat completions answers as Llama Guard 3 does."""
    words = {"forbidden": "violence", "slur": "hate"}
    async with classifier(flag_words=words) as c, sdk(c.url) as client:
        replies = [
            await client.chat.completions.create(
                model="llama-guard-3-8b", messages=[{"role": "user", "content": text}]
            )
            for text in ("hello there", "a forbidden slur")
        ]
    assert ["safe", "unsafe\nS1,S10"] == [r.choices[0].message.content for r in replies]
