"""OpenAI legacy Completions: ``text_completion`` streams and bodies.

One channel per choice, ``choice{i}.text``. The stream differs from chat only in where a
choice keeps its text (``choices[i].text`` instead of ``choices[i].delta.content``), so the
stream codec is the chat codec told so: the same flush-before-finish ordering, fast
path, suppression of chunks whose text is wholly held, ``logprobs`` policy (nulled whenever
a chunk's text was altered or is partly held, since legacy logprobs list the raw tokens),
usage chunk and ``[DONE]``. A block ends every unfinished choice with
``finish_reason: "content_filter"``, then the usage chunk if asked for, then ``[DONE]``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pipeline.protocols.base import BodyCodec
from pipeline.protocols.openai_chat import Choices, OpenAIChatStream, end_for

PROTOCOL = "openai-completions"


class CompletionsStream(OpenAIChatStream):
    """Filters a ``stream: true`` legacy completion."""

    protocol: ClassVar[str] = PROTOCOL
    text_fields: ClassVar[tuple[str, ...]] = ("text",)
    chunk_object: ClassVar[str] = "text_completion"
    choice_keys: ClassVar[frozenset[str]] = frozenset(
        {"index", "text", "logprobs", "finish_reason"}
    )

    def _delta_of(self, choice: dict[str, Any]) -> object:
        return choice  # a completion choice carries its text itself

    def _choice(
        self, index: int, delta: dict[str, Any], finish_reason: str | None = None
    ) -> dict[str, Any]:
        text = delta.get("text", "")
        return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}

    def _is_empty(self, choice: dict[str, Any]) -> bool:
        return choice.get("finish_reason") is None and not choice.get("text")


class CompletionsBody(BodyCodec):
    """Filters a ``text_completion`` body, each choice's text on its own channel.

    A block sets that choice's ``finish_reason`` to ``content_filter`` and empties every
    later choice the same way: the response is refused, so no unfiltered text may remain.
    """

    protocol: ClassVar[str] = PROTOCOL

    async def filter(self, body: dict[str, Any]) -> dict[str, Any]:
        choices = Choices(self.driver)
        for choice in body.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            if self.blocked is not None:
                _refuse(choice, "")
                continue
            text = choice.get("text")
            if not isinstance(text, str) or not text:
                continue
            index = choice.get("index", 0)
            end = end_for(choice.get("finish_reason"))
            release = await self.driver.whole(choices.channel(index, "text"), text, end)
            if release.block:
                _refuse(choice, release.text)
            elif release.text != text:
                choice["text"] = release.text
                choice["logprobs"] = None
        return body


def _refuse(choice: dict[str, Any], text: str) -> None:
    choice["text"] = text
    choice["logprobs"] = None
    choice["finish_reason"] = "content_filter"
