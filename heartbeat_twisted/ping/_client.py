"""
A ready pinging client that reconnects through
L{ClientService<twisted.application.internet.ClientService>}: a
connection counts as good once its first ping is answered
(C{prepareConnection}), failures back off (C{backoffPolicy}, jittered),
and a connection told to go is replaced within a second.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from .._closing import peerText
from ._config import PingConfig
from ._legacy import Pinger, warnOnce
from ._lines import isToken, oneLine, words
from ._pinging import PingingMixin

__all__ = [
    "PingClientFactory",
    "PingClientProtocol",
    "PingEvents",
    "pingClientService",
]


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

    def goAway(self, protocol: PingClientProtocol, reason: str, grace: float) -> None:
        """
        The peer told this connection to go (C{reason}) within C{grace}
        seconds: it is closed now, and replaced within a second.
        """

    def disconnected(self, protocol: PingClientProtocol, reason: Failure) -> None:
        """
        The connection is gone.
        """

    def retrying(self, delay: float, reason: Failure | None) -> None:
        """
        L{pingClientService} connects again in C{delay} seconds; C{reason}
        is why the last attempt failed to connect (L{None} if it connected).
        """


class PingClientProtocol(PingingMixin, LineReceiver):
    """
    A ready pinging client: pings as L{PingingMixin} does, answers the
    peer's own pings (C{ping [TOKEN]} with C{pong [TOKEN]}), leaves when
    told to go, and reports every event to its factory's C{events}.
    """

    delimiter = b"\n"
    _log = Logger()
    _answered: Deferred[None] | None = None
    _lost = False

    def _events(self) -> PingEvents:
        factory = getattr(self, "factory", None)
        events = getattr(factory, "events", None)
        return events if isinstance(events, PingEvents) else PingEvents()

    def whenAnswered(self) -> Deferred[None]:
        """
        A L{Deferred<twisted.internet.defer.Deferred>} that fires when the first ping of
        this connection is
        answered, or fails with the reason the connection was lost before
        (cancelling it aborts the connection).  L{pingClientService} gives
        it to L{ClientService<twisted.application.internet.ClientService>} as
        C{prepareConnection}.
        """

        def cancel(d: Deferred[None]) -> None:
            self._answered = None
            transport: Any = self.transport
            if transport is not None:
                transport.abortConnection()

        answered: Deferred[None] = Deferred(cancel)
        if self.pingStats.count:
            answered.callback(None)
        elif self._lost:
            answered.errback(ConnectionError("lost before an answer"))
        else:
            self._answered = answered
        return answered

    def connectionMade(self) -> None:
        """
        Report the connection.
        """
        self._events().connected(self)

    def lineReceived(self, line: bytes) -> None:
        """
        Answer a ping; report an error line; ignore anything else.
        """
        parts = words(line)
        if parts[:1] == [b"ping"] and (
            len(parts) == 1 or (len(parts) == 2 and isToken(parts[1]))
        ):
            self.sendLine(b" ".join([b"pong", *parts[1:]]))  # type: ignore[no-untyped-call]
        elif parts[:1] == [b"error"]:
            text = oneLine(line.decode("ascii", "replace"))
            self._log.warn(
                "{peer} reports: {text}", peer=peerText(self.transport), text=text
            )
            self._events().peerError(self, text)

    def pingRoundTrip(self, rtt: float) -> None:
        """
        Report the round trip; the first one proves the connection.
        """
        self._events().roundTrip(self, rtt)
        answered, self._answered = self._answered, None
        if answered is not None:
            answered.callback(None)

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

    def pingGoAwayReceived(self, reason: str, grace: float) -> None:
        """
        Report, have the next connection made within a second, then close
        this one.
        """
        factory = getattr(self, "factory", None)
        if isinstance(factory, PingClientFactory):
            factory.toldToGo = True
        self._events().goAway(self, reason, grace)
        super().pingGoAwayReceived(reason, grace)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Report the loss.
        """
        self._lost = True
        answered, self._answered = self._answered, None
        self._events().disconnected(self, reason)
        if answered is not None:
            answered.errback(reason)


