"""A normalised view of one channel's text, with an offset map back to the original.

Why
---
A detector written for ``4242 4242 4242 4242`` misses ``\uff14\uff12…`` (fullwidth digits),
``4242\u200b4242…`` (a zero-width space inside) and, in a tool call's JSON arguments,
``4242\\u00204242…``. Rather than teach every pattern every spelling, a stage reads the
channel through a :class:`TextView`: the text as Unicode NFKC, with format characters
(category ``Cf``: zero-width space, word joiner, soft hyphen, BOM...) removed, optionally
folded per character by the caller (a confusable skeleton for word lists), and on JSON
channels with string values decoded. A match found in the view maps back to exactly the
original characters it came from, so the stage replaces those and nothing else.

How it streams
--------------
:meth:`TextView.feed` takes the next piece of original text and returns the view text that
became *stable*: text that no later input can change. What could still change is held as
the *unstable tail*, in original characters (:attr:`TextView.held`):

- a character that a following combining mark may compose with (``e`` + ``\u0301`` is
  ``é``; every ASCII letter is such a character, so a feed ending inside a word holds its
  last letter), and a cluster of marks still growing;
- on JSON channels, an escape cut in half (``\\u00`` + ``40``) and a high surrogate escape
  waiting for its low half.

Clusters are cut after :data:`MAX_CLUSTER` characters whatever follows, so the tail stays
bounded (at most ``MAX_CLUSTER`` plus one surrogate pair escape) and the cut depends on the
text alone: the view is the same for every chunking of the same text.

Stability of a boundary comes from the Unicode data (``unicodedata``): a boundary between
``x`` and ``y`` is stable when no character can compose with ``x`` (``x`` is a starter,
its NFKC form ends in a starter that is no composition's first element, and it is not a
Hangul L or LV) or ``y`` can compose with nothing before it (a starter that is no
composition's second element, whose NFKC form starts likewise). Format characters are
transparent to this test, so ``e`` + ZWSP + ``\u0301`` is ``é`` in the view.

The offset map
--------------
Offsets are absolute: view and original characters counted from the channel's start. The
map is a list of segments, each either *linear* (view and original advance together, one
to one: ASCII prose is one such segment) or *atomic* (a cluster, a decoded escape, a
character that NFKC or the fold changed: any part of it maps to all of it). Original
characters that produced no view character (format characters, a fold to nothing) lie
between segments. :meth:`TextView.span` maps a view span to the smallest original span
covering it; :meth:`TextView.cut` maps a release point. A consumer that has released
original text up to some offset calls :meth:`TextView.forget` with it, which keeps the
map and the kept original text bounded.

Fast path
---------
Plain ASCII (without a backslash on JSON channels) is its own view: a feed of it costs a
few string operations and one map update, no per-character loop. That is the per-token
hot path; only text with non-ASCII characters or escapes pays for the general path.
"""

from __future__ import annotations

import bisect
import json
import re
import unicodedata
from collections.abc import Callable
from functools import cache

Fold = Callable[[str], str]
"""A per-character fold applied to the NFKC text: one character to zero, one or several."""

MAX_CLUSTER = 32
"""The longest run of original characters normalised as one cluster; a longer run of
combining marks is cut here, so the unstable tail stays bounded."""

_FORGET_BATCH = 256
"""Forgotten original characters (or map segments) that pile up before they are dropped."""
_CACHE_LIMIT = 1 << 16
"""Characters whose classification a :class:`Normaliser` remembers; past it, computed."""

# Code points without canonical decompositions: CJK ideographs, Hangul syllables (composed
# algorithmically below), surrogates, private use, and everything past the CJK
# compatibility supplement. Skipping them keeps the import cheap; a test checks that a full
# scan finds the same tables.
_SCAN = ((0, 0x3400), (0x4DC0, 0x4E00), (0xA000, 0xAC00), (0xD7A4, 0xD800), (0xF900, 0x20000))
_SCAN_TAIL = (0x2F800, 0x2FA20)

