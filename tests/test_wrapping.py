"""
Tests for L{HeartbeatWrappingFactory}: the heartbeat for an unmodified
factory.
"""

from __future__ import annotations

from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.protocols.wire import Echo
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import (
    HeartbeatConfig,
    HeartbeatWrappingFactory,
)
from heartbeat_twisted._wrapping import HeartbeatProtocolWrapper
from heartbeat_twisted.testing import connect

from ._readme import runExample


class WrappingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = HeartbeatWrappingFactory(
            Factory.forProtocol(Echo),
            HeartbeatConfig(idle=3, checkInterval=1),
            clock=self.clock,
        )

    def test_wrappedProtocolStillWorks(self) -> None:
        connection = connect(self.factory)
        self.assertIsInstance(connection.protocol, HeartbeatProtocolWrapper)
        self.assertIsInstance(connection.protocol.wrappedProtocol, Echo)
        connection.receive(b"hello")
        self.assertEqual(connection.transport.value(), b"hello")

    def test_idleClose(self) -> None:
        connection = connect(self.factory)
        self.clock.pump([1, 0.5])
        connection.receive(b"x")  # t=1.5: recorded as 2, the next sweep
        self.clock.pump([0.5, 1, 1])
        self.assertFalse(connection.closed)
        self.clock.advance(1)  # t=5 = 2 + 3
        self.assertTrue(connection.closed)
        self.assertEqual(connection.protocol.heartbeatCloseReason, "idle")
        self.assertEqual(self.factory.protocols, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_wrappedProtocolHearsTheLoss(self) -> None:
        lost = []

        class Noting(Echo):
            def connectionLost(self, reason: object = None) -> None:
                lost.append(reason)

        factory = HeartbeatWrappingFactory(
            Factory.forProtocol(Noting), HeartbeatConfig(idle=1), clock=self.clock
        )
        connect(factory)
        self.clock.pump([0.2] * 6)
        self.assertEqual(len(lost), 1)

    def test_readmeExample(self) -> None:
        factory = runExample("example-wrapping")["factory"]
        self.assertIsInstance(factory, HeartbeatWrappingFactory)
        factory.heartbeatClock = self.clock
        connection = connect(factory)
        connection.receive(b"echo me")  # t=0: recorded as 1, the next sweep
        self.assertEqual(connection.transport.value(), b"echo me")
        self.clock.pump([1] * 5)
        self.assertFalse(connection.closed)
        self.clock.advance(1)  # within idle + checkInterval of its last byte
        self.assertTrue(connection.closed)
