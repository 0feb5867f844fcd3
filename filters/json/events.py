"""The vocabulary shared by the syntax automaton and the schema checker.

A value's kind is the character that starts it; the automaton reports the document's
structure as events, and both sides describe a failure as a :class:`Violation`.
"""

from __future__ import annotations

from typing import Final, NamedTuple

OBJECT: Final = "{"
ARRAY: Final = "["
STRING: Final = '"'
NUMBER: Final = "0"
TRUE: Final = "t"
FALSE: Final = "f"
NULL: Final = "n"
"""A value's kind is the character that starts it (any number is ``NUMBER``)."""

ALL_KINDS: Final = frozenset({OBJECT, ARRAY, STRING, NUMBER, TRUE, FALSE, NULL})
KIND_NAMES: Final = {
    OBJECT: "object",
    ARRAY: "array",
    STRING: "string",
    NUMBER: "number",
    TRUE: "boolean",
    FALSE: "boolean",
    NULL: "null",
}
TYPE_KINDS: Final = {
    "object": frozenset({OBJECT}),
    "array": frozenset({ARRAY}),
    "string": frozenset({STRING}),
    "number": frozenset({NUMBER}),
    "integer": frozenset({NUMBER}),
    "boolean": frozenset({TRUE, FALSE}),
    "null": frozenset({NULL}),
}

VALUE: Final = 0
"""A value starts; ``arg`` is its kind."""
KEY: Final = 1
"""A property name starts (its opening quote)."""
CHARS: Final = 2
"""Decoded characters of the current key or string; ``pos`` is where the first one ends."""
END_STRING: Final = 3
"""The closing quote of the current key or string."""
END_NUMBER: Final = 4
"""A number ended at ``pos`` (the character after it, or the end); ``arg`` is its text."""
END_CONTAINER: Final = 5
"""The ``}`` or ``]`` closing the innermost container."""

SCHEMA_RULE: Final = "json_schema"
DECIDED: Final = frozenset(
    {
        "type",
        "nullable",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "allOf",
        "anyOf",
        "oneOf",
        "$ref",
        "$defs",
        "definitions",
    }
)
"""Keywords the incremental checker decides in full (``$defs``/``definitions`` only hold
``$ref`` targets, which are checked where they are referenced)."""
ANNOTATIONS: Final = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentMediaType",
        "contentEncoding",
    }
)
"""Keywords that never make a document invalid (2020-12 annotations)."""


class Violation(NamedTuple):
    """Why the document can no longer be valid, and the offset where that became certain."""

    rule: str
    message: str
    offset: int


class SchemaError(ValueError):
    """The schema itself is malformed or uses a form this checker cannot apply."""
