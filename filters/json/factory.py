"""``type: json``: its YAML keys and the factory that opens a stage per JSON channel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

import structlog
from pydantic import Field, field_validator, model_validator

from filters.json.automaton import JsonScanner
from filters.json.checker import SchemaChecker
from filters.json.events import SchemaError
from filters.json.grammar import UNUSABLE_RULE
from filters.json.schema import Node, compile_schema
from filters.json.stage import HELD_END_CHARS, JsonStage
from filters.json.verdict import FinalCheck
from pipeline.stage import Channel, ChannelKind, Finding, StageConfig, StageFactory

log = structlog.get_logger("streamsieve.json")


class JsonConfig(StageConfig):
    """``type: json``: validate JSON channels as they stream (RFC 8259, optional schema)."""

    type: Literal["json"] = "json"
    apply: Literal["always", "never", "detected"] = "detected"
    """Which channels: ``detected`` = JSON channels only (tool-call arguments, content of a
    request with ``response_format`` json_object/json_schema); ``always`` = every channel,
    prose included; ``never`` = off (a route can keep the entry and disable it)."""
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    """A JSON Schema used when the request declared none. Written ``schema:`` in YAML. The
    keywords of :data:`filters.json.schema.DECIDED` stop the stream at the first character
    that breaks them; every other keyword is judged by ``jsonschema-rs`` over the complete
    document at the end (see :mod:`filters.json.verdict`)."""
    schema_from_request: bool = True
    """Use the schema the request declared (``response_format.json_schema.schema`` or the
    tool's ``parameters``) in preference to ``schema``."""
    action: Literal["block", "flag"] = "block"
    """``block``: end the response at the first error, releasing the valid text before it.
    ``flag``: release everything unchanged, record a ``flagged`` finding for the first error
    and stop checking the channel."""
    lookahead_chars: int = Field(default=1, ge=0)
    """Validated characters held back, so an error within that many characters is decided
    before the text leading to it goes out. Any value from ``1`` also holds the document's
    end (its closing character, or a top-level number, plus whitespace after it) until the
    channel finishes: that, not a long window, keeps a document failing at its end from
    reaching the client complete-looking, and each held character delays every token, hence
    the default of ``1``. ``0``: release at once; a later error can only stop what follows.
    Whitespace after the end is held as runs (a run of any length counts one), so a
    document padded with spaces or newlines stays within ``max_holdback``
    (``HELD_END_CHARS``) and reaches the client intact."""
    whole: bool = False
    """Hold everything until the document is complete and valid; an invalid document
    releases nothing. Latency becomes the whole document: an explicit choice. The route's
    ``buffer.max_holdback_chars`` must admit the document too, or its overflow policy
    applies first."""
    max_depth: int = Field(default=64, ge=1)
    """Deepest nesting of objects/arrays accepted (``json_limit`` beyond)."""
    max_chars: int = Field(default=1 << 20, ge=1)
    """Longest document accepted, in characters, whitespace included (``json_limit``)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Reject settings that would silently do nothing."""
        if self.whole and "lookahead_chars" in self.model_fields_set:
            raise ValueError("lookahead_chars has no effect with whole: true")
        if self.action == "flag" and (self.whole or "lookahead_chars" in self.model_fields_set):
            raise ValueError("action: flag never holds text; drop whole/lookahead_chars")
        return self

    @field_validator("json_schema")
    @classmethod
    def _usable(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        """Compile once here so a schema we cannot apply fails at load, at its own key."""
        if schema is not None:
            _Compiled(schema)
        return schema


class JsonFactory(StageFactory[JsonConfig]):
    """Opens a :class:`JsonStage` per JSON channel, with the request's schema when given."""

    config_model = JsonConfig

    def __init__(self, config: JsonConfig) -> None:
        super().__init__(config)
        schema = config.json_schema
        self._schema = _Compiled(schema) if schema is not None else None

    @property
    def max_holdback(self) -> int:
        """The lookahead or the held end, the document size in ``whole`` mode, 0 to flag."""
        config = self.config
        if config.action == "flag":
            return 0
        if config.whole:
            return config.max_chars
        lookahead = config.lookahead_chars
        return max(lookahead, HELD_END_CHARS) if lookahead else 0

    def applies_to(self, channel: Channel) -> bool:
        """The ``channels`` key first, then ``apply`` (``detected``: JSON channels)."""
        apply = self.config.apply
        if apply == "never" or not super().applies_to(channel):
            return False
        return apply == "always" or channel.kind is ChannelKind.JSON

    def open(self, channel: Channel) -> JsonStage:
        """A fresh stage, with the request's schema compiled when it declared one.

        A request schema this checker cannot apply (a remote ``$ref``, a malformed keyword)
        must not break a stream the provider already accepted: the channel is then checked
        for syntax only, and its first release carries a ``json_schema_unusable`` finding.
        """
        config = self.config
        schema = self._schema
        notice: Finding | None = None
        if config.schema_from_request and channel.json_schema is not None:
            try:
                schema = _Compiled(channel.json_schema)
            except SchemaError as exc:
                log.warning("json_schema_unusable", channel=channel.key, error=str(exc)[:200])
                schema = None
                notice = Finding(UNUSABLE_RULE, "flagged", 0, 0)
        checker = SchemaChecker(schema.node) if schema is not None else None
        scanner = JsonScanner(checker, max_depth=config.max_depth, max_chars=config.max_chars)
        flag = config.action == "flag"
        keep = 0 if flag else None if config.whole else config.lookahead_chars
        final = schema.final if schema is not None else None
        return JsonStage(scanner, keep=keep, flag=flag, notice=notice, final=final)


class _Compiled:
    """A schema compiled for both checks: streaming, and the final verdict if needed."""

    __slots__ = ("final", "node")

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.node: Node = compile_schema(schema)
        self.final: FinalCheck | None = None if self.node.exact() else FinalCheck(schema)
