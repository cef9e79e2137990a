"""
Health checks that run before the server answers C{pong}, coalesced across
the pings that arrive while a run is in progress.
"""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._config import _positive
from .._time import resolveClock
from ._config import PingServerConfig
from ._lines import describeError

__all__ = ["HealthCheck", "HealthCheckError", "HealthFailure", "PingResponder"]

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class HealthCheckError(Exception):
    """
    Raise (or fail with) this from a health check to say why it failed in
    your own words: the reply line carries the message alone, without the
    exception's type.
    """


@attrs.frozen(init=False)
class HealthCheck:
    """
    One dependency the server checks before it answers C{pong}.

    The check is called with no arguments.  It passes when it returns (or
    its L{Deferred} or coroutine ends with) anything but C{False}; it fails
    when it raises, fails, returns C{False}, or takes longer than
    C{timeout} seconds (its L{Deferred} is then cancelled).

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


@attrs.frozen
class HealthFailure:
    """
    A health check that did not pass, and why.

    @ivar name: The check's name.
    @ivar reason: One line of printable ASCII: C{"timed out after 2 s"},
        C{"returned False"}, or the exception's type and text.
    """

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


class PingResponder:
    """
    What the answering connections of one factory share: the limits, the
    health checks, the clock and the counters.

    Health checks are coalesced: pings that arrive while a run of the checks
    is in progress wait for that run instead of starting another, so a
    thousand clients pinging at once cost the dependencies one run; with
    C{maxAge} a finished run is also reused for that many seconds.

    @ivar config: The limits.
    @ivar healthChecks: The checks, run together before each C{pong}.
    @ivar clock: Time source and scheduler (check timeouts, close grace).
    @ivar maxAge: Seconds a finished run of the checks is reused; C{>= 0}.
    @ivar pings: Pings accepted (answered or to be answered).
    @ivar pongs: C{pong} lines sent.
    @ivar unhealthy: C{error unhealthy} lines sent.
    @ivar runs: Runs of the health checks started.
    @ivar refused: Connections closed for misbehaving, by reason.
    """

    _log = Logger()

    def __init__(
        self,
        config: PingServerConfig | None = None,
        healthChecks: Iterable[HealthCheck] = (),
        clock: IReactorTime | None = None,
        maxAge: float = 0.0,
    ) -> None:
        """
        @param config: The limits; L{PingServerConfig}C{()} if L{None}.
        @param healthChecks: The checks (a sequence of L{HealthCheck}).
        @param clock: The global reactor if L{None}.
        @param maxAge: Seconds a finished run of the checks is reused.
        """
        checks = tuple(healthChecks)
        for check in checks:
            if not isinstance(check, HealthCheck):
                raise ValueError(f"'healthChecks' must hold HealthChecks: {check!r}")
        names = [c.name for c in checks]
        if len(set(names)) != len(names):
            raise ValueError(f"'healthChecks' names must be unique: {names!r}")
        age = 0.0 if maxAge == 0 else _positive("maxAge", maxAge)
        self.config = config if config is not None else PingServerConfig()
        self.healthChecks: tuple[HealthCheck, ...] = checks
        self.clock = resolveClock(clock)
        self.maxAge = age
        self.pings = 0
        self.pongs = 0
        self.unhealthy = 0
        self.runs = 0
        self.refused: Counter[str] = Counter()
        self._waiters: list[Deferred[list[HealthFailure]]] | None = None
        self._last: tuple[float, list[HealthFailure]] | None = None
        self._failing: set[str] = set()

    def check(self) -> Deferred[list[HealthFailure]]:
        """
        Run the health checks (or join the run in progress, or reuse one
        younger than C{maxAge}).

        @return: A L{Deferred} that fires with the failures, an empty list
            when all pass; it never fails.  With no checks, or when every
            check answers synchronously, it has already fired.
        """
        if not self.healthChecks:
            return succeed([])
        if self._last is not None and self.maxAge:
            at, failures = self._last
            if self.clock.seconds() - at <= self.maxAge:
                return succeed(list(failures))
        waiter: Deferred[list[HealthFailure]] = Deferred()
        if self._waiters is not None:
            self._waiters.append(waiter)
            return waiter
        self._waiters = [waiter]
        self.runs += 1
        runs = [self._runOne(check) for check in self.healthChecks]
        defer.gatherResults(runs).addCallback(self._finished)
        return waiter

    def _finished(self, results: list[HealthFailure | None]) -> None:
        failures = [f for f in results if f is not None]
        failing = {f.name for f in failures}
        if failing != self._failing:
            # Log changes of health, not every answer: a thousand clients
            # pinging an unhealthy server must not flood the log.
            self._failing = failing
            if failures:
                self._log.warn(
                    "health checks failing: {report}",
                    report="; ".join(str(f) for f in failures),
                    failures=sorted(failing),
                )
            else:
                self._log.info("health checks pass again")
        self._last = (self.clock.seconds(), failures)
        waiters, self._waiters = self._waiters or [], None
        for waiter in waiters:
            waiter.callback(list(failures))

    def _runOne(self, check: HealthCheck) -> Deferred[HealthFailure | None]:
        def verdict(result: object) -> HealthFailure | None:
            if result is False:
                return HealthFailure(check.name, "returned False")
            return None

        def failed(failure: Failure) -> HealthFailure:
            if isinstance(failure.value, defer.TimeoutError | defer.CancelledError):
                return HealthFailure(check.name, f"timed out after {check.timeout:g} s")
            assert failure.value is not None
            return HealthFailure(
                check.name, describeError(failure.value, HealthCheckError)
            )

        function: Callable[[], object] = check.check
        try:
            result = function()
        except Exception as e:
            return succeed(
                HealthFailure(check.name, describeError(e, HealthCheckError))
            )
        if inspect.iscoroutine(result):
            result = Deferred.fromCoroutine(result)
        if isinstance(result, Deferred):
            running: Deferred[Any] = result
            running.addTimeout(check.timeout, self.clock)
            return running.addCallbacks(verdict, failed)
        return succeed(verdict(result))
