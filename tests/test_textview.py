"""Tests of the normalised text view: what it shows, how it maps back, how it streams."""

from __future__ import annotations

import json
import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.testing import chunkings
from pipeline.textview import (
    MAX_CLUSTER,
    Normaliser,
    TextView,
    composition_tables,
)

PLAIN = Normaliser()
# Characters that exercise every rule: ASCII, combining marks, composing starters (Oriya,
# Tamil), Hangul jamo and syllables, compatibility forms, format characters, JSON specials.
ALPHABET = (
    "ae o4@.\n"
    "\u0301\u0308\u0323\u0338<"  # combining marks, and "<" composes with U+0338
    "\u0b47\u0b3e"  # Oriya vowel sign E + AA compose (a composing starter)
    "\u1100\u1161\u11a8\uac00"  # Hangul L, V, T, and the LV syllable GA
    "\uff14\uff41\ufb01\u2460\u00bd"  # fullwidth 4, fullwidth a, fi ligature, circled 1, 1/2
    "\u200b\u2060\u00ad\ufeff\u200d"  # zero-width space, word joiner, soft hyphen, BOM, ZWJ
    "é\u00e9\U0001d41f"  # precomposed e, mathematical bold f
    '"\\'
)
TEXTS = st.text(alphabet=ALPHABET, max_size=40)


def strip_format(text: str) -> str:
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def reference(text: str) -> str:
    """The view of a whole text by definition: format chars out, NFKC, format chars out."""
    return strip_format(unicodedata.normalize("NFKC", strip_format(text)))


def run(pieces: list[str], *, json_mode: bool = False, norm: Normaliser = PLAIN) -> TextView:
    """A view fed ``pieces`` and finished; asserts the tail stays bounded on the way."""
    view = norm.view(json=json_mode)
    for piece in pieces:
        view.feed(piece)
        assert view.held <= MAX_CLUSTER + 12
    view.finish()
    assert 0 == view.held
    return view


def view_text(pieces: list[str], *, json_mode: bool = False, norm: Normaliser = PLAIN) -> str:
    view = norm.view(json=json_mode)
    out = [view.feed(piece) for piece in pieces]
    out.append(view.finish())
    return "".join(out)


def spans_of(view: TextView) -> list[tuple[int, int]]:
    return [view.span(i, i + 1) for i in range(view.view_end)]


def test_composition_tables_skip_only_empty_ranges() -> None:
    """The ranges skipped at import hold no canonical composition pair."""
    assert composition_tables() == composition_tables(((0, 0x110000),))


def test_format_characters_removed_and_mapped_inside_the_span() -> None:
    """Zero-width space, word joiner and soft hyphen vanish; a span across them covers them."""
    text = "mail jane\u200b.doe@exa\u00admple\u2060.com now"
    view = run([text])
    shown = view_text([text])
    assert "mail jane.doe@example.com now" == shown
    start = shown.index("jane")
    end = shown.index(" now")
    assert "jane\u200b.doe@exa\u00admple\u2060.com" == view.original(*view.span(start, end))


def test_fullwidth_and_compatibility_forms() -> None:
    """NFKC: fullwidth digits and letters, ligatures read as their plain forms."""
    fullwidth = "\uff14\uff12\uff14\uff12 \uff43\uff41\uff52\uff44 \ufb01ne"
    assert "4242 card fine" == view_text([fullwidth])


def test_combining_mark_split_across_pieces_composes() -> None:
    """``e`` + U+0301 arriving in two pieces is ``é``, one character of two originals."""
    view = PLAIN.view()
    assert "caf" == view.feed("cafe")
    assert 1 == view.held
    assert "" == view.feed("\u0301")  # another mark could still follow
    assert 2 == view.held
    assert "é " == view.feed(" ")
    assert 0 == view.held
    assert (3, 5) == view.span(3, 4)


def test_ascii_prose_is_its_own_view_and_holds_at_most_a_letter() -> None:
    """The fast path: prose comes back as fed, less a final letter a mark could change."""
    view = PLAIN.view()
    assert "The quick " == view.feed("The quick ")
    assert 0 == view.held
    assert "brow" == view.feed("brown")
    assert 1 == view.held
    assert "n fox." == view.feed(" fox.")
    assert (4, 9) == view.span(4, 9)


def test_json_strings_are_decoded_and_structure_kept() -> None:
    """JSON escapes decode in string values; the span of the value is the escaped source."""
    source = '{"to": "jane.doe\\u0040example.com", "n": 4242}'
    view = run([source], json_mode=True)
    shown = view_text([source], json_mode=True)
    assert '{"to": "jane.doe@example.com", "n": 4242}' == shown
    at = shown.index("jane")
    start, end = view.span(at, at + len("jane.doe@example.com"))
    assert "jane.doe\\u0040example.com" == view.original(start, end)
    assert view.in_string(at)
    assert not view.in_string(shown.index("4242"))


