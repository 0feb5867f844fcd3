"""The framework scanner: one-feed results under every chunking, overlapping rules included."""

from __future__ import annotations

import json
from typing import Any

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.scanner import (
    BLOCK,
    FLAG,
    KEEP,
    MASK,
    Decision,
    Hit,
    MatchFactory,
    Rules,
    UnboundedPatternError,
    WindowFactory,
    block,
    pattern_width,
    replace,
)
from pipeline.stage import OverflowPolicy, StageConfig
from pipeline.testing import JSON_CHANNEL, assert_compliant, chunkings, run_factory


class Scan(MatchFactory[StageConfig]):
    """A scanning stage over given rules with one fixed decision (or a function)."""

    def __init__(self, rules: Rules, decide: Decision | Any = MASK, *, view: bool = True) -> None:
        super().__init__(StageConfig(type="scan"), rules, normalise=view)
        self.decide = decide

    def on_match(self, hit: Hit) -> Decision:
        return self.decide(hit) if callable(self.decide) else self.decide


def reference(rules: Rules, text: str, decide: Decision, mask: str = "[FILTERED]") -> str:
    """One left-to-right scan over the whole text, written out plainly: the oracle."""
    out, at = [], 0
    for match in rules.pattern.finditer(text):
        if decide.action.value == "kept":
            continue
        out.append(text[at : match.start()])
        out.append(mask if decide is MASK else match[0])
        at = match.end()
    return "".join(out) + text[at:]


GUN = Rules.from_phrases({"bad": ["son of a gun", "of"]})


def test_overlapping_phrases_split_mid_phrase_give_the_one_feed_answer() -> None:
    """The issue's case: 'son of a gun' and 'of', fed as ['you son of a', ' gun']."""
    factory = Scan(GUN)
    assert "you [FILTERED]" == run_factory(factory, ["you son of a gun"]).text
    assert "you [FILTERED]" == run_factory(factory, ["you son of a", " gun"]).text
    assert "you son [FILTERED] a gum" == run_factory(factory, ["you son of a", " gum"]).text


def test_nothing_suspicious_is_held() -> None:
    """Prose that cannot start a match flows out at once; the view holds one letter at most
    (a combining mark may still follow it)."""
    run = run_factory(Scan(GUN, view=False), ["Plain ", "words flow ", "through."])
    assert ["Plain ", "words flow ", "through.", ""] == run.releases
    assert 0 == run.max_held
    run = run_factory(Scan(GUN), ["Plain ", "words flow ", "through"])
    assert ["Plain ", "words flow ", "throug", "h"] == run.releases
    assert 1 == run.max_held


def test_the_normalised_view_sees_through_spellings_and_replaces_the_original() -> None:
    """Fullwidth letters, a zero-width space and JSON escapes match; the input span goes."""
    rules = Rules.from_phrases({"vendor": ["Acme Cloud"]})
    text = "Try \uff21\uff43\uff4d\uff45 Cloud or Ac\u200bme Cloud."
    run = run_factory(Scan(rules), list(text))
    assert "Try [FILTERED] or [FILTERED]." == run.text
    assert [(4, 14), (18, 29)] == [(f.start, f.end) for f in run.findings]
    doc = '{"q": "Ac\\u006de Cloud", "r": "acme\\nCloud"}'
    out = run_factory(Scan(rules, replace('the "other"')), [doc[:12], doc[12:]], JSON_CHANNEL)
    assert {"q": 'the "other"', "r": 'the "other"'} == json.loads(out.text)
    raw = run_factory(Scan(rules, view=False), [text])
    assert "Try \uff21\uff43\uff4d\uff45 Cloud or Ac\u200bme Cloud." == raw.text


def test_bound_is_derived_from_the_patterns() -> None:
    """The natural bound is the longest phrase plus its look-ahead; regex widths likewise."""
    assert 13 == GUN.longest
    assert 13 == pattern_width(r"TKT-\d{4,8}(?!\d)")
    assert 3 == pattern_width(r"a(?=bc)")
    with pytest.raises(UnboundedPatternError, match="bound every repeat"):
        Rules.from_patterns({"digits": r"\d+"})
    assert 40 == Rules.from_patterns({"digits": r"\d+"}, longest=40).longest


def test_rules_refuse_empty_and_invalid_patterns() -> None:
    """A pattern matching empty text, or one that does not compile, names its rule."""
    with pytest.raises(ValueError, match="rule e matches empty text"):
        Rules.from_patterns({"e": r"x?"})
    with pytest.raises(ValueError, match="rule b: not a valid regex"):
        Rules.from_patterns({"b": r"(x"})


def test_compiled_patterns_keep_their_flags() -> None:
    """A compiled pattern's IGNORECASE applies to its own alternative only."""
    rules = Rules.from_patterns({"loud": regex.compile("acme", regex.I), "exact": "Initech"})
    factory = Scan(rules)
    assert "[FILTERED] initech" == run_factory(factory, ["ACME initech"]).text


def test_findings_are_in_input_coordinates_and_name_the_rule() -> None:
    """Each finding's span is where the match sits in the stage's input, with its rule."""
    rules = Rules.from_phrases({"competitor": ["Acme Cloud"], "harm": ["hurt myself"]})
    text = "Try Acme Cloud, or I hurt myself."
    run = run_factory(Scan(rules), ["Try Ac", "me Cloud, or I hu", "rt myself."])
    spans = [(f.rule, f.action, text[f.start : f.end]) for f in run.findings]
    assert [("competitor", "masked", "Acme Cloud"), ("harm", "masked", "hurt myself")] == spans


