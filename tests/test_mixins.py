"""
Tests for L{HeartbeatMixin} and L{HeartbeatFactoryMixin}, in simulated time.
"""

from __future__ import annotations

import itertools
from typing import Any

from twisted.internet.error import ConnectionAborted
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import (
    HeartbeatConfig,
    HeartbeatFactoryMixin,
    HeartbeatMixin,
)
from heartbeat_twisted.testing import HeartbeatStringTransport, connect

from ._readme import runExample


class Recording(HeartbeatMixin, Protocol):
    """
    Calls up; records what it gets.
    """

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lost: list[Failure] = []
        self.made = 0

    def connectionMade(self) -> None:
        self.made += 1

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.lost.append(reason)


class NoCallUp(HeartbeatMixin, LineReceiver):
    """
    Overrides dataReceived and connectionLost without calling up, and puts
    the mixin where the MRO would hide it.
    """

    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason: Any = None) -> None:
        pass


class MixinLast(LineReceiver, HeartbeatMixin):
    """
    The mixin placed after the protocol base.
    """


class Subclassed(Recording):
    """
    A subclass of a heartbeat protocol that overrides dataReceived again.
    """

    def dataReceived(self, data: bytes) -> None:
        self.received.append(b"sub:" + data)


def factoryFor(protocol: type[Protocol], clock: Clock, **config: Any) -> Any:
    class TestFactory(HeartbeatFactoryMixin, Factory):
        pass

    TestFactory.protocol = protocol
    return TestFactory(heartbeatConfig=HeartbeatConfig(**config), clock=clock)


class ActivityTests(SynchronousTestCase):
    def test_chunkStoresTheSharedStamp(self) -> None:
        """
        A received chunk records the tracker's stamp (the time of the sweep
        due next): the same object for every connection active before that
        sweep, so that a chunk reads no clock and allocates nothing.
        """
        clock = Clock()
        factory = factoryFor(Recording, clock, idle=5, checkInterval=1)
        first, second = connect(factory), connect(factory)
        tracker = first.protocol.heartbeatTracker()
        clock.advance(0.5)
        first.receive(b"a")
        second.receive(b"b")
        self.assertIs(first.protocol._heartbeatEntry.last, tracker.stamp)
        self.assertIs(second.protocol._heartbeatEntry.last, tracker.stamp)
        self.assertEqual(tracker.stamp, 1.0)
        clock.advance(0.5)
        self.assertEqual(tracker.stamp, 2.0)
        self.assertEqual(first.protocol._heartbeatEntry.last.end, 1.0)

    def test_receivedBytesCount(self) -> None:
        for protocol in (Recording, NoCallUp, MixinLast, Subclassed):
            clock = Clock()
            factory = factoryFor(protocol, clock, idle=5, checkInterval=1)
            connection = connect(factory)
            clock.pump([1] * 2 + [0.5])
            connection.receive(b"hello\n")  # t=2.5: recorded as 3, the next sweep
            clock.pump([0.5] + [1] * 4)  # t=7
            self.assertFalse(connection.closed, protocol)
            clock.advance(1)  # t=8 = 3 + idle
            self.assertTrue(connection.closed, protocol)
            self.assertEqual(connection.protocol.heartbeatCloseReason, "idle")
            self.assertEqual(len(factory.heartbeatTracker), 0, protocol)
            self.assertFalse(factory.heartbeatTracker.running, protocol)

    def test_twoInstanceAttributes(self) -> None:
        """
        The heartbeat sets two attributes on a tracked connection, the
        entry and the tracker: a third made Python grow every connection's
        attribute storage by 16 bytes more.
        """
        clock = Clock()
        factory = factoryFor(Recording, clock, idle=5, checkInterval=1)
        connection = connect(factory)
        names = sorted(
            name for name in vars(connection.protocol) if "heartbeat" in name
        )
        self.assertEqual(names, ["_heartbeatEntry", "_heartbeatTracker"])

    def test_subclassHooksDoNotHideData(self) -> None:
        clock = Clock()
        connection = connect(factoryFor(Subclassed, clock, idle=5))
        connection.receive(b"x")
        self.assertEqual(connection.protocol.received, [b"sub:x"])
        self.assertEqual(connection.protocol.made, 1)

    def test_sentBytesDoNotCountByDefault(self) -> None:
        clock = Clock()
        connection = connect(factoryFor(Recording, clock, idle=2, checkInterval=1))
        clock.advance(1)
        connection.transport.write(b"tick")
        clock.advance(1)
        self.assertTrue(connection.closed)
        self.assertEqual(connection.transport.value(), b"tick")

    def test_writeCallsDoNotCountWithCountOutbound(self) -> None:
        """
        countOutbound counts bytes that leave the process, not write()
        calls; a StringTransport cannot tell, so nothing outbound counts
        (tests/test_writepath*.py cover real TCP).
        """
        clock = Clock()
        factory = factoryFor(
            Recording, clock, idle=2, checkInterval=1, countOutbound=True
        )
        connection = connect(factory)
        transport = connection.transport
        clock.advance(1)
        transport.write(b"a")
        transport.writeSequence([b"b", b"c"])
        clock.advance(1)
        self.assertTrue(connection.closed)
        self.assertEqual(transport.value(), b"abc")
        self.assertNotIn("write", vars(transport))


