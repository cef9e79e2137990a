"""
Tests for the graceful stop and the maximum connection age, in simulated
time.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted.server._drain import (
    ConnectionSet,
    DrainConfig,
    MaxAge,
    MaxAgeConfig,
)
from heartbeat_twisted.server._service import makeService
from heartbeat_twisted.tap import Options
from heartbeat_twisted.testing import connect


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class ConfigTests(SynchronousTestCase):
    def test_bounds(self) -> None:
        self.assertEqual(DrainConfig(), DrainConfig(delay=0, grace=5))
        error = self.assertRaises(ValueError, DrainConfig, delay=-1)
        self.assertEqual(str(error), "'delay' must be >= 0: -1")
        error = self.assertRaises(ValueError, MaxAgeConfig, age=0)
        self.assertEqual(str(error), "'age' must be > 0: 0")
        error = self.assertRaises(ValueError, MaxAgeConfig, age=1, jitter=1)
        self.assertEqual(str(error), "'jitter' must be < 1: 1.0")
        self.assertEqual(MaxAgeConfig(10).jitter, 0.1)


class ConnectionSetTests(SynchronousTestCase):
    def test_whenEmpty(self) -> None:
        connections = ConnectionSet()
        self.assertIsNone(self.successResultOf(connections.whenEmpty()))
        one, two = object(), object()
        connections.add(one)
        connections.add(two)
        waiting = connections.whenEmpty()
        connections.discard(one)
        self.assertNoResult(waiting)
        connections.discard(two)
        self.successResultOf(waiting)


class DrainTests(SynchronousTestCase):
    """
    A drain fails the health check, waits the delay, stops listening, tells
    every client to go, waits the grace and aborts the rest, each closed
    with the reason C{shutdown}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.service: Any = makeService(
            parse("--drain-delay", "3", "--drain-grace", "2", "--idle", "60"),
            reactor=self.clock,  # type: ignore[arg-type]
        )
        self.factory = self.service.factory
        self.stopped: list[float] = []

    def stopListening(self) -> None:
        self.stopped.append(self.clock.seconds())

    def test_sequence(self) -> None:
        leaving = connect(self.factory)
        staying = connect(self.factory, lingering=True)
        leaving.receive(b"ping a\n")
        self.assertEqual(leaving.transport.value(), b"pong a\n")
        leaving.transport.clear()
        drained = self.service.drainer.drain(self.stopListening)
        self.assertEqual(self.service.metrics.values()["heartbeat_draining"], 1)
        leaving.receive(b"ping b\n")
        self.assertEqual(
            leaving.transport.value(),
            b"error unhealthy b :draining: server is shutting down\n",
        )
        leaving.transport.clear()
        self.clock.advance(2.9)
        self.assertEqual(self.stopped, [])
        self.assertEqual(staying.transport.value(), b"")
        self.clock.advance(0.1)
        self.assertEqual(self.stopped, [3.0])
        for connection in (leaving, staying):
            self.assertEqual(connection.transport.value(), b"goaway 2 :shutdown\n")
        leaving.peerClosed()
        self.clock.advance(1.9)
        self.assertFalse(staying.closed)
        self.assertNoResult(drained)
        self.clock.advance(0.1)
        self.assertTrue(staying.closed)
        self.successResultOf(drained)
        self.assertEqual(dict(self.factory.closed), {"shutdown": 2})

    def test_healthFailsEverywhere(self) -> None:
        """
        Once a drain began, every ping fails the health check: a plain one
        (the server's hot path) on an open connection, one on a connection
        made afterwards, and one within the health-check max age of a
        passing verdict.
        """
        before = connect(self.factory)
        before.receive(b"ping\n")
        self.assertEqual(before.transport.value(), b"pong\n")
        before.transport.clear()
        self.service.drainer.drain(self.stopListening)
        after = connect(self.factory)
        for connection in (before, after):
            connection.receive(b"ping\n")
            self.assertEqual(
                connection.transport.value(),
                b"error unhealthy :draining: server is shutting down\n",
            )
        self.assertEqual(self.factory.pingCounters.unhealthy, 2)

    def test_allLeave(self) -> None:
        """
        When every client leaves within the grace, the drain ends at once.
        """
        connection = connect(self.factory)
        drained = self.service.drainer.drain(self.stopListening)
        self.clock.advance(3)
        self.assertNoResult(drained)
        connection.peerClosed()
        self.successResultOf(drained)
        self.assertEqual(self.clock.seconds(), 3)

    def test_onlyOnce(self) -> None:
        """
        A second drain waits for the first.
        """
        first = self.service.drainer.drain(self.stopListening)
        second = self.service.drainer.drain(self.stopListening)
        self.clock.advance(3)
        self.successResultOf(first)
        self.successResultOf(second)
        self.assertEqual(self.stopped, [3.0])


class MaxAgeTests(SynchronousTestCase):
    """
    Past its age (+-10%) a connection is told to go, past the grace it is
    closed with the reason C{max age}.
    """

    def service(self, *argv: str) -> Any:
        self.clock = Clock()
        service: Any = makeService(
            parse("--idle", "1000", *argv),
            reactor=self.clock,  # type: ignore[arg-type]
        )
        return service

    def test_toldThenClosed(self) -> None:
        service = self.service(
            "--max-connection-age", "100", "--max-connection-age-grace", "10"
        )
        factory = service.factory
        factory.maxAge = MaxAge(
            factory.maxAge.config, factory.heartbeatTracker, lambda: 0.5
        )
        connection = connect(factory, lingering=True)
        self.clock.advance(99.9)
        self.assertEqual(connection.transport.value(), b"")
        self.clock.advance(0.1)
        self.assertEqual(connection.transport.value(), b"goaway 10 :max age\n")
        self.clock.advance(9.9)
        self.assertFalse(connection.transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(connection.transport.disconnecting)
        self.clock.advance(factory.heartbeatConfig.closeGrace)
        self.assertTrue(connection.closed)
        self.assertEqual(dict(factory.closed), {"max age": 1})
        self.assertEqual(service.metrics.values()["heartbeat_max_age_goaways_total"], 1)

    def test_leavesInTime(self) -> None:
        """
        A client that leaves within the grace is not closed again.
        """
        service = self.service("--max-connection-age", "100")
        factory = service.factory
        factory.maxAge = MaxAge(
            factory.maxAge.config, factory.heartbeatTracker, lambda: 0.5
        )
        connection = connect(factory)
        self.clock.advance(100)
        connection.peerClosed()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(dict(factory.closed), {"max age": 1})

    def test_jitter(self) -> None:
        """
        Each connection's age is drawn within +-10% of the age.
        """
        clock = Clock()
        draws = iter([0.0, 0.25, 0.999999])
        maxAge = MaxAge(MaxAgeConfig(100), clock, lambda: next(draws))
        self.assertEqual(maxAge.ageOf(), 90)
        self.assertEqual(maxAge.ageOf(), 95)
        self.assertAlmostEqual(maxAge.ageOf(), 110, places=3)

    def test_forgottenWhenGone(self) -> None:
        """
        A connection that closes before its age leaves no timer.
        """
        service = self.service("--max-connection-age", "100")
        tracker = service.factory.heartbeatTracker
        connection = connect(service.factory)
        self.assertEqual(tracker.pendingDeadlines, 1)
        connection.peerClosed()
        self.assertEqual(tracker.pendingDeadlines, 0)
