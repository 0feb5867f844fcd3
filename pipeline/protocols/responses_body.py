"""OpenAI Responses API: ``response`` bodies, through the same channels as a stream."""

from __future__ import annotations

from typing import Any, ClassVar

from pipeline.protocols.base import BodyCodec
from pipeline.protocols.responses_shapes import (
    ARGUMENTS,
    PROTOCOL,
    channel_for,
    claimed_in,
    end_for,
    kind_of,
)
from pipeline.protocols.walker import Walker
from pipeline.stage import ChannelEnd


class ResponsesBody(BodyCodec):
    """Filters a ``response`` body: each message part and function call's arguments.

    A block keeps what came before it, gives the blocking part the text released before
    the block, drops every later part and item, and marks the response ``incomplete`` with
    ``incomplete_details: {"reason": "content_filter"}``.
    """

    protocol: ClassVar[str] = PROTOCOL

    async def filter(self, body: dict[str, Any]) -> dict[str, Any]:
        output = body.get("output")
        if not isinstance(output, list):
            return body
        walker = Walker(self.driver, blank_after_block=False)
        for index, item in enumerate(output):
            if isinstance(item, dict) and not await self._filter_item(index, item):
                del output[index + 1 :]
                body["status"] = "incomplete"
                body["incomplete_details"] = {"reason": "content_filter"}
                break
            if isinstance(item, dict):  # reasoning summaries, annotations, later item types
                await walker.walk(f"output{index}", item, frozenset(claimed_in(item)))
        await walker.walk("response", body, frozenset({(id(body), "output")}))
        return body

    async def _filter_item(self, output: int, item: dict[str, Any]) -> bool:
        """Filter one output item in place; False when it blocked the response."""
        end = end_for(item)
        if item.get("type") == "function_call":
            name = item.get("name")
            tool = name if isinstance(name, str) else ""
            return await self._filter_text(item, (output, ARGUMENTS), "arguments", tool, end)
        content = item.get("content")
        if item.get("type") != "message" or not isinstance(content, list):
            return True
        for index, holder in enumerate(content):
            kind = kind_of(holder)
            if kind is None:
                continue
            if not await self._filter_text(holder, (output, index), kind, "", end):
                del content[index + 1 :]
                item["status"] = "incomplete"
                return False
        return True

    async def _filter_text(
        self, holder: dict[str, Any], key: tuple[int, int], kind: str, tool: str, end: ChannelEnd
    ) -> bool:
        text = holder.get(kind)
        if not isinstance(text, str) or not text:
            return True
        release = await self.driver.whole(channel_for(self.driver, key, kind, tool), text, end)
        if release.text != text:
            holder[kind] = release.text
            if holder.get("logprobs"):
                holder["logprobs"] = []
        if release.block:
            if "status" in holder:
                holder["status"] = "incomplete"
            return False
        return True
