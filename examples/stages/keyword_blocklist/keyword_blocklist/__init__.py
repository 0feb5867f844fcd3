"""``type: keyword_blocklist``: mask or block words and patterns from a list file as they stream.

The list file (UTF-8) has one entry per line: a word or phrase, matched case-insensitively
as a whole word, or ``re:`` followed by a regular expression in ``regex`` module syntax.
Blank lines and lines starting with ``#`` are ignored. Findings and block reasons name the
entry by its line number, never the text it matched.

Hold-back is minimal: after each piece of text the stage asks ``regex`` whether the tail of
what it has seen could still become a match (``partial=True``) and holds back only from
where that possible match starts. Ordinary prose flows through with nothing held.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Literal, Self

import regex
from pydantic import Field, model_validator

from pipeline.stage import Channel, ChannelEnd, Finding, Release, StageConfig, StageFactory

__all__ = ["KeywordBlocklistConfig", "KeywordBlocklistFactory", "KeywordBlocklistStage"]

_CONTEXT_CHARS = 32
"""Released input kept for look-behind, so ``(?<!\\w)`` sees the character before a match."""


class KeywordBlocklistConfig(StageConfig):
    """Keys of ``type: keyword_blocklist``."""

    type: str = "keyword_blocklist"
    list_file: Path | None = None
    """The list to use; a relative path is relative to the proxy's working directory.
    Default: the list shipped with this package."""
    action: Literal["mask", "block"] = "mask"
    """``mask`` replaces each match with ``mask``; ``block`` ends the response at the first."""
    ignore_case: bool = True
    max_match_chars: int = Field(default=40, ge=1, le=10_000)
    """Longest text an entry may match; longer matches are ignored. It is also the most this
    stage ever holds back, so keep it close to your longest entry."""

    @model_validator(mode="after")
    def _list_compiles(self) -> Self:
        compile_blocklist(read_entries(self.list_file), self.ignore_case)
        return self


def read_entries(list_file: Path | None) -> list[tuple[int, str]]:
    """``(line number, pattern)`` for each entry; ValueError naming a bad line."""
    if list_file is None:
        text = importlib.resources.files(__name__).joinpath("blocklist.txt").read_text("utf-8")
    else:
        try:
            text = list_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read list_file {str(list_file)!r}: {exc.strerror}") from None
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("re:"):
            entries.append((number, line[3:]))
        else:
            # Look-arounds rather than \b, so entries that start or end with punctuation work.
            entries.append((number, rf"(?<!\w){regex.escape(line)}(?!\w)"))
    if not entries:
        raise ValueError("the blocklist has no entries")
    return entries


def compile_blocklist(entries: list[tuple[int, str]], ignore_case: bool) -> regex.Pattern[str]:
    """One alternation with a named group per entry, so a match tells its line."""
    for number, pattern in entries:
        try:
            compiled = regex.compile(pattern)
        except regex.error as exc:
            raise ValueError(f"blocklist line {number}: not a valid regex: {exc}") from None
        if compiled.fullmatch(""):
            raise ValueError(f"blocklist line {number}: matches empty text, which masks nothing")
    alternation = "|".join(f"(?P<line{number}>{pattern})" for number, pattern in entries)
    return regex.compile(alternation, regex.IGNORECASE if ignore_case else 0)


class KeywordBlocklistStage:
    """One channel's scan: the text held, the input released before it, offsets."""

    __slots__ = ("_buffer", "_context", "_factory", "_offset")

    def __init__(self, factory: KeywordBlocklistFactory) -> None:
        self._factory = factory
        self._buffer = ""
        self._context = ""
        self._offset = 0

    @property
    def held(self) -> int:
        return len(self._buffer)

    def feed(self, text: str) -> Release:
        return self._scan(self._buffer + text, final=False) if text else Release()

    def finish(self, end: ChannelEnd) -> Release:
        return self._scan(self._buffer, final=True)

    def _scan(self, buffer: str, *, final: bool) -> Release:
        """Release what is decided in ``buffer``; hold the tail a match may still start in."""
        pattern, longest = self._factory.pattern, self._factory.config.max_match_chars
        base = len(self._context)
        haystack = self._context + buffer
        out: list[str] = []
        findings: list[Finding] = []
        decided = position = base
        hold = len(haystack)
        while (match := pattern.search(haystack, position, partial=not final)) is not None:
            start, stop = match.span()
            if match.partial or (not final and stop == len(haystack)):
                if len(haystack) - start <= longest:
                    hold = start  # the next text may complete, extend or undo it
                    break
            elif start < stop <= start + longest:
                out.append(haystack[decided:start])
                finding = self._finding(match, self._offset + start - base)
                findings.append(finding)
                if self._factory.config.action == "block":
                    self._buffer = ""
                    reason = f"keyword_blocklist: {finding.rule}"
                    return Release("".join(out), block=reason, findings=(finding,))
                out.append(self._factory.config.mask)
                decided = position = stop
                continue
            position = start + 1  # empty, or longer than any entry may match: none from here
        out.append(haystack[decided:hold])
        self._offset += hold - base
        self._context = haystack[max(0, hold - _CONTEXT_CHARS) : hold]
        self._buffer = haystack[hold:]
        return Release("".join(out), findings=tuple(findings))

    def _finding(self, match: regex.Match[str], start: int) -> Finding:
        line = next(name for name in self._factory.groups if match.group(name) is not None)
        action = "blocked" if self._factory.config.action == "block" else "masked"
        return Finding(f"blocklist:{line}", action, start, start + match.end() - match.start())


class KeywordBlocklistFactory(StageFactory[KeywordBlocklistConfig]):
    """Reads and compiles the list once per route; each channel gets a cheap scanner."""

    config_model = KeywordBlocklistConfig

    def __init__(self, config: KeywordBlocklistConfig) -> None:
        super().__init__(config)
        entries = read_entries(config.list_file)
        self.pattern = compile_blocklist(entries, config.ignore_case)
        self.groups = tuple(f"line{number}" for number, _ in entries)

    @property
    def max_holdback(self) -> int:
        return self.config.max_match_chars

    def open(self, channel: Channel) -> KeywordBlocklistStage:
        return KeywordBlocklistStage(self)
