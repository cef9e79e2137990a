"""
The application heartbeat: C{ping}/C{pong} lines, both sides.

  - L{PingServerProtocol} answers C{ping} with C{pong} once the health
    checks of its factory's L{PingResponder} pass, and refuses ping floods,
    over-long lines, binary data and runs of bad lines;
  - L{PingingProtocol} sends C{ping} when the connection has been quiet for
    C{interval} seconds, measures the round trip, and declares the peer dead
    when no answer comes within C{timeout};
  - L{PingClientProtocol} / L{PingClientFactory} / L{pingClientService}: a
    ready client that reconnects with backoff through L{ClientService}.

The wire format is described in C{docs/pingpong.rst}.
"""

from __future__ import annotations

import enum
import inspect
import random as _random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from ._config import PingConfig, PingServerConfig, _positive
from ._hooks import Method, callsFirst, fromFactory, hookMethod, observeWrites

__all__ = [
    "MAX_TOKEN_LENGTH",
    "HealthCheck",
    "HealthCheckError",
    "HealthFailure",
    "PingBackoff",
    "PingClientFactory",
    "PingClientProtocol",
    "PingEvents",
    "PingResponder",
    "PingServerProtocol",
    "PingState",
    "Pinger",
    "PingingProtocol",
    "RoundTripStats",
    "isToken",
    "pingClientService",
]

MAX_TOKEN_LENGTH = 64
"""The longest token a C{ping} may carry, in bytes."""

_TOKEN = re.compile(rb"[A-Za-z0-9._~+/=-]{1,%d}" % MAX_TOKEN_LENGTH)
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Printable ASCII and tab: anything else in a line is binary data.
_BINARY = re.compile(rb"[^\t\x20-\x7e]")
_REASON_LENGTH = 200


def isToken(value: bytes) -> bool:
    """
    Whether C{value} is a valid ping token: 1 to L{MAX_TOKEN_LENGTH} bytes
    of C{A-Z a-z 0-9 . _ ~ + / = -} (so URL-safe and standard base64 fit).
    """
    return _TOKEN.fullmatch(value) is not None


def _command(line: bytes, word: bytes) -> bool:
    """
    Whether C{line} starts with the command C{word} (followed by nothing,
    whitespace or C{\\r}).
    """
    return line.startswith(word) and line[len(word) : len(word) + 1] in (
        b"",
        b" ",
        b"\t",
        b"\r",
    )


def _words(line: bytes) -> list[bytes]:
    return line.rstrip(b"\r").split()


def _oneLine(text: str) -> str:
    """
    C{text} made safe for one reply line: printable ASCII, bounded length.
    """
    cleaned = "".join(c if " " <= c <= "~" else " " for c in text).strip()
    if len(cleaned) > _REASON_LENGTH:
        cleaned = cleaned[: _REASON_LENGTH - 3] + "..."
    return cleaned


def _describe(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, HealthCheckError):
        return _oneLine(text or "failed")
    name = type(error).__name__
    return _oneLine(f"{name}: {text}" if text else name)


def _peer(transport: Any) -> str:
    getPeer = getattr(transport, "getPeer", None)
    try:
        return str(getPeer()) if getPeer is not None else "?"
    except Exception:
        return "?"


def _reactor(clock: IReactorTime | None) -> IReactorTime:
    if clock is None:
        from twisted.internet import reactor

        clock = reactor
    assert clock is not None
    return clock


# --- the answering side ---------------------------------------------------


class HealthCheckError(Exception):
    """
    Raise (or fail with) this from a health check to say why it failed in
    your own words: the reply line carries the message alone, without the
    exception's type.
    """


