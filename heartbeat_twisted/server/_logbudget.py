"""
Logging that a client cannot turn against the server: one budget of log
lines per second shared by every connection event, with a summary of what
it suppressed, and a per-connection allowance for payload lines.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from .._config import _whole

__all__ = ["PAYLOAD_LINES_PER_SECOND", "LogBudget", "LogConfig", "PayloadAllowance"]

#: Payload lines one connection may log per second with C{--log-payloads}.
PAYLOAD_LINES_PER_SECOND = 5

#: Bytes of a payload shown in its log line; the rest is counted, not shown.
PAYLOAD_SHOWN = 200


@attrs.frozen(init=False)
class LogConfig:
    """
    How much the server logs about its connections.

    @ivar linesPerSecond: Log lines about connections (connects, closes,
        refusals, payloads) per second, all connections together; past
        it lines are counted, not written, and one summary line per
        second says how many; C{>= 1}.
    @ivar logPayloads: Whether received payloads are logged (at most
        L{PAYLOAD_LINES_PER_SECOND} lines a second per connection, each
        showing at most 200 bytes).
    """

    linesPerSecond: int
    logPayloads: bool

    def __init__(self, linesPerSecond: int = 100, logPayloads: bool = False) -> None:
        self.__attrs_init__(
            _whole("linesPerSecond", linesPerSecond, 1, None), bool(logPayloads)
        )


class LogBudget:
    """
    At most C{linesPerSecond} log lines in each one-second window; lines
    past it are dropped and counted, and at the end of a window that
    dropped any, one line says how many (that summary is outside the
    budget: at most one a second).

    Use it as a guard: C{if budget.allow(): log.info(...)}; the cost of a
    line the budget allows is one clock read and two integer operations.

    @ivar suppressed: Lines dropped since the start.
    @ivar written: Lines allowed since the start.
    """

    _log = Logger()

    def __init__(self, linesPerSecond: int, clock: IReactorTime) -> None:
        self.linesPerSecond = linesPerSecond
        self._clock = clock
        self._windowEnd = 0.0
        self._used = 0
        self._pending = 0
        self._summary: IDelayedCall | None = None
        self.suppressed = 0
        self.written = 0

    def allow(self) -> bool:
        """
        Whether one more line may be written now; count it either way.
        """
        now = self._clock.seconds()
        if now >= self._windowEnd:
            self._windowEnd = now + 1.0
            self._used = 0
        if self._used < self.linesPerSecond:
            self._used += 1
            self.written += 1
            return True
        self.suppressed += 1
        self._pending += 1
        if self._summary is None:
            self._summary = self._clock.callLater(
                self._windowEnd - now, self._summarize
            )
        return False

    def _summarize(self) -> None:
        self._summary = None
        count, self._pending = self._pending, 0
        self._log.warn(
            "{count} log lines suppressed (more than {rate} a second)",
            count=count,
            rate=self.linesPerSecond,
        )

    def stop(self) -> None:
        """
        Write the pending summary now, if any (when the server stops).
        """
        summary, self._summary = self._summary, None
        if summary is not None and summary.active():
            summary.cancel()
            self._summarize()


class PayloadAllowance:
    """
    One connection's allowance of payload log lines:
    L{PAYLOAD_LINES_PER_SECOND} in each one-second window.
    """

    def __init__(self) -> None:
        self._windowEnd = 0.0
        self._used = 0

    def allow(self, now: float) -> bool:
        """
        Whether this connection may log one more payload at C{now}.
        """
        if now >= self._windowEnd:
            self._windowEnd = now + 1.0
            self._used = 0
        if self._used < PAYLOAD_LINES_PER_SECOND:
            self._used += 1
            return True
        return False


def shownPayload(data: bytes) -> dict[str, Any]:
    """
    The log fields for a payload: at most L{PAYLOAD_SHOWN} bytes of it and
    its full length.
    """
    return {"payload": data[:PAYLOAD_SHOWN], "length": len(data)}
