"""The strict RFC 8259 pushdown automaton that reads a streamed document once.

Each character is read once, so a channel costs O(its length) however it is split; the
automaton stops at the first character after which no valid document is possible, and
with a :class:`~filters.json.checker.SchemaChecker` reports the document's structure as
events so the schema is judged on the fly. The decisions the RFC leaves open are listed
in :mod:`filters.json`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from filters.json.checker import SchemaChecker
from filters.json.events import (
    CHARS,
    END_CONTAINER,
    END_NUMBER,
    END_STRING,
    KEY,
    NUMBER,
    OBJECT,
    VALUE,
    Violation,
)
from filters.json.grammar import (
    COMPLETE_NUMBER_STATES,
    DIGITS,
    ESCAPES,
    HEX_DIGITS,
    INCOMPLETE,
    LIMIT_RULE,
    LITERALS,
    NUMBER_STATES,
    S_AFTER,
    S_ARRAY_FIRST,
    S_COLON,
    S_DOT,
    S_END,
    S_ESCAPE,
    S_EXP_MARK,
    S_EXP_SIGN,
    S_EXPONENT,
    S_FRACTION,
    S_HEX,
    S_INT,
    S_LITERAL,
    S_LOW_BACKSLASH,
    S_LOW_U,
    S_MINUS,
    S_OBJECT_FIRST,
    S_OBJECT_NEXT,
    S_START,
    S_STRING,
    S_VALUE,
    S_ZERO,
    SYNTAX_RULE,
    VALUE_STARTS,
    digit_run,
    not_a_key,
    not_a_value,
    skip_ws,
    string_run,
)


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
        "ended_at",
        "violation",
    )

    def __init__(self, checker: SchemaChecker | None, *, max_depth: int, max_chars: int) -> None:
        self._checker = checker
        self._depth_limit = max_depth
        self._size_limit = max_chars
        self._state = S_START
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
        self.ended_at = -1
        """Offset just after the top-level value's last character, once it ended: all
        that may follow it is whitespace. -1 before."""
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
        if self._state in NUMBER_STATES:
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
        if self._state in COMPLETE_NUMBER_STATES and self._end_number("", 0) < 0:
            return self.violation
        if self._state == S_END:
            return None
        message = "empty document" if self._state == S_START else "document incomplete"
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
            self._state = S_AFTER
            return
        self._state = S_END
        self.ended_at = self._pos + last + 1
        if self.complete_from < 0:  # a top-level number counts from its first character
            self.complete_from = self._pos + last

    # Handlers, one per state: each consumes from text[i] on and returns where it stopped
    # (or -1 after a violation). Runs of plain string characters, digits and whitespace
    # are consumed by one regex match each, which keeps the per-character cost low.

    def _on_start(self, text: str, i: int) -> int:
        i = skip_ws(text, i).end()
        return i if i == len(text) else self._begin_value(text, i)

    def _on_value(self, text: str, i: int) -> int:
        i = skip_ws(text, i).end()
        if i == len(text):
            return i
        if text[i] == "]" and not self._stack[-1]:
            return self._violate(SYNTAX_RULE, "trailing comma", self._pos + i)
        return self._begin_value(text, i)

    def _on_array_first(self, text: str, i: int) -> int:
        i = skip_ws(text, i).end()
        if i == len(text):
            return i
        return self._close(i) if text[i] == "]" else self._begin_value(text, i)

    def _begin_value(self, text: str, i: int) -> int:
        c = text[i]
        kind = c
        if c == '"':
            self._state = S_STRING
            self._in_key = False
        elif c in DIGITS or c == "-":
            self._state = S_ZERO if c == "0" else S_MINUS if c == "-" else S_INT
            self._number_from = i
            kind = NUMBER
            if not self._stack:
                self.complete_from = self._pos + i
        elif c in LITERALS:
            self._state = S_LITERAL
            self._literal = LITERALS[c]
        elif c == "{" or c == "[":
            if len(self._stack) >= self._depth_limit:
                message = f"nesting deeper than {self._depth_limit} levels"
                return self._violate(LIMIT_RULE, message, self._pos + i)
            self._stack.append(c == OBJECT)
            self._state = S_OBJECT_FIRST if c == OBJECT else S_ARRAY_FIRST
        else:
            return self._violate(SYNTAX_RULE, not_a_value(c), self._pos + i)
        return i + 1 if self._emit(VALUE, i, kind) else -1

    def _on_object_first(self, text: str, i: int) -> int:
        i = skip_ws(text, i).end()
        if i == len(text):
            return i
        c = text[i]
        if c == '"':
            return self._open_key(i)
        if c == "}":
            return self._close(i)
        return self._violate(SYNTAX_RULE, not_a_key(c), self._pos + i)

    def _on_object_next(self, text: str, i: int) -> int:
        i = skip_ws(text, i).end()
        if i == len(text):
            return i
        c = text[i]
        if c == '"':
            return self._open_key(i)
        message = "trailing comma" if c == "}" else not_a_key(c)
        return self._violate(SYNTAX_RULE, message, self._pos + i)

    def _open_key(self, i: int) -> int:
        self._state = S_STRING
        self._in_key = True
        return i + 1 if self._emit(KEY, i) else -1

    def _on_colon(self, text: str, i: int) -> int:
        i = skip_ws(text, i).end()
        if i == len(text):
            return i
        if text[i] != ":":
            return self._violate(SYNTAX_RULE, "expected ':' after property name", self._pos + i)
        self._state = S_VALUE
        return i + 1

    def _on_after(self, text: str, i: int) -> int:
        i = skip_ws(text, i).end()
        if i == len(text):
            return i
        c = text[i]
        in_object = self._stack[-1]
        if c == ",":
            self._state = S_OBJECT_NEXT if in_object else S_VALUE
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
        i = skip_ws(text, i).end()
        if i == len(text):
            return i
        second = text[i] in VALUE_STARTS
        message = "second top-level value" if second else "trailing data after the document"
        return self._violate(SYNTAX_RULE, message, self._pos + i)

    def _on_string(self, text: str, i: int) -> int:
        j = string_run(text, i).end()
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
                self._state = S_COLON
            else:
                self._value_done(j)
            return j + 1
        if c == "\\":
            self._state = S_ESCAPE
            return j + 1
        message = "unescaped control character in string"
        return self._violate(SYNTAX_RULE, message, self._pos + j)

    def _on_escape(self, text: str, i: int) -> int:
        c = text[i]
        decoded = ESCAPES.get(c)
        if decoded is not None:
            self._state = S_STRING
            return i + 1 if self._emit(CHARS, i, decoded) else -1
        if c != "u":
            return self._violate(SYNTAX_RULE, "invalid escape in string", self._pos + i)
        self._state = S_HEX
        self._hex_count = self._hex_value = 0
        return i + 1

    def _on_hex(self, text: str, i: int) -> int:
        digit = HEX_DIGITS.get(text[i])
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
            self._state = S_LOW_BACKSLASH
            return i + 1
        self._state = S_STRING
        return i + 1 if self._emit(CHARS, i, chr(value)) else -1

    def _on_low_backslash(self, text: str, i: int) -> int:
        if text[i] != "\\":
            return self._violate(SYNTAX_RULE, "unpaired surrogate in \\u escape", self._pos + i)
        self._state = S_LOW_U
        return i + 1

    def _on_low_u(self, text: str, i: int) -> int:
        if text[i] != "u":
            return self._violate(SYNTAX_RULE, "unpaired surrogate in \\u escape", self._pos + i)
        self._state = S_HEX
        self._hex_low = True
        self._hex_count = self._hex_value = 0
        return i + 1

    def _on_minus(self, text: str, i: int) -> int:
        c = text[i]
        if c not in DIGITS:
            return self._violate(SYNTAX_RULE, "'-' without digits", self._pos + i)
        self._state = S_ZERO if c == "0" else S_INT
        return i + 1

    def _on_zero(self, text: str, i: int) -> int:
        c = text[i]
        if c in DIGITS:
            return self._violate(SYNTAX_RULE, "leading zero in number", self._pos + i)
        return self._after_digits(text, i)

    def _on_int(self, text: str, i: int) -> int:
        j = digit_run(text, i).end()
        return j if j == len(text) else self._after_digits(text, j)

    def _after_digits(self, text: str, i: int) -> int:
        """After the integer part: a fraction, an exponent, or the number's end."""
        c = text[i]
        if c == ".":
            self._state = S_DOT
            return i + 1
        if c == "e" or c == "E":
            self._state = S_EXP_MARK
            return i + 1
        return self._end_number(text, i)

    def _on_dot(self, text: str, i: int) -> int:
        if text[i] not in DIGITS:
            return self._violate(SYNTAX_RULE, "digit expected after '.'", self._pos + i)
        self._state = S_FRACTION
        return i + 1

    def _on_fraction(self, text: str, i: int) -> int:
        j = digit_run(text, i).end()
        if j == len(text):
            return j
        if text[j] == "e" or text[j] == "E":
            self._state = S_EXP_MARK
            return j + 1
        return self._end_number(text, j)

    def _on_exp_mark(self, text: str, i: int) -> int:
        c = text[i]
        if c == "+" or c == "-":
            self._state = S_EXP_SIGN
            return i + 1
        return self._on_exp_sign(text, i)

    def _on_exp_sign(self, text: str, i: int) -> int:
        if text[i] not in DIGITS:
            return self._violate(SYNTAX_RULE, "digit expected in exponent", self._pos + i)
        self._state = S_EXPONENT
        return i + 1

    def _on_exponent(self, text: str, i: int) -> int:
        j = digit_run(text, i).end()
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
