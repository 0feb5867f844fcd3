"""The circuit breaker's states, on a clock the test moves."""

from __future__ import annotations

from filters.moderation.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(failures: int = 2, reset_s: float = 5.0) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    made = CircuitBreaker(failures, reset_s)
    made._clock = clock
    return made, clock


def test_consecutive_failures_open_it() -> None:
    """Two failures in a row open a two-failure breaker; calls are refused."""
    b, _ = breaker()
    b.record(False)
    assert ("closed", True) == (b.state, b.allow())
    b.record(False)
    assert ("open", False) == (b.state, b.allow())


def test_a_success_resets_the_count() -> None:
    """Failure, success, failure: never two in a row, so it stays closed."""
    b, _ = breaker()
    for ok in (False, True, False):
        b.record(ok)
    assert "closed" == b.state


def test_after_the_reset_time_one_trial_call_is_let_through() -> None:
    """Half-open allows exactly one call; its success closes the breaker."""
    b, clock = breaker()
    b.record(False)
    b.record(False)
    clock.now += 5.0
    assert "half-open" == b.state
    assert [True, False] == [b.allow(), b.allow()]
    b.record(True)
    assert ("closed", True) == (b.state, b.allow())


def test_a_failed_trial_opens_it_again_for_the_reset_time() -> None:
    """The trial failing keeps it open for another full reset period."""
    b, clock = breaker()
    b.record(False)
    b.record(False)
    clock.now += 5.0
    assert b.allow()
    b.record(False)
    assert ("open", False) == (b.state, b.allow())
    clock.now += 4.9
    assert not b.allow()
    clock.now += 0.2
    assert b.allow()


def test_an_abandoned_trial_lets_the_next_call_try() -> None:
    """A trial cancelled before it answered proves nothing: another may try."""
    b, clock = breaker()
    b.record(False)
    b.record(False)
    clock.now += 5.0
    assert b.allow()
    b.abandon()
    assert b.allow()
