"""Conformance of the SSE decoder/encoder with the WHATWG event-stream rules, in any chunking."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.sse import Comment, Event, SSEDecoder, SSEError, encode, encode_data

Item = Event | Comment

RECORDED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "recorded"

BOM = b"\xef\xbb\xbf"
GRIN = "\N{GRINNING FACE}".encode()  # four UTF-8 bytes

# (id, input bytes, expected items). Every case is checked fed whole, byte by byte, split
# into two reads at every point, and re-chunked at random.
CASES: list[tuple[str, bytes, list[Item]]] = [
    ("empty-stream", b"", []),
    ("lf", b"data: hello\n\n", [Event("hello")]),
    ("crlf", b"data: a\r\n\r\ndata: b\r\n\r\n", [Event("a"), Event("b")]),
    ("lone-cr", b"data: a\r\rdata: b\r\r", [Event("a"), Event("b")]),
    ("crlf-is-one-line-end", b"data: a\r\ndata: b\r\n\r\n", [Event("a\nb")]),
    ("mixed-line-ends", b"data: a\r\ndata: b\rdata: c\n\r\n", [Event("a\nb\nc")]),
    ("lf-cr-is-two-line-ends", b"data: a\n\rdata: b\n\n", [Event("a"), Event("b")]),
    ("blank-lines-only", b"\n\r\n\r\n\n", []),
    ("bom-skipped", BOM + b"data: a\n\n", [Event("a")]),
    ("second-bom-is-text", BOM + BOM + b"data: a\n\ndata: b\n\n", [Event("b")]),
    ("bom-later-is-data", BOM + b"data: " + BOM + b"x\n\n", [Event("\ufeffx")]),
    ("bom-after-first-line-is-text", b"data: a\n\n" + BOM + b"data: b\n\n", [Event("a")]),
    ("multi-line-data", b"data: a\ndata: b\ndata: c\n\n", [Event("a\nb\nc")]),
    ("data-no-space", b"data:x\n\n", [Event("x")]),
    ("data-two-spaces-one-stripped", b"data:  x\n\n", [Event(" x")]),
    ("trailing-spaces-kept", b"data: x  \n\n", [Event("x  ")]),
    ("colon-in-value", b"data: a: b\n\ndata::c\n\n", [Event("a: b"), Event(":c")]),
    ("empty-data-value", b"data:\n\n", [Event("")]),
    ("field-without-colon", b"data\n\n", [Event("")]),
    ("two-empty-data-lines", b"data\ndata\n\n", [Event("\n")]),
    ("names-case-sensitive", b"Data: x\nEVENT: y\n\n", []),
    ("leading-space-in-name", b" data: x\n\n", []),
    ("unknown-field-ignored", b"foo: bar\ndata: x\nfoo\n\n", [Event("x")]),
    ("comment", b": keep-alive\n\n", [Comment(" keep-alive")]),
    ("empty-comment", b":\n", [Comment("")]),
    ("comment-space-kept", b":  two\r\n", [Comment("  two")]),
    ("comment-inside-event", b"data: a\n:c\ndata: b\n\n", [Comment("c"), Event("a\nb")]),
    ("event-type", b"event: ping\ndata: {}\n\n", [Event("{}", event="ping")]),
    ("event-type-reset", b"event: x\ndata: 1\n\ndata: 2\n\n", [Event("1", "x"), Event("2")]),
    ("event-without-data-dropped", b"event: x\n\ndata: y\n\n", [Event("y")]),
    ("last-event-field-wins", b"event: a\nevent: b\ndata: x\n\n", [Event("x", "b")]),
    ("empty-event-is-message", b"event:\ndata: x\n\n", [Event("x")]),
    ("id", b"id: 7\ndata: a\n\n", [Event("a", id="7")]),
    ("id-per-event", b"id: 1\ndata: a\n\ndata: b\n\n", [Event("a", id="1"), Event("b")]),
    ("id-empty-value", b"id:\ndata: a\n\nid\ndata: b\n\n", [Event("a", id=""), Event("b", id="")]),
    ("id-with-nul-ignored", b"id: a\x00b\ndata: x\n\n", [Event("x")]),
    ("id-nul-keeps-earlier", b"id: 1\nid: 2\x00\ndata: x\n\n", [Event("x", id="1")]),
    ("id-only-not-dispatched", b"id: 3\n\ndata: x\n\n", [Event("x")]),
    ("retry", b"retry: 1500\ndata: x\n\n", [Event("x", retry=1500)]),
    ("retry-per-event", b"retry: 9\ndata: a\n\ndata: b\n\n", [Event("a", retry=9), Event("b")]),
    ("retry-letters", b"retry: 15a\ndata: x\n\n", [Event("x")]),
    ("retry-negative", b"retry: -1\ndata: x\n\n", [Event("x")]),
    ("retry-decimal", b"retry: 1.5\ndata: x\n\n", [Event("x")]),
    ("retry-empty", b"retry:\ndata: x\n\n", [Event("x")]),
    ("retry-extra-space", b"retry:  10\ndata: x\n\n", [Event("x")]),
    ("retry-non-ascii-digit", "retry: \u0663\ndata: x\n\n".encode(), [Event("x")]),
    ("retry-invalid-keeps-valid", b"retry: 5\nretry: x\ndata: x\n\n", [Event("x", retry=5)]),
    ("unterminated-event-discarded", b"data: a\n\ndata: b\n", [Event("a")]),
    ("unterminated-line-discarded", b"data: a\n\ndata: b", [Event("a")]),
    ("unterminated-comment-discarded", b": x", []),
    ("pending-cr-at-eof-ends-line", b"data: a\n\r", [Event("a")]),
    ("utf8-4-byte", b"data: " + GRIN + b"\n\n", [Event("\N{GRINNING FACE}")]),
    ("utf8-mixed", "data: é€\n\n".encode(), [Event("é€")]),
    ("invalid-bytes-replaced", b"data: \xff\xfe\n\n", [Event("\ufffd\ufffd")]),
    ("truncated-sequence-one-fffd", b"data: \xf0\x9f\x98x\n\n", [Event("\ufffdx")]),
    ("encoded-surrogate-replaced", b"data: \xed\xa0\x80\n\n", [Event("\ufffd" * 3)]),
    ("truncated-at-eof-discarded", b"data: a\n\ndata: \xf0\x9f", [Event("a")]),
    (
        "unicode-breaks-are-data",
        "data: a\u2028b\u0085c\x0bd\x0ce\x1cf\n\n".encode(),
        [Event("a\u2028b\u0085c\x0bd\x0ce\x1cf")],
    ),
    ("nul-in-data-kept", b"data: a\x00b\n\n", [Event("a\x00b")]),
    (
        "all-fields",
        b"event: e\r\nid: 1\r\nretry: 2\r\ndata: x\r\n\r\n",
        [Event("x", event="e", id="1", retry=2)],
    ),
]

CASE_IDS = [case[0] for case in CASES]


def split_bytes(raw: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``raw`` cut at the given offsets (sorted, deduplicated, clipped to the bytes)."""
    points = sorted({c for c in cuts if 0 < c < len(raw)})
    bounds = [0, *points, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


def decode(chunks: Sequence[bytes], max_event_bytes: int = 1_048_576) -> list[Item]:
    """Everything a fresh decoder yields for ``chunks`` fed in order, then closed."""
    decoder = SSEDecoder(max_event_bytes)
    items: list[Item] = []
    for chunk in chunks:
        items.extend(decoder.feed(chunk))
    items.extend(decoder.close())
    return items


def bytewise(raw: bytes) -> list[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=CASE_IDS)
def test_case_fed_whole(raw: bytes, expected: list[Item]) -> None:
    """The stream decoded from one read gives the expected items."""
    assert expected == decode([raw])


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=CASE_IDS)
def test_case_fed_byte_by_byte(raw: bytes, expected: list[Item]) -> None:
    """The stream decoded one byte per read gives the expected items."""
    assert expected == decode(bytewise(raw))


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=CASE_IDS)
def test_case_split_in_two_everywhere(raw: bytes, expected: list[Item]) -> None:
    """The stream split into two reads at any point gives the expected items."""
    for cut in range(1, len(raw)):
        assert expected == decode([raw[:cut], raw[cut:]]), f"split at {cut}"


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=CASE_IDS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_case_random_chunks(raw: bytes, expected: list[Item], data: st.DataObject) -> None:
    """The stream re-chunked at random points, including empty reads, gives the expected items."""
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(raw)), max_size=len(raw)))
    chunks = split_bytes(raw, cuts)
    chunks.insert(data.draw(st.integers(min_value=0, max_value=len(chunks))), b"")
    assert expected == decode(chunks)


