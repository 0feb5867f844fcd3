"""``type: profanity``: mask, block or flag profanity and slurs while the text streams.

Matching is whole-word, never substring, so *Scunthorpe*, *assassin* and *cocktail* pass.
The text is cut into words (letters, digits, the leetspeak symbols ``@ $ ! * |`` and
apostrophes) and each word is tested against one regex compiled from the word lists as a
trie, so a word costs one regex call however long the list is (and plain words that start
no entry are turned away by a letter trie before that). A piece in which no word
could start a candidate, as most pieces of prose are, is released after a single stdlib
search, without a scan. The regex tolerates the usual evasions:

- case (``ShIt``) and leetspeak: ``$``/``5`` for s, ``7`` for t, ``8`` for b, ``9``/``6``
  for g, ``1``/``|`` for l, ``v`` for u, and any of ``4 @ 3 1 ! | 0`` for any vowel
  (``f4ck``, ``b!tch``);
- repeated letters (``fuuuuck``), up to :data:`MAX_REPEAT` of one letter;
- one ``*`` for an inner letter (``f*ck``, ``a**hole``), never for the first or last one,
  so an already censored ``f***`` or ``a**`` is left alone;
- up to three non-letters around the word (``"**shit**"``, ``'ass'``) and a possessive
  ``'s``; a word made of digits only (``455``) is a number, not a word.

Two more shapes span several words:

- spaced-out letters (``f u c k``, ``s-h-i-t``, ``f_u_c_k``): a run of one-letter words
  joined by one to three of ``space . - _ ~``, where a quote may open the run and ``!`` or
  a quote close it. The *whole* run must spell entries back to back, optionally after a
  leading article (``a b i t c h``), so ``if u can`` and a spelled-out ``c l a s s`` stay
  untouched;
- phrases from the lists (``son of a bitch``): words joined by the same separators.

When candidates overlap, the leftmost wins, then the longest.

Hold-back: the stage holds only from the start of a word, run or phrase that could still
become a match, and releases everything before it. A word that is not the prefix of any
entry goes out as soon as that is known, even before it ends; a complete entry at the end
of the input is held until the next character shows the word ended (``ass`` vs
``assassin``); a one-letter word (``a``, ``I``) is held until the next word shows it does
not start a spaced-out run. The bound (:attr:`ProfanityFactory.max_holdback`) covers the
longest entry spelled out with separators; a candidate still open after that many
characters is treated as a match (fail closed) and scanning restarts after it. Every
verdict depends only on the text from a candidate's start to that bound, which is what
makes the output the same however the text is split.

Masks cover every character of the matched span, separators of a spaced-out word
included: keeping ``f.*.*.*`` would still show the word's shape. Masks never contain
quotes, backslashes or braces (unless ``replacement`` does), so JSON channels stay valid.
On JSON channels a backslash before a letter is read as an escape (``\\nshit`` is
``shit`` after a newline).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import regex
from pydantic import Field, field_validator

from pipeline.stage import (
    NOTHING,
    Channel,
    ChannelEnd,
    ChannelKind,
    Finding,
    Release,
    StageConfig,
    StageFactory,
)

RULE: Final = "profanity"
"""Rule name of the default list, inline ``words`` and fail-closed overflows."""

MAX_GAP: Final = 3
"""Most separator characters between two spaced-out letters or two words of a phrase."""
MAX_REPEAT: Final = 12
"""Most times one letter may repeat (``fuuuuck``): past it a word is ordinary again, so a
run like ``AAAAAAAA...`` or ``000000...`` is released instead of held to the bound."""
REPEAT_SLACK: Final = 16
"""Characters of hold-back allowed beyond the longest spelled-out entry for repeats."""
_EDGE: Final = 3
"""Non-letters trimmed at each end of a word (``"**shit**"``)."""
_CONTEXT: Final = MAX_GAP + 4
"""Released input kept in front of the held text, so the first held word is seen to
continue a released word or a released spaced-out run: up to :data:`MAX_GAP` separators,
a quoted one-letter word (``'f``), the character before it and, in JSON, a backslash."""
_FIXED_MASK: Final = 4
"""Mask length when ``keep_length`` is off, so the mask does not leak the word's length."""

_SEPARATORS: Final = frozenset(" \t.-_~\u00a0")
_ARTICLES: Final = frozenset("aAiI")
_QUOTES: Final = frozenset("'\u2019")
# One letter of a spaced-out run: a quote may open the run ('f u c k), and closing
# punctuation may end it (f u c k!).
_RUN_LETTER: Final = re.compile("['\u2019]?([^'\u2019])[!'\u2019]{0,3}")
_VOWEL_LEET: Final = "4@31!|0"
_LEET: Final[dict[str, str]] = {
    "a": _VOWEL_LEET,
    "e": _VOWEL_LEET,
    "i": _VOWEL_LEET,
    "o": _VOWEL_LEET,
    "u": _VOWEL_LEET + "v",
    "b": "8",
    "g": "96",
    "l": "1|",
    "s": "5$",
    "t": "7",
}
_EDGE_CLASS: Final = r"[0-9@$!*|'\u2019]"
_WORD_CHARS: Final = r"[@$!*|'\u2019]"
_TEXT_TOKEN: Final = re.compile(rf"(?:[^\W_]|{_WORD_CHARS})+")
# In JSON a letter right after a backslash belongs to an escape (\n, \t, \u00e9).
_JSON_TOKEN: Final = re.compile(rf"(?:(?<!\\)[^\W_]|{_WORD_CHARS})+")

BUILTIN_ALLOW: Final = frozenset(
    {
        # Real words and place names the leet/repeat tolerance would read as an entry.
        "assess",
        "shiite",
        "twatt",
    }
)
"""Look-alikes never flagged: found by running the matcher over an English dictionary."""


def default_wordlist() -> Path:
    """The shipped English list, from a source checkout or from an installed wheel.

    The wheel force-includes ``config/`` as ``pipeline/_config/``, next to this package.
    """
    root = Path(__file__).resolve().parent.parent
    for candidate in (
        root / "config" / "wordlists" / "en.txt",
        root / "pipeline" / "_config" / "wordlists" / "en.txt",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"default profanity word list not found under {root}")


_ENTRY_SEPARATORS: Final = re.compile(r"[\s.\-_]+")


def _entry_form(raw: str) -> str | None:
    """``raw`` as an entry (lowercase words of letters, single spaces), if it is one."""
    words = [w for w in _ENTRY_SEPARATORS.split(raw.lower()) if w]
    return " ".join(words) if words and all(w.isalpha() for w in words) else None


def normalise_entry(raw: str) -> str:
    """Lowercase ``raw`` and join its words with single spaces (``son-of-a bitch``).

    Raises ``ValueError`` for anything but letters and separators: evasions are the
    matcher's job, and a digit in an entry would never match as written.
    """
    entry = _entry_form(raw)
    if entry is None:
        raise ValueError(f"{raw!r} is not a word or phrase of letters")
    return entry


def _allow_key(raw: str) -> str:
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


class ProfanityConfig(StageConfig):
    """YAML keys of ``type: profanity``."""

    type: Literal["profanity"] = "profanity"
    lists: list[str] = Field(default_factory=list)
    """Extra word-list files (one entry per line, ``#`` comments), absolute or relative
    to the working directory. Findings from a file carry its name without extension as
    their rule."""
    words: list[str] = Field(default_factory=list)
    """Extra entries inline: words or phrases (``son of a bitch``)."""
    default_list: bool = True
    """Include the shipped English list (``config/wordlists/en.txt``)."""
    allow: list[str] = Field(default_factory=list)
    """Words never flagged: an entry here is dropped from the lists (in every spelling),
    and any other word (a look-alike such as ``assess``, a product code such as ``A55``)
    passes when written exactly so, case aside."""
    action: Literal["mask", "block", "flag"] = "mask"
    """``mask`` replaces the word; ``block`` ends the response before it; ``flag`` lets the
    text through untouched, holds nothing back, and only records a finding."""
    mask_style: Literal["first_letter", "asterisks", "word"] = "first_letter"
    """``first_letter`` gives ``f***``, ``asterisks`` ``****``, ``word`` the ``replacement``."""
    replacement: str = "[censored]"
    """Text that replaces a match under ``mask_style: word``."""
    keep_length: bool = True
    """Masks as long as the matched text, so layouts do not jump; otherwise every mask is
    four characters. No effect on ``mask_style: word``."""

    @field_validator("words")
    @classmethod
    def _entries_are_words(cls, value: list[str]) -> list[str]:
        for raw in value:
            normalise_entry(raw)
        return value

    @field_validator("allow")
    @classmethod
    def _allowed_are_words(cls, value: list[str]) -> list[str]:
        if not all(_allow_key(raw) for raw in value):
            raise ValueError("an allowed word is empty")
        return value

    @field_validator("lists")
    @classmethod
    def _lists_exist(cls, value: list[str]) -> list[str]:
        missing = [p for p in value if not Path(p).is_file()]
        if missing:
            raise ValueError(f"word list file not found: {', '.join(missing)}")
        return value


# --- compiling the lists ----------------------------------------------------------------


def _letter_class(letter: str) -> str:
    return "[" + re.escape(letter + _LEET.get(letter, "")) + "]"


def _atoms(entry: str, repeats: bool) -> list[str]:
    """Regex pieces for ``entry``, one per character (a space joins phrase words)."""
    quantifier = f"{{1,{MAX_REPEAT}}}" if repeats else ""
    atoms = []
    for word_index, word in enumerate(entry.split(" ")):
        if word_index:
            atoms.append(" ")
        for i, letter in enumerate(word):
            atom = _letter_class(letter) + quantifier
            if 0 < i < len(word) - 1:
                atom = rf"(?:{atom}|\*)"
            atoms.append(atom)
    return atoms


def _trie_pattern(entries: Iterable[str], repeats: bool) -> str:
    """One alternation shaped like a trie, so the engine never tries entries one by one."""
    root: dict[str, Any] = {}
    for entry in entries:
        node = root
        for atom in _atoms(entry, repeats):
            node = node.setdefault(atom, {})
        node[""] = {}
    return _node_pattern(root) or "(?!)"


def _node_pattern(node: dict[str, Any]) -> str:
    branches = [atom + _node_pattern(child) for atom, child in node.items() if atom]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


def _unit_regex(entries: Iterable[str]) -> Any:
    """Whole-word matcher over words joined by one space, with edges and possessive."""
    trie = _trie_pattern(entries, repeats=True)
    edge = _EDGE_CLASS
    return regex.compile(
        rf"(?P<pre>{edge}{{0,{_EDGE}}}?)(?P<w>{trie})(?P<post>(?:['\u2019]s)?{edge}{{0,{_EDGE}}})",
        regex.IGNORECASE,
    )


@dataclass(frozen=True, slots=True)
class _Lexicon:
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
        if _letters(joined):
            node = self._skeleton_node(joined)
            if node is None or "" not in node:
                return None
        return self.unit.fullmatch(joined)

    def continues(self, joined: str) -> bool:
        """``joined`` may be the first words of a phrase, another word to follow."""
        if _letters(joined) and self._skeleton_node(joined + " ") is None:
            return False
        return self.unit.fullmatch(joined + " ", partial=True) is not None

    def quiet(self, text: str, start: int) -> bool:
        """Whether no candidate can start in ``text[start:]`` (a text channel's): one
        stdlib search, which most pieces of prose pass, so they need no scan."""
        if text.isascii():
            return self.stirring_ascii.search(text.lower(), start) is None
        return self.stirring.search(text, start) is None

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


def _letters(joined: str) -> bool:
    """Only ASCII letters and the single spaces that join the words of a phrase."""
    return joined.isascii() and joined.replace(" ", "").isalpha()


def _skeleton_trie(entries: Iterable[str]) -> dict[str, Any]:
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


def _skeleton_pattern(node: dict[str, Any]) -> str:
    """The lowercase ASCII words whose skeleton walks from ``node`` without leaving the
    trie: :meth:`_Lexicon.ruled_out`'s walk as a regex. A run of one letter is that
    letter's repeats, u's run takes v too; other characters never lie on a word's walk.
    Each branch opens with a literal, which the stdlib engine tests without entering it.
    """
    branches = []
    for letter, child in sorted(node.items()):
        if not ("a" <= letter <= "z"):
            continue
        run = "[uv][uv]*" if letter == "u" else f"{letter}{letter}*"
        rest = _skeleton_pattern(child)
        branches.append(f"{run}{rest}?" if rest else run)
    return f"(?:{'|'.join(branches)})" if branches else ""


def _stirring(skeletons: dict[str, Any]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """``_Lexicon.stirring`` and ``stirring_ascii``: after a word's start, one character,
    a word not only of ASCII letters, or one on an entry's skeleton."""
    viable = _skeleton_pattern(skeletons) or "(?!)"
    token = f"(?:[^\\W_]|{_WORD_CHARS})"
    ascii_token = "[0-9a-z@$!*|']"
    return (
        re.compile(
            f"(?<![^\\W_])(?<!{_WORD_CHARS})"
            f"(?:(?i:{viable})(?![A-Za-z])"
            f"|[A-Za-z]*+(?:[^\\W_A-Za-z]|{_WORD_CHARS})"
            f"|{token}(?!{token}))"
        ),
        re.compile(
            f"(?<!{ascii_token})"
            f"(?:{viable}(?![a-z])|[a-z]*+[0-9@$!*|']|{ascii_token}(?!{ascii_token}))"
        ),
    )


def _compile(sources: Sequence[tuple[str, list[str]]], allow: Iterable[str]) -> _Lexicon:
    """Build the matchers from (rule, entries) sources; earlier sources name a match."""
    dropped = {entry for entry in map(_entry_form, allow) if entry is not None}
    by_rule: dict[str, list[str]] = {}
    for rule, entries in sources:
        by_rule.setdefault(rule, []).extend(e for e in entries if e not in dropped)
    everything = sorted({e for entries in by_rule.values() for e in entries})
    singles = [e for e in everything if " " not in e]
    skeletons = _skeleton_trie(everything)
    stirring, stirring_ascii = _stirring(skeletons)
    named = list(by_rule.items())
    return _Lexicon(
        unit=_unit_regex(everything),
        run=regex.compile(f"(?:{_trie_pattern(singles, repeats=False)})+", regex.IGNORECASE),
        has_phrases=len(singles) < len(everything),
        allow=BUILTIN_ALLOW | dropped | {_allow_key(word) for word in allow},
        skeletons=skeletons,
        prefixes=frozenset(entry[:end] for entry in everything for end in range(1, len(entry) + 1)),
        stirring=stirring,
        stirring_ascii=stirring_ascii,
        rules=tuple(
            (rule, regex.compile(f"(?:{_trie_pattern(entries, True)})+", regex.IGNORECASE))
            for rule, entries in named[:-1]
        ),
        last_rule=named[-1][0] if named else RULE,
    )


def _holdback_bound(entries: Iterable[str]) -> int:
    """Characters one candidate may be held: the longest entry spelled out or written.

    Spelled out, each letter may carry :data:`MAX_GAP` separators and an article may lead
    (``a  b i t c h``); written, a phrase's words may be :data:`MAX_GAP` apart and a word
    may carry edges and a possessive. :data:`REPEAT_SLACK` is left for repeated letters.
    """
    listed = list(entries)
    longest_word = max((len(e) for e in listed if " " not in e), default=0)
    longest_text = max((len(e) + e.count(" ") * (MAX_GAP - 1) for e in listed), default=0)
    spelled = (1 + MAX_GAP) * (longest_word + 1)
    written = longest_text + 2 * _EDGE + 2 + MAX_GAP
    return max(spelled, written) + REPEAT_SLACK


# --- scanning ---------------------------------------------------------------------------


class _Gap(enum.Enum):
    """How the characters after a word relate it to the next word."""

    JOINED = "joined"
    """One to :data:`MAX_GAP` separators, then the next word."""
    OPEN = "open"
    """Separators up to the end of what is visible: the next word may still join."""
    BROKEN = "broken"
    """Anything else: no run or phrase continues past this word."""


class _Pending(enum.Enum):
    PENDING = "pending"


_PENDING: Final = _Pending.PENDING
"""A candidate that more text could still turn into a match, or out of one."""


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int
    rule: str


_Outcome = _Hit | Literal[_Pending.PENDING] | None


class _Scan:
    """One pass over the held text (behind its context) deciding all it can.

    Candidates start at words; a candidate is judged on the text from its start up to
    ``limit`` (its start plus the bound), never beyond, so the verdict is the same
    whatever else had arrived when it was made.
    """

    __slots__ = ("_bound", "_final", "_lex", "_spans", "_text")

    def __init__(
        self, lex: _Lexicon, tokens: re.Pattern[str], text: str, bound: int, final: bool
    ) -> None:
        self._lex = lex
        self._text = text
        self._bound = bound
        self._final = final
        self._spans = [m.span() for m in tokens.finditer(text)]

    def decide(self, origin: int) -> tuple[list[_Hit], int]:
        """Hits in ``text[origin:]`` and the offset where the undecided text starts."""
        hits: list[_Hit] = []
        cursor = origin
        size = len(self._text)
        for i, (start, _) in enumerate(self._spans):
            if start < cursor:
                continue
            limit = min(size, start + self._bound)
            outcome = self._best_at(i, limit, self._final and limit == size)
            if outcome is _PENDING:
                if limit == size:
                    return hits, start
                # Still open at the bound: fail closed, the held span counts as a match.
                outcome = _Hit(start, limit, RULE)
            if outcome is not None:
                hits.append(outcome)
                cursor = outcome.end
        return hits, size

    def _best_at(self, i: int, limit: int, closed: bool) -> _Outcome:
        unit = self._unit_at(i, limit, closed)
        if unit is _PENDING:
            return _PENDING
        run = self._run_at(i, limit, closed)
        if run is _PENDING:
            return _PENDING
        if run is None or (unit is not None and unit.end >= run.end):
            return unit
        return run

    def _unit_at(self, i: int, limit: int, closed: bool) -> _Outcome:
        """The longest word or phrase match starting at word ``i``."""
        lex, text, spans = self._lex, self._text, self._spans
        start, end = spans[i]
        joined = text[start : min(end, limit)]
        if lex.ruled_out(joined):
            return None
        pieces = [(start, 0)]  # (offset in text, offset in joined) of each word
        best: _Hit | None = None
        k = i
        while True:
            if spans[k][1] >= limit and not closed:
                return _PENDING if lex.grows(joined) else best
            match = lex.whole(joined)
            if match is not None:
                best = self._unit_hit(match, pieces) or best
            if not lex.has_phrases:
                return best
            gap = self._gap_after(k, limit, closed)
            if gap is _Gap.BROKEN or not lex.continues(joined):
                return best
            if gap is _Gap.OPEN:
                return _PENDING
            k += 1
            pieces.append((spans[k][0], len(joined) + 1))
            joined += " " + text[spans[k][0] : min(spans[k][1], limit)]

    def _unit_hit(self, match: Any, pieces: list[tuple[int, int]]) -> _Hit | None:
        word: str = match.group("w")
        if not self._lex.accepts(word):
            return None
        w_start, w_end = match.span("w")
        last_text, last_joined = pieces[-1]
        return _Hit(
            pieces[0][0] + w_start, last_text + w_end - last_joined, self._lex.rule_for(word)
        )

    def _run_at(self, i: int, limit: int, closed: bool) -> _Outcome:
        """A spaced-out word whose run of one-letter words starts at word ``i``."""
        spans, text = self._spans, self._text
        opening = _RUN_LETTER.fullmatch(text, spans[i][0], min(spans[i][1], limit))
        if opening is None or self._continues_run(i):
            return None
        letters: list[str] = []
        starts: list[int] = []
        k = i
        while True:
            start, end = spans[k][0], min(spans[k][1], limit)
            letter = _RUN_LETTER.fullmatch(text, start, end)
            if letter is None or (k > i and letter.start(1) > start):
                break
            letters.append(letter.group(1))
            starts.append(letter.start(1))
            if end == limit and not closed:
                return self._open_run("".join(letters), last_may_grow=True)
            if letter.end(1) < end:
                break
            gap = self._gap_after(k, limit, closed)
            if gap is _Gap.OPEN:
                return self._open_run("".join(letters), last_may_grow=False)
            if gap is _Gap.BROKEN:
                break
            k += 1
        word = "".join(letters)
        first = self._spelled(word)
        if first is None:
            return None
        return _Hit(starts[first], starts[-1] + 1, self._lex.rule_for(word[first:]))

    def _open_run(self, letters: str, last_may_grow: bool) -> _Outcome:
        lex = self._lex
        if lex.viable(letters) or (letters[0] in _ARTICLES and lex.viable(letters[1:])):
            return _PENDING
        # If the last one-letter word grows into a longer word, the run ends before it.
        if last_may_grow and self._spelled(letters[:-1]) is not None:
            return _PENDING
        return None

    def _spelled(self, letters: str) -> int | None:
        """Index of the run's first matched letter (1 after an article), if it spells."""
        lex = self._lex
        if len(letters) >= 2 and lex.spells(letters):
            return 0
        if len(letters) >= 3 and letters[0] in _ARTICLES and lex.spells(letters[1:]):
            return 1
        return None

    def _continues_run(self, i: int) -> bool:
        """Word ``i`` is a later letter of a run that starts before it."""
        if i == 0 or self._text[self._spans[i][0]] in _QUOTES:
            return False
        before_start, before_end = self._spans[i - 1]
        letter = _RUN_LETTER.fullmatch(self._text, before_start, before_end)
        return (
            letter is not None
            and letter.end(1) == before_end
            and self._joins(before_end, self._spans[i][0])
        )

    def _joins(self, start: int, end: int) -> bool:
        gap = self._text[start:end]
        return len(gap) <= MAX_GAP and _SEPARATORS.issuperset(gap)

    def _gap_after(self, k: int, limit: int, closed: bool) -> _Gap:
        end = self._spans[k][1]
        following = self._spans[k + 1][0] if k + 1 < len(self._spans) else len(self._text)
        if not self._joins(end, min(following, limit)):
            return _Gap.BROKEN
        if following < limit:
            return _Gap.JOINED
        return _Gap.BROKEN if closed else _Gap.OPEN


# --- the stage --------------------------------------------------------------------------

_Masker = Callable[[str], str]


def _stars(span: str) -> str:
    return "*" * len(span)


def _first_letter(span: str) -> str:
    return span[0] + "*" * (len(span) - 1)


def _masker(config: ProfanityConfig) -> _Masker:
    """The function that turns a matched span into its mask, chosen once per route."""
    if config.mask_style == "word":
        replacement = config.replacement
        return lambda _span: replacement
    fixed = "*" * _FIXED_MASK
    if config.mask_style == "asterisks":
        return _stars if config.keep_length else lambda _span: fixed
    return _first_letter if config.keep_length else lambda span: span[0] + fixed[1:]


class ProfanityStage:
    """One channel: the held text, and the released context just in front of it."""

    __slots__ = (
        "_action",
        "_bound",
        "_context",
        "_done",
        "_json",
        "_lexicon",
        "_mask",
        "_offset",
        "_pending",
        "_tokens",
    )

    def __init__(
        self,
        lexicon: _Lexicon,
        tokens: re.Pattern[str],
        bound: int,
        action: Literal["mask", "block", "flag"],
        mask: _Masker,
    ) -> None:
        self._lexicon = lexicon
        self._tokens = tokens
        self._bound = bound
        self._action = action
        self._mask = mask
        self._context = ""
        self._pending = ""
        self._offset = 0  # channel offset of _pending[0]
        self._done = False
        self._json = tokens is _JSON_TOKEN

    @property
    def held(self) -> int:
        """Characters held back; always 0 when flagging, which releases text at once."""
        return 0 if self._action == "flag" else len(self._pending)

    def feed(self, text: str) -> Release:
        """Release the text before the first word that could still become a match."""
        if self._done or not text:
            return NOTHING
        pending = self._pending + text
        if len(pending) <= self._bound:
            # When no word that starts in the undecided text could start a candidate (a
            # piece of prose, or one that ends a held word), a scan would release it
            # whole: skip the scan. JSON reads a letter after a backslash as an escape,
            # which ``quiet`` does not.
            context = self._context
            joined = context + pending
            if (not self._json or "\\" not in joined) and self._lexicon.quiet(joined, len(context)):
                self._offset += len(pending)
                self._context = joined[-_CONTEXT:]
                self._pending = ""
                return Release(text if self._action == "flag" else pending)
        self._pending = pending
        return self._advance(text, final=False)

    def finish(self, end: ChannelEnd) -> Release:
        """Decide the held words as they stand: the channel will not continue them."""
        if self._done:
            return NOTHING
        release = self._advance("", final=True)
        self._done = True
        return release

    def _advance(self, fed: str, final: bool) -> Release:
        text = self._context + self._pending
        origin = len(self._context)
        hits, cut = _Scan(self._lexicon, self._tokens, text, self._bound, final).decide(origin)
        base = self._offset - origin
        self._offset += cut - origin
        self._context = text[max(0, cut - _CONTEXT) : cut]
        self._pending = text[cut:]
        if self._action == "flag":
            findings = tuple(Finding(h.rule, "flagged", base + h.start, base + h.end) for h in hits)
            return Release(fed, findings=findings) if fed or findings else NOTHING
        if not hits:
            return Release(text[origin:cut]) if cut > origin else NOTHING
        if self._action == "block":
            first = hits[0]
            self._done = True
            self._pending = ""
            return Release(
                text[origin : first.start],
                block=f"{RULE}: {first.rule}",
                findings=(Finding(first.rule, "blocked", base + first.start, base + first.end),),
            )
        out: list[str] = []
        position = origin
        for hit in hits:
            out.append(text[position : hit.start])
            out.append(self._mask(text[hit.start : hit.end]))
            position = hit.end
        out.append(text[position:cut])
        findings = tuple(Finding(h.rule, "masked", base + h.start, base + h.end) for h in hits)
        return Release("".join(out), findings=findings)


class ProfanityFactory(StageFactory[ProfanityConfig]):
    """Loads and compiles the word lists once per route; opening a channel is cheap."""

    config_model = ProfanityConfig

    def __init__(self, config: ProfanityConfig) -> None:
        super().__init__(config)
        sources = [(Path(path).stem, read_wordlist(Path(path))) for path in config.lists]
        sources.append((RULE, [normalise_entry(word) for word in config.words]))
        if config.default_list:
            sources.append((RULE, read_wordlist(default_wordlist())))
        self._lexicon = _compile(sources, config.allow)
        self._bound = _holdback_bound(e for _, entries in sources for e in entries)
        self._mask = _masker(config)

    @property
    def max_holdback(self) -> int:
        """The longest entry spelled out with separators, plus slack for repeats."""
        return self._bound

    def open(self, channel: Channel) -> ProfanityStage:
        """A stage for ``channel``; JSON channels read ``\\n`` before a word as an escape."""
        tokens = _JSON_TOKEN if channel.kind is ChannelKind.JSON else _TEXT_TOKEN
        return ProfanityStage(self._lexicon, tokens, self._bound, self.config.action, self._mask)
