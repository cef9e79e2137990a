"""
The heartbeat on the real reactor, over loopback sockets.
"""

from __future__ import annotations

import socket
import threading
import time
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
from ._waiting import Waitable

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


class Recorded(HeartbeatMixin, Protocol):
    """
    Tells its factory what it receives and when it is lost.
    """

    received = 0
    lostReason: Failure | None = None

    def connectionMade(self) -> None:
        self.factory.connections.append(self)
        self.factory.changed()

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)
        self.factory.changed()

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.lostReason = reason
        self.factory.changed()


class RecordedFactory(HeartbeatFactoryMixin, Factory, Waitable):
    protocol = Recorded

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        Waitable.__init__(self)
        self.connections: list[Recorded] = []


def sendEvery(case: TestCase, port: int, period: float, limit: float) -> None:
    """
    A client in a thread of its own (so that a blocked reactor does not
    block it): one byte every C{period} seconds for at most C{limit}
    seconds, or until the test's cleanup, or until the server closes.
    """
    stop = threading.Event()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def run() -> None:
        deadline = time.monotonic() + limit
        try:
            while time.monotonic() < deadline:
                sock.sendall(b"x")
                if stop.wait(period):  # pacing, not synchronisation
                    break
        except OSError:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def cleanUp() -> None:
        stop.set()
        thread.join(5)
        sock.close()

    case.addCleanup(cleanUp)


class StallTests(TestCase):
    """
    Issue 10.1: a reactor that stalls longer than idle must not make the
    heartbeat close connections whose data sits unread in the kernel.
    """

    timeout = 30

    @defer.inlineCallbacks
    def test_busyClientSurvivesStall(self) -> Generator[Any, Any, None]:
        factory = RecordedFactory(heartbeatConfig=HeartbeatConfig(idle=1))
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        port = yield endpoint.listen(factory)
        self.addCleanup(port.stopListening)
        number = port.getHost().port
        sendEvery(self, number, 0.1, 20)
        yield factory.waitUntil(
            lambda: factory.connections and factory.connections[0].received,
            5,
            "the busy client's first byte",
        )
        peer = yield connectPeer(number)
        self.addCleanup(peer.transport.loseConnection)
        yield factory.waitUntil(
            lambda: len(factory.connections) == 2, 5, "the silent client"
        )
        busy, silent = factory.connections
        tracker = factory.heartbeatTracker
        # Another handler blocks the reactor for 1.5 s (the stall modelled).
        reactor.callLater(0, time.sleep, 1.5)
        yield factory.waitUntil(
            lambda: silent.lostReason is not None, 10, "the silent close"
        )
        self.assertEqual(silent.heartbeatCloseReason, "idle")
        self.assertGreaterEqual(tracker.stalls, 1)
        # Two idle periods of sweeps later, the busy one is still open.
        after = tracker.ticks + 10
        yield factory.waitUntil(lambda: tracker.ticks >= after, 10, "ten sweeps")
        self.assertIsNone(busy.lostReason)
        self.assertIsNone(busy.heartbeatCloseReason)