class TimedOutTests(SynchronousTestCase):
    def test_closeThenAbortAfterGrace(self) -> None:
        """
        A connection whose close does not complete (the peer stopped
        reading) is aborted closeGrace seconds later.
        """
        clock = Clock()
        factory = factoryFor(Recording, clock, idle=2, checkInterval=1, closeGrace=3)
        connection = connect(factory, lingering=True)
        clock.pump([1, 1])
        self.assertTrue(connection.transport.disconnecting)
        self.assertFalse(connection.closed)
        clock.pump([1, 1])
        self.assertFalse(connection.transport.disconnected)
        clock.advance(1)  # t = 2 + 3
        self.assertTrue(connection.transport.disconnected)
        self.assertTrue(connection.closed)
        self.assertEqual(len(connection.protocol.lost), 1)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_cleanCloseCancelsAbort(self) -> None:
        clock = Clock()
        factory = factoryFor(Recording, clock, idle=2, checkInterval=1, closeGrace=3)
        connection = connect(factory)
        clock.pump([1, 1])
        self.assertTrue(connection.closed)
        self.assertFalse(connection.transport.disconnected)  # not aborted
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_timedOutOnceWhileClosing(self) -> None:
        """
        A lingering close is not timed out again when another idle period
        passes before the abort: it is no longer tracked once closing.
        """
        clock = Clock()
        factory = factoryFor(Recording, clock, idle=1, checkInterval=1, closeGrace=5)
        connection = connect(factory, lingering=True)
        clock.pump([1] * 4)
        self.assertEqual(factory.heartbeatTracker.timedOut, 1)
        self.assertEqual(len(factory.heartbeatTracker), 0)
        # The sweep; the abort is kept by the tracker, not the reactor.
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        self.assertEqual(factory.heartbeatTracker.pendingDeadlines, 1)
        self.assertTrue(connection.transport.disconnecting)
        self.assertFalse(connection.closed)
        clock.pump([1, 1])  # t = 1 + closeGrace
        self.assertTrue(connection.closed)

    def test_overrideKeepsConnectionOpen(self) -> None:
        pinged: list[float] = []

        class Pinging(Recording):
            def heartbeatTimedOut(self) -> None:
                pinged.append(clock.seconds())
                self.transport.write(b"ping\n")

        clock = Clock()
        connection = connect(factoryFor(Pinging, clock, idle=2, checkInterval=1))
        clock.pump([1] * 4 + [0.5])
        connection.receive(b"pong\n")  # t=4.5: recorded as 5, the next sweep
        clock.pump([0.5, 1, 1])
        self.assertEqual(pinged, [2.0, 4.0, 7.0])
        self.assertFalse(connection.closed)
        self.assertEqual(connection.transport.value(), b"ping\n" * 3)

    def test_peerCloseUntracks(self) -> None:
        clock = Clock()
        factory = factoryFor(Recording, clock, idle=2)
        connection = connect(factory)
        self.assertEqual(len(factory.heartbeatTracker), 1)
        connection.peerClosed()
        self.assertEqual(len(factory.heartbeatTracker), 0)
        self.assertIsNone(connection.protocol.heartbeatCloseReason)
        self.assertEqual(clock.getDelayedCalls(), [])


class FactoryTests(SynchronousTestCase):
    def test_oneTrackerForAllConnections(self) -> None:
        clock = Clock()
        factory = factoryFor(Recording, clock, idle=2)
        connections = [connect(factory) for _ in range(3)]
        self.assertEqual(len(factory.heartbeatTracker), 3)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.pump([0.4] * 5)
        self.assertTrue(all(c.closed for c in connections))

    def test_classAttributeConfig(self) -> None:
        class Configured(HeartbeatFactoryMixin, Factory):
            protocol = Recording
            heartbeatConfig = HeartbeatConfig(idle=7)

        self.assertEqual(Configured().heartbeatTracker.config.idle, 7.0)

    def test_missingConfigSaysWhatToDo(self) -> None:
        """
        A factory mixin given no config: the connection is aborted at once
        (never open and untracked), with one line that says how to fix it.
        """

        class Unconfigured(HeartbeatFactoryMixin, Factory):
            protocol = Fresh()

        self.assertRefused(Unconfigured(), "HeartbeatConfig(idle=...)")

    def test_plainFactorySaysWhatToDo(self) -> None:
        """
        Changed by issue 10: a plain factory no longer raises inside the
        reactor's accept; the connection is aborted with one log line.
        """
        self.assertRefused(
            Factory.forProtocol(Fresh()), "heartbeat_twisted.HeartbeatFactoryMixin"
        )

    def assertRefused(self, factory: Any, fix: str) -> None:
        events = logged(self)
        first, second = connect(factory), connect(factory)
        for connection in (first, second):
            self.assertTrue(connection.closed)
            self.assertIsInstance(connection.transport.lost.value, ConnectionAborted)
            self.assertEqual(
                connection.protocol.heartbeatCloseReason, "no heartbeat config"
            )
            self.assertEqual(connection.protocol.made, 1)
        [event] = [e for e in events if "no heartbeat config" in formatEvent(e)]
        self.assertIn(fix, formatEvent(event))
        self.assertIn("heartbeatConfig = HeartbeatConfig(idle=...)", formatEvent(event))