_L_BASE, _L_COUNT = 0x1100, 19
_V_BASE, _V_COUNT = 0x1161, 21
_T_BASE, _T_COUNT = 0x11A8, 27  # T_BASE is 0x11A7 in the standard; 0x11A7 is not a T
_S_BASE, _S_COUNT, _T_SPAN = 0xAC00, 11172, 28


def composition_tables(
    ranges: tuple[tuple[int, int], ...] = (*_SCAN, _SCAN_TAIL),
) -> tuple[frozenset[str], frozenset[str]]:
    """The characters that begin and that end a canonical composition pair, with the
    Hangul jamo of the standard's algorithmic composition (Unicode 3.12)."""
    firsts: set[str] = set()
    seconds: set[str] = set()
    for lo, hi in ranges:
        for cp in range(lo, hi):
            decomposition = unicodedata.decomposition(chr(cp))
            if decomposition and decomposition[0] != "<":
                parts = decomposition.split()
                if len(parts) == 2:
                    firsts.add(chr(int(parts[0], 16)))
                    seconds.add(chr(int(parts[1], 16)))
    firsts.update(chr(cp) for cp in range(_L_BASE, _L_BASE + _L_COUNT))
    seconds.update(chr(cp) for cp in range(_V_BASE, _V_BASE + _V_COUNT))
    seconds.update(chr(cp) for cp in range(_T_BASE, _T_BASE + _T_COUNT))
    return frozenset(firsts), frozenset(seconds)


_FIRSTS, _SECONDS = composition_tables()
_ASCII_FIRSTS = frozenset(c for c in _FIRSTS if c.isascii())
"""ASCII characters a following combining mark composes with: letters and ``< = >``."""
_JSON_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n"}
_JSON_SIMPLE_ESCAPES |= {"r": "\r", "t": "\t"}
_BODY_END = re.compile(r'["\\]')
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_HEX_PREFIX = re.compile(r"[0-9A-Fa-f]{0,3}")
_ESCAPE_PREFIX = re.compile(r"(?:\\(?:u[0-9A-Fa-f]{0,3})?)?")


def _is_lv(char: str) -> bool:
    offset = ord(char) - _S_BASE
    return 0 <= offset < _S_COUNT and offset % _T_SPAN == 0


@cache
def _classify(char: str) -> tuple[bool, bool, bool, str]:
    """(format char, stable before, stable after, NFKC form) of one character."""
    if unicodedata.category(char) == "Cf":
        return True, True, True, ""
    nfkc = unicodedata.normalize("NFKC", char)
    starter = unicodedata.combining(char) == 0
    head, tail = unicodedata.normalize("NFD", nfkc[:1]), nfkc[-1:]
    before = (
        starter
        and char not in _SECONDS
        and (not head or (unicodedata.combining(head[0]) == 0 and head[0] not in _SECONDS))
    )
    # A precomposed tail (U+00E9) is unsafe too when its decomposition ends in a mark: a
    # following mark of a lower class reorders before that one and composes differently.
    last = unicodedata.normalize("NFD", tail)[-1:] if tail else ""
    after = (
        starter
        and (not tail or (unicodedata.combining(last) == 0 and tail not in _FIRSTS))
        and not _is_lv(tail or char)
    )
    return False, before, after, "".join(c for c in nfkc if unicodedata.category(c) != "Cf")


