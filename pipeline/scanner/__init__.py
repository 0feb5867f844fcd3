"""The framework's lookahead: scanning stages whose authors write only the decision.

* :class:`Rules` — phrase lists or ``regex`` patterns, compiled once, with their natural
  hold-back bound derived from the patterns;
* :class:`MatchFactory` — a stage factory from rules and an ``on_match`` decision;
* :class:`ScanStage` — the per-channel scan, for factories that build stages themselves;
* :class:`WindowFactory` — an async stage judging whole sentences or windows (a
  moderation service), the author writing only the call;
* decisions: :data:`MASK`, :func:`replace`, :data:`BLOCK` / :func:`block`, :data:`FLAG`,
  :data:`KEEP`.

The scan's output is the same however the upstream splits the text, overlapping
alternatives included; replacements in JSON channels keep the document parseable.
"""

from pipeline.scanner.decisions import (
    BLOCK,
    FLAG,
    KEEP,
    MASK,
    Action,
    Decision,
    Hit,
    OnMatch,
    block,
    replace,
)
from pipeline.scanner.factory import MatchFactory
from pipeline.scanner.rules import Rules, UnboundedPatternError, pattern_width, phrase_pattern
from pipeline.scanner.scan import CONTEXT_CHARS, ScanStage
from pipeline.scanner.views import IdentityView, View, normalised
from pipeline.scanner.windows import WindowFactory, WindowStage, windows

__all__ = [
    "BLOCK",
    "CONTEXT_CHARS",
    "FLAG",
    "KEEP",
    "MASK",
    "Action",
    "Decision",
    "Hit",
    "IdentityView",
    "MatchFactory",
    "OnMatch",
    "Rules",
    "ScanStage",
    "UnboundedPatternError",
    "View",
    "WindowFactory",
    "WindowStage",
    "block",
    "normalised",
    "pattern_width",
    "phrase_pattern",
    "replace",
    "windows",
]
