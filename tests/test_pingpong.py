"""
Unit tests of the ping/pong mixins, in simulated time with in-memory
transports.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from heartbeat_twisted import HeartbeatConfig
from heartbeat_twisted.ping import (
    HealthCheck,
    HealthCheckError,
    HealthFailure,
    PingAnswerMixin,
    PingClientFactory,
    PingClientProtocol,
    PingConfig,
    PingCounters,
    PingEvents,
    PingingMixin,
    PingServerConfig,
    PingState,
    RoundTripStats,
)
from heartbeat_twisted.server._protocol import DemoFactory, fileHealthCheck

from ._pingnet import tempPath


class Server(PingAnswerMixin, LineReceiver):
    """
    An answering protocol with no commands of its own.
    """


class Chat(PingAnswerMixin, LineReceiver):
    """
    An answering protocol with a command of its own.
    """

    def connectionMade(self) -> None:
        self.lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)


def serve(
    config: PingServerConfig | None = None,
    protocol: type[LineReceiver] = Server,
    checks: list[HealthCheck] | None = None,
    clock: Clock | None = None,
    maxAge: float = 0.0,
    factory: Any = None,
) -> tuple[Any, StringTransport, PingCounters, Clock]:
    """
    Connect an answering protocol; the factory gives the settings and the
    clock, each in one place.
    """
    clock = clock or Clock()
    config = config or PingServerConfig()
    if checks or maxAge:
        config = attrs.evolve(
            config, healthChecks=tuple(checks or ()), healthCheckMaxAge=maxAge
        )
    if factory is None:
        factory = Factory.forProtocol(protocol)
        factory.pingServerConfig = config
        factory.heartbeatClock = clock
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport, factory.pingCounters, clock


def lines(transport: StringTransport) -> list[bytes]:
    value = transport.value()
    transport.clear()
    return value.splitlines()


@contextmanager
def capturedLogs(events: list[dict[str, Any]]) -> Iterator[None]:
    def observe(event: dict[str, Any]) -> None:
        if event.get("log_namespace", "").startswith("heartbeat_twisted"):
            events.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield
    finally:
        globalLogPublisher.removeObserver(observe)


class ConfigTests(SynchronousTestCase):
    """
    L{PingConfig} and L{PingServerConfig} check their values.
    """

    def test_pingDefaults(self) -> None:
        config = PingConfig(interval=2, timeout=5)
        self.assertEqual(
            (config.interval, config.timeout, config.jitter, config.watch),
            (2.0, 5.0, 0.1, "sent"),
        )

    def test_pingBadValues(self) -> None:
        cases = [
            ({"interval": 0, "timeout": 1}, "'interval' must be > 0: 0"),
            ({"interval": 1, "timeout": -1}, "'timeout' must be > 0: -1"),
            ({"interval": "1", "timeout": 1}, "'interval' must be a number: '1'"),
            ({"interval": 1, "timeout": 1, "jitter": 1}, "'jitter' must be >= 0"),
            ({"interval": 1, "timeout": 1, "watch": "x"}, "'watch' must be one of"),
            (
                {"interval": float("inf"), "timeout": 1},
                "'interval' must be finite",
            ),
        ]
        for kwargs, message in cases:
            with self.assertRaises(ValueError) as caught:
                PingConfig(**kwargs)
            self.assertIn(message, str(caught.exception))

    def test_serverDefaults(self) -> None:
        config = PingServerConfig()
        self.assertEqual(
            attrs.astuple(config),
            (2.0, 3, 1024, 3, 5.0, (), 0.0),
        )

    def test_serverBadValues(self) -> None:
        cases = [
            ({"pingRate": -1}, "'pingRate' must be >= 0: -1"),
            ({"pingBurst": 0}, "'pingBurst' must be >= 1: 0"),
            ({"pingBurst": 1.5}, "'pingBurst' must be a whole number: 1.5"),
            ({"healthCheckMaxAge": -1}, "'healthCheckMaxAge' must be >= 0: -1"),
            ({"maxLineLength": 15}, "'maxLineLength' must be in 16..1048576: 15"),
            ({"maxBadLines": -2}, "'maxBadLines' must be >= 0: -2"),
            ({"closeGrace": -1}, "'closeGrace' must be >= 0: -1"),
        ]
        for kwargs, message in cases:
            with self.assertRaises(ValueError) as caught:
                PingServerConfig(**kwargs)
            self.assertEqual(str(caught.exception), message)

    def test_healthCheckValues(self) -> None:
        with self.assertRaises(ValueError) as caught:
            HealthCheck("a b", lambda: None)
        self.assertIn("'name' must be 1-64", str(caught.exception))
        with self.assertRaises(ValueError):
            HealthCheck("db", "not callable")  # type: ignore[arg-type]
        with self.assertRaises(ValueError) as caught:
            HealthCheck("db", lambda: None, timeout=0)
        self.assertEqual(str(caught.exception), "'timeout' must be > 0: 0")
        with self.assertRaises(ValueError) as caught:
            PingServerConfig(
                healthChecks=[HealthCheck("a", int), HealthCheck("a", int)]
            )
        self.assertIn("unique", str(caught.exception))


class AnswerTests(SynchronousTestCase):
    """
    L{PingAnswerMixin} answers pings and refuses misbehaviour.
    """

    def test_pong(self) -> None:
        proto, transport, responder, _ = serve()
        proto.dataReceived(b"ping\nping abc-1\r\nping\t\r\n")
        self.assertEqual(lines(transport), [b"pong", b"pong abc-1", b"pong"])
        self.assertEqual((responder.pings, responder.pongs), (3, 3))

    def test_emptyLinesAndPongIgnored(self) -> None:
        proto, transport, _, _ = serve()
        proto.dataReceived(b"\n\r\n   \npong\npong 3\n")
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)

    def test_badPing(self) -> None:
        """
        Extra words, bad characters and over-long tokens get C{error
        bad_ping}; the connection stays.
        """
        proto, transport, _, _ = serve()
        proto.dataReceived(b"ping a b\nping a:b\n")
        replies = lines(transport)
        self.assertEqual(len(replies), 2)
        for reply in replies:
            self.assertTrue(reply.startswith(b"error bad_ping :expected"), reply)
        self.assertFalse(transport.disconnecting)

    def test_tokenLength(self) -> None:
        proto, transport, _, _clock = serve(PingServerConfig(pingRate=0))
        proto.dataReceived(b"ping " + b"x" * 64 + b"\n")
        self.assertEqual(lines(transport), [b"pong " + b"x" * 64])
        proto.dataReceived(b"ping " + b"x" * 65 + b"\n")
        self.assertTrue(lines(transport)[0].startswith(b"error bad_ping"))

    def test_unknownCommandThenTooMany(self) -> None:
        """
        Up to C{maxBadLines} bad lines are answered; the next closes.
        """
        proto, transport, responder, _clock = serve(PingServerConfig(maxBadLines=2))
        proto.dataReceived(b"hello\nGET / HTTP/1.1\n")
        self.assertEqual(
            lines(transport),
            [
                b"error unknown_command :unknown command 'hello'; try: ping",
                b"error unknown_command :unknown command 'GET'; try: ping",
            ],
        )
        self.assertFalse(transport.disconnecting)
        proto.dataReceived(b"x\nping\n")
        self.assertEqual(
            lines(transport),
            [
                b"error too_many_errors :more than 2 bad lines; last: "
                b"unknown command 'x'; try: ping"
            ],
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(proto.pingCloseReason, "too many bad lines")
        self.assertEqual(responder.refused, {"too many bad lines": 1})

    def test_ownCommandsReachSubclass(self) -> None:
        """
        A class with its own C{lineReceived} gets every line but pings.
        """
        proto, transport, _, _ = serve(protocol=Chat)
        proto.dataReceived(b"hello\nping 7\nbye\n")
        self.assertEqual(proto.lines, [b"hello", b"bye"])
        self.assertEqual(lines(transport), [b"pong 7"])

    def test_binary(self) -> None:
        proto, transport, _responder, _ = serve()
        proto.dataReceived(b"ping\n\x00\xffgarbage\nping\n")
        self.assertEqual(
            lines(transport),
            [
                b"pong",
                b"error binary_data :lines must be printable ASCII text "
                b"ending in LF or CRLF",
            ],
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(proto.pingCloseReason, "binary data")

    def test_lineTooLong(self) -> None:
        """
        A line longer than C{maxLineLength} closes, also before its end
        arrives; one of exactly the limit is served.
        """
        proto, transport, _, _ = serve(PingServerConfig(maxLineLength=16))
        proto.dataReceived(b"ping " + b"a" * 11 + b"\n")
        self.assertEqual(lines(transport), [b"pong " + b"a" * 11])
        proto.dataReceived(b"x" * 17)
        self.assertEqual(
            lines(transport), [b"error line_too_long :lines are limited to 16 bytes"]
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(proto.pingCloseReason, "line too long")

    def test_floodBucket(self) -> None:
        """
        A connection may send C{pingBurst} pings at once and C{pingRate} a
        second after that, refilled by the time that passed; the ping that
        finds the bucket empty closes with C{too_many_pings}.
        """
        proto, transport, responder, clock = serve(
            PingServerConfig(pingRate=1.0, pingBurst=3)
        )
        proto.dataReceived(b"ping\n" * 3)  # the burst: bucket empty
        clock.advance(0.5)
        proto.dataReceived(b"ping\n")  # half a token refilled: refused
        self.assertEqual(
            lines(transport),
            [b"pong"] * 3
            + [b"error too_many_pings :at most 3 pings at once and 1 a second"],
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(proto.pingCloseReason, "too_many_pings")
        self.assertEqual(responder.refused, {"too_many_pings": 1})
        self.assertEqual(responder.pings, 3)

    def test_floodRefill(self) -> None:
        """
        Pings at the allowed rate never empty the bucket; the refill is
        capped at C{pingBurst}, so a long quiet earns no more than a burst.
        """
        proto, transport, _, clock = serve(PingServerConfig(pingRate=1.0, pingBurst=2))
        for _ in range(10):
            clock.advance(1.0)
            proto.dataReceived(b"ping\n")
        clock.pump([1.0] * 100)  # quiet, not a stall: the reactor ran
        proto.dataReceived(b"ping\nping\n")
        self.assertEqual(lines(transport), [b"pong"] * 12)
        self.assertFalse(transport.disconnecting)
        proto.dataReceived(b"ping\n")
        self.assertTrue(lines(transport)[0].startswith(b"error too_many_pings"))

    def test_noFloodLimit(self) -> None:
        proto, transport, _, _ = serve(PingServerConfig(pingRate=0))
        proto.dataReceived(b"ping\n" * 50)
        self.assertEqual(lines(transport), [b"pong"] * 50)

    def test_abortAfterGrace(self) -> None:
        """
        A refused connection that does not close is aborted exactly
        C{closeGrace} seconds later; one that closes cancels the abort.
        """
        proto, transport, _, clock = serve(PingServerConfig(closeGrace=2.0))
        transport.abortConnection = lambda: setattr(transport, "aborted", True)
        proto.dataReceived(b"\x01\n")
        clock.advance(1.999)
        self.assertFalse(getattr(transport, "aborted", False))
        clock.advance(0.001)
        self.assertTrue(transport.aborted)

        proto, transport, _, clock = serve(PingServerConfig(closeGrace=2.0))
        proto.dataReceived(b"\x01\n")
        proto.connectionLost(Failure(Exception("closed")))
        self.assertEqual(clock.getDelayedCalls(), [])


class HalfCloseTests(SynchronousTestCase):
    """
    A peer that closes its sending side (C{echo ping | nc -q 1}) still gets
    its answers; then the connection is closed.
    """

    def test_interface(self) -> None:
        proto, _, _, _ = serve()
        self.assertTrue(verifyObject(IHalfCloseableProtocol, proto))

    def test_closesAtOnce(self) -> None:
        proto, transport, _, _ = serve()
        proto.dataReceived(b"ping 1\nhello\n")
        proto.readConnectionLost()
        self.assertEqual(
            lines(transport),
            [b"pong 1", b"error unknown_command :unknown command 'hello'; try: ping"],
        )
        self.assertTrue(transport.disconnecting)

    def test_lastLineWithoutLineEnd(self) -> None:
        """
        C{printf ping | nc -q 1}: the unterminated last line is answered.
        """
        proto, transport, _, _ = serve()
        proto.dataReceived(b"ping 1\nping 2")
        proto.readConnectionLost()
        self.assertEqual(lines(transport), [b"pong 1", b"pong 2"])
        self.assertTrue(transport.disconnecting)

    def test_closesAfterPendingAnswer(self) -> None:
        slow: Deferred[None] = Deferred()
        proto, transport, _, _ = serve(checks=[HealthCheck("s", lambda: slow)])
        proto.dataReceived(b"ping 1\n")
        proto.readConnectionLost()
        self.assertFalse(transport.disconnecting)
        slow.callback(None)
        self.assertEqual(lines(transport), [b"pong 1"])
        self.assertTrue(transport.disconnecting)


class HealthTests(SynchronousTestCase):
    """
    Health checks run before C{pong}; failures are named on one line.
    """

    def test_allPass(self) -> None:
        checks = [
            HealthCheck("a", lambda: None),
            HealthCheck("b", lambda: True),
            HealthCheck("c", lambda: succeed("ok")),
        ]
        proto, transport, responder, _ = serve(checks=checks)
        proto.dataReceived(b"ping t\n")
        self.assertEqual(lines(transport), [b"pong t"])
        self.assertEqual(responder.healthRuns, 1)

    def test_failuresNamed(self) -> None:
        def broken() -> None:
            raise ConnectionRefusedError("db down")

        def own() -> None:
            raise HealthCheckError("queue 95% full")

        checks = [
            HealthCheck("ok", lambda: None),
            HealthCheck("db", broken),
            HealthCheck("flag", lambda: False),
            HealthCheck("cache", lambda: fail(KeyError("x"))),
            HealthCheck("queue", own),
        ]
        proto, transport, responder, _ = serve(checks=checks)
        proto.dataReceived(b"ping 9\n")
        self.assertEqual(
            lines(transport),
            [
                b"error unhealthy 9 :db: ConnectionRefusedError: db down; "
                b"flag: returned False; cache: KeyError: 'x'; queue: queue 95% full"
            ],
        )
        self.assertFalse(transport.disconnecting)
        self.assertEqual((responder.pongs, responder.unhealthy), (0, 1))

    def test_timeoutExact(self) -> None:
        """
        A check still running after its C{timeout} fails with "timed out"
        at exactly that time; its L{Deferred} is cancelled.
        """
        slow: Deferred[None] = Deferred()
        checks = [
            HealthCheck("slow", lambda: slow, timeout=2),
            HealthCheck("fast", lambda: None),
        ]
        proto, transport, _, clock = serve(checks=checks)
        proto.dataReceived(b"ping\n")
        clock.advance(1.999)
        self.assertEqual(transport.value(), b"")
        clock.advance(0.001)
        self.assertEqual(
            lines(transport), [b"error unhealthy :slow: timed out after 2 s"]
        )
        self.assertTrue(slow.called)

    def test_coalesced(self) -> None:
        """
        Pings arriving while a run is in progress wait for it: one run for
        many connections, answered in order.
        """
        pending: list[Deferred[None]] = []

        def check() -> Deferred[None]:
            d: Deferred[None] = Deferred()
            pending.append(d)
            return d

        clock = Clock()
        config = PingServerConfig(pingRate=0)
        one, t1, responder, _ = serve(
            config=config, checks=[HealthCheck("db", check)], clock=clock
        )
        two, t2, _, _ = serve(factory=one.factory)
        one.dataReceived(b"ping 1\n")
        two.dataReceived(b"ping 2\n")
        one.dataReceived(b"ping 3\n")
        self.assertEqual(len(pending), 1)
        pending[0].callback(None)
        self.assertEqual(lines(t1), [b"pong 1", b"pong 3"])
        self.assertEqual(lines(t2), [b"pong 2"])
        self.assertEqual(responder.healthRuns, 1)
        one.dataReceived(b"ping 4\n")
        self.assertEqual(len(pending), 2)

    def test_maxAge(self) -> None:
        calls = []
        clock = Clock()
        proto, transport, _responder, _ = serve(
            config=PingServerConfig(pingRate=0),
            checks=[HealthCheck("db", lambda: calls.append(1))],
            clock=clock,
            maxAge=10,
        )
        proto.dataReceived(b"ping\n")
        clock.advance(10)
        proto.dataReceived(b"ping\n")
        clock.advance(0.5)
        proto.dataReceived(b"ping\n")
        self.assertEqual(lines(transport), [b"pong"] * 3)
        self.assertEqual(len(calls), 2)

    def test_answerAfterCloseDropped(self) -> None:
        slow: Deferred[None] = Deferred()
        proto, transport, _, _ = serve(checks=[HealthCheck("s", lambda: slow)])
        proto.dataReceived(b"ping\n")
        proto.connectionLost(Failure(Exception("gone")))
        slow.callback(None)
        self.assertEqual(transport.value(), b"")

    def test_coroutine(self) -> None:
        async def check() -> bool:
            return False

        proto, transport, _, _ = serve(checks=[HealthCheck("co", check)])
        proto.dataReceived(b"ping\n")
        self.assertEqual(lines(transport), [b"error unhealthy :co: returned False"])

    def test_fileHealthCheck(self) -> None:
        path = tempPath(self, "ready")
        proto, transport, _, _ = serve(
            config=PingServerConfig(pingRate=0), checks=[fileHealthCheck(path)]
        )
        proto.dataReceived(b"ping\n")
        self.assertEqual(
            lines(transport), [f"error unhealthy :file: {path} does not exist".encode()]
        )
        open(path, "w").close()
        proto.dataReceived(b"ping\n")
        self.assertEqual(lines(transport), [b"pong"])

    def test_healthChangesLogged(self) -> None:
        """
        A change of health is logged once, not once per answer.
        """
        events: list[dict[str, Any]] = []
        healthy = [True]
        proto, transport, _, _ = serve(
            PingServerConfig(pingRate=0),
            checks=[HealthCheck("db", lambda: healthy[0])],
        )
        with capturedLogs(events):
            proto.dataReceived(b"ping\nping\n")
            healthy[0] = False
            proto.dataReceived(b"ping\nping\nping\n")
            healthy[0] = True
            proto.dataReceived(b"ping\nping\n")
        self.assertEqual(
            [(e["log_format"], e.get("failures")) for e in events],
            [
                ("health checks failing: {report}", ["db"]),
                ("health checks pass again", None),
            ],
        )
        self.assertEqual(lines(transport).count(b"pong"), 4)

    def test_failureText(self) -> None:
        self.assertEqual(str(HealthFailure("db", "down")), "db: down")


class Client(PingingMixin, LineReceiver):
    """
    A pinging protocol that records what it is told.
    """

    delimiter = b"\n"

    def connectionMade(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.other: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self.other.append(line)

    def pingRoundTrip(self, rtt: float) -> None:
        self.events.append(("rtt", rtt))

    def pingUnhealthy(self, report: str) -> None:
        self.events.append(("unhealthy", report))

    def pingPeerDead(self, waited: float) -> None:
        self.events.append(("dead", waited))
        super().pingPeerDead(waited)


def pinging(
    config: PingConfig,
    random: Any = lambda: 0.0,
    protocol: type[LineReceiver] = Client,
) -> tuple[Any, StringTransport, PingCounters, Clock]:
    clock = Clock()
    factory = Factory.forProtocol(protocol)
    factory.pingConfig = config
    factory.heartbeatClock = clock
    factory.pingRandom = random
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    transport.abortConnection = lambda: setattr(transport, "aborted", True)
    proto.makeConnection(transport)
    return proto, transport, factory.pingCounters, clock


class PingingTests(SynchronousTestCase):
    """
    L{PingingMixin} pings a quiet connection, times the answer, and
    declares a silent peer dead, on exact schedules.
    """

    def test_pingAfterInterval(self) -> None:
        proto, transport, pinger, clock = pinging(PingConfig(interval=2, timeout=3))
        self.assertIs(proto.pingState, PingState.QUIET)
        clock.advance(1.999)
        self.assertEqual(transport.value(), b"")
        clock.advance(0.001)
        self.assertEqual(lines(transport), [b"ping 1"])
        self.assertIs(proto.pingState, PingState.AWAITING)
        clock.advance(0.25)
        proto.dataReceived(b"pong 1\n")
        self.assertEqual(proto.events, [("rtt", 0.25)])
        self.assertIs(proto.pingState, PingState.QUIET)
        # The next ping is due interval after the last write (the ping).
        clock.advance(1.749)
        self.assertEqual(transport.value(), b"")
        clock.advance(0.001)
        self.assertEqual(lines(transport), [b"ping 2"])
        self.assertEqual((pinger.pingsSent, pinger.answers), (2, 1))

    def test_writesPostponePing(self) -> None:
        """
        With C{watch="sent"}, anything written restarts the quiet; the timer
        is re-armed lazily, once.
        """
        proto, transport, _, clock = pinging(PingConfig(interval=2, timeout=3))
        clock.advance(1.5)
        proto.sendLine(b"data")
        transport.clear()
        clock.advance(0.5)  # the first timer fires and re-arms for 1.5 s
        self.assertEqual(transport.value(), b"")
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(1.499)
        self.assertEqual(transport.value(), b"")
        clock.advance(0.001)
        self.assertEqual(lines(transport), [b"ping 1"])

    def test_receivedDoesNotPostponeSentWatch(self) -> None:
        proto, transport, _, clock = pinging(PingConfig(interval=2, timeout=3))
        clock.advance(1)
        proto.dataReceived(b"hello\n")
        clock.advance(1)
        self.assertEqual(lines(transport), [b"ping 1"])
        self.assertEqual(proto.other, [b"hello"])

    def test_watchReceived(self) -> None:
        """
        With C{watch="received"} (a server probing its clients), received
        bytes restart the quiet and writes do not.
        """
        proto, transport, _, clock = pinging(
            PingConfig(interval=2, timeout=3, watch="received")
        )
        clock.advance(1)
        proto.dataReceived(b"x\n")
        proto.sendLine(b"y")
        transport.clear()
        clock.advance(1.999)
        self.assertEqual(transport.value(), b"")
        clock.advance(0.001)
        self.assertEqual(lines(transport), [b"ping 1"])

    def test_watchAny(self) -> None:
        proto, transport, _, clock = pinging(
            PingConfig(interval=2, timeout=3, watch="any")
        )
        clock.advance(1)
        proto.dataReceived(b"x\n")
        clock.advance(1.5)
        proto.sendLine(b"y")
        transport.clear()
        clock.advance(1.999)
        self.assertEqual(transport.value(), b"")
        clock.advance(0.001)
        self.assertEqual(lines(transport), [b"ping 1"])

    def test_jitter(self) -> None:
        """
        Each wait is C{interval * (1 - jitter * random())}, drawn afresh.
        """
        draws = iter([0.5, 1.0])
        proto, transport, _, clock = pinging(
            PingConfig(interval=10, timeout=3, jitter=0.2), random=lambda: next(draws)
        )
        clock.advance(8.999)
        self.assertEqual(transport.value(), b"")
        clock.advance(0.001)
        self.assertEqual(lines(transport), [b"ping 1"])
        proto.dataReceived(b"pong 1\n")
        clock.advance(7.999)
        self.assertEqual(transport.value(), b"")
        clock.advance(0.001)
        self.assertEqual(lines(transport), [b"ping 2"])

    def test_deadExact(self) -> None:
        """
        No answer within C{timeout}: dead at exactly that time, aborted.
        """
        proto, transport, pinger, clock = pinging(PingConfig(interval=1, timeout=3))
        clock.advance(1)
        self.assertEqual(lines(transport), [b"ping 1"])
        proto.dataReceived(b"other\n")
        clock.advance(2.999)
        self.assertEqual(proto.events, [])
        clock.advance(0.001)
        self.assertEqual(proto.events, [("dead", 3.0)])
        self.assertIs(proto.pingState, PingState.DEAD)
        self.assertEqual(proto.pingCloseReason, "dead peer")
        self.assertTrue(transport.aborted)
        self.assertEqual(pinger.deadPeers, 1)
        proto.connectionLost(Failure(Exception("aborted")))
        self.assertIs(proto.pingState, PingState.CLOSED)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_staleAndForeignAnswersIgnored(self) -> None:
        proto, _transport, _, clock = pinging(PingConfig(interval=1, timeout=3))
        proto.dataReceived(b"pong 1\n")  # nothing asked yet
        clock.advance(1)
        proto.dataReceived(b"pong 0\n")  # wrong token
        self.assertIs(proto.pingState, PingState.AWAITING)
        clock.advance(0.5)
        proto.dataReceived(b"pong\n")  # untokened answers count
        self.assertEqual(proto.events, [("rtt", 0.5)])
        self.assertEqual(proto.other, [])

    def test_unhealthyAnswer(self) -> None:
        proto, _transport, pinger, clock = pinging(PingConfig(interval=1, timeout=3))
        clock.advance(1)
        clock.advance(0.125)
        proto.dataReceived(b"error unhealthy 1 :db: down; cache: slow\n")
        self.assertEqual(
            proto.events, [("unhealthy", "db: down; cache: slow"), ("rtt", 0.125)]
        )
        self.assertEqual(pinger.unhealthyAnswers, 1)
        self.assertIs(proto.pingState, PingState.QUIET)

    def test_stats(self) -> None:
        stats = RoundTripStats()
        self.assertIsNone(stats.smoothed)
        for rtt in (0.8, 0.4, 1.2):
            stats.add(rtt)
        self.assertEqual(stats.count, 3)
        self.assertEqual(stats.last, 1.2)
        self.assertEqual(stats.min, 0.4)
        # 0.8, then 0.8 + (0.4 - 0.8) / 8 = 0.75, then 0.75 + 0.45 / 8.
        self.assertAlmostEqual(stats.smoothed, 0.80625)

    def test_stopAndStart(self) -> None:
        proto, transport, _, clock = pinging(PingConfig(interval=1, timeout=3))
        clock.advance(1)
        lines(transport)
        proto.stopPinging()
        self.assertIs(proto.pingState, PingState.STOPPED)
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(10)
        self.assertEqual(transport.value(), b"")
        proto.startPinging()
        clock.advance(1)
        self.assertEqual(lines(transport), [b"ping 2"])

    def test_lostCancelsAndRestoresWrite(self) -> None:
        proto, transport, _, clock = pinging(PingConfig(interval=1, timeout=3))
        wrapped = transport.write
        proto.connectionLost(Failure(Exception("gone")))
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertIsNot(transport.write, wrapped)
        self.assertEqual(transport.write.__name__, "write")

    def test_noPinger(self) -> None:
        proto = Client()
        proto.factory = Factory()
        with self.assertRaises(TypeError) as caught:
            proto.makeConnection(StringTransport())
        self.assertIn("Set factory.pingConfig = PingConfig(", str(caught.exception))

    def test_noServerConfig(self) -> None:
        """
        An answering protocol without settings answers with the defaults;
        settings of the wrong type are refused, naming the fix.
        """
        proto = Server()
        proto.factory = Factory()
        proto.factory.heartbeatClock = Clock()
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.dataReceived(b"ping 1\n" * 4)
        self.assertEqual(
            lines(transport),
            [b"pong 1"] * 3
            + [b"error too_many_pings :at most 3 pings at once and 2 a second"],
        )
        proto = Server()
        proto.factory = Factory()
        proto.factory.pingServerConfig = PingConfig(1, 1)
        with self.assertRaises(TypeError) as caught:
            proto.makeConnection(StringTransport())
        self.assertIn(
            "pingServerConfig must be a PingServerConfig", str(caught.exception)
        )

    def test_classAttributes(self) -> None:
        """
        A plain L{Factory.forProtocol} finds the settings as class
        attributes of the protocol, the clock included.
        """
        clock = Clock()

        class Configured(Both):
            pingServerConfig = PingServerConfig(pingRate=0)
            pingConfig = PingConfig(interval=2, timeout=1, jitter=0)
            heartbeatClock = clock

        proto = Factory.forProtocol(Configured).buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.dataReceived(b"ping\n" * 10)
        self.assertEqual(lines(transport), [b"pong"] * 10)
        clock.advance(2)
        self.assertEqual(lines(transport), [b"ping 1"])


class Both(PingAnswerMixin, PingingMixin, LineReceiver):
    """
    A server that answers pings and pings clients that went quiet.
    """


class SymmetricTests(SynchronousTestCase):
    """
    One protocol can answer pings and send its own.
    """

    def test_serverPingsQuietClient(self) -> None:
        clock = Clock()
        factory = Factory.forProtocol(Both)
        factory.heartbeatClock = clock
        factory.pingConfig = PingConfig(interval=5, timeout=2, watch="received")
        proto = factory.buildProtocol(None)
        transport = StringTransport()
        transport.abortConnection = lambda: setattr(transport, "aborted", True)
        proto.makeConnection(transport)
        clock.advance(3)
        proto.dataReceived(b"ping a\n")
        self.assertEqual(lines(transport), [b"pong a"])
        clock.advance(5)
        self.assertEqual(lines(transport), [b"ping 1"])
        proto.dataReceived(b"pong 1\n")
        self.assertEqual(proto.pingStats.count, 1)
        clock.advance(5)
        self.assertEqual(lines(transport), [b"ping 2"])
        clock.advance(2)
        self.assertTrue(transport.aborted)


class Recorder(PingEvents):
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def connected(self, protocol: PingClientProtocol) -> None:
        self.seen.append(("connected", None))

    def roundTrip(self, protocol: PingClientProtocol, rtt: float) -> None:
        self.seen.append(("rtt", rtt))

    def unhealthy(self, protocol: PingClientProtocol, report: str) -> None:
        self.seen.append(("unhealthy", report))

    def dead(self, protocol: PingClientProtocol, waited: float) -> None:
        self.seen.append(("dead", waited))

    def peerError(self, protocol: PingClientProtocol, text: str) -> None:
        self.seen.append(("error", text))

    def disconnected(self, protocol: PingClientProtocol, reason: Failure) -> None:
        self.seen.append(("disconnected", reason.getErrorMessage()))


class ClientProtocolTests(SynchronousTestCase):
    """
    L{PingClientProtocol} reports to its factory's events and answers the
    peer's pings.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.events = Recorder()
        self.factory = PingClientFactory(
            PingConfig(interval=1, timeout=2),
            self.events,
            clock=self.clock,
            random=lambda: 0,
        )

    def connect(self) -> tuple[PingClientProtocol, StringTransport]:
        proto = self.factory.buildProtocol(None)
        transport = StringTransport()
        transport.abortConnection = transport.loseConnection  # type: ignore[method-assign]
        proto.makeConnection(transport)
        return proto, transport

    def test_events(self) -> None:
        proto, transport = self.connect()
        self.clock.advance(1)
        self.clock.advance(0.5)
        proto.dataReceived(b"pong 1\nping 77\nerror too_many_pings :slow down\n")
        self.assertEqual(lines(transport), [b"ping 1", b"pong 77"])
        self.clock.advance(1)
        self.clock.advance(2)
        proto.connectionLost(Failure(ConnectionAbortedError("aborted")))
        self.assertEqual(
            self.events.seen,
            [
                ("connected", None),
                ("rtt", 0.5),
                ("error", "error too_many_pings :slow down"),
                ("dead", 2.0),
                ("disconnected", "aborted"),
            ],
        )


