"""``type: keyword_blocklist``: mask or block words and patterns from a list file as they stream.

The list file (UTF-8) has one entry per line: a word or phrase, matched case-insensitively
as a whole word, or ``re:`` followed by a regular expression in ``regex`` module syntax.
Blank lines and lines starting with ``#`` are ignored. Findings and block reasons name the
entry by its line number, never the text it matched.

The stage is a :class:`pipeline.scanner.MatchFactory`: it reads the list into rules and
says what a match means. Hold-back, look-behind context, offsets, overlapping entries and
JSON escaping are the framework's.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from pipeline.scanner import BLOCK, MASK, Decision, Hit, MatchFactory, Rules, phrase_pattern
from pipeline.stage import StageConfig

__all__ = ["KeywordBlocklistConfig", "KeywordBlocklistFactory", "read_rules"]


class KeywordBlocklistConfig(StageConfig):
    """Keys of ``type: keyword_blocklist``."""

    type: str = "keyword_blocklist"
    list_file: Path | None = None
    """The list to use; a relative path is relative to the proxy's working directory.
    Default: the list shipped with this package."""
    action: Literal["mask", "block"] = "mask"
    """``mask`` replaces each match with ``mask``; ``block`` ends the response at the first."""
    ignore_case: bool = True
    """Whether entries match regardless of case."""
    max_match_chars: int | None = Field(default=None, ge=1, le=10_000)
    """Only for ``re:`` entries with an unbounded repeat (``+``, ``*``): the longest text
    they may match. Otherwise derived from the list."""

    @model_validator(mode="after")
    def _list_compiles(self) -> Self:
        read_rules(self)
        return self


def read_rules(config: KeywordBlocklistConfig) -> Rules:
    """The list as rules named ``blocklist:lineN``; ValueError naming a bad line."""
    path = config.list_file
    package = importlib.resources.files(__name__)
    try:
        text = (package / "blocklist.txt" if path is None else path).read_text("utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read list_file {str(path)!r}: {exc.strerror}") from None
    entries = {
        f"blocklist:line{number}": line[3:] if line.startswith("re:") else phrase_pattern(line)
        for number, raw in enumerate(text.splitlines(), start=1)
        if (line := raw.strip()) and not line.startswith("#")
    }
    return Rules.from_patterns(
        entries, ignore_case=config.ignore_case, longest=config.max_match_chars
    )


class KeywordBlocklistFactory(MatchFactory[KeywordBlocklistConfig]):
    """Reads and compiles the list once per route; the framework scans each channel."""

    config_model = KeywordBlocklistConfig

    def __init__(self, config: KeywordBlocklistConfig) -> None:
        super().__init__(config, read_rules(config))

    def on_match(self, hit: Hit) -> Decision:
        return BLOCK if self.config.action == "block" else MASK
