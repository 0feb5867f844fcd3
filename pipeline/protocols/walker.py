"""Deny by default inside known protocols: every string a codec does not know is filtered.

A codec handles the text slots it knows (chat ``content``, Anthropic ``text_delta``...).
Everything else an event carries passes through :class:`Walker`, which filters every string
value except structural ones (ids, ``type``, ``model``, ``role``, finish and stop reasons,
signatures, base64 payloads, see :func:`is_structural`), each on a channel of its own. A
field a provider adds tomorrow is therefore filtered, never passed raw, and counted
(``streamsieve_unknown_fields``) so operators see it and can teach a codec about it. The
generic codecs walk whole replies this way: on a generic reply every string is "unknown".

Two modes. *Streaming* (the fields of a delta): the same path in successive events is one
channel, so a match split across two events is still caught; what a stage still holds when
the stream ends has no known place to go and is dropped (fail closed). *Whole* (every other
event): each string is one complete text, fed and finished at once.

Token lists (``logprobs``, ``top_logprobs``) inside such fields repeat raw text and are
emptied rather than filtered token by token.

URLs are text. ``url``, ``results_url``, ``*_url`` and the like are filtered like any prose,
not kept as structure: a URL carries whatever its path and query say (``?email=...``, a
signed link naming a customer, a search for someone's name), and deny by default means a
field is passed raw only when it cannot carry such text. The cost is that a URL a stage
matches inside is changed (redact reads ``127.0.0.1`` in a host as an IPv4 address), and a
changed link no longer works; a route that must keep links intact configures its stages
(an ``allow`` list, a narrower detector set) rather than the walker skipping them. Only keys
are never filtered: they are the JSON's structure, not its text.
"""

from __future__ import annotations

from typing import Any

from pipeline.driver import Driver
from pipeline.stage import Channel, ChannelEnd

STRUCTURAL = frozenset(
    {
        "id",
        "object",
        "type",
        "model",
        "role",
        "status",
        "finish_reason",
        "native_finish_reason",
        "stop_reason",
        "stop_sequence",
        "signature",
        "encrypted_content",
        "data",
        "obfuscation",
        "name",
        "media_type",
        "mime_type",
        "format",
        "voice",
        "service_tier",
        "system_fingerprint",
        "created",
        "created_at",
        "expires_at",
        "completed_at",
        "index",
        "sequence_number",
        "detail",
        "category",
        "inference_geo",
    }
)
"""Keys whose string values are structure the client's SDK routes or verifies on, not prose.

``name`` is a tool's or function's name (chosen from the request's tools); ``data`` and
``*_b64`` hold base64 payloads (audio, images); ``signature``, ``encrypted_content`` and
``*_token`` are provider-signed or opaque and must stay byte-exact; ``category`` and the
like are enumerations. Keys ending in ``_id``, ``_index``, ``_type``, ``_tier`` count too."""
_STRUCTURAL_SUFFIXES = ("_id", "_b64", "_index", "_type", "_token", "_tier")
TOKEN_LISTS = frozenset({"logprobs", "top_logprobs"})

Skip = frozenset[tuple[int, str]]
"""``(id(container), key)`` pairs the codec filters itself: the walker leaves them alone."""
NOTHING_SKIPPED: Skip = frozenset()


def is_structural(key: str) -> bool:
    """Whether a string under ``key`` is structure (passed as is) rather than text."""
    return key in STRUCTURAL or key.endswith(_STRUCTURAL_SUFFIXES)


class Walker:
    """Filters the strings of one response's events that no codec slot claims."""

    __slots__ = ("_blank_after_block", "_driver", "_streams", "_wholes")

    def __init__(self, driver: Driver, *, blank_after_block: bool = True) -> None:
        self._driver = driver
        self._blank_after_block = blank_after_block
        """A stream ends at a block, so later strings are emptied; a body is walked after
        its codec wrote the blocked shape, so its strings are still filtered instead."""
        self._streams: dict[str, Channel] = {}
        self._wholes = 0

    async def walk(
        self, where: str, value: Any, skip: Skip = NOTHING_SKIPPED, *, streaming: bool = False
    ) -> bool:
        """Filter, in place, every unclaimed string under ``value``; whether any changed.

        ``where`` names the place (``choice0``, ``block2``, an event type), so channels
        read like the codecs' own (``choice0.delta.audio.transcript``).
        """
        return await self._walk(where, value, skip, streaming)

    async def string(self, where: str, text: str) -> str:
        """One bare string (a JSON body that is only a string), filtered whole."""
        return await self._filter(where, text, False) if text else text

    async def _walk(self, path: str, value: Any, skip: Skip, streaming: bool) -> bool:
        changed = False
        if type(value) is dict:
            for key, item in value.items():
                kind = type(item)
                if kind is str:
                    if not item or key in STRUCTURAL or key.endswith(_STRUCTURAL_SUFFIXES):
                        continue
                    if skip and (id(value), key) in skip:
                        continue
                    filtered = await self._filter(f"{path}.{_place(key)}", item, streaming)
                    if filtered != item:
                        value[key] = filtered
                        changed = True
                elif kind is dict or kind is list:
                    if skip and (id(value), key) in skip:
                        continue
                    if key in TOKEN_LISTS:
                        if item:
                            value[key] = []
                            changed = True
                    elif await self._walk(f"{path}.{_place(key)}", item, skip, streaming):
                        changed = True
        elif type(value) is list:
            for position, item in enumerate(value):
                kind = type(item)
                if kind is str:
                    if item:
                        filtered = await self._filter(f"{path}.{position}", item, streaming)
                        if filtered != item:
                            value[position] = filtered
                            changed = True
                elif (kind is dict or kind is list) and await self._walk(
                    f"{path}.{position}", item, skip, streaming
                ):
                    changed = True
        return changed

    async def _filter(self, key: str, text: str, streaming: bool) -> str:
        driver = self._driver
        driver.note_unknown(_label(key))
        if driver.blocked is not None and self._blank_after_block:
            return ""  # nothing unfiltered leaves with a block
        if streaming:
            channel = self._streams.get(key)
            if channel is None:
                channel = self._streams[key] = driver.channel(key)
            return (await driver.filter(channel, text)).text
        self._wholes += 1
        channel = driver.channel(f"{key}#{self._wholes}")
        release = await driver.whole(channel, text, ChannelEnd.COMPLETE)
        driver.response.close(channel)  # one chain per string: keep its findings, not it
        return release.text

    async def close(self) -> None:
        """End every streaming channel; held text is dropped (its place is unknown)."""
        streams, self._streams = self._streams, {}
        for channel in streams.values():
            if self._driver.blocked is not None:
                return
            await self._driver.finish(channel, ChannelEnd.COMPLETE)


def _place(key: str) -> str:
    """A key as a part of a channel's name: itself when it reads as a field name, else ``*``.

    Channel names end up in findings (logs) and in the unknown-fields metric's labels. A
    known protocol's keys are field names, but an arbitrary JSON body (the generic codec)
    may key a map by data, an address or a customer's name: such a key would leak into the
    logs and blow up the metric's cardinality, so it is named ``*`` instead.
    """
    return key if len(key) <= 64 and key.isidentifier() else "*"


def _label(key: str) -> str:
    """A channel key as a metric label: list positions and numbered places dropped."""
    parts = [p for p in key.split(".") if not p.isdigit()]
    return ".".join(p.rstrip("0123456789") or p for p in parts)
