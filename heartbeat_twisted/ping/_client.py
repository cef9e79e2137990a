"""
A ready pinging client that reconnects with backoff through
L{ClientService}.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from .._closing import peerText
from .._config import _positive
from ._lines import isToken, oneLine, words
from ._pinging import Pinger, PingingMixin

__all__ = [
    "PingBackoff",
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

    def disconnected(self, protocol: PingClientProtocol, reason: Failure) -> None:
        """
        The connection is gone.
        """


class PingClientProtocol(PingingMixin, LineReceiver):
    """
    A ready pinging client: pings as L{PingingMixin} does, answers the
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