def test_json_escape_split_anywhere_is_held() -> None:
    """A ``\\u`` escape and a surrogate pair cut at every point decode the same."""
    source = '["4242\\u00204242 \\ud83d\\ude00 x\\n"]'
    expected = '["4242 4242 \U0001f600 x\n"]'
    for cut in range(1, len(source)):
        assert expected == view_text([source[:cut], source[cut:]], json_mode=True)


def test_lone_surrogate_escape_reads_as_replacement_character() -> None:
    """A high surrogate not followed by a low one is U+FFFD in the view."""
    assert '["\ufffdA"]' == view_text(['["\\ud83d', '\\u0041"]'], json_mode=True)


def test_encode_is_json_safe_where_the_match_was() -> None:
    """A replacement is escaped inside a JSON string and quoted outside one."""
    view = run(['{"a": "x", "b": 5}'], json_mode=True)
    assert 'say \\"hi\\"' == view.encode('say "hi"', 7)
    assert '"[CARD]"' == view.encode("[CARD]", 16)
    assert "[CARD]" == PLAIN.view().encode("[CARD]", 0)


def test_fold_maps_one_char_to_several_or_none() -> None:
    """The caller's fold runs on the NFKC text; its output maps to the whole char."""
    folds = {"m": "rn", "x": ""}
    norm = Normaliser(lambda c: folds.get(c, c))
    view = run(["max \uff4d"], norm=norm)
    assert "rna rn" == view_text(["max \uff4d"], norm=norm)
    assert (0, 1) == view.span(0, 2)
    assert (4, 5) == view.span(4, 6)


def test_forget_keeps_later_offsets_mapped() -> None:
    """After the consumer releases a prefix, later view offsets still map."""
    view = PLAIN.view()
    view.feed("one \u200btwo ")
    view.feed("three ")
    view.forget(8)
    assert (9, 14) == view.span(8, 13)
    assert "three" == view.original(9, 14)


def test_a_run_of_marks_is_cut_and_the_tail_stays_bounded() -> None:
    """Zalgo text never holds more than ``MAX_CLUSTER`` characters."""
    view = PLAIN.view()
    for _ in range(200):
        view.feed("\u0301")
        assert view.held <= MAX_CLUSTER


@settings(max_examples=300, deadline=None)
@given(st.data(), TEXTS)
def test_view_matches_definition_under_any_chunking(data: st.DataObject, text: str) -> None:
    """Any chunking gives the whole text's view, and the same map."""
    pieces = data.draw(chunkings(text))
    assert reference(text) == view_text(pieces)
    assert spans_of(run([text])) == spans_of(run(pieces))


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_every_view_char_maps_to_originals_that_produce_it(text: str) -> None:
    """The original span of a view character, viewed alone, contains that character, and
    spans are ordered and never overlap but inside one cluster."""
    view = run([text])
    shown = view_text([text])
    previous = (0, 0)
    for i in range(view.view_end):
        start, end = view.span(i, i + 1)
        assert shown[i] in reference(text[start:end])
        assert previous[0] <= start
        assert previous == (start, end) or previous[1] <= start
        previous = (start, end)


def json_reference(source: str) -> str:
    """Each string literal decoded and normalised, the rest verbatim."""

    def decode(m: re.Match[str]) -> str:
        return '"' + reference(json.loads(m.group())) + '"'

    return re.sub(r'"(?:[^"\\]|\\.)*"', decode, source)


JSON_VALUES = st.recursive(
    st.none() | st.integers() | TEXTS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.data(), JSON_VALUES, st.booleans())
def test_json_view_decodes_strings_under_any_chunking(
    data: st.DataObject, value: object, ascii_only: bool
) -> None:
    """JSON channels show decoded, normalised strings for any chunking of the source."""
    source = json.dumps(value, ensure_ascii=ascii_only)
    pieces = data.draw(chunkings(source))
    assert json_reference(source) == view_text(pieces, json_mode=True)
    view = run(pieces, json_mode=True)
    assert spans_of(run([source], json_mode=True)) == spans_of(view)
    for i in range(view.view_end):
        start, end = view.span(i, i + 1)
        if view.in_string(i):
            piece = json.loads(f'"{source[start:end]}"')
            assert json_reference(source)[i] in reference(piece)
        else:
            assert json_reference(source)[i] == source[start:end]
