"""Tests of the profanity stage: mask styles, actions, lists and allow-lists, evasions,
Scunthorpe safety, hold-back and chunk invariance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from filters.profanity import (
    ProfanityConfig,
    ProfanityFactory,
    ProfanityStage,
    default_wordlist,
    read_wordlist,
)
from pipeline.stage import ChannelEnd, Finding
from pipeline.testing import (
    JSON_CHANNEL,
    TEXT_CHANNEL,
    StageRun,
    assert_compliant,
    chunkings,
    run_factory,
)
from tests.test_profanity_corpus import Sample, samples

DEFAULT = ProfanityFactory(ProfanityConfig())
PROSE = (
    "The committee met on Tuesday to review the proposal. Most of what models write is "
    "ordinary prose like this, with commas, semicolons; questions? and numbers like 42. "
)


def check(text: str | list[str], **options: Any) -> StageRun:
    """Run ``text`` (or these chunks) through a stage built from ``options``."""
    factory = ProfanityFactory(ProfanityConfig(**options)) if options else DEFAULT
    return run_factory(factory, [text] if isinstance(text, str) else text)


def spans(run: StageRun) -> list[tuple[str, str, int, int]]:
    return [(f.rule, f.action, f.start, f.end) for f in run.findings]


# --- mask styles and actions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "you f*** m***********!"),
        ({"mask_style": "asterisks"}, "you **** ************!"),
        ({"mask_style": "asterisks", "keep_length": False}, "you **** ****!"),
        ({"keep_length": False}, "you f*** m***!"),
        ({"mask_style": "word"}, "you [censored] [censored]!"),
        ({"mask_style": "word", "replacement": "<bleep>"}, "you <bleep> <bleep>!"),
    ],
)
def test_mask_styles(options: dict[str, Any], expected: str) -> None:
    """Each mask style and keep_length setting gives its documented mask."""
    assert expected == check("you fuck motherfucker!", **options).text


def test_masked_findings_carry_offsets_not_words() -> None:
    """A mask reports the rule, the action and the span in the stage's input."""
    assert [("profanity", "masked", 3, 7)] == spans(check("ok fuck"))


def test_keep_length_masks_every_character_of_an_evasion() -> None:
    """A spaced-out or leet word is masked over its whole span, separators included."""
    text = "so f.u.c.k it, a$$hole"
    run = check(text, mask_style="asterisks")
    assert "so ******* it, *******" == run.text
    assert len(text) == len(run.text)


def test_block_releases_the_text_before_the_word() -> None:
    """``block`` ends the channel with the text before the word and the rule as reason."""
    run = check(["you are an ass", "hole, truly"], action="block")
    assert ("you are an ", "profanity: profanity") == (run.text, run.block)
    assert [("profanity", "blocked", 11, 18)] == spans(run)


def test_block_stage_stops_after_blocking() -> None:
    """After a block the stage releases nothing more and holds nothing."""
    stage = DEFAULT_BLOCK.open(TEXT_CHANNEL)
    assert "profanity: profanity" == stage.feed("shit happens ").block
    assert ("", 0) == (stage.feed("more text").text, stage.held)


DEFAULT_BLOCK = ProfanityFactory(ProfanityConfig(action="block"))


def test_flag_passes_text_and_records_findings() -> None:
    """``flag`` releases every chunk untouched at once and reports the finding later."""
    run = check(["what the fu", "ck is this"], action="flag")
    assert "what the fuck is this" == run.text
    assert ["what the fu", "ck is this", ""] == run.releases
    assert [("profanity", "flagged", 9, 13)] == spans(run)
    assert 0 == run.max_held


# --- lists, words, phrases and the allow-list -------------------------------------------


def test_allow_list_drops_an_entry_but_not_its_longer_relatives() -> None:
    """An allowed entry passes in any spelling; other entries still match."""
    run = check("ass a$$ asshole", allow=["ass"])
    assert "ass a$$ a******" == run.text


