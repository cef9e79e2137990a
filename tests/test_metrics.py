"""
Tests for the server's metrics: read from Python in simulated time, and
scraped over HTTP from a real C{twistd heartbeat}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, readBody

from heartbeat_twisted.server._metrics import ReactorLag
from heartbeat_twisted.server._service import makeService
from heartbeat_twisted.tap import Options
from heartbeat_twisted.testing import connect

from ._peers import connectPeer
from ._twistd import ChildProcess, twistdArgv


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class ServerMetricsTests(SynchronousTestCase):
    """
    The metrics read the factory's and the responder's own counters.
    """

    def test_counts(self) -> None:
        clock = Clock()
        service: Any = makeService(
            parse("--port", "tcp:0", "--idle", "10", "--min-ping-interval", "0"),
            reactor=clock,  # type: ignore[arg-type]
        )
        factory = service.factory
        metrics = service.metrics
        first = connect(factory)
        second = connect(factory)
        connect(factory)
        first.receive(b"ping\nping\n")
        second.receive(b"ping 7\n")
        first.peerClosed()
        second.receive(b"\x00\n")
        clock.advance(11)
        values = metrics.values()
        self.assertEqual(values["heartbeat_connections_open"], 0)
        self.assertEqual(values["heartbeat_connections_accepted_total"], 3)
        self.assertEqual(values["heartbeat_pings_total"], 3)
        self.assertEqual(values["heartbeat_pongs_total"], 3)
        self.assertEqual(values["heartbeat_health_check_failures_total"], 0)
        closed = {
            key: value
            for key, value in values.items()
            if key.startswith("heartbeat_connections_closed_total")
        }
        self.assertEqual(
            closed,
            {
                'heartbeat_connections_closed_total{reason="binary data"}': 1,
                'heartbeat_connections_closed_total{reason="idle"}': 1,
                'heartbeat_connections_closed_total{reason="peer closed"}': 1,
            },
        )
        self.assertEqual(values["heartbeat_draining"], 0)
        self.assertGreater(values["heartbeat_sweeps_total"], 0)
        self.assertGreaterEqual(values["heartbeat_sweep_duration_seconds"], 0.0)

    def test_prometheusText(self) -> None:
        """
        As a C{prometheus_client} collector, every sample carries the
        C{worker} label.
        """
        from prometheus_client import CollectorRegistry, generate_latest

        clock = Clock()
        service: Any = makeService(parse(), reactor=clock)  # type: ignore[arg-type]
        service.metrics.worker = "2"
        connect(service.factory).receive(b"ping\n")
        registry = CollectorRegistry()
        registry.register(service.metrics)
        text = generate_latest(registry).decode()
        self.assertIn('heartbeat_pongs_total{worker="2"} 1.0\n', text)
        self.assertIn('heartbeat_connections_open{worker="2"} 1.0\n', text)
        self.assertIn("# TYPE heartbeat_pongs_total counter\n", text)


class ReactorLagTests(SynchronousTestCase):
    def test_lateness(self) -> None:
        """
        Each probe notes how much later than asked it ran.
        """
        clock = Clock()
        lag = ReactorLag(interval=1.0, clock=clock)
        lag.start()
        clock.advance(1.0)
        self.assertEqual((lag.probes, lag.last), (2, 0.0))
        clock.advance(1.5)
        self.assertEqual((lag.probes, lag.last, lag.max), (3, 0.5, 0.5))
        lag.stop()


class ScrapeTests(TestCase):
    """
    A real C{twistd heartbeat} serves its metrics over HTTP, and they move
    as the run says.
    """

    timeout = 60

    @inlineCallbacks
    def scrape(self, port: int) -> Any:
        agent = Agent(reactor)
        response = yield agent.request(
            b"GET", f"http://127.0.0.1:{port}/metrics".encode()
        )
        self.assertEqual(response.code, 200)
        body = yield readBody(response)
        return body.decode()

    @inlineCallbacks
    def test_scrape(self) -> Any:
        child = ChildProcess(
            self,
            twistdArgv(
                "heartbeat",
                "--port",
                "tcp:0:interface=127.0.0.1",
                "--metrics-port",
                "tcp:0:interface=127.0.0.1",
                "--min-ping-interval",
                "0",
                "--drain-grace",
                "1",
            ),
            "twistd",
            HEARTBEAT_WORKER="4",
        )
        server = yield child.waitFor(r"Factory starting on (\d+)", 20)
        site = yield child.waitFor(r"Site starting on (\d+)", 20)
        port, metricsPort = int(server.group(1)), int(site.group(1))
        peers = []
        for _ in range(3):
            peer = yield connectPeer(port)
            self.addCleanup(peer.transport.abortConnection)
            peers.append(peer)
        for i, peer in enumerate(peers):
            peer.send(b"".join(b"ping %d\n" % n for n in range(i + 1)))
            yield peer.expect(b"pong %d\n" % i)
        peers[0].transport.loseConnection()
        peers[1].send(b"\x01\n")
        yield peers[0].whenLost()
        yield peers[1].whenLost()
        yield child.waitFor("close fd 2: binary data")
        text = yield self.scrape(metricsPort)
        for line in [
            'heartbeat_connections_accepted_total{worker="4"} 3.0',
            'heartbeat_connections_open{worker="4"} 1.0',
            'heartbeat_pings_total{worker="4"} 6.0',
            'heartbeat_pongs_total{worker="4"} 6.0',
            'heartbeat_connections_closed_total{reason="peer closed",worker="4"} 1.0',
            'heartbeat_connections_closed_total{reason="binary data",worker="4"} 1.0',
        ]:
            self.assertIn(line + "\n", text)
        self.assertIn("heartbeat_reactor_lag_seconds{", text)
        self.assertIn("process_cpu_seconds_total ", text)