def test_items_come_out_as_soon_as_their_line_ends() -> None:
    """Each read returns exactly the items its bytes completed, without waiting for more."""
    decoder = SSEDecoder()
    assert not decoder.feed(b"data: a\n")
    assert [Comment("x"), Event("a")] == decoder.feed(b":x\n\ndata: b")
    assert not decoder.feed(b"\n")
    assert [Event("b")] == decoder.feed(b"\n")


def test_cr_at_end_of_read_dispatches_without_waiting() -> None:
    """A blank line ended by CR dispatches in that read; an LF opening the next is skipped."""
    decoder = SSEDecoder()
    assert [Event("a")] == decoder.feed(b"data: a\r\r")
    assert not decoder.feed(b"\ndata: b\r")
    assert not decoder.feed(b"\n")
    assert [Event("b")] == decoder.feed(b"\r\n")


def test_crlf_split_across_reads_is_one_line_end() -> None:
    """CR at the end of a read followed by LF in the next is one line end, not a blank line."""
    decoder = SSEDecoder()
    assert not decoder.feed(b"data: a\r")
    assert not decoder.feed(b"\ndata: b\r")
    assert [Event("a\nb")] == decoder.feed(b"\n\r\n")


def test_lf_skip_survives_reads_that_decode_to_nothing() -> None:
    """A read holding only part of a UTF-8 sequence does not cancel the pending CRLF check."""
    decoder = SSEDecoder()
    assert not decoder.feed(b"data: a\r")
    assert not decoder.feed(b"")
    assert not decoder.feed(b"\n")
    assert [Event("a")] == decoder.feed(b"\n")


