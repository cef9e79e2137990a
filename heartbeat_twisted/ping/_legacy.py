"""
The configuration forms of heartbeat_twisted 0.1, kept working for one
release with a L{DeprecationWarning}: C{factory.pingResponder =
PingResponder(...)}, C{factory.pinger = Pinger(...)} and L{PingBackoff}.
"""

from __future__ import annotations

import random as _random
import warnings
from collections import Counter
from collections.abc import Callable, Iterable

import attrs
from twisted.application.internet import backoffPolicy
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

from .._config import _positive
from ._config import HealthCheck, PingConfig, PingServerConfig
from ._counters import RoundTripStats
from ._health import HealthFailure
from ._shared import PingShared

__all__ = ["PingBackoff", "PingResponder", "Pinger", "warnOnce"]


def warnOnce(owner: object, message: str) -> None:
    """
    Warn about a deprecated form once per C{owner} object.
    """
    if getattr(owner, "_heartbeatWarned", False):
        return
    try:
        owner._heartbeatWarned = True  # type: ignore[attr-defined]
    except AttributeError:
        pass
    warnings.warn(message, DeprecationWarning, stacklevel=4)


class PingResponder:
    """
    Deprecated: give C{PingServerConfig(..., healthChecks=...)} as the
    factory's C{pingServerConfig} instead; the counters are
    C{factory.pingCounters}.

    @ivar config: The limits, with the health checks.
    """

    def __init__(
        self,
        config: PingServerConfig | None = None,
        healthChecks: Iterable[HealthCheck] = (),
        clock: IReactorTime | None = None,
        maxAge: float = 0.0,
    ) -> None:
        """
        @param config: The limits; L{PingServerConfig}C{()} if L{None}.
        @param healthChecks: The checks.
        @param clock: The global reactor if L{None}.
        @param maxAge: Seconds a finished run of the checks is reused.
        """
        base = config if config is not None else PingServerConfig()
        if maxAge != 0:
            _positive("maxAge", maxAge)
        self.config = attrs.evolve(
            base, healthChecks=tuple(healthChecks), healthCheckMaxAge=maxAge
        )
        self.shared = PingShared(clock)

    @property
    def healthChecks(self) -> tuple[HealthCheck, ...]:
        """
        The checks; setting them replaces C{config} (connections read it
        at each ping).
        """
        return self.config.healthChecks

    @healthChecks.setter
    def healthChecks(self, checks: Iterable[HealthCheck]) -> None:
        self.config = attrs.evolve(self.config, healthChecks=tuple(checks))

    @property
    def maxAge(self) -> float:
        """
        Seconds a finished run is reused.
        """
        return self.config.healthCheckMaxAge

    @property
    def clock(self) -> IReactorTime:
        """
        The clock.
        """
        return self.shared.clock

    @clock.setter
    def clock(self, clock: IReactorTime) -> None:
        self.shared.clock = clock

    @property
    def pings(self) -> int:
        """
        Pings accepted.
        """
        return self.shared.counters.pings

    @property
    def pongs(self) -> int:
        """
        C{pong} answers sent.
        """
        return self.shared.counters.pongs

    @property
    def unhealthy(self) -> int:
        """
        C{error unhealthy} answers sent.
        """
        return self.shared.counters.unhealthy

    @property
    def runs(self) -> int:
        """
        Runs of the health checks.
        """
        return self.shared.counters.healthRuns

    @property
    def refused(self) -> Counter[str]:
        """
        Connections closed for misbehaving, by reason.
        """
        return self.shared.counters.refused

    def check(self) -> Deferred[list[HealthFailure]]:
        """
        Run the health checks; a L{Deferred<twisted.internet.defer.Deferred>} of the
        failures.
        """
        verdict = self.shared.health(self.config).check()
        if isinstance(verdict, Deferred):
            return verdict
        return succeed(list(verdict))


class Pinger:
    """
    Deprecated: give the C{PingConfig} as the factory's C{pingConfig}
    instead; the clock comes from the factory's C{heartbeatClock}, the
    counters are C{factory.pingCounters}.

    @ivar config: Interval, timeout, jitter and what counts as quiet.
    """

    def __init__(
        self,
        config: PingConfig,
        clock: IReactorTime | None = None,
        random: Callable[[], float] = _random.random,
    ) -> None:
        """
        @param config: The settings.
        @param clock: The global reactor if L{None}.
        @param random: The source of jitter.
        """
        self.config = config
        self.shared = PingShared(clock, random)

    @property
    def clock(self) -> IReactorTime:
        """
        The clock.
        """
        return self.shared.clock

    @clock.setter
    def clock(self, clock: IReactorTime) -> None:
        self.shared.clock = clock

    @property
    def random(self) -> Callable[[], float]:
        """
        The source of jitter.
        """
        return self.shared.random

    @random.setter
    def random(self, random: Callable[[], float]) -> None:
        self.shared.random = random

    @property
    def sent(self) -> int:
        """
        Pings sent.
        """
        return self.shared.counters.pingsSent

    @property
    def answered(self) -> int:
        """
        Pings answered.
        """
        return self.shared.counters.answers

    @property
    def unhealthy(self) -> int:
        """
        Answers reporting failing checks.
        """
        return self.shared.counters.unhealthyAnswers

    @property
    def dead(self) -> int:
        """
        Peers declared dead.
        """
        return self.shared.counters.deadPeers

    @property
    def stats(self) -> RoundTripStats:
        """
        Round trips of all connections together.
        """
        return self.shared.counters.roundTrips

    def nextDelay(self) -> float:
        """
        Seconds of quiet to wait before the next ping.
        """
        config = self.config
        return config.interval * (1.0 - config.jitter * self.random())


class PingBackoff:
    """
    Deprecated: L{PingClientFactory} now counts a connection as good only
    after its first answered ping through
    L{ClientService<twisted.application.internet.ClientService>}'s
    C{prepareConnection}; give a L{backoffPolicy} as its C{retryPolicy}.
    This is that policy, callable as before.

    @ivar unproven: Always 0 (kept for old readers).
    """

    unproven = 0

    def __init__(
        self,
        initialDelay: float = 1.0,
        maxDelay: float = 60.0,
        factor: float = 1.5,
        jitter: Callable[[], float] = _random.random,
    ) -> None:
        """
        The parameters of L{backoffPolicy}.
        """
        initial = _positive("initialDelay", initialDelay)
        top = _positive("maxDelay", maxDelay)
        if top < initial:
            raise ValueError(
                f"'maxDelay' must be >= initialDelay ({initialDelay!r}): {maxDelay!r}"
            )
        grow = _positive("factor", factor)
        if grow < 1:
            raise ValueError(f"'factor' must be >= 1: {factor!r}")
        self._policy = backoffPolicy(initial, top, grow, jitter)

    def __call__(self, attempt: int) -> float:
        """
        Seconds to wait before reconnection attempt C{attempt}.
        """
        return self._policy(attempt)

    def connectionEnded(self, proven: bool) -> None:
        """
        Does nothing now.
        """
