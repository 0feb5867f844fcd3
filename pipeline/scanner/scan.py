"""The per-channel scan: hold back exactly what a match may still start in, decide the rest.

The scan reads the channel through a view (:mod:`pipeline.scanner.views`: normalised, or
the input as is). At each piece of view text it looks at ``context + held + new`` and asks:

1. Where is the leftmost *open candidate* — a place where more text could still make a
   match start, grow or change alternative? (:attr:`Rules.open_candidates` searched with
   ``partial=True``, and :attr:`Rules.at_end`.) Everything before it is decided.
2. Which complete matches start before that place? Their outcome can no longer change, so
   each is decided now: the ``on_match`` decision is applied and searching resumes after
   it (the standard left-to-right, non-overlapping scan).

Decided view text is released as the *input* it came from, with each acted-on match's
input span replaced. The held tail starts at the open candidate; the last
``CONTEXT_CHARS`` released view characters stay as look-behind context. The result equals
one scan over the whole text, however the text was split — the property the compliance
kit checks.
"""

from __future__ import annotations

from typing import Final

from pipeline.scanner.decisions import Action, Decision, Hit, OnMatch
from pipeline.scanner.rules import Rules
from pipeline.scanner.views import View
from pipeline.stage import NOTHING, Channel, ChannelEnd, Finding, Release

__all__ = ["CONTEXT_CHARS", "ScanStage"]

CONTEXT_CHARS: Final = 64
"""Released view text kept for look-behinds (they may look back this far across feeds)."""


class ScanStage:
    """One channel's scan (a sync :class:`pipeline.stage.Stage`)."""

    __slots__ = (
        "_buffer",
        "_channel",
        "_context",
        "_done",
        "_fed",
        "_mask",
        "_name",
        "_on_match",
        "_released",
        "_rules",
        "_start",
        "_view",
    )

    def __init__(
        self,
        rules: Rules,
        on_match: OnMatch,
        channel: Channel,
        view: View,
        *,
        mask: str,
        name: str,
    ) -> None:
        self._rules = rules
        self._on_match = on_match
        self._channel = channel
        self._view = view
        self._mask = mask
        self._name = name
        self._buffer = ""
        """View text held (undecided)."""
        self._context = ""
        self._start = 0
        """View offset of the first held view character."""
        self._fed = 0
        """Input characters fed so far."""
        self._released = 0
        """Input characters released or decided so far."""
        self._done = False

    @property
    def held(self) -> int:
        return self._fed - self._released

    def feed(self, text: str) -> Release:
        if not text or self._done:
            return NOTHING
        self._fed += len(text)
        return self._scan(self._view.feed(text), final=False)

    def finish(self, end: ChannelEnd) -> Release:
        if self._done or self._fed == self._released:
            return NOTHING
        return self._scan(self._view.finish(), final=True)

    def _open_at(self, hay: str, at: int, final: bool) -> int:
        """Where the leftmost open candidate at or after ``at`` starts (``len`` if none)."""
        size = len(hay)
        if final:
            return size
        rules = self._rules
        # An open candidate runs into the end of the text and is at most ``longest``
        # characters long (longer ones are ignored, which only an explicit ``longest`` on
        # unbounded patterns allows), so it starts in the last ``longest`` characters:
        # searching only there keeps a long piece cheap.
        near_end = max(at, size - rules.longest)
        candidate = rules.open_candidates.search(hay, near_end, partial=True)
        first: int = size if candidate is None else candidate.start()
        ending = rules.at_end.search(hay, near_end)
        if ending is not None and ending.start() < first:
            return int(ending.start())
        return first

    def _scan(self, new: str, *, final: bool) -> Release:
        base = len(self._context)
        hay = self._context + self._buffer + new
        to_view = self._start - base  # hay index -> absolute view offset
        view = self._view
        out: list[str] = []
        findings: list[Finding] = []
        search_at = base
        hold = self._open_at(hay, base, final)
        pattern, longest = self._rules.pattern, self._rules.longest
        while (match := pattern.search(hay, search_at)) is not None and match.start() < hold:
            start, stop = match.span()
            if stop == start or stop - start > longest:
                search_at = start + 1
                continue
            first, last = view.span(start + to_view, stop + to_view)
            hit = Hit(self._rules.rule_of(match), match[0], first, last, self._channel)
            decision = self._decide(hit)
            replacement = self._replacement(decision, start + to_view, first, last)
            if replacement is None:  # unsafe to rewrite here (a JSON string boundary)
                search_at = start + 1
                continue
            out.append(view.original(self._released, first))
            if decision.action is not Action.KEEP:
                rule = decision.rule or hit.rule
                findings.append(Finding(rule, decision.action.value, first, last))
            if decision.action is Action.BLOCK:
                self._done, self._buffer = True, ""
                self._released = self._fed
                reason = decision.text or f"{self._name}: {decision.rule or hit.rule}"
                return Release("".join(out), block=reason, findings=tuple(findings))
            out.append(replacement)
            self._released = last
            search_at = stop
            if hold < stop:
                hold = self._open_at(hay, stop, final)
        cut = self._fed if final else view.cut(hold + to_view)
        out.append(view.original(self._released, cut))
        self._released = cut
        view.forget(cut)
        self._start = hold + to_view
        self._context = hay[max(0, hold - CONTEXT_CHARS) : hold]
        self._buffer = hay[hold:]
        text = "".join(out)
        return Release(text, findings=tuple(findings)) if findings else Release(text)

    def _decide(self, hit: Hit) -> Decision:
        on_match = self._on_match
        return on_match if isinstance(on_match, Decision) else on_match(hit)

    def _replacement(self, decision: Decision, v: int, first: int, last: int) -> str | None:
        """The input that goes out for the match, or None when it cannot be rewritten."""
        action = decision.action
        view = self._view
        if action in (Action.FLAG, Action.KEEP):
            return view.original(first, last)
        if action is Action.BLOCK:
            return ""
        if not view.rewritable(first, last):
            return None
        return view.encode(self._mask if action is Action.MASK else decision.text, v)
