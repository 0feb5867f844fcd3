"""The stage engine: chains of stages per channel, with bounds and failure policies.

Each response gets a :class:`ResponseFilter`, which opens one :class:`Chain` per channel on
first use, from the route's :class:`~pipeline.plan.RoutePlan`. A chain feeds each stage the
previous stage's output, enforces every stage's hold-back bound, and turns a stage's
exception, time-out or overflow into the configured policy, so a stage can never let held
text out unfiltered unless its config says ``pass``.

One loop serves sync and async stages alike: :meth:`Chain.start` runs the stages in order
and, at the first call that returns an awaitable (an async stage), stops and hands back a
:class:`Pending`; :meth:`Chain.complete` awaits it — with the stage's time-out — and runs
the same loop on from the next stage. Synchronous chains never await at all. Every stage
call goes through one helper, which also tells the plan's observer (metrics, replay).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable
from typing import Any

import structlog

from pipeline.bounds import OVERFLOW_ACTIONS
from pipeline.plan import BoundStage, RoutePlan, build_plans
from pipeline.slot import Pending, Slot, checked, merge_releases
from pipeline.stage import (
    NOTHING,
    Channel,
    ChannelEnd,
    ErrorPolicy,
    Finding,
    OverflowPolicy,
    Release,
)

__all__ = [
    "BoundStage",
    "Chain",
    "Pending",
    "ResponseFilter",
    "RoutePlan",
    "build_plans",
    "merge_releases",
]

log = structlog.get_logger("streamsieve.engine")


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
        self._slots = [
            Slot(b, channel, plan.observer) for b in plan.stages if b.factory.applies_to(channel)
        ]
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

    def start(self, text: str, end: ChannelEnd | None) -> Release | Pending:
        """Feed ``text`` (``end``: then finish the channel), up to the first awaited call.

        A :class:`Release` is the chain's answer; a :class:`Pending` must be passed to
        :meth:`complete`, which only chains with an async stage ever return.
        """
        if self._whole:
            if end is None:
                return self._hold_whole(text)
            text = self._take_pending()
        if self._track_time:
            self._clock(end)
        return self._advance(0, text, end, None, [])

    async def complete(self, step: Release | Pending) -> Release:
        """The async edge: await each pending stage call and run the loop on from there."""
        while isinstance(step, Pending):
            slot = self._slots[step.at]
            try:
                if slot.is_async:
                    async with asyncio.timeout(slot.bound.timeout_s):
                        result = await step.call
                else:
                    result = await step.call
            except Exception as exc:  # time-outs too: fail by policy, never open by accident
                step = self._resume(step, None, exc)
            else:
                step = self._resume(step, result, None)
        return step

    def feed(self, text: str) -> Release:
        """Run ``text`` through every stage of a chain without async stages."""
        return self._settle_now(self.start(text, None))

    def finish(self, end: ChannelEnd) -> Release:
        """End the channel: every stage decides what it holds (chains without async stages)."""
        return self._settle_now(self.start("", end))

    async def afeed(self, text: str) -> Release:
        """:meth:`feed` for any chain, async stages included."""
        return await self.complete(self.start(text, None))

    async def afinish(self, end: ChannelEnd) -> Release:
        """:meth:`finish` for any chain, async stages included."""
        return await self.complete(self.start("", end))

    def _settle_now(self, step: Release | Pending) -> Release:
        """The sync edge: an awaitable here is a stage that broke the sync contract."""
        while isinstance(step, Pending):
            close = getattr(step.call, "close", None)
            if close is not None:
                close()  # never awaited: closing it keeps Python from warning later
            error = TypeError(f"stage {self._slots[step.at].bound.id!r} returned an awaitable")
            step = self._resume(step, None, error)
        return step

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
        blocks = slot.bound.on_overflow is OverflowPolicy.BLOCK
        action = "blocked" if blocks else "masked"
        finding = Finding("overflow", action, 0, held, slot.bound.id, self.channel.key)
        self.findings.append(finding)
        log.warning("whole_response_overflow", channel=self.channel.key, held=held, bound=bound)
        if blocks:
            return Release(
                block=f"{slot.bound.id}: response over its {bound} chars bound", findings=(finding,)
            )
        return Release(slot.bound.mask, findings=(finding,))

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

    def _advance(
        self,
        start: int,
        text: str,
        end: ChannelEnd | None,
        block: str | None,
        findings: list[Finding],
    ) -> Release | Pending:
        """The drive loop: every stage from ``start`` on, each fed the previous one's output."""
        slots = self._slots
        for index in range(start, len(slots)):
            slot = slots[index]
            if end is None and not text and not slot.held_ms:
                continue
            try:
                release = slot.call(text, end)
                if type(release) is Release and end is None and slot.tail is None:
                    # The common case, settled inline: nothing found, within the bounds.
                    held = slot.stage.held
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
                release = checked(slot, release)
                if not isinstance(release, Release):
                    return Pending(index, text, False, release, end, block, findings)
                text, stop, early = self._settle(slot, text, release, end, findings)
                if early:
                    last = checked(slot, slot.call("", ChannelEnd.COMPLETE))
                    if not isinstance(last, Release):
                        return Pending(index, text, True, last, end, block, findings)
                    text, stop = self._early(slot, text, last, findings)
            except Exception as exc:  # a stage bug must neither crash the stream nor leak text
                text, stop = self._fail(slot, text, exc, findings)
            block = block or stop
        return self._result(text, block, findings)

    def _resume(self, step: Pending, result: object, error: Exception | None) -> Release | Pending:
        """Account for an awaited call as the loop would have, then go on from the next stage."""
        slot = self._slots[step.at]
        findings, end = step.findings, step.end
        try:
            if error is not None:
                raise error
            if not isinstance(result, Release):
                raise TypeError(f"stage {slot.bound.id!r} returned {type(result).__name__}")
            if step.early:
                text, stop = self._early(slot, step.fed, result, findings)
            else:
                text, stop, early = self._settle(slot, step.fed, result, end, findings)
                if early:
                    last = checked(slot, slot.call("", ChannelEnd.COMPLETE))
                    if not isinstance(last, Release):
                        return Pending(step.at, text, True, last, end, step.block, findings)
                    text, stop = self._early(slot, text, last, findings)
        except Exception as exc:
            text, stop = self._fail(slot, step.fed, exc, findings)
        return self._advance(step.at + 1, text, end, step.block or stop, findings)

    def _fail(
        self, slot: Slot, text: str, exc: Exception, findings: list[Finding]
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
        slot: Slot,
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
        self, slot: Slot, text: str, held: int, what: str, findings: list[Finding]
    ) -> tuple[str, str | None, bool]:
        policy = slot.bound.on_overflow
        start = slot.fed - held
        findings.append(
            Finding(
                "overflow",
                OVERFLOW_ACTIONS[policy],
                start,
                slot.fed,
                slot.bound.id,
                self.channel.key,
            )
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
        self, slot: Slot, text: str, release: Release, findings: list[Finding]
    ) -> tuple[str, str | None]:
        """The ``pass`` overflow: what the stage decided when finished early, then afresh.

        A block the stage decides then is kept: failing open never overrides a verdict.
        """
        findings.extend(self._tag(slot, release.findings, slot.base))
        slot.restart(self.channel)
        return text + release.text, release.block

    def _tag(self, slot: Slot, found: Iterable[Finding], base: int) -> list[Finding]:
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