def test_allow_list_passes_a_look_alike_as_written() -> None:
    """An allowed non-entry (a product code) passes in any case; other spellings match."""
    assert "Galaxy A55, a55 and @**" == check("Galaxy A55, a55 and @$$", allow=["A55"]).text


def test_no_entries_means_nothing_is_held_or_masked() -> None:
    """Without lists or words the stage passes everything at once."""
    run = check(list("fuck a s s"), default_list=False)
    assert ("fuck a s s", 0) == (run.text, run.max_held)


def test_built_in_allow_list_passes_known_look_alikes() -> None:
    """Real words that read as an entry through the leet/repeat tolerance pass."""
    text = "assess the Shiite tradition near Twatt"
    assert text == check(text).text


def test_extra_list_file_names_its_findings(tmp_path: Path) -> None:
    """Entries from ``lists`` match and carry the file's name as rule."""
    brand = tmp_path / "brand-terms.txt"
    brand.write_text("# competitors\nacme\n\nglobex corp\n", encoding="utf-8")
    run = check("try Acme or GLOBEX  corp, fuck", lists=[str(brand)])
    assert "try A*** or G***********, f***" == run.text
    rules = [finding.rule for finding in run.findings]
    assert ["brand-terms", "brand-terms", "profanity"] == rules


def test_inline_words_and_phrases() -> None:
    """Inline ``words`` add entries; a phrase is masked across its separators."""
    run = check("darn, son of a gun! son of a bitch", words=["darn", "son of a gun"])
    assert "d***, s***********! s*************" == run.text


def test_without_the_default_list_only_given_words_match() -> None:
    """``default_list: false`` leaves only the route's own entries."""
    assert "shit h***" == check("shit hell", default_list=False, words=["hell"]).text


def test_added_word_is_still_whole_word() -> None:
    """An added ``hell`` leaves hello and shell alone."""
    assert "h***, hello shell" == check("hell, hello shell", words=["hell"]).text


def test_config_rejects_entries_that_are_not_words() -> None:
    """An inline entry with digits or symbols is a config error, not a silent no-match."""
    with pytest.raises(ValidationError, match="not a word or phrase"):
        ProfanityConfig(words=["sh1t"])


def test_config_rejects_a_missing_list_file(tmp_path: Path) -> None:
    """A list file that does not exist is reported when the config is validated."""
    with pytest.raises(ValidationError, match="word list file not found"):
        ProfanityConfig(lists=[str(tmp_path / "absent.txt")])


def test_list_file_with_a_bad_line_names_the_line(tmp_path: Path) -> None:
    """A bad entry in a list file fails the route with the file and line number."""
    bad = tmp_path / "bad.txt"
    bad.write_text("fine\nb4d\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt:2:"):
        ProfanityFactory(ProfanityConfig(lists=[str(bad)]))


def test_default_list_ships_with_its_licence() -> None:
    """The default list is found from a checkout, holds 150-400 entries and says CC0."""
    path = default_wordlist()
    assert ("en.txt", "wordlists") == (path.name, path.parent.name)
    assert 150 <= len(read_wordlist(path)) <= 400
    readme = (path.parent / "README.md").read_text(encoding="utf-8")
    assert "CC0-1.0" in readme
    assert "streamsieve contributors" in readme


# --- evasions and Scunthorpe safety -----------------------------------------------------


@pytest.mark.parametrize(
    "word",
    [
        "ShIt", "sh1t", "@$$", "b!tch", "f4ck", "5hit", "$hit", "a55", "fuuuuck", "shiiit",
        "f.u.c.k", "f u c k", "s-h-i-t", "f_u_c_k", "f*ck", "a**hole", "fvck", "F.U.C.K",
    ],
)  # fmt: skip
def test_evasions_are_caught(word: str) -> None:
    """Case, leetspeak, repeats, separators and an inner ``*`` still match."""
    run = check(f"well {word} then")
    assert [(5, 5 + len(word))] == [(f.start, f.end) for f in run.findings]


