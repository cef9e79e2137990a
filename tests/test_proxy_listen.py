"""
Unit tests, in simulated time, for listening behind the PROXY protocol
(L{ProxyHeaderFactory}): the wrapped factory and protocol see the client's
address; bad, long or late headers close the connection, counted and
logged once.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IHandshakeListener,
    IStreamServerEndpoint,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from heartbeat_twisted import HeartbeatConfig
from heartbeat_twisted.ping import PingServerConfig
from heartbeat_twisted.server._limits import ConnectionLimits
from heartbeat_twisted.server._protocol import ServerFactory, ServerProtocol
from heartbeat_twisted.server._proxylisten import (
    ProxyHeaderEndpoint,
    ProxyHeaderFactory,
    proxiedDescription,
)

from .test_proxy_header import V1, tcp4Block, v2

PROXY = IPv4Address("TCP", "10.0.0.9", 50000)
HERE = IPv4Address("TCP", "10.0.0.1", 6666)


@implementer(IHandshakeListener)
class Recorder(Protocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.peerAtConnect: Any = None
        self.hostAtConnect: Any = None
        self.lost: list[Failure] = []
        self.handshakes = 0

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.peerAtConnect = self.transport.getPeer()
        self.hostAtConnect = self.transport.getHost()

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        self.lost.append(reason)

    def handshakeCompleted(self) -> None:
        self.handshakes += 1


class Recording(Factory):
    def __init__(self, refuse: bool = False) -> None:
        self.built: list[Any] = []
        self.protocols: list[Recorder] = []
        self.refuse = refuse

    def buildProtocol(self, addr: Any) -> Any:
        self.built.append(addr)
        if self.refuse:
            return None
        protocol = Recorder()
        self.protocols.append(protocol)
        return protocol


class Harness:
    def __init__(self, case: SynchronousTestCase, **kwargs: Any) -> None:
        self.clock = Clock()
        self.events: list[dict[str, Any]] = []
        self.wrapped = Recording(refuse=kwargs.pop("refuse", False))
        self.factory = ProxyHeaderFactory(self.wrapped, clock=self.clock, **kwargs)
        case.patch(self.factory, "_log", Logger(observer=self.events.append))

    def connect(self) -> tuple[Any, StringTransport]:
        protocol = self.factory.buildProtocol(PROXY)
        transport = StringTransport(hostAddress=HERE, peerAddress=PROXY)
        protocol.makeConnection(transport)
        return protocol, transport


class ProxyHeaderFactoryTests(SynchronousTestCase):
    def test_v1(self) -> None:
        """
        The wrapped factory builds the protocol only once the header is in,
        for the client's address; the protocol's transport gives the
        header's addresses; the bytes after the header arrive as its first
        data; writes reach the real transport; the header timer is gone.
        """
        harness = Harness(self)
        wrapper, transport = harness.connect()
        self.assertEqual(harness.wrapped.built, [])
        wrapper.dataReceived(V1[:10])
        self.assertEqual(harness.wrapped.built, [])
        wrapper.dataReceived(V1[10:] + b"ping\n")
        client = IPv4Address("TCP", "192.0.2.7", 40001)
        self.assertEqual(harness.wrapped.built, [client])
        (protocol,) = harness.wrapped.protocols
        self.assertEqual(protocol.peerAtConnect, client)
        self.assertEqual(
            protocol.hostAtConnect, IPv4Address("TCP", "198.51.100.1", 6666)
        )
        self.assertEqual(protocol.received, [b"ping\n"])
        wrapper.dataReceived(b"more")
        self.assertEqual(protocol.received, [b"ping\n", b"more"])
        assert protocol.transport is not None
        protocol.transport.write(b"pong\n")
        protocol.transport.writeSequence([b"a", b"b"])
        self.assertEqual(transport.value(), b"pong\nab")
        self.assertEqual(harness.clock.getDelayedCalls(), [])
        self.assertIs(protocol.transport.transport, transport)  # type: ignore[attr-defined]
        self.assertTrue(ITransport.providedBy(protocol.transport))
        protocol.transport.loseConnection()
        self.assertTrue(transport.disconnecting)
        wrapper.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(protocol.lost), 1)
        self.assertEqual(harness.factory.failures, {})

    def test_v2Local(self) -> None:
        """
        A LOCAL header (HAProxy's health check): the proxy's own addresses.
        """
        harness = Harness(self)
        wrapper, _ = harness.connect()
        wrapper.dataReceived(v2(command=0x20) + b"ping\n")
        self.assertEqual(harness.wrapped.built, [PROXY])
        (protocol,) = harness.wrapped.protocols
        self.assertEqual(protocol.peerAtConnect, PROXY)
        self.assertEqual(protocol.hostAtConnect, HERE)
        self.assertEqual(protocol.received, [b"ping\n"])

    def test_v2Split(self) -> None:
        harness = Harness(self)
        wrapper, _ = harness.connect()
        data = v2(block=tcp4Block("192.0.2.8", "198.51.100.1", 7, 8))
        wrapper.dataReceived(data[:15])
        wrapper.dataReceived(data[15:])
        self.assertEqual(harness.wrapped.built, [IPv4Address("TCP", "192.0.2.8", 7)])
        self.assertEqual(harness.wrapped.protocols[0].received, [])

    def test_refused(self) -> None:
        """
        A factory that builds no protocol (its connection limit) gets the
        connection closed at once.
        """
        harness = Harness(self, refuse=True)
        wrapper, transport = harness.connect()
        wrapper.dataReceived(V1 + b"ping\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(harness.wrapped.built), 1)
        wrapper.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(harness.factory.failures, {})

    def test_badHeader(self) -> None:
        """
        A bad header: aborted, counted by reason, one log line naming the
        proxy's address; no protocol is built.
        """
        harness = Harness(self)
        wrapper, transport = harness.connect()
        wrapper.dataReceived(b"ping\n")
        self.assertTrue(transport.disconnecting)
        wrapper.dataReceived(b"more")
        wrapper.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(harness.wrapped.built, [])
        self.assertEqual(harness.factory.failures, {"not a PROXY header": 1})
        (event,) = harness.events
        self.assertEqual(event["peer"], "10.0.0.9:50000")
        self.assertEqual(event["reason"], "not a PROXY header")
        self.assertEqual(harness.clock.getDelayedCalls(), [])

    def test_tooLong(self) -> None:
        harness = Harness(self)
        wrapper, transport = harness.connect()
        wrapper.dataReceived(b"PROXY " + b"x" * 200)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(harness.factory.failures, {"header too long": 1})

    def test_timeout(self) -> None:
        """
        A header unfinished after C{headerTimeout} seconds: aborted,
        counted, logged; not a moment earlier.
        """
        harness = Harness(self, headerTimeout=2.0)
        wrapper, transport = harness.connect()
        wrapper.dataReceived(V1[:20])
        harness.clock.advance(1.999)
        self.assertFalse(transport.disconnecting)
        harness.clock.advance(0.001)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(harness.factory.failures, {"header timeout": 1})
        self.assertEqual([e["reason"] for e in harness.events], ["header timeout"])
        wrapper.dataReceived(V1[20:])
        self.assertEqual(harness.wrapped.built, [])

    def test_closedBeforeHeader(self) -> None:
        """
        A peer that leaves before its header is counted, not logged, and
        its timer goes with it.
        """
        harness = Harness(self)
        wrapper, _ = harness.connect()
        wrapper.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(harness.factory.failures, {"closed before header": 1})
        self.assertEqual(harness.events, [])
        self.assertEqual(harness.clock.getDelayedCalls(), [])

    def test_logBudget(self) -> None:
        """
        C{mayLog} decides each log line; failures are counted either way,
        in the counter given (shared by several ports).
        """
        shared: Any = __import__("collections").Counter()
        harness = Harness(self, mayLog=lambda: False, failures=shared)
        for _ in range(3):
            wrapper, _ = harness.connect()
            wrapper.dataReceived(b"x")
        self.assertEqual(harness.events, [])
        self.assertEqual(shared, {"not a PROXY header": 3})

    def test_handshake(self) -> None:
        """
        Under TLS (C{haproxy:ssl:}) the handshake completes before the
        header can arrive: the protocol hears of it once connected, and of
        any later one at once.
        """
        harness = Harness(self)
        wrapper, _ = harness.connect()
        wrapper.handshakeCompleted()
        wrapper.dataReceived(V1)
        (protocol,) = harness.wrapped.protocols
        self.assertEqual(protocol.handshakes, 1)
        wrapper.handshakeCompleted()
        self.assertEqual(protocol.handshakes, 2)

    def test_validated(self) -> None:
        with self.assertRaises(ValueError) as caught:
            ProxyHeaderFactory(Recording(), headerTimeout=0)
        self.assertEqual(str(caught.exception), "'headerTimeout' must be > 0: 0")
        with self.assertRaises(ValueError):
            ProxyHeaderFactory(Recording(), maxHeaderSize=10)

    def test_logPrefixAndStart(self) -> None:
        """
        The port's log line names the wrapped factory, marked (PROXY);
        starting and stopping reach the wrapped factory.
        """
        wrapped = Recording()
        factory = ProxyHeaderFactory(wrapped, clock=Clock())
        self.assertEqual(factory.logPrefix(), "Recording (PROXY)")
        factory.doStart()
        self.assertEqual(wrapped.numPorts, 1)
        factory.doStop()
        self.assertEqual(wrapped.numPorts, 0)

    def test_description(self) -> None:
        self.assertEqual(proxiedDescription("haproxy:tcp:6666"), "tcp:6666")
        self.assertIsNone(proxiedDescription("tcp:6666"))


class EndpointTests(SynchronousTestCase):
    def test_listen(self) -> None:
        @implementer(IStreamServerEndpoint)
        class Inner:
            factory: Any = None

            def listen(self, factory: Any) -> Any:
                self.factory = factory
                return succeed("port")

        inner = Inner()
        endpoint = ProxyHeaderEndpoint(inner, headerTimeout=3.0, clock=Clock())
        verifyObject(IStreamServerEndpoint, endpoint)
        wrapped = Recording()
        self.assertEqual(self.successResultOf(endpoint.listen(wrapped)), "port")
        self.assertIsInstance(inner.factory, ProxyHeaderFactory)
        self.assertIs(inner.factory.wrappedFactory, wrapped)
        self.assertEqual(inner.factory.headerTimeout, 3.0)


class ServerLimitsTests(SynchronousTestCase):
    """
    The server's per-address limit, behind the header: it counts the
    client's address, and the connect line names it.
    """

    def test_perAddress(self) -> None:
        clock = Clock()
        server = ServerFactory(
            heartbeatConfig=HeartbeatConfig(idle=5, checkInterval=1),
            clock=clock,
            pingServerConfig=PingServerConfig(pingRate=0),
            limits=ConnectionLimits(maxConnectionsPerAddress=1),
        )
        events: list[dict[str, Any]] = []
        self.patch(ServerFactory, "_log", Logger(observer=events.append))
        self.patch(ServerProtocol, "_log", Logger(observer=events.append))
        factory = ProxyHeaderFactory(server, clock=clock)
        sent = []
        for source in ["192.0.2.2", "192.0.2.2", "192.0.2.3"]:
            wrapper = factory.buildProtocol(PROXY)
            transport = StringTransport(hostAddress=HERE, peerAddress=PROXY)
            wrapper.makeConnection(transport)
            header = f"PROXY TCP4 {source} 10.0.0.1 40000 6666\r\n".encode()
            wrapper.dataReceived(header + b"ping\n")
            sent.append(transport.value())
        self.assertEqual(sent[0], b"pong\n")
        self.assertIn(b"error too_many_connections", sent[1])
        self.assertEqual(sent[2], b"pong\n")
        self.assertEqual(
            [e["peer"] for e in events if "peer" in e],
            ["192.0.2.2:40000", "192.0.2.2:40000", "192.0.2.3:40000"],
        )
        self.assertEqual(server.live, 2)
