"""Content-Encoding decoding: any split of the compressed bytes decodes to the original."""

from __future__ import annotations

import gzip
import itertools
import zlib

import brotli  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.decoding import (
    CHUNK,
    BodyKind,
    DecodeError,
    UnsupportedEncodingError,
    body_kind,
    decoder,
)


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


PACKERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": _raw_deflate,
    "br": brotli.compress,
}


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(PACKERS)),
    st.binary(max_size=300),
    st.integers(min_value=1, max_value=700),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_any_split_decodes_to_the_original(
    name: str, unit: bytes, repeat: int, cuts: list[int]
) -> None:
    """Pieces never exceed CHUNK, and their concatenation is the original body."""
    original = unit * repeat
    packed = PACKERS[name](original)
    unpack = decoder(name.removesuffix("-raw"))
    assert unpack is not None
    points = sorted({0, len(packed), *(c % (len(packed) + 1) for c in cuts)})
    pieces = [
        piece
        for start, end in itertools.pairwise(points)
        for piece in unpack.feed(packed[start:end])
    ]
    assert all(len(piece) <= CHUNK for piece in pieces)
    assert original == b"".join(pieces)


def test_identity_unknown_and_broken() -> None:
    assert decoder(None) is None
    assert decoder("identity") is None
    with pytest.raises(UnsupportedEncodingError, match="zstd"):
        decoder("zstd")
    unpack = decoder("gzip")
    assert unpack is not None
    with pytest.raises(DecodeError):
        list(unpack.feed(b"not gzip at all"))


@pytest.mark.parametrize(
    ("media", "kind"),
    [
        ("text/event-stream", BodyKind.EVENTS),
        ("application/json", BodyKind.JSON),
        ("application/problem+json", BodyKind.JSON),
        ("text/plain", BodyKind.TEXT),
        ("text/html", BodyKind.TEXT),
        ("application/x-ndjson", BodyKind.TEXT),
        ("audio/mpeg", BodyKind.OTHER),
        ("image/png", BodyKind.OTHER),
        ("application/octet-stream", BodyKind.OTHER),
    ],
)
def test_body_kinds(media: str, kind: BodyKind) -> None:
    assert kind is body_kind(media)
