"""
Tests for the operations options of C{twistd heartbeat} and for listening
on several endpoints at once (TCP, TCP over IPv6, UNIX, TLS) over real
sockets.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from twisted.internet import endpoints, reactor
from twisted.internet.defer import inlineCallbacks
from twisted.logger import globalLogPublisher
from twisted.python.usage import UsageError
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

import heartbeat_twisted
from heartbeat_twisted.server import makeService
from heartbeat_twisted.server._drain import DrainConfig, MaxAgeConfig
from heartbeat_twisted.tap import Options

from ._peers import Peer
from ._tls import selfSigned
from ._twistd import ChildProcess, twistdArgv


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OperationsOptionsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        options = parse("--backlog", "50")
        self.assertEqual(options.endpoints, ["tcp:6666:backlog=50"])
        self.assertEqual(options.endpoint, "tcp:6666:backlog=50")
        self.assertIsNone(options.metricsEndpoint)
        self.assertEqual(options.drainConfig, DrainConfig(delay=0, grace=5))
        self.assertIsNone(options.maxAgeConfig)
        self.assertEqual(options["log-format"], "text")
        self.assertEqual(options.worker, "0")

    def test_severalPorts(self) -> None:
        options = parse(
            "--port", "7000", "-p", "tcp6:7001", "--port=unix:/tmp/x", "--backlog=9"
        )
        self.assertEqual(
            options.endpoints,
            ["tcp:7000:backlog=9", "tcp6:7001:backlog=9", "unix:/tmp/x:backlog=9"],
        )
        self.assertEqual(options.endpoint, "tcp:7000:backlog=9")

    def test_metricsPort(self) -> None:
        self.assertEqual(
            parse("--metrics-port", "9100").metricsEndpoint,
            "tcp:9100:interface=127.0.0.1",
        )
        self.assertEqual(
            parse("--metrics-port", "tcp:9100").metricsEndpoint, "tcp:9100"
        )

    def test_drainAndMaxAge(self) -> None:
        options = parse(
            "--drain-delay",
            "3",
            "--drain-grace",
            "1.5",
            "--max-connection-age",
            "600",
            "--max-connection-age-grace",
            "30",
        )
        self.assertEqual(options.drainConfig, DrainConfig(delay=3, grace=1.5))
        self.assertEqual(options.maxAgeConfig, MaxAgeConfig(age=600, grace=30))

    def test_worker(self) -> None:
        """
        A worker's label comes from C{HEARTBEAT_WORKER}; its metrics port
        is the given number plus its own.
        """
        self.patch(os, "environ", {**os.environ, "HEARTBEAT_WORKER": "3"})
        options = parse("--metrics-port", "9100")
        self.assertEqual(options.worker, "3")
        self.assertEqual(options.metricsEndpoint, "tcp:9103:interface=127.0.0.1")

    def assertUsage(self, message: str, *argv: str) -> None:
        error = self.assertRaises(UsageError, parse, *argv)
        self.assertEqual(str(error), message)

    def test_badValues(self) -> None:
        self.assertUsage("--port must be in 0..65535: 70000", "--port", "70000")
        self.assertUsage(
            "--metrics-port must be in 0..65535: 70000", "--metrics-port", "70000"
        )
        self.assertRaises(UsageError, parse, "--port", "1", "--port", "nonsense:1")
        self.assertUsage("--drain-delay must be >= 0: -1.0", "--drain-delay", "-1")
        self.assertUsage(
            "--drain-grace must be a number of seconds: 'x'", "--drain-grace", "x"
        )
        self.assertUsage(
            "--max-connection-age must be > 0: 0.0", "--max-connection-age", "0"
        )
        self.assertUsage(
            "--log-format must be one of text, json: 'xml'", "--log-format", "xml"
        )


class VersionTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def test_version(self) -> Any:
        """
        C{twistd heartbeat --version} prints heartbeat_twisted's version and
        exits 0.
        """
        child = ChildProcess(self, twistdArgv("heartbeat", "--version"), "twistd")
        code = yield child.whenEnded()
        self.assertEqual(code, 0)
        self.assertIn(
            f"heartbeat_twisted {heartbeat_twisted.__version__} (Twisted ",
            child.output(1),
        )


def _hasIPv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


class SeveralEndpointsTests(TestCase):
    """
    One server listens on TCP, TCP over IPv6, a UNIX socket and TLS at once;
    each answers ping, and keepalive is confirmed once per endpoint.
    """

    timeout = 30

    def setUp(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="hbt-operate-"))
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def certificate(self) -> tuple[Path, Path]:
        cert, key = selfSigned()
        certPath = self.directory / "cert.pem"
        keyPath = self.directory / "key.pem"
        certPath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keyPath.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return certPath, keyPath

    @inlineCallbacks
    def test_allAtOnce(self) -> Any:
        if not _hasIPv6():
            raise SkipTest("no IPv6 loopback here")
        certPath, keyPath = self.certificate()
        unixPath = self.directory / "hb.sock"
        options = parse(
            "--port",
            "tcp:0:interface=127.0.0.1",
            "--port",
            r"tcp6:0:interface=\:\:1",
            "--port",
            f"unix:{unixPath}",
            "--port",
            f"ssl:0:interface=127.0.0.1:certKey={certPath}:privateKey={keyPath}",
            "--keepidle",
            "9",
        )
        service: Any = makeService(options, reactor=reactor)  # type: ignore[arg-type]
        service.startService()
        self.addCleanup(service.stopService)
        tcp, tcp6, _unix, tls = service.ports
        clients = [
            f"tcp:host=127.0.0.1:port={tcp.getHost().port}",
            endpoints.TCP6ClientEndpoint(reactor, "::1", tcp6.getHost().port),
            f"unix:path={unixPath}",
            f"ssl:host=127.0.0.1:port={tls.getHost().port}",
        ]
        for description in clients:
            endpoint = (
                endpoints.clientFromString(reactor, description)
                if isinstance(description, str)
                else description
            )
            peer = yield endpoints.connectProtocol(endpoint, Peer())
            self.addCleanup(peer.transport.loseConnection)
            peer.send(b"ping x1\n")
            received = yield peer.expect(b"pong x1\n")
            self.assertEqual(received, b"pong x1\n", description)
        confirmed = [
            (e["endpoint"], e.get("idle"), e.get("why", ""))
            for e in self.events
            if "OS keepalive" in e.get("log_format", "") and "endpoint" in e
        ]
        self.assertEqual(
            [(endpoint, idle) for endpoint, idle, _ in confirmed],
            [
                (options.endpoints[0], 9),
                (options.endpoints[1], 9),
                (options.endpoints[2], None),
                (options.endpoints[3], 9),
            ],
        )
        self.assertIn("AF_UNIX", confirmed[2][2])
        self.assertEqual(service.metrics.values()["heartbeat_pongs_total"], 4)


class HelpTextTests(SynchronousTestCase):
    """
    The help of the server's own and operations options says defaults one
    way, C{[default: ...]} at the end, as usage.Options prints them.
    """

    def test_oneStyle(self) -> None:
        from heartbeat_twisted.server import _options
        from heartbeat_twisted.server._operations import OperationsOptionsMixin

        texts = [
            text
            for cls in (_options.Options, OperationsOptionsMixin)
            for parameter in [
                *cls.__dict__["optParameters"],
                *_options.LIMIT_PARAMETERS,
                *_options.WRITE_PARAMETERS,
            ]
            if isinstance(text := parameter[3], str)
        ]
        texts.append(OperationsOptionsMixin.opt_port.__doc__ or "")
        self.assertGreater(len(texts), 15)
        for text in texts:
            self.assertNotIn("(default", text)
            self.assertNotIn("Default:", text)
            self.assertNotIn("; default", text)


class FreezeTests(SynchronousTestCase):
    def test_freezeWhenRunning(self) -> None:
        """
        The server's own process freezes what exists once its reactor
        runs, not before.
        """
        from twisted.internet.testing import MemoryReactor

        from heartbeat_twisted.server._service import freezeWhenRunning

        frozen: list[int] = []
        memory = MemoryReactor()
        freezeWhenRunning(memory, lambda: frozen.append(1))
        self.assertEqual(frozen, [])
        memory.run()
        self.assertEqual(frozen, [1])