class DemoTests(SynchronousTestCase):
    """
    The demo server answers through L{PingAnswerMixin} and logs its
    refusals as close reasons.
    """

    def test_demoReasons(self) -> None:
        clock = Clock()
        factory = DemoFactory(
            heartbeatConfig=HeartbeatConfig(idle=5),
            clock=clock,
            pingServerConfig=PingServerConfig(maxLineLength=16),
        )
        proto = factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.dataReceived(b"ping 1\n")
        self.assertEqual(lines(transport), [b"pong 1"])
        proto.dataReceived(b"y" * 40)
        self.assertTrue(transport.disconnecting)
        proto.connectionLost(Failure(Exception("closed")))
        self.assertEqual(factory.closed, {"line too long": 1})

    def test_demoClockInOnePlace(self) -> None:
        """
        The factory's clock drives the ping side too (a health check's
        timeout here); the defaults apply without settings; the counters
        are the factory's.
        """
        clock = Clock()
        slow: Deferred[None] = Deferred()
        factory = DemoFactory(
            heartbeatConfig=HeartbeatConfig(idle=5),
            clock=clock,
            pingServerConfig=PingServerConfig(
                healthChecks=[HealthCheck("slow", lambda: slow, timeout=1)]
            ),
        )
        proto = factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.dataReceived(b"ping 1\n")
        clock.advance(1)
        self.assertEqual(
            lines(transport), [b"error unhealthy 1 :slow: timed out after 1 s"]
        )
        self.assertEqual(factory.pingCounters.unhealthy, 1)
        plain = DemoFactory(heartbeatConfig=HeartbeatConfig(idle=5), clock=clock)
        self.assertIsNone(plain.pingServerConfig)
        proto = plain.buildProtocol(None)
        proto.makeConnection(StringTransport())
        self.assertEqual(proto._pingServerConfig, PingServerConfig())


