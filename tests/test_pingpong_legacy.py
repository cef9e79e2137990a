"""
The 0.1 ways to configure ping/pong keep working for one release, each
with a L{DeprecationWarning} naming the new way.
"""

from __future__ import annotations

import warnings

from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineReceiver
from twisted.trial.unittest import SynchronousTestCase

import heartbeat_twisted.ping
from heartbeat_twisted.ping import (
    HealthCheck,
    PingAnswerMixin,
    PingClientFactory,
    PingConfig,
    PingingMixin,
    PingServerConfig,
)
from heartbeat_twisted.ping._legacy import PingBackoff, Pinger, PingResponder


class Both(PingAnswerMixin, PingingMixin, LineReceiver):
    pass


class LegacyTests(SynchronousTestCase):
    def test_namesWarn(self) -> None:
        for name, advice in [
            ("PingResponder", "set factory.pingServerConfig = PingServerConfig("),
            ("Pinger", "set factory.pingConfig = PingConfig(...)"),
            ("PingBackoff", "retryPolicy=backoffPolicy"),
        ]:
            self.assertIs(
                getattr(heartbeat_twisted.ping, name),
                getattr(heartbeat_twisted.ping._legacy, name),
            )
            [warning] = self.flushWarnings()
            self.assertIs(warning["category"], DeprecationWarning)
            self.assertIn(
                f"heartbeat_twisted.ping.{name} is deprecated", warning["message"]
            )
            self.assertIn(advice, warning["message"])
        with self.assertRaises(AttributeError):
            heartbeat_twisted.ping.HeartbeatProtocol

    def test_oldConfigFields(self) -> None:
        config = PingServerConfig(minPingInterval=0.5, maxPingStrikes=2)
        self.assertEqual((config.pingRate, config.pingBurst), (2.0, 3))
        [warning] = self.flushWarnings()
        self.assertIn("use pingRate=1/minPingInterval", warning["message"])
        self.assertEqual(PingServerConfig(minPingInterval=0).pingRate, 0.0)
        with self.assertRaises(ValueError) as caught:
            PingServerConfig(minPingInterval=-1)
        self.assertEqual(str(caught.exception), "'minPingInterval' must be >= 0: -1")

    def test_factoryAttributes(self) -> None:
        """
        C{factory.pingResponder} and C{factory.pinger} still configure the
        mixins, and their counters still count; each warns once.
        """
        clock = Clock()
        factory = Factory.forProtocol(Both)
        factory.pingResponder = PingResponder(
            PingServerConfig(pingRate=0),
            [HealthCheck("ok", lambda: True)],
            clock=clock,
        )
        factory.pinger = Pinger(PingConfig(interval=1, timeout=1), clock, lambda: 0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(2):
                proto = factory.buildProtocol(None)
                transport = StringTransport()
                proto.makeConnection(transport)
        self.assertEqual(
            sorted(str(w.message).split(" is ")[0] for w in caught),
            ["factory.pingResponder", "factory.pinger"],
        )
        proto.dataReceived(b"ping a\n")
        clock.advance(1)
        self.assertEqual(transport.value(), b"pong a\nping 1\n")
        self.assertEqual(factory.pingResponder.pings, 1)
        self.assertEqual(factory.pingResponder.runs, 1)
        self.assertEqual(factory.pinger.sent, 2)

    def test_clientFactoryFromPinger(self) -> None:
        clock = Clock()
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            factory = PingClientFactory(
                Pinger(PingConfig(interval=1, timeout=1), clock),
                None,
                PingBackoff(initialDelay=2, jitter=lambda: 0),
            )
        self.assertIs(factory.heartbeatClock, clock)
        self.assertEqual(factory.backoff(0), 2.0)
        self.assertEqual(factory.pingConfig, PingConfig(interval=1, timeout=1))
