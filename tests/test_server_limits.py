"""
Unit tests, in simulated time, for the parts of the server that hold it
against hostile clients: line framing, connection limits, the log budget,
the activity policy.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import HeartbeatConfig
from heartbeat_twisted._closing import peerText
from heartbeat_twisted.ping import PingServerConfig
from heartbeat_twisted.server._framing import LineFraming
from heartbeat_twisted.server._limits import (
    ConnectionGate,
    ConnectionLimits,
    addressKey,
    defaultBacklog,
    withBacklog,
)
from heartbeat_twisted.server._logbudget import LogBudget, LogConfig
from heartbeat_twisted.server._protocol import (
    PayloadLoggingProtocol,
    ServerFactory,
    closeReason,
    peerName,
)


class Lines(LineFraming):
    MAX_LENGTH = 10

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.exceeded: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        self.exceeded.append(line)


class FramingTests(SynchronousTestCase):
    def framing(self) -> Lines:
        lines = Lines()
        lines.makeConnection(StringTransport())
        return lines

    def test_whole(self) -> None:
        lines = self.framing()
        lines.dataReceived(b"ping\n")
        lines.dataReceived(b"a\nb\n\nc")
        self.assertEqual(lines.lines, [b"ping", b"a", b"b", b""])
        lines.dataReceived(b"d\r\n")
        self.assertEqual(lines.lines[-1], b"cd\r")
        self.assertEqual(lines.takePartialLine(), b"")

    def test_pieces(self) -> None:
        lines = self.framing()
        for byte in b"ab\ncd\n":
            lines.dataReceived(bytes([byte]))
        self.assertEqual(lines.lines, [b"ab", b"cd"])

    def test_exceeded(self) -> None:
        """
        An unfinished line longer than C{MAX_LENGTH}, or a finished one,
        goes to C{lineLengthExceeded}; one of exactly C{MAX_LENGTH} does not.
        """
        for chunks in ([b"x" * 11], [b"x" * 6, b"x" * 5], [b"x" * 11 + b"\n"]):
            lines = self.framing()
            for chunk in chunks:
                lines.dataReceived(chunk)
            self.assertEqual(lines.exceeded, [b"x" * 11], chunks)
            self.assertEqual(lines.lines, [])
        lines = self.framing()
        lines.dataReceived(b"x" * 10 + b"\n")
        self.assertEqual(lines.lines, [b"x" * 10])

    def test_stopsWhenClosing(self) -> None:
        lines = self.framing()
        lines.lineReceived = lambda line: lines.transport.loseConnection()  # type: ignore
        lines.dataReceived(b"a\nb\n")
        self.assertEqual(lines.takePartialLine(), b"")

    def test_linearWork(self) -> None:
        """
        A long line in small pieces costs work linear in its length: at
        most three units a byte (LineReceiver's would be quadratic).
        """
        lines = self.framing()
        lines.MAX_LENGTH = 65536
        for _ in range(600):
            lines.dataReceived(b"y" * 100)
        lines.dataReceived(b"\n")
        self.assertEqual(lines.lines, [b"y" * 60000])
        self.assertLessEqual(lines.framingWork, 3 * 60001)

    def test_partialBuffer(self) -> None:
        """
        C{_buffer} shows the unfinished line to mixins written for
        L{LineReceiver}, and clears it.
        """
        lines = self.framing()
        lines.dataReceived(b"pi")
        self.assertEqual(lines._buffer, b"pi")
        lines._buffer = b""
        self.assertIsNone(lines.partialSince)
        lines.dataReceived(b"ng\n")
        self.assertEqual(lines.lines, [b"ng"])


class LimitsTests(SynchronousTestCase):
    def test_addressKey(self) -> None:
        self.assertEqual(addressKey(IPv4Address("TCP", "10.0.0.1", 5)), "10.0.0.1")
        self.assertEqual(
            addressKey(IPv6Address("TCP", "2001:db8:1:2:3::4", 5)),
            "2001:db8:1:2::/64",
        )
        self.assertEqual(
            addressKey(IPv6Address("TCP", "::ffff:10.0.0.1", 5)), "10.0.0.1"
        )
        self.assertIsNone(addressKey(UNIXAddress(b"/tmp/s")))
        self.assertEqual(addressKey(IPv4Address("TCP", "127.0.0.2", 5)), "127.0.0.2")
        self.assertIsNone(addressKey(IPv4Address("TCP", "127.0.0.2", 5), False))
        self.assertIsNone(addressKey(IPv6Address("TCP", "::1", 5), False))
        self.assertIsNone(addressKey(IPv6Address("TCP", "::ffff:127.0.0.1", 5), False))

    def test_withBacklog(self) -> None:
        self.assertEqual(withBacklog("tcp:1", 5), "tcp:1:backlog=5")
        self.assertEqual(withBacklog("tcp:1:backlog=2", 5), "tcp:1:backlog=2")
        self.assertEqual(withBacklog("unix:/s", 5), "unix:/s:backlog=5")
        self.assertEqual(withBacklog("haproxy:tcp:1", 5), "haproxy:tcp:1:backlog=5")
        self.assertEqual(
            withBacklog("systemd:domain=INET:index=0", 5), "systemd:domain=INET:index=0"
        )

    def test_defaultBacklog(self) -> None:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("128\n")
        self.assertEqual(defaultBacklog(path), 128)
        self.assertEqual(defaultBacklog(path + ".missing"), 1024)

    def test_limitsValidated(self) -> None:
        for kwargs, message in [
            ({"maxConnections": -1}, "'maxConnections' must be >= 0: -1"),
            ({"connectionBurst": 0}, "'connectionBurst' must be >= 1: 0"),
            ({"lineTimeout": 0.001}, "'lineTimeout' must be >= 0.01 (10 ms)"),
        ]:
            with self.assertRaises(ValueError) as caught:
                ConnectionLimits(**kwargs)
            self.assertIn(message, str(caught.exception))

    def test_gate(self) -> None:
        gate = ConnectionGate(
            ConnectionLimits(
                maxConnections=3,
                maxConnectionsPerAddress=2,
                connectionRate=1,
                connectionBurst=2,
            )
        )
        self.assertIsNone(gate.admit("a", 0))
        self.assertIsNone(gate.admit("a", 0))
        self.assertEqual(gate.admit("a", 0), "too many connections from this address")
        self.assertIsNone(gate.admit("b", 0))
        self.assertTrue(gate.full())
        self.assertEqual(gate.admit("c", 0), "too many connections")
        gate.release("a")
        gate.release("a")
        # "a" spent its burst of 2.
        self.assertEqual(gate.admit("a", 0.5), "connecting too fast")
        self.assertIsNone(gate.admit("a", 1.5))
        self.assertEqual(
            gate.refused,
            {
                "too many connections from this address": 1,
                "too many connections": 1,
                "connecting too fast": 1,
            },
        )
        self.assertEqual((gate.live, gate.addresses()), (2, 2))

    def test_bucketsPruned(self) -> None:
        """
        Buckets of addresses that have refilled are dropped, so memory
        follows the addresses connecting now.
        """
        gate = ConnectionGate(ConnectionLimits(maxConnectionsPerAddress=0))
        for n in range(5000):
            self.assertIsNone(gate.admit(f"10.0.{n // 256}.{n % 256}", 0))
        for n in range(5000):
            gate.release(f"10.0.{n // 256}.{n % 256}")
        for n in range(4000):
            gate.admit(f"10.1.{n // 256}.{n % 256}", 100)
        self.assertLess(gate.rateBuckets(), 9000)


class BudgetTests(SynchronousTestCase):
    def test_budget(self) -> None:
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        clock = Clock()
        budget = LogBudget(2, clock)
        self.assertEqual([budget.allow() for _ in range(5)], [True, True] + [False] * 3)
        clock.advance(1)
        summaries = [e for e in events if "suppressed" in e.get("log_format", "")]
        self.assertEqual([e["count"] for e in summaries], [3])
        self.assertTrue(budget.allow())
        self.assertEqual((budget.written, budget.suppressed), (3, 3))


class Harness:
    """
    A L{ServerFactory} on a L{Clock}, with its log events recorded.
    """

    def __init__(self, case: SynchronousTestCase, **kwargs: Any) -> None:
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        case.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.clock = Clock()
        self.factory = ServerFactory(
            heartbeatConfig=HeartbeatConfig(idle=5, checkInterval=1),
            clock=self.clock,
            pingServerConfig=PingServerConfig(pingRate=0),
            **kwargs,
        )

    def connect(self, host: str = "10.0.0.1") -> tuple[Any, StringTransport]:
        address = IPv4Address("TCP", host, 1234)
        protocol = self.factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        if protocol is not None:
            protocol.makeConnection(transport)
        return protocol, transport

    def formats(self, text: str) -> list[dict[str, Any]]:
        return [e for e in self.events if text in e.get("log_format", "")]


class ServerProtocolTests(SynchronousTestCase):
    def test_activityPings(self) -> None:
        """
        Under C{pings} only pings reset the idle time: bytes, unfinished
        lines and other lines do not; blank and C{pong} lines are bad lines.
        """
        harness = Harness(self)
        protocol, transport = harness.connect()
        harness.clock.pump([1] * 2 + [0.5])
        protocol.dataReceived(b"ping\n")  # t=2.5: recorded as 3
        harness.clock.pump([0.5] * 7)
        protocol.dataReceived(b"\n")
        protocol.dataReceived(b"pong\n")
        protocol.dataReceived(b"hello\n")
        harness.clock.pump([0.5] * 3)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(
            transport.value().decode().splitlines(),
            [
                "pong",
                "error empty_line :empty line; try: ping",
                "error unexpected_pong :this server sends no pings; try: ping",
                "error unknown_command :unknown command 'hello'; try: ping",
            ],
        )
        harness.clock.advance(0.5)  # t=8 = 3 + idle
        self.assertTrue(transport.disconnecting)
        self.assertEqual(protocol.heartbeatCloseReason, "idle")

    def test_activityLinesAndBytes(self) -> None:
        """
        Under C{lines} any non-blank line resets the idle time (three bad
        ones are tolerated); under C{bytes} any chunk.
        """
        for activity, data in [("lines", b"hello\n"), ("bytes", b"he")]:
            harness = Harness(
                self, activity=activity, limits=ConnectionLimits(lineTimeout=100)
            )
            protocol, transport = harness.connect()
            for _ in range(3):
                harness.clock.advance(3)
                protocol.dataReceived(data)
            harness.clock.advance(3)
            self.assertFalse(transport.disconnecting, activity)

    def test_lineTimeout(self) -> None:
        harness = Harness(
            self, activity="bytes", limits=ConnectionLimits(lineTimeout=2)
        )
        protocol, transport = harness.connect()
        protocol.dataReceived(b"pi")
        harness.clock.advance(1)
        protocol.dataReceived(b"n")
        self.assertFalse(transport.disconnecting)
        harness.clock.advance(1.5)
        protocol.dataReceived(b"g")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(protocol.pingCloseReason, "line timeout")
        self.assertIn(
            b"error line_timeout :a line must arrive within 2 s", transport.value()
        )

    def test_refusals(self) -> None:
        """
        A connection over a limit is refused with one error line and one
        budgeted log line, counted, and never counted as open or closed.
        """
        harness = Harness(
            self, limits=ConnectionLimits(maxConnections=3, maxConnectionsPerAddress=2)
        )
        kept = [harness.connect("10.0.0.1") for _ in range(2)]
        protocol, transport = harness.connect("10.0.0.1")
        self.assertEqual(
            transport.value(),
            b"error too_many_connections :too many connections from this address\n",
        )
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        harness.connect("10.0.0.2")
        self.assertIsNone(
            harness.factory.buildProtocol(IPv4Address("TCP", "10.0.0.3", 1))
        )
        self.assertEqual(harness.factory.live, 3)
        self.assertEqual(
            [e["reason"] for e in harness.formats("refused")],
            ["too many connections from this address", "too many connections"],
        )
        self.assertEqual(harness.formats("close fd"), [])
        for protocol, transport in kept:
            self.assertFalse(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(harness.factory.gate.live, 1)
        self.assertEqual(
            [(e["fd"], e["reason"], e["peer"]) for e in harness.formats("close fd")],
            [(1, "peer closed", "10.0.0.1:1234"), (2, "peer closed", "10.0.0.1:1234")],
        )

    def test_logBudgetShared(self) -> None:
        """
        Connects and closes share the budget; the rest is summarised.
        """
        harness = Harness(self, logConfig=LogConfig(linesPerSecond=3))
        for n in range(3):
            protocol, _ = harness.connect(f"10.0.0.{n}")
            protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(harness.formats("Client: Connect")), 2)
        self.assertEqual(len(harness.formats("close fd")), 1)
        harness.clock.advance(1)
        [summary] = harness.formats("suppressed")
        self.assertEqual(summary["count"], 3)

    def test_payloadsOffByDefault(self) -> None:
        harness = Harness(self)
        protocol, _ = harness.connect()
        protocol.dataReceived(b"ping\n")
        self.assertEqual(harness.formats("receive"), [])

    def test_payloadsRateLimited(self) -> None:
        harness = Harness(self, logConfig=LogConfig(logPayloads=True))
        self.assertIs(harness.factory.protocol, PayloadLoggingProtocol)
        protocol, _ = harness.connect()
        for _ in range(8):
            protocol.dataReceived(b"x" * 300 + b"\n")
        logged = harness.formats("receive fd")
        self.assertEqual(len(logged), 5)
        self.assertEqual((len(logged[0]["payload"]), logged[0]["length"]), (200, 301))
        harness.clock.advance(1)
        protocol.dataReceived(b"ping\n")
        self.assertEqual(len(harness.formats("receive fd")), 6)

    def test_tlsHandshakeTimeout(self) -> None:
        from twisted.internet.interfaces import ISSLTransport
        from zope.interface import directlyProvides

        harness = Harness(self, limits=ConnectionLimits(tlsHandshakeTimeout=3))
        address = IPv4Address("TCP", "10.0.0.1", 1)
        for completes in (True, False):
            protocol = harness.factory.buildProtocol(address)
            transport = StringTransport(peerAddress=address)
            directlyProvides(transport, ISSLTransport)
            protocol.makeConnection(transport)
            harness.clock.advance(2)
            if completes:
                protocol.handshakeCompleted()
            harness.clock.advance(2)
            self.assertEqual(transport.disconnecting, not completes)

    def test_closeReason(self) -> None:
        harness = Harness(self)
        protocol, _ = harness.connect()
        self.assertEqual(closeReason(protocol, Failure(ConnectionLost())), "peer reset")
        self.assertEqual(
            closeReason(protocol, Failure(ConnectionDone())), "peer closed"
        )

    def test_peerName(self) -> None:
        self.assertEqual(peerName(IPv4Address("TCP", "1.2.3.4", 5)), "1.2.3.4:5")
        self.assertEqual(peerName(IPv6Address("TCP", "::1", 5)), "[::1]:5")
        self.assertEqual(peerName(UNIXAddress(b"/tmp/s")), "/tmp/s")

    def test_peerText(self) -> None:
        """
        The library's own log lines (a refusal for misbehaving, an abort
        after the close grace) show the peer as the server's lines do, not
        as the address object's repr.
        """
        transport = StringTransport(peerAddress=IPv4Address("TCP", "1.2.3.4", 5))
        self.assertEqual(peerText(transport), "1.2.3.4:5")
        transport = StringTransport(peerAddress=IPv6Address("TCP", "::1", 5))
        self.assertEqual(peerText(transport), "[::1]:5")
        self.assertEqual(peerText(None), "?")
