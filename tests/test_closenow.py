"""
The cheaper close of an idle TCP connection (C{_writepath._closenow}), on
real loopback sockets: the peer sees a FIN, never a reset; nothing written
is lost; an abort meanwhile wins.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from heartbeat_twisted import HeartbeatConfig, HeartbeatMixin
from heartbeat_twisted._writepath import _closenow
from heartbeat_twisted._writepath._closenow import closeSoon

from ._peers import Peer, connectPeer


class Closing(Protocol):
    """
    On C{close}, closes with L{closeSoon} (which is to note it in the
    factory's C{otherwise} if the close must flush); on C{closebye}, the
    same then writes C{bye}; on C{closeabort}, the same then aborts.
    """

    def connectionMade(self) -> None:
        self.factory.made.append(self)

    def dataReceived(self, data: bytes) -> None:
        took = closeSoon(self.transport, self.factory.otherwise.append, self)
        self.factory.took.append(took)
        if data == b"closebye":
            self.transport.write(b"bye")
        elif data == b"closeabort":
            self.transport.abortConnection()

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.factory.lost.append(reason)


class ClosingFactory(Factory):
    protocol = Closing

    def __init__(self) -> None:
        self.made: list[Closing] = []
        self.took: list[bool] = []
        self.otherwise: list[Closing] = []
        self.lost: list[Failure] = []


class Idle(HeartbeatMixin, Protocol):
    """
    Times out quickly; notes how many deadlines its tracker holds right
    after the default time-out (an abort armed for the close, or none).
    """

    heartbeatConfig = HeartbeatConfig(idle=0.2, checkInterval=0.05)

    def heartbeatTimedOut(self) -> None:
        super().heartbeatTimedOut()
        self.factory.deadlines.append(self.heartbeatTracker().pendingDeadlines)

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.factory.lost.append(reason)


class IdleFactory(Factory):
    protocol = Idle

    def __init__(self) -> None:
        self.deadlines: list[int] = []
        self.lost: list[Failure] = []


class CloseSoonTests(TestCase):
    timeout = 30

    def listen(self, factory: Factory) -> defer.Deferred[int]:
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")

        def listened(port: Any) -> int:
            self.addCleanup(port.stopListening)
            return int(port.getHost().port)

        return endpoint.listen(factory).addCallback(listened)

    @defer.inlineCallbacks
    def closed(self, data: bytes) -> Generator[Any, Any, tuple[ClosingFactory, Peer]]:
        factory = ClosingFactory()
        port = yield self.listen(factory)
        peer = yield connectPeer(port)
        peer.send(data)
        yield peer.whenLost()
        return factory, peer

    @defer.inlineCallbacks
    def test_fin(self) -> Generator[Any, Any, None]:
        """
        An idle connection is closed cleanly: the peer sees a FIN
        (L{ConnectionDone}), the server's protocol L{ConnectionDone}, and
        nothing asks for an abort.
        """
        factory, peer = yield self.closed(b"close")
        self.assertEqual(factory.took, [True])
        self.assertIsInstance(peer.reason.value, ConnectionDone)
        self.assertEqual(len(factory.lost), 1)
        self.assertIsInstance(factory.lost[0].value, ConnectionDone)
        self.assertEqual(factory.otherwise, [])

    @defer.inlineCallbacks
    def test_writtenMeanwhile(self) -> Generator[Any, Any, None]:
        """
        What is written after L{closeSoon} is still sent before the FIN,
        and the caller is told, so it can bound that flush with an abort.
        """
        factory, peer = yield self.closed(b"closebye")
        self.assertEqual(factory.took, [True])
        self.assertEqual(peer.received, b"bye")
        self.assertIsInstance(peer.reason.value, ConnectionDone)
        if factory.otherwise:
            self.assertEqual(factory.otherwise, factory.made)
        else:
            # Twisted's own reactors run the queued close before the
            # socket's writable event, so the close goes Twisted's way and
            # the caller is told; asyncio's loop may run the writable event
            # first, and then Twisted's doWrite flushed "bye" and closed by
            # itself (the connection was marked closing): nothing is left
            # to bound.
            self.assertIn("asyncio", type(reactor).__module__)
        self.assertEqual(len(factory.lost), 1)
        self.assertIsInstance(factory.lost[0].value, ConnectionDone)

    @defer.inlineCallbacks
    def test_abortMeanwhile(self) -> Generator[Any, Any, None]:
        """
        An abort after L{closeSoon} wins: one C{connectionLost}, with
        L{ConnectionAborted}; the peer sees a reset.
        """
        factory, peer = yield self.closed(b"closeabort")
        self.assertIsInstance(peer.reason.value, ConnectionLost)
        self.assertEqual(len(factory.lost), 1)
        self.assertIsInstance(factory.lost[0].value, ConnectionAborted)
        self.assertEqual(factory.otherwise, [])

    @defer.inlineCallbacks
    def test_notIdle(self) -> Generator[Any, Any, None]:
        """
        It refuses (and does nothing) for a transport that is not a
        Twisted TCP connection, one with output unsent, or one closing.
        """
        self.assertFalse(closeSoon(StringTransport(), lambda: None))
        factory = ClosingFactory()
        port = yield self.listen(factory)
        peer = yield connectPeer(port)
        yield peer.waitUntil(lambda: factory.made, 5, "accepted")
        transport: Any = factory.made[0].transport
        transport.write(b"unsent")
        self.assertFalse(closeSoon(transport, lambda: None))
        transport.loseConnection()
        self.assertFalse(closeSoon(transport, lambda: None))
        yield peer.whenLost()
        self.assertEqual(peer.received, b"unsent")
        self.assertIsInstance(peer.reason.value, ConnectionDone)

    @defer.inlineCallbacks
    def test_heartbeatTimeOuts(self) -> Generator[Any, Any, None]:
        """
        Connections that time out together are all closed with a FIN, and
        the default C{heartbeatTimedOut} arms no abort for them (nothing is
        left to flush).
        """
        factory = IdleFactory()
        port = yield self.listen(factory)
        peers = yield defer.gatherResults([connectPeer(port) for _ in range(20)])
        for peer in peers:
            yield peer.whenLost()
        self.assertEqual(
            [type(peer.reason.value) for peer in peers], [ConnectionDone] * 20
        )
        self.assertEqual(
            [type(reason.value) for reason in factory.lost], [ConnectionDone] * 20
        )
        self.assertEqual(factory.deadlines, [0] * 20)


class BudgetTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_spreadOverTurns(self) -> Generator[Any, Any, None]:
        """
        Closes beyond the per-turn budget wait for the next turn, ahead of
        those queued later; every one still ends with a FIN.
        """
        self.patch(_closenow, "turnBudget", 0)
        factory = ClosingFactory()
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        port = yield endpoint.listen(factory)
        self.addCleanup(port.stopListening)
        peers = yield defer.gatherResults(
            [connectPeer(port.getHost().port) for _ in range(40)]
        )
        yield peers[0].waitUntil(lambda: len(factory.made) == 40, 5, "accepted")
        order = []
        for protocol in factory.made:
            self.assertTrue(closeSoon(protocol.transport, lambda: None))
            protocol.connectionLost = (  # type: ignore[method-assign]
                lambda reason, p=protocol: order.append(p)
            )
        # 16 a turn at a zero budget: the first turn closes 16, no more.
        yield deferLater(reactor, 0, lambda: None)
        self.assertEqual(order, factory.made[:16])
        for peer in peers:
            yield peer.whenLost()
            self.assertIsInstance(peer.reason.value, ConnectionDone)
        self.assertEqual(order, factory.made)

    @defer.inlineCallbacks
    def test_carriedAheadOfLater(self) -> Generator[Any, Any, None]:
        """
        What a turn leaves over closes before what was queued during that
        turn (here by the first close's C{connectionLost}), in the order
        queued.
        """
        self.patch(_closenow, "turnBudget", 0)
        factory = ClosingFactory()
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        port = yield endpoint.listen(factory)
        self.addCleanup(port.stopListening)
        peers = yield defer.gatherResults(
            [connectPeer(port.getHost().port) for _ in range(40)]
        )
        yield peers[0].waitUntil(lambda: len(factory.made) == 40, 5, "accepted")
        first, later = factory.made[:32], factory.made[32:]
        order = []

        def queueLater() -> None:
            for protocol in later:
                self.assertTrue(closeSoon(protocol.transport, lambda: None))

        for protocol in factory.made:
            protocol.connectionLost = (  # type: ignore[method-assign]
                lambda reason, p=protocol: order.append(p)
            )
        first[0].connectionLost = (  # type: ignore[method-assign]
            lambda reason: (order.append(first[0]), queueLater())
        )
        for protocol in first:
            self.assertTrue(closeSoon(protocol.transport, lambda: None))
        yield deferLater(reactor, 0, lambda: None)
        self.assertEqual(order, first[:16])
        for peer in peers:
            yield peer.whenLost()
            self.assertIsInstance(peer.reason.value, ConnectionDone)
        self.assertEqual(order, first + later)