class ClassConfigTests(SynchronousTestCase):
    """
    A protocol configured on its class needs no factory mixin: as little
    code as Twisted's TimeoutMixin, one sweep per clock and config.
    """

    def test_noFactoryMixin(self) -> None:
        class Chat(HeartbeatMixin, LineReceiver):
            heartbeatConfig = HeartbeatConfig(idle=3, checkInterval=1)

            def lineReceived(self, line: bytes) -> None:
                self.sendLine(b"you said: " + line)

        clock = Clock()
        factory = Factory.forProtocol(Chat)
        connections = [connect(factory, clock=clock) for _ in range(2)]
        self.assertEqual(len(clock.getDelayedCalls()), 1)  # one shared sweep
        tracker = connections[0].protocol.heartbeatTracker()
        self.assertIs(connections[1].protocol.heartbeatTracker(), tracker)
        self.assertEqual(len(tracker), 2)
        clock.pump([1, 0.5])
        connections[0].receive(b"hi\r\n")  # t=1.5: recorded as 2
        clock.pump([0.5, 1])
        self.assertEqual([c.closed for c in connections], [False, True])
        clock.pump([1, 1])
        self.assertTrue(connections[0].closed)
        self.assertEqual(connections[0].protocol.heartbeatCloseReason, "idle")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_factoryConfigWins(self) -> None:
        class Configured(Recording):
            heartbeatConfig = HeartbeatConfig(idle=100)

        clock = Clock()
        connection = connect(factoryFor(Configured, clock, idle=2, checkInterval=1))
        clock.pump([1, 1])
        self.assertTrue(connection.closed)


class FailingTimeOutTests(SynchronousTestCase):
    def test_raisingHandlerAborts(self) -> None:
        """
        A heartbeatTimedOut that raises: logged once, connection aborted,
        not told again every idle period.
        """

        class Raising(Recording):
            def heartbeatTimedOut(self) -> None:
                raise RuntimeError("oops")

        clock = Clock()
        factory = factoryFor(Raising, clock, idle=1, checkInterval=1)
        connection = connect(factory, lingering=True)
        clock.pump([1] * 5)
        self.assertTrue(connection.closed)
        self.assertIsInstance(connection.transport.lost.value, ConnectionAborted)
        self.assertEqual(connection.protocol.heartbeatCloseReason, "error")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(factory.heartbeatTracker.timedOut, 1)
        self.assertEqual(clock.getDelayedCalls(), [])


def Fresh() -> type[Recording]:
    """
    A new protocol class, so that its once-per-class log line is logged.
    """

    return type(f"Fresh{next(_fresh)}", (Recording,), {})


_fresh = itertools.count()


def logged(case: SynchronousTestCase) -> list[dict[str, Any]]:
    """
    The log events emitted while C{case} runs.
    """
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    case.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


class ReadmeMixinTests(SynchronousTestCase):
    def test_example(self) -> None:
        example = runExample("example-mixin")
        clock = Clock()
        factory = example["factory"]
        self.assertEqual(factory.heartbeatConfig, HeartbeatConfig(30, 1))
        factory.heartbeatClock = clock
        connection = connect(factory)
        connection.receive(b"hi\r\n")  # t=0: recorded as 1, the next sweep
        self.assertEqual(connection.transport.value(), b"you said: hi\n")
        clock.pump([1] * 30)
        self.assertFalse(connection.closed)
        clock.advance(1)  # within idle + checkInterval of its last byte
        self.assertTrue(connection.closed)