@pytest.mark.parametrize(
    "word",
    [
        "f u c k", "f.u.c.k", "s-h-i-t", "sh1t", "@$$", "fuuuuck", "f*ck", "a s s h o l e!",
    ],
)  # fmt: skip
def test_evasions_split_into_single_characters(word: str) -> None:
    """An evasion fed one character at a time is masked exactly as when fed whole."""
    text = f"look: {word} ok"
    assert check(text).text == check(list(text)).text != text


@pytest.mark.parametrize(
    "word",
    [
        "Scunthorpe", "assassin", "classic", "cocktail", "Penistone", "shitake", "therapist",
        "document", "passage", "grass", "bass", "Dickens", "cockpit", "hello", "shell",
        "analysis", "titanic", "Sussex", "Middlesex", "skyscraper", "assess", "Shiite",
    ],
)  # fmt: skip
def test_scunthorpe_words_pass(word: str) -> None:
    """Words that contain or resemble an entry pass untouched: matching is whole-word."""
    text = f"{word} and {word.lower()}, ({word})"
    assert (text, []) == (check(text).text, check(text).findings)


def test_spaced_letters_need_a_whole_run() -> None:
    """Single letters among words, or a spelled-out innocent word, are not an evasion."""
    text = "if u can keep your head; spell c l a s s or p-a-s-s, grades a b c"
    assert text == check(text).text


def test_article_before_a_spaced_out_word() -> None:
    """A leading ``a`` or ``I`` is not part of the spaced-out word after it."""
    assert "what a b********; I s******" == check("what a b i t c h; I s h i t").text


def test_spaced_out_words_back_to_back_are_one_run() -> None:
    """Several spaced-out entries in one run are masked together."""
    spelled = "a s s h o l e s h i t"
    assert "a" + "*" * (len(spelled) - 1) + " fine" == check(f"{spelled} fine").text


def test_json_channel_reads_backslash_escapes() -> None:
    """In a JSON string ``\\n`` before a word is an escape, not part of the word."""
    run = run_factory(DEFAULT, ['{"a": "ok\\nshit\\tfuck"}'], JSON_CHANNEL)
    assert '{"a": "ok\\ns***\\tf***"}' == run.text


# --- hold-back ----------------------------------------------------------------------------


def test_ordinary_prose_is_not_held_after_a_completed_word() -> None:
    """Each word that starts no entry is released once the next character arrives."""
    stage = DEFAULT.open(TEXT_CHANNEL)
    for word in PROSE.split(" "):
        assert f"{word} " == stage.feed(f"{word} ").text
        assert 0 == stage.held


def test_a_word_that_starts_no_entry_is_released_before_it_ends() -> None:
    """``the`` leaves at once: no entry starts with it, whatever letters follow."""
    stage = DEFAULT.open(TEXT_CHANNEL)
    assert ("the", 0) == (stage.feed("the").text, stage.held)


def test_complete_entry_at_the_end_waits_for_the_next_character() -> None:
    """``ass`` at the end is held: ``assassin`` would make it innocent."""
    stage = DEFAULT.open(TEXT_CHANNEL)
    assert ("an ", 3) == (stage.feed("an ass").text, stage.held)
    assert ("assassin", 0) == (stage.feed("assin").text, stage.held)


def test_finish_decides_a_held_entry() -> None:
    """At the end of the channel a held complete entry is masked."""
    stage = DEFAULT.open(TEXT_CHANNEL)
    stage.feed("an ass")
    release = stage.finish(ChannelEnd.COMPLETE)
    assert ("a**", (Finding("profanity", "masked", 3, 6),)) == (release.text, release.findings)
    assert 0 == stage.held