def test_bom_split_across_reads_is_skipped() -> None:
    """A BOM whose bytes arrive in separate reads is still skipped."""
    assert [Event("a")] == decode([b"\xef", b"\xbb", b"\xbfdata: a\n\n"])


@pytest.mark.parametrize("cut", range(1, 5))
def test_four_byte_character_split_at_every_position(cut: int) -> None:
    """A 4-byte UTF-8 character split inside its sequence decodes to the one character."""
    payload = b"data: <" + GRIN + b">\n\n"
    at = payload.index(GRIN) + cut
    assert [Event("<\N{GRINNING FACE}>")] == decode([payload[:at], payload[at:]])
    assert [Event("<\N{GRINNING FACE}>")] == decode(
        [payload[: at - 1], payload[at - 1 : at], payload[at:]]
    )


def test_last_event_id_is_the_buffer() -> None:
    """last_event_id tracks the latest valid id line, even in a block that dispatches nothing."""
    decoder = SSEDecoder()
    seen = [decoder.last_event_id]
    for raw in (b"id: 1\ndata: a\n\ndata: b\n\n", b"id: 2\n", b"\nid: 3\x00\n\n", b"id\n\n"):
        decoder.feed(raw)
        seen.append(decoder.last_event_id)
    expected = ["", "1", "2", "2", ""]
    assert expected == seen


