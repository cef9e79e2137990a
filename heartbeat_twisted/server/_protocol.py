"""
The protocol and factory of the server behind C{twistd heartbeat}: the
seed's Swoole experiment, in Twisted, made fit for a public port.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any
from weakref import WeakKeyDictionary

from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    ISSLTransport,
)
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .._mixins import HeartbeatFactoryMixin, HeartbeatMixin
from .._time import resolveClock
from ..ping._answering import PingAnswerMixin
from ..ping._config import HealthCheck, PingServerConfig
from ..ping._counters import PingCounters
from ..ping._health import HealthCheckError
from ..ping._lines import isCommand
from ._framing import LineFraming
from ._limits import ConnectionGate, ConnectionLimits, addressKey
from ._logbudget import LogBudget, LogConfig, PayloadAllowance, shownPayload
from ._reasons import closeReason, peerName
from ._writeoptions import WriteSettings, installServerWritePath

__all__ = [
    "ACTIVITIES",
    "DemoFactory",
    "DemoProtocol",
    "ServerFactory",
    "ServerProtocol",
    "closeReason",
    "fileHealthCheck",
    "peerName",
]

#: The values of C{--activity}: what resets a connection's idle time.
ACTIVITIES = ("bytes", "lines", "pings")
_BYTES, _LINES, _PINGS = range(3)

#: The code on the error line a refused client is sent, by reason.
_REFUSAL_CODES = {
    "too many connections": "too_many_connections",
    "too many connections from this address": "too_many_connections",
    "connecting too fast": "connecting_too_fast",
}


_PLAIN_PINGS: WeakKeyDictionary[type, bool] = WeakKeyDictionary()


def _answersPlainPings(cls: type) -> bool:
    """
    Whether C{cls} answers a plain C{ping} line as L{ServerProtocol} does,
    so that its hot path may answer it with L{PingAnswerMixin.pingAnswerPlain}:
    a subclass that overrides how pings are read, judged or answered takes
    the general path.
    """
    known = _PLAIN_PINGS.get(cls)
    if known is None:
        known = _PLAIN_PINGS[cls] = bool(
            cls.delimiter == b"\n"  # type: ignore[attr-defined]
            and getattr(cls, "lineReceived") is ServerProtocol.lineReceived  # noqa: B009
            and getattr(cls, "pingReceived") is PingAnswerMixin.pingReceived  # noqa: B009
            and getattr(cls, "pingFraming") is PingAnswerMixin.pingFraming  # noqa: B009
            and getattr(cls, "sendLine") is LineFraming.sendLine  # noqa: B009
        )
    return known


@implementer(IHandshakeListener)
class ServerProtocol(HeartbeatMixin, PingAnswerMixin, LineFraming):
    """
    One client of C{twistd heartbeat}: logs C{Client: Connect N from PEER}
    and C{close fd N: REASON}; answers the line C{ping} (or C{ping TOKEN})
    with C{pong} (C{pong TOKEN}) once its factory's health checks pass, as
    L{PingAnswerMixin} does (which also refuses floods, over-long lines
    and binary data).  Lines end with C{\\n}; a C{\\r} before it is
    ignored, so C{nc} and telnet both work.

    Only what the factory's C{activity} counts resets the idle time:
    C{"pings"} (a chunk holding an accepted ping), C{"lines"} (any complete
    line) or C{"bytes"} (any chunk).  Blank lines and C{pong} lines are bad
    lines (answered with an error; too many close the connection), a line
    unfinished after C{lineTimeout} closes the connection, and so does a
    TLS handshake unfinished after C{tlsHandshakeTimeout}.

    The factory may refuse the connection (limits per address, rate of new
    connections): it is then told why in one C{error} line and closed,
    with one budgeted log line and no C{close} line.
    """

    delimiter = b"\n"
    heartbeatActivity = "manual"
    number = 0
    _log = Logger()
    _activity = _PINGS
    _admitted = False
    _key: str | None = None
    _handshake: IDelayedCall | None = None
    _lineTimeout = 5.0
    _plainPings = False

    def _serverFactory(self) -> ServerFactory:
        factory = self.factory
        assert isinstance(factory, ServerFactory)
        return factory

    def framingNow(self) -> float:
        seconds: float = self._clock.seconds()
        return seconds

    def heartbeatMayLog(self) -> bool:
        """
        Lines the library logs about closing this connection (a refusal
        for misbehaving, an abort after the close grace) share the
        factory's log budget with the connect and close lines.
        """
        factory: Any = self.factory
        return bool(factory.logBudget.allow())

    def connectionMade(self) -> None:
        factory = self._serverFactory()
        transport: Any = self.transport
        self._clock = clock = factory.clock
        self._counters = factory.pingCounters
        peer = transport.getPeer()
        self._key = key = addressKey(peer, factory.limits.limitLoopback)
        refused = factory.gate.admit(key, clock.seconds())
        if refused is not None:
            factory.logRefusal(peer, refused)
            code = _REFUSAL_CODES.get(refused, "refused")
            transport.write(f"error {code} :{refused}\n".encode("ascii"))
            transport.loseConnection()
            return
        self._admitted = True
        self._plainPings = _answersPlainPings(type(self))
        installServerWritePath(self)
        self._activity = factory.activityCode
        self._lineTimeout = factory.limits.lineTimeout
        self.number = factory.connected(self)
        if factory.logBudget.allow():
            self._log.info(
                "Client: Connect {fd} from {peer}", fd=self.number, peer=peerName(peer)
            )
        if ISSLTransport.providedBy(transport):
            self._handshake = clock.callLater(
                factory.limits.tlsHandshakeTimeout, self._handshakeTimedOut
            )

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake is done: stop its deadline.
        """
        call, self._handshake = self._handshake, None
        if call is not None and call.active():
            call.cancel()

    def _handshakeTimedOut(self) -> None:
        self._handshake = None
        self.pingCloseReason = "tls handshake timeout"
        transport: Any = self.transport
        transport.abortConnection()

    def dataReceived(self, data: bytes) -> Any:
        """
        Frame C{data} into lines; count it as activity as the factory's
        policy says; close a line that has taken too long.
        """
        if (data == b"ping\n" or data == b"ping\r\n") and self._plainPings:
            if self.partialSince is None:
                # The hot path: a chunk that is exactly one plain ping and
                # nothing buffered: what the framing, the ping hook and
                # pingReceived would do, in two calls (tests pin that
                # both paths behave alike).
                if self.pingAnswerPlain(b"pong\n") or self._activity == _BYTES:
                    self.heartbeatTouch()
                return None
        since = self.partialSince
        if since is not None and self._clock.seconds() - since > self._lineTimeout:
            return self._lineTimedOut()
        if self._activity == _BYTES:
            self.heartbeatTouch()
            return LineFraming.dataReceived(self, data)
        counters = self._counters
        before = counters.pings
        why = LineFraming.dataReceived(self, data)
        if counters.pings != before:
            self.heartbeatTouch()
        return why

    def _lineTimedOut(self) -> None:
        self.takePartialLine()
        timeout = self._lineTimeout
        self.pingRefuse(
            "line timeout", "line_timeout", f"a line must arrive within {timeout:g} s"
        )

    def lineReceived(self, line: bytes) -> None:
        """
        A line that is not a ping: blank and C{pong} lines are bad lines;
        the rest are handled by L{PingAnswerMixin.lineReceived}.
        """
        stripped = line.rstrip(b"\r")
        if not stripped.strip():
            self.pingBadLine("empty_line", "empty line; try: ping")
            return
        if isCommand(stripped, b"pong"):
            self.pingBadLine("unexpected_pong", "this server sends no pings; try: ping")
            return
        if self._activity == _LINES:
            self.heartbeatTouch()
        PingAnswerMixin.lineReceived(self, line)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.handshakeCompleted()
        if not self._admitted:
            return
        self._admitted = False
        factory = self._serverFactory()
        factory.gate.release(self._key)
        why = closeReason(self, reason)
        factory.disconnected(self, why)
        if factory.logBudget.allow():
            self._log.info(
                "close fd {fd}: {reason}",
                fd=self.number,
                reason=why,
                peer=peerName(self.transport.getPeer()) if self.transport else "?",
            )