def test_finish_releases_a_held_prefix_unmasked() -> None:
    """A held prefix that never became an entry goes out as written at the end."""
    stage = DEFAULT.open(TEXT_CHANNEL)
    assert "it was " == stage.feed("it was bul").text
    assert "bul" == stage.finish(ChannelEnd.TRUNCATED).text


def test_phrase_start_is_held_until_the_phrase_is_decided() -> None:
    """``son of a`` waits for the next word; ``gun`` releases it unmasked."""
    stage = DEFAULT.open(TEXT_CHANNEL)
    assert "" == stage.feed("son of a ").text
    assert "son of a gun!" == stage.feed("gun!").text


def test_candidate_longer_than_the_bound_is_masked_fail_closed() -> None:
    """A word still open at ``max_holdback`` characters is treated as a match."""
    text = "".join(letter * 7 for letter in "motherfucker") + " ok"
    run = check(list(text))
    bound = DEFAULT.scan_bound
    assert bound == run.max_held
    assert bound < DEFAULT.max_holdback
    assert "m" + "*" * (bound - 1) == run.text[:bound]
    assert [("profanity", "masked", 0, bound)] == spans(run)


def test_long_runs_of_one_letter_are_not_held() -> None:
    """``AAAA...`` or ``0000...`` is released after a few letters, not held to the bound."""
    for text in ("A" * 200, "0" * 200, "$" * 200):
        run = check(list(text))
        assert (text, []) == (run.text, run.findings)
        assert run.max_held < DEFAULT.max_holdback


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from(list("asfuckhitbo $*!.-_4'I\n")), min_size=1, max_size=90
    ),
    data=st.data(),
)
def test_held_never_exceeds_max_holdback(text: str, data: st.DataObject) -> None:
    """Whatever the text and its split, ``held`` stays within the declared bound."""
    run = check(data.draw(chunkings(text)))
    assert run.max_held <= DEFAULT.max_holdback
    assert 0 == run.held_after_finish


# --- chunk invariance ---------------------------------------------------------------------


@settings(max_examples=250, deadline=None)
@given(sample=st.sampled_from(samples()), data=st.data())
def test_any_split_of_a_corpus_sentence_gives_the_same_output(
    sample: Sample, data: st.DataObject
) -> None:
    """Output and findings do not depend on where the text was split."""
    whole = check(sample.text)
    run = check(data.draw(chunkings(sample.text)))
    assert (whole.text, whole.findings) == (run.text, run.findings)


@settings(max_examples=60, deadline=None)
@given(sample=st.sampled_from(samples()), data=st.data())
def test_any_split_blocks_at_the_same_place(sample: Sample, data: st.DataObject) -> None:
    """In ``block`` mode the released text and the reason do not depend on the split."""
    whole = run_factory(DEFAULT_BLOCK, [sample.text])
    run = run_factory(DEFAULT_BLOCK, data.draw(chunkings(sample.text)))
    assert (whole.text, whole.block, whole.findings) == (run.text, run.block, run.findings)


@pytest.mark.parametrize("action", ["mask", "block", "flag"])
@pytest.mark.parametrize("channel", [TEXT_CHANNEL, JSON_CHANNEL], ids=["text", "json"])
def test_stage_passes_the_compliance_kit(action: str, channel: Any) -> None:
    """The stage keeps the contract: invariance, bound, finish, isolation, reopen."""
    factory = ProfanityFactory(ProfanityConfig(action=action))  # type: ignore[arg-type]
    texts = ["what the f u c k, son of a bitch", "an ass", "assassin", "as", "s-h-i-t!"]
    assert_compliant(factory, texts, channel, examples=10)


def test_stage_is_per_channel_with_slots() -> None:
    """Each ``open`` gives a fresh stage whose state lives in slots."""
    first, second = DEFAULT.open(TEXT_CHANNEL), DEFAULT.open(TEXT_CHANNEL)
    assert first is not second
    assert isinstance(first, ProfanityStage)
    assert not hasattr(first, "__dict__")
