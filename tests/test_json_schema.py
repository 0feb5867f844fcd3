"""The incremental schema checker: each violation reported where it became certain."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from filters.json.events import SchemaError
from filters.json.schema import compile_schema
from pipeline.testing import chunkings, run_factory
from tests.test_json_validate import OK, expected_reason, factory, json_channel, run_both

OBJECT_A_INT = {"type": "object", "properties": {"a": {"type": "integer"}}}
COLOURS = {"enum": ["red", "green"]}
STEP_DEFS = {
    "type": "object",
    "properties": {"steps": {"type": "array", "items": {"$ref": "#/$defs/step"}}},
    "required": ["steps"],
    "additionalProperties": False,
    "$defs": {
        "step": {
            "type": "object",
            "properties": {"explanation": {"type": "string"}, "output": {"type": "string"}},
            "required": ["explanation", "output"],
            "additionalProperties": False,
        }
    },
}
TREE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "v": {"type": "integer"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
            "required": ["v"],
        }
    },
    "$ref": "#/$defs/node",
}
NESTED_INTS = {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"$ref": "#"}]}}
NULLABLE_OBJECT = {
    "anyOf": [
        {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
        {"type": "null"},
    ]
}
SHORT_OR_LONG = {"anyOf": [{"type": "string", "maxLength": 2}, {"enum": ["long"]}]}
INT_OR_NUMBER = {"type": "array", "items": {"oneOf": [{"type": "integer"}, {"type": "number"}]}}

SCHEMA_CASES = [
    # type
    pytest.param({"type": "string"}, '"a"', OK, None, id="string"),
    pytest.param({"type": "string"}, "12", "expected string, got number", 0, id="not-string"),
    pytest.param({"type": "number"}, '"1"', "expected number, got string", 0, id="not-number"),
    pytest.param({"type": "integer"}, "12", OK, None, id="integer"),
    pytest.param({"type": "integer"}, "12.0", OK, None, id="integral-float-is-integer"),
    pytest.param({"type": "integer"}, "1e2", OK, None, id="integral-exponent-is-integer"),
    pytest.param({"type": "integer"}, "1.5", "expected integer, got number", None, id="not-int"),
    pytest.param(
        {"type": "integer"}, "1.25e1", "expected integer, got number", None, id="12.5-not-int"
    ),
    pytest.param(OBJECT_A_INT, '{"a": 1.5}', "expected integer, got number", 9, id="int-in-object"),
    pytest.param({"type": ["string", "null"]}, "null", OK, None, id="nullable-null"),
    pytest.param({"type": ["string", "null"]}, '"x"', OK, None, id="nullable-string"),
    pytest.param(
        {"type": ["string", "null"]}, "1", "expected string or null, got number", 0, id="nullable"
    ),
    pytest.param({"type": "string", "nullable": True}, "null", OK, None, id="openapi-nullable"),
    pytest.param({"type": "boolean"}, "null", "expected boolean, got null", 0, id="not-boolean"),
    pytest.param({"type": "object"}, "[]", "expected object, got array", 0, id="not-object"),
    pytest.param(OBJECT_A_INT, '{"a": "1"}', "expected integer, got string", 6, id="nested-type"),
    # required, additionalProperties
    pytest.param(
        {"type": "object", "required": ["a", "b"]},
        '{"a": 1}',
        "missing required property 'b'",
        7,
        id="required-at-close",
    ),
    pytest.param(
        {"type": "object", "required": ["a", "b"]}, '{"b":1,"a":2}', OK, None, id="required-ok"
    ),
    pytest.param(
        {"properties": {"a": {}}, "additionalProperties": False},
        '{"a":"x","z":1}',
        "property not allowed",
        11,
        id="unknown-property-at-key-end",
    ),
    pytest.param(
        {"additionalProperties": {"type": "integer"}},
        '{"z": "s"}',
        "expected integer, got string",
        6,
        id="additional-schema",
    ),
    pytest.param(
        {"additionalProperties": {"type": "integer"}}, '{"z": 3}', OK, None, id="additional-ok"
    ),
    pytest.param(
        {"properties": {"a": False}}, '{"a": 1}', "property not allowed", 3, id="false-property"
    ),
    # enum, const
    pytest.param(COLOURS, '"green"', OK, None, id="enum"),
    pytest.param(COLOURS, '"grey"', "value not in enum", 4, id="enum-prefix-miss"),
    pytest.param(COLOURS, '"gree"', "value not in enum", 5, id="enum-too-short"),
    pytest.param(COLOURS, '"greens"', "value not in enum", 6, id="enum-too-long"),
    pytest.param(COLOURS, "1", "value not in enum", 0, id="enum-wrong-kind"),
    pytest.param(
        {"items": {"enum": [1, 2.5, None]}}, "[2.50, 1.0, null]", OK, None, id="numeric-enum"
    ),
    pytest.param(
        {"items": {"enum": [1, 2.5]}}, "[2.5, 3]", "value not in enum", 7, id="numeric-enum-miss"
    ),
    pytest.param({"const": "x"}, '"y"', "value not in enum", 1, id="const"),
    pytest.param({"enum": [True]}, "false", "value not in enum", 0, id="enum-literal"),
    pytest.param({"enum": [1]}, "true", "value not in enum", 0, id="true-is-not-1"),
    # items, minItems, maxItems
    pytest.param(
        {"items": {"type": "integer"}}, '[1, "a"]', "expected integer, got string", 4, id="items"
    ),
    pytest.param({"maxItems": 2}, "[1,2,3]", "array longer than maxItems 2", 5, id="maxItems"),
    pytest.param({"minItems": 2}, "[1]", "array shorter than minItems 2", 2, id="minItems"),
    pytest.param({"items": False}, "[1]", "value not allowed here", 1, id="false-items"),
    pytest.param({"items": False}, "[]", OK, None, id="false-items-empty"),
    # minLength, maxLength (code points)
    pytest.param({"maxLength": 3}, '"abcd"', "string longer than maxLength 3", 4, id="maxLength"),
    pytest.param(
        {"maxLength": 3},
        '"ab\\u00e9d"',
        "string longer than maxLength 3",
        9,
        id="maxLength-counts-escapes",
    ),
    pytest.param({"maxLength": 1}, '"\\ud83d\\ude00"', OK, None, id="surrogate-pair-is-one"),
    pytest.param({"maxLength": 1}, '"😀"', OK, None, id="astral-char-is-one"),
    pytest.param({"minLength": 2}, '"a"', "string shorter than minLength 2", 2, id="minLength"),
    # numeric bounds
    pytest.param(
        {"properties": {"n": {"minimum": 0}}},
        '{"n":-1}',
        "number below minimum 0",
        7,
        id="minimum",
    ),
    pytest.param({"items": {"maximum": 10}}, "[10, 1e1]", OK, None, id="maximum-inclusive"),
    pytest.param(
        {"items": {"exclusiveMaximum": 10}},
        "[10]",
        "number not below exclusiveMaximum 10",
        3,
        id="exclusiveMaximum",
    ),
    pytest.param(
        {"items": {"exclusiveMinimum": 0}},
        "[0.0]",
        "number not above exclusiveMinimum 0",
        4,
        id="exclusiveMinimum",
    ),
    pytest.param(
        {"items": {"minimum": 0, "exclusiveMinimum": True}},
        "[0]",
        "number not above exclusiveMinimum 0",
        2,
        id="draft4-exclusive",
    ),
    pytest.param({"items": {"minimum": 0.1}}, "[0.1]", OK, None, id="decimal-exact-bound"),
    # $ref, $defs
    pytest.param(
        STEP_DEFS,
        '{"steps": [{"explanation": "e", "output": "o"}]}',
        OK,
        None,
        id="ref-defs",
    ),
    pytest.param(
        STEP_DEFS,
        '{"steps": [{"explanation": "e", "result": "o"}]}',
        "property not allowed",
        39,
        id="ref-defs-unknown-property",
    ),
    pytest.param(
        STEP_DEFS,
        '{"steps": [{"explanation": "e"}]}',
        "missing required property 'output'",
        30,
        id="ref-defs-required",
    ),
    pytest.param(
        TREE,
        '{"v":1,"children":[{"v":2,"children":[{"v":"x"}]}]}',
        "expected integer, got string",
        43,
        id="recursive-ref",
    ),
    pytest.param(NESTED_INTS, "[1,[2,[3]],[]]", OK, None, id="root-ref"),
    pytest.param(
        NESTED_INTS,
        '[1,["a"]]',
        "value matches no anyOf alternative (expected integer, got string)",
        4,
        id="root-ref-miss",
    ),
    # anyOf, oneOf, allOf
    pytest.param(NULLABLE_OBJECT, "null", OK, None, id="anyOf-null"),
    pytest.param(NULLABLE_OBJECT, '{"a": 1}', OK, None, id="anyOf-object"),
    pytest.param(
        NULLABLE_OBJECT,
        "{}",
        "value matches no anyOf alternative (missing required property 'a')",
        1,
        id="anyOf-object-incomplete",
    ),
    pytest.param(
        NULLABLE_OBJECT,
        "true",
        "value matches no anyOf alternative (expected object, got boolean)",
        0,
        id="anyOf-no-type",
    ),
    pytest.param(SHORT_OR_LONG, '"long"', OK, None, id="anyOf-enum-branch"),
    pytest.param(SHORT_OR_LONG, '"lo"', OK, None, id="anyOf-short-branch"),
    pytest.param(
        SHORT_OR_LONG,
        '"lon"',
        "value matches no anyOf alternative (value not in enum)",
        4,
        id="anyOf-last-branch-fails-last",
    ),
    pytest.param(
        SHORT_OR_LONG,
        '"lox"',
        "value matches no anyOf alternative (string longer than maxLength 2)",
        3,
        id="anyOf-both-fail-together",
    ),
    pytest.param(
        {"anyOf": [{"type": "integer"}]}, '"a"', "expected integer, got string", 0, id="anyOf-one"
    ),
    pytest.param(INT_OR_NUMBER, "[1.5]", OK, None, id="oneOf-one-match"),
    pytest.param(
        INT_OR_NUMBER, "[1]", "value matches more than one oneOf alternative", 2, id="oneOf-two"
    ),
    pytest.param(
        {"items": {"allOf": [{"minimum": 0}, {"maximum": 5}]}},
        "[3, 6]",
        "number above maximum 5",
        5,
        id="allOf",
    ),
    pytest.param(
        {"type": "object", "$ref": "#/$defs/a", "$defs": {"a": {"required": ["x"]}}},
        "{}",
        "missing required property 'x'",
        1,
        id="ref-beside-siblings",
    ),
    # keywords judged at the end pass a document that satisfies them
    pytest.param(
        {"type": "string", "format": "email", "pattern": "^x"},
        '"x@example.com"',
        OK,
        None,
        id="end-keywords-satisfied",
    ),
    pytest.param(
        {"patternProperties": {"^x_": {}}, "additionalProperties": False},
        '{"x_1": 1}',
        OK,
        None,
        id="patternProperties-disable-additional",
    ),
    pytest.param(
        {"prefixItems": [{"type": "string"}], "items": {"type": "integer"}},
        '["a", 1]',
        OK,
        None,
        id="prefixItems-disable-items",
    ),
    pytest.param({"properties": {"a": True}}, '{"a": [1]}', OK, None, id="true-schema"),
]


END_CASES = [
    pytest.param({"type": "string", "pattern": "^x"}, '"no"', "pattern", id="pattern"),
    pytest.param({"type": "string", "format": "email"}, '"no"', "format", id="format-email"),
    pytest.param({"format": "date-time"}, '"2024-13-01T00:00:00Z"', "format", id="format-date"),
    pytest.param({"format": "uuid"}, '"not-a-uuid"', "format", id="format-uuid"),
    pytest.param({"format": "ipv4"}, '"999.1.1.1"', "format", id="format-ipv4"),
    pytest.param(
        {"patternProperties": {"^x_": {"type": "integer"}}},
        '{"x_1": "one"}',
        "type",
        id="patternProperties",
    ),
    pytest.param(
        {"patternProperties": {"^x_": {}}, "additionalProperties": False},
        '{"y": 1}',
        "additionalProperties",
        id="patternProperties-with-additional",
    ),
    pytest.param(
        {"prefixItems": [{"type": "string"}], "items": {"type": "integer"}},
        '["a", "b"]',
        "type",
        id="prefixItems-then-items",
    ),
    pytest.param({"prefixItems": [{"type": "string"}]}, "[1]", "type", id="prefixItems"),
    pytest.param({"uniqueItems": True}, "[1, 1]", "uniqueItems", id="uniqueItems"),
    pytest.param({"multipleOf": 3}, "[1]", None, id="multipleOf-not-a-number"),
    pytest.param({"multipleOf": 3}, "4", "multipleOf", id="multipleOf"),
    pytest.param({"not": {"type": "string"}}, '"s"', "not", id="not"),
    pytest.param({"const": {"a": 1}}, '{"a": 2}', "const", id="const-object"),
    pytest.param({"enum": [[1, 2]]}, "[2, 1]", "enum", id="enum-array"),
    pytest.param(
        {"if": {"required": ["a"]}, "then": {"required": ["b"]}}, '{"a": 1}', "required", id="if"
    ),
    pytest.param({"minProperties": 2}, '{"a": 1}', "minProperties", id="minProperties"),
    pytest.param(
        {"propertyNames": {"pattern": "^[a-z]+$"}}, '{"A": 1}', "pattern", id="propertyNames"
    ),
    pytest.param(
        {"dependentRequired": {"a": ["b"]}}, '{"a": 1}', "dependentRequired", id="dependent"
    ),
    pytest.param({"contains": {"type": "string"}}, "[1, 2]", "contains", id="contains"),
    pytest.param(
        {"oneOf": [{"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^ab"}]},
        '"ab"',
        "oneOf",
        id="oneOf-both-match-at-end",
    ),
    pytest.param(
        {"oneOf": [{"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^b"}]},
        '"b"',
        None,
        id="oneOf-one-survives-the-end",
    ),
]
"""(schema, document, keyword the final validator names, or None: the document is valid).
Each keyword here is decided only at the end; streaming lets the document through."""


@pytest.mark.parametrize(("schema", "doc", "keyword"), END_CASES)
def test_keywords_decided_at_the_end(schema: dict[str, Any], doc: str, keyword: str | None) -> None:
    """The final validator judges what streaming does not; the close is withheld until then."""
    run = run_both(factory(), doc, json_channel(schema))
    if keyword is None:
        assert (None, doc) == (run.block, run.text)
        return
    assert run.block is not None
    assert run.block.startswith(f"json: value fails {keyword!r} (#/")
    assert run.block.endswith(" at end")
    assert doc[:-1] == run.text
    assert [("json_schema", "blocked")] == [(f.rule, f.action) for f in run.findings]


def test_end_verdict_flags_without_holding() -> None:
    """``action: flag`` releases the document and records the end verdict as a finding."""
    run = run_both(factory(action="flag"), '"no"', json_channel({"pattern": "^x"}))
    assert ('"no"', None, ["json_schema"]) == (run.text, run.block, [f.rule for f in run.findings])


def test_whole_mode_end_verdict_releases_nothing() -> None:
    """Whole mode releases nothing of a document the final validator rejects."""
    run = run_both(
        factory(whole=True), '{"a": "no"}', json_channel({"properties": {"a": {"pattern": "^x"}}})
    )
    assert "" == run.text
    assert run.block is not None


def test_exact_schemas_skip_the_final_validator() -> None:
    """A schema of streaming keywords only needs no end verdict; any other keyword does."""
    exact = {"type": "object", "properties": {"a": {"enum": ["x"]}}, "required": ["a"]}
    assert compile_schema(exact).exact()
    assert not compile_schema({"properties": {"a": {"pattern": "^x"}}}).exact()
    assert not compile_schema({"$defs": {"d": {"format": "uuid"}}, "$ref": "#/$defs/d"}).exact()


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "https://example.com/schema.json"},
        {"$schema": "https://example.com/meta", "type": "string", "pattern": "^x"},
        {"type": "string", "format": "no-such-format"},
        {"type": "string", "pattern": "(?<!unsupported"},
    ],
    ids=["remote-ref", "remote-meta-schema", "unknown-format", "bad-pattern"],
)
def test_schema_the_validator_cannot_apply_is_refused_at_load(schema: dict[str, Any]) -> None:
    """A configured schema the checks cannot apply fails at load, never fetching anything."""
    with pytest.raises(ValidationError):
        factory(schema=schema)


def test_unusable_request_schema_falls_back_to_syntax_with_a_finding() -> None:
    """A request schema with an unknown format is checked for syntax only, and says so."""
    run = run_both(factory(), '"x"', json_channel({"format": "no-such-format"}))
    assert ('"x"', None) == (run.text, run.block)
    assert ["json_schema_unusable"] == [f.rule for f in run.findings]


@pytest.mark.parametrize(("schema", "doc", "verdict", "offset"), SCHEMA_CASES)
def test_schema_case(schema: dict[str, Any], doc: str, verdict: str, offset: int | None) -> None:
    """Each case gets its verdict and offset both whole and one character at a time."""
    run = run_both(factory(lookahead_chars=0), doc, json_channel(schema))
    if verdict == OK:
        assert (None, doc) == (run.block, run.text)
        return
    assert expected_reason(verdict, offset) == run.block
    assert doc[:offset] == run.text
    assert [("json_schema", "blocked")] == [(f.rule, f.action) for f in run.findings]


@settings(max_examples=150, deadline=None)
@given(case=st.sampled_from(SCHEMA_CASES), data=st.data())
def test_schema_verdicts_do_not_depend_on_the_split(case: Any, data: st.DataObject) -> None:
    """Any random split of a case gives the same verdict and text as feeding it whole."""
    schema, doc, _, _ = case.values
    fac = factory(lookahead_chars=data.draw(st.integers(0, 8)))
    whole = run_factory(fac, [doc], json_channel(schema))
    split = run_factory(fac, data.draw(chunkings(doc)), json_channel(schema))
    assert (whole.text, whole.block, whole.findings) == (split.text, split.block, split.findings)


def test_schema_error_never_echoes_document_content() -> None:
    """Reasons name schema facts only; the document's own keys and values stay out."""
    schema = {"properties": {"a": {}}, "additionalProperties": False}
    run = run_both(factory(), '{"secret-key-name": 1}', json_channel(schema))
    assert expected_reason("property not allowed", 17) == run.block


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$ref": "other.json#/a"}, "only references inside the schema"),
        ({"$ref": "#anchor"}, "anchors are not supported"),
        ({"$ref": "#/$defs/missing"}, "does not resolve"),
        ({"type": "text"}, "unknown type 'text'"),
        ({"type": []}, "expected a type name"),
        ({"minLength": -1}, "expected a non-negative integer"),
        ({"maxItems": True}, "expected a non-negative integer"),
        ({"minimum": "0"}, "expected a number"),
        ({"maximum": float("inf")}, "expected a finite number"),
        ({"enum": "red"}, "expected a list"),
        ({"anyOf": []}, "expected a non-empty list"),
        ({"properties": {"a": 3}}, "a schema must be an object or a boolean"),
        ({"required": "a"}, "expected a list of names"),
    ],
)
def test_unusable_schemas_are_refused(schema: dict[str, Any], message: str) -> None:
    """Malformed schemas, or forms the checker cannot apply, fail at compile time."""
    with pytest.raises(SchemaError, match=message):
        compile_schema(schema)


