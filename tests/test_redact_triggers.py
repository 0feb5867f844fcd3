"""Tests of which detectors the redact stage runs on a feed, and with which opening.

A detector whose left boundary excludes letters and digits runs only where a word
starts in the new text; one without a boundary (the private key BEGIN line) runs
wherever its first character appears. A JSON channel reads like text until a backslash
is in sight, since after ``\\n`` a value may start right behind a letter. Each test
feeds the text cut at every position, so a value's start and its boundary, its escape
or the text before it, arrive in different feeds.
"""

from __future__ import annotations

import json

import pytest

from filters.redact import RedactConfig, RedactFactory
from pipeline.stage import Channel
from pipeline.testing import JSON_CHANNEL, TEXT_CHANNEL, run_factory, split_at

DEFAULT = RedactFactory(RedactConfig())
PEM = "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----"


def every_cut(text: str, channel: Channel) -> set[str]:
    """The outputs of ``text`` cut once at each position, and fed one char at a time."""
    chunkings = [split_at(text, [cut]) for cut in range(1, len(text))] + [list(text)]
    return {run_factory(DEFAULT, chunks, channel).text for chunks in chunkings}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail:jane@example.com!", "mail:[EMAIL]!"),
        ("key=sk_live_G4uXcA4dnwYt3hoLMhmlaa1e;", "key=[STRIPE_KEY];"),
        ("id AKIAIOSFODNN7EXAMPLE.", "id [AWS_ACCESS_KEY]."),
        ("tel:(415) 555-0123", "tel:[PHONE]"),
        ("ip=10.0.0.1", "ip=[IPV4]"),
    ],
)
def test_value_after_a_non_word_character_is_found_for_every_cut(text: str, expected: str) -> None:
    """A value right after punctuation starts a word, whichever feed brought either."""
    assert {expected} == every_cut(text, TEXT_CHANNEL)


def test_private_key_right_after_a_letter_is_found_for_every_cut() -> None:
    """The BEGIN line has no left boundary, so it counts inside a word too."""
    assert {"key[PRIVATE_KEY]"} == every_cut(f"key{PEM}", TEXT_CHANNEL)


def test_value_inside_a_word_is_left_alone_for_every_cut() -> None:
    """A value's pattern after a letter is part of that word, never a candidate."""
    text = "xjane@example.com1 zAKIAIOSFODNN7EXAMPLE"
    assert {"xjane@example.com1 zAKIAIOSFODNN7EXAMPLE"} == every_cut(text, TEXT_CHANNEL)


@pytest.mark.parametrize("escape", ["\n", "\t", "<"])
def test_json_value_right_after_an_escape_is_found_for_every_cut(escape: str) -> None:
    """After ``\\n``, ``\\t`` or ``\\u003c`` a value starts even behind a letter."""
    document = json.dumps({"t": f"Mail:{escape}jane@example.com"}).replace("<", "\\u003c")
    outputs = every_cut(document, JSON_CHANNEL)
    assert [{"t": f"Mail:{escape}[EMAIL]"}] == [json.loads(text) for text in outputs]


def test_json_without_escapes_reads_like_text_for_every_cut() -> None:
    """A JSON string without backslashes gets the text channel's verdicts."""
    document = json.dumps({"t": "mail jane@example.com, zAKIAIOSFODNN7EXAMPLE or 10.0.0.1"})
    outputs = every_cut(document, JSON_CHANNEL)
    assert [{"t": "mail [EMAIL], zAKIAIOSFODNN7EXAMPLE or [IPV4]"}] == [
        json.loads(text) for text in outputs
    ]
