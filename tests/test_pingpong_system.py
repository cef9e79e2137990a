"""
System tests of the ping/pong heartbeat: a SIGSTOPped server process (the
real twistd plugin and the real client command), and HAProxy as a
middlebox that forwards no TCP keepalive and cuts idle flows.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.trial.unittest import TestCase

from heartbeat_twisted import HeartbeatConfig
from heartbeat_twisted.ping import (
    PingClientFactory,
    PingConfig,
)
from heartbeat_twisted.server._protocol import DemoFactory

from ._peers import connectPeer, waitListening
from ._pingnet import (
    RecordingEvents,
    freePort,
    tempPath,
)
from ._system import requireSystem
from ._twistd import ChildProcess, twistdArgv

HAPROXY_CONFIG = """\
global
    maxconn 64
defaults
    mode tcp
    timeout connect 2s
    timeout client 3s
    timeout server 30s
frontend heartbeat
    bind 127.0.0.1:{front}
    default_backend demo
backend demo
    server demo 127.0.0.1:{back}
"""


class StoppedServerTests(TestCase):
    """
    The client command against a C{twistd heartbeat} process that is
    stopped with SIGSTOP, then resumed with SIGCONT.
    """

    timeout = 40

    @inlineCallbacks
    def test_deadThenReconnected(self) -> Any:
        """
        A stopped server (its kernel still ACKs) is declared dead within
        interval + timeout; once it resumes the client reconnects and gets
        answers again.
        """
        requireSystem(self, root=False)
        interval, timeout = 0.5, 1.0
        port = freePort()
        server = ChildProcess(
            self,
            twistdArgv(
                "heartbeat",
                "--port",
                f"tcp:{port}:interface=127.0.0.1",
                "--idle",
                "30",
                "--ping-rate",
                "10",
            ),
        )
        yield server.waitFor("starting on", 15)
        client = ChildProcess(
            self,
            [
                sys.executable,
                "-m",
                "heartbeat_twisted.client",
                f"tcp:127.0.0.1:{port}",
                "--interval",
                str(interval),
                "--timeout",
                str(timeout),
                "--reconnect-initial",
                "0.2",
                "--reconnect-max",
                "1",
            ],
        )
        yield client.waitUntil(
            lambda: len(client.matching("rtt ")) >= 2, 15, "two round trips"
        )
        self.assertEqual(len(client.matching("connected ")), 1)

        server.signal("STOP")
        stopped = reactor.seconds()
        yield client.waitUntil(
            lambda: bool(client.matching("dead")), 10, "the dead-peer line"
        )
        detected = client.matching("dead")[0][0] - stopped
        self.assertLessEqual(detected, interval + timeout + 0.3)
        self.assertIn("no answer within 1 s", client.matching("dead")[0][1])

        # Stay stopped a little longer: the kernel may complete handshakes
        # for the stopped process, so "connected" lines can come and go.
        yield task.deferLater(reactor, 1.0, lambda: None)
        server.signal("CONT")
        resumed = reactor.seconds()
        yield client.waitUntil(
            lambda: any(t > resumed for t, _ in client.matching("rtt ")),
            15,
            "a round trip after SIGCONT",
        )
        recovered = next(t for t, _ in client.matching("rtt ") if t > resumed)
        self.assertGreaterEqual(len(client.matching("connected ")), 2)
        self.assertLess(recovered - resumed, 10)
        # Leave the figures in the test log.
        self.measured = {
            "deadAfterStop": round(detected, 3),
            "answeredAfterResume": round(recovered - resumed, 3),
        }
        print(f"\nSIGSTOP figures: {self.measured}")


class HAProxyTests(TestCase):
    """
    Through HAProxy in TCP mode with C{timeout client 3s}.
    """

    timeout = 40

    @inlineCallbacks
    def test_pingingStaysSilentCut(self) -> Any:
        """
        A client pinging every second stays connected for 15 s while a
        silent one is cut at about 3 s (both at once).
        """
        requireSystem(self, "haproxy", root=False)
        factory = DemoFactory(heartbeatConfig=HeartbeatConfig(idle=60))
        listening = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            factory
        )
        self.addCleanup(listening.stopListening)
        front = freePort()
        config = tempPath(self, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(HAPROXY_CONFIG.format(front=front, back=listening.getHost().port))
        proxy = ChildProcess(self, ["haproxy", "-db", "-f", config])
        yield waitListening(front, 10)

        events = RecordingEvents()
        clientFactory = PingClientFactory(PingConfig(interval=1, timeout=2), events)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", front)
        pinging = yield endpoint.connect(clientFactory)
        self.addCleanup(pinging.transport.abortConnection)
        silent = yield connectPeer(front)
        self.addCleanup(silent.transport.abortConnection)
        start = reactor.seconds()

        yield silent.whenLost(8, "the cut")
        assert silent.lostAt is not None and silent.madeAt is not None
        cut = silent.lostAt - silent.madeAt
        self.assertGreaterEqual(cut, 2.9)
        self.assertLessEqual(cut, 4.0)

        yield task.deferLater(reactor, 15 - (reactor.seconds() - start), lambda: None)
        self.assertEqual(events.count("disconnected"), 0, proxy.captured())
        self.assertEqual(events.count("dead"), 0)
        self.assertGreaterEqual(events.count("rtt"), 13)
        rtts = pinging.pingStats
        print(
            f"\nHAProxy figures: silent cut after {cut:.3f} s; pinging client "
            f"{rtts.count} pongs in 15 s, rtt min {rtts.min * 1000:.3f} ms, "
            f"smoothed {rtts.smoothed * 1000:.3f} ms"
        )
