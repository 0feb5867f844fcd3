"""Tests of the redact stage: styles, allow-lists, custom detectors, JSON safety, private
key suppression, overflow, hold-back and chunk invariance."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from filters.redact import Numbering, RedactConfig, RedactFactory, ReplacementStyle
from pipeline.stage import Channel, ChannelEnd, Finding, Stage
from pipeline.testing import (
    JSON_CHANNEL,
    TEXT_CHANNEL,
    StageRun,
    assert_compliant,
    chunkings,
    run_factory,
    run_stage,
)
from tests.test_redact_corpus import Sample, samples

PROSE = (
    "The quick brown fox jumps over the lazy dog. Streaming proxies filter text as it "
    "flows, and most of it is ordinary prose like this sentence, with commas, semicolons; "
    "questions? exclamations! (parentheses) and 42 numbers here and there.\n"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "c3RyZWFtc2lldmUgdGVzdCBmaXh0dXJlLCBub3QgYSBrZXk6IDAxMjM0NTY3ODk6\n"
    "Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlq\n"
    "-----END RSA PRIVATE KEY-----"
)
DEFAULT = RedactFactory(RedactConfig())


def redact(text: str | list[str], channel: Channel = TEXT_CHANNEL, **options: Any) -> StageRun:
    """Run ``text`` (or these chunks) through a stage built from ``options``."""
    factory = RedactFactory(RedactConfig(**options)) if options else DEFAULT
    return run_factory(factory, [text] if isinstance(text, str) else text, channel)


def spans(run: StageRun) -> list[tuple[str, int, int]]:
    """The findings as (rule, start, end)."""
    return [(f.rule, f.start, f.end) for f in run.findings]


def b64json(value: object) -> str:
    """``value`` as compact JSON in base64url without padding, as in a JWT."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(payload: dict[str, Any], signature_length: int = 43) -> str:
    """A well-formed JWT with a made-up signature of the given length."""
    signature = ("abcDEF123_-" * 40)[:signature_length]
    return f"{b64json({'alg': 'RS256', 'typ': 'JWT'})}.{b64json(payload)}.{signature}"


# --- replacement styles -----------------------------------------------------------------


def test_typed_is_the_default_style() -> None:
    """Without options a match becomes its detector's label in brackets."""
    run = redact("Mail jane@example.com or call 415-555-0123.")
    assert "Mail [EMAIL] or call [PHONE]." == run.text
    assert [("email", 5, 21), ("phone", 30, 42)] == spans(run)
    assert all(f.action == "redacted" for f in run.findings)


def test_mask_style_uses_the_configured_text() -> None:
    """The mask style writes one fixed text whatever the detector."""
    assert "[REDACTED] [REDACTED]" == redact("a@example.com 10.0.0.1", replacement="mask").text
    assert "<gone>" == redact("a@example.com", replacement="mask", mask_text="<gone>").text


def test_numbered_style_gives_a_repeated_value_its_number_again() -> None:
    """Numbers count distinct values per label, in order of first appearance."""
    run = redact("a@example.com b@example.com a@example.com 10.0.0.1", replacement="numbered")
    assert "[EMAIL_1] [EMAIL_2] [EMAIL_1] [IPV4_1]" == run.text


def test_numbering_is_per_channel_unless_shared() -> None:
    """Each opened stage numbers on its own; one Numbering passed to several shares it."""
    factory = RedactFactory(RedactConfig(replacement=ReplacementStyle.NUMBERED))
    second = Channel(key="choice1.content")
    alone = [run_stage(factory.open(c), ["b@example.com"]).text for c in (TEXT_CHANNEL, second)]
    assert ["[EMAIL_1]", "[EMAIL_1]"] == alone
    numbering = Numbering()
    first = run_stage(factory.open(TEXT_CHANNEL, numbering), ["a@example.com"]).text
    other = run_stage(factory.open(second, numbering), ["b@example.com a@example.com"]).text
    assert ("[EMAIL_1]", "[EMAIL_2] [EMAIL_1]") == (first, other)


