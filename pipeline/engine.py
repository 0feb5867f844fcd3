"""The stage engine: chains of stages per channel, with bounds and failure policies.

A :class:`RoutePlan` is built once per route from validated config (factories constructed,
bounds resolved). Each response gets a :class:`ResponseFilter`, which opens one
:class:`Chain` per channel on first use. A chain feeds each stage the previous stage's
output, enforces every stage's hold-back bound, and turns a stage's exception, time-out or
overflow into the configured policy, so a stage can never let held text out unfiltered
unless its config says ``pass``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import structlog

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
from pipeline.stage import (
    NOTHING,
    AsyncStage,
    Channel,
    ChannelEnd,
    ErrorPolicy,
    Finding,
    OverflowPolicy,
    Release,
    Stage,
    StageConfig,
    StageFactory,
)

log = structlog.get_logger("streamsieve.engine")


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


class _BrokenStage:
    """Stands in for a stage whose ``open`` raised: every call fails by its ``on_error``."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error

    @property
    def held(self) -> int:
        return 0

    def feed(self, text: str) -> Release:
        raise self.error

    def finish(self, end: ChannelEnd) -> Release:
        raise self.error


class _Slot:
    """One opened stage inside a chain, with its running counters."""

    __slots__ = ("base", "bound", "fed", "held", "held_ms", "is_async", "stage", "tail")

    def __init__(self, bound: BoundStage, channel: Channel) -> None:
        self.bound = bound
        self.is_async = bound.factory.is_async
        self.stage = self._open(channel)
        self.fed = 0
        """Characters fed since the channel opened (offsets of findings)."""
        self.base = 0
        """Offset at which the current stage instance started (after a restart)."""
        self.held = 0
        """What the stage held after its last successful call."""
        self.held_ms = 0.0
        """How long the held text has waited while the stream kept flowing."""
        self.tail: str | None = "" if bound.on_error is ErrorPolicy.PASS else None
        """The latest input, kept only under ``on_error: pass`` so a failing stage's held
        text can still be released rather than lost."""

    def _open(self, channel: Channel) -> Stage | AsyncStage | _BrokenStage:
        try:
            return self.bound.factory.open(channel)
        except Exception as exc:  # e.g. a request-supplied schema the stage refuses
            log.exception(
                "stage_open_failed", stage=self.bound.id, channel=channel.key, error=str(exc)[:200]
            )
            return _BrokenStage(exc)

    def restart(self, channel: Channel) -> None:
        self.stage = self._open(channel)
        self.base = self.fed
        self.held = 0
        self.held_ms = 0.0
        if self.tail is not None:
            self.tail = ""