def test_ref_pointer_escapes_are_decoded() -> None:
    """``~1``, ``~0`` and percent-escapes in a ``$ref`` pointer resolve per RFC 6901."""
    schema = {
        "$defs": {"a/b": {"type": "integer"}, "c~d": {"type": "string"}, "e f": {"type": "null"}},
        "properties": {
            "x": {"$ref": "#/$defs/a~1b"},
            "y": {"$ref": "#/$defs/c~0d"},
            "z": {"$ref": "#/$defs/e%20f"},
        },
    }
    fac = factory()
    assert run_both(fac, '{"x": 1, "y": "s", "z": null}', json_channel(schema)).block is None
    run = run_both(fac, '{"x": "1"}', json_channel(schema))
    assert expected_reason("expected integer, got string", 6) == run.block


def test_huge_numbers_are_compared_exactly() -> None:
    """Bounds and integer checks are exact even for numbers no float can hold."""
    schema = {"items": {"type": "integer", "maximum": 10**30}}
    fac = factory()
    assert run_both(fac, f"[{10**30}, 1{'0' * 30}e-30]", json_channel(schema)).block is None
    run = run_both(fac, f"[{10**30 + 1}]", json_channel(schema))
    assert expected_reason(f"number above maximum {10**30}", 32) == run.block


def test_ref_into_a_list_position() -> None:
    """A pointer may step through an array index inside the schema document."""
    schema = {"kinds": [{"type": "string"}, {"type": "integer"}], "items": {"$ref": "#/kinds/1"}}
    run = run_both(factory(), '["a"]', json_channel(schema))
    assert expected_reason("expected integer, got string", 1) == run.block


def test_contradictory_enums_reject_without_crashing() -> None:
    """``allOf`` members whose string enums share nothing leave no candidate at all."""
    schema = {"allOf": [{"enum": ["a"]}, {"enum": ["b"]}]}
    fac = factory()
    assert (
        expected_reason("value not in enum", 1) == run_both(fac, '"a"', json_channel(schema)).block
    )
    assert (
        expected_reason("value not in enum", 1) == run_both(fac, '""', json_channel(schema)).block
    )


def test_overly_deep_schema_is_refused() -> None:
    """A schema nested past the compile limit is refused, not a crash in recursion."""
    schema: dict[str, Any] = {}
    for _ in range(150):
        schema = {"items": schema}
    with pytest.raises(SchemaError, match="nested deeper than 100 levels"):
        compile_schema(schema)
