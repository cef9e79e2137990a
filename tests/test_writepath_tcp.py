"""
The write path over real loopback TCP: progress counting (countOutbound),
bounded unsent output, in the three shapes of a send-mostly connection.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from heartbeat_twisted import HeartbeatConfig, HeartbeatFactoryMixin, HeartbeatMixin
from heartbeat_twisted._writepath import WritePath, installWritePath

from ._peers import Peer, connectPeer

SMALL = 4096


def connectSmall(port: int, peer: Peer, paused: bool = False) -> Peer:
    """
    Connect C{peer} to 127.0.0.1:C{port} with a small receive buffer (set
    before the connection, so the window stays small); if C{paused}, it
    never reads.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)
    sock.connect(("127.0.0.1", port))  # loopback: completes without accept
    sock.setblocking(False)

    class Once(Factory):
        def buildProtocol(self, addr: Any) -> Peer:
            return peer

    reactor.adoptStreamConnection(  # type: ignore[attr-defined]
        sock.fileno(), socket.AF_INET, Once()
    )
    sock.close()
    if paused:
        assert peer.transport is not None
        peer.transport.pauseProducing()  # type: ignore[attr-defined]
    return peer


class OneRead(Peer):
    """
    Stops reading after each read.
    """

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        self.transport.pauseProducing()  # type: ignore[union-attr]


class Server(HeartbeatMixin, Protocol):
    """
    A server connection whose test decides what it writes; the factory
    keeps every connection and a Deferred for each loss.
    """

    path: WritePath | None = None
    writeCloseReason: str | None = None

    def connectionMade(self) -> None:
        self.transport.getHandle().setsockopt(  # type: ignore[union-attr]
            socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL
        )
        self.lost: Deferred[Server] = Deferred()
        self.lostAt: float | None = None
        self.reason: Failure | None = None
        self.stops: list[Any] = []
        self.factory.onMade(self)  # type: ignore[attr-defined]
        self.factory.added(self)  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        self.factory.onData(self, data)  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.lostAt = reactor.seconds()  # type: ignore[attr-defined]
        self.reason = reason
        for stop in self.stops:
            stop()
        self.lost.callback(self)


class ServerFactory(HeartbeatFactoryMixin, Factory):
    protocol = Server

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.made: list[Server] = []
        self.onMade: Any = lambda protocol: None
        self.onData: Any = lambda protocol, data: None
        self.waiting: list[tuple[int, Deferred[None]]] = []

    def added(self, protocol: Server) -> None:
        self.made.append(protocol)
        for each in list(self.waiting):
            if len(self.made) >= each[0]:
                self.waiting.remove(each)
                each[1].callback(None)

    def whenMade(self, count: int, timeout: float = 5) -> Deferred[None]:
        """
        Fire once C{count} connections were made; fail after C{timeout} s.
        """
        d: Deferred[None] = Deferred()
        if len(self.made) >= count:
            d.callback(None)
        else:
            self.waiting.append((count, d))
        return d.addTimeout(timeout, reactor)


class Base(TestCase):
    timeout = 20

    def listen(self, **config: Any) -> tuple[ServerFactory, int]:
        factory = ServerFactory(
            heartbeatConfig=HeartbeatConfig(**config), clock=reactor
        )
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        return factory, port.getHost().port

    def lost(self, protocol: Server, timeout: float) -> Deferred[Server]:
        return protocol.lost.addTimeout(timeout, reactor)

    def cleanUp(self, *peers: Peer) -> None:
        for peer in peers:
            if peer.transport is not None and peer.reason is None:
                self.addCleanup(lambda p=peer: p.transport.abortConnection())


class Trickle:
    """
    Write C{chunk} bytes every C{period} seconds, C{count} times, then
    close cleanly.
    """

    def __init__(self, protocol: Server, chunk: int, count: int, period: float) -> None:
        self.protocol, self.chunk, self.left = protocol, chunk, count
        self.call = task.LoopingCall(self.tick)
        self.call.clock = reactor
        self.call.start(period)
        protocol.stops.append(lambda: self.call.running and self.call.stop())

    def tick(self) -> None:
        transport = self.protocol.transport
        if transport is None or self.protocol.lostAt is not None:
            self.call.stop()
            return
        if self.left == 0:
            self.call.stop()
            transport.loseConnection()
            return
        self.left -= 1
        transport.write(b"d" * self.chunk)


