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
from heartbeat_twisted.server._protocol import DemoFactory
from heartbeat_twisted.tap import Options, makeService, portToEndpoint


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        options = parse()
        self.assertEqual(options.endpoint, "tcp:6666")
        self.assertEqual(options.heartbeatConfig, HeartbeatConfig(idle=5))

    def test_values(self) -> None:
        options = parse("--port", "7000", "--idle", "30", "--check-interval", "2")
        self.assertEqual(options.endpoint, "tcp:7000")
        self.assertEqual(options.heartbeatConfig, HeartbeatConfig(30, 2))

    def test_endpointString(self) -> None:
        options = parse("--port", "tcp:6666:interface=127.0.0.1")
        self.assertEqual(options.endpoint, "tcp:6666:interface=127.0.0.1")

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
        self.assertIsInstance(factory, DemoFactory)
        self.assertEqual(factory.heartbeatConfig, HeartbeatConfig(idle=3))
        self.assertIs(factory.heartbeatTracker.clock, reactor)


class PluginTests(SynchronousTestCase):
    def test_pluginFound(self) -> None:
        plugins = [p for p in getPlugins(IServiceMaker) if p.tapname == "heartbeat"]
        self.assertEqual(len(plugins), 1)
        [plugin] = plugins
        self.assertTrue(verifyObject(IServiceMaker, plugin))
        self.assertTrue(verifyObject(IPlugin, plugin))
        self.assertIs(plugin.options, Options)
        self.assertIn("ping", plugin.description)