def test_close_discards_pending_event() -> None:
    """close() yields nothing for an unfinished event and leaves no pending data behind."""
    decoder = SSEDecoder()
    assert not decoder.feed(b"event: x\nid: 9\ndata: partial\ndata: li")
    assert not decoder.close()
    assert [Event("next")] == decoder.feed(b"data: next\n\n")


def test_oversized_event_raises_with_limit() -> None:
    """An event whose lines exceed max_event_bytes raises SSEError naming the limit."""
    raw = b"data: 0123456789\n\n"  # 16 bytes of line + 1 line end
    for chunks in ([raw], bytewise(raw), [raw[:9], raw[9:]]):
        with pytest.raises(SSEError, match="max_event_bytes=16"):
            decode(chunks, max_event_bytes=16)


def test_event_at_the_limit_passes() -> None:
    """An event exactly at max_event_bytes is dispatched."""
    raw = b"data: 0123456789\n\n"
    assert [Event("0123456789")] == decode([raw], max_event_bytes=17)
    assert [Event("0123456789")] == decode(bytewise(raw), max_event_bytes=17)


def test_bound_counts_every_line_of_one_event() -> None:
    """The bound applies to the sum of an event's lines, not to each line alone."""
    with pytest.raises(SSEError):
        decode([b"data: 123\n" * 3 + b"\n"], max_event_bytes=25)


def test_bound_counts_utf8_bytes() -> None:
    """Multi-byte characters count by their UTF-8 size."""
    raw = b"data: " + GRIN * 3 + b"\n\n"  # 18 bytes + 1, but only 9 characters + 1
    with pytest.raises(SSEError):
        decode([raw], max_event_bytes=18)
    assert [Event("\N{GRINNING FACE}" * 3)] == decode([raw], max_event_bytes=19)


def test_bound_resets_at_each_blank_line() -> None:
    """Many events each within the bound pass, however large the stream."""
    raw = b"data: 0123456789\n\n" * 1000
    assert [Event("0123456789")] * 1000 == decode([raw], max_event_bytes=17)


def test_endless_line_raises_once_past_the_bound() -> None:
    """A line that never ends raises at the first byte past the bound, not at its end."""
    decoder = SSEDecoder(max_event_bytes=4096)
    for _ in range(4):
        assert not decoder.feed(b"x" * 1024)
    with pytest.raises(SSEError, match="4096"):
        decoder.feed(b"x")


def test_decoder_stays_failed_after_overflow() -> None:
    """After an overflow every feed raises, so no half-read event can come out later."""
    decoder = SSEDecoder(max_event_bytes=8)
    with pytest.raises(SSEError):
        decoder.feed(b"data: 0123456789")
    with pytest.raises(SSEError):
        decoder.feed(b"\n\ndata: ok\n\n")
    assert not decoder.close()


def test_max_event_bytes_must_be_positive() -> None:
    """A zero bound is a configuration error, not a decoder that rejects everything."""
    with pytest.raises(ValueError, match="max_event_bytes"):
        SSEDecoder(0)


def test_encode_event_with_all_fields() -> None:
    """An event encodes as one line per field, data split per line, then a blank line."""
    expected = b"event: delta\nid: 42\nretry: 3000\ndata: a\ndata: b\n\n"
    assert expected == encode(Event("a\nb", event="delta", id="42", retry=3000))


def test_encode_plain_event() -> None:
    """A data-only event writes no event, id or retry lines."""
    expected = [b"data: x\n\n", b"data: \n\n"]
    assert expected == [encode(Event("x")), encode(Event(""))]


def test_encode_empty_id() -> None:
    """An empty id (a reset) is written as a field, unlike a missing id."""
    expected = b"id: \ndata: x\n\n"
    assert expected == encode(Event("x", id=""))


def test_encode_comment() -> None:
    """A comment is a colon, its text as-is, and a line end."""
    expected = b": ping\n"
    assert expected == encode(Comment(" ping"))


