"""The redact stage's factory: compiles the detectors once per route and opens stages."""

from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
from typing import Any

import regex

from filters.redact.config import RedactConfig, ReplacementStyle
from filters.redact.detectors import (
    BUILTIN,
    BUILTIN_NAMES,
    DetectorSpec,
    Tail,
    ascii_opening_source,
    opening_source,
    pattern_source,
)
from filters.redact.rules import ALNUM, DEFAULT_HOLDBACK, Numbering, Plan, Rule
from filters.redact.scanner import RedactStage
from filters.redact.validators import DEFAULT_REGIONS, VALIDATORS, phone_checker
from pipeline.stage import Channel, ChannelKind, StageFactory
from pipeline.textview import Normaliser

_HYPHENS = frozenset(
    unicodedata.lookup(name)
    for name in ("HYPHEN", "NON-BREAKING HYPHEN", "FIGURE DASH", "EN DASH", "MINUS SIGN")
)
"""Dashes that stand for ``-`` inside numbers (NFKC keeps them): 415-555-0123 written with
non-breaking hyphens is a phone. The em dash stays: it separates words, not digits."""


def separator_fold(char: str) -> str:
    """The redact stage's fold over the NFKC view: number-joining dashes read as ``-``."""
    return "-" if char in _HYPHENS else char


_CUSTOM_LOOKAHEAD = 8
"""How far past a custom match the stage looks before calling it final: custom patterns
may end in lookaheads we cannot measure."""
_OVERFLOW_RUN = "[A-Za-z0-9_\\-.+/=@%]*"
"""Token characters dropped after an overflow mask: the rest of the over-long token."""


def _word_start(spec: DetectorSpec) -> bool:
    """Whether ``spec``'s left boundary rules out a start right after a letter or digit,
    so in text channels new text triggers it only at the start of a word."""
    return bool(spec.before) and all(regex.fullmatch(spec.before, char) for char in ALNUM)


