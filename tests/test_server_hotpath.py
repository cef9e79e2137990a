"""
The server's hot path for a chunk that is exactly one plain C{ping}
(L{ServerProtocol.dataReceived} answering through
L{PingAnswerMixin.pingAnswerPlain}) behaves as the general path does: the
same replies, counters, refusals, closes and idle times, in simulated time.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import HeartbeatConfig
from heartbeat_twisted.ping import HealthCheck, PingServerConfig
from heartbeat_twisted.server._limits import ConnectionLimits
from heartbeat_twisted.server._protocol import (
    PayloadLoggingProtocol,
    ServerFactory,
    ServerProtocol,
    _answersPlainPings,
)


class Hot(ServerProtocol):
    """
    The server's protocol, counting its hot-path answers.
    """

    hot = 0

    def pingAnswerPlain(self, pong: bytes) -> bool:
        self.hot += 1
        return ServerProtocol.pingAnswerPlain(self, pong)


class General(ServerProtocol):
    """
    The server's protocol with C{pingReceived} overridden: every ping takes
    the general path (framing, ping hook, C{pingReceived}).
    """

    def pingReceived(self, token: bytes | None) -> None:
        ServerProtocol.pingReceived(self, token)


#: Chunks and clock steps: plain pings with and without CR, a burst that
#: floods a rate of 2/s, a ping split over two chunks, a ping after an
#: unfinished line, a ping with a token, bad lines, long silences (in
#: steps of at most a second, which the flood limit's stall watch does not
#: take for a stall of the server).
SCRIPT: list[bytes | float] = [
    3.0,
    b"ping\n",
    3.0,
    b"ping\r\n",
    b"ping\n",
    0.5,
    b"pi",
    b"ng\n",
    4.0,
    b"ping abc\n",
    b"hello\n",
    4.0,
    b"ping\n",
    b"ping\n",
    b"ping\n",
    b"ping\n",
    b"ping\n",
    3.0,
    b"ping\n",
    6.0,
    b"ping\n",
]


def play(
    protocolClass: type[ServerProtocol],
    config: PingServerConfig,
    activity: str,
    clock: Clock,
    script: list[bytes | float] = SCRIPT,
) -> dict[str, Any]:
    """
    Run C{script} through one connection of a server factory; what an
    observer can see of it.
    """
    factory = ServerFactory(
        heartbeatConfig=HeartbeatConfig(idle=5, checkInterval=1),
        clock=clock,
        pingServerConfig=config,
        activity=activity,
        limits=ConnectionLimits(lineTimeout=100),
    )
    factory.protocol = protocolClass
    address = IPv4Address("TCP", "10.0.0.1", 1234)
    protocol = factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    steps = []
    for step in script:
        if isinstance(step, float):
            while step > 0:
                clock.advance(min(step, 1.0))
                step -= 1.0
        else:
            protocol.dataReceived(step)
        steps.append(
            (
                transport.value(),
                transport.disconnecting,
                protocol.heartbeatCloseReason,
                protocol.pingCloseReason,
            )
        )
    clock.advance(10)
    counters = factory.pingCounters
    return {
        "steps": steps,
        "counters": (
            counters.pings,
            counters.pongs,
            counters.unhealthy,
            counters.healthRuns,
            dict(counters.refused),
        ),
    }


def failing() -> bool:
    return False


class HotPathTests(SynchronousTestCase):
    def compare(self, config: PingServerConfig, activity: str) -> Hot:
        """
        Play the script through the hot path and the general path; assert
        that an observer sees the same; return the hot protocol's class
        state for further checks.
        """
        hot = play(Hot, config, activity, Clock())
        general = play(General, config, activity, Clock())
        self.assertEqual(hot, general)
        return hot  # type: ignore[return-value]

    def test_eligible(self) -> None:
        """
        The server's protocols take the hot path; a subclass that
        overrides how pings are read, judged or sent does not.
        """
        self.assertTrue(_answersPlainPings(ServerProtocol))
        self.assertTrue(_answersPlainPings(PayloadLoggingProtocol))
        self.assertTrue(_answersPlainPings(Hot))
        self.assertFalse(_answersPlainPings(General))

        class OwnLines(ServerProtocol):
            def lineReceived(self, line: bytes) -> None:
                pass

        class OwnSend(ServerProtocol):
            def sendLine(self, line: bytes) -> Any:
                pass

        self.assertFalse(_answersPlainPings(OwnLines))
        self.assertFalse(_answersPlainPings(OwnSend))

    def test_taken(self) -> None:
        """
        A chunk that is exactly C{ping\\n} or C{ping\\r\\n} with nothing
        buffered takes the hot path; a ping in pieces, after an unfinished
        line, or with a token does not.
        """
        clock = Clock()
        factory = ServerFactory(
            heartbeatConfig=HeartbeatConfig(idle=5),
            clock=clock,
            pingServerConfig=PingServerConfig(pingRate=0),
        )
        factory.protocol = Hot
        protocol = factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", 1))
        transport = StringTransport()
        protocol.makeConnection(transport)
        for chunk in [b"ping\n", b"ping\r\n", b"pi", b"ng\n", b"ping 7\n", b"x"]:
            protocol.dataReceived(chunk)
        protocol.dataReceived(b"ping\n")
        self.assertEqual(protocol.hot, 2)
        self.assertEqual(
            transport.value(),
            b"pong\npong\npong\npong 7\nerror unknown_command :unknown command "
            b"'xping'; try: ping\n",
        )

    def test_noLimits(self) -> None:
        """
        No flood limit, no health checks (the benchmark's configuration).
        """
        for activity in ["pings", "lines", "bytes"]:
            self.compare(PingServerConfig(pingRate=0), activity)

    def test_floodLimit(self) -> None:
        """
        The token bucket refuses the same ping on both paths, and the
        refused connection answers nothing more.
        """
        for activity in ["pings", "lines", "bytes"]:
            result: Any = self.compare(PingServerConfig(pingRate=2), activity)
            self.assertEqual(result["counters"][4], {"too_many_pings": 1})

    def test_healthChecks(self) -> None:
        """
        A passing, a failing and a slow (L{Deferred}) health check answer
        alike on both paths.
        """
        clock = Clock()
        checks = [
            HealthCheck("ok", lambda: None),
            HealthCheck("bad", failing),
            HealthCheck("slow", lambda: task.deferLater(clock, 0.5, lambda: None)),
        ]
        for check in checks:
            config = PingServerConfig(pingRate=0, healthChecks=[check])
            hot = play(Hot, config, "pings", clock)
            general = play(General, config, "pings", clock)
            self.assertEqual(hot, general, check.name)
            first = hot["steps"][1][0] if check.name != "slow" else hot["steps"][2][0]
            reply = b"error unhealthy :bad: returned False\n"
            self.assertEqual(first, reply if check.name == "bad" else b"pong\n")

    def test_closedOrRefused(self) -> None:
        """
        A ping on a connection refused for misbehaving, or after the
        connection was lost, is not answered on the hot path either.
        """
        clock = Clock()
        factory = ServerFactory(
            heartbeatConfig=HeartbeatConfig(idle=5),
            clock=clock,
            pingServerConfig=PingServerConfig(pingRate=0, maxBadLines=0),
        )
        protocol = factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", 1))
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"hello\n")
        protocol.dataReceived(b"ping\n")
        self.assertEqual(
            transport.value(),
            b"error too_many_errors :more than 0 bad lines; last: unknown "
            b"command 'hello'; try: ping\n",
        )
        self.assertEqual(factory.pingCounters.pings, 0)

    def test_useConfig(self) -> None:
        """
        L{PingAnswerMixin.pingUseConfig} changes an open connection's
        limits and health checks from its next ping on, starting or
        stopping the flood limit's stall watch with it.
        """
        clock = Clock()
        factory = ServerFactory(
            heartbeatConfig=HeartbeatConfig(idle=5),
            clock=clock,
            pingServerConfig=PingServerConfig(pingRate=0),
        )
        protocol = factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", 1))
        transport = StringTransport()
        protocol.makeConnection(transport)
        calls = len(clock.getDelayedCalls())
        protocol.pingUseConfig(
            PingServerConfig(
                pingRate=1, pingBurst=1, healthChecks=[HealthCheck("bad", failing)]
            )
        )
        self.assertEqual(len(clock.getDelayedCalls()), calls + 1)
        clock.advance(0.01)
        protocol.dataReceived(b"ping\n")
        protocol.dataReceived(b"ping\n")
        self.assertEqual(
            transport.value(),
            b"error unhealthy :bad: returned False\nerror too_many_pings :at most "
            b"1 pings at once and 1 a second\n",
        )
        self.assertRaises(TypeError, protocol.pingUseConfig, None)
        protocol.pingUseConfig(PingServerConfig(pingRate=0))
        self.assertEqual(len(clock.getDelayedCalls()), calls + 1)  # the abort
