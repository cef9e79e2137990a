"""
Tests for the C{twistd heartbeat} options, service and plugin.
"""

from __future__ import annotations

from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import IPlugin, getPlugins
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from heartbeat_twisted import HeartbeatConfig
from heartbeat_twisted.server._limitoptions import ServerLimits
from heartbeat_twisted.server._limits import (
    ConnectionLimits,
    defaultBacklog,
    defaultMaxConnections,
)
from heartbeat_twisted.server._logbudget import LogConfig
from heartbeat_twisted.server._protocol import DemoFactory, ServerFactory
from heartbeat_twisted.tap import Options, makeService, portToEndpoint


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        options = parse()
        self.assertEqual(options.endpoint, f"tcp:6666:backlog={defaultBacklog()}")
        self.assertEqual(options.heartbeatConfig, HeartbeatConfig(idle=5))

    def test_values(self) -> None:
        options = parse("--port", "7000", "--idle", "30", "--check-interval", "2")
        self.assertEqual(options.endpoint, f"tcp:7000:backlog={defaultBacklog()}")
        self.assertEqual(options.heartbeatConfig, HeartbeatConfig(30, 2))

    def test_endpointString(self) -> None:
        options = parse("--port", "tcp:6666:interface=127.0.0.1", "--backlog", "7")
        self.assertEqual(options.endpoint, "tcp:6666:interface=127.0.0.1:backlog=7")
        options = parse("--port", "tcp:6666:backlog=3", "--backlog", "7")
        self.assertEqual(options.endpoint, "tcp:6666:backlog=3")

    def test_limitDefaults(self) -> None:
        """
        Every limit has a default; C{--max-connections} follows the
        descriptor limit.
        """
        self.assertEqual(
            parse().serverLimits,
            ServerLimits(
                ConnectionLimits(
                    maxConnections=defaultMaxConnections(),
                    maxConnectionsPerAddress=1000,
                    connectionRate=100,
                    connectionBurst=200,
                    lineTimeout=5,
                    tlsHandshakeTimeout=10,
                ),
                "pings",
                LogConfig(linesPerSecond=100, logPayloads=False),
                defaultBacklog(),
            ),
        )

    def test_limitValues(self) -> None:
        options = parse(
            *("--max-connections", "10", "--max-connections-per-ip", "2"),
            *("--connection-rate", "0.5", "--connection-burst", "3"),
            *("--line-timeout", "0.5", "--tls-handshake-timeout", "2"),
            *("--activity", "lines", "--log-rate", "7", "--log-payloads"),
            *("--backlog", "9", "--limit-loopback"),
        )
        self.assertEqual(
            options.serverLimits,
            ServerLimits(
                ConnectionLimits(10, 2, 0.5, 3, 0.5, 2, limitLoopback=True),
                "lines",
                LogConfig(7, True),
                9,
            ),
        )

    def test_portToEndpoint(self) -> None:
        self.assertEqual(portToEndpoint(" 80 "), "tcp:80")
        self.assertEqual(portToEndpoint("unix:/tmp/s"), "unix:/tmp/s")
        self.assertRaises(ValueError, portToEndpoint, "65536")

    def assertUsage(self, message: str, *argv: str) -> None:
        error = self.assertRaises(UsageError, parse, *argv)
        self.assertEqual(str(error), message)

    def test_badValues(self) -> None:
        self.assertUsage("--idle must be > 0: 0.0", "--idle", "0")
        self.assertUsage("--idle must be a number of seconds: 'x'", "--idle", "x")
        self.assertUsage(
            "--check-interval must be > 0 and <= idle (5.0): 6.0",
            "--check-interval",
            "6",
        )
        self.assertUsage("--port must be in 0..65535: 99999", "--port", "99999")
        self.assertRaises(UsageError, parse, "--port", "nonsense:1")
        self.assertUsage(
            "--idle must be at least 0.01 s (10 ms): 0.005", "--idle", "0.005"
        )
        self.assertUsage(
            "--line-timeout must be >= 0.01 (10 ms): 0.001", "--line-timeout", "0.001"
        )
        self.assertUsage(
            "--max-connections-per-ip must be >= 0: -1",
            "--max-connections-per-ip",
            "-1",
        )
        self.assertUsage(
            "--connection-rate must be a number: 'fast'", "--connection-rate", "fast"
        )
        self.assertUsage("--backlog must be >= 1: 0", "--backlog", "0")
        self.assertUsage(
            "--activity must be one of bytes, lines, pings: 'any'", "--activity", "any"
        )
        self.assertUsage("--log-rate must be >= 1: 0", "--log-rate", "0")
        self.assertUsage(
            "--max-line-length must be in 16..65536: 1048576",
            "--max-line-length",
            "1048576",
        )
        self.assertRaises(UsageError, parse, "--no-such-option")


class ServiceTests(SynchronousTestCase):
    def test_listensWithTheDemoFactory(self) -> None:
        reactor = MemoryReactorClock()
        options = parse("--port", "tcp:7001:interface=127.0.0.1", "--idle", "3")
        service = makeService(options, reactor=reactor)
        service.startService()
        self.addCleanup(service.stopService)
        [(port, factory, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (7001, "127.0.0.1"))
        self.assertIsInstance(factory, ServerFactory)
        self.assertIs(DemoFactory, ServerFactory)
        self.assertEqual(factory.heartbeatConfig, HeartbeatConfig(idle=3))
        self.assertIs(factory.heartbeatTracker.clock, reactor)

    def test_factoryGetsTheLimits(self) -> None:
        reactor = MemoryReactorClock()
        options = parse(
            "--port", "tcp:0", "--max-connections", "4", "--activity", "bytes"
        )
        service = makeService(options, reactor=reactor)
        service.startService()
        self.addCleanup(service.stopService)
        [(_, factory, backlog, _)] = reactor.tcpServers
        self.assertEqual(backlog, defaultBacklog())
        self.assertEqual(factory.limits.maxConnections, 4)
        self.assertEqual(factory.activity, "bytes")
        self.assertEqual(factory.logConfig, LogConfig())


class PluginTests(SynchronousTestCase):
    def test_pluginFound(self) -> None:
        plugins = [p for p in getPlugins(IServiceMaker) if p.tapname == "heartbeat"]
        self.assertEqual(len(plugins), 1)
        [plugin] = plugins
        self.assertTrue(verifyObject(IServiceMaker, plugin))
        self.assertTrue(verifyObject(IPlugin, plugin))
        self.assertIs(plugin.options, Options)
        self.assertIn("ping", plugin.description)