@attrs.frozen(init=False)
class HealthCheck:
    """
    One dependency the server checks before it answers C{pong}.

    The check is called with no arguments.  It passes when it returns (or
    its L{Deferred} or coroutine ends with) anything but C{False}; it fails
    when it raises, fails, returns C{False}, or takes longer than
    C{timeout} seconds (its L{Deferred} is then cancelled).

    @ivar name: Names the check in the reply line: 1-64 of
        C{A-Z a-z 0-9 . _ -}.
    @ivar check: The callable.
    @ivar timeout: Seconds the check may take; C{> 0}.
    """

    name: str
    check: Callable[[], object]
    timeout: float

    def __init__(
        self, name: str, check: Callable[[], object], timeout: float = 5.0
    ) -> None:
        if not isinstance(name, str) or _NAME.fullmatch(name) is None:
            raise ValueError(
                f"'name' must be 1-64 of A-Z a-z 0-9 . _ - (it is put on the "
                f"reply line): {name!r}"
            )
        if not callable(check):
            raise ValueError(f"'check' must be callable: {check!r}")
        self.__attrs_init__(name, check, _positive("timeout", timeout))


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


class PingResponder:
    """
    What the answering connections of one factory share: the limits, the
    health checks, the clock and the counters.

    Health checks are coalesced: pings that arrive while a run of the checks
    is in progress wait for that run instead of starting another, so a
    thousand clients pinging at once cost the dependencies one run; with
    C{maxAge} a finished run is also reused for that many seconds.

    @ivar config: The limits.
    @ivar healthChecks: The checks, run together before each C{pong}.
    @ivar clock: Time source and scheduler (check timeouts, close grace).
    @ivar maxAge: Seconds a finished run of the checks is reused; C{>= 0}.
    @ivar pings: Pings accepted (answered or to be answered).
    @ivar pongs: C{pong} lines sent.
    @ivar unhealthy: C{error unhealthy} lines sent.
    @ivar runs: Runs of the health checks started.
    @ivar refused: Connections closed for misbehaving, by reason.
    """

    _log = Logger()

    def __init__(
        self,
        config: PingServerConfig | None = None,
        healthChecks: Iterable[HealthCheck] = (),
        clock: IReactorTime | None = None,
        maxAge: float = 0.0,
    ) -> None:
        """
        @param config: The limits; L{PingServerConfig}C{()} if L{None}.
        @param healthChecks: The checks (a sequence of L{HealthCheck}).
        @param clock: The global reactor if L{None}.
        @param maxAge: Seconds a finished run of the checks is reused.
        """
        checks = tuple(healthChecks)
        for check in checks:
            if not isinstance(check, HealthCheck):
                raise ValueError(f"'healthChecks' must hold HealthChecks: {check!r}")
        names = [c.name for c in checks]
        if len(set(names)) != len(names):
            raise ValueError(f"'healthChecks' names must be unique: {names!r}")
        age = 0.0 if maxAge == 0 else _positive("maxAge", maxAge)
        self.config = config if config is not None else PingServerConfig()
        self.healthChecks: tuple[HealthCheck, ...] = checks
        self.clock = _reactor(clock)
        self.maxAge = age
        self.pings = 0
        self.pongs = 0
        self.unhealthy = 0
        self.runs = 0
        self.refused: Counter[str] = Counter()
        self._waiters: list[Deferred[list[HealthFailure]]] | None = None
        self._last: tuple[float, list[HealthFailure]] | None = None
        self._failing: set[str] = set()

    def check(self) -> Deferred[list[HealthFailure]]:
        """
        Run the health checks (or join the run in progress, or reuse one
        younger than C{maxAge}).

        @return: A L{Deferred} that fires with the failures, an empty list
            when all pass; it never fails.  With no checks, or when every
            check answers synchronously, it has already fired.
        """
        if not self.healthChecks:
            return succeed([])
        if self._last is not None and self.maxAge:
            at, failures = self._last
            if self.clock.seconds() - at <= self.maxAge:
                return succeed(list(failures))
        waiter: Deferred[list[HealthFailure]] = Deferred()
        if self._waiters is not None:
            self._waiters.append(waiter)
            return waiter
        self._waiters = [waiter]
        self.runs += 1
        runs = [self._runOne(check) for check in self.healthChecks]
        defer.gatherResults(runs).addCallback(self._finished)
        return waiter

    def _finished(self, results: list[HealthFailure | None]) -> None:
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
            waiter.callback(list(failures))

    def _runOne(self, check: HealthCheck) -> Deferred[HealthFailure | None]:
        def verdict(result: object) -> HealthFailure | None:
            if result is False:
                return HealthFailure(check.name, "returned False")
            return None

        def failed(failure: Failure) -> HealthFailure:
            if isinstance(failure.value, defer.TimeoutError | defer.CancelledError):
                return HealthFailure(check.name, f"timed out after {check.timeout:g} s")
            assert failure.value is not None
            return HealthFailure(check.name, _describe(failure.value))

        function: Callable[[], object] = check.check
        try:
            result = function()
        except Exception as e:
            return succeed(HealthFailure(check.name, _describe(e)))
        if inspect.iscoroutine(result):
            result = Deferred.fromCoroutine(result)
        if isinstance(result, Deferred):
            running: Deferred[Any] = result
            running.addTimeout(check.timeout, self.clock)
            return running.addCallbacks(verdict, failed)
        return succeed(verdict(result))


