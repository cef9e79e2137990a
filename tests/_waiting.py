"""
Waiting, with a bound, for a condition on something that changes: the base
of the test helpers for child processes, raw clients and recorded events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, TimeoutError, fail, succeed
from twisted.python.failure import Failure

__all__ = ["Waitable"]


class Waitable:
    """
    Something whose state changes (it calls L{changed} each time);
    L{waitUntil} fires when a condition on it holds, or fails with
    L{captured} after a bounded time, or as soon as L{finished} says that
    nothing more will change.
    """

    def __init__(self) -> None:
        self._waiters: list[tuple[Callable[[], Any], str, Deferred[Any]]] = []
        self._finished: str | None = None

    def captured(self) -> str:
        """
        What a failed wait shows (for example the output so far).
        """
        return ""

    def _failure(self, message: str) -> AssertionError:
        captured = self.captured()
        return AssertionError(f"{message}; {captured}" if captured else message)

    def changed(self) -> None:
        """
        Fire the waits whose condition now holds.
        """
        for waiter in list(self._waiters):
            condition, _, d = waiter
            value = condition()
            if value:
                self._waiters.remove(waiter)
                d.callback(value)

    def finished(self, why: str) -> None:
        """
        Nothing will change any more (C{why}): fire the waits whose
        condition holds now, fail the others.
        """
        self.changed()
        self._finished = why
        waiters, self._waiters = self._waiters, []
        for _, what, d in waiters:
            d.errback(self._failure(f"{why} before {what}"))

    def waitUntil(
        self, condition: Callable[[], Any], timeout: float, what: str
    ) -> Deferred[Any]:
        """
        Fire with the first true value of C{condition()} (now or after a
        change); fail after C{timeout} seconds, or once nothing will change.
        """
        value = condition()
        if value:
            return succeed(value)
        if self._finished is not None:
            return fail(self._failure(f"{self._finished} before {what}"))
        d: Deferred[Any] = Deferred()
        waiter = (condition, what, d)
        self._waiters.append(waiter)

        def expired(failure: Failure) -> Failure:
            failure.trap(TimeoutError)
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            raise self._failure(f"no {what} within {timeout} s")

        d.addTimeout(timeout, reactor)
        return d.addErrback(expired)
