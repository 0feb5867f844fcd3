"""The redact stage: PII and secrets replaced in the token stream while it streams.

How a channel is cut
--------------------
The stage keeps the input it has not released yet (``_buf``) and, just before it, the
last ``_CONTEXT`` input characters it did release (``_ctx``), so lookbehinds see the same
text however the upstream split it. After each feed it walks the buffer left to right and
asks every detector for its first candidate from the current position:

- ``MATCH``: a complete, validated match that no further input can change;
- ``OPEN``: a candidate more input could still complete, grow or displace (a regex partial
  match, or a complete match close enough to the end of what has arrived that its right
  boundary or a longer alternative is still undecided);
- ``OVERFLOW``: a candidate still open ``max_holdback`` characters after its start.

The earliest candidate wins (at one position: OVERFLOW, then OPEN, then the longest
MATCH, then detector priority). Text before it is released; a MATCH is replaced; an OPEN
stops the walk and is held with everything after it; an OVERFLOW is masked, fail-closed.

Each candidate is judged on at most ``max_holdback`` characters from its start (``endpos``
of the regex call), never on how much text happened to arrive, which is what makes the
output and findings identical for every split of the same text.

A feed searches only with the detectors that have a live candidate or that can start in
the new text (at a first character of theirs where a word starts, or anywhere for the
BEGIN line, whose boundary allows it), each from its live candidate or the new text on.
Each tries its ``opening`` first, a stdlib search that rules out nearly everything, and
for an email address or IPv6 address still growing at the end finds it outright: a token
of prose costs a stdlib search or two and no ``regex`` call, never a rescan of what was
released. A JSON channel reads the same way until a backslash is in sight.

What is held
------------
- Ordinary prose holds nothing when a feed ends in whitespace or in punctuation that
  cannot continue a value (``,`` ``;`` ``!`` ``?`` ``)``). A feed that ends inside a word
  holds that word, up to 64 characters: it may still become an email's local part
  (``john`` + ``@example.com``) or a key (``sk`` + ``-proj-...``), and releasing it would
  leak the first half of a secret. ``word.`` holds ``word.`` (``john.`` + ``smith@...``).
- A candidate is held at most ``max_holdback`` characters (default 256). Natural maxima
  are far lower: card 25, IBAN 42, IPv6 45, phone about 30, private key BEGIN line 70,
  email local part 64. Longer candidates (huge emails, JWTs whose header and payload
  exceed the bound, over-long keys) are masked with the stage's ``mask`` under the rule
  ``overflow``, and the run of token characters that follows them is dropped.
- A private key block is never held: once its BEGIN line is complete the placeholder goes
  out and the stage drops input (``held`` stays 0) until the END line, or in a JSON
  channel until the string ends. With no END, ``finish`` drops the rest.
- A JWT is committed on ``header.payload.``; its signature is dropped as it streams.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from filters.detectors import (
    BUILTIN,
    BUILTIN_NAMES,
    PEM_END,
    PEM_END_MAX,
    VALIDATORS,
    DetectorSpec,
    Tail,
    Validator,
    opening_source,
    pattern_source,
)
from pipeline.stage import (
    NOTHING,
    Channel,
    ChannelEnd,
    ChannelKind,
    Finding,
    Release,
    StageConfig,
    StageFactory,
)

DEFAULT_HOLDBACK = 256
"""Characters one channel may hold when ``max_holdback_chars`` is not set."""

_CONTEXT = 32
"""Released input kept for lookbehinds; custom patterns' lookbehinds must fit in it."""
_CUSTOM_LOOKAHEAD = 8
"""How far past a custom match the stage looks before calling it final: custom patterns
may end in lookaheads we cannot measure."""
_OVERFLOW_RUN = "[A-Za-z0-9_\\-.+/=@%]*"
"""Token characters dropped after an overflow mask: the rest of the over-long token."""

