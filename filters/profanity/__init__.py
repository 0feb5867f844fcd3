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

from filters.profanity.factory import ProfanityConfig, ProfanityFactory
from filters.profanity.lexicon import default_wordlist, normalise_entry, read_wordlist
from filters.profanity.stage import ProfanityStage

__all__ = [
    "ProfanityConfig",
    "ProfanityFactory",
    "ProfanityStage",
    "default_wordlist",
    "normalise_entry",
    "read_wordlist",
]
