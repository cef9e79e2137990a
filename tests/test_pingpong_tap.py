"""
The ping/pong options of C{twistd heartbeat}.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted.ping import PingServerConfig
from heartbeat_twisted.tap import Options, makeService

from ._pingnet import tempPath


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class PingOptionsTests(SynchronousTestCase):
    """
    C{--min-ping-interval}, C{--max-ping-strikes}, C{--max-line-length},
    C{--health-check-file}.
    """

    def test_defaults(self) -> None:
        self.assertEqual(
            parse().pingServerConfig, PingServerConfig(healthCheckMaxAge=0.5)
        )

    def test_healthCheckMaxAge(self) -> None:
        """
        C{--health-check-max-age} sets how long a verdict of the health
        checks is reused (0: never); a bad value names the option.
        """
        for given, expected in [("0", 0.0), ("2.5", 2.5)]:
            options = parse("--health-check-max-age", given)
            self.assertEqual(options.pingServerConfig.healthCheckMaxAge, expected)
        for bad in ["-1", "soon"]:
            error = self.assertRaises(
                usage.UsageError, parse, "--health-check-max-age", bad
            )
            self.assertIn("--health-check-max-age", str(error))

    def test_values(self) -> None:
        options = parse(
            "--ping-rate", "0.4", "--ping-burst", "1", "--max-line-length", "64"
        )
        self.assertEqual(
            options.pingServerConfig,
            PingServerConfig(
                pingRate=0.4, pingBurst=1, maxLineLength=64, healthCheckMaxAge=0.5
            ),
        )

    def test_deprecatedOptions(self) -> None:
        """
        C{--min-ping-interval} and C{--max-ping-strikes} still work for one
        release: they print a deprecation line and stand for
        C{--ping-rate 1/N} and C{--ping-burst N+1}.
        """
        err = io.StringIO()
        self.patch(sys, "stderr", err)
        options = parse("--min-ping-interval", "2.5", "--max-ping-strikes", "0")
        self.assertEqual(
            options.pingServerConfig,
            PingServerConfig(pingRate=0.4, pingBurst=1, healthCheckMaxAge=0.5),
        )
        self.assertIn(
            "--min-ping-interval and --max-ping-strikes are deprecated", err.getvalue()
        )
        self.assertEqual(
            parse("--min-ping-interval", "0").pingServerConfig.pingRate, 0.0
        )

    def test_usageErrors(self) -> None:
        cases = [
            (["--ping-rate", "-1"], "--ping-rate must be >= 0: -1.0"),
            (
                ["--ping-rate", "often"],
                "--ping-rate must be a number: 'often'",
            ),
            (["--ping-burst", "1.5"], "--ping-burst must be a whole number: '1.5'"),
            (["--ping-burst", "0"], "--ping-burst must be >= 1: 0"),
            (
                ["--min-ping-interval", "-1"],
                "--min-ping-interval must be >= 0: -1.0",
            ),
            (["--max-ping-strikes", "-3"], "--max-ping-strikes must be >= 0: -3"),
            (
                ["--max-line-length", "8"],
                "--max-line-length must be in 16..1048576: 8",
            ),
        ]
        for argv, message in cases:
            with self.assertRaises(usage.UsageError) as caught:
                parse(*argv)
            self.assertEqual(str(caught.exception), message)

    def serve(self, *argv: str) -> tuple[Any, StringTransport]:
        reactor = self.reactor = MemoryReactorClock()
        service: Any = makeService(parse("--port", "tcp:0", *argv), reactor=reactor)
        factory = service.factory
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def test_serviceUsesLimits(self) -> None:
        protocol, transport = self.serve("--max-line-length", "16")
        protocol.dataReceived(b"ping\n" + b"z" * 17)
        self.assertEqual(
            transport.value(),
            b"pong\nerror line_too_long :lines are limited to 16 bytes\n",
        )

    def test_healthCheckFile(self) -> None:
        """
        C{--health-check-file}: pings are answered C{pong} while the file
        exists.  A verdict answers the pings of the next
        C{--health-check-max-age} seconds (0.5 by default) too: a change of
        the file shows in the first ping after that.
        """
        path = tempPath(self, "ready")
        protocol, transport = self.serve(
            "--health-check-file", path, "--ping-rate", "0"
        )
        unhealthy = "error unhealthy {} :file: " + path + " does not exist"
        protocol.dataReceived(b"ping 1\n")
        open(path, "w").close()
        protocol.dataReceived(b"ping 2\n")
        self.reactor.advance(0.5)
        protocol.dataReceived(b"ping\n")
        self.reactor.advance(0.01)
        protocol.dataReceived(b"ping 3\n")
        os.remove(path)
        protocol.dataReceived(b"ping\n")
        self.reactor.advance(0.51)
        protocol.dataReceived(b"ping\n")
        self.assertEqual(
            transport.value().decode().splitlines(),
            [
                unhealthy.format(1),
                unhealthy.format(2),
                "error unhealthy :file: " + path + " does not exist",
                "pong 3",
                "pong",
                "error unhealthy :file: " + path + " does not exist",
            ],
        )

    def test_healthCheckEveryPing(self) -> None:
        """
        With C{--health-check-max-age 0} every ping runs the checks.
        """
        path = tempPath(self, "ready")
        protocol, transport = self.serve(
            "--health-check-file", path, "--health-check-max-age", "0"
        )
        protocol.dataReceived(b"ping 1\n")
        open(path, "w").close()
        protocol.dataReceived(b"ping 2\n")
        self.assertEqual(
            transport.value().decode().splitlines(),
            [f"error unhealthy 1 :file: {path} does not exist", "pong 2"],
        )
