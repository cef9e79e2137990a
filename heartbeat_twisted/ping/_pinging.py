"""
The pinging side of ping/pong: a protocol mixin that sends C{ping} when the
connection is quiet, measures the round trip, and drops a peer that stops
answering.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from .._closing import peerText
from .._hooks import Method, callsFirst, hookMethod
from .._writepath import observeWrites
from ._config import PingConfig
from ._counters import RoundTripStats
from ._finding import findPingConfig
from ._framing import PingFramed, isAMP, messageMethod
from ._lines import isCommand, oneLine, words
from ._shared import PingShared

__all__ = ["PingState", "PingingMixin"]


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


_PINGING_MARK = "_pingingHooked"


def _hookPingingDataReceived(original: Method) -> Method:
    def dataReceived(self: PingingMixin, data: bytes) -> Any:
        if self._pingingState is not PingState.IDLE:
            self._pingingReceived = self._pingingSeconds()
        return original(self, data)

    return dataReceived


def _hookPingingMessage(original: Method) -> Method:
    def messageReceived(self: PingingMixin, line: bytes) -> Any:
        if isCommand(line, b"pong"):
            parts = words(line)
            return self.pongReceived(parts[1] if len(parts) > 1 else None)
        if isCommand(line, b"error unhealthy"):
            head, _, report = line.rstrip(b"\r").partition(b" :")
            parts = head.split()
            return self.pongReceived(
                parts[2] if len(parts) > 2 else None,
                oneLine(report.decode("ascii", "replace")),
            )
        if isCommand(line, b"goaway"):
            head, _, reason = line.rstrip(b"\r").partition(b" :")
            parts = head.split()
            try:
                grace = float(parts[1]) if len(parts) > 1 else 0.0
            except ValueError:
                grace = 0.0
            return self.pingGoAwayReceived(
                oneLine(reason.decode("ascii", "replace")), grace
            )
        return original(self, line)

    return messageReceived


def _hookPingingCommands(original: Method) -> Method:
    def locateResponder(self: PingingMixin, name: bytes) -> Any:
        if name == b"GoAway":
            framing: Any = self.pingFraming()
            return framing.respondToGoAway
        return original(self, name)

    return locateResponder


class PingingMixin(PingFramed):
    """
    Protocol mixin: keep the connection tested with pings, and drop it
    when the peer stops answering.  Mix it into a
    L{LineReceiver<twisted.protocols.basic.LineReceiver>}, a
    string receiver or an L{AMP<twisted.protocols.amp.AMP>} protocol (see
    L{PingAnswerMixin}); another
    framing overrides C{pingFraming()} and calls L{pongReceived} and
    L{pingGoAwayReceived}.

    When the connection has been quiet (see L{PingConfig.watch}) for
    C{interval} seconds (less a random jitter), it sends C{ping N}; the
    answer, C{pong N} (or plain C{pong}, or C{error unhealthy N :...}),
    must come within C{timeout} seconds.  Then the round trip is recorded
    in L{pingStats} and L{pingRoundTrip} is called; otherwise
    L{pingPeerDead} is, which logs and aborts the connection.  Answer lines
    are taken before the class's own C{lineReceived} sees them.  Told to
    go (C{goaway}), it calls L{pingGoAwayReceived}.

    Its settings are a L{PingConfig}, found as the factory's C{pingConfig}
    or as the protocol's own (class) attribute; the clock is the factory's
    C{heartbeatClock} (else the reactor), the counters are
    C{factory.pingCounters}.  The same mixin serves a client keeping a
    path through a proxy open (C{watch="sent"}) and a server probing
    clients that went quiet (C{watch="received"}).

    @ivar pingState: The L{PingState}.
    @ivar pingStats: This connection's round trips.
    @ivar pingCloseReason: C{"dead peer"} once the peer was declared dead,
        else L{None} (shared with L{PingAnswerMixin}).
    """

    _pingingLog = Logger()
    _pingingState = PingState.IDLE
    _pingingConfig: PingConfig
    _pingingShared: PingShared
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
        if isAMP(cls):
            hookMethod(cls, "locateResponder", _PINGING_MARK, _hookPingingCommands)
        else:
            hookMethod(cls, messageMethod(cls), _PINGING_MARK, _hookPingingMessage)
        hookMethod(cls, "connectionLost", _PINGING_MARK, callsFirst("_pingingLost"))

    @property
    def pingState(self) -> PingState:
        """
        The current L{PingState}.
        """
        return self._pingingState

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

    def pingGoAwayReceived(self, reason: str, grace: float) -> None:
        """
        The peer told this connection to go (it is shutting down, or the
        connection is old): it will close the connection C{grace} seconds
        from now.  The default logs, stops pinging and closes the
        connection cleanly; override to reconnect elsewhere first.
        """
        self._pingingShared.counters.goAwaysReceived += 1
        transport: Any = getattr(self, "transport", None)
        self._pingingLog.info(
            "{peer} tells us to go within {grace} s: {reason}",
            peer=peerText(transport),
            grace=grace,
            reason=reason,
        )
        self.stopPinging()
        if transport is not None:
            transport.loseConnection()

    def pongReceived(self, token: bytes | None, report: str | None = None) -> None:
        """
        The framing decoded an answer to a ping: C{pong} (with the ping's
        C{token}, or none), or, with C{report}, C{error unhealthy}.  An
        answer nobody waits for is ignored.
        """
        if self._pingingState is not PingState.AWAITING or (
            token is not None and token != self._pingingToken
        ):
            self._pingingLog.debug(
                "ignoring a stale or unasked-for answer {token!r}", token=token
            )
            return
        shared = self._pingingShared
        counters = shared.counters
        rtt = self._pingingSeconds() - self._pingingSentAt
        counters.answers += 1
        self.pingStats.add(rtt)
        counters.roundTrips.add(rtt)
        self._pingingQuiet()
        if report is not None:
            counters.unhealthyAnswers += 1
            self.pingUnhealthy(report)
        self.pingRoundTrip(rtt)

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
        config, shared = findPingConfig(self)
        self._pingingConfig = config
        self._pingingShared = shared
        self.pingStats = RoundTripStats()
        seconds = self._pingingSeconds = shared.clock.seconds
        now = seconds()
        self._pingingSent = self._pingingReceived = now
        if config.watch != "received":
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
        watch = self._pingingConfig.watch
        if watch == "sent":
            return self._pingingSent
        if watch == "received":
            return self._pingingReceived
        return max(self._pingingSent, self._pingingReceived)

    def _pingingQuiet(self) -> None:
        """
        Enter C{QUIET}: draw the next wait and arm the timer for it.
        """
        self._pingingState = PingState.QUIET
        config = self._pingingConfig
        random = self._pingingShared.random
        self._pingingDelay = config.interval * (1.0 - config.jitter * random())
        due = self._pingingQuietSince() + self._pingingDelay
        self._pingingArm(due - self._pingingSeconds())

    def _pingingArm(self, delay: float) -> None:
        self._pingingCancel()
        self._pingingCall = self._pingingShared.clock.callLater(
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
            self._pingingShared.counters.deadPeers += 1
            self.pingPeerDead(self._pingingConfig.timeout)

    def _pingingSend(self, now: float) -> None:
        self._pingingSequence += 1
        self._pingingToken = b"%d" % self._pingingSequence
        self._pingingSentAt = now
        self._pingingState = PingState.AWAITING
        self._pingingArm(self._pingingConfig.timeout)
        self._pingingShared.counters.pingsSent += 1
        self.pingFraming().sendPing(self._pingingToken)

    def _pingingLost(self) -> None:
        self._pingingStop(PingState.CLOSED)

    def _pingingStop(self, state: PingState) -> None:
        self._pingingCancel()
        self._pingingState = state
        unobserve, self._pingingUnobserve = self._pingingUnobserve, None
        if unobserve is not None:
            unobserve()