class Normaliser:
    """What every view of one stage shares: the fold and a per-character cache of it.

    Build one per stage factory (it is immutable apart from its cache) and open a
    :class:`TextView` per channel with :meth:`view`.
    """

    __slots__ = ("_ascii_changed", "_folded", "fold")

    def __init__(self, fold: Fold | None = None) -> None:
        self.fold = fold
        self._folded: dict[str, str] = {}
        changed = "".join(chr(cp) for cp in range(128) if fold and fold(chr(cp)) != chr(cp))
        self._ascii_changed = re.compile(f"[{re.escape(changed)}]") if changed else None

    def view(self, *, json: bool = False) -> TextView:
        """A fresh view of one channel; ``json``: the channel carries a JSON document."""
        return TextView(self, json=json)

    @property
    def ascii_identity(self) -> bool:
        """Whether every ASCII character is its own view (no fold, or one that changes no
        ASCII character): then ASCII text takes the fast path without a search."""
        return self._ascii_changed is None

    def plain(self, text: str) -> bool:
        """Whether ASCII ``text`` is its own view (the fold changes none of its chars)."""
        return self._ascii_changed is None or self._ascii_changed.search(text) is None

    def folded(self, text: str) -> str:
        """``text`` (NFKC, no format characters) through the fold, char by char."""
        fold = self.fold
        if fold is None:
            return text
        cache_ = self._folded
        out = []
        for char in text:
            mapped = cache_.get(char)
            if mapped is None:
                mapped = fold(char)
                if len(cache_) < _CACHE_LIMIT:
                    cache_[char] = mapped
            out.append(mapped)
        return "".join(out)

    def normalise(self, cluster: str) -> str:
        """The view of one cluster: format characters out, NFKC, folded."""
        if len(cluster) == 1:
            return self.folded(_classify(cluster)[3])
        kept = "".join(c for c in cluster if not _classify(c)[0])
        nfkc = unicodedata.normalize("NFKC", kept)
        return self.folded("".join(c for c in nfkc if unicodedata.category(c) != "Cf"))


