"""
Attacks on the server behind C{twistd heartbeat}, each shrunk to what
proves the point, over real loopback sockets: the attack fails, a
well-behaved client keeps getting each pong within a second throughout,
and only the offender is closed.  Full-size runs: bench/soak.py.

Attackers connect from 127.0.0.2 (and 127.0.0.4), the good client from
127.0.0.3, so the per-address limits (applied to loopback here with
C{limitLoopback}) tell them apart.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Generator
from typing import Any

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    connectProtocol,
)
from twisted.internet.protocol import connectionDone
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SkipTest, TestCase

from heartbeat_twisted import HeartbeatConfig
from heartbeat_twisted.ping import PingServerConfig
from heartbeat_twisted.server._limits import ConnectionLimits
from heartbeat_twisted.server._logbudget import LogConfig
from heartbeat_twisted.server._protocol import ServerFactory, ServerProtocol
from heartbeat_twisted.server._writeoptions import WriteSettings

from ._peers import Peer
from ._twistd import ChildProcess, twistdArgv

ATTACKER, OTHER_ATTACKER, GOOD = "127.0.0.2", "127.0.0.4", "127.0.0.3"
#: The bound on each pong of the good client (latency figures: bench/soak.py).
PONG_BOUND = 1.0


class GoodClient(Peer):
    """
    Pings every C{period} seconds and records how long each pong took.
    """

    period = 0.2

    def __init__(self) -> None:
        super().__init__()
        self.latencies: list[float] = []
        self._sentAt: float | None = None
        self._loop = task.LoopingCall(self._ping)

    def connectionMade(self) -> None:
        super().connectionMade()
        self._loop.start(self.period)

    def _ping(self) -> None:
        if self._sentAt is not None:
            # The previous pong is late: count the wait so far.
            self.latencies.append(reactor.seconds() - self._sentAt)  # type: ignore[attr-defined]
        self._sentAt = reactor.seconds()  # type: ignore[attr-defined]
        self.send(b"ping\n")

    def dataReceived(self, data: bytes) -> None:
        for _ in range(data.count(b"pong\n")):
            if self._sentAt is not None:
                self.latencies.append(reactor.seconds() - self._sentAt)  # type: ignore[attr-defined]
                self._sentAt = None
        super().dataReceived(data)

    def connectionLost(self, reason: Any = connectionDone) -> None:
        if self._loop.running:
            self._loop.stop()
        super().connectionLost(reason)


class Recording(ServerFactory):
    """
    A L{ServerFactory} that keeps its protocols, for the counters.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.built: list[ServerProtocol] = []

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        if protocol is not None:
            self.built.append(protocol)
        return protocol


class Counting(ServerProtocol):
    """
    Counts the bytes it receives.
    """

    received = 0

    def dataReceived(self, data: bytes) -> Any:
        self.received += len(data)
        return ServerProtocol.dataReceived(self, data)


class SmallSendBuffer(Counting):
    """
    A server connection with a small kernel send buffer, so that a peer
    that does not read fills it quickly.
    """

    def connectionMade(self) -> None:
        self.transport.getHandle().setsockopt(  # type: ignore[union-attr]
            socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
        )
        Counting.connectionMade(self)


