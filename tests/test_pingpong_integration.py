"""
Ping/pong over real loopback sockets, server and clients in this process.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor, task
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import globalLogPublisher
from twisted.protocols.basic import LineReceiver
from twisted.trial.unittest import TestCase

from heartbeat_twisted import HeartbeatConfig
from heartbeat_twisted.ping import (
    PingAnswerMixin,
    PingClientFactory,
    PingConfig,
    PingingMixin,
    PingServerConfig,
    PingState,
)
from heartbeat_twisted.server._protocol import DemoFactory

from ._peers import connectPeer
from ._pingnet import RecordingEvents


class LoopbackTests(TestCase):
    """
    The demo server and pinging clients on 127.0.0.1.
    """

    timeout = 30

    @inlineCallbacks
    def serve(self, idle: float, checkInterval: float, **limits: Any) -> Any:
        self.closes: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_format") == "close fd {fd}: {reason}":
                self.closes.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        self.factory = DemoFactory(
            heartbeatConfig=HeartbeatConfig(idle=idle, checkInterval=checkInterval),
            pingServerConfig=PingServerConfig(**limits),
        )
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            self.factory
        )
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port

    @inlineCallbacks
    def pingClient(self, interval: float, timeout: float) -> Any:
        events = RecordingEvents()
        factory = PingClientFactory(
            PingConfig(interval=interval, timeout=timeout), events
        )
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        protocol = yield endpoint.connect(factory)
        self.addCleanup(protocol.transport.abortConnection)
        return events, protocol

    @inlineCallbacks
    def test_pingingStaysPastIdle(self) -> Any:
        """
        A client pinging every 0.3 s stays connected for 3 s, three times
        the server's idle time; once it stops, the server closes it idle
        seconds later, within one sweep.
        """
        idle, sweep, interval = 1.0, 0.1, 0.3
        yield self.serve(idle, sweep, pingRate=10)
        events, protocol = yield self.pingClient(interval, 1.0)
        yield task.deferLater(reactor, 3 * idle, lambda: None)
        self.assertEqual(events.count("disconnected"), 0)
        self.assertGreaterEqual(events.count("rtt"), 8)
        self.assertEqual(events.count("dead"), 0)

        protocol.stopPinging()
        self.assertIs(protocol.pingState, PingState.STOPPED)
        stopped = reactor.seconds()
        yield events.waitUntil(
            lambda: events.count("disconnected") == 1, 5, "the idle close"
        )
        closedAfter = events.times("disconnected")[0] - stopped
        # The last ping left at most one interval before the stop.
        self.assertGreaterEqual(closedAfter, idle - interval)
        self.assertLessEqual(closedAfter, idle + sweep + 0.5)
        yield task.deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(self.factory.closed, {"idle": 1})
        self.assertEqual([e["reason"] for e in self.closes], ["idle"])

    @inlineCallbacks
    def test_offendersClosedOthersServed(self) -> Any:
        """
        Garbage, binary data, an over-long line and a ping flood each get
        their error line and are closed, each with its logged reason; a
        well-behaved client on the same server is answered throughout.
        """
        yield self.serve(
            30,
            1,
            pingRate=5,
            pingBurst=3,
            maxLineLength=64,
            maxBadLines=2,
        )
        events, protocol = yield self.pingClient(0.3, 2.0)
        yield events.waitUntil(lambda: events.count("rtt") >= 1, 5, "a first pong")

        sends = {
            "garbage": b"hello\nGET / HTTP/1.1\nHost: x\n",
            "binary": b"\x00\x01\x02\xfe\xff\x80\n",
            "long": b"A" * 200,
            "flood": b"ping\n" * 20,
        }
        expected = {
            "garbage": b"error too_many_errors :",
            "binary": b"error binary_data :",
            "long": b"error line_too_long :lines are limited to 64 bytes",
            "flood": b"error too_many_pings :at most 3 pings at once and 5 a second",
        }
        offenders = {}
        for name, data in sends.items():
            raw = yield connectPeer(self.port)
            self.addCleanup(raw.transport.abortConnection)
            raw.send(data)
            offenders[name] = raw
        yield gatherResults([raw.whenLost(5, name) for name, raw in offenders.items()])
        for name, raw in offenders.items():
            last = raw.received.splitlines()[-1]
            self.assertTrue(last.startswith(expected[name]), (name, raw.received))
        # The flood got its first pongs (the strikes) before the refusal.
        self.assertEqual(offenders["flood"].received.count(b"pong\n"), 3)

        answered = events.count("rtt")
        yield events.waitUntil(
            lambda: events.count("rtt") >= answered + 2, 5, "pongs after the abuse"
        )
        self.assertEqual(events.count("disconnected"), 0)
        self.assertIs(protocol.pingState in (PingState.QUIET, PingState.AWAITING), True)
        yield task.deferLater(reactor, 0.1, lambda: None)
        reasons = sorted(e["reason"] for e in self.closes)
        self.assertEqual(
            reasons,
            ["binary data", "line too long", "too many bad lines", "too_many_pings"],
        )
        self.assertEqual(
            dict(self.factory.pingCounters.refused),
            {
                "binary data": 1,
                "line too long": 1,
                "too many bad lines": 1,
                "too_many_pings": 1,
            },
        )

    @inlineCallbacks
    def test_halfCloseProbe(self) -> Any:
        """
        A probe that sends C{ping} and closes its sending side at once (as
        C{echo ping | nc -q 1} does) gets its C{pong} before the close.
        """
        yield self.serve(30, 1)
        raw = yield connectPeer(self.port)
        self.addCleanup(raw.transport.abortConnection)
        raw.send(b"ping probe-1\n")
        raw.transport.loseWriteConnection()
        yield raw.whenLost(5, "the close")
        self.assertEqual(raw.received, b"pong probe-1\n")
        yield task.deferLater(reactor, 0.1, lambda: None)
        self.assertEqual([e["reason"] for e in self.closes], ["peer closed"])


class Probing(PingAnswerMixin, PingingMixin, LineReceiver):
    """
    A server that answers pings and pings the clients that went quiet.
    """

    def connectionLost(self, reason: Any) -> None:
        self.factory.lost.append((reactor.seconds(), self.pingCloseReason))


class ProbingServerTests(TestCase):
    """
    The pinging mixin on the server side, over loopback.
    """

    timeout = 30

    @inlineCallbacks
    def test_dropsClientsThatDoNotAnswer(self) -> Any:
        """
        A client that answers the server's pings stays; one that reads but
        never answers is dropped interval + timeout after it went quiet.
        """
        interval, timeout = 0.3, 0.5
        factory = Factory.forProtocol(Probing)
        factory.lost = []
        factory.pingConfig = PingConfig(
            interval=interval, timeout=timeout, jitter=0, watch="received"
        )
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            factory
        )
        self.addCleanup(port.stopListening)
        events, _answering = yield self._answeringClient(port.getHost().port)
        mute = yield connectPeer(port.getHost().port)
        self.addCleanup(mute.transport.abortConnection)
        start = reactor.seconds()
        yield mute.whenLost(5, "the drop")
        dropped = mute.lostAt - start
        self.assertEqual(mute.received, b"ping 1\n")
        self.assertGreaterEqual(dropped, interval + timeout - 0.05)
        self.assertLessEqual(dropped, interval + timeout + 0.5)
        self.assertEqual([why for _, why in factory.lost], ["dead peer"])
        yield task.deferLater(reactor, 1.0, lambda: None)
        self.assertEqual(events.count("disconnected"), 0)
        self.assertEqual(len(factory.lost), 1)
        self.assertGreaterEqual(factory.pingCounters.answers, 3)

    @inlineCallbacks
    def _answeringClient(self, port: int) -> Any:
        events = RecordingEvents()
        # Its own pings are rare: it is the server that pings here.
        factory = PingClientFactory(PingConfig(interval=60, timeout=5), events)
        protocol = yield TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
        self.addCleanup(protocol.transport.abortConnection)
        return events, protocol
