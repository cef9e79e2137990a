"""
The write path in C{twistd heartbeat}: its options, its close reason, and a
client that asks for pongs and never reads them.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionAborted
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase

from heartbeat_twisted import HeartbeatConfig
from heartbeat_twisted.ping import PingServerConfig
from heartbeat_twisted.server._protocol import (
    ServerFactory,
    ServerProtocol,
    closeReason,
)
from heartbeat_twisted.server._writeoptions import WriteSettings
from heartbeat_twisted.tap import Options

from ._peers import Peer, connectPeer
from .test_writepath_tcp import connectSmall


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        """
        Eager writes on, 1 MiB of unsent output, 10 s of grace.
        """
        self.assertEqual(parse().writeSettings, WriteSettings(True, 1 << 20, 10.0))
        self.assertIsInstance(ServerFactory.writeSettings, WriteSettings)

    def test_values(self) -> None:
        options = parse(
            "--no-eager-writes", "--max-unsent", "65536", "--slow-reader-grace", "2.5"
        )
        self.assertEqual(options.writeSettings, WriteSettings(False, 65536, 2.5))
        self.assertIsNone(parse("--max-unsent", "0").writeSettings.maxUnsent)

    def test_errors(self) -> None:
        for argv, message in [
            (["--max-unsent", "lots"], "--max-unsent must be a whole number of bytes"),
            (["--max-unsent", "-1"], "--max-unsent must be >= 0: -1"),
            (["--slow-reader-grace", "soon"], "--slow-reader-grace must be a number"),
            (["--slow-reader-grace", "0.001"], "--slow-reader-grace must be >= 0.01"),
        ]:
            with self.assertRaises(UsageError) as caught:
                parse(*argv)
            self.assertIn(message, str(caught.exception))

    def test_settingsValidated(self) -> None:
        self.assertRaises(ValueError, WriteSettings, maxUnsent=0)
        self.assertRaises(ValueError, WriteSettings, grace=0)

    def test_closeReason(self) -> None:
        class Closed:
            heartbeatCloseReason = None
            writeCloseReason = "slow reader"

        reason = closeReason(Closed(), Failure(ConnectionAborted()))  # type: ignore[arg-type]
        self.assertEqual(reason, "slow reader")


class SmallSendBuffer(ServerProtocol):
    """
    The server's protocol with a small kernel send buffer, so that unsent
    output builds up in the process after a few kilobytes (on loopback the
    kernel would otherwise take megabytes first).
    """

    def connectionMade(self) -> None:
        handle = self.transport.getHandle()  # type: ignore[union-attr]
        handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        super().connectionMade()


class SlowReaderTests(TestCase):
    timeout = 20

    @inlineCallbacks
    def test_pingsNeverRead(self) -> Any:
        """
        A client that floods pings and never reads the pongs: the server
        stops reading from it, its unsent pongs stay bounded, and it is
        aborted as a C{slow reader}; a well-behaved client is answered
        throughout.
        """
        factory = ServerFactory(
            heartbeatConfig=HeartbeatConfig(idle=30),
            clock=reactor,
            pingServerConfig=PingServerConfig(pingRate=0),
        )
        factory.protocol = SmallSendBuffer
        factory.writeSettings = WriteSettings(maxUnsent=32 << 10, grace=0.5)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        number = port.getHost().port
        good = yield connectPeer(number)
        self.addCleanup(lambda: good.transport.abortConnection())
        good.send(b"ping 1\n")
        yield good.expect(b"pong 1\n")

        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        closed: Deferred[str] = Deferred()
        disconnected = factory.disconnected

        def seen(protocol: Any, reason: str) -> None:
            disconnected(protocol, reason)
            if not closed.called:
                closed.callback(reason)

        factory.disconnected = seen  # type: ignore[method-assign]
        flooder = connectSmall(number, Peer(), paused=True)
        self.addCleanup(lambda: flooder.transport.abortConnection())
        flooder.send(b"ping\n" * 200000)  # 1 MB of pings for 1 MB of pongs
        yield closed.addTimeout(10, reactor)
        self.assertEqual(factory.closed["slow reader"], 1)
        (aborted,) = [e for e in events if e.get("reason") == "slow reader"]
        # Above the bound it stopped reading: at most one read (64 KiB of
        # pings) more of pongs.
        self.assertGreater(aborted["unsent"], 32 << 10)
        self.assertLessEqual(aborted["unsent"], (32 << 10) + 65536)
        good.send(b"ping 3\n")
        yield good.expect(b"pong 3\n")
        self.assertIsNone(good.reason)
