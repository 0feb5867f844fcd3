"""``type: json``: keep a streamed JSON document valid while it streams.

A hand-written pushdown automaton (:class:`JsonScanner`) reads each character once, so a
channel costs O(its length) however it is split, and stops at the first character after
which no valid document is possible: every prefix the stage releases is a prefix of some
valid JSON document (and, with a schema, of one the schema does not already rule out).
``pydantic_core.from_json(allow_partial=True)`` cannot be the judge: it accepts input that
strict RFC 8259 rejects.

Decisions the RFC leaves to us, and why:

- A leading byte order mark is rejected: RFC 8259 §8.1 says producers must not add one,
  and a model that emits one in JSON mode is malformed.
- Whitespace (space, tab, CR, LF only) is allowed before and after the document.
- Any value may be the top-level document (RFC 8259 dropped the object/array rule); a
  schema narrows that.
- ``\\ud800`` not followed by a low-surrogate escape, and a low-surrogate escape not
  preceded by a high one, are rejected: Python's ``json`` accepts them, but they decode
  to no Unicode character and break strict parsers and UTF-8 encoders downstream.
- Duplicate property names are allowed (RFC: names SHOULD be unique); each occurrence
  is schema-checked.
- An empty or whitespace-only channel is not a document: invalid at a normal end.

Lookahead: the stage never releases the character that breaks the document; the closing
``}``/``]`` itself is judged (required properties, ``minItems``) in the call that receives
it. What makes a document *look* complete is its end: the character that closes the
top-level value (for a top-level number, the number from its first digit, since each of
its prefixes is a number). With ``lookahead_chars`` N >= 1 the stage holds that end and any
whitespace after it until the channel finishes, so a document that fails after it (trailing
garbage, a second value, a top-level number above its maximum) is stopped before the client
holds a complete-looking document; before the end it holds only the newest N characters.
Every held character delays every token, so N defaults to 1. N = 0 releases at once: a
later error only stops what follows (validate and flag the rest).

Verdicts: ``block`` releases the validated text before the breaking character (never that
character, and with a lookahead never the document's end either) and ends the response with
``json: <what> at char <offset>``; ``whole: true`` releases nothing of an invalid document;
``flag`` releases everything and records the first error only. A channel cut by the
model's token limit is not "invalid JSON": it gets a ``json_truncated`` finding and its held
text is released.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, Literal, Self, cast

import structlog
from pydantic import Field, field_validator, model_validator

from filters.json_schema import (
    CHARS,
    END_CONTAINER,
    END_NUMBER,
    END_STRING,
    KEY,
    NUMBER,
    OBJECT,
    VALUE,
    SchemaChecker,
    SchemaError,
    Violation,
    compile_schema,
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

log = structlog.get_logger("streamsieve.json")

SYNTAX_RULE: Final = "json_syntax"
LIMIT_RULE: Final = "json_limit"
TRUNCATED_RULE: Final = "json_truncated"
UNUSABLE_RULE: Final = "json_schema_unusable"
INCOMPLETE: Final = "json_incomplete"
"""Internal: the input ended before the document did (syntax error or truncation)."""
HELD_END_CHARS: Final = 64
"""Characters of a document's held end (its close or a top-level number, and whitespace
after it) that ``max_holdback`` covers. Models pad with a newline or two; a longer run is
unusual enough to meet the overflow policy rather than widen every route's bound."""

(
    _START,
    _VALUE,
    _ARRAY_FIRST,
    _OBJECT_FIRST,
    _OBJECT_NEXT,
    _COLON,
    _AFTER,
    _END,
    _STRING,
    _ESCAPE,
    _HEX,
    _LOW_BACKSLASH,
    _LOW_U,
    _MINUS,
    _ZERO,
    _INT,
    _DOT,
    _FRACTION,
    _EXP_MARK,
    _EXP_SIGN,
    _EXPONENT,
    _LITERAL,
) = range(22)
_NUMBER_STATES: Final = frozenset(range(_MINUS, _EXPONENT + 1))
_COMPLETE_NUMBER_STATES: Final = frozenset({_ZERO, _INT, _FRACTION, _EXPONENT})

