"""OpenAI Chat Completions: ``chat.completion.chunk`` streams and ``chat.completion`` bodies.

Channels, one chain each: ``choice{i}.content``, ``choice{i}.refusal`` and
``choice{i}.tool{j}.arguments``. Structural fields (ids, model, created,
system_fingerprint, role, finish_reason, usage, ``[DONE]``) pass through as sent; any other
string (``delta.audio.transcript``, a field a provider adds) is filtered by the
:class:`~pipeline.protocols.walker.Walker` on a channel of its own.

End: ``[DONE]``, or the end of the body once every choice has finished (the SDKs accept
both; no error is added).

Ordering: text a chain still holds when its choice finishes is flushed in a chunk of its
own *before* the chunk that carries ``finish_reason``.

Logprobs: a choice's ``logprobs`` is kept only on a chunk whose text passed through
unchanged with nothing held; otherwise it is set to ``null``, because logprobs repeat the
raw tokens and would leak what a stage redacted or is still deciding.

Blocking: the stream ends with one chunk per unfinished choice carrying
``finish_reason: "content_filter"``, then the usage chunk if the client asked for one, then
``[DONE]``. The upstream never reports usage for a stream we cut, so that usage chunk counts
the completion tokens the proxy saw (one per upstream text chunk) and reports the prompt as 0.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pipeline import jsonfast
from pipeline.driver import Driver
from pipeline.protocols.base import Lone, StreamCodec, reencode
from pipeline.protocols.walker import Walker
from pipeline.sse import Event, encode_data
from pipeline.stage import Channel, ChannelEnd, ChannelKind

PROTOCOL = "openai-chat"
# Compact like the upstream's own chunks (pipeline.jsonfast: a lone surrogate from upstream
# JSON is written escaped, so the UTF-8 encoding of the event never fails).
_dumps = jsonfast.dumps
# reasoning_content / reasoning: the model's reasoning as OpenAI-compatible servers stream it
# (DeepSeek, vLLM, OpenRouter); unsigned, so it is filtered like any other text.
TEXT_FIELDS = ("content", "refusal", "reasoning_content", "reasoning")
_ENVELOPE_SKIP = frozenset({"choices", "usage", "obfuscation"})
_ENVELOPE = frozenset(
    {"id", "object", "created", "model", "system_fingerprint", "service_tier", "usage"}
    | _ENVELOPE_SKIP
)
"""Chunk keys with nothing for the walker: structure, and usage (token counts)."""
_DELTA_KEYS = frozenset({*TEXT_FIELDS, "role"})


def end_for(finish_reason: object) -> ChannelEnd:
    return ChannelEnd.TRUNCATED if finish_reason == "length" else ChannelEnd.COMPLETE


class Choices:
    """Channels of one response by choice, created on first text."""

    __slots__ = ("_channels", "_driver", "_tool_names", "finished", "seen")

    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        self._channels: dict[tuple[int, str], Channel] = {}
        self._tool_names: dict[tuple[int, int], str] = {}
        self.finished: set[int] = set()
        self.seen: list[int] = []

    def note(self, index: int) -> None:
        if index not in self.seen:
            self.seen.append(index)

    def name_tool(self, index: int, tool: int, name: str) -> None:
        self._tool_names[(index, tool)] = name

    def channel(self, index: int, field: str, tool: int | None = None) -> Channel:
        key = (index, field if tool is None else f"tool{tool}")
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = self._channel(index, field, tool)
        return channel

    def _channel(self, index: int, field: str, tool: int | None) -> Channel:
        request = self._driver.request
        if tool is not None:
            name = self._tool_names.get((index, tool), "")
            return self._driver.channel(
                f"choice{index}.tool{tool}.arguments",
                ChannelKind.JSON,
                request.tool_schemas.get(name),
            )
        is_json = field == "content" and request.json_content
        return self._driver.channel(
            f"choice{index}.{field}",
            ChannelKind.JSON if is_json else ChannelKind.TEXT,
            request.content_schema if is_json else None,
        )

    def open_channels(self, index: int) -> list[tuple[str, int | None, Channel]]:
        """The channels of choice ``index`` as (field, tool index or None, channel)."""
        out: list[tuple[str, int | None, Channel]] = []
        for (choice, name), channel in self._channels.items():
            if choice == index:
                tool = int(name[4:]) if name.startswith("tool") else None
                out.append(("arguments" if tool is not None else name, tool, channel))
        return out


class OpenAIChatStream(StreamCodec):
    """Filters a ``stream: true`` chat completion.

    The class attributes and ``_delta_of`` / ``_choice`` / ``_is_empty`` are the only places
    that know where a chunk's choice keeps its text, so legacy completions reuse the rest.
    """

    protocol: ClassVar[str] = PROTOCOL
    text_fields: ClassVar[tuple[str, ...]] = TEXT_FIELDS
    chunk_object: ClassVar[str] = "chat.completion.chunk"
    choice_keys: ClassVar[frozenset[str]] = frozenset(
        {"index", "delta", "logprobs", "finish_reason"}
    )
    """The keys of a choice that carry nothing for the walker (text slots or structure)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choices = Choices(self.driver)
        self._last: dict[str, Any] = {"object": self.chunk_object}
        """The latest upstream chunk: its id, model... head the chunks the proxy writes."""
        self._walker = Walker(self.driver)
        self._walked = False
        """The walker changed a field of the current chunk: it must be re-serialised."""

    def lone(self, event: Event) -> Lone | None:
        """A chunk of one choice whose delta is one text field, nothing else to look at."""
        chunk = None if event.data == "[DONE]" else self._peek(event)
        if chunk is None:
            return None
        choices = chunk.get("choices")
        if type(choices) is list and len(choices) == 1 and chunk.keys() <= _ENVELOPE:
            choice = choices[0]
            delta = choice.get("delta") if type(choice) is dict else None
            if (
                type(delta) is dict
                and len(delta) == 1
                and choice.get("finish_reason") is None
                and choice.get("logprobs") is None
                and choice.keys() <= self.choice_keys
            ):
                ((field, piece),) = delta.items()
                if type(piece) is str and piece and field in self.text_fields:
                    index = choice.get("index", 0)
                    channel = self._choices.channel(index, field)
                    return Lone(channel, piece, event, (chunk, index, delta, field))
        return None

    def lone_out(self, lone: Lone, text: str) -> bytes:
        """What :meth:`_rewrite_one` writes for a lone chunk whose text released ``text``."""
        chunk, index, delta, field = lone.payload
        self._choices.note(index)
        self._last = chunk
        self._walked = False  # a lone chunk has nothing for the walker
        changed = text != lone.text
        if changed:
            delta[field] = text
        return self._emit(lone.event, chunk, changed, changed and not text)

    async def on_event(self, event: Event) -> bytes:
        if event.data == "[DONE]":
            await self._walker.close()
            flushed = await self._finish_all()
            if self.driver.done:
                return flushed
            self.driver.completed = self.driver.done = True
            return flushed + reencode(event, "[DONE]")
        chunk = self._parsed(event)
        if "error" in chunk:
            self.driver.done = True  # the upstream's own error ends the stream; held text dropped
            return reencode(event, event.data)
        choices = chunk.get("choices")
        self._walked = await self._walk(chunk, choices)
        if self.blocked is not None:
            return self.end_blocked()  # an unknown field blocked: nothing of it goes out
        if not isinstance(choices, list) or not choices:
            return self._emit(event, chunk, False, False)  # the usage chunk, or a keep-alive
        self._last = chunk
        if len(choices) == 1 and self.blocked is None:
            choice = choices[0]
            if type(choice) is dict and choice.get("finish_reason") is None:
                return await self._rewrite_one(event, chunk, choice)
        return await self._rewrite(event, chunk, choices)

    async def closed(self) -> bytes:
        """A body that ends once every choice has finished is complete, ``[DONE]`` or not.

        The SDKs stop reading at the end of the body either way; an error here would turn
        a finished answer into an exception.
        """
        seen = self._choices.seen
        if seen and all(index in self._choices.finished for index in seen):
            await self._walker.close()
            if self.blocked is not None:
                return self.end_blocked()
            self.driver.completed = True
        return b""

    async def _walk(self, chunk: dict[str, Any], choices: object) -> bool:
        """Filter every string of the chunk no text slot claims (deny by default).

        A chunk of the usual shape — only the fields below, text in known slots — has none,
        and is checked with set comparisons alone: this runs on every token.
        """
        if self._plain(chunk, choices):
            return False
        walker = self._walker
        changed = await walker.walk("chunk", chunk, frozenset({(id(chunk), "choices")}))
        if not isinstance(choices, list):
            return changed
        for choice in choices:
            if isinstance(choice, dict):
                skip = self._claimed(choice)
                where = f"choice{choice.get('index', 0)}"
                changed = await walker.walk(where, choice, skip, streaming=True) or changed
        return changed

    def _plain(self, chunk: dict[str, Any], choices: object) -> bool:
        if not chunk.keys() <= _ENVELOPE or not isinstance(choices, list):
            return False
        for choice in choices:
            if type(choice) is not dict or not choice.keys() <= self.choice_keys:
                return False
            delta = choice.get("delta")
            if delta is not None and (type(delta) is not dict or not delta.keys() <= _DELTA_KEYS):
                return False
        return True

    def _claimed(self, choice: dict[str, Any]) -> frozenset[tuple[int, str]]:
        """The slots of one choice the codec filters itself."""
        pairs = [(id(choice), "logprobs")]
        delta = self._delta_of(choice)
        if isinstance(delta, dict):
            pairs.extend((id(delta), field) for field in self.text_fields)
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    pairs.append((id(function), "arguments"))
        return frozenset(pairs)

    async def _rewrite_one(
        self, event: Event, chunk: dict[str, Any], choice: dict[str, Any]
    ) -> bytes:
        """The common chunk — one choice, no ``finish_reason`` — without the general path's
        bookkeeping; what :meth:`_rewrite` would write for it, byte for byte."""
        index = choice.get("index", 0)
        self._choices.note(index)
        logprobs = choice.get("logprobs") is not None
        altered, held = await self._filter_delta(index, self._delta_of(choice), logprobs)
        changed = altered or held
        if changed:
            choice["logprobs"] = None
        out = self._emit(event, chunk, changed, changed and self._is_empty(choice))
        return out + self.end_blocked() if self.blocked is not None else out

    async def _rewrite(self, event: Event, chunk: dict[str, Any], choices: list[Any]) -> bytes:
        """Filter one chunk's choices; the chunk, then any flushed text, then moved finishes.

        A choice whose chains still held text when it finished has its ``finish_reason``
        moved to a chunk of its own after the flushed text, so nothing the upstream sent
        in that chunk (a tool call's id and name, say) is ever reordered. A block stops at
        once: nothing of this chunk that was not filtered goes out, and the choice that
        blocked is ended with ``content_filter`` — never with the upstream's own reason.
        """
        changed = False
        flushes: list[dict[str, Any]] = []
        finishes: list[dict[str, Any]] = []
        kept: list[Any] = []
        for choice in choices:
            kept.append(choice)
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            self._choices.note(index)
            logprobs = choice.get("logprobs") is not None
            altered, held = await self._filter_delta(index, self._delta_of(choice), logprobs)
            if altered or held:
                changed = True
                choice["logprobs"] = None
            finish_reason = choice.get("finish_reason")
            flush: dict[str, Any] = {}
            if self.blocked is None and finish_reason is not None:
                flush = await self._finish_choice(index, end_for(finish_reason))
                if flush:
                    flushes.append(self._choice(index, flush))
                if self.blocked is None:
                    self._choices.finished.add(index)
                    if flush:
                        finishes.append(self._choice(index, {}, finish_reason))
            if finish_reason is not None and (flush or self.blocked is not None):
                choice["finish_reason"] = None
                changed = True
            if self.blocked is not None:
                changed = changed or len(kept) < len(choices)
                break
        chunk["choices"] = kept
        emptied = changed and all(map(self._is_empty_choice, kept))
        out = self._emit(event, chunk, changed, emptied)
        out += b"".join(encode_data(_dumps(self._chunk(c))) for c in (*flushes, *finishes))
        if self.blocked is not None:
            out += self.end_blocked()
        return out

    def _is_empty_choice(self, choice: object) -> bool:
        return isinstance(choice, dict) and self._is_empty(choice)

    def _emit(self, event: Event, chunk: dict[str, Any], changed: bool, emptied: bool) -> bytes:
        if not changed and not self._walked:
            return reencode(event, event.data)  # fast path: the upstream's own data
        if emptied:
            return b""  # everything in it is held: an empty chunk would only add noise
        return reencode(event, _dumps(chunk))

    async def _filter_delta(self, index: int, delta: object, track_held: bool) -> tuple[bool, bool]:
        """Filter every text field of one delta in place: (it changed, text is held).

        Whether text is held is only asked (``track_held``) when the choice has logprobs.

        Once a block is decided, every later field and tool call of the delta is emptied:
        nothing that did not go through the stages leaves with the block.
        """
        if not isinstance(delta, dict):
            return False, False
        held, altered = False, False
        driver = self.driver
        # The usual delta has one key: look at it alone rather than at every text field.
        fields = self.text_fields if len(delta) > 1 else delta.keys()
        for field in fields:
            piece = delta.get(field)
            if not isinstance(piece, str) or not piece or field not in self.text_fields:
                continue
            if driver.blocked is not None:
                delta[field] = ""
                altered = True
                continue
            channel = self._choices.channel(index, field)
            release = await driver.filter(channel, piece)
            held = held or (track_held and driver.held(channel) > 0)
            if release.text != piece:
                delta[field] = release.text
                altered = True
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            kept_calls = []
            for call in tool_calls:
                if self.blocked is not None:
                    altered = True  # dropped: it never went through the stages
                    continue
                keep, call_altered = await self._filter_tool_call(index, call)
                altered = altered or call_altered
                if keep:
                    kept_calls.append(call)
            if altered:
                delta["tool_calls"] = kept_calls
        return altered, held

    async def _filter_tool_call(self, index: int, call: object) -> tuple[bool, bool]:
        """(keep this tool-call entry, it changed)."""
        if not isinstance(call, dict):
            return True, False
        tool = call.get("index", 0)
        function = call.get("function")
        if not isinstance(function, dict):
            return True, False
        if isinstance(function.get("name"), str):
            self._choices.name_tool(index, tool, function["name"])
        piece = function.get("arguments")
        if not isinstance(piece, str) or not piece:
            return True, False
        release = await self.driver.filter(self._choices.channel(index, "arguments", tool), piece)
        if release.text == piece:
            return True, False
        function["arguments"] = release.text
        has_meta = any(k in call for k in ("id", "type")) or "name" in function
        return bool(release.text) or has_meta, True

    async def _finish_choice(self, index: int, end: ChannelEnd) -> dict[str, Any]:
        """Finish every chain of one choice; the flushed text as a delta."""
        delta: dict[str, Any] = {}
        for field, tool, channel in self._choices.open_channels(index):
            if self.blocked is not None:
                break
            release = await self.driver.finish(channel, end)
            if not release.text:
                continue
            if tool is None:
                delta[field] = delta.get(field, "") + release.text
            else:
                calls = delta.setdefault("tool_calls", [])
                calls.append({"index": tool, "function": {"arguments": release.text}})
        return delta

    async def _finish_all(self) -> bytes:
        """At ``[DONE]``: choices the upstream never finished give up their held text."""
        out = []
        for index in self._choices.seen:
            if index in self._choices.finished:
                continue
            flush = await self._finish_choice(index, ChannelEnd.COMPLETE)
            if flush:
                out.append(encode_data(_dumps(self._chunk(self._choice(index, flush)))))
            if self.blocked is not None:
                return b"".join(out) + self.end_blocked()
            self._choices.finished.add(index)
        return b"".join(out)

    def _delta_of(self, choice: dict[str, Any]) -> object:
        """The object in a choice that carries its text fields."""
        return choice.get("delta")

    def _choice(
        self, index: int, delta: dict[str, Any], finish_reason: str | None = None
    ) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    def _is_empty(self, choice: dict[str, Any]) -> bool:
        """A choice whose delta carries nothing a client would miss."""
        return choice.get("finish_reason") is None and _delta_is_empty(choice.get("delta"))

    def _chunk(
        self, *choices: dict[str, Any], usage: dict[str, int] | None = None
    ) -> dict[str, Any]:
        chunk = {k: v for k, v in self._last.items() if k not in _ENVELOPE_SKIP}
        chunk["choices"] = list(choices)
        if usage is not None:
            chunk["usage"] = usage
        return chunk

    def end_blocked(self) -> bytes:
        self.driver.done = True
        out = [
            encode_data(_dumps(self._chunk(self._choice(i, {}, "content_filter"))))
            for i in (self._choices.seen or [0])
            if i not in self._choices.finished
        ]
        if self.request.include_usage:
            tokens = self.driver.text_chunks
            usage = {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens}
            out.append(encode_data(_dumps(self._chunk(usage=usage))))
        out.append(encode_data("[DONE]"))
        return b"".join(out)

    def error(self, message: str, code: str) -> bytes:
        # The SDKs raise on a chunk carrying "error"; no [DONE] follows an incomplete stream.
        body = {"error": {"message": message, "type": "proxy_error", "code": code, "param": None}}
        return encode_data(_dumps(body))


def _delta_is_empty(delta: object) -> bool:
    """A chat delta that carries nothing a client would miss."""
    if not isinstance(delta, dict):
        return False
    for key, value in delta.items():
        if key in TEXT_FIELDS and (value == "" or value is None):
            continue
        if key == "tool_calls" and value == []:
            continue
        return False
    return True