def test_encode_data_matches_encode() -> None:
    """The fast path writes the same bytes as encoding the equivalent Event."""
    assert encode(Event("a\n\nb", "x")) == encode_data("a\n\nb", "x")
    assert encode(Event("[DONE]")) == encode_data("[DONE]")


def test_encode_turns_cr_in_data_into_line_breaks() -> None:
    """CR and CRLF in data become separate data lines instead of breaking the field."""
    expected = b"data: a\ndata: b\ndata: c\n\n"
    assert expected == encode_data("a\rb\r\nc")


@pytest.mark.parametrize(
    "item",
    [
        Event("x", event="a\nb"),
        Event("x", event="a\rb"),
        Event("x", id="1\n"),
        Event("x", id="1\x00"),
        Event("x", retry=-1),
        Comment("a\nb"),
    ],
)
def test_encode_rejects_values_that_would_corrupt_the_stream(item: Item) -> None:
    """Values that cannot be written into their field raise instead of injecting lines."""
    with pytest.raises(ValueError, match="SSE"):
        encode(item)


def test_encode_data_rejects_multiline_event() -> None:
    """The fast path refuses an event type that would inject extra fields."""
    with pytest.raises(ValueError, match="event"):
        encode_data("x", "a\ndata: injected")


def text_without(excluded: str) -> st.SearchStrategy[str]:
    """Any text that UTF-8 can carry (no lone surrogates) except the ``excluded`` characters."""
    return st.text(alphabet=st.characters(codec="utf-8", exclude_characters=excluded))


no_line_end = text_without("\r\n")
events = st.builds(
    Event,
    data=text_without("\r"),
    event=no_line_end,
    id=st.none() | text_without("\r\n\x00"),
    retry=st.none() | st.integers(min_value=0, max_value=2**53),
)
comments = st.builds(Comment, text=no_line_end)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(events | comments, max_size=6), data=st.data())
def test_encode_decode_round_trip(items: list[Item], data: st.DataObject) -> None:
    """Encoded items decode back to themselves, however the bytes are chunked."""
    raw = b"".join(encode(item) for item in items)
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=max(1, len(raw))), max_size=20))
    assert items == decode(split_bytes(raw, cuts))


@pytest.fixture(scope="module")
def recorded() -> dict[str, bytes]:
    """The recorded upstream streams by relative path."""
    if not RECORDED.is_dir():
        pytest.skip(f"recorded upstream fixtures not found at {RECORDED}")
    streams = {p.relative_to(RECORDED).as_posix(): p.read_bytes() for p in RECORDED.glob("*/*.sse")}
    assert streams, f"no *.sse files under {RECORDED}"
    return dict(sorted(streams.items()))


def test_recorded_streams_decode_to_json_or_done(recorded: dict[str, bytes]) -> None:
    """Every event of every recorded stream carries JSON data or the [DONE] sentinel."""
    for name, raw in recorded.items():
        events = decode([raw])
        assert events, name
        for item in events:
            assert isinstance(item, Event), name
            if item.data != "[DONE]":
                json.loads(item.data)


def test_recorded_streams_byte_by_byte(recorded: dict[str, bytes]) -> None:
    """Every recorded stream decodes the same fed one byte per read as fed whole."""
    for name, raw in recorded.items():
        assert decode([raw]) == decode(bytewise(raw)), name


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_recorded_streams_random_chunks(recorded: dict[str, bytes], data: st.DataObject) -> None:
    """Every recorded stream decodes the same re-chunked at random as fed whole."""
    name = data.draw(st.sampled_from(sorted(recorded)))
    raw = recorded[name]
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=len(raw) - 1), max_size=200))
    assert decode([raw]) == decode(split_bytes(raw, cuts)), name


def test_recorded_unterminated_final_event_is_dropped(recorded: dict[str, bytes]) -> None:
    """A recording that ends without the final blank line loses that last event, per spec."""
    for name, raw in recorded.items():
        expected_extra = 0 if raw.endswith(b"\n\n") else 1
        assert len(decode([raw])) + expected_extra == len(decode([raw + b"\n\n"])), name
