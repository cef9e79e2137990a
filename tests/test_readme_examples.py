"""
The README's first examples do what the README says, over real sockets
where a user would try them with nc.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from heartbeat_twisted import HeartbeatConfig, KeepAliveConfig
from heartbeat_twisted.ping import PingServerConfig
from heartbeat_twisted.testing import connect

from ._peers import connectPeer
from ._readme import runExample


class SimplestExampleTests(SynchronousTestCase):
    """
    C{example-simplest}: a plain C{Factory.forProtocol} whose protocol
    carries its config echoes, and closes after 30 silent seconds.
    """

    def test_echoesThenClosesAfterIdle(self) -> None:
        factory = runExample("example-simplest")["factory"]
        clock = Clock()
        connection = connect(factory, clock=clock)
        connection.receive(b"hello\n")
        self.assertEqual(connection.transport.value(), b"hello\n")
        clock.pump([1] * 28 + [0.5])
        self.assertFalse(connection.closed)
        connection.receive(b"still here\n")  # t=28.5: recorded as 29
        clock.pump([0.5] + [1] * 29)  # t=58
        self.assertFalse(connection.closed)
        clock.advance(1)  # t=59 = 29 + idle
        self.assertTrue(connection.closed)
        self.assertEqual(connection.protocol.heartbeatCloseReason, "idle")


class TogetherExampleTests(TestCase):
    """
    C{example-together}: all three mechanisms in one server, configured in
    one call; answers C{nc}'s lines and pings over a real socket.
    """

    def test_configured(self) -> None:
        factory = runExample("example-together")["factory"]
        self.assertEqual(factory.heartbeatConfig, HeartbeatConfig(idle=60))
        self.assertEqual(factory.keepAliveConfig, KeepAliveConfig(30, 5, 4))
        self.assertEqual(
            factory.pingServerConfig, PingServerConfig(pingRate=1, pingBurst=3)
        )

    @inlineCallbacks
    def test_answersLinesAndPings(self) -> Generator[Any, Any, None]:
        """
        Over TCP, as with C{nc}: a line is echoed, a ping answered, and the
        server's socket has the example's keepalive settings.
        """
        factory = runExample("example-together")["factory"]
        built = []
        buildProtocol = factory.buildProtocol

        def capture(addr):  # type: ignore[no-untyped-def]
            protocol = buildProtocol(addr)
            built.append(protocol)
            return protocol

        factory.buildProtocol = capture
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        port = yield endpoint.listen(factory)
        self.addCleanup(port.stopListening)
        peer = yield connectPeer(port.getHost().port)
        self.addCleanup(peer.transport.abortConnection)
        peer.send(b"hello\nping 1\n")
        yield peer.expect(b"you said: hello\npong 1\n", timeout=10)
        [server] = built
        settings = server.keepAliveResult.settings()
        self.assertEqual(
            (settings["idle"], settings["interval"], settings["count"]), (30, 5, 4)
        )


class FactoryKeywordsTests(SynchronousTestCase):
    """
    One configuration style: every config is a keyword named as the
    attribute it sets; the 0.1 C{keepAlive=} still works, with a warning.
    """

    def test_oldKeepAliveKeywordWarns(self) -> None:
        from twisted.internet.protocol import Factory

        from heartbeat_twisted import HeartbeatFactoryMixin

        class Built(HeartbeatFactoryMixin, Factory):
            pass

        config = KeepAliveConfig(60, 10, 6)
        factory = Built(keepAlive=config)
        self.assertIs(factory.keepAliveConfig, config)
        [warning] = self.flushWarnings()
        self.assertIs(warning["category"], DeprecationWarning)
        self.assertIn("use keepAliveConfig=", warning["message"])

    def test_wrongKindNamed(self) -> None:
        from twisted.internet.protocol import Factory

        from heartbeat_twisted import HeartbeatFactoryMixin

        class Built(HeartbeatFactoryMixin, Factory):
            pass

        with self.assertRaises(TypeError) as caught:
            Built(pingServerConfig=HeartbeatConfig(idle=1))
        self.assertIn(
            "pingServerConfig must be a PingServerConfig", str(caught.exception)
        )