_Scan = Callable[[str, int], "re.Match[str]"]
# Each pattern ends in "*", so match() always succeeds (possibly empty): never None.
_skip_ws: Final = cast(_Scan, re.compile(r"[ \t\n\r]*").match)
_string_run: Final = cast(_Scan, re.compile(r'[^"\\\x00-\x1f]*').match)
_digit_run: Final = cast(_Scan, re.compile(r"[0-9]*").match)
_ESCAPES: Final = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_HEX_DIGITS: Final = {c: int(c, 16) for c in "0123456789abcdefABCDEF"}
_LITERALS: Final = {"t": "rue", "f": "alse", "n": "ull"}
_VALUE_STARTS: Final = frozenset('{["-0123456789tfn')
_DIGITS: Final = frozenset("0123456789")


class JsonScanner:
    """Strict RFC 8259 recogniser for one document fed in pieces.

    :meth:`feed` returns the first violation (with its absolute character offset) or
    ``None``; the scanner is spent after a violation. With a :class:`SchemaChecker` it also
    reports the document's structure as events so the schema is judged on the fly.
    """

    __slots__ = (
        "_checker",
        "_depth_limit",
        "_hex_count",
        "_hex_low",
        "_hex_value",
        "_high",
        "_in_key",
        "_literal",
        "_number",
        "_number_from",
        "_pos",
        "_size_limit",
        "_stack",
        "_state",
        "complete_from",
        "violation",
    )

    def __init__(self, checker: SchemaChecker | None, *, max_depth: int, max_chars: int) -> None:
        self._checker = checker
        self._depth_limit = max_depth
        self._size_limit = max_chars
        self._state = _START
        self._stack: list[bool] = []
        """Open containers, innermost last: ``True`` for an object."""
        self._pos = 0
        """Offset of the current piece's first character (after ``feed``: chars seen)."""
        self._in_key = False
        self._literal = ""
        self._hex_count = 0
        self._hex_value = 0
        self._hex_low = False
        self._high = 0
        self._number: list[str] = []
        """The current number's text from earlier pieces (kept only for a schema)."""
        self._number_from = 0
        self.complete_from = -1
        """Offset of the first character after which the text reads as a whole document:
        the top-level value's last character, or a top-level number's first (each of its
        prefixes is a number). -1 until the document gets there."""
        self.violation: Violation | None = None

    def feed(self, text: str) -> Violation | None:
        """Consume ``text``; the first violation it makes certain, if any."""
        if self.violation is not None:
            return self.violation
        room = self._size_limit - self._pos
        oversize = len(text) > room
        if oversize:
            text = text[:room]
        handlers = _HANDLERS
        i, n = 0, len(text)
        while i < n:
            i = handlers[self._state](self, text, i)
            if i < 0:
                return self.violation
        if self._state in _NUMBER_STATES:
            if self._checker is not None:
                self._number.append(text[self._number_from :])
            self._number_from = 0
        self._pos += n
        if oversize:
            limit = self._size_limit
            self._violate(LIMIT_RULE, f"document longer than {limit} characters", limit)
            return self.violation
        return None

    def finish(self) -> Violation | None:
        """The input ended: ``None`` when it was one complete valid document."""
        if self.violation is not None:
            return self.violation
        # Only the end of input can end a top-level number ("12" may yet become "123").
        if self._state in _COMPLETE_NUMBER_STATES and self._end_number("", 0) < 0:
            return self.violation
        if self._state == _END:
            return None
        message = "empty document" if self._state == _START else "document incomplete"
        return Violation(INCOMPLETE, message, self._pos)

    def _violate(self, rule: str, message: str, offset: int) -> int:
        """Record a violation; returns -1 so handlers can ``return self._violate(...)``."""
        return self._failed(Violation(rule, message, offset))

    def _failed(self, violation: Violation) -> int:
        self.violation = violation
        return -1

    def _emit(self, event: int, i: int, arg: str = "") -> bool:
        """Tell the schema checker, if any; ``False`` when that made the document invalid."""
        checker = self._checker
        if checker is None:
            return True
        found = checker.handle(event, self._pos + i, arg)
        if found is None:
            return True
        self._failed(found)
        return False

    def _value_done(self, last: int) -> None:
        """The value whose last character is at ``last`` in this piece is complete (-1: it
        was the previous piece's last character)."""
        if self._stack:
            self._state = _AFTER
            return
        self._state = _END
        if self.complete_from < 0:  # a top-level number counts from its first character
            self.complete_from = self._pos + last

    # Handlers, one per state: each consumes from text[i] on and returns where it stopped
    # (or -1 after a violation). Runs of plain string characters, digits and whitespace
    # are consumed by one regex match each, which keeps the per-character cost low.

    def _on_start(self, text: str, i: int) -> int:
        i = _skip_ws(text, i).end()
        return i if i == len(text) else self._begin_value(text, i)

    def _on_value(self, text: str, i: int) -> int:
        i = _skip_ws(text, i).end()
        if i == len(text):
            return i
        if text[i] == "]" and not self._stack[-1]:
            return self._violate(SYNTAX_RULE, "trailing comma", self._pos + i)
        return self._begin_value(text, i)

    def _on_array_first(self, text: str, i: int) -> int:
        i = _skip_ws(text, i).end()
        if i == len(text):
            return i
        return self._close(i) if text[i] == "]" else self._begin_value(text, i)

    def _begin_value(self, text: str, i: int) -> int:
        c = text[i]
        kind = c
        if c == '"':
            self._state = _STRING
            self._in_key = False
        elif c in _DIGITS or c == "-":
            self._state = _ZERO if c == "0" else _MINUS if c == "-" else _INT
            self._number_from = i
            kind = NUMBER
            if not self._stack:
                self.complete_from = self._pos + i
        elif c in _LITERALS:
            self._state = _LITERAL
            self._literal = _LITERALS[c]
        elif c == "{" or c == "[":
            if len(self._stack) >= self._depth_limit:
                message = f"nesting deeper than {self._depth_limit} levels"
                return self._violate(LIMIT_RULE, message, self._pos + i)
            self._stack.append(c == OBJECT)
            self._state = _OBJECT_FIRST if c == OBJECT else _ARRAY_FIRST
        else:
            return self._violate(SYNTAX_RULE, _not_a_value(c), self._pos + i)
        return i + 1 if self._emit(VALUE, i, kind) else -1

    def _on_object_first(self, text: str, i: int) -> int:
        i = _skip_ws(text, i).end()
        if i == len(text):
            return i
        c = text[i]
        if c == '"':
            return self._open_key(i)
        if c == "}":
            return self._close(i)
        return self._violate(SYNTAX_RULE, _not_a_key(c), self._pos + i)

    def _on_object_next(self, text: str, i: int) -> int:
        i = _skip_ws(text, i).end()
        if i == len(text):
            return i
        c = text[i]
        if c == '"':
            return self._open_key(i)
        message = "trailing comma" if c == "}" else _not_a_key(c)
        return self._violate(SYNTAX_RULE, message, self._pos + i)

    def _open_key(self, i: int) -> int:
        self._state = _STRING
        self._in_key = True
        return i + 1 if self._emit(KEY, i) else -1

    def _on_colon(self, text: str, i: int) -> int:
        i = _skip_ws(text, i).end()
        if i == len(text):
            return i
        if text[i] != ":":
            return self._violate(SYNTAX_RULE, "expected ':' after property name", self._pos + i)
        self._state = _VALUE
        return i + 1

    def _on_after(self, text: str, i: int) -> int:
        i = _skip_ws(text, i).end()
        if i == len(text):
            return i
        c = text[i]
        in_object = self._stack[-1]
        if c == ",":
            self._state = _OBJECT_NEXT if in_object else _VALUE
            return i + 1
        closer = "}" if in_object else "]"
        if c == closer:
            return self._close(i)
        return self._violate(SYNTAX_RULE, f"expected ',' or '{closer}'", self._pos + i)

    def _close(self, i: int) -> int:
        if not self._emit(END_CONTAINER, i):
            return -1
        self._stack.pop()
        self._value_done(i)
        return i + 1

    def _on_end(self, text: str, i: int) -> int:
        i = _skip_ws(text, i).end()
        if i == len(text):
            return i
        second = text[i] in _VALUE_STARTS
        message = "second top-level value" if second else "trailing data after the document"
        return self._violate(SYNTAX_RULE, message, self._pos + i)

    def _on_string(self, text: str, i: int) -> int:
        j = _string_run(text, i).end()
        checker = self._checker
        if checker is not None and j > i and not self._emit(CHARS, i, text[i:j]):
            return -1
        if j == len(text):
            return j
        c = text[j]
        if c == '"':
            if checker is not None and not self._emit(END_STRING, j):
                return -1
            if self._in_key:
                self._state = _COLON
            else:
                self._value_done(j)
            return j + 1
        if c == "\\":
            self._state = _ESCAPE
            return j + 1
        message = "unescaped control character in string"
        return self._violate(SYNTAX_RULE, message, self._pos + j)

    def _on_escape(self, text: str, i: int) -> int:
        c = text[i]
        decoded = _ESCAPES.get(c)
        if decoded is not None:
            self._state = _STRING
            return i + 1 if self._emit(CHARS, i, decoded) else -1
        if c != "u":
            return self._violate(SYNTAX_RULE, "invalid escape in string", self._pos + i)
        self._state = _HEX
        self._hex_count = self._hex_value = 0
        return i + 1

    def _on_hex(self, text: str, i: int) -> int:
        digit = _HEX_DIGITS.get(text[i])
        if digit is None:
            return self._violate(SYNTAX_RULE, "invalid \\u escape", self._pos + i)
        count = self._hex_count + 1
        value = self._hex_value * 16 + digit
        # The first two digits decide whether this is a surrogate half, so an unpaired one
        # is reported at the digit that proves it.
        low = self._hex_low
        if (count == 1 and low and digit != 0xD) or (count == 2 and (0xDC <= value <= 0xDF) != low):
            return self._violate(SYNTAX_RULE, "unpaired surrogate in \\u escape", self._pos + i)
        if count < 4:
            self._hex_count, self._hex_value = count, value
            return i + 1
        if low:
            self._hex_low = False
            value = 0x10000 + ((self._high - 0xD800) << 10) + (value - 0xDC00)
        elif 0xD800 <= value <= 0xDBFF:
            self._high = value
            self._state = _LOW_BACKSLASH
            return i + 1
        self._state = _STRING
        return i + 1 if self._emit(CHARS, i, chr(value)) else -1

    def _on_low_backslash(self, text: str, i: int) -> int:
        if text[i] != "\\":
            return self._violate(SYNTAX_RULE, "unpaired surrogate in \\u escape", self._pos + i)
        self._state = _LOW_U
        return i + 1

    def _on_low_u(self, text: str, i: int) -> int:
        if text[i] != "u":
            return self._violate(SYNTAX_RULE, "unpaired surrogate in \\u escape", self._pos + i)
        self._state = _HEX
        self._hex_low = True
        self._hex_count = self._hex_value = 0
        return i + 1

    def _on_minus(self, text: str, i: int) -> int:
        c = text[i]
        if c not in _DIGITS:
            return self._violate(SYNTAX_RULE, "'-' without digits", self._pos + i)
        self._state = _ZERO if c == "0" else _INT
        return i + 1

    def _on_zero(self, text: str, i: int) -> int:
        c = text[i]
        if c in _DIGITS:
            return self._violate(SYNTAX_RULE, "leading zero in number", self._pos + i)
        return self._after_digits(text, i)

    def _on_int(self, text: str, i: int) -> int:
        j = _digit_run(text, i).end()
        return j if j == len(text) else self._after_digits(text, j)

    def _after_digits(self, text: str, i: int) -> int:
        """After the integer part: a fraction, an exponent, or the number's end."""
        c = text[i]
        if c == ".":
            self._state = _DOT
            return i + 1
        if c == "e" or c == "E":
            self._state = _EXP_MARK
            return i + 1
        return self._end_number(text, i)

    def _on_dot(self, text: str, i: int) -> int:
        if text[i] not in _DIGITS:
            return self._violate(SYNTAX_RULE, "digit expected after '.'", self._pos + i)
        self._state = _FRACTION
        return i + 1

    def _on_fraction(self, text: str, i: int) -> int:
        j = _digit_run(text, i).end()
        if j == len(text):
            return j
        if text[j] == "e" or text[j] == "E":
            self._state = _EXP_MARK
            return j + 1
        return self._end_number(text, j)

    def _on_exp_mark(self, text: str, i: int) -> int:
        c = text[i]
        if c == "+" or c == "-":
            self._state = _EXP_SIGN
            return i + 1
        return self._on_exp_sign(text, i)

    def _on_exp_sign(self, text: str, i: int) -> int:
        if text[i] not in _DIGITS:
            return self._violate(SYNTAX_RULE, "digit expected in exponent", self._pos + i)
        self._state = _EXPONENT
        return i + 1

    def _on_exponent(self, text: str, i: int) -> int:
        j = _digit_run(text, i).end()
        return j if j == len(text) else self._end_number(text, j)

    def _end_number(self, text: str, i: int) -> int:
        """The number ended before text[i]; that character is read again in the new state."""
        if self._checker is not None:
            number = "".join(self._number) + text[self._number_from : i]
            self._number.clear()
            if not self._emit(END_NUMBER, i, number):
                return -1
        self._value_done(i - 1)
        return i

    def _on_literal(self, text: str, i: int) -> int:
        rest = self._literal
        piece = text[i : i + len(rest)]
        if not rest.startswith(piece):
            bad = next(k for k, (a, b) in enumerate(zip(piece, rest, strict=False)) if a != b)
            return self._violate(SYNTAX_RULE, "invalid literal", self._pos + i + bad)
        if len(piece) == len(rest):
            self._value_done(i + len(piece) - 1)
        else:
            self._literal = rest[len(piece) :]
        return i + len(piece)


