"""
The pinging side of ping/pong: a protocol mixin that sends C{ping} when the
connection is quiet, measures the round trip, and drops a peer that stops
answering.
"""

from __future__ import annotations

import enum
import random as _random
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from .._closing import peerText
from .._hooks import Method, callsFirst, fromFactory, hookMethod
from .._time import resolveClock
from .._writepath import observeWrites
from ._config import PingConfig
from ._lines import isCommand, oneLine, words

__all__ = ["PingState", "Pinger", "PingingMixin", "RoundTripStats"]


class PingState(enum.Enum):
    """
    Where a L{PingingMixin} stands.

      - C{IDLE}: not connected yet;
      - C{QUIET}: connected, waiting for C{interval} seconds of quiet;
      - C{AWAITING}: a ping was sent, its answer is due within C{timeout};
      - C{STOPPED}: pinging stopped by L{PingingMixin.stopPinging};
      - C{DEAD}: no answer in time, the connection is being dropped;
      - C{CLOSED}: the connection is gone.
    """

    IDLE = "idle"
    QUIET = "quiet"
    AWAITING = "awaiting pong"
    STOPPED = "stopped"
    DEAD = "dead"
    CLOSED = "closed"


class RoundTripStats:
    """
    Round-trip times of answered pings, in seconds.

    @ivar count: Samples so far.
    @ivar last: The latest sample, or L{None}.
    @ivar min: The smallest sample, or L{None}.
    @ivar smoothed: The smoothed round trip (RFC 6298's SRTT, gain 1/8),
        or L{None}.
    """

    GAIN = 0.125

    def __init__(self) -> None:
        self.count = 0
        self.last: float | None = None
        self.min: float | None = None
        self.smoothed: float | None = None

    def add(self, rtt: float) -> None:
        """
        Record one round trip of C{rtt} seconds.
        """
        self.count += 1
        self.last = rtt
        self.min = rtt if self.min is None else min(self.min, rtt)
        if self.smoothed is None:
            self.smoothed = rtt
        else:
            self.smoothed += self.GAIN * (rtt - self.smoothed)

    def __repr__(self) -> str:
        return (
            f"<RoundTripStats count={self.count} last={self.last} "
            f"min={self.min} smoothed={self.smoothed}>"
        )


