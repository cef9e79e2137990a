"""
The heartbeat on the real reactor, over loopback sockets.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import ConnectionAborted
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.wire import Echo
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from heartbeat_twisted import (
    HeartbeatConfig,
    HeartbeatFactoryMixin,
    HeartbeatMixin,
    HeartbeatWrappingFactory,
)

from ._peers import connectPeer

SLACK = 0.5


class Flooding(HeartbeatMixin, Protocol):
    """
    Writes far more than the socket buffers hold as soon as it connects.
    """

    payload = b"x" * (64 * 1024 * 1024)

    def connectionMade(self) -> None:
        self.transport.write(self.payload)

    def heartbeatTimedOut(self) -> None:
        # Told again each idle period while the close lingers: keep the first.
        if self.factory.timedOutAt is None:
            self.factory.timedOutAt = reactor.seconds()
        super().heartbeatTimedOut()

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.factory.lost.callback((reactor.seconds(), reason))


class FloodingFactory(HeartbeatFactoryMixin, Factory):
    protocol = Flooding

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lost: defer.Deferred[tuple[float, Failure]] = defer.Deferred()
        self.timedOutAt: float | None = None


class RealSocketTests(TestCase):
    timeout = 60

    def listen(self, factory: Any) -> defer.Deferred[int]:
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        listening = endpoint.listen(factory)

        def listened(port: Any) -> int:
            self.addCleanup(port.stopListening)
            return int(port.getHost().port)

        return listening.addCallback(listened)

    @defer.inlineCallbacks
    def test_stalledReaderAbortedAfterGrace(self) -> Generator[Any, Any, None]:
        """
        A peer that stops reading while the server has a large pending write
        keeps a clean close from completing; the connection is aborted
        C{closeGrace} seconds after the idle close, within one sweep.
        """
        config = HeartbeatConfig(idle=0.5, checkInterval=0.1, closeGrace=0.75)
        factory = FloodingFactory(heartbeatConfig=config)
        port = yield self.listen(factory)
        peer = yield connectPeer(port)
        peer.transport.pauseProducing()
        lostAt, reason = yield factory.lost.addTimeout(10, reactor)
        self.assertIsNotNone(factory.timedOutAt)
        closing = lostAt - factory.timedOutAt
        self.assertGreaterEqual(closing, config.closeGrace)
        self.assertLessEqual(closing, config.closeGrace + config.checkInterval + SLACK)
        self.assertIsInstance(reason.value, ConnectionAborted)
        peer.transport.loseConnection()

    @defer.inlineCallbacks
    def test_wrappedEchoOverSockets(self) -> Generator[Any, Any, None]:
        config = HeartbeatConfig(idle=0.5, checkInterval=0.125)
        factory = HeartbeatWrappingFactory(Factory.forProtocol(Echo), config)
        port = yield self.listen(factory)
        peer = yield connectPeer(port)
        peer.send(b"echo this")
        yield peer.expect(b"echo this")
        yield peer.whenLost()
        silent = peer.lostAt - peer.lastSentAt
        self.assertGreaterEqual(silent, config.idle)
        self.assertLessEqual(silent, config.idle + config.checkInterval + SLACK)
        self.assertEqual(len(factory.heartbeatTracker), 0)
        self.assertFalse(factory.heartbeatTracker.running)
