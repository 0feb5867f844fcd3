"""The word lists and everything compiled from them, shared read-only by every stage."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import regex

from filters.profanity.compounds import TAIL_WINDOW, Compounds, compile_compounds
from filters.profanity.rules import (
    LEET_IN_WORD,
    RULE,
    WORD_SET,
    ascii_letters,
    skeleton_trie,
    stirring_patterns,
    trie_pattern,
    unit_regex,
)

BUILTIN_ALLOW: Final = frozenset(
    {
        # Real words and place names the leet/repeat tolerance would read as an entry.
        "assess",
        "shiite",
        "twatt",
        # Words that end in a compound stem of en-stems.txt.
        "mishit",
        "mishits",
    }
)
"""Look-alikes never flagged: found by running the matcher over an English dictionary."""


def default_wordlist(name: str = "en") -> Path:
    """A shipped list (``en``, ``en-names``), from a source checkout or an installed wheel.

    The wheel force-includes ``config/`` as ``pipeline/_config/``, next to this package.
    """
    root = Path(__file__).resolve().parents[2]
    for candidate in (
        root / "config" / "wordlists" / f"{name}.txt",
        root / "pipeline" / "_config" / "wordlists" / f"{name}.txt",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"profanity word list {name!r} not found under {root}")


_ENTRY_SEPARATORS: Final = re.compile(r"[\s.\-_]+")


def entry_form(raw: str) -> str | None:
    """``raw`` as an entry (lowercase words of letters, single spaces), if it is one."""
    words = [w for w in _ENTRY_SEPARATORS.split(raw.lower()) if w]
    return " ".join(words) if words and all(w.isalpha() for w in words) else None


def normalise_entry(raw: str) -> str:
    """Lowercase ``raw`` and join its words with single spaces (``son-of-a bitch``).

    Raises ``ValueError`` for anything but letters and separators: evasions are the
    matcher's job, and a digit in an entry would never match as written.
    """
    entry = entry_form(raw)
    if entry is None:
        raise ValueError(f"{raw!r} is not a word or phrase of letters")
    return entry


def allow_key(raw: str) -> str:
    """``raw`` as matched text is compared with it: lowercase, single spaces."""
    return " ".join(raw.lower().split())


def read_wordlist(path: Path) -> list[str]:
    """Entries of a list file: one per line, ``#`` comments and blank lines skipped."""
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            entries.append(normalise_entry(text))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return entries


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Everything compiled from the lists, shared read-only by every opened stage."""

    unit: Any
    """Matches one word, or a phrase's words joined by single spaces."""
    run: Any
    """Matches the letters of a spaced-out run: one or more entries back to back (a run
    of several spaced-out words is one run), without repeats (``a a a a`` is no word)."""
    has_phrases: bool
    allow: frozenset[str]
    skeletons: dict[str, Any]
    """Trie of the entries lowercased, v read as u, each run of one letter kept once (a
    ``""`` key marks an entry's end): a plain word whose skeleton leaves it can be no
    entry's prefix, so the regex is skipped."""
    prefixes: frozenset[str]
    """Every prefix of every entry as listed: an ASCII word that is one, case aside, is
    the start of a match of ``unit`` (each letter once, as its own letter)."""
    stirring: re.Pattern[str]
    """Finds, in a text channel, the start of a one-letter word or of a word that
    :meth:`ruled_out` does not rule out: where a candidate could start."""
    stirring_ascii: re.Pattern[str]
    """``stirring`` for ASCII text lowercased, several times cheaper."""
    rules: tuple[tuple[str, Any], ...]
    """(rule, matcher) of every source but the last, in order, to name a match's rule;
    a matcher accepts entries back to back, as a spaced-out run may hold several."""
    last_rule: str
    """Rule of the last source: a match no earlier source claims is from it."""
    names: frozenset[str] = frozenset()
    """Entries that are also names, for the context rule of :mod:`filters.profanity.names`."""
    compounds: Compounds | None = None
    """Stems found inside longer words (:mod:`filters.profanity.compounds`)."""

    def ruled_out(self, word: str) -> bool:
        """Cheap proof that the plain ASCII ``word`` starts no entry; ``False`` if unsure."""
        return word.isascii() and word.isalpha() and self._skeleton_node(word) is None

    def _skeleton_node(self, text: str) -> dict[str, Any] | None:
        """The trie node ``text``'s skeleton leads to, or None when it leaves the trie."""
        node = self.skeletons
        previous = ""
        for letter in text.lower().replace("v", "u"):
            if letter != previous:
                child = node.get(letter)
                if child is None:
                    return None
                node = child
                previous = letter
        return node

    # On ASCII letters (and the single spaces joining a phrase's words) ``unit`` can
    # only match an entry's letters with repeats of each (v also for u): its edges,
    # possessive and other leet characters hold no letter. A match, or a partial one,
    # then has the text's skeleton, so the trie can say no for the regex; a literal
    # prefix of an entry can say yes. The regex decides the rest.

    def grows(self, joined: str) -> bool:
        """``unit`` matches ``joined`` or may once it has grown (partial match)."""
        if joined.isascii() and joined.lower() in self.prefixes:
            return True
        return self.unit.fullmatch(joined, partial=True) is not None

    def whole(self, joined: str) -> Any:
        """``unit``'s match of all of ``joined``, or None."""
        if ascii_letters(joined):
            node = self._skeleton_node(joined)
            if node is None or "" not in node:
                return None
        return self.unit.fullmatch(joined)

    def continues(self, joined: str) -> bool:
        """``joined`` may be the first words of a phrase, another word to follow."""
        if ascii_letters(joined) and self._skeleton_node(joined + " ") is None:
            return False
        return self.unit.fullmatch(joined + " ", partial=True) is not None

    def quiet(self, text: str, start: int) -> int | None:
        """Where ``text[start:]`` stops being quiet: ``len(text)`` when no candidate can
        start in it, the start of a stem's beginning at its very end (to hold while the
        rest goes out), or ``None`` when a scan must decide. One stdlib search, which most
        pieces of prose pass, so they need no scan.

        With compounds, a piece that continues a word is searched from that word's start
        (a stem may begin in the released part's last letters only if it was held, but
        the word around it decides whether the stem counts)."""
        compounds = self.compounds
        if compounds is None:
            if text.isascii():
                found = self.stirring_ascii.search(text.lower(), start)
            else:
                found = self.stirring.search(text, start)
            return len(text) if found is None else None
        if text.isascii():
            text = text.lower()
            if self.stirring_ascii.search(text, start) is not None:
                return None
        elif self.stirring.search(text, start) is not None:
            return None
        # A piece that continues a word: leetspeak in it may finish a stem whose plain
        # beginning was held (``dumbf`` + ``4ck``), which only the scan reads.
        if (
            0 < start < len(text)
            and text[start] in WORD_SET
            and text[start - 1] in WORD_SET
            and LEET_IN_WORD.match(text.lower(), start) is not None
        ):
            return None
        if text[-1:] not in compounds.tail_ends:
            return len(text)
        tail = compounds.tail.match(text[: -TAIL_WINDOW - 1 : -1].lower())
        return len(text) if tail is None else max(start, len(text) - tail.end())

    def accepts(self, word: str) -> bool:
        """A complete match counts: not a bare number, not allow-listed as written."""
        return not word.isdigit() and word.lower() not in self.allow

    def viable(self, letters: str) -> bool:
        """``letters`` is, or may grow into, a spaced-out entry."""
        return self.run.fullmatch(letters, partial=True) is not None

    def spells(self, letters: str) -> bool:
        """``letters`` spell an entry (the run of a spaced-out word)."""
        return self.run.fullmatch(letters) is not None and self.accepts(letters)

    def rule_for(self, word: str) -> str:
        """The rule (list name) of the first source with an entry matching ``word``."""
        for rule, matcher in self.rules:
            if matcher.fullmatch(word) is not None:
                return rule
        return self.last_rule


