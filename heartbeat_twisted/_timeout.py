"""
L{TimeoutMixin}: a drop-in for L{twisted.protocols.policies.TimeoutMixin}
whose C{resetTimeout} is a timestamp store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ._closing import closed, closeGracefully
from ._hooks import callsFirst, hookMethod

__all__ = ["LATE", "TimeoutMixin"]

_MARK = "_timeoutHooked"

#: Seconds a timer may fire after its time and still decide at once; a
#: later one (the reactor stalled) waits one reactor turn, so that what
#: arrived during the stall is read first.
LATE = 0.05


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

    A timed-out connection is also bounded in how long it takes to close.
    C{loseConnection} waits for the peer: over TLS it sends C{close_notify}
    and keeps the socket until the peer answers (and, while a producer is
    registered, does not even start), so with Twisted's mixin a silent peer
    keeps a timed-out connection and its descriptor open forever.  Here,
    if the connection is closing once L{timeoutConnection} returns (the
    default closes it; an override may too), it is aborted if it is still
    open L{timeoutCloseGrace} seconds later.  An override that keeps the
    connection open is left alone.

    A reactor stall does not time out a busy connection: a timer that
    fires more than L{LATE} seconds late (a blocking call in some handler,
    a GC or VM pause) decides only after the reactor's next poll has read
    what arrived meanwhile.  A silent connection still times out then.

    @cvar timeOut: Seconds of inactivity after which L{timeoutConnection} is
        called, or L{None} for no timeout.
    @cvar timeoutCloseGrace: Seconds a timed-out connection may take to
        close cleanly (flushing what it wrote, the TLS shutdown) before it
        is aborted; C{>= 0}.
    """

    timeOut: float | None = None
    timeoutCloseGrace: float = 5.0
    _timeoutCall: IDelayedCall | None = None
    _timeoutLast: float = 0.0
    _timeoutSeconds: Callable[[], float] | None = None
    _timeoutGone: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hookMethod(cls, "connectionLost", _MARK, callsFirst("_timeoutLost"))

    def callLater(self, period: float, func: Callable[[], object]) -> IDelayedCall:
        """
        Schedule C{func} after C{period} seconds: the reactor's C{callLater}.
        Tests override this (for example with a
        L{task.Clock<twisted.internet.task.Clock>}'s), as with
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
        Called when the connection times out.  The default closes the
        connection (aborting it if it is still open L{timeoutCloseGrace}
        seconds later); override to do something else.
        """
        self._timeoutClose()

    def _timeoutClose(self) -> None:
        """
        Close the connection, and abort it if it is still open
        L{timeoutCloseGrace} seconds later: the one close-then-abort helper,
        timed by L{callLater}.
        """
        transport: Any = getattr(self, "transport", None)
        if transport is None or self._timeoutGone:
            return
        closeGracefully(
            self,
            transport,
            self.timeoutCloseGrace,
            cast(IReactorTime, _Scheduler(self.callLater)),
            "timeout",
        )

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
        self._timeoutDecide(recheck=False)

    def _timeoutRecheck(self) -> None:
        self._timeoutDecide(recheck=True)

    def _timeoutDecide(self, recheck: bool) -> None:
        """
        The timer fired: re-arm it for what is left, or time out.  A timer
        that fired late (the reactor stalled) decides only after the
        reactor has read what arrived meanwhile: Twisted runs due timers
        before it polls the sockets, so the bytes that prove activity may
        still sit unread in the kernel.  C{callLater(0)} runs after the
        next poll.
        """
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
        if not recheck and now - call.getTime() > LATE:
            self._timeoutCall = self.callLater(0, self._timeoutRecheck)
            return
        self.timeoutConnection()
        transport: Any = getattr(self, "transport", None)
        if getattr(transport, "disconnecting", False):
            # An override closed it: bound that close too.
            self._timeoutClose()

    def _timeoutCancel(self) -> None:
        call, self._timeoutCall = self._timeoutCall, None
        if call is not None and call.active():
            call.cancel()

    def _timeoutLost(self) -> None:
        """
        The connection is gone: no timer of this mixin outlives it.
        """
        self._timeoutGone = True
        self._timeoutCancel()
        closed(self)


class _Scheduler:
    """
    The part of L{IReactorTime} that L{closeGracefully} uses, on a
    protocol's L{TimeoutMixin.callLater} (which tests replace).
    """

    def __init__(self, callLater: Callable[..., IDelayedCall]) -> None:
        self.callLater = callLater
