"""Building blocks of the built-in detectors' patterns, shared by their table.

Patterns are strings assembled from these pieces; ``detectors`` puts them in the table.
Classes are ASCII where a value's format is (digits of a card, letters of a key) and
Unicode where the format allows it (an internationalised email), with combining marks
taken from the Unicode data so stdlib ``re`` openings agree with ``regex`` patterns.
"""

from __future__ import annotations

import functools
import re
import unicodedata

DIGITS_STR = "0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALNUM = DIGITS_STR + UPPER + UPPER.lower()
TOKEN = "[A-Za-z0-9_\\-]"
END_TOKEN = f"(?!{TOKEN})"
OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
HEX = "[0-9A-Fa-f]"
PEM_WORDS = "(?:[A-Z0-9]{1,12}[ ]){0,3}PRIVATE[ ]KEY(?:[ ]BLOCK)?-----"
BREAK = "[ ]?\\r?\\n"
"""The one line break a wrapped value may carry (a trailing space before it allowed)."""
INTL_GROUPS = "(?:[ .\\-](?:\\([0-9]{1,4}\\)|[0-9]{1,8})){2,6}"


@functools.cache
def _runs(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int, str], ...]:
    """Runs of code points of one general category in ``ranges``: one scan of the
    Unicode data, shared by every class built from it."""
    runs: list[tuple[int, int, str]] = []
    for lo, hi in ranges:
        for cp in range(lo, hi):
            category = unicodedata.category(chr(cp))
            if runs and runs[-1][2] == category and runs[-1][1] == cp - 1:
                runs[-1] = (runs[-1][0], cp, category)
            else:
                runs.append((cp, cp, category))
    return tuple(runs)


def category_class(
    prefixes: tuple[str, ...],
    ranges: tuple[tuple[int, int], ...] = ((0, 0x32400), (0xE0100, 0xE01F0)),
) -> str:
    """A character class body of every character whose Unicode general category starts
    with one of ``prefixes`` (``("L", "M", "Nd")``: letters, marks, decimal digits).

    Built from the Unicode data rather than ``\\w``, which stdlib ``re`` and ``regex``
    read differently (marks, superscripts), so a stdlib opening and the ``regex`` pattern
    it guards agree. The default ranges end past the last assigned letter, plus the
    variation selectors supplement (marks); a test compares them with a full scan."""
    found: list[tuple[int, int]] = []
    for lo, hi, category in _runs(ranges):
        if category.startswith(prefixes):
            if found and found[-1][1] == lo - 1:
                found[-1] = (found[-1][0], hi)
            else:
                found.append((lo, hi))
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in found
    )


WORD = category_class(("L", "M", "Nd"))
"""Letters, marks and decimal digits of every script: what a mailbox name is made of."""
LETTER = category_class(("L", "M"))
# RFC 5322 atext as models write it, with RFC 6531's non-ASCII letters; left out: quotes,
# "=" "?" "&" (a query string's), "{" "|" "}" (templates and tables).
LOCAL = f"[{WORD}_.!#$%*+/^~\\-]"
LOCAL_FIRST = f"[{WORD}_.!#$%*+^~\\-]"
"""Not a slash: ``postgres://app@db`` is a URL's login, whichever slash it starts at."""
LABEL = f"[{WORD}\\-]{{1,63}}"
QUOTED_CHAR = f"[{WORD}_.+\\- ]"
"""What a quoted local part (``"john doe"@example.com``) may hold here: word characters,
spaces and dots, at most 32, so a quote in prose is held only that far."""
QUOTED = f'"{QUOTED_CHAR}{{1,32}}"'
DOMAIN = (
    f"(?:(?:{LABEL}\\.)+[{LETTER}]{{2,63}}"  # names, internationalised ones too
    "|\\[(?:IPv6:[0-9A-Fa-f:.]{2,45}|[0-9.]{7,15})\\])"  # domain literals
)


def prefix(*atoms: str) -> str:
    """The pattern of text that is ``atoms`` in a row, or a prefix of them that ends the
    text: ``prefix("e", "y")`` matches ``ey`` and a final ``e``."""
    pattern = atoms[-1]
    for atom in reversed(atoms[:-1]):
        pattern = f"{atom}(?:\\Z|{pattern})"
    return pattern


def wrapped(cls: str, least: int, most: int | None = None) -> str:
    """``least`` to ``most`` of ``cls``, on one line or cut by one line break: a value the
    model wrapped. The cut form is tried only when the first line is too short to be a
    value by itself, so a complete key never swallows the next line's first word (the
    validators check the length of the whole). Values with a check digit or a structure
    (cards, JWTs) try the cut form first and let the validator decide instead."""
    upper = "" if most is None else str(most)
    rest = "+" if most is None else f"{{1,{most - 1}}}"
    return f"(?:{cls}{{{least},{upper}}}|{cls}{{1,{least - 1}}}{BREAK}{cls}{rest})"


PEM_END = f"-----END[ ]{PEM_WORDS}"
"""The line that closes a private key block."""
PEM_END_MAX = 9 + 3 * 13 + 22
"""The longest END line ``PEM_END`` matches: how much suppressed text the stage keeps to
find an END line cut across feeds."""
