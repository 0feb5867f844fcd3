"""Compounds: entries found inside longer words (``dumbfuck``, ``fuckwittery``).

Whole-word matching is what keeps ``Scunthorpe`` and ``cocktail`` safe, so only stems that
no English word contains are looked for inside words: ``config/wordlists/en-stems.txt``
lists them, each checked against the web2 and GCIDE dictionaries of the
``english-words`` package by a test. A stem written ``*shit`` counts only at the end of a
longer word (``dumbshit``), since ``shiitake`` or ``Washita`` contain it elsewhere. The
stem alone is masked (``dumbf***``): the rest of the word is innocent, and may already be
out when the stem arrives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import regex

from filters.profanity.rules import node_pattern, trie_pattern

TAIL_WINDOW: Final = 16
"""Characters at the end of a piece searched for a stem's beginning to hold. A longer
beginning (a stem's first letters repeated past this) that ends a piece is released, and
the compound is then missed: the one place where how the text is split can matter."""


@dataclass(frozen=True, slots=True)
class Compounds:
    """The stems, compiled for the scan and for the quiet test of a piece of prose."""

    inner: Any
    """Finds a stem: group ``a`` anywhere in a word, group ``e`` at a word's end only."""
    seen: re.Pattern[str]
    """Any stem written in plain letters (repeats and ``v`` for ``u`` allowed) in
    lowercased text, for :meth:`Lexicon.quiet`: a word with a digit or a symbol goes to
    the scan anyway, so plain letters are all the quiet test must recognise, with a
    stdlib pattern several times cheaper than the scan's."""
    tail: re.Pattern[str]
    """A plain-letter stem's beginning, reversed, matched at the start of reversed text:
    one attempt instead of a search over every position near the end."""

    tail_ends: frozenset[str]
    """Characters a stem's beginning can end with (either case): only a piece ending in
    one of them needs :attr:`tail`."""


def compile_compounds(stems: Iterable[str], dropped: frozenset[str]) -> Compounds | None:
    """Compile the stems file's lines (``stem`` or ``*stem``), minus allowed entries."""
    anywhere = sorted({s for s in stems if not s.startswith("*")} - dropped)
    ending = sorted({s[1:] for s in stems if s.startswith("*")} - dropped)
    if not anywhere and not ending:
        return None
    every = [*anywhere, *ending]
    letters = "".join(every).replace("u", "uv")
    inner = regex.compile(
        f"(?P<a>{trie_pattern(anywhere, True)})|(?P<e>{trie_pattern(ending, True)})",
        regex.IGNORECASE,
    )
    return Compounds(
        inner=inner,
        seen=re.compile(_plain_trie(every)),
        tail=re.compile(_reversed_prefixes(every)),
        tail_ends=frozenset(letters + letters.upper()),
    )


def _letter(letter: str) -> str:
    return "[uv]+" if letter == "u" else f"{letter}+"


def _plain_trie(stems: Iterable[str]) -> str:
    """The stems in plain letters, each letter repeated any number of times, as a trie
    behind a lookahead on their first letters (one set test where no stem starts)."""
    root: dict[str, Any] = {}
    for stem in stems:
        node = root
        for letter in stem:
            node = node.setdefault(_letter(letter), {})
        node[""] = {}
    firsts = "".join(sorted({stem[0] for stem in stems})).replace("u", "uv")
    return f"(?=[{firsts}]){node_pattern(root)}"


def _reversed_prefixes(stems: Iterable[str]) -> str:
    """Every non-empty prefix of a stem in plain letters, reversed (``kcuf``, ``cuf``,
    ``uf``, ``f``), as one trie; the greedy optional parts take the longest."""
    root: dict[str, Any] = {}
    for stem in stems:
        for end in range(1, len(stem) + 1):
            node = root
            for letter in reversed(stem[:end]):
                node = node.setdefault(_letter(letter), {})
            node[""] = {}
    return node_pattern(root) or "(?!)"
