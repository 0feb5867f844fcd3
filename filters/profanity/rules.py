"""The spelling rules: which characters make a word, the evasions each letter tolerates,
and the regexes compiled from them.

See :mod:`filters.profanity` for the rules in prose; this module turns entries into
patterns, and holds the bound those patterns imply for the hold-back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import regex

RULE: Final = "profanity"
"""Rule name of the default list, inline ``words`` and fail-closed overflows."""

MAX_GAP: Final = 3
"""Most separator characters between two spaced-out letters or two words of a phrase."""
MAX_REPEAT: Final = 12
"""Most times one letter may repeat (``fuuuuck``): past it a word is ordinary again, so a
run like ``AAAAAAAA...`` or ``000000...`` is released instead of held to the bound."""
REPEAT_SLACK: Final = 16
"""Characters of hold-back allowed beyond the longest spelled-out entry for repeats."""
EDGE: Final = 3
"""Non-letters trimmed at each end of a word (``"**shit**"``)."""
SCAN_CONTEXT: Final = MAX_GAP + 4
"""Released text the scan reads in front of the held text, so the first held word is seen
to continue a released word or a released spaced-out run: up to :data:`MAX_GAP`
separators, a quoted one-letter word (``'f``) and the character before it."""
CONTEXT: Final = 25
"""Released text kept: :data:`SCAN_CONTEXT` for the scan, and before it the window of the
names rule (:data:`filters.profanity.names.NAME_WINDOW` + 1)."""
FIXED_MASK: Final = 4
"""Mask length when ``keep_length`` is off, so the mask does not leak the word's length."""

SEPARATORS: Final = frozenset(" \t.-_~\u00a0")
"""What may join the letters of a spaced-out word or the words of a phrase."""
SPLITTERS: Final = frozenset(".-_~")
"""What may cut a word into pieces of several letters (``f.u_ck``): no space, since
``as sess`` or ``pen is`` are two words."""
ARTICLES: Final = frozenset("aAiI")
QUOTES: Final = frozenset("'\u2019")
# One letter of a spaced-out run: a quote may open the run ('f u c k), and closing
# punctuation may end it (f u c k!).
RUN_LETTER: Final = re.compile("['\u2019]?([^'\u2019])[!'\u2019]{0,3}")
VOWEL_LEET: Final = "4@31!|0"
LEET: Final[dict[str, str]] = {
    "a": VOWEL_LEET,
    "e": VOWEL_LEET,
    "i": VOWEL_LEET,
    "o": VOWEL_LEET,
    "u": VOWEL_LEET + "v",
    "b": "8",
    "c": "(",
    "g": "96",
    "h": "#",
    "l": "1|",
    "s": "5$",
    "t": "7+",
}
"""Symbols and digits read as a letter. ``( # +`` were added for ``fu(k``, ``5#1+`` and
``b!+ch``; like the others they count only inside a word that spells an entry, so
``C++``, ``C#`` and ``(see)`` stay what they are."""
SYMBOLS: Final = "@$!*|+#"
"""The non-letters a word may contain (leetspeak, ``*`` for a letter or between letters);
``(`` may too, but only between two letters (:data:`TEXT_TOKEN`)."""
TOKEN_CHARS: Final = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789(" + SYMBOLS + "'\u2019"
)
"""The ASCII characters of a word (for ``str.rstrip``: finding where a word starts)."""
WORD_SET: Final = frozenset(TOKEN_CHARS)
LEET_IN_WORD: Final = re.compile(f"[a-z]*+[0-9{re.escape(SYMBOLS)}(]")
"""A lowercased word, from where it is read, that holds a digit or a symbol: leetspeak."""
_SYMBOL_CLASS: Final = re.escape(SYMBOLS) + "'\u2019"
EDGE_CLASS: Final = f"[0-9({_SYMBOL_CLASS}]"
WORD_CHARS: Final = f"[{_SYMBOL_CLASS}]"
_LEET: Final = f"[{re.escape(SYMBOLS)}]"
TEXT_TOKEN: Final = re.compile(
    rf"(?:[^\W_]|{WORD_CHARS}|(?<=[^\W_]|{_LEET})\((?=[^\W_]|{_LEET}|\Z))+"
)
"""A word: letters, digits and the symbols, with ``(`` only inside one (``fu(k``; at the
end of the visible text it may still be), so ``warning('bastard`` stays two words and
``(shit)`` is a word in brackets."""


def letter_class(letter: str) -> str:
    return "[" + re.escape(letter + LEET.get(letter, "")) + "]"


def atoms(entry: str, repeats: bool) -> list[str]:
    """Regex pieces for ``entry``, one per character (a space joins phrase words).

    Without ``repeats`` (the letters of a spaced-out run, gathered one per word) there
    are no repeats and no stars between letters either: the run holds letters only."""
    quantifier = f"{{1,{MAX_REPEAT}}}" if repeats else ""
    atoms = []
    for word_index, word in enumerate(entry.split(" ")):
        if word_index:
            atoms.append(" ")
        for i, letter in enumerate(word):
            atom = letter_class(letter) + quantifier
            if 0 < i < len(word) - 1:
                atom = rf"(?:{atom}|\*)"
            if repeats and i < len(word) - 1:
                # ``s*h*i*t``: stars between the letters, never after the last one, so an
                # already censored ``f***`` stays untouched.
                atom += rf"(?:\*{{1,{MAX_GAP}}})?"
            atoms.append(atom)
    return atoms


def trie_pattern(entries: Iterable[str], repeats: bool) -> str:
    """One alternation shaped like a trie, so the engine never tries entries one by one."""
    root: dict[str, Any] = {}
    for entry in entries:
        node = root
        for atom in atoms(entry, repeats):
            node = node.setdefault(atom, {})
        node[""] = {}
    return node_pattern(root) or "(?!)"


def node_pattern(node: dict[str, Any]) -> str:
    branches = [atom + node_pattern(child) for atom, child in node.items() if atom]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


def unit_regex(entries: Iterable[str]) -> Any:
    """Whole-word matcher over words joined by one space, with edges and possessive."""
    trie = trie_pattern(entries, repeats=True)
    edge = EDGE_CLASS
    return regex.compile(
        rf"(?P<pre>{edge}{{0,{EDGE}}}?)(?P<w>{trie})(?P<post>(?:['\u2019]s)?{edge}{{0,{EDGE}}})",
        regex.IGNORECASE,
    )


def ascii_letters(joined: str) -> bool:
    """Only ASCII letters and the single spaces that join the words of a phrase."""
    return joined.isascii() and joined.replace(" ", "").isalpha()


def skeleton_trie(entries: Iterable[str]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for entry in entries:
        node = root
        previous = ""
        for letter in entry.replace("v", "u"):
            if letter != previous:
                node = node.setdefault(letter, {})
                previous = letter
        node[""] = {}
    return root


def skeleton_pattern(node: dict[str, Any]) -> str:
    """The lowercase ASCII words whose skeleton walks from ``node`` without leaving the
    trie: :meth:`Lexicon.ruled_out`'s walk as a regex. A run of one letter is that
    letter's repeats, u's run takes v too; other characters never lie on a word's walk.
    Each branch opens with a literal, which the stdlib engine tests without entering it.
    """
    branches = []
    for letter, child in sorted(node.items()):
        if not ("a" <= letter <= "z"):
            continue
        run = "[uv][uv]*" if letter == "u" else f"{letter}{letter}*"
        rest = skeleton_pattern(child)
        branches.append(f"{run}{rest}?" if rest else run)
    return f"(?:{'|'.join(branches)})" if branches else ""


def stirring_patterns(
    skeletons: dict[str, Any], compounds: Any = None
) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """``Lexicon.stirring`` and ``stirring_ascii`` (for ASCII text lowercased): after a
    word's start, one character, a word not only of ASCII letters, or one on an entry's
    skeleton; with ``compounds`` also a stem in plain letters anywhere, behind a one-set
    lookahead (a stem's beginning at the end is :attr:`Compounds.tail`'s)."""
    viable = skeleton_pattern(skeletons) or "(?!)"
    stems = stems_any = ""
    if compounds is not None:
        stems = f"|{compounds.seen.pattern}"
        stems_any = f"|(?i:{compounds.seen.pattern})"
    token = f"(?:[^\\W_]|{WORD_CHARS})"
    symbols = re.escape(SYMBOLS) + "'"
    ascii_token = f"[0-9a-z{symbols}]"
    return (
        re.compile(
            f"(?<![^\\W_])(?<!{WORD_CHARS})"
            f"(?:(?i:{viable})(?![A-Za-z])"
            f"|[A-Za-z]*+(?:[^\\W_A-Za-z]|{WORD_CHARS}|\\()"
            f"|{token}(?!{token})){stems_any}"
        ),
        re.compile(
            f"(?<!{ascii_token})"
            f"(?:{viable}(?![a-z])|[a-z]*+[0-9{symbols}(]|{ascii_token}(?!{ascii_token})){stems}"
        ),
    )


def holdback_bound(entries: Iterable[str]) -> int:
    """Characters one candidate may be held: the longest entry spelled out or written.

    Spelled out, each letter may carry :data:`MAX_GAP` separators and an article may lead
    (``a  b i t c h``); written, a phrase's words may be :data:`MAX_GAP` apart and a word
    may carry edges and a possessive. :data:`REPEAT_SLACK` is left for repeated letters.
    """
    listed = list(entries)
    longest_word = max((len(e) for e in listed if " " not in e), default=0)
    longest_text = max((len(e) + e.count(" ") * (MAX_GAP - 1) for e in listed), default=0)
    spelled = (1 + MAX_GAP) * (longest_word + 1)
    written = longest_text + 2 * EDGE + 2 + MAX_GAP
    return max(spelled, written) + REPEAT_SLACK
