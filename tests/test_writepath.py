"""
Unit tests of the write path: a real L{tcp.Connection} over a fake kernel
socket (tests/_fakekernel.py), in simulated time.
"""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet import error
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from heartbeat_twisted import HeartbeatConfig, HeartbeatFactoryMixin, HeartbeatMixin
from heartbeat_twisted._writepath import (
    EagerWriteMixin,
    installWritePath,
    observeWrites,
    tcpConnectionUnder,
    writePathFor,
)

from ._fakekernel import Recorder, connected


@implementer(IPushProducer)
class Producer:
    def __init__(self) -> None:
        self.events: list[str] = []

    def pauseProducing(self) -> None:
        self.events.append("pause")

    def resumeProducing(self) -> None:
        self.events.append("resume")

    def stopProducing(self) -> None:
        self.events.append("stop")


class ProgressTests(SynchronousTestCase):
    def test_countsWhatTheKernelTakes(self) -> None:
        """
        Progress is what Twisted's sends hand to the kernel, not what was
        written; unsent() is what is still buffered.
        """
        kernel = connected(room=3)
        path = writePathFor(kernel.connection)
        assert path is not None
        counts: list[int] = []
        path.observeProgress(counts.append)
        kernel.connection.write(b"hello")
        kernel.connection.writeSequence([b" ", b"world"])
        self.assertEqual((counts, path.unsent()), ([], 11))
        kernel.turn()
        self.assertEqual((counts, path.unsent()), ([3], 8))
        kernel.turn()  # no room: nothing leaves
        self.assertEqual(counts, [3])
        kernel.socket.drain(100)
        kernel.turn()
        self.assertEqual((counts, path.unsent(), path.bytesSent), ([3, 8], 0, 11))
        self.assertEqual(kernel.socket.sent, b"hello world")
        self.assertFalse(kernel.writing())

    def test_stopObserving(self) -> None:
        kernel = connected()
        path = writePathFor(kernel.connection)
        assert path is not None
        counts: list[int] = []
        stop = path.observeProgress(counts.append)
        stop()
        stop()
        kernel.connection.write(b"x")
        kernel.turn()
        self.assertEqual((counts, path.bytesSent), ([], 1))

    def test_oneWritePathPerConnection(self) -> None:
        kernel = connected()
        path = writePathFor(kernel.connection)
        self.assertIs(writePathFor(kernel.connection), path)

    def test_notTCP(self) -> None:
        """
        A transport not carried by a Twisted TCP connection has no write
        path.
        """
        self.assertIsNone(writePathFor(StringTransport()))
        self.assertIsNone(tcpConnectionUnder(object()))

    def test_underAWrapper(self) -> None:
        kernel = connected()

        class Wrapper:
            transport = kernel.connection

        self.assertIs(tcpConnectionUnder(Wrapper()), kernel.connection)

    def test_detachedWhenLost(self) -> None:
        """
        The connection's own methods are back once it is lost.
        """
        kernel = connected()
        path = writePathFor(kernel.connection)
        assert path is not None
        path.eager = True
        own = vars(kernel.connection)
        for name in ("write", "writeSequence", "writeSomeData", "connectionLost"):
            self.assertIn(name, own)
        kernel.connection.connectionLost(Failure(error.ConnectionDone()))
        for name in ("write", "writeSequence", "writeSomeData", "connectionLost"):
            self.assertNotIn(name, own)
        self.assertFalse(path.eager)
        self.assertIsInstance(kernel.protocol.lost.value, error.ConnectionDone)  # type: ignore[attr-defined]

    def test_withWriteObservers(self) -> None:
        """
        Write-call observers and the write path share one shadow, set up
        and stopped in any order.
        """
        kernel = connected()
        calls: list[int] = []
        stopObserving = observeWrites(kernel.connection, lambda: calls.append(1))
        assert stopObserving is not None
        path = writePathFor(kernel.connection)
        assert path is not None
        path.eager = True
        kernel.connection.write(b"ab")
        self.assertEqual((calls, kernel.socket.sent), ([1], b"ab"))
        stopObserving()
        kernel.connection.write(b"c")
        self.assertEqual((calls, kernel.socket.sent), ([1], b"abc"))
        path.detach()
        self.assertNotIn("write", vars(kernel.connection))


