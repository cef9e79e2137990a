"""
The answering side of ping/pong: a protocol mixin that answers C{ping} with
C{pong} after the health checks, refuses clients that misbehave, and can
tell a client to go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IHalfCloseableProtocol
from twisted.logger import Logger
from zope.interface import implementer

from .._closing import closed, closeGracefully, mayLog, peerText
from .._hooks import Method, callsFirst, hookMethod
from ._config import PingServerConfig
from ._finding import findServerConfig
from ._framing import PingFramed, isAMP, messageMethod
from ._health import HealthFailure
from ._legacy import PingResponder
from ._lines import BINARY, MAX_TOKEN_LENGTH, isCommand, isToken, words
from ._shared import PingShared, StallWatch

__all__ = ["PingAnswerMixin"]


_SERVER_MARK = "_pingServerHooked"


def _hookServerMessage(original: Method) -> Method:
    def messageReceived(self: PingAnswerMixin, line: bytes) -> Any:
        if isCommand(line, b"ping"):
            parts = words(line)
            if len(parts) > 2 or (len(parts) == 2 and not isToken(parts[1])):
                return self.pingBadLine(
                    "bad_ping",
                    f"expected 'ping' or 'ping TOKEN' (TOKEN: 1-{MAX_TOKEN_LENGTH} "
                    f"of A-Z a-z 0-9 . _ ~ + / = -)",
                )
            return self.pingReceived(parts[1] if len(parts) == 2 else None)
        return original(self, line)

    return messageReceived


def _hookServerCommands(original: Method) -> Method:
    def locateResponder(self: PingAnswerMixin, name: bytes) -> Any:
        if name == b"Ping":
            framing: Any = self.pingFraming()
            return framing.respondToPing
        return original(self, name)

    return locateResponder


@implementer(IHalfCloseableProtocol)
class PingAnswerMixin(PingFramed):
    """
    Protocol mixin: answer C{ping} / C{ping TOKEN} with C{pong} /
    C{pong TOKEN} once the health checks pass, or with one
    C{error unhealthy} line naming each failing check; refuse clients that
    misbehave, without hurting the others; tell a client to go
    (L{pingGoAway}).

    Mix it into a L{LineReceiver<twisted.protocols.basic.LineReceiver>}, a string
    receiver (L{Int32StringReceiver<twisted.protocols.basic.Int32StringReceiver>}
    and kin: one message per string) or an L{AMP<twisted.protocols.amp.AMP>} protocol
    (it answers the
    C{Ping} command of L{heartbeat_twisted.ping.amp}); another framing
    overrides C{pingFraming()} and calls L{pingReceived}.

    Its settings are a L{PingServerConfig}, found as the factory's
    C{pingServerConfig}, else as the protocol's own (class) attribute, else
    the defaults; the factory's connections share the health-check runs,
    the clock (the factory's C{heartbeatClock}, else the reactor) and the
    counters (C{factory.pingCounters}, a L{PingCounters})::

        class Service(PingAnswerMixin, LineReceiver):
            def lineReceived(self, line):
                ...  # your own commands; ping lines never reach here

        factory = Factory.forProtocol(Service)
        factory.pingServerConfig = PingServerConfig(
            healthChecks=[HealthCheck("db", pool.ping, timeout=2)])

    Ping messages are taken before the class's C{lineReceived} (or
    C{stringReceived}) sees them: the mixin hooks it per class.  The line
    limit is C{maxLineLength}: it replaces the class's C{MAX_LENGTH} on
    each connection.  The mixin's own C{lineReceived}, used when the class
    has none, ignores empty lines and C{pong}, closes on binary data and
    answers anything else with C{error unknown_command}.

    Closing for misbehaving sends one C{error CODE :TEXT} line, closes
    cleanly, aborts after C{closeGrace} seconds, logs the reason and sets
    L{pingCloseReason}: C{"too_many_pings"}, C{"line too long"},
    C{"binary data"} or C{"too many bad lines"}.

    When the peer closes its sending side (C{echo ping | nc -q 1 HOST
    PORT}, a load balancer's probe), the pings it sent are still answered,
    then the connection is closed.

    @ivar pingCloseReason: Why this mixin closed (or is closing) the
        connection, or L{None}.
    """

    delimiter = b"\n"
    MAX_LENGTH = 16384
    _pingLog = Logger()
    _pingServerConfig: PingServerConfig
    _pingServerShared: PingShared
    _pingServerOpen = False
    _pingWatching = False
    _pingTokens = 0.0
    _pingRefilledAt = 0.0
    _pingRefused = False
    _pingBadLines = 0
    _pingPending = 0
    _pingReadClosed = False
    _pingGoAwayCall: IDelayedCall | None = None
    _pingLegacy: Any = None
    pingCloseReason: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hookMethod(cls, "makeConnection", _SERVER_MARK, callsFirst("_pingServerStart"))
        if isAMP(cls):
            hookMethod(cls, "locateResponder", _SERVER_MARK, _hookServerCommands)
        else:
            hookMethod(cls, messageMethod(cls), _SERVER_MARK, _hookServerMessage)
        hookMethod(cls, "connectionLost", _SERVER_MARK, callsFirst("_pingServerStop"))

    def lineReceived(self, line: bytes) -> None:
        """
        A line that is not a ping, for a class with no C{lineReceived} of
        its own: see the class docstring.
        """
        stripped = line.rstrip(b"\r")
        if not stripped.strip() or isCommand(stripped, b"pong"):
            return
        if BINARY.search(stripped):
            self.pingRefuse(
                "binary data",
                "binary_data",
                "lines must be printable ASCII text ending in LF or CRLF",
            )
            return
        word = stripped.split()[0][:32].decode("ascii")
        self.pingBadLine("unknown_command", f"unknown command {word!r}; try: ping")

    def readConnectionLost(self) -> None:
        """
        The peer will send nothing more: answer the pings it sent (a last
        line without its line end included), then close.
        """
        self._pingReadClosed = True
        # The framing's public way to take an unterminated last line:
        # LineReceiver's clearLineBuffer, or the server's own framing's.
        take: Callable[[], bytes] | None = getattr(
            self, "clearLineBuffer", None
        ) or getattr(self, "takePartialLine", None)
        rest = take() if take is not None else b""
        if rest.strip() and not self._pingRefused:
            lineReceived: Callable[[bytes], object] = getattr(self, "lineReceived")  # noqa: B009
            lineReceived(rest)
        if self._pingPending == 0:
            transport: Any = getattr(self, "transport", None)
            if transport is not None:
                transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """
        The peer will read nothing more: nothing to do.
        """

    def lineLengthExceeded(self, line: bytes) -> None:
        """
        A line longer than C{maxLineLength}: refuse the connection.
        """
        limit = self._pingServerConfig.maxLineLength
        self.pingRefuse(
            "line too long", "line_too_long", f"lines are limited to {limit} bytes"
        )

    def pingBadLine(self, code: str, text: str) -> None:
        """
        Answer a malformed or unknown line with C{error CODE :TEXT}, or, if
        it is one more than C{maxBadLines}, refuse the connection.
        """
        self._pingBadLines += 1
        limit = self._pingServerConfig.maxBadLines
        if self._pingBadLines > limit:
            self.pingRefuse(
                "too many bad lines",
                "too_many_errors",
                f"more than {limit} bad lines; last: {text}",
            )
            return
        self.pingFraming().sendError(code, text)

    def pingRefuse(self, reason: str, code: str, text: str) -> None:
        """
        Send C{error CODE :TEXT}, close the connection (aborting it if it
        is still open C{closeGrace} seconds later), log and count C{reason}.
        """
        if self._pingRefused:
            return
        self._pingRefused = True
        self.pingCloseReason = reason
        transport: Any = getattr(self, "transport", None)
        shared = self._pingServerShared
        shared.counters.refused[reason] += 1
        if mayLog(self):
            self._pingLog.warn(
                "closing {peer}: {reason} ({text})",
                peer=peerText(transport),
                reason=reason,
                text=text,
            )
        self.pingFraming().sendError(code, text)
        if transport is None:
            return
        closeGracefully(
            self, transport, self._pingServerConfig.closeGrace, shared.clock, reason
        )

    def pingGoAway(self, reason: str, grace: float = 5.0) -> bool:
        """
        Tell the peer to go: send C{goaway GRACE :REASON} (HTTP/2's GOAWAY;
        the bundled client reconnects within a second), keep answering its
        pings, and close the connection C{grace} seconds later if the peer
        has not (cleanly, then by abort after C{closeGrace}).  Sets
        L{pingCloseReason} to C{reason}, so the close is logged with it.

        @param reason: Why, in a few words (C{"shutdown"}, C{"max age"}).
        @param grace: Seconds the peer has to leave; C{>= 0}.
        @return: C{False} if the connection is already closing.
        """
        if self.pingCloseReason is not None or not self._pingServerOpen:
            return False
        if grace < 0:
            raise ValueError(f"'grace' must be >= 0: {grace!r}")
        self.pingCloseReason = reason
        shared = self._pingServerShared
        shared.counters.goAways += 1
        transport: Any = getattr(self, "transport", None)
        self._pingLog.info(
            "telling {peer} to go within {grace} s: {reason}",
            peer=peerText(transport),
            grace=grace,
            reason=reason,
        )
        self.pingFraming().sendGoAway(grace, reason)
        if transport is not None:
            self._pingGoAwayCall = shared.clock.callLater(
                grace,
                closeGracefully,
                self,
                transport,
                self._pingServerConfig.closeGrace,
                shared.clock,
                reason,
            )
        return True

    def pingUseConfig(self, config: PingServerConfig) -> None:
        """
        Judge and answer this connection's pings with C{config} from now
        on: for a server that changes its settings at run time (its drain
        adds a failing health check to every open connection).  The token
        bucket keeps what it holds.
        """
        if not isinstance(config, PingServerConfig):
            raise TypeError(f"config must be a PingServerConfig: {config!r}")
        self._pingServerConfig = config
        self.MAX_LENGTH = config.maxLineLength
        if not self._pingServerOpen:
            return
        if config.pingRate and not self._pingWatching:
            self._pingServerShared.stalls().start()
            self._pingWatching = True
        elif not config.pingRate and self._pingWatching:
            self._pingServerShared.stalls().stop()
            self._pingWatching = False

    def pingReceived(self, token: bytes | None) -> None:
        """
        The framing decoded a ping (with C{token}, if it carried one):
        judge the rate, run the health checks, answer.
        """
        if self._pingRefused or not self._pingServerOpen:
            return
        legacy = self._pingLegacy
        if legacy is not None:
            # The 0.1 responder's checks may be replaced at run time.
            self._pingServerConfig = legacy.config
        config = self._pingServerConfig
        shared = self._pingServerShared
        if config.pingRate and not self._pingTakeToken(config, shared):
            self._pingFlooded(config)
            return
        counters = shared.counters
        counters.pings += 1
        if not config.healthChecks:
            counters.pongs += 1
            self.pingFraming().sendPong(token)
            return
        verdict = shared.health(config).check()
        if isinstance(verdict, Deferred):
            self._pingPending += 1
            verdict.addCallback(self._pingAnswerLater, token)
        else:
            self._pingAnswer(verdict, token)

    def pingAnswerPlain(self, pong: bytes) -> bool:
        """
        For a framing that recognised a whole message as a plain C{ping}
        (no token) and writes replies itself: judge, count and answer it
        exactly as C{pingReceived(None)} would, writing C{pong} (the
        framed C{pong} message, C{b"pong\\n"} for lines) to the transport
        for a healthy answer, in one call instead of the framing's several.

        Use it only where C{pingReceived}, C{pingFraming} and the framing's
        own send are the mixin's and the framing's: otherwise call
        C{pingReceived(None)}.

        @return: Whether the ping was accepted (counted in C{pings}),
            as activity policies that count pings need to know.
        """
        if self._pingRefused or not self._pingServerOpen:
            return False
        legacy = self._pingLegacy
        if legacy is not None:
            self._pingServerConfig = legacy.config
        config = self._pingServerConfig
        shared = self._pingServerShared
        if config.pingRate and not self._pingTakeToken(config, shared):
            self._pingFlooded(config)
            return False
        counters = shared.counters
        counters.pings += 1
        if config.healthChecks:
            verdict = shared.health(config).check()
            if isinstance(verdict, Deferred):
                self._pingPending += 1
                verdict.addCallback(self._pingAnswerLater, None)
                return True
            if verdict:
                self._pingAnswer(verdict, None)
                return True
        counters.pongs += 1
        transport: Any = getattr(self, "transport", None)
        transport.write(pong)
        return True

    def _pingFlooded(self, config: PingServerConfig) -> None:
        self.pingRefuse(
            "too_many_pings",
            "too_many_pings",
            f"at most {config.pingBurst} pings at once and "
            f"{config.pingRate:g} a second",
        )

    def _pingTakeToken(self, config: PingServerConfig, shared: PingShared) -> bool:
        now = shared.clock.seconds()
        since = self._pingRefilledAt
        tokens = self._pingTokens
        if now > since:
            burst = config.pingBurst
            cap = float(burst)
            end, length = shared.stalls().lastStall(now)
            if since < end:
                # The pings sent during a stall of ours arrive together:
                # its length refills the bucket beyond the burst.
                cap += length * config.pingRate
                if tokens + (now - since) * config.pingRate > burst:
                    shared.counters.stallsForgiven += 1
            elif tokens > cap and now <= end + StallWatch.PERIOD:
                # Still reading what arrived during the stall.
                cap = tokens
            tokens = min(tokens + (now - since) * config.pingRate, cap)
            self._pingRefilledAt = now
        if tokens < 1:
            self._pingTokens = tokens
            return False
        self._pingTokens = tokens - 1
        return True

    def _pingServerStart(self) -> None:
        config, shared = findServerConfig(self)
        factory = getattr(self, "factory", None)
        responder = getattr(factory, "pingResponder", None)
        if isinstance(responder, PingResponder) and config is responder.config:
            self._pingLegacy = responder
        self._pingServerConfig = config
        self._pingServerShared = shared
        self._pingServerOpen = True
        self._pingTokens = float(config.pingBurst)
        self._pingRefilledAt = shared.clock.seconds()
        if config.pingRate:
            shared.stalls().start()
            self._pingWatching = True
        # LineReceiver and the string receivers read their limit from the
        # instance.
        self.MAX_LENGTH = config.maxLineLength

    def _pingServerStop(self) -> None:
        self._pingServerOpen = False
        if self._pingWatching:
            self._pingWatching = False
            self._pingServerShared.stalls().stop()
        call, self._pingGoAwayCall = self._pingGoAwayCall, None
        if call is not None and call.active():
            call.cancel()
        closed(self)

    def _pingAnswerLater(
        self, failures: Sequence[HealthFailure], token: bytes | None
    ) -> None:
        self._pingPending -= 1
        if not self._pingServerOpen or self._pingRefused:
            return
        self._pingAnswer(failures, token)
        if self._pingReadClosed and self._pingPending == 0:
            transport: Any = getattr(self, "transport", None)
            transport.loseConnection()

    def _pingAnswer(
        self, failures: Sequence[HealthFailure], token: bytes | None
    ) -> None:
        counters = self._pingServerShared.counters
        if not failures:
            counters.pongs += 1
            self.pingFraming().sendPong(token)
        else:
            counters.unhealthy += 1
            self.pingFraming().sendUnhealthy(token, "; ".join(str(f) for f in failures))
