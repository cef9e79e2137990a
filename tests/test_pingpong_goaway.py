"""
"Go away": the answering side tells a connection to go, the pinging side
hears it, and the ready client reconnects within a second instead of
backing off; and the reconnecting client through L{ClientService}'s
C{prepareConnection}.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import backoffPolicy
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Factory, connectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from heartbeat_twisted.ping import (
    PingAnswerMixin,
    PingClientFactory,
    PingConfig,
    PingEvents,
    PingServerConfig,
    pingClientService,
)
from heartbeat_twisted.testing import connect

from ._pingnet import RecordingEvents


class Server(PingAnswerMixin, LineReceiver):
    pass


class Seen(PingEvents):
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def goAway(self, protocol: Any, reason: str, grace: float) -> None:
        self.seen.append(("goaway", (reason, grace)))

    def disconnected(self, protocol: Any, reason: Failure) -> None:
        self.seen.append(("disconnected", type(reason.value).__name__))

    def retrying(self, delay: float, reason: Failure | None) -> None:
        why = None if reason is None else type(reason.value).__name__
        self.seen.append(("retrying", (delay, why)))


class AnsweringSideTests(SynchronousTestCase):
    """
    L{PingAnswerMixin.pingGoAway}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        factory = Factory.forProtocol(Server)
        factory.pingServerConfig = PingServerConfig(closeGrace=3)
        factory.heartbeatClock = self.clock
        self.factory = factory
        self.connection = connect(factory)
        self.connection.transport.lingering = True

    def test_goAwayLineThenCloseAfterGrace(self) -> None:
        """
        One C{goaway GRACE :REASON} line; pings are still answered during
        the grace; the close comes exactly C{grace} seconds later, the abort
        C{closeGrace} after that.
        """
        proto, transport = self.connection.protocol, self.connection.transport
        self.assertTrue(proto.pingGoAway("shutdown", grace=2))
        self.assertFalse(proto.pingGoAway("again", grace=1))
        self.connection.receive(b"ping 5\n")
        self.assertEqual(transport.value(), b"goaway 2 :shutdown\npong 5\n")
        self.assertEqual(proto.pingCloseReason, "shutdown")
        self.assertEqual(self.factory.pingCounters.goAways, 1)
        self.clock.advance(1.999)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.001)
        self.assertTrue(transport.disconnecting)
        self.clock.advance(2.999)
        self.assertFalse(self.connection.closed)
        self.clock.advance(0.001)
        self.assertTrue(self.connection.closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_peerLeavesFirst(self) -> None:
        """
        A peer that leaves within the grace cancels the close.
        """
        self.connection.protocol.pingGoAway("max age", grace=5)
        self.connection.peerClosed()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_badGrace(self) -> None:
        with self.assertRaises(ValueError) as caught:
            self.connection.protocol.pingGoAway("x", grace=-1)
        self.assertEqual(str(caught.exception), "'grace' must be >= 0: -1")


class ClientSideTests(SynchronousTestCase):
    """
    L{PingClientProtocol} leaves when told to go, and the next connection
    is made within C{goAwayDelay}, jittered.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.events = Seen()
        self.draw = 0.0
        self.factory = PingClientFactory(
            PingConfig(interval=1, timeout=2),
            self.events,
            backoffPolicy(1, 60, 2, jitter=lambda: 0),
            clock=self.reactor,
            random=lambda: self.draw,
        )
        endpoint = TCP4ClientEndpoint(self.reactor, "127.0.0.1", 6666)
        self.service = pingClientService(endpoint, self.factory)
        self.service.startService()

    def attempt(self) -> Any:
        """
        Complete the last connection attempt in memory.
        """
        return connect(self.reactor.tcpClients[-1][2])

    def test_goAwayReconnectsWithinASecond(self) -> None:
        connection = self.attempt()
        self.reactor.advance(1)  # ping 1 (random 0: exactly the interval)
        self.assertEqual(connection.transport.value(), b"ping 1\n")
        connection.receive(b"pong 1\n")
        connected = self.service.whenConnected()
        self.assertIsNotNone(self.successResultOf(connected))
        self.draw = 0.25
        connection.receive(b"goaway 5 :shutdown\n")
        self.assertTrue(connection.closed)
        self.assertEqual(
            self.events.seen,
            [
                ("goaway", ("shutdown", 5.0)),
                ("disconnected", "ConnectionDone"),
                ("retrying", (0.25, None)),
            ],
        )
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.reactor.advance(0.25)
        self.assertEqual(len(self.reactor.tcpClients), 2)

    def test_unansweredConnectionsBackOff(self) -> None:
        """
        A connection that ends before its first answer is a failed attempt
        (C{prepareConnection}): the waits grow, also when the server
        accepts every connection; an answered ping resets them.
        """
        for delay in (2.0, 4.0, 8.0):
            connection = self.attempt()
            connection.peerClosed()
            self.assertEqual(self.events.seen[-1], ("retrying", (delay, None)))
            self.reactor.advance(delay)
        connection = self.attempt()
        self.reactor.advance(1)
        connection.receive(b"pong 1\n")
        connection.peerClosed()
        self.assertEqual(self.events.seen[-1], ("retrying", (2.0, None)))

    def test_refusedIsReported(self) -> None:
        """
        A failed attempt is reported with its reason and the wait.
        """
        self.reactor.tcpClients[-1][2].clientConnectionFailed(
            None, Failure(ConnectionRefusedError())
        )
        self.assertEqual(
            self.events.seen, [("retrying", (2.0, "ConnectionRefusedError"))]
        )

    def test_stopWhilePreparing(self) -> None:
        """
        Stopping the service before the first answer aborts the connection.
        """
        connection = self.attempt()
        stopped = self.service.stopService()
        self.assertTrue(connection.closed)
        self.successResultOf(stopped)


class GoAwayLoopbackTests(TestCase):
    """
    Over real TCP: the demo server tells a ready client to go; it is back
    within a second.
    """

    timeout = 20

    @inlineCallbacks
    def test_goAwayAndBack(self) -> Any:
        factory = Factory.forProtocol(Tracked)
        factory.live = []
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            factory
        )
        self.addCleanup(port.stopListening)
        self.addCleanup(closeAll, factory.live)
        events = RecordingEvents()
        client = PingClientFactory(PingConfig(interval=0.2, timeout=2), events)
        service = pingClientService(
            TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), client
        )
        service.startService()
        self.addCleanup(service.stopService)
        first = yield service.whenConnected()
        self.assertEqual(events.count("rtt"), 1)
        told = reactor.seconds()
        serverSide = factory.live[0]
        serverSide.pingGoAway("shutdown", grace=5)
        yield events.waitUntil(lambda: events.count("connected") == 2, 5, "reconnect")
        back = events.times("connected")[1] - told
        self.assertLess(back, 1.5)
        self.assertEqual(events.count("goaway"), 1)
        second = yield service.whenConnected()
        self.assertIsNot(second, first)
        self.assertEqual(serverSide.pingCloseReason, "shutdown")
        # Leave the service's transition before the cleanup stops it.
        yield task.deferLater(reactor, 0, lambda: None)


class Tracked(PingAnswerMixin, LineReceiver):
    def connectionMade(self) -> None:
        self.gone: Deferred[None] = Deferred()
        self.factory.live.append(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.gone.callback(None)


def closeAll(live: list[Tracked]) -> Deferred[Any]:
    """
    Abort the server's connections that are still open; fires when all
    are gone.
    """
    for protocol in live:
        if not protocol.gone.called:
            protocol.transport.abortConnection()
    return gatherResults([protocol.gone for protocol in live])
