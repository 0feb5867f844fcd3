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
from pipeline.scanner.views import VIEW_SLACK, VIEW_WIDTH, IdentityView, View, normalised
from pipeline.stage import Channel, ChannelKind, OverflowPolicy, StageConfig, StageFactory
from pipeline.textview import Fold, Normaliser

__all__ = ["MatchFactory"]

ConfigT = TypeVar("ConfigT", bound=StageConfig)


class MatchFactory(StageFactory[ConfigT]):
    """A stage factory whose stages scan for :class:`Rules` and apply ``on_match``.

    ``safe_overflow`` is ``block``: a scanning stage forced past its natural bound would
    otherwise let the rest of a half-seen match through, so unless its YAML entry names
    ``on_overflow`` itself, overflowing ends the response.
    """

    safe_overflow: ClassVar[OverflowPolicy | None] = OverflowPolicy.BLOCK

    def __init__(
        self,
        config: ConfigT,
        rules: Rules,
        *,
        normalise: bool = True,
        fold: Fold | None = None,
    ) -> None:
        """``normalise``: read the channel through the normalised view (NFKC, format
        characters removed, JSON strings decoded; see :mod:`pipeline.textview`), so
        fullwidth ``Acme``, ``Ac`` + zero-width space + ``me`` and the JSON ``Ac\\u006de`` all
        match ``Acme``. Off, the rules see the raw text. ``fold`` further maps each view
        character (a confusable skeleton)."""
        super().__init__(config)
        self.rules = rules
        self.normaliser = Normaliser(fold) if normalise else None

    @property
    def max_holdback(self) -> int:
        """The natural bound, derived from the rules' patterns (in input characters: with
        the view, each matched character may be spelled with up to ``VIEW_WIDTH``)."""
        if self.normaliser is None:
            return self.rules.longest
        return self.rules.longest * VIEW_WIDTH + VIEW_SLACK

    def on_match(self, hit: Hit) -> Decision:
        """What to do with one match (default: replace it by the entry's ``mask``)."""
        return MASK

    def open(self, channel: Channel) -> ScanStage:
        json = channel.kind is ChannelKind.JSON
        view: View = (
            IdentityView(json=json)
            if self.normaliser is None
            else normalised(self.normaliser.view(json=json), json=json)
        )
        return ScanStage(
            self.rules, self.on_match, channel, view, mask=self.config.mask, name=self.config.type
        )
