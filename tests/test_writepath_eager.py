"""
Eager writes over real loopback sockets: the peer receives the same bytes
and sees the same close as without them.  L{EagerTCPTests} runs under the
suite's reactor and, in L{ReactorsTests}, under each reactor the project
supports (epoll, poll, select, asyncio), one trial subprocess each.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import sys
import tempfile
from typing import Any

from twisted.internet import endpoints, reactor, task
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from heartbeat_twisted import HeartbeatConfig, HeartbeatFactoryMixin, HeartbeatMixin
from heartbeat_twisted._writepath import (
    WritePath,
    installWritePath,
    tcpConnectionUnder,
)

from ._peers import Peer
from ._tls import tlsOptions
from ._twistd import ChildProcess

SMALL = 4096


def chunk(index: int, size: int) -> bytes:
    """
    C{size} bytes that say which write they came from.
    """
    return bytes([index % 251]) * size


@implementer(IHalfCloseableProtocol)
class Server(HeartbeatMixin, Protocol):
    """
    Puts the write path on with eager sends (and the bound, if the factory
    says), then runs the test's script.
    """

    path: WritePath | None = None

    def connectionMade(self) -> None:
        connection = tcpConnectionUnder(self.transport)
        assert connection is not None
        connection.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL)
        factory: Any = self.factory
        self.path = installWritePath(
            self, reactor, eager=factory.eager, maxUnsent=factory.maxUnsent, grace=5
        )
        self.lost: Deferred[Server] = Deferred()
        self.reason: Failure | None = None
        self.eagerly: list[bool] = []
        factory.script(self)

    def write(self, data: bytes) -> None:
        """
        Write, noting whether it all left at once.
        """
        assert self.transport is not None and self.path is not None
        self.transport.write(data)
        self.eagerly.append(self.path.unsent() == 0)

    def dataReceived(self, data: bytes) -> None:
        self.factory.onData(self, data)  # type: ignore[attr-defined]

    def readConnectionLost(self) -> None:
        self.factory.onEOF(self)  # type: ignore[attr-defined]

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.reason = reason
        self.lost.callback(self)


class ServerFactory(HeartbeatFactoryMixin, Factory):
    protocol = Server
    eager = True
    maxUnsent: int | None = None

    def __init__(self, script: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = script
        self.made: Deferred[Server] = Deferred()
        self.onData: Any = lambda protocol, data: None
        self.onEOF: Any = lambda protocol: protocol.transport.loseConnection()

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        reactor.callLater(0, lambda: self.made.called or self.made.callback(protocol))  # type: ignore[attr-defined]
        return protocol


class HalfClosingPeer(Peer):
    def readConnectionLost(self) -> None:
        self.eof = True
        self.changed()

    def writeConnectionLost(self) -> None:
        pass


implementer(IHalfCloseableProtocol)(HalfClosingPeer)


class EagerTCPTests(TestCase):
    timeout = 30

    def listen(
        self, script: Any, tls: Any = None, **config: Any
    ) -> Deferred[tuple[ServerFactory, Any]]:
        factory = ServerFactory(
            script,
            heartbeatConfig=HeartbeatConfig(**(config or {"idle": 30})),
            clock=reactor,
        )
        if tls is None:
            endpoint: Any = endpoints.TCP4ServerEndpoint(
                reactor, 0, interface="127.0.0.1"
            )
        else:
            endpoint = endpoints.SSL4ServerEndpoint(
                reactor, 0, tls, interface="127.0.0.1"
            )
        d = endpoint.listen(factory)

        def listening(port: Any) -> tuple[ServerFactory, Any]:
            self.addCleanup(port.stopListening)
            return factory, port.getHost().port

        return d.addCallback(listening)

    def connect(self, port: int, peer: Peer | None = None, tls: Any = None) -> Any:
        peer = peer or Peer()
        if tls is None:
            endpoint: Any = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        else:
            endpoint = endpoints.SSL4ClientEndpoint(reactor, "127.0.0.1", port, tls)
        d = endpoints.connectProtocol(endpoint, peer)

        def connected(peer: Peer) -> Peer:
            def close() -> Any:
                if peer.reason is None and peer.transport is not None:
                    peer.transport.abortConnection()  # type: ignore[attr-defined]
                    return peer.whenLost()
                return None

            self.addCleanup(close)
            return peer

        return d.addCallback(connected)

    @inlineCallbacks
    def test_byteOrderAcrossEagerAndBuffered(self) -> Any:
        """
        Small writes go at once; a large one is sent in part (the kernel
        buffer fills) and the writes behind it wait their turn; once
        drained, writes go at once again; the peer sees every byte in
        order, and the close after them.
        """
        expected: list[bytes] = []

        def script(server: Server) -> None:
            for index, size in enumerate([5, 7, 1 << 20, 3, 64 << 10, 9]):
                expected.append(chunk(index, size))
                server.write(expected[-1])

        factory, port = yield self.listen(script)
        factory.onData = lambda server, data: (
            server.write(data),
            expected.append(data),
            server.transport.loseConnection(),
        )
        peer = yield self.connect(port)
        server = yield factory.made
        self.assertEqual(server.eagerly, [True, True, False, False, False, False])
        yield peer.expect(b"".join(expected[:6]), timeout=10)
        self.assertEqual(server.path.unsent(), 0)
        peer.send(b"after the drain")
        yield peer.whenLost()
        self.assertEqual(server.eagerly[-1], True)
        self.assertEqual(peer.received, b"".join(expected))
        self.assertTrue(peer.reason.check(ConnectionDone))
        self.assertEqual(server.path.bytesSent, len(peer.received))

    @inlineCallbacks
    def test_streamingProducerPausedAndResumed(self) -> Any:
        """
        A registered streaming producer is paused when the buffer fills
        and resumed when it drains, as without eager sends.
        """
        total = 2 << 20

        @implementer(IPushProducer)
        class Pump:
            def __init__(self, server: Server) -> None:
                self.server, self.sent, self.paused = server, 0, False
                self.events: list[str] = []
                server.transport.registerProducer(self, True)  # type: ignore[union-attr]
                self.call = reactor.callLater(0, self.pump)  # type: ignore[attr-defined]

            def pump(self) -> None:
                while not self.paused and self.sent < total:
                    self.server.write(chunk(self.sent // 16384, 16384))
                    self.sent += 16384
                if self.sent >= total:
                    transport = self.server.transport
                    assert transport is not None
                    transport.unregisterProducer()
                    transport.loseConnection()

            def pauseProducing(self) -> None:
                self.paused = True
                self.events.append("pause")

            def resumeProducing(self) -> None:
                self.paused = False
                self.events.append("resume")
                self.pump()

            def stopProducing(self) -> None:
                self.events.append("stop")

        pumps: list[Pump] = []
        _factory, port = yield self.listen(lambda server: pumps.append(Pump(server)))
        peer = yield self.connect(port)
        yield peer.whenLost(20)
        (pump,) = pumps
        self.assertEqual(len(peer.received), total)
        self.assertEqual(
            peer.received, b"".join(chunk(i, 16384) for i in range(total // 16384))
        )
        self.assertIn("pause", pump.events)
        self.assertIn("resume", pump.events)
        self.assertGreater(sum(pumps[0].server.eagerly), 0)

    @inlineCallbacks
    def test_loseConnectionRightAfterEagerWrites(self) -> Any:
        def script(server: Server) -> None:
            for index in range(100):
                server.write(chunk(index, 100))
            server.write(chunk(100, 300000))
            server.transport.loseConnection()  # type: ignore[union-attr]

        _factory, port = yield self.listen(script)
        peer = yield self.connect(port)
        yield peer.whenLost(10)
        expected = b"".join(chunk(i, 100) for i in range(100)) + chunk(100, 300000)
        self.assertEqual(peer.received, expected)
        self.assertTrue(peer.reason.check(ConnectionDone))

    @inlineCallbacks
    def test_halfClose(self) -> Any:
        """
        The peer half-closes; the server answers eagerly, half-closes in
        turn, and the peer gets every byte then the end.
        """

        def eof(server: Server) -> None:
            server.write(b"late reply ")
            server.write(chunk(1, 200000))
            server.transport.loseWriteConnection()  # type: ignore[union-attr]

        factory, port = yield self.listen(lambda server: None)
        factory.onEOF = eof
        peer = yield self.connect(port, HalfClosingPeer())
        server = yield factory.made
        peer.transport.loseWriteConnection()
        yield peer.waitUntil(lambda: getattr(peer, "eof", False), 10, "end")
        self.assertEqual(peer.received, b"late reply " + chunk(1, 200000))
        self.assertEqual(server.eagerly[0], True)
        server.transport.loseConnection()
        yield server.lost

    @inlineCallbacks
    def test_peerResetMidWrite(self) -> Any:
        """
        A peer that resets while the server writes: write() never raises,
        the server hears of a lost connection once.
        """
        writer: list[Any] = []

        def script(server: Server) -> None:
            def tick() -> None:
                if server.reason is None:
                    server.transport.write(chunk(2, 50000))  # type: ignore[union-attr]

            call = task.LoopingCall(tick)
            call.clock = reactor
            call.start(0.005)
            writer.append(call)

        factory, port = yield self.listen(script)
        peer = yield self.connect(port)
        server = yield factory.made
        yield peer.waitUntil(lambda: len(peer.received) > 100000, 10, "data")
        handle = peer.transport.getHandle()
        handle.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.transport.abortConnection()
        yield server.lost.addTimeout(10, reactor)
        writer[0].stop()
        self.assertTrue(server.reason.check(ConnectionLost, ConnectionDone))
        self.assertEqual(self.flushLoggedErrors(), [])

    @inlineCallbacks
    def test_TLS(self) -> Any:
        """
        Over TLS the ciphertext is sent eagerly below the TLS layer; the
        peer gets the same plaintext and a clean close.
        """
        serverOptions, clientOptions = tlsOptions()
        expected = [chunk(i, size) for i, size in enumerate([10, 70000, 5, 1 << 19])]

        def answer(server: Server, data: bytes) -> None:
            for each in expected:
                server.write(each)
            server.transport.loseConnection()  # type: ignore[union-attr]

        factory, port = yield self.listen(lambda server: None, serverOptions)
        factory.onData = answer
        peer = yield self.connect(port, tls=clientOptions)
        peer.send(b"go")
        yield peer.whenLost(10)
        server = yield factory.made
        self.assertEqual(peer.received, b"".join(expected))
        self.assertTrue(peer.reason.check(ConnectionDone))
        self.assertTrue(server.path.eager)
        self.assertGreater(server.path.bytesSent, len(peer.received))  # + TLS

    @inlineCallbacks
    def test_withProgressAndBound(self) -> Any:
        """
        Eager sends, progress counting and the bound together: a download
        longer than idle to a reader is neither cut nor bounded away, and
        arrives whole.
        """
        ServerFactory.maxUnsent = 256 << 10
        self.addCleanup(setattr, ServerFactory, "maxUnsent", None)

        def script(server: Server) -> None:
            sent = [0]

            def tick() -> None:
                if sent[0] == 12:
                    call.stop()
                    server.transport.loseConnection()  # type: ignore[union-attr]
                    return
                server.write(chunk(sent[0], 30000))
                sent[0] += 1

            call = task.LoopingCall(tick)
            call.clock = reactor
            call.start(0.05)

        factory, port = yield self.listen(
            script, idle=0.3, checkInterval=0.05, countOutbound=True
        )
        peer = yield self.connect(port)
        yield peer.whenLost(10)
        server = yield factory.made
        self.assertEqual(peer.received, b"".join(chunk(i, 30000) for i in range(12)))
        self.assertIsNone(server.heartbeatCloseReason)
        self.assertIsNone(server.path.closeReason)
        self.assertTrue(peer.reason.check(ConnectionDone))


REACTORS = ("epoll", "poll", "select", "asyncio")


class ReactorsTests(TestCase):
    """
    L{EagerTCPTests} under each supported reactor, in a trial subprocess.
    """

    timeout = 120

    @inlineCallbacks
    def test_everyReactor(self) -> Any:
        """
        The others run side by side; the suite's own reactor ran the class
        already.
        """
        here = type(reactor).__module__.rsplit(".", 1)[-1]
        others = [name for name in REACTORS if f"{name}reactor" != here]
        self.assertEqual(len(others), len(REACTORS) - 1, here)
        work = tempfile.mkdtemp(prefix="hbt-eager-")
        self.addCleanup(shutil.rmtree, work, True)
        children = {
            name: ChildProcess(
                self,
                [
                    sys.executable,
                    "-c",
                    "from twisted.scripts.trial import run; run()",
                    "--temp-directory",
                    os.path.join(work, name),
                    f"--reactor={name}",
                    "tests.test_writepath_eager.EagerTCPTests",
                ],
                label=name,
            )
            for name in others
        }
        for name, child in children.items():
            code = yield child.whenEnded(100)
            output = child.output(1) + child.output(2)
            self.assertEqual(code, 0, f"{name}: {output}")
            self.assertIn("PASSED (successes=7)", output, name)
