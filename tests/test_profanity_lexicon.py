"""The profanity stage's shortcuts agree with the regexes they stand in for.

Most pieces of prose skip the scan when one stdlib search (``quiet``) shows no word in
them could start a candidate; a scan skips the costly ``unit`` regex when a word's
skeleton settles its answer (``grows``, ``whole``, ``continues``). Each is compared
here with its definition on words drawn from the lists: cut, cased, repeated, leet.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from filters.profanity import (
    ProfanityConfig,
    ProfanityFactory,
    default_wordlist,
    read_wordlist,
)
from pipeline.stage import ChannelEnd
from pipeline.testing import JSON_CHANNEL, TEXT_CHANNEL, run_factory, split_at

FACTORIES = (
    ProfanityFactory(ProfanityConfig()),
    ProfanityFactory(ProfanityConfig(default_list=False, words=["vag", "son of a gun", "uvula"])),
)
ENTRIES = (*read_wordlist(default_wordlist()), "vag", "son of a gun", "uvula")
PHRASES = tuple(entry for entry in ENTRIES if " " in entry)
TOKEN = re.compile(r"(?:[^\W_]|[@$!*|'\u2019])+")
ODD = "0123456789@$!*|'\u2019\u00e9\u00df\u212a\u017f"
"""Token characters besides ASCII letters, some that lowercase to ASCII letters."""
SEPARATORS = " ,.-_\n\u2014\u00a0"


@st.composite
def words(draw: st.DrawFn) -> str:
    """Something near an entry, or its words: cut, re-cased, letters repeated or odd."""
    word = draw(st.sampled_from(ENTRIES) | st.sampled_from(PHRASES))
    word = word[: draw(st.integers(1, len(word)))]
    if draw(st.booleans()):
        word = word.split(" ")[0]
    chars = []
    for char in word:
        char = char.upper() if draw(st.integers(0, 3)) == 0 else char
        chars.append(char * draw(st.sampled_from([1, 1, 1, 2, 13])))
        if draw(st.integers(0, 9)) == 0:
            chars.append(draw(st.sampled_from(ODD + "uvx")))
    return "".join(chars).replace("u", draw(st.sampled_from("uv")))


def lexicons() -> st.SearchStrategy[Any]:
    return st.sampled_from([factory._lexicon for factory in FACTORIES])


@settings(max_examples=400, deadline=None)
@given(lexicon=lexicons(), word=words(), before=st.sampled_from(SEPARATORS), data=st.data())
def test_quiet_is_no_word_that_could_start_a_candidate(
    lexicon: Any, word: str, before: str, data: st.DataObject
) -> None:
    """``quiet`` fails exactly where a word of one character or not ruled out starts, or
    where a compound stem lies inside a word."""
    word = TOKEN.match(word).group()  # type: ignore[union-attr]
    after = data.draw(st.sampled_from(SEPARATORS))
    compounds = lexicon.compounds
    stem = compounds is not None and compounds.seen.search(word.lower()) is not None
    stirs = len(word) < 2 or not lexicon.ruled_out(word) or stem
    assert stirs == (lexicon.quiet(f"ab{before}{word}{after}", 2) is None)


@settings(max_examples=400, deadline=None)
@given(lexicon=lexicons(), first=words(), second=words())
def test_unit_shortcuts_give_the_regex_answers(lexicon: Any, first: str, second: str) -> None:
    """``grows``, ``whole`` and ``continues`` answer as the ``unit`` regex does."""
    for joined in (first, f"{first} {second}"):
        assert (lexicon.unit.fullmatch(joined, partial=True) is not None) == lexicon.grows(joined)
        expected = lexicon.unit.fullmatch(joined)
        found = lexicon.whole(joined)
        assert (expected and expected.span("w")) == (found and found.span("w"))
        continues = lexicon.unit.fullmatch(joined + " ", partial=True) is not None
        assert continues == lexicon.continues(joined)


def test_quiet_piece_is_released_whole_and_a_stirring_one_waits() -> None:
    """A piece of plain words goes out at once; a final one-letter word is held."""
    stage = FACTORIES[0].open(TEXT_CHANNEL)
    assert "The garden" == stage.feed("The garden").text
    assert " is " == stage.feed(" is a").text
    assert 1 == stage.held
    assert "a quiet place." == stage.feed(" quiet place.").text
    assert "" == stage.finish(ChannelEnd.COMPLETE).text


def test_json_word_after_an_escape_is_masked_for_every_cut() -> None:
    """``\\nshit`` in JSON is the word ``shit``, whichever feeds bring escape and word."""
    text = '{"a": "ok\\nshit, then\\tfuck it"}'
    chunkings = [split_at(text, [cut]) for cut in range(1, len(text))] + [list(text)]
    outputs = {run_factory(FACTORIES[0], chunks, JSON_CHANNEL).text for chunks in chunkings}
    assert {'{"a": "ok\\ns***, then\\tf*** it"}'} == outputs
