"""
L{TimeoutMixin}: a drop-in for L{twisted.protocols.policies.TimeoutMixin}
whose C{resetTimeout} is a timestamp store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall

from ._hooks import callsFirst, hookMethod

__all__ = ["TimeoutMixin"]

_MARK = "_timeoutHooked"


class TimeoutMixin:
    """
    Mixin for protocols that time out, with the names, signatures and timing
    of L{twisted.protocols.policies.TimeoutMixin}: switch by changing the
    import.

    The difference is the cost: Twisted's C{resetTimeout} moves the timer
    (a heap operation on each received chunk); this one stores the time, and
    the single timer, when it fires early, re-arms itself for what is left.
    The timer is never moved sooner by C{resetTimeout}, and the connection
    still times out exactly C{timeOut} seconds after the last reset.  Unlike
    Twisted's, it cancels its timer when the connection is lost.

    @cvar timeOut: Seconds of inactivity after which L{timeoutConnection} is
        called, or L{None} for no timeout.
    """

    timeOut: float | None = None
    _timeoutCall: IDelayedCall | None = None
    _timeoutLast: float = 0.0
    _timeoutSeconds: Callable[[], float] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hookMethod(cls, "connectionLost", _MARK, callsFirst("_timeoutCancel"))

    def callLater(self, period: float, func: Callable[[], object]) -> IDelayedCall:
        """
        Schedule C{func} after C{period} seconds: the reactor's C{callLater}.
        Tests override this (for example with a L{task.Clock}'s), as with
        Twisted's mixin; the current time is read from the same clock.
        """
        from twisted.internet import reactor

        return reactor.callLater(period, func)

    def resetTimeout(self) -> None:
        """
        Restart the countdown from now.  Does nothing if no timeout is set or
        the connection already timed out.
        """
        if self._timeoutCall is not None and self._timeoutSeconds is not None:
            self._timeoutLast = self._timeoutSeconds()

    def setTimeout(self, period: float | None) -> float | None:
        """
        Change the timeout to C{period} seconds from now, or cancel it with
        L{None}.

        @return: The previous C{timeOut}.
        """
        prev = self.timeOut
        self.timeOut = period
        call = self._timeoutCall
        if call is not None:
            if period is None:
                self._timeoutCancel()
            else:
                now = self._now(call)
                self._timeoutLast = now
                if now + period < call.getTime():
                    call.reset(period)
        elif period is not None:
            call = self._timeoutCall = self.callLater(period, self._timeoutFired)
            self._timeoutLast = self._now(call)
        return prev

    def timeoutConnection(self) -> None:
        """
        Called when the connection times out.  The default drops the
        connection; override to do something else.
        """
        transport: Any = getattr(self, "transport", None)
        transport.loseConnection()

    def _now(self, call: IDelayedCall) -> float:
        """
        The current time on the clock that runs C{call}.
        """
        seconds: Callable[[], float] | None = getattr(call, "seconds", None)
        if seconds is None:
            # Not a Twisted DelayedCall: it does not say its clock.
            from twisted.internet import reactor

            seconds = reactor.seconds
        assert seconds is not None
        self._timeoutSeconds = seconds
        return seconds()

    def _timeoutFired(self) -> None:
        call, self._timeoutCall = self._timeoutCall, None
        timeOut = self.timeOut
        if call is None or timeOut is None:
            return
        now = self._now(call)
        remaining = self._timeoutLast + timeOut - now
        if remaining > 0:
            # Activity since the timer was armed: re-arm for the rest.
            self._timeoutCall = self.callLater(remaining, self._timeoutFired)
            return
        self.timeoutConnection()

    def _timeoutCancel(self) -> None:
        call, self._timeoutCall = self._timeoutCall, None
        if call is not None and call.active():
            call.cancel()
