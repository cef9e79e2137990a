"""
The answering side of ping/pong: a protocol mixin that answers C{ping} with
C{pong} after the health checks, and refuses clients that misbehave.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.logger import Logger
from zope.interface import implementer

from .._closing import closed, closeGracefully, peerText
from .._hooks import Method, callsFirst, fromFactory, hookMethod
from ._config import PingServerConfig
from ._health import HealthFailure, PingResponder
from ._lines import BINARY, MAX_TOKEN_LENGTH, isCommand, isToken, oneLine, words

__all__ = ["PingAnswerMixin"]


_SERVER_MARK = "_pingServerHooked"


def _hookServerLine(original: Method) -> Method:
    def lineReceived(self: PingAnswerMixin, line: bytes) -> Any:
        if isCommand(line, b"ping"):
            return self._pingServerPing(line)
        return original(self, line)

    return lineReceived


@implementer(IHalfCloseableProtocol)
class PingAnswerMixin:
    """
    Protocol mixin for a L{LineReceiver}: answer C{ping} / C{ping TOKEN}
    with C{pong} / C{pong TOKEN} once the health checks pass, or with one
    C{error unhealthy} line naming each failing check; refuse clients that
    misbehave, without hurting the others.

    Its factory needs a C{pingResponder} attribute (a L{PingResponder}),
    which holds the limits, the checks and the counters::

        class Service(PingAnswerMixin, LineReceiver):
            delimiter = b"\\n"

            def lineReceived(self, line):
                ...  # your own commands; ping lines never reach here

        factory = Factory.forProtocol(Service)
        factory.pingResponder = PingResponder(healthChecks=[
            HealthCheck("db", pool.ping, timeout=2)])

    Ping lines are taken before the class's C{lineReceived} sees them (the
    mixin hooks it per class).  The line limit is C{maxLineLength}: it
    replaces the class's C{MAX_LENGTH} on each connection.  The mixin's own
    C{lineReceived}, used when the class has none, ignores empty lines and
    C{pong}, closes on binary data and answers anything else with
    C{error unknown_command}.

    Closing for misbehaving sends one C{error CODE :TEXT} line, closes
    cleanly, aborts after C{closeGrace} seconds, logs the reason and sets
    L{pingCloseReason}: C{"too_many_pings"}, C{"line too long"},
    C{"binary data"} or C{"too many bad lines"}.

    When the peer closes its sending side (C{echo ping | nc -q 1 HOST
    PORT}, a load balancer's probe), the pings it sent are still answered,
    then the connection is closed.

    @ivar pingCloseReason: Why this mixin closed the connection, or L{None}.
    """

    delimiter = b"\n"
    MAX_LENGTH = 16384
    _pingLog = Logger()
    _pingServerResponder: PingResponder | None = None
    _pingServerOpen = False
    _pingLastPing: float | None = None
    _pingStrikes = 0
    _pingBadLines = 0
    _pingPending = 0
    _pingReadClosed = False
    pingCloseReason: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hookMethod(cls, "makeConnection", _SERVER_MARK, callsFirst("_pingServerStart"))
        hookMethod(cls, "lineReceived", _SERVER_MARK, _hookServerLine)
        hookMethod(cls, "connectionLost", _SERVER_MARK, callsFirst("_pingServerStop"))

    def pingResponder(self) -> PingResponder:
        """
        The shared state this connection answers with: by default the
        factory's C{pingResponder}.  Override to find it elsewhere.
        """
        return fromFactory(
            self,
            "pingResponder",
            PingResponder,
            "Set factory.pingResponder = heartbeat_twisted.PingResponder().",
        )

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
        rest: bytes = getattr(self, "_buffer", b"")
        if rest.strip() and self.pingCloseReason is None:
            # LineReceiver keeps an unterminated line in _buffer.
            self._buffer = b""
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
        limit = self._pingConfig().maxLineLength
        self.pingRefuse(
            "line too long", "line_too_long", f"lines are limited to {limit} bytes"
        )

    def pingBadLine(self, code: str, text: str) -> None:
        """
        Answer a malformed or unknown line with C{error CODE :TEXT}, or, if
        it is one more than C{maxBadLines}, refuse the connection.
        """
        self._pingBadLines += 1
        limit = self._pingConfig().maxBadLines
        if self._pingBadLines > limit:
            self.pingRefuse(
                "too many bad lines",
                "too_many_errors",
                f"more than {limit} bad lines; last: {text}",
            )
            return
        self._pingSend(f"error {code} :{oneLine(text)}")

    def pingRefuse(self, reason: str, code: str, text: str) -> None:
        """
        Send C{error CODE :TEXT}, close the connection (aborting it if it
        is still open C{closeGrace} seconds later), log and count C{reason}.
        """
        if self.pingCloseReason is not None:
            return
        self.pingCloseReason = reason
        transport: Any = getattr(self, "transport", None)
        responder = self._pingServerResponder or self.pingResponder()
        responder.refused[reason] += 1
        self._pingLog.warn(
            "closing {peer}: {reason} ({text})",
            peer=peerText(transport),
            reason=reason,
            text=text,
        )
        self._pingSend(f"error {code} :{oneLine(text)}")
        if transport is None:
            return
        closeGracefully(
            self, transport, responder.config.closeGrace, responder.clock, reason
        )

    def _pingConfig(self) -> PingServerConfig:
        responder = self._pingServerResponder or self.pingResponder()
        return responder.config

    def _pingSend(self, text: str) -> None:
        sendLine: Callable[[bytes], object] = getattr(self, "sendLine")  # noqa: B009
        sendLine(text.encode("ascii"))

    def _pingServerStart(self) -> None:
        responder = self._pingServerResponder = self.pingResponder()
        self._pingServerOpen = True
        # LineReceiver reads its limit from the instance.
        self.MAX_LENGTH = responder.config.maxLineLength

    def _pingServerStop(self) -> None:
        self._pingServerOpen = False
        closed(self)

    def _pingServerPing(self, line: bytes) -> None:
        if self.pingCloseReason is not None:
            return
        responder = self._pingServerResponder or self.pingResponder()
        parts = words(line)
        if len(parts) > 2 or (len(parts) == 2 and not isToken(parts[1])):
            self.pingBadLine(
                "bad_ping",
                f"expected 'ping' or 'ping TOKEN' (TOKEN: 1-{MAX_TOKEN_LENGTH} "
                f"of A-Z a-z 0-9 . _ ~ + / = -)",
            )
            return
        token = parts[1] if len(parts) == 2 else None
        config = responder.config
        now = responder.clock.seconds()
        last, self._pingLastPing = self._pingLastPing, now
        if last is not None and now - last < config.minPingInterval:
            self._pingStrikes += 1
            if self._pingStrikes > config.maxPingStrikes:
                self.pingRefuse(
                    "too_many_pings",
                    "too_many_pings",
                    f"pings must be at least {config.minPingInterval:g} s apart",
                )
                return
        else:
            self._pingStrikes = 0
        responder.pings += 1
        self._pingPending += 1
        responder.check().addCallback(self._pingAnswer, token)

    def _pingAnswer(
        self, failures: Sequence[HealthFailure], token: bytes | None
    ) -> None:
        self._pingPending -= 1
        if not self._pingServerOpen or self.pingCloseReason is not None:
            return
        responder = self._pingServerResponder
        assert responder is not None
        suffix = b"" if token is None else b" " + token
        sendLine: Callable[[bytes], object] = getattr(self, "sendLine")  # noqa: B009
        if not failures:
            responder.pongs += 1
            sendLine(b"pong" + suffix)
        else:
            self._pingUnhealthy(failures, suffix)
        if self._pingReadClosed and self._pingPending == 0:
            transport: Any = getattr(self, "transport", None)
            transport.loseConnection()

    def _pingUnhealthy(self, failures: Sequence[HealthFailure], suffix: bytes) -> None:
        responder = self._pingServerResponder
        assert responder is not None
        sendLine: Callable[[bytes], object] = getattr(self, "sendLine")  # noqa: B009
        responder.unhealthy += 1
        report = "; ".join(str(f) for f in failures)
        sendLine(b"error unhealthy" + suffix + b" :" + oneLine(report).encode("ascii"))