def test_hash_style_is_a_keyed_hmac(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hash style shows a truncated HMAC-SHA256 of the value under the configured key."""
    monkeypatch.setenv("TEST_REDACT_KEY", "s3cret")
    digest = hmac.new(b"s3cret", b"jane@example.com", hashlib.sha256).hexdigest()
    options: dict[str, Any] = {"replacement": "hash", "hash_key_env": "TEST_REDACT_KEY"}
    assert f"[EMAIL:{digest[:8]}]" == redact("jane@example.com", **options).text
    assert f"[EMAIL:{digest[:12]}]" == redact("jane@example.com", hash_length=12, **options).text


def test_hash_style_needs_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing without a key env var is a config error; an unset variable fails at build."""
    with pytest.raises(ValidationError, match="hash_key_env"):
        RedactConfig(replacement=ReplacementStyle.HASH)
    monkeypatch.delenv("TEST_REDACT_KEY", raising=False)
    config = RedactConfig(styles={"email": ReplacementStyle.HASH}, hash_key_env="TEST_REDACT_KEY")
    with pytest.raises(ValueError, match="TEST_REDACT_KEY"):
        RedactFactory(config)


def test_partial_style_keeps_the_last_four() -> None:
    """The partial style keeps the last four characters, ignoring spaces and dashes."""
    run = redact("4111 1111 1111 1111 and 123-45-6789", replacement="partial")
    assert "[CARD ****1111] and [SSN ****6789]" == run.text


def test_partial_style_hides_short_values_entirely() -> None:
    """A value under eight characters shows no characters at all."""
    custom = [{"name": "pin", "pattern": "PIN[0-9]{4}"}]
    assert "[PIN ****]" == redact("PIN1234", custom=custom, replacement="partial").text


def test_style_can_differ_per_detector() -> None:
    """``styles`` overrides the default style for the detectors it names."""
    run = redact("4111111111111111 jane@example.com", styles={"card": "partial"})
    assert "[CARD ****1111] [EMAIL]" == run.text


def test_private_key_takes_typed_for_value_styles() -> None:
    """A private key's placeholder precedes its body, so value-based styles fall back."""
    assert "[PRIVATE_KEY]" == redact(PEM, styles={"private_key": "numbered"}).text
    assert "[REDACTED]" == redact(PEM, styles={"private_key": "mask"}).text


# --- allow-lists, detector choice, custom detectors -------------------------------------


def test_allowed_values_are_never_redacted() -> None:
    """An exact value in ``allow`` stays, other values of the same kind do not."""
    run = redact("support@example.com jane@example.com", allow=["support@example.com"])
    assert "support@example.com [EMAIL]" == run.text


def test_allow_patterns_match_whole_values() -> None:
    """A value that an ``allow_patterns`` regex matches entirely stays."""
    run = redact(
        "jane@example.org jane@example.com 10.1.2.3 192.0.2.1",
        allow_patterns=[r".*@example\.org", r"10\..*"],
    )
    assert "jane@example.org [EMAIL] 10.1.2.3 [IPV4]" == run.text


def test_only_listed_detectors_run() -> None:
    """``detectors`` enables just the named built-ins."""
    run = redact("jane@example.com 415-555-0123", detectors=["phone"])
    assert "jane@example.com [PHONE]" == run.text


def test_custom_detector_redacts_with_its_name() -> None:
    """A custom pattern gets the upper-cased name as label and its name as rule."""
    run = redact("badge EMP-123456 ok", custom=[{"name": "employee_id", "pattern": "EMP-[0-9]{6}"}])
    assert "badge [EMPLOYEE_ID] ok" == run.text
    assert [("employee_id", 6, 16)] == spans(run)


def test_custom_detector_validator_turns_lookalikes_away() -> None:
    """A custom detector naming ``luhn`` redacts only Luhn-valid values."""
    custom = [{"name": "account", "pattern": "ACC-[0-9]{8}", "validator": "luhn"}]
    assert "[ACCOUNT] ACC-10000009" == redact("ACC-10000008 ACC-10000009", custom=custom).text


def test_custom_detector_label_and_style() -> None:
    """A custom detector may set its own label and replacement style."""
    custom = [
        {
            "name": "ticket",
            "pattern": "TCK[0-9]{3}",
            "label": "TICKET_ID",
            "replacement": "numbered",
        }
    ]
    assert "[TICKET_ID_1] [TICKET_ID_1]" == redact("TCK001 TCK001", custom=custom).text


def test_custom_detector_wins_a_tie_with_a_builtin() -> None:
    """A custom detector matching the same span as a built-in one takes it."""
    custom = [{"name": "staff_email", "pattern": r"[a-z]+@corp\.example\.com"}]
    run = redact("jane@corp.example.com bob@example.com", custom=custom)
    assert "[STAFF_EMAIL] [EMAIL]" == run.text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"detectors": ["emails"]}, "unknown detectors"),
        ({"custom": [{"name": "x", "pattern": "x", "validator": "crc"}]}, "unknown validator"),
        ({"custom": [{"name": "x", "pattern": "(unclosed"}]}, "not a valid regular"),
        ({"custom": [{"name": "email", "pattern": "x"}]}, "unique and new"),
        ({"custom": [{"name": "x", "pattern": "x"}, {"name": "x", "pattern": "y"}]}, "unique"),
        ({"styles": {"nope": "mask"}}, "unknown detectors"),
        ({"mask_text": 'say "no"'}, "quotes"),
        ({"mask": "back\\slash"}, "quotes"),
        ({"allow_patterns": ["[a-"]}, "not a valid regular"),
        ({"max_holdback_chars": 0}, "at least 1"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_bad_config_is_rejected(options: dict[str, Any], message: str) -> None:
    """Config mistakes fail validation with a message naming the problem."""
    with pytest.raises(ValidationError, match=message):
        RedactConfig(**options)


def test_factory_declares_its_bound() -> None:
    """``max_holdback`` is 256 by default and ``max_holdback_chars`` when set."""
    assert 256 == DEFAULT.max_holdback
    assert 64 == RedactFactory(RedactConfig(max_holdback_chars=64)).max_holdback


def test_opened_stage_implements_the_protocol() -> None:
    """``open`` returns a sync Stage that starts holding nothing."""
    stage = DEFAULT.open(TEXT_CHANNEL)
    assert isinstance(stage, Stage)
    assert 0 == stage.held


# --- JSON channels ----------------------------------------------------------------------


def test_json_string_value_is_redacted_in_place() -> None:
    """Inside a JSON string only the value is replaced; quotes and braces stay."""
    run = redact('{"email":"jane@example.com"}', JSON_CHANNEL)
    assert '{"email":"[EMAIL]"}' == run.text


def test_json_number_gets_a_quoted_placeholder() -> None:
    """A card written as a JSON number becomes a JSON string, so the document parses;
    the integer part of a decimal is not a card."""
    run = redact('{"card": 4111111111111111, "x": 4111111111111111.5}', JSON_CHANNEL)
    assert '{"card": "[CARD]", "x": 4111111111111111.5}' == run.text


def test_json_escape_counts_as_a_boundary() -> None:
    """A value right after ``\\n`` or ``\\u003c`` is found and the escape is kept."""
    document = json.dumps({"t": "Mail:\njane@example.com\t<bob@example.com>"})
    assert "\\u003c" not in document
    html_safe = document.replace("<", "\\u003c").replace(">", "\\u003e")
    for text in (document, html_safe):
        assert {"t": "Mail:\n[EMAIL]\t<[EMAIL]>"} == json.loads(redact(text, JSON_CHANNEL).text)


def test_json_escaped_backslash_leaves_a_literal_letter() -> None:
    """After an escaped backslash the ``n`` is a letter, so it belongs to the address."""
    document = json.dumps({"path": "C:\\njane@example.com"})
    assert {"path": "C:\\[EMAIL]"} == json.loads(redact(document, JSON_CHANNEL).text)


def test_json_private_key_with_escaped_newlines() -> None:
    """In JSON a PEM block's newlines are ``\\n`` escapes; the block still goes."""
    document = json.dumps({"key": PEM + "\n", "mode": "0600"})
    run = redact(document, JSON_CHANNEL)
    assert {"key": "[PRIVATE_KEY]\n", "mode": "0600"} == json.loads(run.text)
    start = document.index("-----BEGIN")
    assert [("private_key", start, start + len(json.dumps(PEM)) - 2)] == spans(run)


def test_json_private_key_without_end_stops_at_the_string_end() -> None:
    """Without an END line, dropping stops at the closing quote: the JSON survives."""
    document = json.dumps({"key": PEM.split("-----END")[0], "next": "jane@example.com"})
    run = redact(document, JSON_CHANNEL)
    assert {"key": "[PRIVATE_KEY]", "next": "[EMAIL]"} == json.loads(run.text)
    assert ("private_key", 9, document.index('", "next"')) == spans(run)[0]


# --- private keys -----------------------------------------------------------------------


def test_private_key_placeholder_goes_out_with_the_begin_line() -> None:
    """The placeholder is released as soon as the BEGIN line is complete, and the body is
    dropped while it streams: nothing of it is held."""
    lines = PEM.split("\n")
    chunks = ["Key:\n", lines[0], "\n", *(line + "\n" for line in lines[1:-1]), lines[-1], "\nok"]
    stage = DEFAULT.open(TEXT_CHANNEL)
    releases, held = [], []
    for chunk in chunks:
        releases.append(stage.feed(chunk))
        held.append(stage.held)
    releases.append(stage.finish(ChannelEnd.COMPLETE))
    assert ["Key:\n", "[PRIVATE_KEY]"] == [r.text for r in releases[:2]]
    assert [0] * (len(chunks) - 2) == held[1:-1]
    assert "Key:\n[PRIVATE_KEY]\nok" == "".join(r.text for r in releases)
    found = [f for r in releases for f in r.findings]
    assert [Finding("private_key", "redacted", 5, 5 + len(PEM))] == found


def test_private_key_finding_spans_the_whole_block() -> None:
    """The finding covers BEGIN to END, and text after END is released."""
    run = redact(["Key:\n", PEM[:40], PEM[40:], "\nDone."])
    assert "Key:\n[PRIVATE_KEY]\nDone." == run.text
    assert [("private_key", 5, 5 + len(PEM))] == spans(run)


def test_private_key_without_end_is_dropped_at_finish() -> None:
    """A block that never ends is dropped entirely, never released."""
    text = "Here: " + PEM.split("-----END")[0] + "and more text jane@example.com"
    run = redact(text)
    assert "Here: [PRIVATE_KEY]" == run.text
    assert [("private_key", 6, len(text))] == spans(run)
    assert 0 == run.held_after_finish


def test_public_key_block_is_left_alone() -> None:
    """Only private key blocks are redacted."""
    text = "-----BEGIN PUBLIC KEY-----\ncHVibGljIGtleSBmaXh0dXJl\n-----END PUBLIC KEY-----"
    assert text == redact(text).text


# --- JWTs and overflow ------------------------------------------------------------------


def test_jwt_signature_is_dropped_as_it_streams() -> None:
    """A JWT is committed on ``header.payload.``; its long signature is never held."""
    token = jwt({"sub": "user-42", "aud": "api"}, signature_length=342)
    assert len(token) > DEFAULT.max_holdback
    text = f"Bearer {token} ok"
    run = redact([text[i : i + 10] for i in range(0, len(text), 10)])
    assert "Bearer [JWT] ok" == run.text
    assert [("jwt", 7, 7 + len(token))] == spans(run)
    header_and_payload = token.rindex(".") + 1
    assert header_and_payload + 10 >= run.max_held


def test_overflow_masks_a_candidate_longer_than_the_bound() -> None:
    """A JWT whose header and payload exceed the bound is masked under rule ``overflow``,
    with the rest of the token dropped."""
    token = jwt({"sub": "user-7", "groups": [f"group-{i}" for i in range(20)]}, 342)
    text = f"token {token} end"
    assert token.rindex(".") > 256
    run = redact(list(text))
    assert "token [FILTERED] end" == run.text
    assert [("overflow", 6, 6 + len(token))] == spans(run)
    assert 256 >= run.max_held


def test_overflow_with_a_small_bound_is_chunk_invariant() -> None:
    """With a 16-character bound, long candidates overflow the same way for any split."""
    text = "mail jane.doe.long.name@example.com or card 4111 1111 1111 1111, ssn 123-45-6789."
    whole = redact(text, max_holdback_chars=16)
    assert "mail [FILTERED] or card [FILTERED], ssn [SSN]." == whole.text
    assert ["overflow", "overflow", "ssn"] == [f.rule for f in whole.findings]
    chars = redact(list(text), max_holdback_chars=16)
    assert (whole.text, spans(whole)) == (chars.text, spans(chars))
    assert 16 >= chars.max_held


# --- hold-back ----------------------------------------------------------------------------


def test_prose_fed_up_to_whitespace_holds_nothing() -> None:
    """Ordinary prose whose feeds end in whitespace is released at once, all of it."""
    stage = DEFAULT.open(TEXT_CHANNEL)
    released = []
    for chunk in re.findall(r"\S+\s+", PROSE):
        released.append(stage.feed(chunk).text)
        assert 0 == stage.held
    assert PROSE == "".join(released)


def test_trailing_word_is_held_while_it_could_start_a_secret() -> None:
    """A feed ending mid-word holds that word (it may be an address's local part); the
    next character that rules it out releases it."""
    stage = DEFAULT.open(TEXT_CHANNEL)
    assert "Contact " == stage.feed("Contact john").text
    assert 4 == stage.held
    assert "john, " == stage.feed(", ").text
    assert 0 == stage.held


def test_address_split_across_feeds_is_redacted() -> None:
    """``john@exa`` + ``mple.com`` is one address; no release shows any part of it."""
    run = redact(["Mail john@exa", "mple.com today"])
    assert "Mail [EMAIL] today" == run.text
    assert not any("john" in r or "exa" in r for r in run.releases)


def test_match_touching_the_end_waits_for_more() -> None:
    """``a@b.co`` may still become ``a@b.com``, so it is held until it cannot grow."""
    stage = DEFAULT.open(TEXT_CHANNEL)
    assert "" == stage.feed("a@b.co").text
    release = stage.feed("m and ")
    assert "[EMAIL] and " == release.text
    assert (Finding("email", "redacted", 0, 7),) == release.findings


def test_unfinished_candidate_is_plain_text_at_finish() -> None:
    """A partial candidate that never completed is released unchanged at the end."""
    run = redact(["call 415-555", "-01"])
    assert ("call 415-555-01", []) == (run.text, spans(run))


def test_finding_offsets_count_the_whole_channel() -> None:
    """Offsets are in the channel's input, across feeds."""
    run = redact(["Hi ", "jane@example.com", " and 10.0.0.1 bye"])
    assert [("email", 3, 19), ("ipv4", 24, 32)] == spans(run)


@pytest.mark.parametrize("channel", [TEXT_CHANNEL, JSON_CHANNEL])
def test_stage_passes_the_compliance_kit(channel: Channel) -> None:
    """The stage keeps the stage contract (chunking, bound, finish, isolation)."""
    texts = [
        "Mail jane@example.com, card 4111 1111 1111 1111, call +44 20 7946 0958.",
        f"key {PEM}\nthen 10.0.0.1 and 2001:db8::1",
        "plain words, a@b.co, 415-555 and sk-",
    ]
    if channel is JSON_CHANNEL:
        texts = [json.dumps({"t": t, "n": 4111111111111111}) for t in texts]
    assert_compliant(DEFAULT, texts, channel, examples=10)


# --- any chunking ---------------------------------------------------------------------------


def _assert_same_and_sealed(factory: RedactFactory, sample: Sample, chunks: list[str]) -> None:
    """Fed as ``chunks``, ``sample`` gives its whole-text output and findings, leaks
    nothing in any release, keeps the bound, and (JSON) still parses."""
    whole = run_factory(factory, [sample.text], sample.channel)
    run = run_factory(factory, chunks, sample.channel)
    assert (whole.text, spans(whole)) == (run.text, spans(run))
    assert set() == sample.leaks(run.text)
    assert all(not sample.leaks(release) for release in run.releases)
    assert factory.max_holdback >= run.max_held
    assert 0 == run.held_after_finish
    if sample.channel is JSON_CHANNEL:
        json.loads(run.text)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), sample=st.sampled_from(samples()))