_HANDLERS: Final[tuple[Callable[[JsonScanner, str, int], int], ...]] = (
    JsonScanner._on_start,
    JsonScanner._on_value,
    JsonScanner._on_array_first,
    JsonScanner._on_object_first,
    JsonScanner._on_object_next,
    JsonScanner._on_colon,
    JsonScanner._on_after,
    JsonScanner._on_end,
    JsonScanner._on_string,
    JsonScanner._on_escape,
    JsonScanner._on_hex,
    JsonScanner._on_low_backslash,
    JsonScanner._on_low_u,
    JsonScanner._on_minus,
    JsonScanner._on_zero,
    JsonScanner._on_int,
    JsonScanner._on_dot,
    JsonScanner._on_fraction,
    JsonScanner._on_exp_mark,
    JsonScanner._on_exp_sign,
    JsonScanner._on_exponent,
    JsonScanner._on_literal,
)
"""Indexed by state number, in the order of the state constants."""


def _not_a_value(c: str) -> str:
    if c == "'":
        return "single-quoted string"
    if c == "\ufeff":
        return "byte order mark"
    return "expected a value"


def _not_a_key(c: str) -> str:
    return "single-quoted property name" if c == "'" else "expected a quoted property name"


class JsonStage:
    """One channel's validator: releases validated text, minus a held tail.

    ``keep`` is how many validated characters stay held (``None``: all of them until the
    document is complete and valid). With ``keep >= 1`` the document's end (see
    :attr:`JsonScanner.complete_from`) and everything after it stay held too, until
    ``finish``. In flag mode nothing is held, since nothing is ever withheld from the client.
    """

    __slots__ = (
        "_decided",
        "_flag",
        "_held",
        "_held_len",
        "_keep",
        "_notice",
        "_released",
        "_scanner",
    )

    def __init__(
        self, scanner: JsonScanner, *, keep: int | None, flag: bool, notice: Finding | None = None
    ) -> None:
        self._scanner = scanner
        self._notice = notice
        """A finding to report with the first release (the request schema was unusable)."""
        self._keep = keep
        self._flag = flag
        self._held: list[str] = []
        self._held_len = 0
        self._released = 0
        self._decided = False
        """A verdict was given: flag mode passes the rest through, block mode ended."""

    @property
    def held(self) -> int:
        """Characters received and not yet released."""
        return self._held_len

    def feed(self, text: str) -> Release:
        """Validate ``text``; release what is validated, older than the lookahead and
        before the document's end."""
        if self._decided:
            return Release(text) if self._flag else NOTHING
        found = self._scanner.feed(text)
        if found is not None:
            return self._noticed(self._verdict(found, text, f"at char {found.offset}"))
        release = Release(self._hold(text))
        return release if self._notice is None else self._noticed(release)

    def finish(self, end: ChannelEnd) -> Release:
        """Judge the end of the document: complete, truncated by the model, or cut short."""
        if self._decided:
            return NOTHING
        return self._noticed(self._end(end))

    def _end(self, end: ChannelEnd) -> Release:
        found = self._scanner.finish()
        if found is None:
            return Release(self._take_all())
        if found.rule == INCOMPLETE and end is ChannelEnd.TRUNCATED:
            self._decided = True
            finding = Finding(TRUNCATED_RULE, "flagged", found.offset, found.offset)
            return Release(self._take_all(), findings=(finding,))
        if found.rule == INCOMPLETE:
            found = found._replace(rule=SYNTAX_RULE)
        return self._verdict(found, "", "at end")

    def _noticed(self, release: Release) -> Release:
        """``release`` with the pending notice in front of its findings, once."""
        notice, self._notice = self._notice, None
        if notice is None:
            return release
        return Release(release.text, release.block, (notice, *release.findings))

    def _hold(self, text: str) -> str:
        self._held.append(text)
        self._held_len += len(text)
        keep = self._keep
        if keep is None:
            return ""
        end = self._scanner.complete_from
        if keep and end >= 0:
            # Everything before the end is released: only trailing data can still fail.
            keep = self._released + self._held_len - end
        if self._held_len <= keep:
            return ""
        # At most ``keep`` characters were held before this piece: the join is O(keep + text).
        joined = "".join(self._held)
        cut = len(joined) - keep
        self._held = [joined[cut:]] if keep else []
        self._held_len = keep
        self._released += cut
        return joined[:cut]

    def _take_all(self) -> str:
        text = "".join(self._held)
        self._held = []
        self._held_len = 0
        self._released += len(text)
        return text

    def _verdict(self, found: Violation, text: str, where: str) -> Release:
        """Flag (release everything, stop checking) or block (release up to the error)."""
        self._decided = True
        self._held.append(text)
        start = self._released
        pending = self._take_all()
        end = min(found.offset + 1, start + len(pending))
        if self._flag:
            finding = Finding(found.rule, "flagged", found.offset, end)
            return Release(pending, findings=(finding,))
        # Whole-document mode promises the client only documents that validated in full.
        valid = "" if self._keep is None else pending[: self._valid_end(found) - start]
        finding = Finding(found.rule, "blocked", found.offset, end)
        return Release(valid, block=f"json: {found.message} {where}", findings=(finding,))

    def _valid_end(self, found: Violation) -> int:
        """Where released text stops on a block: before the error, and with a lookahead
        before the document's end as well (trailing garbage must not follow a release that
        reads as a whole document)."""
        end = self._scanner.complete_from
        if self._keep and 0 <= end < found.offset:
            return end
        return found.offset