class PayloadLoggingProtocol(ServerProtocol):
    """
    L{ServerProtocol} that also logs what it receives (C{--log-payloads}):
    at most L{PAYLOAD_LINES_PER_SECOND
    <heartbeat_twisted.server._logbudget.PAYLOAD_LINES_PER_SECOND>} lines a
    second per connection, each within the factory's log budget and
    showing at most 200 bytes.
    """

    _allowance: PayloadAllowance | None = None

    def dataReceived(self, data: bytes) -> Any:
        allowance = self._allowance
        if allowance is None:
            allowance = self._allowance = PayloadAllowance()
        factory = self._serverFactory()
        if allowance.allow(self._clock.seconds()) and factory.logBudget.allow():
            self._log.info(
                "receive fd {fd}: {payload!r} ({length} bytes)",
                fd=self.number,
                **shownPayload(data),
            )
        return ServerProtocol.dataReceived(self, data)


class ServerFactory(HeartbeatFactoryMixin, Factory):
    """
    Builds L{ServerProtocol}s, admits them under its L{ConnectionLimits}
    and counts them.

    @ivar opened: Connections admitted so far (the next C{fd} is this plus
        one).
    @ivar live: Connections open now.
    @ivar closed: Closed connections by reason.
    @ivar gate: Admits connections under the limits; counts refusals.
    @ivar pingServerConfig: Ping limits and health checks (the defaults if
        L{None}); the counters are C{pingCounters} once a client connected.
    @ivar limits: The L{ConnectionLimits}.
    @ivar writeSettings: Eager sends and the bound on unsent output.
    @ivar activity: What resets the idle time: one of L{ACTIVITIES}.
    @ivar logConfig: The L{LogConfig}.
    @ivar logBudget: The L{LogBudget} every connection event is logged in.
    """

    protocol = ServerProtocol
    noisy = False
    pingCounters: PingCounters
    writeSettings = WriteSettings()
    _log = Logger()

    def __init__(
        self,
        *args: Any,
        pingServerConfig: PingServerConfig | None = None,
        pingResponder: Any = None,
        limits: ConnectionLimits | None = None,
        activity: str = "pings",
        logConfig: LogConfig | None = None,
        backlog: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if activity not in ACTIVITIES:
            raise ValueError(
                f"'activity' must be one of {', '.join(ACTIVITIES)}: {activity!r}"
            )
        self.clock: Any = resolveClock(self.heartbeatClock)
        self.pingServerConfig = pingServerConfig
        # Replaced by the counters its connections share once one is made;
        # zero until then, for the metrics.
        self.pingCounters = PingCounters()
        if pingResponder is not None:
            # Deprecated: the answering mixin warns when it finds it.
            self.pingResponder = pingResponder
        self.limits = limits if limits is not None else ConnectionLimits()
        self.gate = ConnectionGate(self.limits)
        self.activity = activity
        self.activityCode = ACTIVITIES.index(activity)
        self.logConfig = logConfig if logConfig is not None else LogConfig()
        self.logBudget = LogBudget(self.logConfig.linesPerSecond, self.clock)
        if self.logConfig.logPayloads and self.protocol is ServerProtocol:
            self.protocol = PayloadLoggingProtocol
        self.backlog = backlog
        self.opened = 0
        self.live = 0
        self.closed: Counter[str] = Counter()

    def buildProtocol(self, addr: Any) -> Any:
        """
        A new protocol, or L{None} (Twisted then closes the socket at once)
        when C{maxConnections} are open.
        """
        if self.gate.full():
            self.logRefusal(addr, self.gate.refuse("too many connections"))
            return None
        return super().buildProtocol(addr)

    def logRefusal(self, peer: Any, reason: str) -> None:
        """
        Log one refused connection, within the log budget.
        """
        if self.logBudget.allow():
            self._log.warn(
                "refused {peer}: {reason}", peer=peerName(peer), reason=reason
            )

    def connected(self, protocol: ServerProtocol) -> int:
        """
        Count a new connection; return its number.
        """
        self.opened += 1
        self.live += 1
        return self.opened

    def disconnected(self, protocol: ServerProtocol, reason: str) -> None:
        """
        Count a closed connection under C{reason}.
        """
        self.live -= 1
        self.closed[reason] += 1

    def startFactory(self) -> None:
        """
        The first port is listening: log the effective settings in one
        line, and warn about a C{--user-timeout} that looks like seconds.
        """
        self._log.info("heartbeat server: {settings}", settings=self.settings())
        keepAlive = self.keepAliveConfig
        userTimeout = keepAlive.userTimeout if keepAlive is not None else None
        if userTimeout is not None and userTimeout < 1000:
            self._log.warn(
                "--user-timeout is in milliseconds: {value} ms is under a "
                "second (seconds given by mistake?)",
                value=userTimeout,
            )

    def settings(self) -> str:
        """
        The effective settings, as the startup line states them.
        """
        limits = self.limits
        config = self.pingServerConfig or PingServerConfig()
        heartbeat = self.heartbeatConfig
        keepAlive = self.keepAliveConfig
        parts = [
            f"idle={heartbeat.idle:g}s check-interval={heartbeat.checkInterval:g}s"
            if heartbeat is not None
            else "idle=off",
            f"activity={self.activity}",
            f"max-connections={limits.maxConnections or 'off'}",
            f"max-connections-per-ip={limits.maxConnectionsPerAddress or 'off'}"
            + ("" if limits.limitLoopback else " (not loopback)"),
            f"connection-rate={limits.connectionRate:g}/s"
            f" burst={limits.connectionBurst}"
            if limits.connectionRate
            else "connection-rate=off",
            f"backlog={self.backlog if self.backlog is not None else 'endpoint'}",
            f"line-timeout={limits.lineTimeout:g}s",
            f"tls-handshake-timeout={limits.tlsHandshakeTimeout:g}s",
            f"max-line-length={config.maxLineLength}",
            f"ping-rate={config.pingRate:g}/s burst={config.pingBurst}"
            if config.pingRate
            else "ping-rate=off",
            f"log-rate={self.logConfig.linesPerSecond}/s",
            f"log-payloads={'on' if self.logConfig.logPayloads else 'off'}",
            "keepalive=off"
            if keepAlive is None
            else f"keepalive={keepAlive.idle}/{keepAlive.interval}/{keepAlive.count}"
            + (
                f" user-timeout={keepAlive.userTimeout}ms"
                if keepAlive.userTimeout is not None
                else ""
            ),
        ]
        return " ".join(parts)

    def stopFactory(self) -> None:
        """
        The last port stopped: write the log budget's pending summary.
        """
        self.logBudget.stop()


#: The names before the server faced the internet; kept importable.
DemoProtocol = ServerProtocol
DemoFactory = ServerFactory


def fileHealthCheck(path: str) -> HealthCheck:
    """
    A health check named C{file} that passes while C{path} exists: the demo
    hook behind C{twistd heartbeat --health-check-file PATH}.  Create or
    remove the file to make the server answer C{pong} or
    C{error unhealthy ... :file: PATH does not exist}.
    """

    def check() -> None:
        if not os.path.exists(path):
            raise HealthCheckError(f"{path} does not exist")

    return HealthCheck("file", check, timeout=1.0)