class Chain:
    """The stages of one route, opened for one channel, fed in YAML order."""

    __slots__ = (
        "_last_arrival",
        "_pause_s",
        "_pending",
        "_pending_chars",
        "_slots",
        "_track_time",
        "_whole",
        "_whole_bound",
        "channel",
        "findings",
        "is_async",
    )

    def __init__(self, plan: RoutePlan, channel: Channel) -> None:
        self.channel = channel
        self._slots = [_Slot(b, channel) for b in plan.stages if b.factory.applies_to(channel)]
        self.is_async = any(slot.is_async for slot in self._slots)
        self._whole = plan.whole_response and bool(self._slots)
        self._pending: list[str] = []
        self._pending_chars = 0
        self._whole_bound = plan.route.buffer.max_whole_chars
        self._track_time = any(slot.bound.max_ms is not None for slot in self._slots)
        self._pause_s = plan.route.buffer.pause_ms / 1000.0
        self._last_arrival: float | None = None
        self.findings: list[Finding] = []

    @property
    def empty(self) -> bool:
        """No stage applies: text passes untouched and nothing needs finishing."""
        return not self._slots

    @property
    def held(self) -> int:
        """Characters held anywhere in the chain (a whole-response buffer included)."""
        return self._pending_chars + sum(slot.stage.held for slot in self._slots)

    def feed(self, text: str) -> Release:
        """Run ``text`` through every stage (sync chains only)."""
        if self._whole:
            return self._hold_whole(text)
        return self._run_sync(text, None)

    def finish(self, end: ChannelEnd) -> Release:
        """End the channel: every stage decides what it holds (sync chains only)."""
        if self._whole:
            return self._run_sync(self._take_pending(), end)
        return self._run_sync("", end)

    async def afeed(self, text: str) -> Release:
        """:meth:`feed` for chains that contain an async stage."""
        if self._whole:
            return self._hold_whole(text)
        return await self._run_async(text, None)

    def _hold_whole(self, text: str) -> Release:
        """``whole_response``: keep the text, within the route's ``max_whole_chars``."""
        self._pending.append(text)
        self._pending_chars += len(text)
        bound = self._whole_bound
        if self._pending_chars <= bound:
            return NOTHING
        # Past the bound the whole buffer is decided by the first stage's overflow policy:
        # block, or mask it all (``pass`` would release unfiltered text: treated as mask).
        slot = self._slots[0]
        held, self._pending, self._pending_chars = self._pending_chars, [], 0
        finding = Finding(
            "overflow", slot.bound.on_overflow.value, 0, held, slot.bound.id, self.channel.key
        )
        self.findings.append(finding)
        log.warning("whole_response_overflow", channel=self.channel.key, held=held, bound=bound)
        if slot.bound.on_overflow is OverflowPolicy.BLOCK:
            return Release(
                block=f"{slot.bound.id}: response over its {bound} chars bound", findings=(finding,)
            )
        return Release(slot.bound.mask, findings=(finding,))

    async def afinish(self, end: ChannelEnd) -> Release:
        """:meth:`finish` for chains that contain an async stage."""
        if self._whole:
            return await self._run_async(self._take_pending(), end)
        return await self._run_async("", end)

    def _take_pending(self) -> str:
        text, self._pending, self._pending_chars = "".join(self._pending), [], 0
        return text

    def _clock(self, end: ChannelEnd | None) -> None:
        """Age the held text of every stage by the time since the last arrival.

        Only time while the stream flows counts: a silence longer than ``pause_ms`` is the
        upstream pausing (a tool call being prepared), which no stage can shorten, so it
        never makes ``max_holdback_ms`` fire.
        """
        now = time.monotonic()
        last, self._last_arrival = self._last_arrival, now
        if last is None or end is not None or now - last > self._pause_s:
            return
        gap_ms = (now - last) * 1000.0
        for slot in self._slots:
            if slot.held:
                slot.held_ms += gap_ms

    def _run_sync(self, text: str, end: ChannelEnd | None) -> Release:
        if self._track_time:
            self._clock(end)
        findings: list[Finding] = []
        block: str | None = None
        for slot in self._slots:
            if end is None and not text and not slot.held_ms:
                continue
            stage = cast(Stage, slot.stage)  # feed() is only used when no stage is async
            try:
                release = stage.feed(text) if text or end is None else NOTHING
                if end is None and type(release) is Release and slot.tail is None:
                    # The common case, settled inline: nothing found, within the bounds.
                    held = stage.held
                    if (
                        not release.findings
                        and release.block is None
                        and held <= slot.bound.max_chars
                        and (
                            not held
                            or slot.bound.max_ms is None
                            or slot.held_ms <= slot.bound.max_ms
                        )
                    ):
                        slot.fed += len(text)
                        slot.held = held
                        if not held:
                            slot.held_ms = 0.0
                        text = release.text
                        continue
                if end is not None:
                    release = merge_releases(release, stage.finish(end))
                if not isinstance(release, Release):
                    raise TypeError(f"stage {slot.bound.id!r} returned {type(release).__name__}")
                text, stop, early = self._settle(slot, text, release, end, findings)
                if early:
                    text, stop = self._early(
                        slot, text, stage.finish(ChannelEnd.COMPLETE), findings
                    )
            except Exception as exc:  # a stage bug must neither crash the stream nor leak text
                text, stop = self._fail(slot, text, exc, findings)
            block = block or stop
        return self._result(text, block, findings)

    async def _run_async(self, text: str, end: ChannelEnd | None) -> Release:
        if self._track_time:
            self._clock(end)
        findings: list[Finding] = []
        block: str | None = None
        for slot in self._slots:
            if end is None and not text and not slot.held_ms:
                continue
            try:
                release = await self._call(slot, text, end)
                text, stop, early = self._settle(slot, text, release, end, findings)
                if early:
                    last = await self._call(slot, "", ChannelEnd.COMPLETE)
                    text, stop = self._early(slot, text, last, findings)
            except Exception as exc:  # time-outs too: fail by policy, never open by accident
                text, stop = self._fail(slot, text, exc, findings)
            block = block or stop
        return self._result(text, block, findings)

    async def _call(self, slot: _Slot, text: str, end: ChannelEnd | None) -> Release:
        async def run() -> Release:
            release: Any = slot.stage.feed(text) if text or end is None else NOTHING
            if asyncio.iscoroutine(release):
                release = await release
            if end is not None:
                last: Any = slot.stage.finish(end)
                if asyncio.iscoroutine(last):
                    last = await last
                release = merge_releases(release, last)
            return release  # type: ignore[no-any-return]

        if not slot.is_async:
            return await run()
        async with asyncio.timeout(slot.bound.timeout_s):
            return await run()

    def _fail(
        self, slot: _Slot, text: str, exc: Exception, findings: list[Finding]
    ) -> tuple[str, str | None]:
        """Apply the stage's ``on_error`` policy to the text of the failed call."""
        reason = "timed out" if isinstance(exc, TimeoutError) else f"raised {type(exc).__name__}"
        policy = slot.bound.on_error
        log.error(
            "stage_failed",
            stage=slot.bound.id,
            channel=self.channel.key,
            reason=reason,
            policy=policy.value,
            error=str(exc)[:200],
        )
        start = slot.fed - slot.held
        slot.fed += len(text)
        findings.append(
            Finding("stage_error", policy.value, start, slot.fed, slot.bound.id, self.channel.key)
        )
        held_text = slot.tail[len(slot.tail) - slot.held :] if slot.tail and slot.held else ""
        slot.restart(self.channel)
        if policy is ErrorPolicy.PASS:
            return held_text + text, None
        if policy is ErrorPolicy.MASK:
            return slot.bound.mask, None
        return "", f"{slot.bound.id}: stage {reason}"

    def _settle(
        self,
        slot: _Slot,
        fed: str,
        release: Release,
        end: ChannelEnd | None,
        findings: list[Finding],
    ) -> tuple[str, str | None, bool]:
        """Account for one stage call: findings, bounds, overflow policy.

        Returns the text to pass on, a block reason, and whether the ``pass`` overflow
        policy wants the stage finished early (the caller does it, sync or async).
        """
        base = slot.base
        slot.fed += len(fed)
        if slot.tail is not None:
            slot.tail = (slot.tail + fed)[-slot.bound.max_chars :] if slot.bound.max_chars else ""
        if release.findings:
            findings.extend(self._tag(slot, release.findings, base))
        text = release.text
        if end is not None or release.block:
            return text, release.block, False
        held = slot.held = slot.stage.held
        if not held:
            slot.held_ms = 0.0
            return text, None, False
        over_chars = held > slot.bound.max_chars
        over_ms = slot.bound.max_ms is not None and slot.held_ms > slot.bound.max_ms
        if not (over_chars or over_ms):
            return text, None, False
        return self._overflow(slot, text, held, "chars" if over_chars else "ms", findings)

    def _overflow(
        self, slot: _Slot, text: str, held: int, what: str, findings: list[Finding]
    ) -> tuple[str, str | None, bool]:
        policy = slot.bound.on_overflow
        start = slot.fed - held
        findings.append(
            Finding("overflow", policy.value, start, slot.fed, slot.bound.id, self.channel.key)
        )
        log.warning(
            "stage_overflow",
            stage=slot.bound.id,
            channel=self.channel.key,
            held=held,
            bound=slot.bound.max_chars if what == "chars" else slot.bound.max_ms,
            unit=what,
            policy=policy.value,
        )
        if policy is OverflowPolicy.BLOCK:
            return text, f"{slot.bound.id}: held text over its {what} bound", False
        if policy is OverflowPolicy.PASS:
            return text, None, True
        slot.restart(self.channel)
        return text + slot.bound.mask, None, False

    def _early(
        self, slot: _Slot, text: str, release: Release, findings: list[Finding]
    ) -> tuple[str, str | None]:
        """The ``pass`` overflow: what the stage decided when finished early, then afresh.

        A block the stage decides then is kept: failing open never overrides a verdict.
        """
        findings.extend(self._tag(slot, release.findings, slot.base))
        slot.restart(self.channel)
        return text + release.text, release.block

    def _tag(self, slot: _Slot, found: Iterable[Finding], base: int) -> list[Finding]:
        return [
            dataclasses.replace(
                f,
                start=f.start + base,
                end=f.end + base,
                stage=slot.bound.id,
                channel=self.channel.key,
            )
            for f in found
        ]

    def _result(self, text: str, block: str | None, findings: list[Finding]) -> Release:
        if findings:
            self.findings.extend(findings)
        if not findings and block is None:
            return Release(text) if text else NOTHING
        return Release(text, block, tuple(findings))


def merge_releases(first: Release, second: Release) -> Release:
    """Two consecutive releases of one stage or chain as one."""
    if first is NOTHING:
        return second
    return Release(
        first.text + second.text, first.block or second.block, first.findings + second.findings
    )


class ResponseFilter:
    """The chains of one response, opened per channel on first use."""

    __slots__ = ("chains", "plan", "scope")

    def __init__(self, plan: RoutePlan) -> None:
        self.plan = plan
        self.chains: dict[str, Chain] = {}
        self.scope: dict[object, Any] = {}

    def chain(self, channel: Channel) -> Chain:
        """The chain for ``channel``, opened the first time the channel carries text."""
        chain = self.chains.get(channel.key)
        if chain is None:
            scoped = dataclasses.replace(channel, scope=self.scope)
            chain = self.chains[channel.key] = Chain(self.plan, scoped)
        return chain

    @property
    def findings(self) -> list[Finding]:
        return [f for chain in self.chains.values() for f in chain.findings]

    @property
    def held(self) -> int:
        return sum(chain.held for chain in self.chains.values())
