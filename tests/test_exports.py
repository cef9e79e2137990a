"""
The public surface: exactly the names a user needs, each the private
object, documented; old names warn for one release and still work.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

from twisted.trial.unittest import SynchronousTestCase

import heartbeat_twisted
import heartbeat_twisted.ping
import heartbeat_twisted.ping.amp
import heartbeat_twisted.testing
from heartbeat_twisted import (
    _config,
    _keepalive,
    _mixins,
    _timeout,
    _tracker,
    _wrapping,
)
from heartbeat_twisted._deprecated import MOVED
from heartbeat_twisted._writepath import _install
from heartbeat_twisted.ping import (
    _answering,
    _client,
    _counters,
    _framing,
    _health,
    _pinging,
)
from heartbeat_twisted.ping import _config as _pingConfig

PUBLIC: dict[ModuleType, dict[str, object]] = {
    heartbeat_twisted: {
        "HeartbeatConfig": _config.HeartbeatConfig,
        "KeepAliveConfig": _config.KeepAliveConfig,
        "HeartbeatFactoryMixin": _mixins.HeartbeatFactoryMixin,
        "HeartbeatMixin": _mixins.HeartbeatMixin,
        "HeartbeatWrappingFactory": _wrapping.HeartbeatWrappingFactory,
        "IdleTracker": _tracker.IdleTracker,
        "KeepAliveResult": _keepalive.KeepAliveResult,
        "KeepAliveTimedOut": _keepalive.KeepAliveTimedOut,
        "PeerReset": _keepalive.PeerReset,
        "TimeoutMixin": _timeout.TimeoutMixin,
        "enableKeepAlive": _keepalive.enableKeepAlive,
        "EagerWriteMixin": _install.EagerWriteMixin,
    },
    heartbeat_twisted.ping: {
        "HealthCheck": _pingConfig.HealthCheck,
        "HealthCheckError": _health.HealthCheckError,
        "HealthFailure": _health.HealthFailure,
        "IPingFraming": _framing.IPingFraming,
        "PingAnswerMixin": _answering.PingAnswerMixin,
        "PingClientFactory": _client.PingClientFactory,
        "PingClientProtocol": _client.PingClientProtocol,
        "PingConfig": _pingConfig.PingConfig,
        "PingCounters": _counters.PingCounters,
        "PingEvents": _client.PingEvents,
        "PingServerConfig": _pingConfig.PingServerConfig,
        "PingState": _pinging.PingState,
        "PingingMixin": _pinging.PingingMixin,
        "RoundTripStats": _counters.RoundTripStats,
        "pingClientService": _client.pingClientService,
    },
    heartbeat_twisted.ping.amp: {
        "AMPFraming": heartbeat_twisted.ping.amp.AMPFraming,
        "GoAway": heartbeat_twisted.ping.amp.GoAway,
        "Ping": heartbeat_twisted.ping.amp.Ping,
        "PingRefusedError": heartbeat_twisted.ping.amp.PingRefusedError,
        "UnhealthyError": heartbeat_twisted.ping.amp.UnhealthyError,
    },
}


class ExportsTests(SynchronousTestCase):
    def test_names(self) -> None:
        """
        Each public module's C{__all__} is exactly the pinned names, and
        each is the private module's object.
        """
        for module, expected in PUBLIC.items():
            extra = {"__version__"} if module is heartbeat_twisted else set()
            self.assertEqual(sorted(module.__all__), sorted({*expected, *extra}))
            for name, obj in expected.items():
                self.assertIs(getattr(module, name), obj, name)

    def test_allDocumented(self) -> None:
        """
        Every public name, and every public method of a public class, says
        what it is for.
        """
        undocumented = []
        for module in (*PUBLIC, heartbeat_twisted.testing):
            for name in module.__all__:
                if name.startswith("__"):
                    continue
                obj = getattr(module, name)
                if not inspect.getdoc(obj):
                    undocumented.append(name)
                if inspect.isclass(obj):
                    for attr, value in vars(obj).items():
                        if attr.startswith("_") or not callable(value):
                            continue
                        if not inspect.getdoc(value):
                            undocumented.append(f"{name}.{attr}")
        self.assertEqual(undocumented, [])

    def test_everyModuleImports(self) -> None:
        """
        Every module of the package imports (nothing needs more at import
        time than the declared Twisted floor offers).
        """
        names = [
            info.name
            for info in pkgutil.walk_packages(
                heartbeat_twisted.__path__, "heartbeat_twisted."
            )
        ]
        self.assertIn("heartbeat_twisted.ping._answering", names)
        for name in names:
            importlib.import_module(name)


class DeprecatedNamesTests(SynchronousTestCase):
    def test_oldNamesWarnAndWork(self) -> None:
        """
        Every old top-level name still gives the object it stood for, with a
        L{DeprecationWarning} naming the replacement.
        """
        for old, (where, new, since) in MOVED.items():
            obj = getattr(heartbeat_twisted, old)
            self.assertIs(obj, getattr(importlib.import_module(where), new))
            warnings = self.flushWarnings()
            self.assertEqual(len(warnings), 1, old)
            self.assertIs(warnings[0]["category"], DeprecationWarning)
            message = warnings[0]["message"]
            self.assertIn(f"heartbeat_twisted.{old} is deprecated since", message)
            self.assertIn(since, message)

    def test_renamedMixinsNameTheirReplacement(self) -> None:
        heartbeat_twisted.HeartbeatProtocol
        [warning] = self.flushWarnings()
        self.assertIn(
            "use heartbeat_twisted.HeartbeatMixin instead", warning["message"]
        )

    def test_unknownName(self) -> None:
        with self.assertRaises(AttributeError):
            heartbeat_twisted.NoSuchName