class Pinger:
    """
    What the pinging connections of one factory share: the settings, the
    clock, the randomness for jitter, and the counters.

    @ivar config: Interval, timeout, jitter and what counts as quiet.
    @ivar clock: Time source and scheduler.
    @ivar random: Returns a float in C{[0, 1)}; tests pass C{lambda: 0}.
    @ivar sent: Pings sent.
    @ivar answered: Pings answered (C{pong} or C{error unhealthy}).
    @ivar unhealthy: Answers that reported failing health checks.
    @ivar dead: Peers declared dead.
    @ivar stats: Round trips of all connections together.
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
        self.clock = resolveClock(clock)
        self.random = random
        self.sent = 0
        self.answered = 0
        self.unhealthy = 0
        self.dead = 0
        self.stats = RoundTripStats()

    def nextDelay(self) -> float:
        """
        Seconds of quiet to wait before the next ping:
        C{interval * (1 - jitter * random())}.
        """
        config = self.config
        return config.interval * (1.0 - config.jitter * self.random())


_PINGING_MARK = "_pingingHooked"


def _hookPingingDataReceived(original: Method) -> Method:
    def dataReceived(self: PingingMixin, data: bytes) -> Any:
        if self._pingingState is not PingState.IDLE:
            self._pingingReceived = self._pingingSeconds()
        return original(self, data)

    return dataReceived


def _hookPingingLine(original: Method) -> Method:
    def lineReceived(self: PingingMixin, line: bytes) -> Any:
        if isCommand(line, b"pong"):
            return self._pingingAnswer(line[len(b"pong") :], None)
        if isCommand(line, b"error unhealthy"):
            head, _, report = line.rstrip(b"\r").partition(b" :")
            return self._pingingAnswer(head[len(b"error unhealthy") :], report)
        return original(self, line)

    return lineReceived


class PingingMixin:
    """
    Protocol mixin for a L{LineReceiver}: keep the connection tested with
    C{ping} lines, and drop it when the peer stops answering.

    When the connection has been quiet (see L{PingConfig.watch}) for
    C{interval} seconds (less a random jitter), it sends C{ping N}; the
    answer, C{pong N} (or plain C{pong}, or C{error unhealthy N :...}),
    must come within C{timeout} seconds.  Then the round trip is recorded
    in L{pingStats} and L{pingRoundTrip} is called; otherwise
    L{pingPeerDead} is, which logs and aborts the connection.  Answer lines
    are taken before the class's own C{lineReceived} sees them.

    Its factory needs a C{pinger} attribute (a L{Pinger}).  The same mixin
    serves a client keeping a path through a proxy open (C{watch="sent"})
    and a server probing clients that went quiet (C{watch="received"}).

    @ivar pingState: The L{PingState}.
    @ivar pingStats: This connection's round trips.
    @ivar pingCloseReason: C{"dead peer"} once the peer was declared dead,
        else L{None} (shared with L{PingAnswerMixin}).
    """

    _pingingLog = Logger()
    _pingingState = PingState.IDLE
    _pingingPinger: Pinger | None = None
    _pingingSeconds: Callable[[], float]
    _pingingSent = 0.0
    _pingingReceived = 0.0
    _pingingDelay = 0.0
    _pingingCall: IDelayedCall | None = None
    _pingingToken: bytes = b""
    _pingingSentAt = 0.0
    _pingingSequence = 0
    _pingingUnobserve: Callable[[], None] | None = None
    pingStats: RoundTripStats
    pingCloseReason: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hookMethod(
            cls, "makeConnection", _PINGING_MARK, callsFirst("_pingingStart", True)
        )
        hookMethod(cls, "dataReceived", _PINGING_MARK, _hookPingingDataReceived)
        hookMethod(cls, "lineReceived", _PINGING_MARK, _hookPingingLine)
        hookMethod(cls, "connectionLost", _PINGING_MARK, callsFirst("_pingingLost"))

    @property
    def pingState(self) -> PingState:
        """
        The current L{PingState}.
        """
        return self._pingingState

    def pinger(self) -> Pinger:
        """
        The shared settings this connection pings with: by default the
        factory's C{pinger}.  Override to find it elsewhere.
        """
        return fromFactory(
            self,
            "pinger",
            Pinger,
            "Set factory.pinger = "
            "heartbeat_twisted.Pinger(PingConfig(interval=..., timeout=...)).",
        )

    def pingRoundTrip(self, rtt: float) -> None:
        """
        A ping was answered after C{rtt} seconds.  Does nothing; override.
        """

    def pingUnhealthy(self, report: str) -> None:
        """
        A ping was answered with C{error unhealthy}: the peer is alive but
        some of its checks fail; C{report} is its text.  Logs; override.
        """
        self._pingingLog.info(
            "{peer} is unhealthy: {report}",
            peer=peerText(getattr(self, "transport", None)),
            report=report,
        )

    def pingPeerDead(self, waited: float) -> None:
        """
        No answer came C{waited} seconds after a ping: the peer or the path
        to it is dead or hung.  The default logs and aborts the connection
        (a clean close could wait forever for a hung peer).
        """
        transport: Any = getattr(self, "transport", None)
        self._pingingLog.warn(
            "{peer} is dead: no answer to ping within {timeout} s",
            peer=peerText(transport),
            timeout=waited,
            reason="dead peer",
        )
        if transport is None:
            return
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            transport.loseConnection()

    def stopPinging(self) -> None:
        """
        Send no more pings on this connection (a ping awaiting its answer is
        forgotten).
        """
        if self._pingingState in (PingState.QUIET, PingState.AWAITING):
            self._pingingCancel()
            self._pingingState = PingState.STOPPED

    def startPinging(self) -> None:
        """
        Resume pinging after L{stopPinging}; the quiet counts from now.
        """
        if self._pingingState is PingState.STOPPED:
            now = self._pingingSeconds()
            self._pingingSent = self._pingingReceived = now
            self._pingingQuiet()

    # The machine.

    def _pingingStart(self, transport: Any) -> None:
        if self._pingingState is not PingState.IDLE:
            return
        pinger = self._pingingPinger = self.pinger()
        self.pingStats = RoundTripStats()
        seconds = self._pingingSeconds = pinger.clock.seconds
        now = seconds()
        self._pingingSent = self._pingingReceived = now
        if pinger.config.watch != "received":
            self._pingingCountWrites(transport)
        self._pingingQuiet()

    def _pingingCountWrites(self, transport: Any) -> None:
        def sent() -> None:
            self._pingingSent = self._pingingSeconds()

        self._pingingUnobserve = observeWrites(transport, sent)
        if self._pingingUnobserve is None:
            self._pingingLog.warn(
                "cannot observe writes on {transport!r}: pings follow received "
                "data only",
                transport=transport,
            )

    def _pingingQuietSince(self) -> float:
        watch = self._pinger().config.watch
        if watch == "sent":
            return self._pingingSent
        if watch == "received":
            return self._pingingReceived
        return max(self._pingingSent, self._pingingReceived)

    def _pinger(self) -> Pinger:
        pinger = self._pingingPinger
        assert pinger is not None
        return pinger

    def _pingingQuiet(self) -> None:
        """
        Enter C{QUIET}: draw the next wait and arm the timer for it.
        """
        self._pingingState = PingState.QUIET
        self._pingingDelay = self._pinger().nextDelay()
        due = self._pingingQuietSince() + self._pingingDelay
        self._pingingArm(due - self._pingingSeconds())

    def _pingingArm(self, delay: float) -> None:
        self._pingingCancel()
        self._pingingCall = self._pinger().clock.callLater(
            max(0.0, delay), self._pingingFired
        )

    def _pingingCancel(self) -> None:
        call, self._pingingCall = self._pingingCall, None
        if call is not None and call.active():
            call.cancel()

    def _pingingFired(self) -> None:
        self._pingingCall = None
        state = self._pingingState
        if state is PingState.QUIET:
            now = self._pingingSeconds()
            due = self._pingingQuietSince() + self._pingingDelay
            if due - now > 1e-9:
                # Traffic since the timer was armed: re-arm for the rest.
                self._pingingArm(due - now)
            else:
                self._pingingSend(now)
        elif state is PingState.AWAITING:
            self._pingingState = PingState.DEAD
            if self.pingCloseReason is None:
                self.pingCloseReason = "dead peer"
            pinger = self._pinger()
            pinger.dead += 1
            self.pingPeerDead(pinger.config.timeout)

    def _pingingSend(self, now: float) -> None:
        pinger = self._pinger()
        self._pingingSequence += 1
        self._pingingToken = b"%d" % self._pingingSequence
        self._pingingSentAt = now
        self._pingingState = PingState.AWAITING
        self._pingingArm(pinger.config.timeout)
        pinger.sent += 1
        sendLine: Callable[[bytes], object] = getattr(self, "sendLine")  # noqa: B009
        sendLine(b"ping " + self._pingingToken)

    def _pingingAnswer(self, line: bytes, report: bytes | None) -> None:
        """
        What follows C{pong} on a C{pong [TOKEN]} line, or the C{[TOKEN]}
        of an C{error unhealthy [TOKEN] :REPORT} line with its C{report}.
        """
        parts = words(line)
        token = parts[0] if parts else None
        if self._pingingState is not PingState.AWAITING or (
            token is not None and token != self._pingingToken
        ):
            self._pingingLog.debug(
                "ignoring a stale or unasked-for answer {line!r}", line=line
            )
            return
        pinger = self._pinger()
        rtt = self._pingingSeconds() - self._pingingSentAt
        pinger.answered += 1
        self.pingStats.add(rtt)
        pinger.stats.add(rtt)
        self._pingingQuiet()
        if report is not None:
            pinger.unhealthy += 1
            self.pingUnhealthy(oneLine(report.decode("ascii", "replace")))
        self.pingRoundTrip(rtt)

    def _pingingLost(self) -> None:
        self._pingingStop(PingState.CLOSED)

    def _pingingStop(self, state: PingState) -> None:
        self._pingingCancel()
        self._pingingState = state
        unobserve, self._pingingUnobserve = self._pingingUnobserve, None
        if unobserve is not None:
            unobserve()
