"""Configuration of the redact stage: its YAML keys, validated by pydantic.

The keys are those of the single-module stage this package replaced, plus
``normalise`` (read the text through the normalised view, on by default) and
``phone_regions`` (the national numbering plans the phone detector knows).
"""

from __future__ import annotations

import enum
from typing import Literal

import phonenumbers
import regex
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from filters.redact.detectors import BUILTIN_NAMES
from filters.redact.validators import DEFAULT_REGIONS, VALIDATORS
from pipeline.stage import StageConfig

_JSON_UNSAFE = regex.compile(r'["\\\x00-\x1f]')


class ReplacementStyle(enum.StrEnum):
    """How a match is written in the output."""

    MASK = "mask"
    """A fixed text (``mask_text``, ``[REDACTED]`` by default)."""
    TYPED = "typed"
    """The detector's label: ``[EMAIL]``."""
    NUMBERED = "numbered"
    """Label and a number per distinct value: ``[EMAIL_1]``; a value repeated gets its
    number again (per channel, or per response when the engine shares a ``Numbering``)."""
    HASH = "hash"
    """Label and a keyed HMAC-SHA256 of the value, truncated: ``[EMAIL:1a2b3c4d]``. Stable
    across responses, so logs can be correlated without the value."""
    PARTIAL = "partial"
    """Label and the last four characters (spaces and dashes ignored): ``[CARD ****1234]``.
    Values shorter than eight such characters show none."""


def _json_safe(text: str) -> str:
    if _JSON_UNSAFE.search(text):
        raise ValueError(
            "must not contain quotes, backslashes or control characters: it is written "
            "into JSON strings as is"
        )
    return text


def _compiles(pattern: str) -> str:
    try:
        regex.compile(f"(?:{pattern})")
    except regex.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return pattern


class CustomDetector(BaseModel):
    """A detector of your own, e.g. employee ids: ``{name: emp_id, pattern: 'EMP-[0-9]{6}'}``.

    The pattern should not match quotes or backslashes (in JSON channels such matches are
    skipped), and its lookbehinds must reach back no more than 32 characters.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    """Rule name in findings and in ``styles``."""
    pattern: str
    """Regular expression (``regex`` module syntax) for one value."""
    validator: str | None = None
    """A built-in validator the value must also pass: ``luhn``, ``card``, ``mod97``,
    ``iban``, ``ssn``, ``phone``, ``email``, ``ipv4``, ``ipv6`` or ``jwt``."""
    replacement: ReplacementStyle | None = None
    """Style for this detector; defaults to the stage's ``replacement``."""
    label: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]{0,63}$")
    """Placeholder label; defaults to the upper-cased name."""

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        return _compiles(value)

    @field_validator("validator")
    @classmethod
    def _validator_known(cls, value: str | None) -> str | None:
        if value is not None and value not in VALIDATORS:
            raise ValueError(f"unknown validator {value!r}; known: {', '.join(VALIDATORS)}")
        return value


class RedactConfig(StageConfig):
    """Replace PII and secrets (emails, phones, cards, IBANs, SSNs, IPs, API keys, JWTs,
    private keys) in the stream. With no options every built-in detector is on."""

    type: Literal["redact"] = "redact"
    detectors: tuple[str, ...] | None = None
    """Built-in detectors to enable (``null``: all of them)."""
    custom: tuple[CustomDetector, ...] = ()
    """Extra detectors; they win ties with built-ins."""
    replacement: ReplacementStyle = ReplacementStyle.TYPED
    """Default replacement style."""
    styles: dict[str, ReplacementStyle] = Field(default_factory=dict)
    """Per-detector style, e.g. ``{card: partial}``. ``private_key`` only takes ``mask``
    or ``typed``: its placeholder goes out before the key has been seen."""
    mask_text: str = "[REDACTED]"
    """Text of the ``mask`` style."""
    hash_key_env: str | None = None
    """Environment variable holding the HMAC key of the ``hash`` style (required by it)."""
    hash_length: int = Field(default=8, ge=4, le=64)
    """Hex digits of the HMAC shown by the ``hash`` style."""
    allow: tuple[str, ...] = ()
    """Exact values never redacted (a support address, a documentation IP)."""
    allow_patterns: tuple[str, ...] = ()
    """Regular expressions; a value matching one entirely is never redacted."""
    normalise: bool = True
    """Read the channel through the normalised view (NFKC, format characters removed,
    JSON strings decoded), so zero-width characters, fullwidth forms and JSON escapes do
    not hide a value. ``false``: match the raw text, as before the view existed."""
    phone_regions: tuple[str, ...] = DEFAULT_REGIONS
    """Regions (ISO 3166 codes) whose national phone formats are recognised; numbers
    with ``+`` or ``00`` and a country code are recognised for every country."""

    @field_validator("phone_regions")
    @classmethod
    def _regions_known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - phonenumbers.SUPPORTED_REGIONS)
        if unknown:
            raise ValueError(f"unknown phone regions {unknown} (ISO 3166 alpha-2 codes)")
        return value

    @field_validator("mask_text", "mask")
    @classmethod
    def _placeholder_json_safe(cls, value: str) -> str:
        return _json_safe(value)

    @field_validator("max_holdback_chars")
    @classmethod
    def _holds_something(cls, value: int | None) -> int | None:
        if value == 0:
            raise ValueError("the redact stage must be allowed to hold at least 1 character")
        return value

    @field_validator("detectors")
    @classmethod
    def _detectors_known(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = sorted(set(value or ()) - set(BUILTIN_NAMES))
        if unknown:
            raise ValueError(f"unknown detectors {unknown}; built-in: {', '.join(BUILTIN_NAMES)}")
        return value

    @field_validator("allow_patterns")
    @classmethod
    def _allow_patterns_compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            _compiles(pattern)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RedactConfig:
        names = [c.name for c in self.custom]
        clash = {n for n in names if names.count(n) > 1 or n in BUILTIN_NAMES or n == "overflow"}
        if clash:
            raise ValueError(f"custom detector names must be unique and new: {sorted(clash)}")
        unknown = sorted(set(self.styles) - set(BUILTIN_NAMES) - set(names))
        if unknown:
            raise ValueError(f"styles name unknown detectors: {unknown}")
        if self.hash_key_env is None and ReplacementStyle.HASH in self._all_styles():
            raise ValueError("the hash style needs hash_key_env (an environment variable name)")
        return self

    def _all_styles(self) -> set[ReplacementStyle]:
        custom = {c.replacement for c in self.custom if c.replacement is not None}
        return {self.replacement, *self.styles.values(), *custom}