class Idle(HeartbeatMixin, Recorder):
    pass


class IdleFactory(HeartbeatFactoryMixin, Factory):
    protocol = Idle


class CountOutboundTests(SynchronousTestCase):
    """
    C{countOutbound}: bytes that leave the process are activity,
    C{write()} calls are not.
    """

    def connect(self, countOutbound: bool, room: int) -> tuple[Any, Clock]:
        clock = Clock()
        factory = IdleFactory(
            heartbeatConfig=HeartbeatConfig(
                idle=2, checkInterval=1, countOutbound=countOutbound, closeGrace=1
            ),
            clock=clock,
        )
        protocol = factory.buildProtocol(None)
        assert protocol is not None
        return connected(protocol, room), clock

    def test_downloadToAReader(self) -> None:
        """
        A peer that reads but sends nothing stays while bytes leave.
        """
        kernel, clock = self.connect(True, room=10)
        for _ in range(10):
            kernel.connection.write(b"x" * 10)
            kernel.turn()
            kernel.socket.drain(10)
            clock.advance(1)
        self.assertIsNone(kernel.protocol.lost)
        self.assertEqual(len(kernel.socket.sent), 100)
        clock.advance(3)
        self.assertIsNotNone(kernel.protocol.heartbeatCloseReason)

    def test_downloadCutByDefault(self) -> None:
        """
        Without countOutbound only received bytes count: the download is
        cut at idle.
        """
        kernel, clock = self.connect(False, room=1000)
        for _ in range(2):
            kernel.connection.write(b"x" * 10)
            kernel.turn()
            clock.advance(1)
        self.assertEqual(kernel.protocol.heartbeatCloseReason, "idle")

    def test_writesToANonReaderAreNotActivity(self) -> None:
        """
        write() calls into a full send buffer do not keep the connection.
        """
        kernel, clock = self.connect(True, room=0)
        for _ in range(2):
            kernel.connection.write(b"x" * 10)
            kernel.turn()
            clock.advance(1)
        self.assertEqual(kernel.protocol.heartbeatCloseReason, "idle")
        clock.advance(1)  # closeGrace: aborted, nothing was flushed
        kernel.reactor.advance(0)
        self.assertIsInstance(kernel.protocol.lost.value, error.ConnectionAborted)

    def test_notTCPCountsNothing(self) -> None:
        clock = Clock()
        factory = IdleFactory(
            heartbeatConfig=HeartbeatConfig(
                idle=2, checkInterval=1, countOutbound=True
            ),
            clock=clock,
        )
        protocol = factory.buildProtocol(None)
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        clock.advance(1)
        transport.write(b"x")
        clock.advance(1)
        self.assertEqual(protocol.heartbeatCloseReason, "idle")  # type: ignore[attr-defined]


class BoundTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.kernel = connected(room=0)
        self.protocol: Any = self.kernel.protocol
        path = installWritePath(
            self.protocol, self.clock, eager=False, maxUnsent=100, grace=5
        )
        assert path is not None
        self.path = path

    def test_pauseReadingAboveResumeAtLowWater(self) -> None:
        connection = self.kernel.connection
        connection.write(b"x" * 100)
        self.assertTrue(self.kernel.reading())
        connection.write(b"x")
        self.assertFalse(self.kernel.reading())
        self.kernel.socket.drain(50)
        self.kernel.turn()  # 51 unsent: above low water (50)
        self.assertFalse(self.kernel.reading())
        self.kernel.socket.drain(1)
        self.kernel.turn()
        self.assertTrue(self.kernel.reading())
        self.clock.advance(10)
        self.assertIsNone(self.protocol.lost)

    def test_slowReaderAbortedAfterGrace(self) -> None:
        self.kernel.connection.write(b"x" * 101)
        self.clock.advance(4.9)
        self.assertIsNone(getattr(self.protocol, "writeCloseReason", None))
        self.clock.advance(0.1)
        self.assertEqual(self.protocol.writeCloseReason, "slow reader")
        self.assertEqual(self.path.closeReason, "slow reader")
        self.kernel.reactor.advance(0)
        self.assertIsInstance(self.protocol.lost.value, error.ConnectionAborted)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_graceTimerGoesWithTheConnection(self) -> None:
        self.kernel.connection.write(b"x" * 101)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.kernel.connection.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_badBounds(self) -> None:
        with self.assertRaises(ValueError) as caught:
            self.path.bound(0, 1, self.clock)
        self.assertEqual(str(caught.exception), "'maxUnsent' must be >= 1: 0")
        with self.assertRaises(ValueError):
            self.path.bound(10, -1, self.clock)
        with self.assertRaises(ValueError):
            self.path.bound(10, 1, self.clock, lowWater=10)

    def test_notTCP(self) -> None:
        protocol = Protocol()
        protocol.makeConnection(StringTransport())
        self.assertIsNone(installWritePath(protocol, self.clock, maxUnsent=10))