class KeepAliveOnlyTests(SynchronousTestCase):
    def test_keepAliveWithoutIdleHeartbeat(self) -> None:
        """
        A factory given only a KeepAliveConfig applies it and tracks
        nothing: no sweep runs, silence closes nothing.
        """
        from heartbeat_twisted import KeepAliveConfig

        class KeepAliveOnly(HeartbeatFactoryMixin, Factory):
            protocol = Recording

        clock = Clock()
        factory = KeepAliveOnly(keepAliveConfig=KeepAliveConfig(60, 10, 6), clock=clock)
        connection = connect(factory)
        connection.receive(b"data")
        clock.advance(3600)
        self.assertFalse(connection.closed)
        self.assertEqual(clock.getDelayedCalls(), [])
        result = connection.protocol.keepAliveResult
        self.assertIsNotNone(result)
        self.assertFalse(result.applicable)  # an in-memory transport
        self.assertEqual(connection.protocol.received, [b"data"])
        connection.peerClosed()
        self.assertEqual(len(connection.protocol.lost), 1)

    def test_neitherConfigSaysBoth(self) -> None:
        class Neither(HeartbeatFactoryMixin, Factory):
            protocol = Fresh()

        events = logged(self)
        connection = connect(Neither())
        self.assertTrue(connection.closed)
        self.assertIn("keepAliveConfig=KeepAliveConfig", formatEvent(events[-1]))


class RefusedClientTests(SynchronousTestCase):
    """
    Issue 8.3: no abort outlives a refused client's connection on the
    in-memory transport.
    """

    def refused(self, lingering: bool) -> tuple[Clock, Any]:
        from heartbeat_twisted.ping import PingServerConfig
        from heartbeat_twisted.server import DemoFactory

        clock = Clock()
        factory = DemoFactory(
            heartbeatConfig=HeartbeatConfig(idle=30),
            clock=clock,
            pingServerConfig=PingServerConfig(maxLineLength=16),
        )
        connection = connect(factory, lingering=lingering)
        connection.receive(b"x" * 100 + b"\n")
        self.assertEqual(connection.protocol.pingCloseReason, "line too long")
        return clock, connection

    def test_refusedClientLeavesNoTimer(self) -> None:
        clock, connection = self.refused(lingering=False)
        self.assertTrue(connection.closed)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_lingeringRefusedClientThatClosesLeavesNoTimer(self) -> None:
        clock, connection = self.refused(lingering=True)
        self.assertFalse(connection.closed)
        self.assertNotEqual(clock.getDelayedCalls(), [])
        connection.peerClosed()
        self.assertEqual(clock.getDelayedCalls(), [])


class PerConnectionIdleTests(SynchronousTestCase):
    def test_setIdleFromMixin(self) -> None:
        clock = Clock()
        connection = connect(factoryFor(Recording, clock, idle=10, checkInterval=1))
        clock.advance(0.5)
        connection.protocol.setIdle(3)
        connection.receive(b"x")  # t=0.5: recorded as 1, the next sweep
        clock.pump([0.5] + [1] * 2)
        self.assertFalse(connection.closed)
        clock.advance(1)  # t=4 = 1 + 3
        self.assertTrue(connection.closed)

    def test_setIdleBeforeConnecting(self) -> None:
        clock = Clock()
        factory = factoryFor(Recording, clock, idle=10, checkInterval=1)
        protocol = factory.buildProtocol(None)
        protocol.setIdle(2)
        transport = HeartbeatStringTransport()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        clock.pump([1, 1])
        self.assertIsNotNone(transport.lost)

    def test_badValue(self) -> None:
        connection = connect(factoryFor(Recording, Clock(), idle=10))
        error = self.assertRaises(ValueError, connection.protocol.setIdle, -1)
        self.assertIn("'idle'", str(error))

    def test_mqttExample(self) -> None:
        """
        The broker of docs/heartbeat.rst: 10 s before CONNECT, then 1.5 x
        the keepalive the client sent, counted from its last byte; 0 never.
        """
        factory = runExample("example-mqtt")["factory"]
        clock = Clock()
        idle4, mute, idle0 = (connect(factory, clock=clock) for _ in range(3))
        idle4.receive(b"CONNECT 4\n")
        idle0.receive(b"CONNECT 0\n")
        self.assertEqual(idle4.transport.value(), b"CONNACK\n")
        clock.pump([1, 0.5])
        idle4.receive(b"PINGREQ\n")  # t=1.5: recorded as 2, the next sweep
        self.assertEqual(idle4.transport.value(), b"CONNACK\nPINGRESP\n")
        clock.pump([0.5] + [1] * 5)  # t=7
        self.assertFalse(idle4.closed)
        clock.advance(1)  # t=8: 6 s of silence = 1.5 x 4
        self.assertTrue(idle4.closed)
        clock.advance(1)
        self.assertFalse(mute.closed)
        clock.advance(1)  # t=10: no CONNECT within 10 s
        self.assertTrue(mute.closed)
        clock.pump([1] * 100)
        self.assertFalse(idle0.closed)
        idle0.transport.loseConnection()
        self.assertEqual(clock.getDelayedCalls(), [])