_SERVER_MARK = "_pingServerHooked"


def _hookServerLine(original: Method) -> Method:
    def lineReceived(self: PingServerProtocol, line: bytes) -> Any:
        if _command(line, b"ping"):
            return self._pingServerPing(line)
        return original(self, line)

    return lineReceived


@implementer(IHalfCloseableProtocol)
class PingServerProtocol:
    """
    Protocol mixin for a L{LineReceiver}: answer C{ping} / C{ping TOKEN}
    with C{pong} / C{pong TOKEN} once the health checks pass, or with one
    C{error unhealthy} line naming each failing check; refuse clients that
    misbehave, without hurting the others.

    Its factory needs a C{pingResponder} attribute (a L{PingResponder}),
    which holds the limits, the checks and the counters::

        class Service(PingServerProtocol, LineReceiver):
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
    _pingAbortCall: IDelayedCall | None = None
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
        if not stripped.strip() or _command(stripped, b"pong"):
            return
        if _BINARY.search(stripped):
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
        self._pingSend(f"error {code} :{_oneLine(text)}")

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
            peer=_peer(transport),
            reason=reason,
            text=text,
        )
        self._pingSend(f"error {code} :{_oneLine(text)}")
        if transport is None:
            return
        transport.loseConnection()
        if getattr(transport, "abortConnection", None) is not None:
            self._pingAbortCall = responder.clock.callLater(
                responder.config.closeGrace, transport.abortConnection
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
        call, self._pingAbortCall = self._pingAbortCall, None
        if call is not None and call.active():
            call.cancel()

    def _pingServerPing(self, line: bytes) -> None:
        if self.pingCloseReason is not None:
            return
        responder = self._pingServerResponder or self.pingResponder()
        words = _words(line)
        if len(words) > 2 or (len(words) == 2 and not isToken(words[1])):
            self.pingBadLine(
                "bad_ping",
                f"expected 'ping' or 'ping TOKEN' (TOKEN: 1-{MAX_TOKEN_LENGTH} "
                f"of A-Z a-z 0-9 . _ ~ + / = -)",
            )
            return
        token = words[1] if len(words) == 2 else None
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
        sendLine(b"error unhealthy" + suffix + b" :" + _oneLine(report).encode("ascii"))


# --- the pinging side -----------------------------------------------------


class PingState(enum.Enum):
    """
    Where a L{PingingProtocol} stands.

      - C{IDLE}: not connected yet;
      - C{QUIET}: connected, waiting for C{interval} seconds of quiet;
      - C{AWAITING}: a ping was sent, its answer is due within C{timeout};
      - C{STOPPED}: pinging stopped by L{PingingProtocol.stopPinging};
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
        self.clock = _reactor(clock)
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
    def dataReceived(self: PingingProtocol, data: bytes) -> Any:
        if self._pingingState is not PingState.IDLE:
            self._pingingReceived = self._pingingSeconds()
        return original(self, data)

    return dataReceived