def test_any_chunking_of_a_corpus_text_gives_the_whole_text_output(
    data: st.DataObject, sample: Sample
) -> None:
    """For any split, the output and findings equal the whole text's, no part of a secret
    is released, and the hold-back bound holds."""
    _assert_same_and_sealed(DEFAULT, sample, data.draw(chunkings(sample.text)))


STYLED = [
    RedactFactory(RedactConfig(replacement=ReplacementStyle.NUMBERED)),
    RedactFactory(RedactConfig(replacement=ReplacementStyle.PARTIAL, max_holdback_chars=48)),
]
DOCUMENTS = [s for s in samples() if "." not in s.name]  # values are named detector.kindN.tN


@settings(max_examples=100, deadline=None)
@given(data=st.data(), sample=st.sampled_from(DOCUMENTS), factory=st.sampled_from(STYLED))
def test_any_chunking_of_a_document_is_invariant_for_other_styles(
    data: st.DataObject, sample: Sample, factory: RedactFactory
) -> None:
    """Numbered placeholders, a tight bound and overflow are split-invariant too."""
    _assert_same_and_sealed(factory, sample, data.draw(chunkings(sample.text)))


def test_one_character_feeds_match_the_whole_text_for_every_sample() -> None:
    """The hardest split, one character per feed, changes nothing on any corpus text, and
    JSON texts still parse."""
    for sample in samples():
        _assert_same_and_sealed(DEFAULT, sample, list(sample.text))


