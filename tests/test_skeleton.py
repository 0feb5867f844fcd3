"""The UTS #39 skeleton and the word-list fold, from Unicode's confusables.txt."""

from __future__ import annotations

import pytest

from pipeline.skeleton import fold, prototypes, skeleton
from pipeline.textview import Normaliser


def test_data_is_the_unicode_prototype_mapping() -> None:
    """Thousands of source characters, each mapped to its prototype (Cyrillic es to c)."""
    table = prototypes()
    assert len(table) > 6000
    assert ("c", "s", "rn") == (table["\u0441"], table["\u0455"], table["m"])


def test_skeleton_makes_confusables_equal() -> None:
    """``paypal`` with a Cyrillic a and a capital I has the skeleton of ``paypal``."""
    assert skeleton("p\u0430ypaI") == skeleton("paypal")
    assert skeleton("paypal") != skeleton("paypa1x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\u0455h\u0456t", "shit"),
        ("fu\u0301ck", "fuck"),
        ("f\u00fack", "fuck"),
        ("\U0001d41f\U0001d42e\U0001d41c\U0001d424", "fuck"),
        ("\uff46\uff55\uff43\uff4b", "fuck"),
        ("\u0392\u0399\u03a4C\u0397", "BITCH"),
        ("f\u200buck", "fuck"),
        ("na\u00efve caf\u00e9", "naive cafe"),
        ("\u041c\u043e\u0441\u043a\u0432\u0430", "Moc\u043a\u0432a"),
    ],
)
def test_fold_through_the_view(text: str, expected: str) -> None:
    """NFKC, format characters out, then the fold: look-alikes read as ASCII letters,
    letters without an ASCII prototype (Cyrillic ka and ve) stay as they are."""
    view = Normaliser(fold).view()
    assert expected == view.feed(text) + view.finish()


def test_fold_leaves_ascii_alone() -> None:
    """ASCII is never remapped (``m`` is not ``rn``, ``0`` is not ``O``)."""
    assert all(fold(chr(cp)) == chr(cp) for cp in range(128))
