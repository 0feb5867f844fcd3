"""OpenAI Chat Completions: ``chat.completion`` bodies, through the stream's channels."""

from __future__ import annotations

from typing import Any, ClassVar

from pipeline.protocols.base import BodyCodec
from pipeline.protocols.openai_chat import PROTOCOL, TEXT_FIELDS, Choices, end_for
from pipeline.protocols.walker import Walker


class OpenAIChatBody(BodyCodec):
    """Filters a ``chat.completion`` body: each choice's message, same channels as a stream."""

    protocol: ClassVar[str] = PROTOCOL

    async def filter(self, body: dict[str, Any]) -> dict[str, Any]:
        choices = Choices(self.driver)
        walker = Walker(self.driver, blank_after_block=False)
        for choice in body.get("choices") or []:
            if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
                continue
            if self.blocked is None:
                await self._filter_choice(choices, choice)
                await walker.walk(f"choice{choice.get('index', 0)}", choice, _claimed(choice))
            else:  # a block ends the whole response: no later choice goes out unfiltered
                _withhold(choice, choice["message"], from_tool=0)
        await walker.walk("body", body, frozenset({(id(body), "choices")}))
        return body

    async def _filter_choice(self, choices: Choices, choice: dict[str, Any]) -> None:
        index = choice.get("index", 0)
        message = choice["message"]
        end = end_for(choice.get("finish_reason"))
        changed = False
        for field in TEXT_FIELDS:
            text = message.get(field)
            if isinstance(text, str) and text:
                release = await self.driver.whole(choices.channel(index, field), text, end)
                changed = changed or release.text != text
                message[field] = release.text
                if release.block:
                    later = TEXT_FIELDS[TEXT_FIELDS.index(field) + 1 :]
                    _withhold(choice, message, from_tool=0, fields=later)
                    return
        for tool, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
                continue
            choices.name_tool(index, tool, str(function.get("name", "")))
            channel = choices.channel(index, "arguments", tool)
            release = await self.driver.whole(channel, function["arguments"], end)
            function["arguments"] = release.text
            if release.block:
                _withhold(choice, message, from_tool=tool, fields=())
                return
        if changed and "logprobs" in choice:
            choice["logprobs"] = None


def _claimed(choice: dict[str, Any]) -> frozenset[tuple[int, str]]:
    """The slots of a ``chat.completion`` choice the body codec filters itself."""
    message = choice["message"]
    pairs = [(id(choice), "logprobs"), *((id(message), field) for field in TEXT_FIELDS)]
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            pairs.append((id(function), "arguments"))
    return frozenset(pairs)


def _withhold(
    choice: dict[str, Any],
    message: dict[str, Any],
    from_tool: int,
    fields: tuple[str, ...] = TEXT_FIELDS,
) -> None:
    """Mark a choice blocked and empty what was not filtered (a cut tool call is dropped)."""
    for field in fields:
        if isinstance(message.get(field), str):
            message[field] = ""
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        if calls[:from_tool]:
            message["tool_calls"] = calls[:from_tool]
        else:
            message.pop("tool_calls")
    choice["finish_reason"] = "content_filter"
    choice["logprobs"] = None
