"""
Frozen, validated settings of the application heartbeat.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable

import attrs

from .._config import _number, _positive, _whole

__all__ = ["HealthCheck", "PingConfig", "PingServerConfig"]


_WATCHED = ("sent", "received", "any")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@attrs.frozen(init=False)
class PingConfig:
    """
    The pinging side of the application heartbeat: send C{ping} when the
    connection has been quiet for C{interval} seconds, and declare the peer
    dead when no answer arrives within C{timeout} seconds.

    Each wait is drawn afresh as C{interval * (1 - jitter * r)} with C{r} in
    C{[0, 1)}, so a fleet started together does not ping in lockstep and no
    wait is longer than C{interval} (a proxy timeout above C{interval} is
    therefore always beaten).

    @ivar interval: Seconds of quiet before a ping; C{> 0}.
    @ivar timeout: Seconds to wait for the answer to a ping; C{> 0}.
    @ivar jitter: The fraction of C{interval} the wait may be shortened by,
        at random; C{0 <= jitter < 1}.
    @ivar watch: Which quiet counts: C{"sent"} (nothing written for
        C{interval}: a client keeping a path open), C{"received"} (nothing
        received: a server probing clients that went quiet) or C{"any"} (no
        traffic either way).
    """

    interval: float
    timeout: float
    jitter: float
    watch: str

    def __init__(
        self,
        interval: float,
        timeout: float,
        jitter: float = 0.1,
        watch: str = "sent",
    ) -> None:
        spread = _number("jitter", jitter)
        if not 0 <= spread < 1:
            raise ValueError(f"'jitter' must be >= 0 and < 1: {jitter!r}")
        if watch not in _WATCHED:
            raise ValueError(f"'watch' must be one of {', '.join(_WATCHED)}: {watch!r}")
        self.__attrs_init__(
            _positive("interval", interval),
            _positive("timeout", timeout),
            spread,
            watch,
        )


@attrs.frozen(init=False)
class HealthCheck:
    """
    One dependency the server checks before it answers C{pong}.

    The check is called with no arguments.  It passes when it returns (or
    its L{Deferred<twisted.internet.defer.Deferred>} or coroutine ends with) anything
    but C{False}; it fails
    when it raises, fails, returns C{False}, or takes longer than
    C{timeout} seconds (its L{Deferred<twisted.internet.defer.Deferred>} is then
    cancelled).  A check that
    answers synchronously costs no L{Deferred<twisted.internet.defer.Deferred>}.

    @ivar name: Names the check in the reply line: 1-64 of
        C{A-Z a-z 0-9 . _ -}.
    @ivar check: The callable.
    @ivar timeout: Seconds the check may take; C{> 0}.
    """

    name: str
    check: Callable[[], object]
    timeout: float

    def __init__(
        self, name: str, check: Callable[[], object], timeout: float = 5.0
    ) -> None:
        if not isinstance(name, str) or _NAME.fullmatch(name) is None:
            raise ValueError(
                f"'name' must be 1-64 of A-Z a-z 0-9 . _ - (it is put on the "
                f"reply line): {name!r}"
            )
        if not callable(check):
            raise ValueError(f"'check' must be callable: {check!r}")
        self.__attrs_init__(name, check, _positive("timeout", timeout))


def _healthChecks(checks: Iterable[HealthCheck]) -> tuple[HealthCheck, ...]:
    result = tuple(checks)
    for check in result:
        if not isinstance(check, HealthCheck):
            raise ValueError(f"'healthChecks' must hold HealthChecks: {check!r}")
    names = [c.name for c in result]
    if len(set(names)) != len(names):
        raise ValueError(f"'healthChecks' names must be unique: {names!r}")
    return result


def _oldFlood(
    minPingInterval: float | None, maxPingStrikes: int | None
) -> tuple[float | None, int | None]:
    """
    The C{pingRate} and C{pingBurst} the deprecated C{minPingInterval} and
    C{maxPingStrikes} stand for (L{None} where not given), with a warning.
    """
    rate: float | None = None
    burst: int | None = None
    if minPingInterval is not None:
        interval = _number("minPingInterval", minPingInterval)
        if interval < 0:
            raise ValueError(f"'minPingInterval' must be >= 0: {minPingInterval!r}")
        rate = 0.0 if interval == 0 else 1.0 / interval
    if maxPingStrikes is not None:
        burst = _whole("maxPingStrikes", maxPingStrikes, 0, None) + 1
    warnings.warn(
        "PingServerConfig(minPingInterval=..., maxPingStrikes=...) is deprecated "
        "since heartbeat_twisted 0.2.0: use pingRate=1/minPingInterval and "
        "pingBurst=maxPingStrikes + 1",
        DeprecationWarning,
        stacklevel=3,
    )
    return rate, burst


@attrs.frozen(init=False)
class PingServerConfig:
    """
    The answering side of the application heartbeat: the health checks run
    before each C{pong}, and the limits that keep a misbehaving client from
    hurting the server or its other clients.

    Ping floods are judged by a token bucket per connection: it holds up
    to C{pingBurst} pings and refills at C{pingRate} pings a second, by
    the time that really passed; a ping that finds it empty gets
    C{error too_many_pings} and the connection is closed.  Pings that
    arrive together right after the server itself stalled (a reactor turn
    late by more than a second: a blocking call, a GC or VM pause) were
    sent during the stall, so the time of the stall refills the bucket
    beyond C{pingBurst}: a client pinging at or below C{pingRate} is never
    closed by a server stall, while a flood still is.

    @ivar pingRate: Pings a second a client may send, sustained; C{>= 0}
        (C{0} turns the flood limit off).
    @ivar pingBurst: Pings a client may send at once; C{>= 1}.
    @ivar maxLineLength: The longest line accepted, in bytes without the
        line end, 16..1048576; a longer one gets C{error line_too_long} and
        the connection is closed.
    @ivar maxBadLines: Malformed or unknown lines tolerated (each answered
        with an error line); the next one closes the connection; C{>= 0}.
    @ivar closeGrace: Seconds a connection closed for misbehaving (or told
        to go) may take to flush its last line before it is aborted;
        C{>= 0}.
    @ivar healthChecks: The L{HealthCheck}s run before each C{pong}; their
        names are unique.  Runs are shared by the connections of one
        factory: pings arriving while a run is in progress wait for it.
    @ivar healthCheckMaxAge: Seconds a finished run of the checks is
        reused; C{>= 0}.
    """

    pingRate: float
    pingBurst: int
    maxLineLength: int
    maxBadLines: int
    closeGrace: float
    healthChecks: tuple[HealthCheck, ...]
    healthCheckMaxAge: float

    def __init__(
        self,
        pingRate: float = 2.0,
        pingBurst: int = 3,
        maxLineLength: int = 1024,
        maxBadLines: int = 3,
        closeGrace: float = 5.0,
        healthChecks: Iterable[HealthCheck] = (),
        healthCheckMaxAge: float = 0.0,
        *,
        minPingInterval: float | None = None,
        maxPingStrikes: int | None = None,
    ) -> None:
        """
        @param minPingInterval: Deprecated: C{pingRate=1/minPingInterval}.
        @param maxPingStrikes: Deprecated: C{pingBurst=maxPingStrikes + 1}.
        """
        if minPingInterval is not None or maxPingStrikes is not None:
            oldRate, oldBurst = _oldFlood(minPingInterval, maxPingStrikes)
            pingRate = pingRate if oldRate is None else oldRate
            pingBurst = pingBurst if oldBurst is None else oldBurst
        rate = _number("pingRate", pingRate)
        if rate < 0:
            raise ValueError(f"'pingRate' must be >= 0: {pingRate!r}")
        grace = _number("closeGrace", closeGrace)
        if grace < 0:
            raise ValueError(f"'closeGrace' must be >= 0: {closeGrace!r}")
        age = _number("healthCheckMaxAge", healthCheckMaxAge)
        if age < 0:
            raise ValueError(f"'healthCheckMaxAge' must be >= 0: {healthCheckMaxAge!r}")
        self.__attrs_init__(
            rate,
            _whole("pingBurst", pingBurst, 1, None),
            _whole("maxLineLength", maxLineLength, 16, 1048576),
            _whole("maxBadLines", maxBadLines, 0, None),
            grace,
            _healthChecks(healthChecks),
            age,
        )