def read_stems(path: Path) -> list[str]:
    """Lines of a stems file: an entry, or ``*`` and an entry (at a word's end only)."""
    stems = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        ending = text.startswith("*")
        try:
            stems.append("*" * ending + normalise_entry(text.removeprefix("*")))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return stems


def compile_lexicon(
    sources: Sequence[tuple[str, list[str]]],
    allow: Iterable[str],
    names: Iterable[str] = (),
    stems: Iterable[str] = (),
) -> Lexicon:
    """Build the matchers from (rule, entries) sources; earlier sources name a match."""
    dropped = {entry for entry in map(entry_form, allow) if entry is not None}
    by_rule: dict[str, list[str]] = {}
    for rule, entries in sources:
        by_rule.setdefault(rule, []).extend(e for e in entries if e not in dropped)
    everything = sorted({e for entries in by_rule.values() for e in entries})
    singles = [e for e in everything if " " not in e]
    skeletons = skeleton_trie(everything)
    compounds = compile_compounds(stems, frozenset(dropped))
    stirring, stirring_ascii = stirring_patterns(skeletons, compounds)
    named = list(by_rule.items())
    return Lexicon(
        unit=unit_regex(everything),
        run=regex.compile(f"(?:{trie_pattern(singles, repeats=False)})+", regex.IGNORECASE),
        has_phrases=len(singles) < len(everything),
        allow=BUILTIN_ALLOW | dropped | {allow_key(word) for word in allow},
        skeletons=skeletons,
        prefixes=frozenset(entry[:end] for entry in everything for end in range(1, len(entry) + 1)),
        stirring=stirring,
        stirring_ascii=stirring_ascii,
        rules=tuple(
            (rule, regex.compile(f"(?:{trie_pattern(entries, True)})+", regex.IGNORECASE))
            for rule, entries in named[:-1]
        ),
        last_rule=named[-1][0] if named else RULE,
        names=frozenset(names) & frozenset(everything),
        compounds=compounds,
    )
