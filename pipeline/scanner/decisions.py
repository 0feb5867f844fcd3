"""What a scanning stage does with a match: the ``on_match`` vocabulary.

A decision is data, not code: the scanner applies it, so offsets, JSON escaping and the
finding's action name are the framework's, the same for every stage.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.stage import Channel

__all__ = [
    "BLOCK",
    "FLAG",
    "KEEP",
    "MASK",
    "Action",
    "Decision",
    "Hit",
    "OnMatch",
    "block",
    "replace",
]


class Action(enum.StrEnum):
    """What happens to the matched text; the value is the finding's ``action``."""

    REPLACE = "replaced"
    """The match is replaced by the decision's text."""
    MASK = "masked"
    """The match is replaced by the stage entry's ``mask`` key."""
    BLOCK = "blocked"
    """The response ends before the match (``content_filter``), nothing of it shown."""
    FLAG = "flagged"
    """The match goes out unchanged; a finding records it (metrics, audit log)."""
    KEEP = "kept"
    """Not a match after all (an allowlisted word): out unchanged, no finding. Text inside
    a kept match is not searched again, so ``Scunthorpe`` can shield what it contains."""


@dataclass(frozen=True, slots=True)
class Decision:
    """An :class:`Action` with its text: the replacement, or the block reason."""

    action: Action
    text: str = ""
    rule: str = ""
    """Names the finding instead of the match's rule (a service's category, say)."""


MASK = Decision(Action.MASK)
BLOCK = Decision(Action.BLOCK)
FLAG = Decision(Action.FLAG)
KEEP = Decision(Action.KEEP)


def replace(text: str) -> Decision:
    """Replace the match by ``text`` (escaped for you on JSON channels)."""
    return Decision(Action.REPLACE, text)


def block(reason: str) -> Decision:
    """End the response at the match with ``reason`` (default reason: the rule's name)."""
    return Decision(Action.BLOCK, reason)


@dataclass(frozen=True, slots=True)
class Hit:
    """One match, as ``on_match`` sees it.

    ``text`` is the matched text, for the decision only: findings never carry it.
    """

    rule: str
    text: str
    start: int
    """Offset in this stage's input for the channel (characters)."""
    end: int
    channel: Channel


OnMatch = Decision | Callable[[Hit], Decision]
"""A fixed decision for every match, or a function deciding per match."""
