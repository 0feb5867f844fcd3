"""What a route's stages are, built once per route: bound stages, plans, and the observer hook.

A :class:`RoutePlan` is built from validated config (factories constructed, bounds
resolved) and shared by every response of its route. Its optional :class:`StageObserver`
is the one hook through which anything outside the engine watches the stages work:
metrics time each stage and note the most it held, replay records every call. The engine
asks the observer once per opened stage for a :class:`StageWatch` and tells that watch
about every call; no stage is ever wrapped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pipeline.bounds import overflow_policy
from pipeline.config import (
    BufferConfig,
    ConfigError,
    LoadedConfig,
    Problem,
    RouteConfig,
    render_path,
)
from pipeline.plugins import build_factory
from pipeline.stage import Channel, ErrorPolicy, OverflowPolicy, Release, StageConfig, StageFactory

Method = Literal["feed", "finish"]


class StageWatch(Protocol):
    """Told about every call of one opened stage on one channel."""

    def called(
        self,
        method: Method,
        fed: str,
        release: Release | None,
        held: int,
        seconds: float,
        error: BaseException | None,
    ) -> None:
        """One ``feed`` or ``finish`` call returned ``release`` (None when it raised
        ``error``); ``held`` is the stage's ``held`` right after it (0 after an error)."""


class StageObserver(Protocol):
    """Subscribes to the stages of a plan: one watch per opened stage, or None."""

    def watch(self, stage: str, channel: Channel) -> StageWatch | None:
        """A watch for stage ``stage`` just opened on ``channel`` (again after a restart)."""


@dataclasses.dataclass(frozen=True, slots=True)
class BoundStage:
    """A stage factory with the bounds and policies the route resolved for it."""

    id: str
    factory: StageFactory[Any]
    max_chars: int
    max_ms: float | None
    on_overflow: OverflowPolicy
    on_error: ErrorPolicy
    timeout_s: float
    mask: str

    @classmethod
    def build(cls, config: StageConfig, stage_id: str, buffer: BufferConfig) -> BoundStage:
        factory = build_factory(config)
        limits = [factory.max_holdback, buffer.max_holdback_chars]
        if config.max_holdback_chars is not None:
            limits.append(config.max_holdback_chars)
        ms_limits = [v for v in (buffer.max_holdback_ms, config.max_holdback_ms) if v is not None]
        return cls(
            id=stage_id,
            factory=factory,
            max_chars=min(limits),
            max_ms=min(ms_limits) if ms_limits else None,
            on_overflow=overflow_policy(config, factory, buffer),
            on_error=config.on_error,
            timeout_s=config.timeout_ms / 1000.0,
            mask=config.mask,
        )


def _stage_ids(configs: Sequence[StageConfig]) -> list[str]:
    """``id`` when given, else ``type``, numbered when a type repeats."""
    ids = []
    for index, config in enumerate(configs):
        if config.id:
            ids.append(config.id)
        elif sum(c.type == config.type and not c.id for c in configs) > 1:
            ids.append(f"{config.type}#{index}")
        else:
            ids.append(config.type)
    return ids


@dataclasses.dataclass(frozen=True, slots=True)
class RoutePlan:
    """Everything built once per route: its config and its bound stages."""

    route: RouteConfig
    stages: tuple[BoundStage, ...]
    observer: StageObserver | None = None
    """Who watches the stages' calls (metrics, replay); None costs nothing per token."""

    @property
    def whole_response(self) -> bool:
        return self.route.buffer.mode == "whole_response"


def build_plans(config: LoadedConfig) -> dict[str, RoutePlan]:
    """One plan per route name, every stage factory built (and probed) now.

    A factory that refuses its config (a pattern that does not compile, a word list that
    cannot be read) becomes a :class:`ConfigError` naming the stage's key path, so the
    proxy refuses to start — or a reload keeps the old config — instead of failing later.
    """
    plans: dict[str, RoutePlan] = {}
    problems: list[Problem] = []
    for r, route in enumerate(config.proxy.routes):
        configs = config.stages[route.name]
        stages: list[BoundStage] = []
        for s, (stage_config, stage_id) in enumerate(
            zip(configs, _stage_ids(configs), strict=True)
        ):
            try:
                stages.append(BoundStage.build(stage_config, stage_id, route.buffer))
            except Exception as exc:  # any refusal, whatever the plug-in raised
                path = ("routes", r, "stages", s)
                problems.append(
                    Problem(
                        render_path(path), f"stage could not be built: {exc}", config.line(path)
                    )
                )
        plans[route.name] = RoutePlan(route=route, stages=tuple(stages))
    if problems:
        raise ConfigError(config.source, problems)
    return plans
