"""
Flood control judges a client's rate with a token bucket, and forgives
pings that arrive together after a stall of the server itself.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineReceiver
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted.ping import (
    PingAnswerMixin,
    PingClientFactory,
    PingConfig,
)


class Server(PingAnswerMixin, LineReceiver):
    pass


def serve(clock: Clock) -> tuple[Any, StringTransport, Any]:
    """
    A server at the defaults (what C{twistd heartbeat} runs).
    """
    factory = Factory.forProtocol(Server)
    factory.heartbeatClock = clock
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport, factory


class StallTests(SynchronousTestCase):
    """
    A client pinging every second through a stall of the server: the pings
    sent during the stall are read together when it ends.
    """

    def stalled(self, stall: float) -> tuple[StringTransport, Any]:
        clock = Clock()
        proto, transport, factory = serve(clock)
        pending = b""
        for _ in range(5):  # before the stall: on time
            clock.advance(1)
            proto.dataReceived(b"ping\n")
        # The server is stalled: its timed calls run late, all at once, and
        # the pings sent every second meanwhile wait in the kernel.
        pending = b"ping\n" * int(stall)
        clock.advance(stall)
        proto.dataReceived(pending)
        for _ in range(5):  # after: on time again
            clock.advance(1)
            proto.dataReceived(b"ping\n")
        return transport, factory

    def test_stall3(self) -> None:
        transport, _factory = self.stalled(3)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(transport.value(), b"pong\n" * 13)

    def test_stall10(self) -> None:
        transport, factory = self.stalled(10)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(transport.value(), b"pong\n" * 20)
        self.assertEqual(factory.pingCounters.stallsForgiven, 1)
        self.assertEqual(factory.pingCounters.refused, {})

    def test_floodAfterStallStillClosed(self) -> None:
        """
        The stall refills the bucket by its length at C{pingRate}, no more:
        a flood read after it is still refused.
        """
        clock = Clock()
        proto, transport, factory = serve(clock)
        clock.advance(10)
        proto.dataReceived(b"ping\n" * 100)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(factory.pingCounters.refused, {"too_many_pings": 1})
        # 3 of the burst, 2 a second for the (at most 10 s) stall.
        self.assertLessEqual(factory.pingCounters.pongs, 23)

    def test_forgivenessEndsAfterStall(self) -> None:
        """
        What the stall refilled is not kept: a flood a few seconds after
        the stall gets only the burst.
        """
        clock = Clock()
        proto, transport, _factory = serve(clock)
        clock.advance(10)
        proto.dataReceived(b"ping\n")
        clock.pump([1.0] * 3)
        proto.dataReceived(b"ping\n" * 10)
        self.assertEqual(transport.value().count(b"pong\n"), 4)
        self.assertTrue(transport.disconnecting)

    def test_stallInsideAHandler(self) -> None:
        """
        A stall noticed by the ping itself, before the watch's timer ran
        (a handler blocked the reactor and the reads come first).
        """
        clock = Clock()
        proto, transport, _factory = serve(clock)
        clock.advance(1)
        # Move time without running timers: the watch is overdue.
        clock.rightNow += 8
        proto.dataReceived(b"ping\n" * 8)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(transport.value(), b"pong\n" * 8)


class BundledClientTests(SynchronousTestCase):
    """
    The bundled client at its defaults, with jitter, never trips the
    server's defaults, through stalls of the server up to 10 s.
    """

    def test_defaultsThroughStalls(self) -> None:
        clock = Clock()
        server, toClient, _ = serve(clock)
        client = PingClientFactory(
            PingConfig(interval=2, timeout=5), clock=clock
        ).buildProtocol(None)
        toServer = StringTransport()
        toServer.abortConnection = toServer.loseConnection
        client.makeConnection(toServer)

        def exchange() -> None:
            data = toServer.value()
            toServer.clear()
            if data:
                server.dataReceived(data)
            answer = toClient.value()
            toClient.clear()
            if answer:
                client.dataReceived(answer)

        for stall in (3.0, 10.0, 0.5, 7.0):
            for _ in range(40):
                clock.advance(0.25)
                exchange()
            clock.advance(stall)  # the server reads nothing meanwhile
            exchange()
        self.assertFalse(toClient.disconnecting)
        self.assertEqual(server.factory.pingCounters.refused, {})
        self.assertGreater(client.pingStats.count, 15)
