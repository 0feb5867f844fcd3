"""``type: moderation``: the factory a route builds once, and the hooks the proxy calls.

The factory owns what every stream shares (:class:`~filters.moderation.client.Classifier`:
session, call limit, breaker) and opens a :class:`~filters.moderation.stage.ModerationStage`
per channel. Two hooks tie it to the proxy's life: :meth:`ModerationFactory.report_to`
(the proxy's metrics registry and labels) and :meth:`ModerationFactory.aclose` (the config
was replaced or the proxy is stopping: the pooled session is closed).
"""

from __future__ import annotations

import os
from typing import ClassVar

from prometheus_client import CollectorRegistry

from filters.moderation.client import Classifier
from filters.moderation.config import ModerationConfig
from filters.moderation.metrics import ModerationMetrics
from filters.moderation.stage import ModerationStage
from pipeline.stage import Channel, StageFactory


class ModerationFactory(StageFactory[ModerationConfig]):
    """Reads the key from the environment once; every opened stage shares one classifier."""

    config_model = ModerationConfig
    is_async: ClassVar[bool] = True

    def __init__(self, config: ModerationConfig) -> None:
        super().__init__(config)
        headers = {"Content-Type": "application/json"}
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise ValueError(f"environment variable {config.api_key_env} is not set")
            headers["Authorization"] = f"Bearer {key}"
        self.classifier = Classifier(config, headers)

    @property
    def max_holdback(self) -> int:
        """``max_in_flight`` windows awaiting verdicts plus the open one (0 in monitor)."""
        if self.config.mode == "monitor":
            return 0
        natural = self.config.window_chars * (self.config.max_in_flight + 1)
        if self.config.max_holdback_chars is not None:
            return min(natural, self.config.max_holdback_chars)
        return natural

    def open(self, channel: Channel) -> ModerationStage:
        return ModerationStage(self.classifier, channel, self.max_holdback)

    def report_to(self, registry: CollectorRegistry, route: str, stage: str) -> None:
        """Record this stage's metrics on the proxy's ``registry`` under these labels."""
        self.classifier.metrics = ModerationMetrics.on(registry)
        self.classifier.labels = (route, stage)

    async def aclose(self) -> None:
        """The config is retired: close the pooled session (once no call uses it)."""
        await self.classifier.aclose()
