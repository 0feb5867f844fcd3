"""One channel of ``type: profanity``: the held text and the context in front of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from filters.profanity.lexicon import Lexicon
from filters.profanity.rules import CONTEXT, RULE, SCAN_CONTEXT
from filters.profanity.scanner import Hit, Scan
from pipeline.stage import NOTHING, ChannelEnd, Finding, Release
from pipeline.textview import Normaliser, TextView

Masker = Callable[[str], str]


def stars(span: str) -> str:
    return "*" * len(span)


def first_letter(span: str) -> str:
    return span[0] + "*" * (len(span) - 1)


class ProfanityStage:
    """One channel: the held text, and the released context just in front of it.

    The scan reads the channel through a :class:`~pipeline.textview.TextView` (NFKC,
    format characters removed, the :func:`pipeline.skeleton.fold`, JSON strings decoded)
    and maps what it decides back to the original text, which is what is released or
    masked. ASCII prose is its own view, so a text channel opens a view only when a
    non-ASCII character arrives and drops it again once everything before a stable point
    is released: the per-token cost of prose stays that of a plain scan. A JSON channel
    reads through the view from its first character, since only the view knows where
    its strings are.
    """

    __slots__ = (
        "_action",
        "_bound",
        "_context",
        "_done",
        "_fed",
        "_from_start",
        "_json",
        "_lexicon",
        "_mask",
        "_normaliser",
        "_pending",
        "_released",
        "_vbase",
        "_view",
        "_vpos",
    )

    def __init__(
        self,
        lexicon: Lexicon,
        normaliser: Normaliser,
        bound: int,
        action: Literal["mask", "block", "flag"],
        mask: Masker,
        *,
        json: bool = False,
    ) -> None:
        self._lexicon = lexicon
        self._normaliser = normaliser
        self._bound = bound
        self._action = action
        self._mask = mask
        self._json = json
        self._context = ""
        """The last released characters of the scanned text (view text under a view)."""
        self._pending = ""
        """Scanned text not decided yet (view text under a view)."""
        self._from_start = True
        """Whether ``_context`` still begins at the channel's first character."""
        self._fed = 0
        """Original characters fed, counted while a view is open (else ``_released``
        plus the pending text)."""
        self._released = 0
        """Original characters released (or decided) so far."""
        self._view: TextView | None = normaliser.view(json=True) if json else None
        self._vbase = 0
        """Original channel offset where the view started (its offset 0)."""
        self._vpos = 0
        """View offset of ``_pending[0]``."""
        self._done = False

    @property
    def held(self) -> int:
        """Characters held back; always 0 when flagging, which releases text at once."""
        if self._action == "flag":
            return 0
        return len(self._pending) if self._view is None else self._fed - self._released

    def feed(self, text: str) -> Release:
        """Release the text before the first word that could still become a match."""
        if self._done or not text:
            return NOTHING
        view = self._view
        if view is None:
            if text.isascii():
                # ASCII without a view: the text is its own view, the hot path of prose.
                pending = self._pending + text
                if len(pending) <= self._bound:
                    # When no word that starts in the undecided text could start a
                    # candidate (a piece of prose, or one that ends a held word), a scan
                    # would release it whole: skip the scan. A stem's beginning at the
                    # very end (``...dumbfu``) stays held.
                    context = self._context
                    joined = context + pending
                    quiet = self._lexicon.quiet(joined, len(context))
                    if quiet == len(joined):
                        self._released += len(pending)
                        if len(joined) > CONTEXT:
                            self._from_start = False
                        self._context = joined[-CONTEXT:]
                        self._pending = ""
                        return Release(text if self._action == "flag" else pending)
                    if quiet is not None:
                        cut = quiet - len(context)
                        self._released += cut
                        self._keep_context(joined[:quiet])
                        self._pending = pending[cut:]
                        return Release(text if self._action == "flag" else pending[:cut])
                self._pending = pending
                return self._advance(text, final=False)
            view = self._open_view()
        self._fed += len(text)
        pending = self._pending = self._pending + view.feed(text)
        if len(pending) <= self._bound:
            quiet = self._lexicon.quiet(self._context + pending, len(self._context))
            if quiet is not None:
                return self._release_quiet(text, view, quiet - len(self._context))
        return self._advance(text, final=False)

    def finish(self, end: ChannelEnd) -> Release:
        """Decide the held words as they stand: the channel will not continue them."""
        if self._done:
            return NOTHING
        if self._view is not None:
            self._pending += self._view.finish()
        release = self._advance("", final=True)
        self._done = True
        return release

    def _keep_context(self, released: str) -> None:
        """Keep the end of ``released`` (the context followed by what was just decided)."""
        if len(released) > CONTEXT:
            self._from_start = False
            released = released[-CONTEXT:]
        self._context = released

    def _open_view(self) -> TextView:
        """Start reading through a view at the held text (ASCII, so its own view)."""
        view = self._view = self._normaliser.view()
        self._vbase = self._released
        self._fed = self._released + len(self._pending)
        self._vpos = 0
        held, self._pending = self._pending, ""
        self._pending = view.feed(held)
        return view

    def _release_quiet(self, fed: str, view: TextView, quiet: int) -> Release:
        """Release the scanned pending text up to ``quiet``: no candidate starts in it."""
        pending = self._pending
        self._keep_context(self._context + pending[:quiet])
        self._vpos += quiet
        self._pending = pending[quiet:]
        cut = view.cut(self._vpos)
        start, self._released = self._released, self._vbase + cut
        out = view.original(start - self._vbase, cut)
        self._settle_view(view, cut)
        return Release(fed if self._action == "flag" else out)

    def _settle_view(self, view: TextView, cut: int) -> None:
        """Tell the view what is released; drop it on a text channel once nothing is held
        (the next ASCII piece is then its own view again)."""
        view.forget(cut)
        if not self._json and not self._pending and not view.held:
            self._view = None

    def _advance(self, fed: str, final: bool) -> Release:
        lead, context = self._context[:-SCAN_CONTEXT], self._context[-SCAN_CONTEXT:]
        text = context + self._pending
        origin = len(context)
        scan = Scan(self._lexicon, text, self._bound, final, from_start=self._from_start, lead=lead)
        hits, cut = scan.decide(origin)
        self._keep_context(lead + text[:cut])
        self._pending = text[cut:]
        view = self._view
        if view is None:
            base = self._released - origin
            spans = [(base + h.start, base + h.end) for h in hits]
            original = text[origin:cut]
            start, self._released = self._released, base + cut
            masks = [self._mask(text[h.start : h.end]) for h in hits]
        else:
            v0 = self._vpos - origin
            self._vpos = v0 + cut
            vbase = self._vbase
            spans = []
            masks = []
            for h in hits:
                o0, o1 = view.span(v0 + h.start, v0 + h.end)
                spans.append((vbase + o0, vbase + o1))
                # The mask shows the view's first letter (never a backslash of an
                # escape), is as long as the original it replaces, and is written
                # JSON-safe where it lands.
                shape = text[h.start] + view.original(o0, o1)[1:]
                masks.append(view.encode(self._mask(shape), v0 + h.start))
            orig_cut = view.cut(self._vpos)
            start, self._released = self._released, vbase + orig_cut
            original = view.original(start - vbase, orig_cut)
        release = self._decide(fed, hits, spans, masks, start, original)
        if view is not None:
            self._settle_view(view, self._released - self._vbase)
        return release

    def _decide(
        self,
        fed: str,
        hits: list[Hit],
        spans: list[tuple[int, int]],
        masks: list[str],
        start: int,
        original: str,
    ) -> Release:
        """The release for ``original`` (from channel offset ``start``) with ``hits`` at
        the original ``spans``: flagged, blocked at the first or replaced by ``masks``."""
        if self._action == "flag":
            findings = tuple(
                Finding(h.rule, "flagged", a, b) for h, (a, b) in zip(hits, spans, strict=True)
            )
            return Release(fed, findings=findings) if fed or findings else NOTHING
        if not hits:
            return Release(original) if original else NOTHING
        if self._action == "block":
            a, b = spans[0]
            self._done = True
            self._pending = ""
            return Release(
                original[: a - start],
                block=f"{RULE}: {hits[0].rule}",
                findings=(Finding(hits[0].rule, "blocked", a, b),),
            )
        out: list[str] = []
        position = start
        for (a, b), mask in zip(spans, masks, strict=True):
            out.append(original[position - start : a - start])
            out.append(mask)
            position = b
        out.append(original[position - start :])
        findings = tuple(
            Finding(h.rule, "masked", a, b) for h, (a, b) in zip(hits, spans, strict=True)
        )
        return Release("".join(out), findings=findings)