class HostileTests(TestCase):
    timeout = 60

    @inlineCallbacks
    def serve(
        self,
        idle: float = 5.0,
        activity: str = "pings",
        limits: ConnectionLimits | None = None,
        logConfig: LogConfig | None = None,
        pingRate: float = 20.0,
        **ping: Any,
    ) -> Generator[Any, Any, None]:
        self.events: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            # The server's events (its loggers name the class they are on).
            if event.get("log_namespace", "").startswith(
                ("heartbeat_twisted", __name__)
            ):
                self.events.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        self.factory = Recording(
            heartbeatConfig=HeartbeatConfig(idle=idle, checkInterval=0.1),
            pingServerConfig=PingServerConfig(
                pingRate=pingRate, pingBurst=5, closeGrace=1, **ping
            ),
            limits=limits or ConnectionLimits(limitLoopback=True),
            activity=activity,
            logConfig=logConfig,
        )
        self.factory.protocol = Counting
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            self.factory
        )
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port

    def connect(self, source: str, peer: Peer | None = None) -> Deferred[Any]:
        endpoint = TCP4ClientEndpoint(
            reactor, "127.0.0.1", self.port, bindAddress=(source, 0)
        )
        peer = peer if peer is not None else Peer()
        d = connectProtocol(endpoint, peer)

        def made(peer: Peer) -> Peer:
            self.addCleanup(
                lambda: (
                    peer.transport.abortConnection() if peer.reason is None else None
                )
            )
            return peer

        return d.addCallback(made)

    @inlineCallbacks
    def goodClient(self) -> Generator[Any, Any, GoodClient]:
        good: GoodClient = yield self.connect(GOOD, GoodClient())
        yield good.expect(b"pong\n")
        return good

    @inlineCallbacks
    def assertGoodClientServed(self, good: GoodClient) -> Generator[Any, Any, None]:
        """
        The good client is open, got three more pongs, each in time.
        """
        enough = len(good.latencies) + 3
        yield self.until(lambda: len(good.latencies) >= enough, 5, "three pongs")
        self.assertIsNone(good.reason, "the good client was closed")
        self.assertLess(max(good.latencies), PONG_BOUND, good.latencies)

    def wait(self, seconds: float) -> Deferred[None]:
        return task.deferLater(reactor, seconds, lambda: None)

    @inlineCallbacks
    def until(
        self, condition: Any, timeout: float, what: str
    ) -> Generator[Any, Any, None]:
        """
        Check C{condition()} every 10 ms; fail after C{timeout} seconds.
        """
        deadline = reactor.seconds() + timeout  # type: ignore[attr-defined]
        while not condition():
            if reactor.seconds() > deadline:  # type: ignore[attr-defined]
                self.fail(f"no {what} within {timeout} s")
            yield self.wait(0.01)

    def closes(self) -> list[str]:
        return [e["reason"] for e in self.events if "close fd" in e["log_format"]]

    def waitCloses(self, count: int) -> Deferred[None]:
        return self.until(
            lambda: len(self.closes()) >= count, 5, f"{count} close lines"
        )

    @inlineCallbacks
    def test_connectionFlood(self) -> Generator[Any, Any, None]:
        """
        Connections past C{maxConnectionsPerAddress}, past the rate and past
        C{maxConnections} are refused at once; those admitted stay open.
        """
        yield self.serve(
            limits=ConnectionLimits(
                maxConnections=10,
                maxConnectionsPerAddress=6,
                connectionRate=0.1,
                connectionBurst=8,
                limitLoopback=True,
            )
        )
        gate = self.factory.gate
        good = yield self.goodClient()
        # One address, 12 at once: 6 admitted, 6 refused by count.
        flood = yield gatherResults([self.connect(ATTACKER) for _ in range(12)])
        yield self.until(lambda: gate.live == 7, 5, "7 admitted")
        yield self.until(
            lambda: sum(p.reason is not None or bool(p.received) for p in flood) == 6,
            5,
            "6 refused",
        )
        refused = [p for p in flood if p.reason is not None or p.received]
        yield gatherResults([p.whenLost(5) for p in refused])
        kept = [p for p in flood if p not in refused]
        self.assertEqual((len(refused), len(kept)), (6, 6))
        # Three leave; four more: two use the burst's last tokens, two
        # are refused as too fast.
        for peer in kept[:3]:
            peer.transport.loseConnection()
        yield self.until(lambda: gate.live == 4, 5, "3 released")
        more = yield gatherResults([self.connect(ATTACKER) for _ in range(4)])
        yield self.until(lambda: gate.live == 6, 5, "2 admitted")
        # A second address: 4 admitted, then the total of 10 refuses 2.
        other = yield gatherResults([self.connect(OTHER_ATTACKER) for _ in range(6)])
        yield self.until(lambda: sum(gate.refused.values()) == 10, 5, "10 refusals")
        self.assertEqual(
            gate.refused,
            {
                "too many connections from this address": 6,
                "connecting too fast": 2,
                "too many connections": 2,
            },
        )
        for peer in refused:
            self.assertIn(b"error too_many_connections", peer.received)
        tooFast = [p for p in more if b"connecting_too_fast" in p.received]
        self.assertEqual(len(tooFast), 2)
        self.assertEqual(self.factory.live, 10)
        yield self.wait(0.3)
        for peer in kept[3:]:
            self.assertIsNone(peer.reason)
        self.assertEqual(len([p for p in more + other if p.reason is None]), 6)
        yield self.assertGoodClientServed(good)

    @inlineCallbacks
    def test_trickleDoesNotHold(self) -> Generator[Any, Any, None]:
        """
        Under C{--activity pings}, a trickle of blank lines, of C{pong}
        lines or of bytes does not hold a connection: each is closed as
        idle, while the pinging client stays.
        """
        idle = 1.0
        yield self.serve(
            idle=idle,
            limits=ConnectionLimits(lineTimeout=60),
            maxBadLines=1000,
        )
        good = yield self.goodClient()
        trickles = [b"\n", b"pong\n", b"p"]
        peers = yield gatherResults([self.connect(ATTACKER) for _ in trickles])

        def trickle() -> None:
            for peer, data in zip(peers, trickles, strict=True):
                if peer.reason is None:
                    peer.send(data)

        loop = task.LoopingCall(trickle)
        loop.start(0.2)
        self.addCleanup(lambda: loop.running and loop.stop())
        yield gatherResults([p.whenLost(idle + 2) for p in peers])
        for peer in peers:
            self.assertLess(peer.lostAt - peer.madeAt, idle + 1)
        yield self.waitCloses(3)
        self.assertEqual(self.closes(), ["idle"] * 3)
        yield self.assertGoodClientServed(good)

    @inlineCallbacks
    def test_payloadFloodLogBounded(self) -> Generator[Any, Any, None]:
        """
        With C{--log-payloads}, pings sent at full speed by several clients
        and connection churn log no more than the budget a second (plus one
        summary a second).
        """
        rate = 20
        yield self.serve(
            logConfig=LogConfig(linesPerSecond=rate, logPayloads=True),
            pingRate=0,
        )
        yield self.goodClient()
        start = reactor.seconds()  # type: ignore[attr-defined]
        self.events.clear()
        flooders = yield gatherResults([self.connect(ATTACKER) for _ in range(4)])
        chunk = b"ping\n" * 2000
        sent = 0
        for _ in range(10):
            for peer in flooders:
                peer.send(chunk)
                sent += len(chunk)
            churn = yield gatherResults(
                [self.connect(OTHER_ATTACKER) for _ in range(10)]
            )
            for peer in churn:
                peer.transport.loseConnection()
            yield self.wait(0.1)
        yield self.wait(1.1)
        elapsed = reactor.seconds() - start  # type: ignore[attr-defined]
        summaries = [e for e in self.events if "suppressed" in e["log_format"]]
        lines = len(self.events) - len(summaries)
        self.assertGreater(sum(e["count"] for e in summaries), 0)
        self.assertLessEqual(lines, rate * (elapsed + 1))
        self.assertLessEqual(len(summaries), elapsed + 1)
        self.assertGreater(sent, 100 * lines)

    @inlineCallbacks
    def test_pingAndNeverRead(self) -> Generator[Any, Any, None]:
        """
        A client that pings at full speed and never reads is aborted as a
        slow reader once its unsent pongs stay above C{--max-unsent} past
        the grace; the server stops reading from it meanwhile.
        """
        yield self.serve(pingRate=0)
        self.factory.writeSettings = WriteSettings(maxUnsent=16384, grace=0.5)
        self.factory.protocol = SmallSendBuffer
        good = yield self.goodClient()
        attacker = yield self.connect(ATTACKER)
        attacker.transport.getHandle().setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
        )
        attacker.transport.pauseProducing()
        chunk = b"ping\n" * 2000
        sent = 0
        while attacker.reason is None and sent < 20_000_000:
            attacker.send(chunk)
            sent += len(chunk)
            yield self.wait(0.001)
        yield attacker.whenLost(10)
        yield self.waitCloses(1)
        self.assertEqual(self.closes(), ["slow reader"])
        [server] = [
            p for p in self.factory.built if getattr(p, "writeCloseReason", None)
        ]
        assert isinstance(server, Counting)
        self.assertLess(server.received, sent)
        yield self.assertGoodClientServed(good)

    @inlineCallbacks
    def test_longLineLinear(self) -> Generator[Any, Any, None]:
        """
        A 1 MB line in 100-byte pieces is refused once past
        C{maxLineLength} (64 KiB), with framing work linear in the bytes
        received.
        """
        yield self.serve(maxLineLength=65536)
        good = yield self.goodClient()
        attacker = yield self.connect(ATTACKER)
        attacker.transport.setTcpNoDelay(True)
        piece = b"z" * 100
        for _ in range(1000):
            if attacker.reason is not None:
                break
            attacker.transport.writeSequence([piece] * 10)
            yield self.wait(0)
        yield attacker.whenLost(5)
        self.assertIn(b"error line_too_long", attacker.received)
        [server] = [
            p for p in self.factory.built if p.pingCloseReason == "line too long"
        ]
        assert isinstance(server, Counting)
        self.assertGreater(server.received, 65536)
        self.assertLessEqual(server.framingWork, 3 * server.received)
        yield self.assertGoodClientServed(good)

    @inlineCallbacks
    def test_slowloris(self) -> Generator[Any, Any, None]:
        """
        Even under C{--activity bytes}, a line begun and never finished is
        closed after C{--line-timeout}.
        """
        yield self.serve(activity="bytes", limits=ConnectionLimits(lineTimeout=0.5))
        good = yield self.goodClient()
        attacker = yield self.connect(ATTACKER)

        def trickle() -> None:
            if attacker.reason is None:
                attacker.send(b"x")

        loop = task.LoopingCall(trickle)
        loop.start(0.1)
        self.addCleanup(lambda: loop.running and loop.stop())
        yield attacker.whenLost(5)
        self.assertLess(attacker.lostAt - attacker.madeAt, 2)
        self.assertIn(b"error line_timeout", attacker.received)
        yield self.waitCloses(1)
        self.assertEqual(self.closes(), ["line timeout"])
        yield self.assertGoodClientServed(good)

    @inlineCallbacks
    def test_tlsHandshakeTimeout(self) -> Generator[Any, Any, None]:
        """
        A client that opens a TLS port and never completes the handshake
        is closed after C{--tls-handshake-timeout}.
        """
        from ._tls import tlsOptions

        serverOptions, _ = tlsOptions()
        yield self.serve(limits=ConnectionLimits(tlsHandshakeTimeout=0.5))
        port = yield SSL4ServerEndpoint(
            reactor, 0, serverOptions, interface="127.0.0.1"
        ).listen(self.factory)
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port
        attacker = yield self.connect(ATTACKER)
        yield attacker.whenLost(5)
        self.assertLess(attacker.lostAt - attacker.madeAt, 2)
        yield self.waitCloses(1)
        self.assertEqual(self.closes(), ["tls handshake timeout"])


class BacklogTests(TestCase):
    timeout = 60

    @inlineCallbacks
    def test_backlogReachesListen(self) -> Generator[Any, Any, None]:
        """
        C{--backlog 37} is the listening socket's backlog (C{ss -ltn}
        shows it as Send-Q).
        """
        server = ChildProcess(
            self,
            twistdArgv(
                "heartbeat", "--port", "tcp:0:interface=127.0.0.1", "--backlog", "37"
            ),
        )
        port = yield server.listeningPort()
        try:
            shown = subprocess.run(
                ["ss", "-ltnH", f"sport = :{port}"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout
        except FileNotFoundError:
            raise SkipTest("needs ss (Debian package iproute2)") from None
        match = re.search(r"LISTEN\s+\d+\s+(\d+)", shown)
        self.assertIsNotNone(match, shown)
        assert match is not None
        self.assertEqual(int(match.group(1)), 37)