_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_LONG_FEED = 64
"""Past this many characters a feed triggers detectors by the characters it contains,
wherever they are: a superset, found without a Python loop over every character."""
_JSON_UNSAFE = regex.compile(r'["\\\x00-\x1f]')
_QUOTE_OR_BACKSLASH = regex.compile(r'["\\]')
_STRING_BODY = regex.compile(r'[^"\\]*(?:\\.[^"\\]*)*', regex.DOTALL)
_PEM_END_RX = regex.compile(PEM_END)

# Candidate kinds, in the order they win at one position.
_OVERFLOW, _OPEN, _MATCH = 0, 1, 2

# (start, kind, -length, rule index, end): the smallest tuple is the candidate to act on.
_Event = tuple[int, int, int, int, int]


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


class Numbering:
    """Numbers for the ``numbered`` style: the same value gets the same number.

    One per response and factory, shared by the response's channels through
    ``Channel.scope``. Values are kept only as digests keyed with a random per-instance
    key.
    """

    __slots__ = ("_counts", "_key", "_numbers")

    def __init__(self) -> None:
        self._key = b""  # drawn on first use: most channels never number anything
        self._numbers: dict[tuple[str, bytes], int] = {}
        self._counts: dict[str, int] = {}

    def number(self, label: str, value: str) -> int:
        """The number of ``value`` among values labelled ``label`` (1 for the first)."""
        if not self._key:
            self._key = secrets.token_bytes(16)
        digest = hashlib.blake2b(value.encode(), key=self._key, digest_size=16).digest()
        number = self._numbers.get((label, digest))
        if number is None:
            number = self._counts.get(label, 0) + 1
            self._counts[label] = number
            self._numbers[label, digest] = number
        return number


@dataclass(frozen=True, slots=True)
class _Rule:
    """A detector compiled for one channel kind, with its resolved style."""

    name: str
    label: str
    rx: Any  # regex.Pattern: the regex module ships no type stubs
    validate: Validator | None
    lookahead: int
    decisive: bool
    tail: Tail
    tail_rx: Any
    style: ReplacementStyle
    opening: Any
    """Where a candidate may start (``re`` or ``regex`` pattern), or None."""
    plain_opening: Any
    """The text channel's ``opening``. In JSON it serves text without a backslash, where
    the left boundary after an escape cannot apply, so the two read the same."""
    needs: str
    """``DetectorSpec.needs``: without it in the text, ``opening`` finds the candidate."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything a stage needs that is shared by every channel of one kind."""

    rules: tuple[_Rule, ...]
    bound: int
    json: bool
    mask: str
    mask_text: str
    hash_key: bytes
    hash_length: int
    allow: frozenset[str]
    allow_rx: tuple[Any, ...]
    overflow_rx: Any
    starters: dict[str, int]
    """Per character, the bit mask of the detectors whose matches can start with it."""
    inner: dict[str, int]
    """``starters`` for a character right after an ASCII letter or digit: only the
    detectors whose left boundary allows that; the others start only where a word does
    (in JSON, where no backslash precedes: ``\\n`` is a boundary too)."""
    anywhere: int
    """Bit mask of the detectors whose matches can start with any character."""

    def triggered(self, s: str, fresh: int, live: dict[int, _Event], plain: bool) -> list[int]:
        """Indices of the detectors to run on the new text ``s[fresh:]``: those with a
        live candidate and those that can start at one of its characters. ``plain``:
        ``s`` is text or JSON without a backslash."""
        starters = self.starters
        inner = self.inner if plain else starters
        mask = self.anywhere if fresh < len(s) else 0
        if len(s) - fresh > _LONG_FEED:
            # A whole response in one feed: a loop over every character would cost more
            # than the searches it saves, so any occurrence of a first character counts.
            for char in set(s[fresh:]):
                mask |= starters.get(char, 0)
        else:
            table = inner if fresh and s[fresh - 1] in _ALNUM else starters
            for char in s[fresh:]:
                mask |= table.get(char, 0)
                table = inner if char in _ALNUM else starters
        for i in live:
            mask |= 1 << i
        indices = []
        while mask:
            lowest = mask & -mask
            indices.append(lowest.bit_length() - 1)
            mask ^= lowest
        return indices

    def accepts(self, rule: _Rule, value: str) -> bool:
        """Whether a candidate is redacted: valid, not allowed, JSON-safe to replace."""
        if self.json and ('"' in value or "\\" in value):
            return False
        if rule.validate is not None and not rule.validate(value):
            return False
        return value not in self.allow and not any(rx.fullmatch(value) for rx in self.allow_rx)

    def render(self, rule: _Rule, value: str, numbering: Numbering) -> str:
        """The placeholder for ``value`` in ``rule``'s style."""
        style = rule.style
        if style is ReplacementStyle.MASK:
            return self.mask_text
        if style is ReplacementStyle.TYPED:
            return f"[{rule.label}]"
        if style is ReplacementStyle.NUMBERED:
            return f"[{rule.label}_{numbering.number(rule.label, value)}]"
        if style is ReplacementStyle.HASH:
            digest = hmac.new(self.hash_key, value.encode(), hashlib.sha256).hexdigest()
            return f"[{rule.label}:{digest[: self.hash_length]}]"
        kept = value.replace(" ", "").replace("-", "").rstrip(".")
        return f"[{rule.label} ****{kept[-4:] if len(kept) >= 8 else ''}]"