class InlineAnswerTests(SynchronousTestCase):
    """
    The ping path makes no L{Deferred} when there are no health checks or
    every check answers synchronously; asynchronous checks are still
    coalesced (L{HealthTests.test_coalesced}).
    """

    def countDeferreds(self) -> list[object]:
        created: list[object] = []
        original = Deferred.__init__

        def counting(self: Deferred[Any], *args: Any, **kwargs: Any) -> None:
            created.append(self)
            original(self, *args, **kwargs)

        self.patch(Deferred, "__init__", counting)
        return created

    def test_noChecks(self) -> None:
        proto, transport, counters, _ = serve(PingServerConfig(pingRate=0))
        created = self.countDeferreds()
        proto.dataReceived(b"ping 1\nping 2\n")
        self.assertEqual(lines(transport), [b"pong 1", b"pong 2"])
        self.assertEqual(created, [])
        self.assertEqual(counters.pongs, 2)

    def test_synchronousChecks(self) -> None:
        healthy = [True]
        proto, transport, counters, _ = serve(
            PingServerConfig(pingRate=0),
            checks=[
                HealthCheck("a", lambda: healthy[0]),
                HealthCheck("b", lambda: None),
            ],
        )
        created = self.countDeferreds()
        proto.dataReceived(b"ping 1\n")
        healthy[0] = False
        proto.dataReceived(b"ping 2\n")
        self.assertEqual(
            lines(transport), [b"pong 1", b"error unhealthy 2 :a: returned False"]
        )
        self.assertEqual(created, [])
        self.assertEqual(counters.healthRuns, 2)
