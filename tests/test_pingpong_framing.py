"""
Ping/pong beyond line protocols: the examples of docs/pingpong.rst over
AMP and over L{Int32StringReceiver}, on real loopback sockets; and the
framings in memory.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from heartbeat_twisted.ping import (
    HealthCheck,
    IPingFraming,
    PingAnswerMixin,
    PingConfig,
    PingServerConfig,
)
from heartbeat_twisted.ping._framing import MessageFraming
from heartbeat_twisted.ping.amp import AMPFraming

from ._readme import runExample
from ._waiting import Waitable


class Seen(Waitable):
    def __init__(self) -> None:
        Waitable.__init__(self)
        self.events: list[tuple[str, Any]] = []

    def add(self, kind: str, value: Any) -> None:
        self.events.append((kind, value))
        self.changed()

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.events if k == kind)

    def captured(self) -> str:
        return f"events: {self.events!r}"


def recording(base: type, seen: Seen) -> type:
    """
    A subclass of the example's client class that records its events.
    """

    class Recording(base):  # type: ignore[misc,valid-type]
        def connectionMade(self) -> None:
            super().connectionMade()
            seen.add("connected", None)

        def pingRoundTrip(self, rtt: float) -> None:
            seen.add("rtt", rtt)

        def pingUnhealthy(self, report: str) -> None:
            seen.add("unhealthy", report)

        def pingGoAwayReceived(self, reason: str, grace: float) -> None:
            seen.add("goaway", (reason, grace))
            super().pingGoAwayReceived(reason, grace)

        def connectionLost(self, reason: Failure) -> None:
            super().connectionLost(reason)
            seen.add("lost", None)

    return Recording


class FramingLoopbackTests(TestCase):
    """
    Pongs, unhealthy answers and goaway over each framing, on 127.0.0.1.
    """

    timeout = 30

    @inlineCallbacks
    def exchange(self, namespace: dict[str, Any]) -> Any:
        healthy = [True]
        server = namespace["serverFactory"]
        server.live = []
        server.pingServerConfig = PingServerConfig(
            pingRate=0, healthChecks=[HealthCheck("db", lambda: healthy[0])]
        )
        base = server.protocol

        class Tracked(base):  # type: ignore[misc,valid-type]
            def connectionMade(self) -> None:
                super().connectionMade()
                self.gone: Deferred[None] = Deferred()
                self.factory.live.append(self)

            def connectionLost(self, reason: Failure) -> None:
                super().connectionLost(reason)
                self.gone.callback(None)

        server.protocol = Tracked
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            server
        )
        self.addCleanup(port.stopListening)
        seen = Seen()
        client = Factory.forProtocol(recording(namespace["Client"], seen))
        client.pingConfig = PingConfig(interval=0.05, timeout=2, jitter=0)
        protocol = yield TCP4ClientEndpoint(
            reactor, "127.0.0.1", port.getHost().port
        ).connect(client)
        self.addCleanup(protocol.transport.abortConnection)
        yield seen.waitUntil(lambda: seen.count("rtt") >= 2, 10, "two pongs")
        healthy[0] = False
        yield seen.waitUntil(lambda: seen.count("unhealthy"), 10, "unhealthy")
        self.assertEqual(dict(seen.events)["unhealthy"], "db: returned False")
        serverSide = server.live[0]
        serverSide.pingGoAway("shutdown", grace=5)
        yield seen.waitUntil(lambda: seen.count("lost"), 10, "the client leaving")
        self.assertEqual(dict(seen.events)["goaway"], ("shutdown", 5.0))
        self.assertGreaterEqual(server.pingCounters.pongs, 2)
        self.assertGreaterEqual(server.pingCounters.unhealthy, 1)
        # The server sees the client leave, and its timers go with it.
        yield serverSide.gone
        yield task.deferLater(reactor, 0.05, lambda: None)

    def test_amp(self) -> Any:
        return self.exchange(runExample("example-amp"))

    def test_int32(self) -> Any:
        return self.exchange(runExample("example-int32"))


class FramingTests(SynchronousTestCase):
    """
    The framings provide L{IPingFraming}; strings carry the line grammar.
    """

    def test_interfaces(self) -> None:
        self.assertTrue(verifyObject(IPingFraming, MessageFraming(lambda b: None)))
        self.assertTrue(verifyObject(IPingFraming, AMPFraming(object())))

    def test_int32Messages(self) -> None:
        namespace = runExample("example-int32")
        factory = namespace["serverFactory"]
        factory.heartbeatClock = Clock()
        proto = factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        received = []
        reader = Int32StringReceiver()
        reader.stringReceived = received.append
        sender = Int32StringReceiver()
        sender.makeConnection(StringTransport())
        for message in (b"ping 7", b"hello"):
            sender.sendString(message)
        proto.dataReceived(sender.transport.value())
        reader.dataReceived(transport.value())
        self.assertEqual(received, [b"pong 7", b"echo hello"])

    def test_ownFraming(self) -> None:
        """
        A protocol with a framing of its own overrides C{pingFraming} and
        calls the entry points.
        """
        sent: list[bytes] = []

        class Own(PingAnswerMixin):
            def makeConnection(self, transport: Any) -> None:
                self.transport = transport

            def connectionLost(self, reason: Any) -> None:
                pass

            def pingFraming(self) -> Any:
                return MessageFraming(sent.append)

        factory = Factory.forProtocol(Own)
        factory.heartbeatClock = Clock()
        proto = factory.buildProtocol(None)
        proto.makeConnection(StringTransport())
        proto.pingReceived(b"x")
        proto.pingReceived(None)
        self.assertEqual(sent, [b"pong x", b"pong"])
