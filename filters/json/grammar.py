"""RFC 8259 facts the automaton needs: its states, character classes and messages.

Kept apart from :mod:`filters.json.automaton` so the state machine reads as handlers only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, cast

SYNTAX_RULE: Final = "json_syntax"
LIMIT_RULE: Final = "json_limit"
TRUNCATED_RULE: Final = "json_truncated"
UNUSABLE_RULE: Final = "json_schema_unusable"
INCOMPLETE: Final = "json_incomplete"
"""Internal: the input ended before the document did (syntax error or truncation)."""
(
    S_START,
    S_VALUE,
    S_ARRAY_FIRST,
    S_OBJECT_FIRST,
    S_OBJECT_NEXT,
    S_COLON,
    S_AFTER,
    S_END,
    S_STRING,
    S_ESCAPE,
    S_HEX,
    S_LOW_BACKSLASH,
    S_LOW_U,
    S_MINUS,
    S_ZERO,
    S_INT,
    S_DOT,
    S_FRACTION,
    S_EXP_MARK,
    S_EXP_SIGN,
    S_EXPONENT,
    S_LITERAL,
) = range(22)
NUMBER_STATES: Final = frozenset(range(S_MINUS, S_EXPONENT + 1))
COMPLETE_NUMBER_STATES: Final = frozenset({S_ZERO, S_INT, S_FRACTION, S_EXPONENT})

_Scan = Callable[[str, int], "re.Match[str]"]
# Each pattern ends in "*", so match() always succeeds (possibly empty): never None.
skip_ws: Final = cast(_Scan, re.compile(r"[ \t\n\r]*").match)
string_run: Final = cast(_Scan, re.compile(r'[^"\\\x00-\x1f]*').match)
digit_run: Final = cast(_Scan, re.compile(r"[0-9]*").match)
ESCAPES: Final = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
HEX_DIGITS: Final = {c: int(c, 16) for c in "0123456789abcdefABCDEF"}
LITERALS: Final = {"t": "rue", "f": "alse", "n": "ull"}
VALUE_STARTS: Final = frozenset('{["-0123456789tfn')
DIGITS: Final = frozenset("0123456789")


def not_a_value(c: str) -> str:
    if c == "'":
        return "single-quoted string"
    if c == "\ufeff":
        return "byte order mark"
    return "expected a value"


def not_a_key(c: str) -> str:
    return "single-quoted property name" if c == "'" else "expected a quoted property name"
