"""Properties of the built-in detectors' openings, which the redact stage searches first.

An opening is trusted to rule candidates out: wherever a detector's full pattern has a
candidate (complete or still growing at the end of the text), its opening must match
there or earlier. A detector that declares ``needs`` goes further: on text without that
character its opening finds exactly the candidate the pattern would. Both are checked
against the real patterns on text near values of the detectors (drawn from their
patterns and from the corpus), cut anywhere.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import regex
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.redact.detectors import (
    BUILTIN,
    DetectorSpec,
    ascii_opening_source,
    opening_source,
    pattern_source,
)
from filters.redact.patterns import category_class

VALUES = Path(__file__).parent / "corpus" / "redact" / "values.yaml"
NOISE = " \t\n.,;:-_+@()/\\\"'aeksAIKyxog0123456789"
"""Characters that start, continue, break or escape the built-in detectors' values."""


@cache
def _values() -> tuple[str, ...]:
    table = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    return tuple(
        str(value)
        for detector in table.values()
        for kind in ("valid", "lookalikes")
        for value in detector.get(kind, ())
    )


@cache
def _compiled(spec: DetectorSpec, json: bool) -> tuple[Any, Any, Any]:
    """The full pattern, the opening the stage uses, and the text opening."""
    full = regex.compile(pattern_source(spec, json=json))
    opening = (regex.compile if json else re.compile)(opening_source(spec, json=json))
    return full, opening, re.compile(opening_source(spec, json=False))


@cache
def _bodies(spec: DetectorSpec) -> st.SearchStrategy[str]:
    """Values of ``spec``'s pattern; lookbehinds dropped, which hypothesis cannot draw."""
    body = re.sub(r"\(\?<[!=][^()]*\)", "", spec.body)
    return st.from_regex(body, fullmatch=True)


@st.composite
def texts(draw: st.DrawFn, spec: DetectorSpec) -> str:
    """Noise around a value of ``spec`` or of the corpus, possibly cut or mutated."""
    value = draw(st.one_of(_bodies(spec), st.sampled_from(_values())))
    value = value[: draw(st.integers(1, len(value)))]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(st.sampled_from(NOISE)) + value[at:]
    before = draw(st.text(NOISE, max_size=4))
    after = draw(st.text(NOISE, max_size=3))
    return before + value + after


def _candidate(full: Any, text: str, start: int) -> int | None:
    """Where the full pattern's first candidate at or after ``start`` begins, if any."""
    found = full.search(text, start, partial=True)
    return None if found is None or found.start() == len(text) else found.start()


def _opening_at(opening: Any, text: str, start: int) -> int | None:
    found = opening.search(text, start)
    return None if found is None or found.start() == len(text) else found.start()


def _check(spec: DetectorSpec, json: bool, text: str, start: int) -> None:
    """Both properties of ``spec``'s openings on ``text`` searched from ``start``."""
    full, opening, text_opening = _compiled(spec, json)
    candidate = _candidate(full, text, start)
    # A JSON channel uses the text opening on text without a backslash.
    for used in (opening,) if "\\" in text else (opening, text_opening):
        found = _opening_at(used, text, start)
        assert candidate is None or (found is not None and found <= candidate), (spec.name, text)
        if spec.needs and spec.needs not in text:
            assert candidate == found, (spec.name, text)


@settings(max_examples=400, deadline=None)
@given(spec=st.sampled_from(BUILTIN), json=st.booleans(), data=st.data())
def test_opening_holds_on_text_around_values(
    spec: DetectorSpec, json: bool, data: st.DataObject
) -> None:
    """The openings keep both properties on noise around drawn and corpus values."""
    text = data.draw(texts(spec))
    if spec.needs and data.draw(st.booleans()):
        text = text.replace(spec.needs, " ")
    _check(spec, json and spec.raw_json, text, data.draw(st.integers(0, len(text))))


EDGES = (
    "a" * 64 + "@example.com",  # the longest local part
    "a" * 65 + "@example.com",  # one too long: no candidate at its start
    "https://app@db.example.com",  # a URL's login
    "fe80::1ff:fe23:4567:890a",
    "::ffff:192.0.2.128",
    "version 10.1.2.3",
    "(415) 555-0123 +44 20 7946 0958",
)
"""Values at the edges of the patterns, which random drawing seldom reaches."""


def _cuts(value: str) -> list[int]:
    """Every cut within the openings' reach (a few dozen characters), then some."""
    return [*range(1, min(len(value), 24)), *range(24, len(value) + 1, 5), len(value)]


def test_opening_holds_for_every_cut_of_every_value() -> None:
    """The openings keep both properties on every corpus value cut anywhere."""
    for value in (*_values(), *EDGES):
        for cut in dict.fromkeys(_cuts(value)):
            for text, start in ((value[:cut], 0), (f"\\n{value[:cut]}", 2)):
                for spec in BUILTIN:
                    for json in (False, True) if spec.raw_json else (False,):
                        _check(spec, json, text, start)


def test_every_builtin_detector_has_an_opening() -> None:
    """Each built-in detector declares an opening, so no feed of prose needs its regex."""
    assert [] == [spec.name for spec in BUILTIN if not spec.opening]


def test_opening_matches_a_prefix_of_a_value_at_the_end() -> None:
    """An opening accepts any start of a value that the text ends on (``e`` of ``ey``)."""
    jwt = next(spec for spec in BUILTIN if spec.name == "jwt")
    opening = re.compile(opening_source(jwt, json=False))
    assert opening.search("token: e") is not None
    assert opening.search("token: ex") is None


ASCII_SPECS = [spec for spec in BUILTIN if ascii_opening_source(spec)]


@settings(max_examples=300, deadline=None)
@given(spec=st.sampled_from(ASCII_SPECS), data=st.data())
def test_ascii_opening_reads_ascii_text_as_the_opening_does(
    spec: DetectorSpec, data: st.DataObject
) -> None:
    """On ASCII text the ASCII opening (what the stage searches there) finds exactly what
    the Unicode opening finds."""
    text = data.draw(texts(spec)).encode("ascii", "ignore").decode()
    start = data.draw(st.integers(0, len(text)))
    unicode = re.compile(opening_source(spec, json=False)).search(text, start)
    fast = re.compile(str(ascii_opening_source(spec))).search(text, start)
    assert (unicode and unicode.span()) == (fast and fast.span())


def test_only_unicode_openings_have_an_ascii_twin() -> None:
    """The email openings have one; ASCII-only formats need none."""
    assert {"email"} == {spec.name for spec in ASCII_SPECS}


def test_unicode_classes_cover_every_code_point_a_full_scan_finds() -> None:
    """The letter and mark classes stop scanning where no letter is assigned any more."""
    full = ((0, 0x110000),)
    assert category_class(("L", "M", "Nd")) == category_class(("L", "M", "Nd"), full)
