"""One JSON channel: release validated text, hold the document's end, give the verdicts."""

from __future__ import annotations

from itertools import groupby
from typing import Final

from filters.json.automaton import JsonScanner
from filters.json.events import SchemaError, Violation
from filters.json.grammar import INCOMPLETE, SYNTAX_RULE, TRUNCATED_RULE, UNUSABLE_RULE
from filters.json.verdict import FinalCheck
from pipeline.stage import NOTHING, ChannelEnd, Finding, Release

HELD_END_CHARS: Final = 64
"""What ``max_holdback`` covers of a document's held end: its close (or a top-level
number or literal) plus the whitespace runs after it, each run counting one. Models pad
with newlines and spaces; a run of any length is one run, so ``{"a": 1}`` and a thousand
spaces stays well inside the bound, and only whitespace alternating more than 63 times
meets the overflow policy."""


class JsonStage:
    """One channel's validator: releases validated text, minus a held tail.

    ``keep`` is how many validated characters stay held (``None``: all of them until the
    document is complete and valid). With ``keep >= 1`` the document's end (see
    :attr:`JsonScanner.complete_from`) and everything after it stay held too, until
    ``finish``. In flag mode nothing is held, since nothing is ever withheld from the client.

    Whitespace after the end is stored as runs of one character (``(" ", 100)``) and each
    run counts as one held character: it can be held however long it is, in constant
    memory, and it reaches the client intact at ``finish``. The scanner's ``max_chars``
    still counts every character of it.
    """

    __slots__ = (
        "_decided",
        "_document",
        "_final",
        "_flag",
        "_held",
        "_held_len",
        "_keep",
        "_notice",
        "_released",
        "_runs",
        "_scanner",
    )

    def __init__(
        self,
        scanner: JsonScanner,
        *,
        keep: int | None,
        flag: bool,
        notice: Finding | None = None,
        final: FinalCheck | None = None,
    ) -> None:
        self._scanner = scanner
        self._notice = notice
        """A finding to report with the first release (the request schema was unusable)."""
        self._keep = keep
        self._flag = flag
        self._final = final
        """The end-of-document validator, when the schema has keywords decided only there."""
        self._document: list[str] = []
        """The whole input, kept only for ``final`` (released text included)."""
        self._held: list[str] = []
        self._held_len = 0
        self._runs: list[tuple[str, int]] = []
        """Whitespace after the document's end, as (character, count) runs."""
        self._released = 0
        self._decided = False
        """A verdict was given: flag mode passes the rest through, block mode ended."""

    @property
    def held(self) -> int:
        """Characters received and not yet released, a whitespace run after the end as one."""
        return self._held_len + len(self._runs)

    def feed(self, text: str) -> Release:
        """Validate ``text``; release what is validated, older than the lookahead and
        before the document's end."""
        if self._decided:
            return Release(text) if self._flag else NOTHING
        if self._final is not None:
            self._document.append(text)
        found = self._scanner.feed(text)
        if found is not None:
            return self._noticed(self._verdict(found, text, f"at char {found.offset}"))
        release = Release(self._hold(text))
        return release if self._notice is None else self._noticed(release)

    def finish(self, end: ChannelEnd) -> Release:
        """Judge the end of the document: complete, truncated by the model, or cut short."""
        if self._decided:
            return NOTHING
        return self._noticed(self._end(end))

    def _end(self, end: ChannelEnd) -> Release:
        found = self._scanner.finish()
        if found is None:
            return self._final_verdict()
        if found.rule == INCOMPLETE and end is ChannelEnd.TRUNCATED:
            self._decided = True
            finding = Finding(TRUNCATED_RULE, "flagged", found.offset, found.offset)
            return Release(self._take_all(), findings=(finding,))
        if found.rule == INCOMPLETE:
            found = found._replace(rule=SYNTAX_RULE)
        return self._verdict(found, "", "at end")

    def _final_verdict(self) -> Release:
        """A complete, valid document: the validator judges what streaming did not."""
        final = self._final
        if final is None:
            return Release(self._take_all())
        document = "".join(self._document)
        self._document = []
        try:
            found = final.judge(document, self._scanner.ended_at)
        except SchemaError:
            where = self._scanner.ended_at
            finding = Finding(UNUSABLE_RULE, "flagged", where, where)
            return Release(self._take_all(), findings=(finding,))
        if found is None:
            return Release(self._take_all())
        return self._verdict(found, "", "at end")

    def _noticed(self, release: Release) -> Release:
        """``release`` with the pending notice in front of its findings, once."""
        notice, self._notice = self._notice, None
        if notice is None:
            return release
        return Release(release.text, release.block, (notice, *release.findings))

    def _hold(self, text: str) -> str:
        self._held.append(text)
        self._held_len += len(text)
        keep = self._keep
        if keep is None:
            return ""
        scanner = self._scanner
        end = scanner.complete_from
        if keep and end >= 0:
            if scanner.ended_at >= 0:
                self._fold_whitespace(scanner.ended_at)
            # Everything before the end is released: only trailing data can still fail.
            keep = self._released + self._held_len - end
        if self._held_len <= keep:
            return ""
        # At most ``keep`` characters were held before this piece: the join is O(keep + text).
        joined = "".join(self._held)
        cut = len(joined) - keep
        self._held = [joined[cut:]] if keep else []
        self._held_len = keep
        self._released += cut
        return joined[:cut]

    def _fold_whitespace(self, ended_at: int) -> None:
        """Move the held whitespace after ``ended_at`` into runs (all of it is whitespace:
        anything else after the end is a violation the scanner already reported)."""
        split = ended_at - self._released
        if split >= self._held_len:
            return
        joined = "".join(self._held)
        self._held = [joined[:split]]
        self._held_len = split
        runs = self._runs
        for char, group in groupby(joined[split:]):
            count = sum(1 for _ in group)
            if runs and runs[-1][0] == char:
                runs[-1] = (char, runs[-1][1] + count)
            else:
                runs.append((char, count))

    def _take_all(self) -> str:
        if self._runs:
            self._held.append("".join(char * count for char, count in self._runs))
            self._runs = []
        text = "".join(self._held)
        self._held = []
        self._held_len = 0
        self._released += len(text)
        return text

    def _verdict(self, found: Violation, text: str, where: str) -> Release:
        """Flag (release everything, stop checking) or block (release up to the error)."""
        self._decided = True
        start = self._released
        pending = self._take_all() + text
        self._released += len(text)
        end = min(found.offset + 1, start + len(pending))
        if self._flag:
            finding = Finding(found.rule, "flagged", found.offset, end)
            return Release(pending, findings=(finding,))
        # Whole-document mode promises the client only documents that validated in full.
        valid = "" if self._keep is None else pending[: max(0, self._valid_end(found) - start)]
        finding = Finding(found.rule, "blocked", found.offset, end)
        return Release(valid, block=f"json: {found.message} {where}", findings=(finding,))

    def _valid_end(self, found: Violation) -> int:
        """Where released text stops on a block: before the error, and with a lookahead
        before the document's end as well (trailing garbage must not follow a release that
        reads as a whole document)."""
        end = self._scanner.complete_from
        if self._keep and 0 <= end < found.offset:
            return end
        return found.offset
