"""
Health checks that run before the server answers C{pong}, coalesced across
the pings that arrive while a run is in progress.  Checks that answer
synchronously are run inline: no L{Deferred<twisted.internet.defer.Deferred>} is made
for them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._config import HealthCheck
from ._counters import PingCounters
from ._lines import describeError

__all__ = ["HealthCheck", "HealthCheckError", "HealthFailure", "HealthRunner"]


class HealthCheckError(Exception):
    """
    Raise (or fail with) this from a health check to say why it failed in
    your own words: the reply line carries the message alone, without the
    exception's type.
    """


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


Verdict = list[HealthFailure] | Deferred[list[HealthFailure]]


class HealthRunner:
    """
    Runs one factory's health checks for its answering connections, one run
    at a time: pings arriving while a run is in progress wait for it, and
    with C{maxAge} a finished run is reused for that many seconds.
    """

    _log = Logger()

    def __init__(
        self,
        checks: tuple[HealthCheck, ...],
        maxAge: float,
        clock: IReactorTime,
        counters: PingCounters,
    ) -> None:
        self.checks = checks
        self.maxAge = maxAge
        self.clock = clock
        self.counters = counters
        self._waiters: list[Deferred[list[HealthFailure]]] | None = None
        self._last: tuple[float, list[HealthFailure]] | None = None
        self._failing: set[str] = set()

    def check(self) -> Verdict:
        """
        Run the checks (or join the run in progress, or reuse one younger
        than C{maxAge}).

        @return: The failures (an empty list when all pass) if they are
            known now; else a L{Deferred<twisted.internet.defer.Deferred>} that fires
            with them and never
            fails.  Do not change the list.
        """
        last = self._last
        if last is not None and self.maxAge:
            if self.clock.seconds() - last[0] <= self.maxAge:
                return last[1]
        if self._waiters is not None:
            waiter: Deferred[list[HealthFailure]] = Deferred()
            self._waiters.append(waiter)
            return waiter
        self.counters.healthRuns += 1
        results: list[Any] = [self._runOne(check) for check in self.checks]
        if not any(isinstance(r, Deferred) for r in results):
            return self._finished(results)
        first: Deferred[list[HealthFailure]] = Deferred()
        self._waiters = [first]
        running = [r if isinstance(r, Deferred) else defer.succeed(r) for r in results]
        defer.gatherResults(running).addCallback(self._finished)
        return first

    def _finished(self, results: list[HealthFailure | None]) -> list[HealthFailure]:
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
            waiter.callback(failures)
        return failures

    def _runOne(
        self, check: HealthCheck
    ) -> HealthFailure | Deferred[HealthFailure | None] | None:
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
            return HealthFailure(check.name, describeError(e, HealthCheckError))
        if inspect.iscoroutine(result):
            result = Deferred.fromCoroutine(result)
        if isinstance(result, Deferred):
            running: Deferred[Any] = result
            if not running.called:
                running.addTimeout(check.timeout, self.clock)
            judged = running.addCallbacks(verdict, failed)
            known: list[HealthFailure | None] = []

            def keep(value: HealthFailure | None) -> HealthFailure | None:
                known.append(value)
                return value

            judged.addCallback(keep)
            # A Deferred that already fired is read now: no run kept open.
            return known[0] if known else judged
        return verdict(result)


if TYPE_CHECKING:
    from ._legacy import PingResponder as PingResponder
else:

    def __getattr__(name: str) -> object:
        # The server's drain still imports the 0.1 responder from here.
        if name == "PingResponder":
            from ._legacy import PingResponder

            return PingResponder
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
