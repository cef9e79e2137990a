"""
The README's ping/pong examples run and do what the README says.
"""

from __future__ import annotations

import io
import shutil
import sys
from collections import namedtuple

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from ._readme import runExample

Usage = namedtuple("Usage", "total used free")


class PingClientExampleTests(SynchronousTestCase):
    """
    C{example-pingclient}: prints round trips and dead peers.
    """

    def test_pingClient(self) -> None:
        factory = runExample("example-pingclient")["factory"]
        clock = Clock()
        factory.heartbeatClock = clock
        factory.pingRandom = lambda: 0.0
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        transport.abortConnection = transport.loseConnection
        protocol.makeConnection(transport)
        clock.advance(2)
        self.assertEqual(transport.value(), b"ping 1\n")
        clock.advance(0.004)
        protocol.dataReceived(b"pong 1\n")
        clock.advance(2)
        clock.advance(5)
        self.assertEqual(
            out.getvalue().splitlines(),
            [
                "rtt 4.000 ms, smoothed 4.000 ms",
                "dead: no pong within 5 s; reconnecting",
            ],
        )
        self.assertTrue(transport.disconnecting)


class HealthCheckExampleTests(SynchronousTestCase):
    """
    C{example-healthcheck}: C{pong} while the checks pass, a named failure
    while the disk is full, and the protocol's own lines untouched.
    """

    def test_healthCheck(self) -> None:
        factory = runExample("example-healthcheck")["factory"]
        clock = Clock()
        if hasattr(factory, "pingResponder"):  # the 0.1 form, deprecated
            factory.pingResponder.clock = clock
        else:
            factory.heartbeatClock = clock
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"ping 7\nhello\n")
        self.assertEqual(transport.value(), b"pong 7\nyou said: hello\n")
        transport.clear()
        self.patch(shutil, "disk_usage", lambda path: Usage(0, 0, 42 * 2**20))
        clock.advance(1)
        protocol.dataReceived(b"ping 8\n")
        self.assertEqual(
            transport.value(), b"error unhealthy 8 :disk: only 42 MiB free\n"
        )
        self.assertFalse(transport.disconnecting)
