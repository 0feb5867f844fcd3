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
from typing import Any

import regex

from filters.profanity.rules import atoms, node_pattern, trie_pattern


@dataclass(frozen=True, slots=True)
class Compounds:
    """The stems, compiled for the scan and for the quiet test of a piece of prose."""

    inner: Any
    """Finds a stem: group ``a`` anywhere in a word, group ``e`` at a word's end only."""
    seen: re.Pattern[str]
    """Any stem in lowercased text (stdlib, for :meth:`Lexicon.quiet`)."""
    tail: re.Pattern[str]
    """A stem's beginning at the end of lowercased text: it may yet complete."""
    longest: int
    """Characters of the longest tail :attr:`tail` can match (repeats included)."""


def compile_compounds(stems: Iterable[str], dropped: frozenset[str]) -> Compounds | None:
    """Compile the stems file's lines (``stem`` or ``*stem``), minus allowed entries."""
    anywhere = sorted({s for s in stems if not s.startswith("*")} - dropped)
    ending = sorted({s[1:] for s in stems if s.startswith("*")} - dropped)
    if not anywhere and not ending:
        return None
    every = [*anywhere, *ending]
    inner = regex.compile(
        f"(?P<a>{trie_pattern(anywhere, True)})|(?P<e>{trie_pattern(ending, True)})",
        regex.IGNORECASE,
    )
    return Compounds(
        inner=inner,
        seen=re.compile(trie_pattern(every, True)),
        tail=re.compile(f"(?:{_prefix_pattern(every)})\\Z"),
        longest=max(len(s) for s in every) * 16,
    )


def _prefix_pattern(stems: Iterable[str]) -> str:
    """Any non-empty prefix of a stem, as the scan spells it (repeats, leetspeak)."""
    root: dict[str, Any] = {}
    for stem in stems:
        node = root
        for atom in atoms(stem, repeats=True):
            node = node.setdefault(atom, {})
            node[""] = {}
    return node_pattern(root) or "(?!)"