class PingClientFactory(Factory):
    """
    Builds L{PingClientProtocol}s pinging with one L{PingConfig} and one
    clock, reporting to one L{PingEvents}; L{pingClientService} keeps one of
    them connected.

    @ivar pingConfig: The settings.
    @ivar events: Where events are reported.
    @ivar retryPolicy: Seconds to wait before reconnection attempt C{n}
        (L{ClientService<twisted.application.internet.ClientService>}'s C{retryPolicy}).
    @ivar goAwayDelay: After C{goaway}, the next connection is made within
        this many seconds (at random, so a fleet told to go together does
        not come back together).
    @ivar heartbeatClock: The clock (the global reactor if L{None}).
    @ivar pingRandom: The source of jitter, returning floats in C{[0, 1)}.
    @ivar lastProtocol: The protocol built last, or L{None}.
    @ivar toldToGo: Whether the current connection was told to go.
    """

    protocol = PingClientProtocol
    noisy = False
    lastProtocol: PingClientProtocol | None = None
    toldToGo = False

    def __init__(
        self,
        config: PingConfig,
        events: PingEvents | None = None,
        retryPolicy: Callable[[int], float] | None = None,
        *,
        clock: IReactorTime | None = None,
        random: Callable[[], float] = _random.random,
        goAwayDelay: float = 1.0,
    ) -> None:
        """
        @param config: The ping settings.
        @param events: Receives the events; a do-nothing one if L{None}.
        @param retryPolicy: L{backoffPolicy}C{()} if L{None}.
        @param clock: The global reactor if L{None}.
        @param random: The source of jitter.
        @param goAwayDelay: See L{goAwayDelay}; C{> 0}.
        """
        if isinstance(config, Pinger):
            warnOnce(
                config,
                "PingClientFactory(Pinger(...)) is deprecated since "
                "heartbeat_twisted 0.2.0: give PingClientFactory(PingConfig(...), "
                "events, clock=..., random=...)",
            )
            clock, random, config = config.clock, config.random, config.config
        if not isinstance(config, PingConfig):
            raise TypeError(f"config must be a PingConfig: {config!r}")
        if not goAwayDelay > 0:
            raise ValueError(f"'goAwayDelay' must be > 0: {goAwayDelay!r}")
        self.pingConfig = config
        self.events = events if events is not None else PingEvents()
        self.retryPolicy = retryPolicy if retryPolicy is not None else backoffPolicy()
        self.heartbeatClock = clock
        self.pingRandom = random
        self.goAwayDelay = goAwayDelay

    @property
    def backoff(self) -> Callable[[int], float]:
        """
        Deprecated name of L{retryPolicy}.
        """
        return self.retryPolicy

    def buildProtocol(self, addr: Any) -> PingClientProtocol:
        """
        Build a protocol and remember it as L{lastProtocol}.
        """
        protocol = super().buildProtocol(addr)
        assert isinstance(protocol, PingClientProtocol)
        self.lastProtocol = protocol
        return protocol

    def nextDelay(self, attempt: int) -> float:
        """
        Seconds before reconnection attempt C{attempt}: within
        L{goAwayDelay} after a C{goaway}, else L{retryPolicy}'s.
        """
        if self.toldToGo:
            self.toldToGo = False
            return float(self.goAwayDelay * self.pingRandom())
        return float(self.retryPolicy(attempt))


@implementer(IProtocol)
class _Gate:
    """
    Stands between L{ClientService<twisted.application.internet.ClientService>}'s
    protocol proxy and the transport, so
    that a connection lost before its first answer fails the preparation
    without also telling the service of a disconnection it cannot take in
    that state.
    """

    def __init__(self, proxy: Any, protocol: PingClientProtocol) -> None:
        self.proxy = proxy
        self.protocol = protocol

    def makeConnection(self, transport: Any) -> None:
        self.proxy.makeConnection(transport)

    def dataReceived(self, data: bytes) -> None:
        self.protocol.dataReceived(data)  # type: ignore[no-untyped-call]

    def connectionMade(self) -> None:
        pass

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.protocol.pingStats.count:
            self.proxy.connectionLost(reason)
        else:
            self.protocol.connectionLost(reason)


@implementer(IProtocolFactory)
class _GateFactory(Factory):
    def __init__(self, serviceFactory: Any, factory: PingClientFactory) -> None:
        self.serviceFactory = serviceFactory
        self.factory = factory

    def buildProtocol(self, addr: Any) -> Any:
        proxy = self.serviceFactory.buildProtocol(addr)
        protocol = self.factory.lastProtocol
        if proxy is None or protocol is None:
            return None
        return _Gate(proxy, protocol)


@implementer(IStreamClientEndpoint)
class _Connector:
    """
    The endpoint L{pingClientService} gives
    L{ClientService<twisted.application.internet.ClientService>}: connects
    through a L{_Gate}, remembers why an attempt failed, and reports each
    wait before the next attempt.
    """

    def __init__(self, endpoint: IStreamClientEndpoint, factory: PingClientFactory):
        self.endpoint = endpoint
        self.factory = factory
        self.failure: Failure | None = None

    def connect(self, serviceFactory: Any) -> Deferred[Any]:
        self.failure = None

        def failed(failure: Failure) -> Failure:
            self.failure = failure
            return failure

        connecting: Deferred[Any] = self.endpoint.connect(
            _GateFactory(serviceFactory, self.factory)
        )
        return connecting.addCallbacks(lambda gate: gate.proxy, failed)

    def retryPolicy(self, attempt: int) -> float:
        delay = self.factory.nextDelay(attempt)
        failure, self.failure = self.failure, None
        self.factory.events.retrying(delay, failure)
        return delay


def _whenAnswered(protocol: Any) -> Deferred[None]:
    answered: Deferred[None] = protocol.whenAnswered()
    return answered


def pingClientService(
    endpoint: IStreamClientEndpoint,
    factory: PingClientFactory,
    clock: IReactorTime | None = None,
) -> ClientService:
    """
    A L{ClientService<twisted.application.internet.ClientService>} that keeps one
    pinging connection to C{endpoint}.

    A connection counts as made once its first ping is answered (the
    service's C{prepareConnection}); until then, and after every failed
    attempt, the wait grows by C{factory.retryPolicy}.  A connection told
    to go is replaced within C{factory.goAwayDelay} seconds.  Each wait is
    reported to C{factory.events.retrying}.

    @param clock: The service's clock; C{factory.heartbeatClock} if
        L{None}.
    """
    connector = _Connector(endpoint, factory)
    return ClientService(
        connector,
        factory,
        retryPolicy=connector.retryPolicy,
        clock=clock if clock is not None else factory.heartbeatClock,
        prepareConnection=_whenAnswered,
    )
