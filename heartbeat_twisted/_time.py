"""
Time for the heartbeat: where the clock comes from.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

__all__ = ["resolveClock"]


def resolveClock(clock: IReactorTime | None) -> IReactorTime:
    """
    C{clock}, or the global reactor if it is L{None}: every timing object
    takes an injected clock and falls back to the reactor only when none is
    given.
    """
    if clock is None:
        from twisted.internet import reactor

        clock = reactor
    assert clock is not None
    return clock