def test_decisions_replace_block_flag_keep() -> None:
    """Each decision does what its name says; keep shields what the match contains."""
    rules = Rules.from_patterns({"allow": r"(?i)scunthorpe", "bad": r"(?i)thor"})

    def decide(hit: Hit) -> Decision:
        return KEEP if hit.rule == "allow" else replace("***")

    assert "Scunthorpe, ***!" == run_factory(Scan(rules, decide), ["Scunthorpe, Thor!"]).text
    flagged = run_factory(Scan(GUN, FLAG), ["son of a gun"])
    assert ("son of a gun", ["flagged"]) == (flagged.text, [f.action for f in flagged.findings])
    blocked = run_factory(Scan(GUN, BLOCK), ["I said: son of", " a gun, friend"])
    assert ("I said: ", "scan: bad") == (blocked.text, blocked.block)
    assert "why" == run_factory(Scan(GUN, block("why")), ["of"]).block


def test_look_behind_sees_released_text() -> None:
    """A whole-word phrase right after a released word character is not a match."""
    rules = Rules.from_phrases({"bad": ["gun"]})
    assert "shotgun [FILTERED]" == run_factory(Scan(rules), ["shot", "gun gun"]).text


def test_json_channel_replacements_keep_the_document_parseable() -> None:
    """A mask with quotes is escaped inside strings; a match outside one becomes a string."""
    rules = Rules.from_patterns({"vendor": r"Acme", "num": r"\b4242\b"})
    factory = Scan(rules, replace('the "other" vendor'))
    doc = '{"q": "Acme\\nAcme", "n": 4242, "Acme": [1]}'
    for chunks in (list(doc), [doc], [doc[:9], doc[9:30], doc[30:]]):
        out = run_factory(factory, chunks, channel=JSON_CHANNEL).text
        assert {
            "q": 'the "other" vendor\nthe "other" vendor',
            "n": 'the "other" vendor',
            'the "other" vendor': [1],
        } == json.loads(out)


def test_json_channel_leaves_escape_sequences_whole() -> None:
    """A match that would cut a JSON escape in half is not rewritten."""
    rules = Rules.from_patterns({"n": r"n\d"})
    out = run_factory(Scan(rules), ['{"a": "\\n1 n2"}'], channel=JSON_CHANNEL).text
    assert {"a": "\n1 [FILTERED]"} == json.loads(out)


def test_scanning_factories_declare_block_as_their_safe_overflow() -> None:
    """A half-seen match must not stream on after an overflow: block by default."""
    assert OverflowPolicy.BLOCK is Scan.safe_overflow


WORDS = st.lists(
    st.text(alphabet="ab ", min_size=1, max_size=6).filter(str.strip), min_size=1, max_size=4
)


@settings(max_examples=150, deadline=None)
@given(st.data(), WORDS, st.text(alphabet="ab c", max_size=30))
def test_any_overlapping_phrase_list_gives_the_whole_text_answer_under_any_chunking(
    data: st.DataObject, phrases: list[str], text: str
) -> None:
    """For random overlapping phrases and text, every split equals the plain whole-text scan."""
    rules = Rules.from_phrases({"p": phrases}, whole_words=data.draw(st.booleans()))
    decide = data.draw(st.sampled_from([MASK, FLAG, KEEP]))
    factory = Scan(rules, decide)
    chunks = data.draw(chunkings(text))
    run = run_factory(factory, chunks)
    assert reference(rules, text, decide) == run.text
    assert run.max_held <= factory.max_holdback


PATTERNS = st.lists(
    st.sampled_from(
        ["ab", "a.{0,3}b", "b", "a(?=bb)", "(?<!a)ba", "ab?c", "c{1,3}", "a b", r"\bab\b", r"c\Z"]
    ),
    min_size=1,
    max_size=4,
    unique=True,
)


@settings(max_examples=150, deadline=None)
@given(st.data(), PATTERNS, st.text(alphabet="abc ", max_size=30))
def test_any_overlapping_regex_alternatives_give_the_whole_text_answer(
    data: st.DataObject, patterns: list[str], text: str
) -> None:
    """Alternatives that overlap, look ahead or look behind: the split never matters."""
    rules = Rules.from_patterns({p: p for p in patterns})
    chunks = data.draw(chunkings(text))
    factory = Scan(rules)
    run = run_factory(factory, chunks)
    assert reference(rules, text, MASK) == run.text
    assert run.max_held <= factory.max_holdback


def test_scanning_stage_passes_the_compliance_kit() -> None:
    """Masking, flagging and blocking scans over overlapping rules keep the whole contract."""
    texts = ["you son of a gun", "of son of a gum of", "son of", "nothing", ""]
    for decide in (MASK, FLAG, BLOCK):
        assert_compliant(Scan(GUN, decide), texts, examples=30)


class Shouting(WindowFactory[StageConfig]):
    """Masks every sentence written in capitals; windows of at most 12 characters."""

    @property
    def window_chars(self) -> int:
        return 12

    async def on_window(self, window: Hit) -> Decision:
        return MASK if window.text.strip().isupper() else KEEP


def test_window_stage_judges_whole_sentences_and_blocks_instead_of_masking_json() -> None:
    """Sentences (or 12 characters) are judged whole; a JSON window cannot be rewritten."""
    factory = Shouting(StageConfig(type="shout"))
    run = run_factory(factory, ["Hi. STOP", " NOW. ok then, fine."])
    assert "Hi. [FILTERED]ok then, fine." == run.text
    assert [("window", "masked", 4, 14)] == [
        (f.rule, f.action, f.start, f.end) for f in run.findings
    ]
    json_run = run_factory(factory, ['{"A": "STOP."}'], JSON_CHANNEL)
    assert ("", "shout: window") == (json_run.text, json_run.block)
    assert_compliant(factory, ["Hi. STOP NOW. ok", "LOUD WORDS HERE AND MORE", ""], examples=10)
