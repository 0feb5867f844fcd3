"""The built-in ``redact`` and ``profanity`` stages through the real proxy and SDK."""

from __future__ import annotations

import json
from typing import Any

from pipeline.resources import default_config
from pipeline.simulator import DEFAULT_TEXT
from pipeline.testing import split_at
from tests.conftest import StackFactory
from tests.conftest import openai_client as client

ROUTES = """
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: redact
      - type: profanity
        action: {action}
"""
MESSAGES: Any = [{"role": "user", "content": "hi"}]


async def stream(url: str, chunks: list[str], **kwargs: Any) -> tuple[str, list[str | None]]:
    text, finishes = "", []
    response = await client(url).chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        extra_body={"sim": {"chunks": chunks}},
        **kwargs,
    )
    async for chunk in response:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finishes.append(choice.finish_reason)
    return text, finishes


async def test_email_split_across_deltas_is_redacted(stack: StackFactory) -> None:
    """``john@exa`` + ``mple.com`` reaches the client as one placeholder."""
    s = await stack(ROUTES, action="mask")
    text, _ = await stream(s.proxy_url, ["mail john@exa", "mple.com today"])
    assert "mail [EMAIL] today" == text


async def test_card_number_in_four_deltas_is_redacted(stack: StackFactory) -> None:
    """A Luhn-valid card split into four deltas never reaches the client in part."""
    s = await stack(ROUTES, action="mask")
    text, _ = await stream(s.proxy_url, ["card 4111 ", "1111 11", "11 1", "111 ok"])
    assert "card [CARD] ok" == text
    assert "1111" not in text


async def test_secret_in_tool_call_arguments_keeps_json_valid(stack: StackFactory) -> None:
    """An API key inside streamed tool-call arguments is redacted and the JSON still parses."""
    s = await stack(ROUTES, action="mask")
    key = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2
    args = json.dumps({"note": f"use {key} now", "to": "ops@example.com"})
    tools: Any = [
        {"type": "function", "function": {"name": "save", "parameters": {"type": "object"}}}
    ]
    sim = {
        "tool_calls": [
            {
                "name": "save",
                "arguments": args,
                "chunks": split_at(args, list(range(3, len(args), 7))),
            }
        ]
    }
    async with client(s.proxy_url).chat.completions.stream(
        model="gpt-4o", messages=MESSAGES, tools=tools, extra_body={"sim": sim}
    ) as response:
        final = await response.get_final_completion()
    call = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    arguments = json.loads(call.function.arguments)
    assert {"note": "use [OPENAI_KEY] now", "to": "[EMAIL]"} == arguments


async def test_profanity_split_over_two_deltas_is_masked(stack: StackFactory) -> None:
    """A listed word split over two deltas is masked with its length kept."""
    s = await stack(ROUTES, action="mask")
    text, _ = await stream(s.proxy_url, ["well sh", "it happens"])
    assert "well s*** happens" == text


async def test_profanity_block_ends_with_content_filter_and_done(stack: StackFactory) -> None:
    """``action: block`` ends the stream with ``content_filter``; the SDK sees a clean end."""
    s = await stack(ROUTES, action="block")
    text, finishes = await stream(s.proxy_url, ["fine words, then sh", "it and more"])
    assert "fine words, then " == text
    assert "content_filter" == finishes[-1]


async def test_embedded_default_redacts_the_demo_reply(stack: StackFactory) -> None:
    """The quick start's config turns the simulator's PII into placeholders."""
    routes = default_config().read_text().replace("http://127.0.0.1:9000", "{upstream}")
    routes = routes.replace("{", "{{").replace("}", "}}").replace("{{upstream}}", "{upstream}")
    s = await stack(routes)
    text, _ = await stream(s.proxy_url, [DEFAULT_TEXT])
    assert "jane.doe@example.com" in DEFAULT_TEXT
    assert "[EMAIL]" in text
    assert "[PHONE]" in text
    assert "jane.doe" not in text


async def test_numbered_placeholders_agree_across_content_and_tool_calls(
    stack: StackFactory,
) -> None:
    """The same address is ``[EMAIL_1]`` in the content and in a tool call's arguments."""
    routes = """
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - {{type: redact, replacement: numbered}}
"""
    s = await stack(routes)
    args = json.dumps({"to": "b@example.com", "cc": "a@example.com"})
    tools: Any = [{"type": "function", "function": {"name": "send", "parameters": {}}}]
    sim = {
        "text": "a@example.com and b@example.com",
        "tool_calls": [{"name": "send", "arguments": args}],
    }
    reply = await client(s.proxy_url).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=tools, extra_body={"sim": sim}
    )
    message = reply.choices[0].message
    assert "[EMAIL_1] and [EMAIL_2]" == message.content
    call = message.tool_calls[0]  # type: ignore[index]
    assert {"to": "[EMAIL_2]", "cc": "[EMAIL_1]"} == json.loads(call.function.arguments)  # type: ignore[union-attr]