class EagerTests(SynchronousTestCase):
    def eager(self, room: int = 1 << 30) -> Any:
        kernel = connected(room=room)
        path = writePathFor(kernel.connection)
        assert path is not None
        path.eager = True
        self.assertTrue(path.eager)
        return kernel

    def test_sentAtOnce(self) -> None:
        kernel = self.eager()
        kernel.connection.write(b"pong\n")
        kernel.connection.writeSequence([b"a", b"b"])
        self.assertEqual(kernel.socket.sent, b"pong\nab")
        self.assertFalse(kernel.writing())

    def test_partialSendBuffersTheRest(self) -> None:
        kernel = self.eager(room=3)
        kernel.connection.write(b"hello")
        self.assertEqual(kernel.socket.sent, b"hel")
        self.assertTrue(kernel.writing())
        kernel.connection.write(b"!")  # something unsent: buffered, in order
        self.assertEqual(kernel.socket.sent, b"hel")
        kernel.socket.drain(10)
        kernel.turn()
        self.assertEqual(kernel.socket.sent, b"hello!")
        kernel.connection.write(b"?")
        self.assertEqual(kernel.socket.sent, b"hello!?")

    def test_fullKernelBuffer(self) -> None:
        kernel = self.eager(room=0)
        kernel.connection.writeSequence([b"a", b"b"])
        self.assertEqual((kernel.socket.sent, kernel.socket.sends), (b"", 1))
        kernel.socket.drain(2)
        kernel.turn()
        self.assertEqual(kernel.socket.sent, b"ab")

    def test_closingTakesTwistedsPath(self) -> None:
        kernel = self.eager()
        kernel.connection.loseConnection()
        kernel.connection.write(b"late")
        self.assertEqual(kernel.socket.sent, b"")
        self.assertIsNotNone(kernel.turn())
        self.assertEqual(kernel.socket.sent, b"late")

    def test_halfCloseTakesTwistedsPath(self) -> None:
        kernel = self.eager()
        kernel.connection.loseWriteConnection()
        kernel.connection.write(b"late")
        self.assertEqual(kernel.socket.sent, b"")

    def test_pullProducerTakesTwistedsPath(self) -> None:
        """
        Twisted asks a pull producer for more when its buffer drains: its
        writes stay on Twisted's path.
        """
        kernel = self.eager()
        producer = Producer()
        kernel.connection.registerProducer(producer, False)
        kernel.connection.write(b"chunk")
        self.assertEqual(kernel.socket.sent, b"")
        kernel.turn()
        self.assertEqual(kernel.socket.sent, b"chunk")
        self.assertEqual(producer.events, ["resume", "resume"])

    def test_streamingProducerPausedAndResumed(self) -> None:
        kernel = self.eager(room=10)
        kernel.connection.bufferSize = 20
        producer = Producer()
        kernel.connection.registerProducer(producer, True)
        kernel.connection.write(b"x" * 40)  # 10 sent, 30 unsent > 20
        self.assertEqual(producer.events, ["pause"])
        kernel.connection.write(b"y")  # a paused producer: Twisted's path
        self.assertEqual(producer.events, ["pause", "pause"])  # as Twisted does
        kernel.socket.drain(100)
        kernel.turn()
        self.assertEqual(producer.events, ["pause", "pause", "resume"])
        self.assertEqual(kernel.socket.sent, b"x" * 40 + b"y")

    def test_sendErrorLeftToTwisted(self) -> None:
        """
        A reset peer: write() does not raise, Twisted's own send meets the
        error and loses the connection as it would have.
        """
        kernel = self.eager()
        kernel.socket.error = ConnectionResetError(errno.ECONNRESET, "reset")
        kernel.connection.write(b"data")
        self.assertFalse(kernel.reading())
        self.assertTrue(kernel.writing())
        kernel.turn()
        self.assertIsInstance(kernel.protocol.lost.value, error.ConnectionLost)

    def test_noBuffersIsNotAnError(self) -> None:
        """
        C{ENOBUFS}, which Twisted's own send takes as nothing sent, leaves
        the connection reading.
        """
        kernel = self.eager()
        kernel.socket.error = OSError(errno.ENOBUFS, "no buffer space")
        kernel.connection.write(b"data")
        self.assertTrue(kernel.reading())
        self.assertTrue(kernel.writing())
        kernel.socket.error = None
        kernel.turn()
        self.assertEqual(kernel.socket.sent, b"data")
        self.assertIsNone(kernel.protocol.lost)

    def test_startTLSTakesTwistedsPath(self) -> None:
        kernel = self.eager()
        kernel.connection.TLS = True  # what startTLS sets
        kernel.connection.protocol = Protocol()
        written: list[bytes] = []
        kernel.connection.protocol.write = written.append  # type: ignore[attr-defined]
        kernel.connection.write(b"secret")
        self.assertEqual((written, kernel.socket.sent), ([b"secret"], b""))

    def test_notBytesRaisesAsTwistedDoes(self) -> None:
        kernel = self.eager()
        self.assertRaises(TypeError, kernel.connection.write, "text")
        self.assertRaises(TypeError, kernel.connection.writeSequence, ["text"])

    def test_overriddenWriteNotBypassed(self) -> None:
        """
        A subclass that overrides a write method keeps its own path.
        """
        from twisted.internet import tcp

        class Own(tcp.Connection):
            def writeSomeData(self, data: bytes) -> Any:
                return super().writeSomeData(data)

        kernel = connected(room=100)
        kernel.connection.__class__ = Own
        path = writePathFor(kernel.connection)
        assert path is not None
        path.eager = True
        self.assertFalse(path.eager)

    def test_mixin(self) -> None:
        class Eager(EagerWriteMixin, Recorder):
            pass

        class Lazy(Eager):
            eagerWrites = False

        kernel = connected(Eager())
        kernel.connection.write(b"now")
        self.assertEqual(kernel.socket.sent, b"now")
        lazy = connected(Lazy())
        lazy.connection.write(b"later")
        self.assertEqual(lazy.socket.sent, b"")
        Eager().makeConnection(StringTransport())  # not TCP: no error

    def test_boundedAndEager(self) -> None:
        """
        Bounded output does not turn eager sends off.
        """
        clock = Clock()
        kernel = connected(room=5)
        path = installWritePath(kernel.protocol, clock, maxUnsent=10, grace=1)
        assert path is not None
        kernel.connection.write(b"abc")
        self.assertEqual(kernel.socket.sent, b"abc")
        kernel.connection.write(b"x" * 13)
        self.assertEqual(path.unsent(), 11)
        self.assertFalse(kernel.reading())