def test_unicode_text_passes_through() -> None:
    """Non-ASCII letters and digits are neither matched nor damaged; fullwidth digits are
    digits to the normalised view (issue 13), and raw text only without it."""
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in "415-555-0123")
    text = f"Grüße, ١٢٣٤٥٦٧٨٩٠١٢٣٤ und José — 电话 {fullwidth}."
    assert text == redact(list(text), normalise=False).text
    assert text.replace(fullwidth, "[PHONE]") == redact(list(text)).text


# --- the normalised view (issue 13) -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call 415\u2011555\u20110123 now", "call [PHONE] now"),  # non-breaking hyphens
        ("card 4242\u20124242\u20124242\u20124242.", "card [CARD]."),  # figure dashes
        ("me\u2014415-555-0123", "me\u2014[PHONE]"),  # an em dash separates words
        ("x +1 415\u2060 555 0123 y", "x [PHONE] y"),  # word joiner
        ("id \U0001d7d2\U0001d7d0\U0001d7d2\U0001d7d0 4242 4242 4242 ok", "id [CARD] ok"),
        ("pay 4242\u00a04242\u00a04242\u00a04242", "pay [CARD]"),  # no-break spaces
        ("4242 4242 \n4242 4242 end", "[CARD] end"),  # wrapped, a space before the break
        ("mail \uff4a\uff41\uff4e\uff45\uff20example.com!", "mail [EMAIL]!"),
    ],
)
def test_evasions_are_seen_through_for_every_cut(text: str, expected: str) -> None:
    """Format characters, compatibility forms, dashes and a line break inside a value do
    not hide it, whichever pieces it arrives in; the original characters are replaced."""
    for cut in range(1, len(text)):
        assert expected == redact([text[:cut], text[cut:]]).text
    assert expected == redact(list(text)).text


