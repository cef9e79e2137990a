"""
Time for the heartbeat: where the clock comes from, which "now" to decide
on, and how to tell that the reactor stalled.

Three helpers, for every timing object of this library:

  - L{resolveClock}: the injected clock, or the global reactor;
  - L{decisionSeconds}: the "now" to decide on: C{time.monotonic} when the
    clock is a real reactor (so that a step of the wall clock neither closes
    live connections nor keeps dead ones), the clock's own C{seconds} when it
    is anything else (a L{task.Clock<twisted.internet.task.Clock>} in tests);
  - L{StallGuard}: was this turn of the reactor late by more than a period?
    If so, a decision waits one reactor turn (C{callLater(0)} runs after the
    next I/O poll), so that what arrived during the stall is read first.

L{useMonotonicTime} is for a program that owns its reactor (C{twistd
heartbeat}): it runs all the reactor's timed calls on C{time.monotonic}.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime

__all__ = ["StallGuard", "decisionSeconds", "resolveClock", "useMonotonicTime"]


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


def isRealReactor(clock: object) -> bool:
    """
    Whether C{clock} is one of Twisted's reactors (as opposed to a
    L{task.Clock<twisted.internet.task.Clock>} or another fake).
    """
    from twisted.internet.base import ReactorBase

    return isinstance(clock, ReactorBase)


def decisionSeconds(clock: IReactorTime) -> Callable[[], float]:
    """
    The time source to decide idleness on for a timing object scheduled on
    C{clock}: C{time.monotonic} for a real reactor, C{clock.seconds}
    otherwise (a fake clock is its own time, and tests drive it).
    """
    if isRealReactor(clock):
        return time.monotonic
    return clock.seconds


class StallGuard:
    """
    Tells whether a periodic or follow-up turn runs late by more than
    C{period} seconds, on a given time source.

    Twisted runs timed calls before it reads sockets, so a timer that fires
    after a stall (a blocking handler, a GC or VM pause, SIGSTOP) sees stale
    activity times while the bytes that prove activity sit unread in the
    kernel.  Use it as::

        guard = StallGuard(period, seconds)
        guard.expect(period)              # when the next turn is scheduled
        ...
        if guard.late():                  # in that turn
            clock.callLater(0, decide)    # read first, decide next turn
        else:
            decide()

    @ivar stalls: Late turns seen so far.
    """

    def __init__(self, period: float, seconds: Callable[[], float]) -> None:
        """
        @param period: Lateness beyond which a turn counts as a stall.
        @param seconds: The time source (see L{decisionSeconds}).
        """
        self.period = period
        self.seconds = seconds
        self._expected = seconds()
        self.stalls = 0

    def expect(self, delay: float) -> None:
        """
        The next turn is due C{delay} seconds from now.
        """
        self._expected = self.seconds() + delay

    def late(self) -> bool:
        """
        Whether this turn runs more than C{period} after it was due; counts
        it in L{stalls} if so.
        """
        if self.seconds() - self._expected > self.period:
            self.stalls += 1
            return True
        return False


def useMonotonicTime(reactor: Any) -> bool:
    """
    Run C{reactor}'s timed calls on C{time.monotonic} instead of the wall
    clock, so that a step of the system clock neither fires every pending
    call at once (forward) nor holds them all back (backward).

    Twisted's C{callLater}, C{DelayedCall} and C{runUntilCurrent} read the
    time through C{reactor.seconds} (checked on Twisted 22.4 and 26.x), so
    replacing it is enough; calls already pending are moved onto the new
    time base, keeping their delays.  Only a program that owns its reactor
    should do this (C{twistd heartbeat} does, in C{makeService}): any code
    that takes C{reactor.seconds()} for the wall-clock time would be misled.

    @return: C{True} if the reactor now runs on monotonic time, C{False} if
        it is not a reactor this applies to (a fake clock, or a reactor that
        keeps its own time, as the asyncio one does).
    """
    if not isRealReactor(reactor):
        return False
    if reactor.seconds is time.monotonic:
        return True
    from twisted.python.runtime import seconds as wallSeconds

    if reactor.seconds is not wallSeconds:
        return False
    offset = time.monotonic() - wallSeconds()
    pending = reactor.getDelayedCalls()
    reactor.seconds = time.monotonic
    for call in pending:
        # A uniform shift keeps the reactor's heap in order.
        call.time += offset
        call.seconds = time.monotonic
    return True
