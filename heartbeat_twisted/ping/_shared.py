"""
What the ping/pong connections of one factory share at run time: the
clock, the randomness for jitter, the counters, the health-check runner
and the stall watch.  Made lazily, once per factory, from the factory's
C{heartbeatClock} (and C{pingRandom}) if it has them; never configured by
users directly (their settings are L{PingConfig} and L{PingServerConfig}).
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from .._time import resolveClock
from ._config import PingServerConfig
from ._counters import PingCounters
from ._health import HealthRunner

__all__ = ["PingShared", "StallWatch", "sharedFor"]


class StallWatch:
    """
    Notices stalls of the reactor: while anyone watches, a timer runs every
    L{PERIOD} seconds; when it runs more than L{PERIOD} seconds late, the
    reactor was stalled (Twisted runs timed calls before it reads sockets,
    so the stall is known before what arrived during it is read).

    @ivar stallEnd: When the last stall was noticed.
    @ivar stallLength: How long it was, in seconds (an upper bound).
    """

    PERIOD = 1.0

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.watchers = 0
        self.stallEnd = float("-inf")
        self.stallLength = 0.0
        self._lastRun = 0.0
        self._call: IDelayedCall | None = None

    def start(self) -> None:
        """
        One more watcher; the timer runs while there is any.
        """
        self.watchers += 1
        if self.watchers == 1:
            self._lastRun = self.clock.seconds()
            self._call = self.clock.callLater(self.PERIOD, self._tick)

    def stop(self) -> None:
        """
        One watcher fewer.
        """
        self.watchers -= 1
        if self.watchers == 0 and self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None

    def _tick(self) -> None:
        now = self.clock.seconds()
        self._noticeStall(now)
        self._lastRun = now
        self._call = self.clock.callLater(self.PERIOD, self._tick)

    def _noticeStall(self, now: float) -> None:
        gap = now - self._lastRun
        if gap > 2 * self.PERIOD:
            self.stallEnd = now
            self.stallLength = gap

    def lastStall(self, now: float) -> tuple[float, float]:
        """
        When the last stall ended and how long it was, in seconds (C{-inf}
        and C{0} if there was none), counting the stall going on now if
        the timer is overdue (a handler blocked the reactor, and the reads
        that follow it are served before the timer runs).
        """
        if self.watchers and now - self._lastRun > 2 * self.PERIOD:
            self._noticeStall(now)
        return self.stallEnd, self.stallLength


class PingShared:
    """
    The run-time state of one factory's ping/pong connections.

    @ivar clock: Time source and scheduler.
    @ivar random: Returns a float in C{[0, 1)}, for jitter.
    @ivar counters: The L{PingCounters}.
    """

    def __init__(
        self,
        clock: IReactorTime | None = None,
        random: Callable[[], float] | None = None,
        counters: PingCounters | None = None,
    ) -> None:
        self.clock = resolveClock(clock)
        self.random = random if random is not None else _random.random
        self.counters = counters if counters is not None else PingCounters()
        self._health: HealthRunner | None = None
        self._stalls: StallWatch | None = None

    def health(self, config: PingServerConfig) -> HealthRunner:
        """
        The runner of C{config}'s health checks, made on first use.
        """
        runner = self._health
        if (
            runner is None
            or runner.checks is not config.healthChecks
            or runner.maxAge != config.healthCheckMaxAge
        ):
            runner = self._health = HealthRunner(
                config.healthChecks, config.healthCheckMaxAge, self.clock, self.counters
            )
        return runner

    def stalls(self) -> StallWatch:
        """
        The stall watch, made on first use.
        """
        if self._stalls is None:
            self._stalls = StallWatch(self.clock)
        return self._stalls


_SHARED: WeakKeyDictionary[Any, PingShared] = WeakKeyDictionary()


def sharedFor(protocol: object) -> PingShared:
    """
    The L{PingShared} of C{protocol}'s factory (or of its class, when it has
    no factory), made on first use with the factory's C{heartbeatClock}
    and C{pingRandom}, if any; its counters are then also set as
    C{factory.pingCounters}.
    """
    factory = getattr(protocol, "factory", None)
    owner = factory if factory is not None else type(protocol)
    try:
        return _SHARED[owner]
    except KeyError:
        pass
    clock = getattr(factory, "heartbeatClock", None)
    if clock is None:
        clock = getattr(protocol, "heartbeatClock", None)
    shared = PingShared(clock, getattr(factory, "pingRandom", None))
    _SHARED[owner] = shared
    if factory is not None:
        try:
            factory.pingCounters = shared.counters
        except AttributeError:
            pass
    return shared