def test_json_escapes_are_decoded_and_the_escaped_span_replaced() -> None:
    """``\\u0040`` in tool-call arguments is an ``@``; the escape goes with the value and
    the document still parses."""
    source = '{"to": "jane\\u0040example.com", "n": "4242\\u00204242\\u00204242\\u00204242"}'
    run = redact(list(source), JSON_CHANNEL)
    assert {"to": "[EMAIL]", "n": "[CARD]"} == json.loads(run.text)
    card = source.index("4242")
    assert [("email", 8, 29), ("card", card, card + 4 * 4 + 3 * 6)] == spans(run)


def test_normalise_false_reads_the_raw_text() -> None:
    """Without the view a zero-width space hides an address, as before issue 13."""
    text = "mail jane\u200b@example.com now"
    assert text == redact(text, normalise=False).text
    assert "mail [EMAIL] now" == redact(text).text


def test_phone_regions_decide_national_formats() -> None:
    """A national number is recognised for the configured regions only; international
    forms for every country."""
    text = "Ruf 030 123456 an, or +49 30 123456."
    assert "Ruf [PHONE] an, or [PHONE]." == redact(text).text
    assert "Ruf 030 123456 an, or [PHONE]." == redact(text, phone_regions=["US"]).text


def test_unknown_phone_region_is_rejected() -> None:
    """A region code phonenumbers does not know is a config error."""
    with pytest.raises(ValidationError, match="unknown phone regions"):
        RedactConfig(phone_regions=("XX",))


def test_exact_key_formats_fail_closed_but_all_x_placeholders_pass() -> None:
    """``AKIA`` + 16 identical letters is redacted (detect-secrets reports it); the
    conventional all-x placeholder is not; ``allow`` lets a real value through."""
    assert "[AWS_ACCESS_KEY]" == redact("AKIAZZZZZZZZZZZZZZZZ").text
    assert "AKIAXXXXXXXXXXXXXXXX" == redact("AKIAXXXXXXXXXXXXXXXX").text
    assert (
        "AKIAZZZZZZZZZZZZZZZZ"
        == redact("AKIAZZZZZZZZZZZZZZZZ", allow=["AKIAZZZZZZZZZZZZZZZZ"]).text
    )