class RedactFactory(StageFactory[RedactConfig]):
    """Compiles the detectors once per route; opens one :class:`RedactStage` per channel."""

    config_model = RedactConfig

    def __init__(self, config: RedactConfig) -> None:
        super().__init__(config)
        specs = self._specs(config)
        styles = self._styles(config, specs)
        self._text = Plan(
            rules=self._rules(specs, styles, json=False),
            bound=config.max_holdback_chars or DEFAULT_HOLDBACK,
            json=False,
            mask=config.mask,
            mask_text=config.mask_text,
            hash_key=self._hash_key(config, set(styles.values())),
            hash_length=config.hash_length,
            allow=frozenset(config.allow),
            allow_rx=tuple(regex.compile(p) for p in config.allow_patterns),
            overflow_rx=regex.compile(_OVERFLOW_RUN),
            normaliser=None,
            **self._triggers(specs),
        )
        if config.normalise:
            # Both kinds read through a view; a JSON view decodes strings, so the text
            # patterns serve it too. One character of the bound is the view's: the last
            # letter, which a combining mark could still change, is held by the view.
            self._text = dataclasses.replace(
                self._text,
                normaliser=Normaliser(separator_fold),
                bound=max(1, self._text.bound - 1),
            )
            self._json = self._text
        else:
            raw = tuple(spec for spec in specs if spec.raw_json)
            self._json = dataclasses.replace(
                self._text,
                rules=self._rules(raw, styles, json=True),
                json=True,
                **self._triggers(raw),
            )

    @property
    def max_holdback(self) -> int:
        """``max_holdback_chars``, or 256: no candidate is held longer than this."""
        return self.config.max_holdback_chars or DEFAULT_HOLDBACK

    def open(self, channel: Channel, numbering: Numbering | None = None) -> RedactStage:
        """A stage for ``channel``, numbering as every other channel of its response does.

        The numbering lives in ``channel.scope`` (one dict per response, keyed by this
        factory), so ``[EMAIL_1]`` names the same address in the content and in a tool
        call; an explicit ``numbering`` overrides it.
        """
        json = channel.kind is ChannelKind.JSON
        if numbering is None:
            numbering = channel.scope.setdefault(self, Numbering())
        return RedactStage(self._json if json else self._text, numbering, json=json)

    @staticmethod
    def _specs(config: RedactConfig) -> tuple[DetectorSpec, ...]:
        custom = tuple(
            DetectorSpec(
                name=c.name,
                label=c.label or c.name.upper(),
                body=c.pattern,
                lookahead=_CUSTOM_LOOKAHEAD,
                validator=VALIDATORS[c.validator] if c.validator else None,
            )
            for c in config.custom
        )
        enabled = set(BUILTIN_NAMES if config.detectors is None else config.detectors)
        builtin = tuple(spec for spec in BUILTIN if spec.name in enabled)
        if config.phone_regions != DEFAULT_REGIONS:
            phone = phone_checker(config.phone_regions)
            builtin = tuple(
                dataclasses.replace(spec, validator=phone) if spec.name == "phone" else spec
                for spec in builtin
            )
        return custom + builtin

    @staticmethod
    def _styles(
        config: RedactConfig, specs: tuple[DetectorSpec, ...]
    ) -> dict[str, ReplacementStyle]:
        declared = {c.name: c.replacement for c in config.custom if c.replacement is not None}
        styles: dict[str, ReplacementStyle] = {}
        for spec in specs:
            style = config.styles.get(spec.name) or declared.get(spec.name) or config.replacement
            if spec.tail is Tail.PEM and style is not ReplacementStyle.MASK:
                # Numbers, hashes and last digits need the key, which is not seen yet.
                style = ReplacementStyle.TYPED
            styles[spec.name] = style
        return styles

    @staticmethod
    def _triggers(specs: tuple[DetectorSpec, ...]) -> dict[str, Any]:
        """The ``Plan`` fields that pick which of ``specs`` a feed runs."""
        return {
            "starters": RedactFactory._starters(specs),
            "inner": RedactFactory._starters(specs, after_alnum=True),
            "anywhere": sum(1 << i for i, spec in enumerate(specs) if not spec.first),
            "unicode": sum(1 << i for i, spec in enumerate(specs) if spec.unicode_first),
        }

    @staticmethod
    def _starters(specs: tuple[DetectorSpec, ...], *, after_alnum: bool = False) -> dict[str, int]:
        starters: dict[str, int] = {}
        for i, spec in enumerate(specs):
            if after_alnum and _word_start(spec):
                continue
            for char in spec.first:
                starters[char] = starters.get(char, 0) | 1 << i
        return starters

    @staticmethod
    def _hash_key(config: RedactConfig, styles: set[ReplacementStyle]) -> bytes:
        if ReplacementStyle.HASH not in styles or config.hash_key_env is None:
            return b""
        key = os.environ.get(config.hash_key_env)
        if not key:
            raise ValueError(f"the hash style needs the key in ${config.hash_key_env}, unset")
        return key.encode()

    @staticmethod
    def _rules(
        specs: tuple[DetectorSpec, ...], styles: dict[str, ReplacementStyle], *, json: bool
    ) -> tuple[Rule, ...]:
        return tuple(
            Rule(
                name=spec.name,
                label=spec.label,
                rx=regex.compile(pattern_source(spec, json=json)),
                validate=spec.validator,
                lookahead=spec.lookahead,
                decisive=spec.decisive,
                tail=spec.tail,
                tail_rx=regex.compile(f"{spec.tail_chars}*") if spec.tail_chars else None,
                style=styles[spec.name],
                openings=(
                    RedactFactory._opening(spec, json=json),
                    RedactFactory._opening(spec, json=False),
                    RedactFactory._ascii_opening(spec) or RedactFactory._opening(spec, json=False),
                ),
                needs=spec.needs,
                wraps="\\n" in spec.body,
            )
            for spec in specs
        )

    @staticmethod
    def _ascii_opening(spec: DetectorSpec) -> Any:
        source = ascii_opening_source(spec) if spec.opening else None
        return None if source is None else re.compile(source)

    @staticmethod
    def _opening(spec: DetectorSpec, *, json: bool) -> Any:
        if not spec.opening:
            return None
        # stdlib re searches several times faster; JSON's escape lookbehinds need regex.
        source = opening_source(spec, json=json)
        return regex.compile(source) if json else re.compile(source)
