"""
Unit tests for OS keepalive applied by a factory: the factory hook, the
twistd options, the README example and the demo server's close reason.
"""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import (
    HeartbeatConfig,
    HeartbeatFactoryMixin,
    HeartbeatMixin,
    HeartbeatWrappingFactory,
    KeepAliveConfig,
    _keepaliveloss,
    tap,
)
from heartbeat_twisted.server._protocol import DemoFactory

from ._keepalivefakes import (
    FakeSocket,
    SocketTransport,
    fakeLinux,
)
from ._readme import runExample


class KeepAliveProtocol(HeartbeatMixin, Protocol):
    pass


class KeepAliveFactory(HeartbeatFactoryMixin, Factory):
    protocol = KeepAliveProtocol


class FactoryHookTests(SynchronousTestCase):
    """
    A L{HeartbeatFactoryMixin} with a L{KeepAliveConfig} turns keepalive on for
    every connection.
    """

    def setUp(self) -> None:
        fakeLinux(self)

    def connect(self, factory: Any, transport: StringTransport) -> Any:
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(transport)
        return protocol

    def test_applied(self) -> None:
        """
        Each connection gets the settings; its C{keepAliveResult} says what
        the socket took.  It is still tracked by the idle heartbeat.
        """
        factory = KeepAliveFactory(
            heartbeatConfig=HeartbeatConfig(idle=5),
            clock=Clock(),
            keepAliveConfig=KeepAliveConfig(2, 1, 3),
        )
        sockets = [FakeSocket(), FakeSocket()]
        protocols = [self.connect(factory, SocketTransport(s)) for s in sockets]
        for sock, protocol in zip(sockets, protocols):
            self.assertEqual(sock.options[(6, 6)], 3)
            self.assertEqual(protocol.keepAliveResult.count, 3)
        self.assertEqual(len(factory.heartbeatTracker), 2)

    def test_classAttribute(self) -> None:
        """
        C{keepAliveConfig} can be a class attribute.
        """

        class Configured(KeepAliveFactory):
            heartbeatConfig = HeartbeatConfig(idle=5)
            keepAliveConfig = KeepAliveConfig(9, 8, 7)

        factory = Configured(clock=Clock())
        protocol = self.connect(factory, SocketTransport(FakeSocket()))
        self.assertEqual(protocol.keepAliveResult.settings()["idle"], 9)

    def test_notAsked(self) -> None:
        """
        Without a config nothing is set and C{keepAliveResult} is L{None}.
        """
        sock = FakeSocket()
        factory = KeepAliveFactory(
            heartbeatConfig=HeartbeatConfig(idle=5), clock=Clock()
        )
        protocol = self.connect(factory, SocketTransport(sock))
        self.assertEqual(sock.options, {})
        self.assertIsNone(protocol.keepAliveResult)

    def test_notApplicableLoggedOnce(self) -> None:
        """
        Connections without a TCP socket get a "not applicable" result; the
        reason is logged once, not once per connection.
        """
        factory = KeepAliveFactory(
            heartbeatConfig=HeartbeatConfig(idle=5),
            clock=Clock(),
            keepAliveConfig=KeepAliveConfig(2, 1, 3),
        )
        with capturedLogs() as events:
            protocols = [self.connect(factory, StringTransport()) for _ in range(3)]
        self.assertEqual(
            [p.keepAliveResult.applicable for p in protocols], [False, False, False]
        )
        reasons = [e["reason"] for e in events if "reason" in e]
        self.assertEqual(reasons, ["StringTransport has no TCP socket"])

    def test_refusedIsLogged(self) -> None:
        """
        If the kernel refuses a setting, the failure is logged and the
        connection goes on, tracked.
        """
        factory = KeepAliveFactory(
            heartbeatConfig=HeartbeatConfig(idle=5),
            clock=Clock(),
            keepAliveConfig=KeepAliveConfig(2, 1, 3),
        )
        with capturedLogs() as events:
            protocol = self.connect(
                factory, SocketTransport(FakeSocket(refuse={6: errno.EINVAL}))
            )
        self.assertIsNone(protocol.keepAliveResult)
        failures = [e for e in events if "log_failure" in e]
        self.assertEqual(len(failures), 1)
        self.assertEqual(failures[0]["log_failure"].value.errno, errno.EINVAL)
        self.assertEqual(len(factory.heartbeatTracker), 1)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_badConfig(self) -> None:
        """
        C{keepAlive} must be a L{KeepAliveConfig}.
        """
        error = self.assertRaises(
            TypeError,
            KeepAliveFactory,
            heartbeatConfig=HeartbeatConfig(idle=5),
            keepAliveConfig=(2, 1, 3),
        )
        self.assertEqual(
            str(error), "keepAliveConfig must be a KeepAliveConfig or None: (2, 1, 3)"
        )

    def test_wrapping(self) -> None:
        """
        L{HeartbeatWrappingFactory} takes C{keepAlive} and applies it to the
        connection under the wrapped protocol.
        """
        factory = HeartbeatWrappingFactory(
            Factory.forProtocol(Protocol),
            HeartbeatConfig(idle=5),
            clock=Clock(),
            keepAliveConfig=KeepAliveConfig(2, 1, 4),
        )
        sock = FakeSocket()
        protocol = self.connect(factory, SocketTransport(sock))
        self.assertEqual(sock.options[(6, 6)], 4)
        self.assertEqual(protocol.keepAliveResult.count, 4)


