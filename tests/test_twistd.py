"""
The seed's experiment against the real C{twistd -n heartbeat} process.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.copyright import version as twistedVersion
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

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
