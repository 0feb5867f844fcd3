"""Where moderation windows close: sentence ends, a hard cut, never the chunking."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from filters.moderation.windows import split_windows, window_end
from pipeline.testing import chunkings

PROSE = (
    'She said "stop." Then she left! Did he follow?\nNo. 今日は晴れ。明日は雨\uff1f '
    "A very long sentence without any end that keeps going on and on past the window"
)


def test_sentences_end_after_their_punctuation_and_one_space() -> None:
    """A window ends after ``.``/``!``/``?`` (closing quotes allowed) and one whitespace."""
    closed, rest = split_windows("One. Two! Three? Four", 400)
    assert (["One. ", "Two! ", "Three? "], "Four") == (closed, rest)


def test_a_quote_after_the_full_stop_stays_in_the_sentence() -> None:
    """``stop."`` followed by a space closes the window after the quote."""
    assert 'She said "stop." ' == split_windows('She said "stop." Then', 400)[0][0]


def test_cjk_full_stops_end_a_window_once_the_next_character_arrives() -> None:
    """``。`` needs no space after it, only a character that is not another stop."""
    assert window_end("晴れ。", 0, 400) is None
    assert 3 == window_end("晴れ。明", 0, 400)


def test_a_window_without_a_sentence_end_is_cut_at_a_space() -> None:
    """Past ``window_chars`` the cut falls after the last space of the window's second half."""
    text = "one two three purple falcon flies over"
    assert 14 == window_end(text, 0, 16)
    assert window_end("one two three", 0, 16) is None


def test_a_window_with_no_space_is_cut_at_its_size() -> None:
    """A run without whitespace is cut at exactly ``window_chars``."""
    assert 16 == window_end("x" * 40, 0, 16)


@given(st.data(), st.integers(min_value=16, max_value=60))
def test_windows_do_not_depend_on_the_chunking(data: st.DataObject, size: int) -> None:
    """Closing windows as pieces arrive gives the windows of the whole text."""
    expected = split_windows(PROSE, size)
    closed: list[str] = []
    rest = ""
    for piece in data.draw(chunkings(PROSE)):
        ready, rest = split_windows(rest + piece, size)
        closed.extend(ready)
    assert expected == (closed, rest)
