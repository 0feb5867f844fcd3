"""One channel of ``type: profanity``: the held text and the context in front of it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from filters.profanity.lexicon import Lexicon
from filters.profanity.rules import CONTEXT, JSON_TOKEN, RULE
from filters.profanity.scanner import Scan
from pipeline.stage import NOTHING, ChannelEnd, Finding, Release

Masker = Callable[[str], str]


def stars(span: str) -> str:
    return "*" * len(span)


def first_letter(span: str) -> str:
    return span[0] + "*" * (len(span) - 1)


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
        lexicon: Lexicon,
        tokens: re.Pattern[str],
        bound: int,
        action: Literal["mask", "block", "flag"],
        mask: Masker,
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
        self._json = tokens is JSON_TOKEN

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
                self._context = joined[-CONTEXT:]
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
        hits, cut = Scan(self._lexicon, self._tokens, text, self._bound, final).decide(origin)
        base = self._offset - origin
        self._offset += cut - origin
        self._context = text[max(0, cut - CONTEXT) : cut]
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
