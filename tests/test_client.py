"""
Tests of the client command: option parsing, usage errors, output lines.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Generator
from importlib.metadata import entry_points
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import inlineCallbacks
from twisted.internet.testing import StringTransport
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from heartbeat_twisted.client import Options, PrintingEvents, _optionsFirst, main
from heartbeat_twisted.ping import (
    PingClientProtocol,
    PingConfig,
    RoundTripStats,
)

from ._twistd import ChildProcess


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(_optionsFirst(Options, argv))
    return options


class OptionsTests(SynchronousTestCase):
    """
    C{ENDPOINT --interval S --timeout S}, in any order; bad values are
    usage errors naming the option.
    """

    def test_endpointFirst(self) -> None:
        options = parse("tcp:127.0.0.1:6666", "--interval", "2", "--timeout", "5")
        self.assertEqual(options.endpoint, "tcp:127.0.0.1:6666")
        self.assertEqual(options.pingConfig, PingConfig(interval=2, timeout=5))

    def test_endpointLastAndShort(self) -> None:
        options = parse("-i", "0.5", "--timeout=1.5", "--jitter", "0", "tcp:h:1")
        self.assertEqual(options.endpoint, "tcp:h:1")
        self.assertEqual(
            options.pingConfig, PingConfig(interval=0.5, timeout=1.5, jitter=0)
        )

    def test_defaults(self) -> None:
        options = parse("tcp:127.0.0.1:6666")
        self.assertEqual(options.pingConfig, PingConfig(interval=2, timeout=5))
        # backoffPolicy's default jitter adds up to one second.
        self.assertTrue(1.0 <= options.retryPolicy(0) < 2.0)

    def test_usageErrors(self) -> None:
        cases = [
            (["tcp:h:1", "--interval", "0"], "--interval must be > 0: 0.0"),
            (["tcp:h:1", "--timeout", "soon"], "--timeout must be a number: 'soon'"),
            (["tcp:h:1", "--jitter", "2"], "--jitter must be >= 0 and < 1: 2.0"),
            (
                ["tcp:h:1", "--reconnect-initial", "5", "--reconnect-max", "1"],
                "--reconnect-max must be >= initialDelay (5.0): 1.0",
            ),
            ([], "give exactly one ENDPOINT (e.g. tcp:127.0.0.1:6666), not 0"),
            (["a:1", "b:2"], "give exactly one ENDPOINT"),
            (["nosuch:1"], "ENDPOINT 'nosuch:1': Unknown endpoint type: 'nosuch'"),
        ]
        for argv, message in cases:
            with self.assertRaises(usage.UsageError) as caught:
                parse(*argv)
            self.assertIn(message, str(caught.exception))

    def test_mainExitsWithUsage(self) -> None:
        err = io.StringIO()
        self.patch(sys, "stderr", err)
        with self.assertRaises(SystemExit) as caught:
            main(["tcp:127.0.0.1:1", "--interval", "-1"])
        self.assertEqual(caught.exception.code, 2)
        self.assertIn("heartbeat-client: error: --interval must be > 0", err.getvalue())
        self.assertIn("ENDPOINT [--interval SECONDS]", err.getvalue())

    def test_consoleScript(self) -> None:
        (script,) = entry_points(group="console_scripts", name="heartbeat-client")
        self.assertEqual(script.value, "heartbeat_twisted.client:main")
        self.assertIs(script.load(), main)


class CommandTests(TestCase):
    """
    The client command as a process of its own.
    """

    @inlineCallbacks
    def test_moduleRuns(self) -> Generator[Any, Any, None]:
        """
        C{python -m heartbeat_twisted.client} is the command.
        """
        process = ChildProcess(
            self,
            [
                sys.executable,
                "-m",
                "heartbeat_twisted.client",
                "tcp:127.0.0.1:1",
                "--timeout",
                "x",
            ],
        )
        code = yield process.whenEnded(60)
        self.assertEqual(code, 2)
        self.assertIn("--timeout must be a number: 'x'", process.output(2))
        self.assertEqual(process.output(1), "")


class OutputTests(SynchronousTestCase):
    """
    One line per event.
    """

    def setUp(self) -> None:
        self.out = io.StringIO()
        self.events = PrintingEvents(self.out)
        self.protocol: Any = PingClientProtocol()
        self.protocol.transport = StringTransport(
            peerAddress=IPv4Address("TCP", "127.0.0.1", 6666)
        )
        self.protocol.pingStats = RoundTripStats()

    def test_lines(self) -> None:
        self.events.connected(self.protocol)
        self.protocol.pingStats.add(0.002)
        self.events.roundTrip(self.protocol, 0.002)
        self.protocol.pingStats.add(0.001)
        self.events.roundTrip(self.protocol, 0.001)
        self.events.unhealthy(self.protocol, "db: down")
        self.events.peerError(self.protocol, "error too_many_pings :slow")
        self.events.dead(self.protocol, 5.0)
        self.events.disconnected(self.protocol, Failure(ConnectionAbortedError("x")))
        self.assertEqual(
            self.out.getvalue().splitlines(),
            [
                "connected 127.0.0.1:6666",
                "rtt 2.000 ms min 2.000 ms smoothed 2.000 ms",
                "rtt 1.000 ms min 1.000 ms smoothed 1.875 ms",
                "unhealthy db: down",
                "peer error: error too_many_pings :slow",
                "dead: no answer within 5 s from 127.0.0.1:6666",
                "disconnected 127.0.0.1:6666: x",
            ],
        )


class RetryOutputTests(SynchronousTestCase):
    """
    What the command says while it retries, and when told to go.
    """

    def test_retryLines(self) -> None:
        from twisted.internet.error import ConnectionRefusedError

        out = io.StringIO()
        events = PrintingEvents(out, "tcp:127.0.0.1:1")
        events.retrying(1.26, Failure(ConnectionRefusedError()))
        events.retrying(0.4, None)
        protocol: Any = PingClientProtocol()
        protocol.transport = StringTransport(
            peerAddress=IPv4Address("TCP", "127.0.0.1", 6666)
        )
        events.goAway(protocol, "shutdown", 5.0)
        self.assertEqual(
            out.getvalue().splitlines(),
            [
                "connecting tcp:127.0.0.1:1: Connection refused; retrying in 1.3 s",
                "retrying in 0.4 s",
                "goaway from 127.0.0.1:6666 within 5 s: shutdown",
            ],
        )


class AbsentServerTests(TestCase):
    """
    The command, run against a port nobody listens on, says so and when it
    tries again.
    """

    @inlineCallbacks
    def test_saysItRetries(self) -> Generator[Any, Any, None]:
        from ._pingnet import freePort

        endpoint = f"tcp:127.0.0.1:{freePort()}"
        process = ChildProcess(
            self,
            [
                sys.executable,
                "-m",
                "heartbeat_twisted.client",
                endpoint,
                "--reconnect-initial",
                "0.1",
                "--reconnect-max",
                "0.2",
            ],
        )
        yield process.waitFor("retrying in", 30)
        first = process.output(1).splitlines()[0]
        self.assertTrue(
            first.startswith(
                f"connecting {endpoint}: Connection refused; retrying in "
            ),
            first,
        )