def _word_start(spec: DetectorSpec) -> bool:
    """Whether ``spec``'s left boundary rules out a start right after a letter or digit,
    so in text channels new text triggers it only at the start of a word."""
    return bool(spec.before) and all(regex.fullmatch(spec.before, char) for char in _ALNUM)


class RedactFactory(StageFactory[RedactConfig]):
    """Compiles the detectors once per route; opens one :class:`RedactStage` per channel."""

    config_model = RedactConfig

    def __init__(self, config: RedactConfig) -> None:
        super().__init__(config)
        specs = self._specs(config)
        styles = self._styles(config, specs)
        self._text = _Plan(
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
            starters=self._starters(specs),
            inner=self._starters(specs, after_alnum=True),
            anywhere=sum(1 << i for i, spec in enumerate(specs) if not spec.first),
        )
        self._json = dataclasses.replace(
            self._text, rules=self._rules(specs, styles, json=True), json=True
        )

    @property
    def max_holdback(self) -> int:
        """``max_holdback_chars``, or 256: no candidate is held longer than this."""
        return self._text.bound

    def open(self, channel: Channel, numbering: Numbering | None = None) -> RedactStage:
        """A stage for ``channel``, numbering as every other channel of its response does.

        The numbering lives in ``channel.scope`` (one dict per response, keyed by this
        factory), so ``[EMAIL_1]`` names the same address in the content and in a tool
        call; an explicit ``numbering`` overrides it.
        """
        plan = self._json if channel.kind is ChannelKind.JSON else self._text
        if numbering is None:
            numbering = channel.scope.setdefault(self, Numbering())
        return RedactStage(plan, numbering)

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
        return custom + tuple(spec for spec in BUILTIN if spec.name in enabled)

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
    ) -> tuple[_Rule, ...]:
        return tuple(
            _Rule(
                name=spec.name,
                label=spec.label,
                rx=regex.compile(pattern_source(spec, json=json)),
                validate=spec.validator,
                lookahead=spec.lookahead,
                decisive=spec.decisive,
                tail=spec.tail,
                tail_rx=regex.compile(f"{spec.tail_chars}*") if spec.tail_chars else None,
                style=styles[spec.name],
                opening=RedactFactory._opening(spec, json=json),
                plain_opening=RedactFactory._opening(spec, json=False),
                needs=spec.needs,
            )
            for spec in specs
        )

    @staticmethod
    def _opening(spec: DetectorSpec, *, json: bool) -> Any:
        if not spec.opening:
            return None
        # stdlib re searches several times faster; JSON's escape lookbehinds need regex.
        source = opening_source(spec, json=json)
        return regex.compile(source) if json else re.compile(source)


class _Mode(enum.Enum):
    SCAN = "scan"
    """Looking for candidates."""
    RUN = "run"
    """Dropping the rest of a token (a JWT signature, an over-long candidate)."""
    PEM = "pem"
    """Dropping a private key block until its END line."""


