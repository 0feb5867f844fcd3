"""The context rule for capitalised names: ``Dick Van Dyke`` and ``Moby-Dick`` pass.

An entry of the names list (``config/wordlists/en-names.txt``: entries that are also
given names or surnames) written in Title case (``Dick``, not ``dick`` or ``DICK``) is a
name when it stands next to another Title-case word:

- joined by a hyphen on either side (``Moby-Dick``);
- followed, after one space, by a Title-case word (``Dick Van Dyke``: ``Dick`` is
  followed by ``Van``);
- preceded, after one space, by a Title-case word that does not open a sentence
  (``Van Dyke``; but in ``You Dick.`` the ``You`` is capitalised only because it opens
  the sentence, so ``Dick`` is masked).

Limits, by design: a name standing alone (``I met Dick``) or after an initial (``Philip
K. Dick``) is masked, and an insult written in Title case before another capitalised
word (``Dick Head``) passes. The verdict reads at most :data:`NAME_WINDOW` characters
before the word and the first two letters of the next one, so it is the same however the
text is split.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

NAME_WINDOW: Final = 24
"""Characters before a word that the rule reads (the previous word and what opens it)."""
_SENTENCE_OPENERS: Final = frozenset(".!?:;\n\"'\u201c\u2018(")
_JOINS: Final = (" ", "-")


class Name(Enum):
    """The rule's verdict on one Title-case entry."""

    NAME = "name"
    WORD = "word"
    UNDECIDED = "undecided"
    """The next word has not shown its first two letters yet."""


def title_case(word: str) -> bool:
    """``Dick``, ``Van``, ``K``: letters, the first upper case and no other one."""
    return word.isalpha() and word[0].isupper() and (len(word) == 1 or word[1:].islower())


def judge(
    text: str,
    word: tuple[int, int],
    before: tuple[int, int] | None,
    after: tuple[int, int] | None,
    *,
    closed: bool,
    from_start: bool,
) -> Name:
    """Whether the Title-case entry ``text[word[0]:word[1]]`` is a name.

    ``before``/``after`` are the spans of the neighbouring words (``None``: none
    visible); ``closed``: nothing follows the visible text; ``from_start``: ``text``
    begins at the channel's start (else only :data:`NAME_WINDOW` characters before the
    word are read, however many are visible).
    """
    start, end = word
    if after is not None:
        gap = text[end : after[0]]
        nxt = text[after[0] : after[1]]
        if gap in _JOINS and nxt[:1].isupper():
            if len(nxt) < 2 and after[1] == len(text) and not closed:
                return Name.UNDECIDED
            if title_case(nxt[:2]):
                return Name.NAME
    elif not closed and text[end:] in ("", *_JOINS):
        return Name.UNDECIDED
    if before is None:
        return Name.WORD
    gap = text[before[1] : start]
    previous = text[before[0] : before[1]]
    if gap not in _JOINS or not title_case(previous):
        return Name.WORD
    if gap == "-":
        return Name.NAME
    window = start - NAME_WINDOW
    opener = text[max(window, 0) : before[0]].rstrip(" ")
    if before[0] - 1 < window or (not opener and not from_start and window < 0):
        return Name.WORD  # what opens the previous word lies outside the window
    opens_sentence = not opener or opener[-1] in _SENTENCE_OPENERS
    return Name.WORD if opens_sentence else Name.NAME