class ResponseFilter:
    """The chains of one response, opened per channel on first use."""

    __slots__ = ("_settled", "chains", "plan", "scope")

    def __init__(self, plan: RoutePlan) -> None:
        self.plan = plan
        self.chains: dict[str, Chain] = {}
        self.scope: dict[object, Any] = {}
        self._settled: list[Finding] = []
        """Findings of chains already closed (see :meth:`close`)."""

    def chain(self, channel: Channel) -> Chain:
        """The chain for ``channel``, opened the first time the channel carries text."""
        chain = self.chains.get(channel.key)
        if chain is None:
            scoped = dataclasses.replace(channel, scope=self.scope)
            chain = self.chains[channel.key] = Chain(self.plan, scoped)
        return chain

    def close(self, channel: Channel) -> None:
        """Forget the chain of a channel that is over, keeping its findings.

        A walked JSON stream opens a chain per string of every event; without this a
        long one would keep thousands of finished chains (and their stages) to the end.
        """
        chain = self.chains.pop(channel.key, None)
        if chain is not None:
            self._settled.extend(chain.findings)

    @property
    def findings(self) -> list[Finding]:
        return [*self._settled, *(f for chain in self.chains.values() for f in chain.findings)]

    @property
    def held(self) -> int:
        return sum(chain.held for chain in self.chains.values())