class _JsonCursor:
    """Whether the JSON seen so far ends inside a string.

    A value outside any string (a card number written as a JSON number) is replaced by a
    quoted placeholder so the document still parses.
    """

    __slots__ = ("_escape", "in_string")

    def __init__(self) -> None:
        self.in_string = False
        self._escape = False

    def advance(self, text: str) -> None:
        """Move past ``text``, the next piece of the document."""
        i, n = 0, len(text)
        while i < n:
            if not self.in_string:
                i = text.find('"', i)
                if i < 0:
                    return
                self.in_string = True
            elif self._escape:
                self._escape = False
            else:
                i = _STRING_BODY.match(text, i).end()
                if i == n:
                    return
                # Either the closing quote or a backslash whose escaped char is still to come.
                self.in_string = text[i] != '"'
                self._escape = self.in_string
            i += 1


class RedactStage:
    """One channel's redaction state; see the module docstring for how it cuts."""

    __slots__ = (
        "_buf",
        "_ctx",
        "_found",
        "_json",
        "_live",
        "_live_at",
        "_mode",
        "_numbering",
        "_out",
        "_pem_escape",
        "_pem_tail",
        "_plan",
        "_pos",
        "_run_rx",
        "_span_rule",
        "_span_start",
    )

    def __init__(self, plan: _Plan, numbering: Numbering) -> None:
        self._plan = plan
        self._numbering = numbering
        self._json = _JsonCursor() if plan.json else None
        self._mode = _Mode.SCAN
        self._buf = ""
        self._ctx = ""
        self._pos = 0
        """Stream offset of the first input character not yet released or dropped."""
        self._live: dict[int, _Event] = {}
        """Each detector's live candidate (one more input may still complete, or one
        found beyond the held point), as found in the last scan; other detectors have no
        candidate in the input seen so far."""
        self._live_at = 0
        """Where ``_buf`` started in the last scan's text: ``_live``'s offsets are there."""
        self._run_rx: Any = None
        self._span_rule = ""
        self._span_start = 0
        self._pem_tail = ""
        self._pem_escape = False
        self._out: list[str] = []
        self._found: list[Finding] = []

    @property
    def held(self) -> int:
        """Characters received and not yet released or dropped."""
        return len(self._buf)

    def feed(self, text: str) -> Release:
        """Release everything up to the first candidate still in progress."""
        return self._process(text, final=False)

    def finish(self, end: ChannelEnd) -> Release:
        """Decide everything: unfinished candidates are plain text, but an unfinished
        private key block is dropped."""
        return self._process("", final=True)

    def _process(self, text: str, final: bool) -> Release:
        out: list[str] = []
        found: list[Finding] = []
        self._out = out
        self._found = found
        rest: str | None = text
        while rest is not None:
            if self._mode is _Mode.SCAN:
                rest = self._scan(rest, final)
            elif self._mode is _Mode.RUN:
                rest = self._drop_run(rest, final)
            else:
                rest = self._drop_pem(rest, final)
        if found:
            return Release("".join(out), findings=tuple(found))
        return Release("".join(out)) if out else NOTHING

    # --- scanning ---------------------------------------------------------------------

    def _scan(self, text: str, final: bool) -> str | None:
        """Release, replace and hold; return the input left over when a match switches
        to a dropping mode, else ``None``."""
        ctx = self._ctx
        s = ctx + self._buf + text
        base = len(ctx)
        n = len(s)
        # Without a backslash, JSON's escape-aware boundaries read like the text's.
        plain = not self._plan.json or "\\" not in s
        cache = self._firsts(s, base, n, text, final, plain)
        event = min(cache.values(), default=None)
        p = base
        while event is not None and event[1] == _MATCH:
            start, _, _, index, end = event
            self._plain(s, p, start)
            rule = self._plan.rules[index]
            self._replace(self._plan.render(rule, s[start:end], self._numbering))
            if rule.tail is not Tail.NONE:
                self._live = {}
                return self._enter_tail(rule, s, base, start, end)
            self._found.append(
                Finding(rule.name, "redacted", self._at(base, start), self._at(base, end))
            )
            p = end
            event = self._next(s, p, n, final, plain, cache)
        if event is None:
            self._plain(s, p, n)
            p = n
        else:
            start = event[0]
            self._plain(s, p, start)
            if event[1] == _OVERFLOW:
                self._live = {}
                return self._overflow(s, base, start)
            p = start
        self._buf = s[p:]
        self._live = cache
        self._live_at = p
        self._advance(s, base, p)
        return None

    def _firsts(
        self, s: str, base: int, n: int, text: str, final: bool, plain: bool
    ) -> dict[int, _Event]:
        """Each detector's first candidate in ``s``, by detector; none: not listed.

        Only detectors with a live candidate or a possible first character in the new
        ``text`` can have one; each searches from its live one or the new text.
        """
        live = self._live
        rules = self._plan.rules
        shift = base - self._live_at
        fresh = n - len(text)
        cache: dict[int, _Event] = {}
        for i in self._plan.triggered(s, fresh, live, plain):
            event = live.get(i)
            p = fresh if event is None else event[0] + shift
            event = self._first(i, rules[i], s, p, n, final, plain)
            if event is not None:
                cache[i] = event
        return cache

    def _next(
        self, s: str, p: int, n: int, final: bool, plain: bool, cache: dict[int, _Event]
    ) -> _Event | None:
        """The candidate to act on at or after ``p``. ``cache`` keeps each detector's
        first candidate, still valid while it lies at or after ``p``; one before ``p``
        is searched again from ``p`` (it lay at or after where its search began)."""
        rules = self._plan.rules
        for i, event in list(cache.items()):
            if event[0] < p:
                found = self._first(i, rules[i], s, p, n, final, plain)
                if found is None:
                    del cache[i]
                else:
                    cache[i] = found
        return min(cache.values(), default=None)

    def _first(
        self, i: int, rule: _Rule, s: str, p: int, n: int, final: bool, plain: bool
    ) -> _Event | None:
        """``rule``'s first candidate at or after ``p``: its opening first, a stdlib
        search that usually settles it, else the detector's own pattern."""
        opening = rule.plain_opening if plain else rule.opening
        if opening is not None and n - p <= self._plan.bound:
            # One window reaches the end, so the opening's \Z is where a partial match ends.
            m = opening.search(s, p, n)
            if m is None:
                return None
            if rule.needs and s.find(rule.needs, p, n) < 0:
                # No complete match without ``needs``: the opening found the only kind of
                # candidate there is, one still growing at the end (none once final).
                start = m.start()
                return None if final or start == n else (start, _OPEN, 0, i, start)
        return self._search(i, rule, s, p, n, final)

    def _search(self, i: int, rule: _Rule, s: str, p: int, n: int, final: bool) -> _Event | None:
        """``rule``'s first candidate at or after ``p``, by its pattern.

        The search runs in windows of ``bound`` characters: a position the search skips
        has no way through its window, hence none through its own (longer) window either.
        """
        bound = self._plan.bound
        pos = p
        while pos < n:
            window_end = min(n, pos + bound)
            m = rule.rx.search(s, pos, window_end, partial=window_end < n or not final)
            if m is None:
                if window_end == n:
                    return None
                pos = window_end
                continue
            start = m.start()
            if start == n:
                return None  # the empty partial match at the end: a candidate yet to come
            event = self._judge(i, rule, s, start, n, final, m if window_end == n else None)
            if event is not None:
                return event
            pos = start + 1
        return None

    def _judge(
        self, i: int, rule: _Rule, s: str, start: int, n: int, final: bool, m: Any
    ) -> _Event | None:
        """What the candidate at ``start`` is, judged on ``s[start:start + bound]`` only."""
        window_end = min(n, start + self._plan.bound)
        truncated = window_end < n
        partial = truncated or not final
        if m is None:
            m = rule.rx.match(s, start, window_end, partial=partial)
            if m is None:
                return None
        end = m.end()
        # regex prefers a complete match to a partial one, so "a@b.co" + "m" or
        # "a@b.com." + "au" must be caught by asking whether any way through the pattern
        # reaches the end of the window.
        if partial and (
            m.partial
            or (
                not rule.decisive
                and (
                    end + rule.lookahead > window_end
                    or rule.rx.fullmatch(s, start, window_end, partial=True) is not None
                )
            )
        ):
            return (start, _OVERFLOW if truncated else _OPEN, 0, i, start)
        if end == start or not self._plan.accepts(rule, s[start:end]):
            return None
        return (start, _MATCH, start - end, i, end)

    def _overflow(self, s: str, base: int, start: int) -> str:
        """Mask a candidate that outgrew the bound, then drop the rest of its token."""
        end = start + self._plan.bound
        if self._plan.json:
            # Never swallow the string's closing quote or half an escape.
            cut = _QUOTE_OR_BACKSLASH.search(s, start, end)
            if cut is not None:
                end = cut.start()
        self._replace(self._plan.mask)
        self._span_rule = "overflow"
        self._span_start = self._at(base, start)
        self._mode = _Mode.RUN
        self._run_rx = self._plan.overflow_rx
        self._buf = ""
        self._advance(s, base, end)
        return s[end:]

    def _enter_tail(self, rule: _Rule, s: str, base: int, start: int, end: int) -> str:
        self._span_rule = rule.name
        self._span_start = self._at(base, start)
        self._mode = _Mode.RUN if rule.tail is Tail.RUN else _Mode.PEM
        self._run_rx = rule.tail_rx
        self._buf = ""
        self._advance(s, base, end)
        return s[end:]

    # --- dropping ---------------------------------------------------------------------

    def _drop_run(self, text: str, final: bool) -> str | None:
        k = self._run_rx.match(text).end()
        self._drop(text[:k])
        if k == len(text) and not final:
            return None
        self._close()
        return text[k:] or None

    def _drop_pem(self, text: str, final: bool) -> str | None:
        tail = self._pem_tail
        s = tail + text
        stop, escape = self._string_end(text)
        m = _PEM_END_RX.search(s)
        if m is not None and (stop < 0 or m.start() - len(tail) < stop):
            k = m.end() - len(tail)
        elif stop >= 0:
            k = stop
        elif final:
            k = len(text)
        else:
            self._drop(text)
            self._pem_tail = s[-PEM_END_MAX:]
            self._pem_escape = escape
            return None
        self._drop(text[:k])
        self._close()
        self._pem_tail = ""
        self._pem_escape = False
        return text[k:] or None

    def _string_end(self, text: str) -> tuple[int, bool]:
        """In JSON, where the string being dropped ends in ``text`` (-1: not in it) and
        whether ``text`` ends halfway through an escape. Text channels have no end."""
        if not self._plan.json:
            return -1, False
        i = 1 if self._pem_escape else 0
        if i > len(text):
            return -1, True
        j = _STRING_BODY.match(text, i).end()
        if j == len(text):
            return -1, False
        return (j, False) if text[j] == '"' else (-1, True)

    def _close(self) -> None:
        self._found.append(Finding(self._span_rule, "redacted", self._span_start, self._pos))
        self._mode = _Mode.SCAN

    # --- output and bookkeeping -------------------------------------------------------

    def _plain(self, s: str, start: int, end: int) -> None:
        if start < end:
            piece = s[start:end]
            self._out.append(piece)
            if self._json is not None:
                self._json.advance(piece)

    def _replace(self, placeholder: str) -> None:
        if self._json is not None and not self._json.in_string:
            placeholder = f'"{placeholder}"'
        self._out.append(placeholder)

    def _at(self, base: int, index: int) -> int:
        """Stream offset of ``s[index]`` when ``s[base]`` is the first undecided char."""
        return self._pos + index - base

    def _advance(self, s: str, base: int, upto: int) -> None:
        """Everything before ``s[upto]`` is decided."""
        self._pos += upto - base
        self._ctx = s[max(0, upto - _CONTEXT) : upto]

    def _drop(self, piece: str) -> None:
        self._pos += len(piece)
        self._ctx = (self._ctx + piece)[-_CONTEXT:]