class ProgressTests(Base):
    """
    The three shapes of issue 10 item 3.
    """

    @inlineCallbacks
    def download(self, countOutbound: bool) -> Any:
        factory, port = self.listen(
            idle=0.4, checkInterval=0.1, countOutbound=countOutbound
        )
        factory.onMade = lambda protocol: Trickle(protocol, 1000, 12, 0.1)
        peer = yield connectPeer(port)
        self.cleanUp(peer)
        (server,) = factory.made
        yield self.lost(server, 10)
        yield peer.whenLost(10)
        return server, peer

    @inlineCallbacks
    def test_downloadWithCountOutbound(self) -> Any:
        """
        A 1.2 s download to a peer that reads and sends nothing is not cut
        at idle (0.4 s) when outbound bytes count.
        """
        server, peer = yield self.download(True)
        self.assertIsNone(server.heartbeatCloseReason)
        self.assertEqual(len(peer.received), 12000)
        self.assertTrue(peer.reason.check(ConnectionDone))

    @inlineCallbacks
    def test_downloadCutByDefault(self) -> Any:
        """
        By default only received bytes count: the download is cut at idle.
        """
        server, peer = yield self.download(False)
        self.assertEqual(server.heartbeatCloseReason, "idle")
        self.assertLess(len(peer.received), 12000)

    @inlineCallbacks
    def test_pausedProducerSlowReader(self) -> Any:
        """
        A streaming producer paused for longer than idle, feeding a slow
        but alive reader, is not closed while bytes keep leaving.
        """
        factory, port = self.listen(idle=0.5, checkInterval=0.1, countOutbound=True)
        size = 128 * 1024

        @implementer(IPushProducer)
        class Once:
            def __init__(self, protocol: Server) -> None:
                self.protocol = protocol
                self.pauses = 0
                protocol.transport.registerProducer(self, True)  # type: ignore[union-attr]
                protocol.transport.write(b"p" * size)  # type: ignore[union-attr]

            def pauseProducing(self) -> None:
                self.pauses += 1

            def resumeProducing(self) -> None:
                transport = self.protocol.transport
                assert transport is not None
                transport.unregisterProducer()
                transport.loseConnection()

            def stopProducing(self) -> None:
                pass

        producers: list[Once] = []
        factory.onMade = lambda protocol: producers.append(Once(protocol))
        peer = connectSmall(port, OneRead(), paused=True)
        self.cleanUp(peer)

        def readABit() -> None:
            # Read once every 50 ms: slow, but alive.
            if peer.transport is not None and peer.reason is None:
                peer.transport.resumeProducing()  # type: ignore[attr-defined]

        reader = task.LoopingCall(readABit)
        reader.clock = reactor
        reader.start(0.05)
        self.addCleanup(lambda: reader.running and reader.stop())
        yield peer.whenLost(15)
        (server,) = factory.made
        self.assertEqual(producers[0].pauses, 1)
        self.assertIsNone(server.heartbeatCloseReason)
        self.assertEqual(len(peer.received), size)
        # The transfer outlasted idle: without progress counting it would
        # have been cut.
        assert server.lostAt is not None and peer.madeAt is not None
        self.assertGreater(server.lostAt - peer.madeAt, 0.5)

    @inlineCallbacks
    def test_writingIntoANonReader(self) -> Any:
        """
        write() calls into a peer that never reads do not keep the
        connection: it is closed at idle (and aborted after closeGrace).
        """
        factory, port = self.listen(
            idle=0.4, checkInterval=0.1, countOutbound=True, closeGrace=0.2
        )
        factory.onMade = lambda protocol: Trickle(protocol, 4096, 10**6, 0.02)
        peer = connectSmall(port, Peer(), paused=True)
        self.cleanUp(peer)
        yield factory.whenMade(1)
        (server,) = factory.made
        yield self.lost(server, 10)
        self.assertEqual(server.heartbeatCloseReason, "idle")
        assert server.reason is not None
        self.assertEqual(server.reason.type.__name__, "ConnectionAborted")


class BoundTests(Base):
    """
    Bounded unsent output (issue 11 item 4).
    """

    @inlineCallbacks
    def test_slowReaderBoundedThenAborted(self) -> Any:
        """
        An echo to a peer that sends and never reads: reading from it
        stops above the limit, the unsent bytes stay under the limit plus
        one read's worth, and it is aborted after the grace with reason
        C{slow reader}; a well-behaved peer of the same server is unaffected.
        """
        factory, port = self.listen(idle=30)
        limit = 128 * 1024
        highest = [0]

        def made(protocol: Server) -> None:
            protocol.path = installWritePath(
                protocol, reactor, maxUnsent=limit, grace=0.5
            )

        def echo(protocol: Server, data: bytes) -> None:
            assert protocol.transport is not None and protocol.path is not None
            protocol.transport.write(data)
            highest[0] = max(highest[0], protocol.path.unsent())

        factory.onMade, factory.onData = made, echo
        good = yield connectPeer(port)
        self.cleanUp(good)
        bad = connectSmall(port, Peer(), paused=True)
        self.cleanUp(bad)
        assert bad.transport is not None
        bad.transport.write(b"b" * (4 * 1024 * 1024))
        yield factory.whenMade(2)
        slow = factory.made[1]
        yield self.lost(slow, 5)
        self.assertEqual(slow.writeCloseReason, "slow reader")
        assert slow.reason is not None
        self.assertEqual(slow.reason.type.__name__, "ConnectionAborted")
        self.assertGreater(highest[0], limit)  # it did go above
        self.assertLessEqual(highest[0], limit + 65536)
        good.send(b"still here")
        yield good.expect(b"still here")
        self.assertIsNone(good.reason)
        self.assertIsNone(factory.made[0].writeCloseReason)
