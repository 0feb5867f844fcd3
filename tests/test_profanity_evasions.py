"""Issue 13 classes, one behaviour per test: symbols, separators, compounds, names, the
normalised view on text and JSON channels, and the stems' dictionary guarantee."""

from __future__ import annotations

import json

import pytest
from english_words import get_english_words_set

from filters.profanity import ProfanityConfig, ProfanityFactory, default_wordlist, read_wordlist
from filters.profanity.lexicon import BUILTIN_ALLOW, read_stems
from pipeline.testing import JSON_CHANNEL, TEXT_CHANNEL, run_factory

DEFAULT = ProfanityFactory(ProfanityConfig())


def masked(text: str, channel: object = TEXT_CHANNEL) -> str:
    """``text`` through the default stage, whole and one character at a time (equal)."""
    whole = run_factory(DEFAULT, [text], channel)  # type: ignore[arg-type]
    chars = run_factory(DEFAULT, list(text), channel)  # type: ignore[arg-type]
    assert (whole.text, whole.findings) == (chars.text, chars.findings)
    return whole.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("b!+ch", "b****"),
        ("fu(k it", "f*** it"),
        ("5#1+", "5***"),
        ("(shit)", "(s***)"),
        ("s*h*i*t", "s******"),
        ("f.u_ck", "f*****"),
        ("sh-it", "s****"),
        ("f u c k", "f******"),
    ],
)
def test_symbols_and_separators_are_read_through(text: str, expected: str) -> None:
    """Symbol substitutions and separators inside a word are masked, separators included."""
    assert expected == masked(text)


@pytest.mark.parametrize(
    "text",
    ["C++ and C# (see)", "p-a-s-s", "snake_case_name.txt", "warning('x')", "f***", "a**"],
)
def test_look_alikes_of_the_new_rules_pass(text: str) -> None:
    """Code, a spelled innocent word and an already censored word are untouched."""
    assert text == masked(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("you dumbfuck", "you dumbf***"),
        ("fuckwittery", "f***wittery"),
        ("dumbshit move", "dumbs*** move"),
        ("shiitake from Washita", "shiitake from Washita"),
        ("I mishit it", "I mishit it"),
    ],
)
def test_compounds_mask_the_stem_only(text: str, expected: str) -> None:
    """A stem inside a longer word is masked; a stem only at a word's end stays there."""
    assert expected == masked(text)


def test_compounds_can_be_turned_off() -> None:
    """``compounds: false`` leaves compounds to the whole-word list."""
    factory = ProfanityFactory(ProfanityConfig(compounds=False))
    assert "you dumbfuck" == run_factory(factory, ["you dumbfuck"]).text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dick Van Dyke sang.", "Dick Van Dyke sang."),
        ("I read Moby-Dick.", "I read Moby-Dick."),
        ("You Dick.", "You D***."),
        ("I met Dick today", "I met D*** today"),
        ("what a dick", "what a d***"),
    ],
)
def test_names_in_context(text: str, expected: str) -> None:
    """A Title-case entry next to another capitalised word is a name, with the limits
    documented in filters.profanity.names (a name alone is masked)."""
    assert expected == masked(text)


def test_name_rule_can_be_turned_off() -> None:
    """``name_context: false`` masks names like any word."""
    factory = ProfanityFactory(ProfanityConfig(name_context=False))
    assert "D*** Van D***" == run_factory(factory, ["Dick Van Dyke"]).text


@pytest.mark.parametrize(
    "text",
    ["\u0455h\u0456t", "\U0001d41f\U0001d42e\U0001d41c\U0001d424", "fu\u0301ck", "f\u200buck"],
)
def test_homoglyphs_are_masked_over_their_original_span(text: str) -> None:
    """The mask replaces exactly the original characters, however many there are."""
    out = masked(f"oh {text}!")
    assert out.startswith("oh ")
    assert out.endswith("!")
    assert set(out[4:-1]) == {"*"}
    assert len(out) == len(text) + 4


def test_json_escapes_are_decoded_and_the_mask_stays_json() -> None:
    """In JSON, ``\\u0073hit`` is read as ``shit`` and the mask keeps the document valid."""
    doc = '{"a": "you \\u0073hit", "b": "\\u0455h\\u0456t \\"x\\""}'
    out = masked(doc, JSON_CHANNEL)
    assert {"a": "you s********", "b": "s" + "*" * 13 + ' "x"'} == json.loads(out)


def test_text_channels_drop_the_view_after_non_ascii() -> None:
    """Prose after a non-ASCII character goes back to the plain path once released."""
    stage = DEFAULT.open(TEXT_CHANNEL)
    stage.feed("caf\u00e9 ")
    stage.feed("and more. ")
    assert stage._view is None
    assert 0 == stage.held


def test_stems_are_inside_no_english_word() -> None:
    """No word of the web2 and GCIDE dictionaries holds a stem where the stage looks for
    it, except words that start with it, listed words and the built-in allow list."""
    words = get_english_words_set(["web2", "gcide"], lower=True, alpha=True)
    listed = set(read_wordlist(default_wordlist()))
    for stem in read_stems(default_wordlist("en-stems")):
        ending = stem.startswith("*")
        core = stem.removeprefix("*")
        found = {
            w
            for w in words
            if (w.endswith(core) and w != core if ending else core in w and not w.startswith(core))
        }
        assert set() == found - BUILTIN_ALLOW - listed - {w for w in found if w.startswith(core)}