class JsonConfig(StageConfig):
    """``type: json``: validate JSON channels as they stream (RFC 8259, optional schema)."""

    type: Literal["json"] = "json"
    apply: Literal["always", "never", "detected"] = "detected"
    """Which channels: ``detected`` = JSON channels only (tool-call arguments, content of a
    request with ``response_format`` json_object/json_schema); ``always`` = every channel,
    prose included; ``never`` = off (a route can keep the entry and disable it)."""
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    """A JSON Schema (see :mod:`filters.json_schema` for the subset) used when the request
    declared none. Written ``schema:`` in YAML."""
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
    ``max_holdback`` covers a held end of up to ``HELD_END_CHARS`` (64) characters; more
    trailing whitespace puts the stage over its bound and the route's ``on_overflow``
    applies (the end is never released early, nor any output dropped)."""
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
            compile_schema(schema)
        return schema


class JsonFactory(StageFactory[JsonConfig]):
    """Opens a :class:`JsonStage` per JSON channel, with the request's schema when given."""

    config_model = JsonConfig

    def __init__(self, config: JsonConfig) -> None:
        super().__init__(config)
        schema = config.json_schema
        self._schema = compile_schema(schema) if schema is not None else None

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
                schema = compile_schema(channel.json_schema)
            except SchemaError as exc:
                log.warning("json_schema_unusable", channel=channel.key, error=str(exc)[:200])
                schema = None
                notice = Finding(UNUSABLE_RULE, "flagged", 0, 0)
        checker = SchemaChecker(schema) if schema is not None else None
        scanner = JsonScanner(checker, max_depth=config.max_depth, max_chars=config.max_chars)
        flag = config.action == "flag"
        keep = 0 if flag else None if config.whole else config.lookahead_chars
        return JsonStage(scanner, keep=keep, flag=flag, notice=notice)
