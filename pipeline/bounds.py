"""Safe limits: a hold-back limit below a stage's natural bound must not let a match through.

A stage's *natural bound* (``factory.max_holdback``) is the most it needs to hold to see a
whole match. A tighter limit (the route's ``buffer.max_holdback_chars`` or the entry's own)
cuts a half-seen match off; what happens next is the overflow policy. ``block`` ends the
response: safe. ``mask`` replaces what was held and starts the stage afresh, so the rest of
the match streams on (``Some days I want to [FILTERED]myself``), and ``pass`` releases it
all. So such a limit is refused under ``mask`` (it looks fail-closed and is not), and warned
about under ``pass`` (never a default: failing open was asked for).

A factory declares the policy it needs when its entry names none
(``StageFactory.safe_overflow``; ``block`` for safety stages): :func:`overflow_policy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.config import BufferConfig, LoadedConfig, Problem, render_path
from pipeline.stage import OverflowPolicy, StageConfig, StageFactory

__all__ = ["OVERFLOW_ACTIONS", "LimitReport", "check_limits", "overflow_policy"]

OVERFLOW_ACTIONS: Mapping[OverflowPolicy, str] = {
    OverflowPolicy.MASK: "masked",
    OverflowPolicy.BLOCK: "blocked",
    OverflowPolicy.PASS: "passed",
}
"""An overflow finding's ``action``, in the words every other finding uses."""


def overflow_policy(
    config: StageConfig, factory: StageFactory[Any], buffer: BufferConfig
) -> OverflowPolicy:
    """The entry's own ``on_overflow``, else the factory's safe default, else the route's."""
    return config.on_overflow or factory.safe_overflow or buffer.on_overflow


class _Bound(Protocol):
    """What :func:`check_limits` reads of a plan's bound stage."""

    @property
    def id(self) -> str: ...
    @property
    def factory(self) -> StageFactory[Any]: ...
    @property
    def max_chars(self) -> int: ...
    @property
    def on_overflow(self) -> OverflowPolicy: ...


class _Plan(Protocol):
    @property
    def stages(self) -> tuple[_Bound, ...]: ...


@dataclass(frozen=True, slots=True)
class LimitReport:
    """Limits that would let matched text through: refused, and merely warned about."""

    problems: list[Problem]
    warnings: list[Problem]


def check_limits(config: LoadedConfig, plans: Mapping[str, _Plan]) -> LimitReport:
    """Every stage whose enforced limit is below its natural bound, by policy."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for r, route in enumerate(config.proxy.routes):
        for s, bound in enumerate(plans[route.name].stages):
            natural, limit = bound.factory.max_holdback, bound.max_chars
            policy = bound.on_overflow
            if limit >= natural or policy is OverflowPolicy.BLOCK:
                continue
            path = ("routes", r, "stages", s)
            entry = config.stages[route.name][s]
            where = (
                "its max_holdback_chars"
                if entry.max_holdback_chars == limit
                else ("the route's buffer.max_holdback_chars")
            )
            message = (
                f"stage {bound.id!r} may hold {limit} characters ({where}) but needs "
                f"{natural} to see a whole match; under on_overflow: {policy.value} the rest "
                f"of a cut-off match would stream on. Fix: raise the limit to {natural} or "
                "more, or set on_overflow: block on the stage"
            )
            if policy is OverflowPolicy.PASS:
                warnings.append(Problem(render_path(path), message, config.line(path)))
            else:
                problems.append(Problem(render_path(path), message, config.line(path)))
    return LimitReport(problems, warnings)