def _hookPingingLine(original: Method) -> Method:
    def lineReceived(self: PingingProtocol, line: bytes) -> Any:
        if _command(line, b"pong"):
            return self._pingingAnswer(line[len(b"pong") :], None)
        if _command(line, b"error unhealthy"):
            head, _, report = line.rstrip(b"\r").partition(b" :")
            return self._pingingAnswer(head[len(b"error unhealthy") :], report)
        return original(self, line)

    return lineReceived


class PingingProtocol:
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
        else L{None} (shared with L{PingServerProtocol}).
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
            peer=_peer(getattr(self, "transport", None)),
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
            peer=_peer(transport),
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
        words = _words(line)
        token = words[0] if words else None
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
            self.pingUnhealthy(_oneLine(report.decode("ascii", "replace")))
        self.pingRoundTrip(rtt)

    def _pingingLost(self) -> None:
        self._pingingStop(PingState.CLOSED)

    def _pingingStop(self, state: PingState) -> None:
        self._pingingCancel()
        self._pingingState = state
        unobserve, self._pingingUnobserve = self._pingingUnobserve, None
        if unobserve is not None:
            unobserve()


# --- the ready client -----------------------------------------------------


class PingEvents:
    """
    What a L{PingClientFactory} reports, one method per event.  Every
    method does nothing here: subclass and override the ones you need.
    """

    def connected(self, protocol: PingClientProtocol) -> None:
        """
        A connection was made.
        """

    def roundTrip(self, protocol: PingClientProtocol, rtt: float) -> None:
        """
        A ping was answered after C{rtt} seconds; C{protocol.pingStats} has
        the figures.
        """

    def unhealthy(self, protocol: PingClientProtocol, report: str) -> None:
        """
        A ping was answered with failing health checks (C{report}).
        """

    def dead(self, protocol: PingClientProtocol, waited: float) -> None:
        """
        No answer to a ping within C{waited} seconds: the connection is
        being aborted.
        """

    def peerError(self, protocol: PingClientProtocol, text: str) -> None:
        """
        The peer sent an C{error} line other than C{unhealthy}.
        """

    def disconnected(self, protocol: PingClientProtocol, reason: Failure) -> None:
        """
        The connection is gone.
        """