class OptionsTests(SynchronousTestCase):
    """
    The twistd options C{--keepalive}, C{--keepidle}, C{--keepinterval},
    C{--keepcount} and C{--user-timeout}.
    """

    def parse(self, *argv: str) -> tap.Options:
        options = tap.Options()
        options.parseOptions(list(argv))
        return options

    def test_off(self) -> None:
        """
        Without any keepalive option, keepalive is left alone.
        """
        self.assertIsNone(self.parse().keepAliveConfig)

    def test_defaults(self) -> None:
        """
        C{--keepalive} alone uses the seed's 4/1/5.
        """
        self.assertEqual(
            self.parse("--keepalive").keepAliveConfig, KeepAliveConfig(4, 1, 5)
        )

    def test_values(self) -> None:
        """
        Each option sets its field; any of them turns keepalive on.
        """
        options = self.parse(
            "--keepidle", "2", "--keepinterval", "1", "--keepcount", "3",
            "--user-timeout", "3500",
        )  # fmt: skip
        self.assertEqual(options.keepAliveConfig, KeepAliveConfig(2, 1, 3, 3500))
        self.assertEqual(
            self.parse("--keepcount", "9").keepAliveConfig, KeepAliveConfig(4, 1, 9)
        )

    def test_badValues(self) -> None:
        """
        A bad value is a usage error naming the option, bound and value.
        """
        cases = [
            (["--keepidle", "0"], "--keepidle must be in 1..32767: 0"),
            (["--keepinterval", "40000"], "--keepinterval must be in 1..32767: 40000"),
            (["--keepcount", "128"], "--keepcount must be in 1..127: 128"),
            (["--keepcount", "x"], "--keepcount must be a whole number: 'x'"),
            (["--keepidle", "1.5"], "--keepidle must be a whole number: '1.5'"),
            (
                ["--user-timeout", "-1"],
                "--user-timeout must be in 0..2147483647: -1",
            ),
        ]
        for argv, message in cases:
            error = self.assertRaises(usage.UsageError, self.parse, *argv)
            self.assertEqual(str(error), message)

    def test_makeService(self) -> None:
        """
        The demo factory gets the keepalive config.
        """
        options = self.parse("--port", "tcp:0:interface=127.0.0.1", "--keepidle", "2")
        service: Any = tap.makeService(options)
        factory = service.factory
        self.assertIsInstance(factory, DemoFactory)
        self.assertEqual(factory.keepAliveConfig, KeepAliveConfig(2, 1, 5))


class ReadmeExampleTests(SynchronousTestCase):
    """
    The README's OS keepalive example works as written.
    """

    def test_example(self) -> None:
        """
        Its factory applies the example's settings to each connection.
        """
        fakeLinux(self)
        namespace = runExample("example-keepalive")
        factory = namespace["factory"]
        factory.heartbeatClock = Clock()
        protocol = factory.buildProtocol(None)
        sock = FakeSocket()
        protocol.makeConnection(SocketTransport(sock))
        self.assertEqual(
            protocol.keepAliveResult.settings(),
            {"idle": 60, "interval": 10, "count": 6, "userTimeout": 0},
        )
        self.assertEqual(factory.keepAliveConfig.deadAfter, 120.0)
        client = namespace["Client"]()
        client.makeConnection(SocketTransport(FakeSocket()))
        self.assertEqual(client.keepAlive.settings()["count"], 6)


class DemoCloseReasonTests(SynchronousTestCase):
    """
    The demo server names a keepalive timeout in its close log.
    """

    def test_keepAliveTimeout(self) -> None:
        """
        A L{KeepAliveTimedOut} loss is logged as C{close fd N: keepalive
        timeout}.
        """
        fakeLinux(self)
        factory = DemoFactory(
            heartbeatConfig=HeartbeatConfig(idle=60),
            clock=Clock(),
            keepAliveConfig=KeepAliveConfig(2, 1, 3),
        )
        protocol = factory.buildProtocol(None)
        transport = SocketTransport(FakeSocket())
        protocol.makeConnection(transport)
        transport.sock.tcpInfo = bytes([7, 0, 0, 3, 0, 0, 0, 0])
        with capturedLogs() as events:
            transport.connectionLost(Failure(ConnectionLost()))
            protocol.connectionLost(transport.lostReasons[0])
        closes = [e for e in events if e.get("log_format", "").startswith("close fd")]
        self.assertEqual(
            [(e["fd"], e["reason"]) for e in closes], [(1, "keepalive timeout")]
        )
        self.assertEqual(factory.closed["keepalive timeout"], 1)

    def test_peerReset(self) -> None:
        """
        A peer that answers a probe with a reset is logged as C{close fd N:
        peer reset}, not as a keepalive timeout.
        """
        fakeLinux(self)
        now = [0.0]
        self.patch(_keepaliveloss, "_now", lambda: now[0])
        factory = DemoFactory(
            heartbeatConfig=HeartbeatConfig(idle=60),
            clock=Clock(),
            keepAliveConfig=KeepAliveConfig(2, 1, 3),
        )
        protocol = factory.buildProtocol(None)
        transport = SocketTransport(FakeSocket())
        protocol.makeConnection(transport)
        now[0] = 2.0
        transport.sock.soError = errno.ECONNRESET
        transport.sock.tcpInfo = bytes([7, 0, 0, 1, 0, 0, 0, 0])
        loss = transport.doRead()
        with capturedLogs() as events:
            transport.connectionLost(Failure(loss))
            protocol.connectionLost(transport.lostReasons[0])
        closes = [e for e in events if e.get("log_format", "").startswith("close fd")]
        self.assertEqual([e["reason"] for e in closes], ["peer reset"])
        self.assertEqual(factory.closed["keepalive timeout"], 0)
