"""The redact stage's scanner: PII and secrets replaced in the stream while it streams.

How a channel is cut
--------------------
The stage keeps the input it has not released yet (``_buf``) and, just before it, the
last ``_CONTEXT`` input characters it did release (``_ctx``), so lookbehinds see the same
text however the upstream split it. After each feed it walks the buffer left to right and
asks every detector for its first candidate from the current position:

- ``MATCH``: a complete, validated match that no further input can change;
- ``OPEN``: a candidate more input could still complete, grow or displace (a regex partial
  match, or a complete match close enough to the end of what has arrived that its right
  boundary or a longer alternative is still undecided);
- ``OVERFLOW``: a candidate still open ``max_holdback`` characters after its start.

The earliest candidate wins (at one position: OVERFLOW, then OPEN, then the longest
MATCH, then detector priority). Text before it is released; a MATCH is replaced; an OPEN
stops the walk and is held with everything after it; an OVERFLOW is masked, fail-closed.

Each candidate is judged on at most ``max_holdback`` characters from its start (``endpos``
of the regex call), never on how much text happened to arrive, which is what makes the
output and findings identical for every split of the same text.

A feed searches only with the detectors that have a live candidate or that can start in
the new text (at a first character of theirs where a word starts, or anywhere for the
BEGIN line, whose boundary allows it), each from its live candidate or the new text on.
Each tries its ``opening`` first, a stdlib search that rules out nearly everything, and
for an email address or IPv6 address still growing at the end finds it outright: a token
of prose costs a stdlib search or two and no ``regex`` call, never a rescan of what was
released. A JSON channel reads the same way until a backslash is in sight.

What is held
------------
- Ordinary prose holds nothing when a feed ends in whitespace or in punctuation that
  cannot continue a value (``,`` ``;`` ``!`` ``?`` ``)``). A feed that ends inside a word
  holds that word, up to 64 characters: it may still become an email's local part
  (``john`` + ``@example.com``) or a key (``sk`` + ``-proj-...``), and releasing it would
  leak the first half of a secret. ``word.`` holds ``word.`` (``john.`` + ``smith@...``).
- A candidate is held at most ``max_holdback`` characters (default 256). Natural maxima
  are far lower: card 25, IBAN 42, IPv6 45, phone about 30, private key BEGIN line 70,
  email local part 64. Longer candidates (huge emails, JWTs whose header and payload
  exceed the bound, over-long keys) are masked with the stage's ``mask`` under the rule
  ``overflow``, and the run of token characters that follows them is dropped.
- A private key block is never held: once its BEGIN line is complete the placeholder goes
  out and the stage drops input (``held`` stays 0) until the END line, or in a JSON
  channel until the string ends. With no END, ``finish`` drops the rest.
- A JWT is committed on ``header.payload.``; its signature is dropped as it streams.

Through the normalised view
---------------------------
With ``normalise`` on (the default) the stage scans the channel's
:class:`~pipeline.textview.TextView`, not the raw text: everything above then holds in
*view* characters, and the view maps each decision back. Plain text is released as the
original characters up to the view's cut; a match replaces exactly the original span of
its view span (a zero-width space or a ``\\u0040`` escape inside goes with it); findings
carry original offsets. Windows are measured in original characters, so the bound stays
what ``held`` (original characters) reports. The view's own unstable tail (a last letter
a combining mark could still change, a cut escape) counts as held too.
"""

from __future__ import annotations

import enum
from typing import Any

import regex

from filters.redact.cursor import CONTEXT, Cursor
from filters.redact.detectors import Tail
from filters.redact.patterns import PEM_END, PEM_END_MAX
from filters.redact.rules import Event, Numbering, Plan, Rule
from pipeline.stage import NOTHING, ChannelEnd, Finding, Release

_QUOTE_OR_BACKSLASH = regex.compile(r'["\\]')
_PEM_END_RX = regex.compile(PEM_END)

