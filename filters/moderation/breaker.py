"""A circuit breaker: stop calling a classifier that keeps failing.

Shared by every stream of one stage (it describes the service, not a stream). After
``failures`` consecutive failed calls it opens: for ``reset_s`` no call is made and each
window gets the stage's ``on_error`` at once, instead of every stream waiting out its
time-out against a dead service. Then one trial call is let through (half-open); its
success closes the breaker, its failure opens it for another ``reset_s``.
"""

from __future__ import annotations

import time


class CircuitBreaker:
    """Consecutive-failure breaker with a single half-open trial."""

    __slots__ = ("_clock", "_failures", "_open_until", "_trial", "failures", "reset_s")

    def __init__(self, failures: int, reset_s: float) -> None:
        self.failures = failures
        self.reset_s = reset_s
        self._failures = 0
        self._open_until: float | None = None
        self._trial = False
        self._clock = time.monotonic

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (for logs and tests)."""
        if self._open_until is None:
            return "closed"
        return "open" if self._clock() < self._open_until or self._trial else "half-open"

    def allow(self) -> bool:
        """Whether a call may be made now; a half-open breaker lets exactly one through."""
        if self._open_until is None:
            return True
        if self._trial or self._clock() < self._open_until:
            return False
        self._trial = True
        return True

    def record(self, ok: bool) -> None:
        """The outcome of a call :meth:`allow` let through."""
        self._trial = False
        if ok:
            self._failures = 0
            self._open_until = None
            return
        self._failures += 1
        if self._open_until is not None or self._failures >= self.failures:
            self._open_until = self._clock() + self.reset_s

    def abandon(self) -> None:
        """A call let through was cancelled before it answered: it proves nothing."""
        self._trial = False
