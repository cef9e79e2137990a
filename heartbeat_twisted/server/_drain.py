"""
Telling clients to go before the server drops them on purpose: the
graceful stop of a rolling restart (fail the health check, wait, stop
listening, tell every client to go, abort the rest) and the maximum
connection age with grace and jitter (gRPC's MAX_CONNECTION_AGE and
MAX_CONNECTION_AGE_GRACE).
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._closing import closeGracefully, peerText
from .._config import _number
from .._time import resolveClock
from ..ping._config import HealthCheck, PingServerConfig
from ..ping._health import HealthCheckError

__all__ = [
    "MAX_AGE",
    "SHUTDOWN",
    "ConnectionSet",
    "DrainConfig",
    "Drainer",
    "MaxAge",
    "MaxAgeConfig",
    "tellToGo",
]

#: The close reason of a connection dropped by a graceful stop.
SHUTDOWN = "shutdown"
#: The close reason of a connection dropped for its age.
MAX_AGE = "max age"

_log = Logger()


def _atLeast(name: str, value: object, low: float, inclusive: bool = True) -> float:
    number = _number(name, value)
    if number < low or (not inclusive and number == low):
        bound = f">= {low:g}" if inclusive else f"> {low:g}"
        raise ValueError(f"{name!r} must be {bound}: {value!r}")
    return number


@attrs.frozen(init=False)
class DrainConfig:
    """
    What a graceful stop does.

    @ivar delay: Seconds the health check fails before the ports close,
        so that a balancer sees it and sends new clients elsewhere; C{>= 0}.
    @ivar grace: Seconds the clients told to go get to leave before they
        are aborted; C{>= 0}.
    """

    delay: float
    grace: float

    def __init__(self, delay: float = 0.0, grace: float = 5.0) -> None:
        self.__attrs_init__(_atLeast("delay", delay, 0), _atLeast("grace", grace, 0))


@attrs.frozen(init=False)
class MaxAgeConfig:
    """
    The maximum age of a connection: past C{age} seconds (each connection's
    own age varies by up to C{jitter} of it either way, so connections made
    together do not all leave together) the client is told to go; past
    C{grace} more seconds the connection is closed.

    @ivar age: Seconds; C{> 0}.
    @ivar grace: Seconds; C{>= 0}.
    @ivar jitter: Fraction of C{age}, C{0 <= jitter < 1}; 0.1 is gRPC's +-10%.
    """

    age: float
    grace: float
    jitter: float

    def __init__(self, age: float, grace: float = 5.0, jitter: float = 0.1) -> None:
        jitter = _atLeast("jitter", jitter, 0)
        if jitter >= 1:
            raise ValueError(f"'jitter' must be < 1: {jitter!r}")
        self.__attrs_init__(
            _atLeast("age", age, 0, inclusive=False),
            _atLeast("grace", grace, 0),
            jitter,
        )


def tellToGo(protocol: Any, reason: str, grace: float) -> None:
    """
    Tell the client on C{protocol} to go (and reconnect, elsewhere if it
    can) within C{grace} seconds, in one C{goaway GRACE :REASON} line
    (docs/pingpong.rst), and have the connection's close logged and
    counted with C{reason} however it then ends.
    """
    goAway: Callable[[str, float], object] | None = getattr(
        protocol, "pingGoAway", None
    )
    if goAway is not None:
        goAway(reason, grace)
        return
    sendLine: Callable[[bytes], object] = protocol.sendLine
    sendLine(f"goaway {grace:g} :{reason}".encode("ascii"))
    _markClose(protocol, reason)


def _markClose(protocol: Any, reason: str) -> None:
    """
    Make C{reason} the close reason of C{protocol}'s connection, unless it
    already has one.
    """
    if (
        getattr(protocol, "pingCloseReason", None) is None
        and getattr(protocol, "heartbeatCloseReason", None) is None
    ):
        protocol.heartbeatCloseReason = reason


class ConnectionSet:
    """
    The connections of a server that are open now, and a way to wait until
    there are none.

    @ivar connections: The open connections' protocols.
    """

    def __init__(self) -> None:
        self.connections: set[Any] = set()
        self._emptyWaiters: list[Deferred[None]] = []

    def __len__(self) -> int:
        return len(self.connections)

    def add(self, protocol: Any) -> None:
        """
        A connection was made.
        """
        self.connections.add(protocol)

    def discard(self, protocol: Any) -> None:
        """
        A connection is gone.
        """
        self.connections.discard(protocol)
        if not self.connections:
            waiters, self._emptyWaiters = self._emptyWaiters, []
            for waiter in waiters:
                waiter.callback(None)

    def whenEmpty(self) -> Deferred[None]:
        """
        A L{Deferred} that fires once no connection is open.
        """
        if not self.connections:
            return defer.succeed(None)
        waiter: Deferred[None] = Deferred()
        self._emptyWaiters.append(waiter)
        return waiter


class Drainer:
    """
    The graceful stop of one server.

    L{drain}: fail the health check for C{delay} seconds (it adds
    L{healthCheck} to the factory's C{pingServerConfig} and to every open
    connection's then, so it costs nothing per pong before), stop
    listening, tell every client to go,
    wait up to C{grace} seconds for them to leave, abort the rest.  Each
    connection dropped this way has the close reason C{shutdown}.

    @ivar config: The delay and grace.
    @ivar draining: Whether a drain has begun.
    """

    def __init__(
        self,
        config: DrainConfig,
        connections: ConnectionSet,
        factory: Any = None,
        clock: IReactorTime | None = None,
    ) -> None:
        """
        @param factory: The server factory whose health checks fail while
            draining (its C{pingServerConfig}; its open connections are
            C{connections}, each a L{PingAnswerMixin
            <heartbeat_twisted.ping.PingAnswerMixin>}).
        """
        self.config = config
        self._factory = factory
        self.draining = False
        self._connections = connections
        self._clock = resolveClock(clock)
        self._drained: Deferred[None] | None = None

    def healthCheck(self) -> HealthCheck:
        """
        A health check named C{draining} that fails once the drain began:
        pings are then answered C{error unhealthy :draining: ...}.
        """

        def check() -> None:
            if self.draining:
                raise HealthCheckError("server is shutting down")

        return HealthCheck("draining", check, timeout=1.0)

    def drain(self, stopListening: Callable[[], object]) -> Deferred[None]:
        """
        Stop gracefully; call C{stopListening} (which may return a
        L{Deferred}) once the health check has failed for C{delay} seconds.

        @return: A L{Deferred} that fires once every connection is gone.
            Calling it again returns a L{Deferred} for the same end.
        """
        if self._drained is not None:
            return _follow(self._drained)
        self.draining = True
        self._failHealthChecks()
        config = self.config
        _log.info(
            "draining: failing health checks for {delay} s, then telling "
            "{count} clients to go",
            delay=config.delay,
            count=len(self._connections),
        )
        d = defer.Deferred[None]()
        self._drained = d
        delayed = _sleep(self._clock, config.delay)
        delayed.addCallback(lambda _: stopListening())
        delayed.addCallback(lambda _: self._tellAll())
        delayed.addCallback(lambda _: d.callback(None))
        return _follow(d)

    def _failHealthChecks(self) -> None:
        factory = self._factory
        if factory is None:
            return
        base = factory.pingServerConfig or PingServerConfig()
        failing = attrs.evolve(
            base, healthChecks=(*base.healthChecks, self.healthCheck())
        )
        factory.pingServerConfig = failing
        for protocol in list(self._connections.connections):
            protocol.pingUseConfig(failing)

    def _tellAll(self) -> Deferred[None]:
        grace = self.config.grace
        connections = list(self._connections.connections)
        for protocol in connections:
            tellToGo(protocol, SHUTDOWN, grace)
        _log.info(
            "draining: told {count} clients to go; they have {grace} s",
            count=len(connections),
            grace=grace,
        )
        left = self._connections.whenEmpty()
        left.addTimeout(grace, self._clock)
        return left.addErrback(self._abortRest)

    def _abortRest(self, failure: Failure) -> Deferred[None]:
        failure.trap(defer.TimeoutError)  # type: ignore[no-untyped-call]
        rest = list(self._connections.connections)
        _log.info(
            "draining: aborting {count} clients still connected after {grace} s",
            count=len(rest),
            grace=self.config.grace,
        )
        for protocol in rest:
            _markClose(protocol, SHUTDOWN)
            transport: Any = protocol.transport
            transport.abortConnection()
        gone = self._connections.whenEmpty()
        # An abort is reported within a reactor turn or two; never hang.
        gone.addTimeout(5, self._clock)

        def late(failure: Failure) -> None:
            failure.trap(defer.TimeoutError)  # type: ignore[no-untyped-call]

        return gone.addErrback(late)


def _sleep(clock: IReactorTime, seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    clock.callLater(seconds, d.callback, None)
    return d


def _follow(d: Deferred[None]) -> Deferred[None]:
    follower: Deferred[None] = Deferred()

    def done(result: object) -> object:
        follower.callback(None)
        return result

    d.addBoth(done)
    return follower


class MaxAge:
    """
    Maximum connection age: each connection is told to go after its own
    age (C{age} +- C{jitter}), and closed C{grace} seconds later (close
    reason C{max age}).

    @ivar config: Age, grace and jitter.
    @ivar toldToGo: Connections told to go for their age so far.
    """

    def __init__(
        self,
        config: MaxAgeConfig,
        clock: IReactorTime | None = None,
        random: Callable[[], float] = _random.random,
        closeGrace: float = 2.0,
    ) -> None:
        """
        @param clock: Schedules the ages: the reactor if L{None}, or
            anything with C{callLater} and C{seconds}, such as the factory's
            L{IdleTracker<heartbeat_twisted.IdleTracker>} (its sweep keeps
            the deadlines, at most C{checkInterval} late, with no reactor
            timer per connection; C{twistd heartbeat} does that).
        @param random: Returns a float in C{[0, 1)}; tests pass
            C{lambda: 0.5} for no jitter.
        @param closeGrace: Seconds a connection closed for its age may take
            to close cleanly before it is aborted.
        """
        self._closeGrace = closeGrace
        self.config = config
        self.toldToGo = 0
        self._clock = resolveClock(clock)
        self._random = random
        self._calls: dict[Any, IDelayedCall] = {}

    def ageOf(self) -> float:
        """
        A new connection's age limit in seconds: C{age} scaled by a factor
        drawn uniformly from C{[1 - jitter, 1 + jitter)}.
        """
        config = self.config
        return config.age * (1 + config.jitter * (2 * self._random() - 1))

    def start(self, protocol: Any) -> None:
        """
        A connection was made: start its clock.
        """
        self._calls[protocol] = self._clock.callLater(
            self.ageOf(), self._expired, protocol
        )

    def stop(self, protocol: Any) -> None:
        """
        A connection is gone: forget it.
        """
        call = self._calls.pop(protocol, None)
        if call is not None and call.active():
            call.cancel()

    def _expired(self, protocol: Any) -> None:
        grace = self.config.grace
        self.toldToGo += 1
        _log.info(
            "telling {peer} to go: connected longer than its maximum age",
            peer=peerText(protocol.transport),
            reason=MAX_AGE,
        )
        tellToGo(protocol, MAX_AGE, grace)
        self._calls[protocol] = self._clock.callLater(grace, self._close, protocol)

    def _close(self, protocol: Any) -> None:
        self._calls.pop(protocol, None)
        closeGracefully(
            protocol, protocol.transport, self._closeGrace, self._clock, MAX_AGE
        )
