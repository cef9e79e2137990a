"""
The seed's experiment against the real C{twistd -n heartbeat} process.
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
from collections.abc import Generator
from typing import Any

from twisted.copyright import version as twistedVersion
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from heartbeat_twisted.server._limits import defaultBacklog

from ._peers import connectPeer
from ._twistd import ChildProcess, twistdArgv

IDLE = 1.0
INTERVAL = 0.25
# How late a close may be seen on a busy shared machine, beyond the bound.
SLACK = 0.5
# twistd exits with status 1 on a usage error only from Twisted 26.10 on
# (Twisted issue 12656); before, it prints the same message and exits 0.
USAGE_EXIT = 1 if tuple(map(int, twistedVersion.split(".")[:2])) >= (26, 10) else 0


class TwistdHeartbeatTests(TestCase):
    timeout = 60

    def startServer(self, *options: str) -> ChildProcess:
        return ChildProcess(
            self,
            twistdArgv(
                "heartbeat",
                "--port",
                "tcp:0:interface=127.0.0.1",
                "--idle",
                str(IDLE),
                "--check-interval",
                str(INTERVAL),
                *options,
            ),
        )

    @defer.inlineCallbacks
    def test_silentClientClosedAfterIdle(self) -> Generator[Any, Any, None]:
        """
        Under C{--activity bytes} any byte counts: a client that sends one
        line and falls silent is closed C{idle} seconds after it; with
        C{--log-payloads} the line is in the log.
        """
        server = self.startServer("--activity", "bytes", "--log-payloads")
        port = yield server.listeningPort()
        peer = yield connectPeer(port)
        peer.send(b"hello\n")
        yield peer.whenLost()
        silent = peer.lostAt - peer.lastSentAt
        self.assertGreaterEqual(silent, IDLE)
        self.assertLessEqual(silent, IDLE + INTERVAL + SLACK)
        yield server.waitFor(r"close fd 1: idle")
        log = "\n".join(server.lines)
        self.assertRegex(log, r"Client: Connect 1 from 127\.0\.0\.1:\d+")
        self.assertIn("receive fd 1: b'hello\\n' (6 bytes)", log)

    @defer.inlineCallbacks
    def test_pingingClientStays(self) -> Generator[Any, Any, None]:
        """
        A client that sends C{ping} every 0.6 s (slower than the server's
        ping-flood limit of 0.5 s) stays connected for over 3 idle periods
        and gets a C{pong} for each; once it stops it is closed C{idle}
        later.
        """
        server = self.startServer()
        port = yield server.listeningPort()
        peer = yield connectPeer(port)
        for count in range(1, 7):
            peer.send(b"ping\n")
            yield peer.expect(b"pong\n" * count)
            yield task.deferLater(reactor, 0.6, lambda: None)
        self.assertIsNone(peer.reason)
        self.assertGreater(reactor.seconds() - peer.madeAt, 3 * IDLE)
        yield peer.whenLost()
        silent = peer.lostAt - peer.lastSentAt
        self.assertGreaterEqual(silent, IDLE)
        self.assertLessEqual(silent, IDLE + INTERVAL + SLACK)
        yield server.waitFor(r"close fd 1: idle")

    @defer.inlineCallbacks
    def test_peerClosed(self) -> Generator[Any, Any, None]:
        server = self.startServer()
        port = yield server.listeningPort()
        first = yield connectPeer(port)
        second = yield connectPeer(port)
        yield server.waitFor(r"Client: Connect 2")
        first.transport.loseConnection()
        second.send(b"ping token-7\n")
        yield second.expect(b"pong token-7\n")
        yield server.waitFor(r"close fd 1: peer closed")

    @defer.inlineCallbacks
    def test_badOptionsExitWithUsageError(self) -> Generator[Any, Any, None]:
        cases = [
            (["--idle", "-1"], "--idle must be > 0: -1.0"),
            (["--idle", "soon"], "--idle must be a number of seconds: 'soon'"),
            (["--idle", "2", "--check-interval", "3"], "--check-interval must be"),
            (["--port", "70000"], "--port must be in 0..65535: 70000"),
            (["--port", "bogus:1"], "--port 'bogus:1'"),
        ]
        for options, message in cases:
            process = ChildProcess(self, twistdArgv("heartbeat", *options))
            code = yield process.whenEnded()
            self.assertEqual(code, USAGE_EXIT, options)
            self.assertIn(message, "\n".join(process.lines), options)


class StartupTests(TestCase):
    """
    Startup and environment errors end the server with one line naming the
    option; SIGHUP does not end it; the first line states the settings.
    """

    timeout = 60

    @defer.inlineCallbacks
    def assertOneLineExit(self, message: str, *options: str, status: int = 1) -> Any:
        process = ChildProcess(self, twistdArgv("heartbeat", *options))
        code = yield process.whenEnded()
        self.assertEqual(code, status, options)
        log = "\n".join(process.lines)
        self.assertIn(message, log)
        self.assertNotIn("Traceback", log)

    @defer.inlineCallbacks
    def test_portInUse(self) -> Generator[Any, Any, None]:
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        yield self.assertOneLineExit(
            f"--port tcp:{port}:interface=127.0.0.1:backlog={defaultBacklog()}: "
            "cannot listen: the address "
            "is already in use",
            "--port",
            f"tcp:{port}:interface=127.0.0.1",
        )

    @defer.inlineCallbacks
    def test_unixSocketInMissingDirectory(self) -> Generator[Any, Any, None]:
        missing = os.path.join(tempfile.gettempdir(), f"hbt-missing-{os.getpid()}")
        yield self.assertOneLineExit(
            f"--port unix:{missing}/s:backlog={defaultBacklog()}: cannot listen: "
            f"the directory {missing} "
            "does not exist",
            "--port",
            f"unix:{missing}/s",
        )

    @defer.inlineCallbacks
    def test_durationsBelowTenMilliseconds(self) -> Generator[Any, Any, None]:
        yield self.assertOneLineExit(
            "--check-interval must be at least 0.01 s (10 ms): 0.001",
            "--check-interval",
            "0.001",
            status=USAGE_EXIT,
        )

    @defer.inlineCallbacks
    def test_settingsHangupAndUserTimeout(self) -> Generator[Any, Any, None]:
        """
        The startup line states the settings; a C{--user-timeout} under a
        second is warned about; SIGHUP is logged and the server keeps
        answering.
        """
        server = ChildProcess(
            self,
            twistdArgv(
                "heartbeat",
                *("--port", "tcp:0:interface=127.0.0.1", "--user-timeout", "30"),
                *("--max-connections", "50", "--backlog", "64"),
            ),
        )
        port = yield server.listeningPort()
        yield server.waitFor(
            r"heartbeat server: idle=5s .*activity=pings max-connections=50 "
            r"max-connections-per-ip=1000 \(not loopback\) "
            r"connection-rate=100/s burst=200 "
            r"backlog=64 .* user-timeout=30ms"
        )
        yield server.waitFor(r"--user-timeout is in milliseconds: 30 ms")
        yield server.waitFor(r"SIGHUP will be logged and ignored")
        server.signal("HUP")
        yield server.waitFor(r"SIGHUP received: ignored")
        peer = yield connectPeer(port)
        peer.send(b"ping\n")
        yield peer.expect(b"pong\n")
        self.assertTrue(server.running)

    @defer.inlineCallbacks
    def test_resetLoggedAsPeerReset(self) -> Generator[Any, Any, None]:
        """
        A client that resets its connection (RST) is logged as C{peer reset}.
        """
        server = ChildProcess(
            self, twistdArgv("heartbeat", "--port", "tcp:0:interface=127.0.0.1")
        )
        port = yield server.listeningPort()
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(client.close)
        yield server.waitFor(r"Client: Connect 1 from")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        yield server.waitFor(r"close fd 1: peer reset")