class PingClientProtocol(PingingProtocol, LineReceiver):
    """
    A ready pinging client: pings as L{PingingProtocol} does, answers the
    peer's own pings (C{ping [TOKEN]} with C{pong [TOKEN]}), and reports
    every event to its factory's C{events}.
    """

    delimiter = b"\n"
    _log = Logger()

    def _events(self) -> PingEvents:
        factory = getattr(self, "factory", None)
        events = getattr(factory, "events", None)
        return events if isinstance(events, PingEvents) else PingEvents()

    def connectionMade(self) -> None:
        """
        Report the connection.
        """
        self._events().connected(self)

    def lineReceived(self, line: bytes) -> None:
        """
        Answer a ping; report an error line; ignore anything else.
        """
        words = _words(line)
        if words[:1] == [b"ping"] and (
            len(words) == 1 or (len(words) == 2 and isToken(words[1]))
        ):
            self.sendLine(b" ".join([b"pong", *words[1:]]))  # type: ignore[no-untyped-call]
        elif words[:1] == [b"error"]:
            text = _oneLine(line.decode("ascii", "replace"))
            self._log.warn(
                "{peer} reports: {text}", peer=_peer(self.transport), text=text
            )
            self._events().peerError(self, text)

    def pingRoundTrip(self, rtt: float) -> None:
        """
        Report the round trip.
        """
        self._events().roundTrip(self, rtt)

    def pingUnhealthy(self, report: str) -> None:
        """
        Log and report the failing checks.
        """
        super().pingUnhealthy(report)
        self._events().unhealthy(self, report)

    def pingPeerDead(self, waited: float) -> None:
        """
        Report the dead peer, then log and abort.
        """
        self._events().dead(self, waited)
        super().pingPeerDead(waited)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Report the loss; tell the factory whether the connection ever
        carried an answered ping (it resets the reconnect backoff).
        """
        factory = getattr(self, "factory", None)
        if isinstance(factory, PingClientFactory):
            factory.connectionEnded(self, reason)
        else:
            self._events().disconnected(self, reason)


class PingBackoff:
    """
    A reconnect policy for L{ClientService}: Twisted's L{backoffPolicy},
    except that a connection counts as a success only once a ping on it was
    answered.

    L{ClientService} restarts its count of failed attempts whenever a TCP
    connection is made, so a peer whose kernel accepts connections while
    its process hangs would be reconnected to at the first, shortest delay
    forever.  This policy adds the number of connections in a row that
    ended without an answered ping, so the delay keeps growing.

    @ivar unproven: Connections in a row that ended with no answered ping.
    """

    def __init__(
        self,
        initialDelay: float = 1.0,
        maxDelay: float = 60.0,
        factor: float = 1.5,
        jitter: Callable[[], float] = _random.random,
    ) -> None:
        """
        The parameters of L{backoffPolicy}: the delay for attempt C{n} is
        C{min(initialDelay * factor ** n, maxDelay) + jitter()}.
        """
        initial = _positive("initialDelay", initialDelay)
        top = _positive("maxDelay", maxDelay)
        if top < initial:
            raise ValueError(
                f"'maxDelay' must be >= initialDelay ({initialDelay!r}): {maxDelay!r}"
            )
        grow = _positive("factor", factor)
        if grow < 1:
            raise ValueError(f"'factor' must be >= 1: {factor!r}")
        self._policy = backoffPolicy(initial, top, grow, jitter)
        self.unproven = 0

    def __call__(self, attempt: int) -> float:
        """
        Seconds to wait before reconnection attempt C{attempt} (as counted
        by L{ClientService}).
        """
        return self._policy(attempt + self.unproven)

    def connectionEnded(self, proven: bool) -> None:
        """
        A connection ended; C{proven} says whether a ping on it was answered.
        """
        self.unproven = 0 if proven else self.unproven + 1


class PingClientFactory(Factory):
    """
    Builds L{PingClientProtocol}s sharing one L{Pinger}, reporting to one
    L{PingEvents}, with one L{PingBackoff} for L{pingClientService}.

    @ivar pinger: The shared settings and counters.
    @ivar events: Where events are reported.
    @ivar backoff: The reconnect policy.
    """

    protocol = PingClientProtocol
    noisy = False

    def __init__(
        self,
        pinger: Pinger,
        events: PingEvents | None = None,
        backoff: PingBackoff | None = None,
    ) -> None:
        """
        @param pinger: The settings (interval, timeout, jitter, clock).
        @param events: Receives the events; a do-nothing one if L{None}.
        @param backoff: The reconnect policy; L{PingBackoff}C{()} if L{None}.
        """
        self.pinger = pinger
        self.events = events if events is not None else PingEvents()
        self.backoff = backoff if backoff is not None else PingBackoff()

    def connectionEnded(self, protocol: PingClientProtocol, reason: Failure) -> None:
        """
        A connection of this factory is gone: update the backoff, report.
        """
        self.backoff.connectionEnded(protocol.pingStats.count > 0)
        self.events.disconnected(protocol, reason)


def pingClientService(
    endpoint: IStreamClientEndpoint,
    factory: PingClientFactory,
    clock: IReactorTime | None = None,
) -> ClientService:
    """
    A L{ClientService} that keeps one pinging connection to C{endpoint},
    reconnecting with C{factory.backoff} whenever it is lost (a dead peer
    included).

    @param clock: The service's clock; the global reactor if L{None}.
    """
    return ClientService(endpoint, factory, retryPolicy=factory.backoff, clock=clock)
