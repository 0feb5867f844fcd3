"""The final verdict: a maintained validator over the complete document, at ``finish``.

The incremental checker (:mod:`filters.json.checker`) stops a stream early for the
keywords it decides in full; a schema that uses any other keyword (``pattern``,
``format``, ``patternProperties``, ``prefixItems``, ``not``, ...) is *inexact* and the
document also goes through ``jsonschema-rs`` once it is complete and syntactically valid.
``jsonschema-rs`` rather than ``jsonschema``: measured side by side on the same schema and
document it validated in about 3 us against 60 us (build 19 us against 7 us), and it
checks every format of the drafts natively, where ``jsonschema`` needs an extra package
per format and passes the rest silently.

No schema may reach the network: the validator runs ``offline``, so a remote ``$ref`` or
an unregistered ``$schema`` makes the schema unusable (the stage then checks syntax only
and says so) instead of fetching anything. An unknown ``format`` name
makes the schema unusable too, rather than passing silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import jsonschema_rs

from filters.json.events import SCHEMA_RULE, SchemaError, Violation

MAX_REASON_PATH: Final = 120
"""Longest schema path quoted in a reason; deeper paths are cut at the front."""


class FinalCheck:
    """A compiled validator for one schema, shared read-only by the channels using it."""

    __slots__ = ("_validator",)

    def __init__(self, schema: Mapping[str, Any] | bool) -> None:
        try:
            self._validator = jsonschema_rs.validator_for(
                schema if isinstance(schema, bool) else dict(schema),
                validate_formats=True,
                ignore_unknown_formats=False,
                offline=True,
            )
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SchemaError(f"schema not usable by the validator: {first[:200]}") from None

    def judge(self, document: str, offset: int) -> Violation | None:
        """The first error of the complete, syntactically valid ``document``, or ``None``.

        ``offset`` is where the violation is reported (the document's end). The reason
        names the failing keyword and its place in the schema, never the document's content.
        """
        try:
            error = next(iter(self._validator.iter_errors(json.loads(document))), None)
        except ValueError as exc:
            raise SchemaError(f"document not representable by the validator: {exc}") from None
        if error is None:
            return None
        path = "/".join(str(part) for part in error.schema_path)
        if len(path) > MAX_REASON_PATH:
            path = "..." + path[-MAX_REASON_PATH:]
        keyword = str(error.schema_path[-1]) if error.schema_path else "schema"
        return Violation(SCHEMA_RULE, f"value fails {keyword!r} (#/{path})", offset)
