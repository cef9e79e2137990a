"""
The ping/pong options of C{twistd heartbeat}.
"""

from __future__ import annotations

import io
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
        self.assertEqual(parse().pingServerConfig, PingServerConfig())

    def test_values(self) -> None:
        options = parse(
            "--ping-rate", "0.4", "--ping-burst", "1", "--max-line-length", "64"
        )
        self.assertEqual(
            options.pingServerConfig,
            PingServerConfig(pingRate=0.4, pingBurst=1, maxLineLength=64),
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
            options.pingServerConfig, PingServerConfig(pingRate=0.4, pingBurst=1)
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
        reactor = MemoryReactorClock()
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
        path = tempPath(self, "ready")
        protocol, transport = self.serve(
            "--health-check-file", path, "--ping-rate", "0"
        )
        protocol.dataReceived(b"ping 1\n")
        open(path, "w").close()
        protocol.dataReceived(b"ping 2\n")
        self.assertEqual(
            transport.value().decode().splitlines(),
            [f"error unhealthy 1 :file: {path} does not exist", "pong 2"],
        )
