"""A clock the tests move by hand (the ``clock`` fixture puts it in place of the decorator's):
budgets are tested without timing."""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when the test says so: training steps and loss evaluations."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now
