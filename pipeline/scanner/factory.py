"""``MatchFactory``: a whole stage from rules and a decision, no hold-back code of its own.

A subclass builds its :class:`Rules` in ``__init__`` and says what a match means in
``on_match``; the framework does the rest (buffering, look-behind context, offsets,
overlapping alternatives, JSON escaping, the bound the engine enforces)::

    class CompetitorFactory(MatchFactory[CompetitorConfig]):
        config_model = CompetitorConfig

        def __init__(self, config: CompetitorConfig) -> None:
            super().__init__(config, Rules.from_phrases({"competitor": config.names}))

        def on_match(self, hit: Hit) -> Decision:
            return MASK
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from pipeline.scanner.decisions import MASK, Decision, Hit
from pipeline.scanner.rules import Rules
from pipeline.scanner.scan import ScanStage
from pipeline.stage import Channel, OverflowPolicy, StageConfig, StageFactory

__all__ = ["MatchFactory"]

ConfigT = TypeVar("ConfigT", bound=StageConfig)


class MatchFactory(StageFactory[ConfigT]):
    """A stage factory whose stages scan for :class:`Rules` and apply ``on_match``.

    ``safe_overflow`` is ``block``: a scanning stage forced past its natural bound would
    otherwise let the rest of a half-seen match through, so unless its YAML entry names
    ``on_overflow`` itself, overflowing ends the response.
    """

    safe_overflow: ClassVar[OverflowPolicy | None] = OverflowPolicy.BLOCK

    def __init__(self, config: ConfigT, rules: Rules) -> None:
        super().__init__(config)
        self.rules = rules

    @property
    def max_holdback(self) -> int:
        """The natural bound, derived from the rules' patterns."""
        return self.rules.longest

    def on_match(self, hit: Hit) -> Decision:
        """What to do with one match (default: replace it by the entry's ``mask``)."""
        return MASK

    def open(self, channel: Channel) -> ScanStage:
        return ScanStage(
            self.rules, self.on_match, channel, mask=self.config.mask, name=self.config.type
        )
