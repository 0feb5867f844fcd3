"""JSON on the per-event path: fast, compact, and never stricter than the standard library."""

from __future__ import annotations

import json

import pytest

from pipeline.jsonfast import dumps, loads


def test_compact_and_utf8() -> None:
    """Re-serialised events are compact and carry non-ASCII as UTF-8, as providers send it."""
    assert '{"a":[1,2],"b":"café — 😀"}' == dumps({"a": [1, 2], "b": "café — 😀"})


def test_integers_past_64_bits_stay_exact() -> None:
    """An id beyond 64 bits comes back digit for digit (orjson would turn it into a float)."""
    assert '{"id":123456789012345678901234567890}' == dumps(
        loads('{"id":123456789012345678901234567890}')
    )


def test_lone_surrogate_is_read_and_written_escaped() -> None:
    """An unpaired surrogate escape still parses, and is written so UTF-8 can carry it."""
    value = loads('{"a":"x\\ud800"}')
    assert {"a": "x\ud800"} == value
    written = dumps(value)
    written.encode()
    assert value == json.loads(written)


def test_non_finite_numbers_are_read() -> None:
    """``NaN`` from an upstream is read as before (stdlib), and written as valid JSON."""
    assert "null" == dumps(loads("NaN"))


def test_not_json_raises_value_error() -> None:
    """Anything that is not JSON raises the standard library's JSONDecodeError."""
    with pytest.raises(json.JSONDecodeError):
        loads("{nope")