class TextView:
    """The incremental normalised view of one channel; see the module docstring.

    Feed it every piece of the channel in order (:meth:`feed`, then :meth:`finish`); each
    call returns the view text that became stable. Map view offsets back with
    :meth:`span` and :meth:`cut`, read the original with :meth:`original`, and tell it
    what you have released with :meth:`forget`.
    """

    __slots__ = (
        "_fast",
        "_fold_plain",
        "_forget",
        "_gbase",
        "_in_string",
        "_json",
        "_lin",
        "_norm",
        "_o0",
        "_o1",
        "_obase",
        "_orig",
        "_pending",
        "_sealed",
        "_toggles",
        "_toggles_before",
        "_v0",
        "_vend",
        "flat_since",
        "shift",
    )

    def __init__(self, normaliser: Normaliser | None = None, *, json: bool = False) -> None:
        self._norm = normaliser or Normaliser()
        self._fold_plain = self._norm.ascii_identity
        self._fast = self._fold_plain and not json
        self._json = json
        self._orig = ""
        """Original text from ``_obase`` on: what :meth:`forget` has not dropped yet."""
        self._obase = 0
        self._forget = 0
        self._pending = ""
        """The unstable tail: original characters fed and not yet in the view."""
        self._gbase = 0
        """During the general path: the original offset where the text it works on starts."""
        self._vend = 0
        """View characters produced so far."""
        self._sealed = 0
        """The segment lists map the view up to here; from here to the end the view is
        the original shifted by ``shift``, kept implicit so ASCII feeds touch no list."""
        self._v0: list[int] = []
        self._o0: list[int] = []
        self._o1: list[int] = []
        self._lin: list[bool] = []
        self._in_string = False
        """JSON: whether the text before the pending tail ends inside a string."""
        self._toggles: list[int] = []
        """JSON: view offsets where a string body begins or ends."""
        self._toggles_before = 0
        """JSON: toggles dropped by :meth:`forget` (their parity still counts)."""
        self.flat_since = 0
        """From this view offset to the end the view is the original itself, shifted by
        :attr:`shift` (original offset = view offset + ``shift``, the end included): the
        common case, ASCII prose, where a consumer needs no lookups at all."""
        self.shift = 0

    # --- feeding ----------------------------------------------------------------------

    @property
    def held(self) -> int:
        """Original characters fed that are not in the view yet (the unstable tail)."""
        return len(self._pending)

    @property
    def fed_end(self) -> int:
        """Absolute original offset of the end of what was fed."""
        return self._obase + len(self._orig)

    @property
    def view_end(self) -> int:
        """Absolute offset of the end of the view produced so far."""
        return self._vend

    @property
    def stable_end(self) -> int:
        """Absolute original offset up to which the view is produced (where the pending
        tail starts)."""
        return self._vend + self.shift

    def feed(self, text: str) -> str:
        """Take the next piece of original text; return the view text that became stable."""
        if not text:
            return ""
        self._orig += text
        pending = self._pending
        s = pending + text if pending else text
        if s.isascii():
            if self._fast:
                # The hot path: ASCII is its own view and extends the implicit one-to-one
                # run; only a final letter, which a mark could still change, waits.
                if s[-1] in _ASCII_FIRSTS:
                    self._pending = s[-1]
                    s = s[:-1]
                elif pending:
                    self._pending = ""
                self._vend += len(s)
                return s
            if self._fold_plain or self._norm.plain(s):
                if self._json:
                    if "\\" not in s:
                        return self._ascii_json(s)
                else:
                    # ASCII that this fold leaves alone: the hot path's case, not inlined.
                    keep = s[-1] in _ASCII_FIRSTS
                    self._pending = s[-1] if keep else ""
                    out = s[:-1] if keep else s
                    self._vend += len(out)
                    return out
        return self._general(s, final=False)

    def finish(self) -> str:
        """The channel ended: the unstable tail is final; return its view."""
        if not self._pending:
            return ""
        return self._general(self._pending, final=True)

    def _ascii_json(self, s: str) -> str:
        in_string = self._in_string
        base = self._vend  # ASCII without escapes: view offset = base + index in s
        i = s.find('"')
        while i >= 0:
            self._toggles.append(base + i if in_string else base + i + 1)
            in_string = not in_string
            i = s.find('"', i + 1)
        keep = 1 if in_string and s[-1] in _ASCII_FIRSTS else 0
        out = s[:-keep] if keep else s
        self._pending = s[-keep:] if keep else ""
        self._in_string = in_string
        self._vend += len(out)  # the one-to-one run goes on
        return out

    # --- the general path -------------------------------------------------------------

    def _general(self, s: str, *, final: bool) -> str:
        """Decode (JSON), cluster, normalise and map ``s``, which starts where the view's
        original ends (``_gbase``)."""
        self._gbase = self._vend + self.shift
        out: list[str] = []
        if not self._json:
            used = self._text_run(s, 0, len(s), None, out, final=final)
            self._in_string = False
        else:
            used = self._json_runs(s, out, final=final)
        self._pending = s[used:]
        stable = self._gbase + used
        if stable != self._vend + self.shift:
            # Characters that produced nothing at the end: the one-to-one run ends here.
            self._seal()
            self.flat_since = self._vend
            self.shift = stable - self._vend
        return "".join(out)

    def _json_runs(self, s: str, out: list[str], *, final: bool) -> int:
        """Walk JSON: outside strings verbatim, string bodies decoded and normalised.
        Returns how many characters of ``s`` are now in the view."""
        i, n = 0, len(s)
        in_string = self._in_string
        while i < n:
            if not in_string:
                q = s.find('"', i)
                stop = n if q < 0 else q + 1
                self._verbatim(s, i, stop, out)
                i = stop
                if q < 0:
                    break
                self._toggles.append(self._vend)
                in_string = True
                continue
            chars, offs, j, closed = self._decode(s, i, final=final)
            used = self._text_run(chars, 0, len(chars), offs, out, final=final or closed)
            if used < len(chars):
                i = offs[used]
                break
            i = j
            if not closed:
                break
            self._toggles.append(self._vend)
            self._verbatim(s, j, j + 1, out)
            in_string = False
            i = j + 1
        self._in_string = in_string
        return i

    def _decode(self, s: str, i: int, *, final: bool) -> tuple[str, list[int], int, bool]:
        """Decode the string body from ``s[i]``: the characters, the offset in ``s`` of
        each (and of the end), where decoding stopped and whether at the closing quote."""
        chars: list[str] = []
        offs: list[int] = []
        n = len(s)
        while i < n:
            m = _BODY_END.search(s, i)
            j = n if m is None else m.start()
            chars.extend(s[i:j])
            offs.extend(range(i, j))
            if j == n:
                i = n
                break
            if s[j] == '"':
                offs.append(j)
                return "".join(chars), offs, j, True
            char, width = self._escape(s, j, final=final)
            if width == 0:
                i = j
                break
            chars.append(char)
            offs.append(j)
            i = j + width
        offs.append(i)
        return "".join(chars), offs, i, False

    @staticmethod
    def _escape(s: str, j: int, *, final: bool) -> tuple[str, int]:
        """The escape at ``s[j]`` (a backslash): its character and width, or width 0 when
        more input could still change it."""
        n = len(s)
        if j + 1 >= n:
            return ("\\", 1) if final else ("", 0)
        kind = s[j + 1]
        if kind != "u":
            return _JSON_SIMPLE_ESCAPES.get(kind, "\\" + kind), 2
        if _HEX4.fullmatch(s, j + 2, j + 6) is None:
            if n - j < 6 and not final and _HEX_PREFIX.fullmatch(s, j + 2):
                return "", 0
            return "\\u", 2
        code = int(s[j + 2 : j + 6], 16)
        if 0xD800 <= code < 0xDC00:
            if n - j < 12 and not final and _ESCAPE_PREFIX.fullmatch(s, j + 6):
                return "", 0
            low = s[j + 6 : j + 12]
            if low[:2] == "\\u" and _HEX4.fullmatch(low, 2) and 0xDC00 <= int(low[2:], 16) < 0xE000:
                return json.loads(f'"{s[j : j + 12]}"'), 12
            return "\ufffd", 6
        if 0xDC00 <= code < 0xE000:
            return "\ufffd", 6
        return chr(code), 6

    def _verbatim(self, s: str, start: int, end: int, out: list[str]) -> None:
        if start < end:
            out.append(s[start:end])
            self._linear(self._gbase + start, end - start)

    def _text_run(
        self,
        chars: str,
        start: int,
        end: int,
        offs: list[int] | None,
        out: list[str],
        *,
        final: bool,
    ) -> int:
        """Cluster and normalise ``chars[start:end]``; ``offs[k]`` is where ``chars[k]``
        lies in the fed text (``None``: ``chars`` is it). Returns how many characters
        are now in the view; the rest is the unstable tail (none when ``final``)."""
        norm = self._norm
        seg = start  # the open cluster starts here
        last = -1  # and its last non-format character is here (-1: no open cluster)
        for k in range(start, end):
            fmt, before, _, _ = _classify(chars[k])
            if fmt:
                continue  # transparent: "e" ZWSP U+0301 is one cluster, "é"
            if last >= 0:
                if not before and k - seg < MAX_CLUSTER and not _classify(chars[last])[2]:
                    last = k
                    continue
                self._cluster(chars, seg, last + 1, offs, out, norm)
            seg = last = k
        if last < 0:
            return end  # only format characters: nothing to hold
        if final or _classify(chars[last])[2]:
            self._cluster(chars, seg, last + 1, offs, out, norm)
            return end
        return seg

    def _cluster(
        self,
        chars: str,
        a: int,
        b: int,
        offs: list[int] | None,
        out: list[str],
        norm: Normaliser,
    ) -> None:
        """Emit the view of the cluster ``chars[a:b]`` and its map segment."""
        cluster = chars[a:b]
        viewed = norm.normalise(cluster)
        o0 = self._gbase + (a if offs is None else offs[a])
        o1 = self._gbase + (b if offs is None else offs[b])
        if not viewed:
            return
        out.append(viewed)
        if viewed == cluster and o1 - o0 == b - a:
            self._linear(o0, b - a)
        else:
            self._atomic(o0, o1, len(viewed))

    # --- the map ----------------------------------------------------------------------

    def _linear(self, o0: int, length: int) -> None:
        """``length`` view characters that are the original from ``o0`` on."""
        if o0 != self._vend + self.shift:
            # After a gap: the run so far goes into the lists, a new run starts.
            self._seal()
            self.flat_since = self._vend
            self.shift = o0 - self._vend
        self._vend += length

    def _atomic(self, o0: int, o1: int, length: int) -> None:
        """``length`` view characters made of the original ``[o0, o1)`` as a whole."""
        self._seal()
        self._v0.append(self._vend)
        self._o0.append(o0)
        self._o1.append(o1)
        self._lin.append(False)
        self._vend += length
        self._sealed = self._vend
        self.flat_since = self._vend
        self.shift = o1 - self._vend

    def _seal(self) -> None:
        """Write the implicit one-to-one run into the segment lists."""
        start = self._sealed
        if start < self._vend:
            o0 = start + self.shift
            if self._lin and self._lin[-1] and self._o1[-1] == o0:
                self._o1[-1] = self._vend + self.shift
            else:
                self._v0.append(start)
                self._o0.append(o0)
                self._o1.append(self._vend + self.shift)
                self._lin.append(True)
            self._sealed = self._vend

    def _segment(self, v: int) -> int:
        k = bisect.bisect_right(self._v0, v) - 1
        if k < 0 or v >= self._vend:
            raise IndexError(f"view offset {v} is outside the kept view")
        return k

    def start_of(self, v: int) -> int:
        """Original offset where view character ``v`` starts."""
        if self.flat_since <= v < self._vend:
            return v + self.shift
        k = self._segment(v)
        return self._o0[k] + v - self._v0[k] if self._lin[k] else self._o0[k]

    def end_of(self, v: int) -> int:
        """Original offset where view character ``v - 1`` ends."""
        if self.flat_since < v <= self._vend:
            return v + self.shift
        k = self._segment(v - 1)
        return self._o0[k] + v - self._v0[k] if self._lin[k] else self._o1[k]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the view span ``[start, end)``: every original character
        that produced part of it, nothing more (format characters inside included)."""
        if start >= end:
            at = self.cut(start)
            return at, at
        return self.start_of(start), self.end_of(end)

    def cut(self, v: int) -> int:
        """The original offset to release up to when the view is released up to ``v``:
        characters that produced no view character go with the text before them."""
        return self._vend + self.shift if v >= self._vend else self.start_of(v)

    def reach(self, v: int, limit: int) -> int:
        """The furthest view offset ``w`` (at most :attr:`view_end`) whose span
        ``[v, w)`` covers at most ``limit`` original characters: a window bounded in
        original characters, as hold-back bounds are."""
        end = self._vend
        if v >= end:
            return end
        if v >= self.flat_since:
            return min(end, v + limit)
        origin = self.start_of(v)
        lo, hi = v, end
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.end_of(mid) - origin <= limit:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def original(self, start: int, end: int) -> str:
        """The original text of ``[start, end)`` (not yet forgotten)."""
        if start < self._obase:
            raise IndexError(f"original offset {start} was forgotten")
        return self._orig[start - self._obase : end - self._obase]

    def forget(self, orig: int) -> None:
        """Original text before ``orig`` is released: the view may drop it and the map
        segments that lie wholly before it (their view offsets can then no longer be
        mapped). Dropping is deferred until enough has piled up, so a consumer may call
        this after every feed at the cost of a comparison."""
        if orig - self._obase < _FORGET_BATCH:
            return
        orig = max(orig, self._forget)
        self._forget = orig
        self._seal()
        k = bisect.bisect_right(self._o1, orig)
        # Keep the last segment: ASCII that follows extends it instead of adding one.
        k = min(k, len(self._v0) - 1)
        if k > 0:
            del self._v0[:k], self._o0[:k], self._o1[:k], self._lin[:k]
        if self._toggles and self._v0:
            t = bisect.bisect_left(self._toggles, self._v0[0])
            if t:
                self._toggles_before += t
                del self._toggles[:t]
        self._orig = self._orig[orig - self._obase :]
        self._obase = orig

    # --- JSON -------------------------------------------------------------------------

    @property
    def json(self) -> bool:
        """Whether this is a JSON channel's view (strings decoded)."""
        return self._json

    def in_string(self, v: int) -> bool:
        """JSON: whether view character ``v`` lies inside a string body (for ``v`` at the
        end of the view: whether the view ends inside one)."""
        if not self._json:
            return False
        return (self._toggles_before + bisect.bisect_right(self._toggles, v)) % 2 == 1

    def encode(self, replacement: str, v: int) -> str:
        """``replacement`` written safely where view character ``v`` was: escaped inside a
        JSON string, a JSON string of its own outside one, as is in text."""
        if not self._json:
            return replacement
        quoted = json.dumps(replacement, ensure_ascii=False)
        return quoted[1:-1] if self.in_string(v) else quoted