_FORGET_EVERY = 256
"""Released original characters after which the view is told to drop them."""

# Candidate kinds, in the order they win at one position.
_OVERFLOW, _OPEN, _MATCH = 0, 1, 2


class _Mode(enum.Enum):
    SCAN = "scan"
    """Looking for candidates."""
    RUN = "run"
    """Dropping the rest of a token (a JWT signature, an over-long candidate)."""
    PEM = "pem"
    """Dropping a private key block until its END line."""


class RedactStage(Cursor):
    """One channel's redaction state; see the module docstring for how it cuts."""

    __slots__ = (
        "_buf",
        "_forget_at",
        "_free",
        "_live",
        "_live_at",
        "_mode",
        "_numbering",
        "_pem_tail",
        "_reading",
        "_run_rx",
        "_span_rule",
        "_span_start",
    )

    def __init__(self, plan: Plan, numbering: Numbering, *, json: bool = False) -> None:
        super().__init__(plan, json=json)
        self._numbering = numbering
        self._mode = _Mode.SCAN
        self._buf = ""
        self._forget_at = _FORGET_EVERY
        self._reading = 1
        """Which of a rule's ``openings`` the text being scanned takes."""
        self._free = 0
        """A candidate at or after this index of the text being scanned has its whole
        window in the text."""
        self._live: dict[int, Event] = {}
        """Each detector's live candidate (one more input may still complete, or one
        found beyond the held point), as found in the last scan; other detectors have no
        candidate in the input seen so far."""
        self._live_at = 0
        """Where ``_buf`` started in the last scan's text: ``_live``'s offsets are there."""
        self._run_rx: Any = None
        self._span_rule = ""
        self._span_start = 0
        self._pem_tail = ""

    @property
    def held(self) -> int:
        """Characters received and not yet released or dropped (original characters)."""
        return len(self._buf) if self._view is None else self._view.fed_end - self._orig

    def feed(self, text: str) -> Release:
        """Release everything up to the first candidate still in progress."""
        return self._process(text, final=False)

    def finish(self, end: ChannelEnd) -> Release:
        """Decide everything: unfinished candidates are plain text, but an unfinished
        private key block is dropped."""
        return self._process("", final=True)

    def _process(self, text: str, final: bool) -> Release:
        out: list[str] = []
        found: list[Finding] = []
        self._out = out
        self._found = found
        view = self._view
        if view is not None:
            text = view.finish() if final else view.feed(text)
        rest: str | None = text
        while rest is not None:
            if self._mode is _Mode.SCAN:
                rest = self._scan(rest, final)
            elif self._mode is _Mode.RUN:
                rest = self._drop_run(rest, final)
            else:
                rest = self._drop_pem(rest, final)
        if view is not None and self._orig >= self._forget_at:
            view.forget(self._orig)
            self._forget_at = self._orig + _FORGET_EVERY
        if found:
            return Release("".join(out), findings=tuple(found))
        return Release("".join(out)) if out else NOTHING

    # --- scanning ---------------------------------------------------------------------

    def _scan(self, text: str, final: bool) -> str | None:
        """Release, replace and hold; return the input left over when a match switches
        to a dropping mode, else ``None``."""
        ctx = self._ctx
        s = ctx + self._buf + text
        base = len(ctx)
        n = len(s)
        self._sbase = base
        view = self._view
        plan = self._plan
        flat = view is None or (
            self._pos >= view.flat_since and self._orig == self._pos + view.shift
        )
        self._flat = flat
        # Without a backslash, JSON's escape-aware boundaries read like the text's.
        plain = not plan.json or "\\" not in s
        self._reading = (2 if s.isascii() else 1) if plain else 0
        # From here on one window reaches the end (flat: bound view chars are as many
        # original ones); elsewhere ``_limit`` says.
        self._free = n - plan.bound if flat else n + 1
        cache = self._firsts(s, base, n, text, final, plain)
        event = min(cache.values(), default=None)
        p = base
        while event is not None and event[1] == _MATCH:
            start, _, _, index, end = event
            self._plain(s, p, start)
            rule = self._plan.rules[index]
            placeholder = self._plan.render(rule, s[start:end], self._numbering)
            first, last = self._replace(placeholder, start, end)
            if rule.tail is not Tail.NONE:
                self._live = {}
                return self._enter_tail(rule, s, base, first, end)
            self._found.append(Finding(rule.name, "redacted", first, last))
            p = end
            event = self._next(s, p, n, final, plain, cache)
        stop = n if event is None else event[0]
        if flat and p < stop and self._json is None:
            # The common end of a feed, inlined: release up to the first open candidate.
            self._out.append(s[p:stop])
            if self._view is not None:
                self._orig += stop - p
        else:
            self._plain(s, p, stop)
        if event is not None and event[1] == _OVERFLOW:
            self._live = {}
            return self._overflow(s, base, stop)
        self._buf = s[stop:]
        self._live = cache
        self._live_at = stop
        self._pos += stop - base
        self._ctx = s[max(0, stop - CONTEXT) : stop]
        return None

    def _firsts(
        self, s: str, base: int, n: int, text: str, final: bool, plain: bool
    ) -> dict[int, Event]:
        """Each detector's first candidate in ``s``, by detector; none: not listed.

        Only detectors with a live candidate or a possible first character in the new
        ``text`` can have one; each searches from its live one or the new text.
        """
        live = self._live
        rules = self._plan.rules
        shift = base - self._live_at
        fresh = n - len(text)
        cache: dict[int, Event] = {}
        for i in self._plan.triggered(s, fresh, live, plain):
            event = live.get(i)
            p = fresh if event is None else event[0] + shift
            event = self._first(i, rules[i], s, p, n, final, plain)
            if event is not None:
                cache[i] = event
        return cache

    def _next(
        self, s: str, p: int, n: int, final: bool, plain: bool, cache: dict[int, Event]
    ) -> Event | None:
        """The candidate to act on at or after ``p``. ``cache`` keeps each detector's
        first candidate, still valid while it lies at or after ``p``; one before ``p``
        is searched again from ``p`` (it lay at or after where its search began)."""
        rules = self._plan.rules
        for i, event in list(cache.items()):
            if event[0] < p:
                found = self._first(i, rules[i], s, p, n, final, plain)
                if found is None:
                    del cache[i]
                else:
                    cache[i] = found
        return min(cache.values(), default=None)

    def _first(
        self, i: int, rule: Rule, s: str, p: int, n: int, final: bool, plain: bool
    ) -> Event | None:
        """``rule``'s first candidate at or after ``p``: its opening first, a stdlib
        search that usually settles it, else the detector's own pattern."""
        opening = rule.openings[self._reading]
        if opening is not None and (p >= self._free or (not self._flat and self._limit(p, n) == n)):
            # One window reaches the end, so the opening's \Z is where a partial match ends.
            m = opening.search(s, p, n)
            if m is None:
                return None
            if rule.needs and s.find(rule.needs, p, n) < 0:
                # No complete match without ``needs``: the opening found the only kind of
                # candidate there is, one still growing at the end (none once final).
                start = m.start()
                return None if final or start == n else (start, _OPEN, 0, i, start)
        return self._search(i, rule, s, p, n, final)

    def _search(self, i: int, rule: Rule, s: str, p: int, n: int, final: bool) -> Event | None:
        """``rule``'s first candidate at or after ``p``, by its pattern.

        The search runs in windows of ``bound`` characters: a position the search skips
        has no way through its window, hence none through its own (longer) window either.
        """
        pos = p
        while pos < n:
            window_end = self._limit(pos, n)
            m = rule.rx.search(s, pos, window_end, partial=window_end < n or not final)
            if m is None:
                if window_end == n:
                    return None
                pos = window_end
                continue
            start = m.start()
            if start == n:
                return None  # the empty partial match at the end: a candidate yet to come
            event = self._judge(i, rule, s, start, n, final, m if window_end == n else None)
            if event is not None:
                return event
            pos = start + 1
        return None

    def _judge(
        self, i: int, rule: Rule, s: str, start: int, n: int, final: bool, m: Any
    ) -> Event | None:
        """What the candidate at ``start`` is, judged on ``s[start:start + bound]`` only."""
        window_end = self._limit(start, n)
        truncated = window_end < n
        partial = truncated or not final
        if m is None:
            m = rule.rx.match(s, start, window_end, partial=partial)
            if m is None:
                return None
        end = m.end()
        # regex prefers a complete match to a partial one, so "a@b.co" + "m" or
        # "a@b.com." + "au" must be caught by asking whether any way through the pattern
        # reaches the end of the window.
        if partial and (
            m.partial
            or (
                not rule.decisive
                and (
                    end + rule.lookahead > window_end
                    or rule.rx.fullmatch(s, start, window_end, partial=True) is not None
                )
            )
        ):
            return (start, _OVERFLOW if truncated else _OPEN, 0, i, start)
        if end == start:
            return None
        if not self._accepts(rule, s, start, end):
            # A value wrapped over a line break that is not one as a whole may still be
            # one up to the break (a card, then a year on the next line).
            cut = s.find("\n", start, end) if rule.wraps else -1
            if cut < 0:
                return None
            m = rule.rx.match(s, start, len(s[start:cut].rstrip(" \r")) + start)
            if m is None or m.end() == start or not self._accepts(rule, s, start, m.end()):
                return None
            end = m.end()
        return (start, _MATCH, start - end, i, end)

    def _overflow(self, s: str, base: int, start: int) -> str:
        """Mask a candidate that outgrew the bound, then drop the rest of its token."""
        end = self._limit(start, len(s))
        if self._plan.json or (self._view is not None and self._view.json):
            # Never swallow the string's closing quote or half an escape.
            cut = _QUOTE_OR_BACKSLASH.search(s, start, end)
            if cut is not None:
                end = cut.start()
        self._span_rule = "overflow"
        self._span_start = self._replace(self._plan.mask, start, end)[0]
        self._mode = _Mode.RUN
        self._run_rx = self._plan.overflow_rx
        self._buf = ""
        self._advance(s, base, end)
        return s[end:]

    def _enter_tail(self, rule: Rule, s: str, base: int, first: int, end: int) -> str:
        """Drop what follows ``rule``'s match (``first``: its finding's start)."""
        self._span_rule = rule.name
        self._span_start = first
        self._mode = _Mode.RUN if rule.tail is Tail.RUN else _Mode.PEM
        self._run_rx = rule.tail_rx
        self._buf = ""
        self._advance(s, base, end)
        return s[end:]

    # --- dropping ---------------------------------------------------------------------

    def _drop_run(self, text: str, final: bool) -> str | None:
        k = self._run_rx.match(text).end()
        self._drop(text[:k])
        if k == len(text) and not final:
            return None
        self._close()
        return text[k:] or None

    def _drop_pem(self, text: str, final: bool) -> str | None:
        tail = self._pem_tail
        s = tail + text
        stop, escape = self._string_end(text)
        m = _PEM_END_RX.search(s)
        if m is not None and (stop < 0 or m.start() - len(tail) < stop):
            k = m.end() - len(tail)
        elif stop >= 0:
            k = stop
        elif final:
            k = len(text)
        else:
            self._drop(text)
            self._pem_tail = s[-PEM_END_MAX:]
            self._pem_escape = escape
            return None
        self._drop(text[:k])
        self._close()
        self._pem_tail = ""
        self._pem_escape = False
        return text[k:] or None

    def _close(self) -> None:
        end = self._pos if self._view is None else self._orig
        self._found.append(Finding(self._span_rule, "redacted", self._span_start, end))
        self._mode = _Mode.SCAN
