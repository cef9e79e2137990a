"""
The public surface: each public name is the private object, documented.
"""

from __future__ import annotations

import inspect

from twisted.trial.unittest import SynchronousTestCase

import heartbeat_twisted
from heartbeat_twisted import _config, _mixins, _timeout, _tracker, _wrapping


class ExportsTests(SynchronousTestCase):
    def test_names(self) -> None:
        expected = {
            "HeartbeatConfig": _config.HeartbeatConfig,
            "KeepAliveConfig": _config.KeepAliveConfig,
            "defaultCheckInterval": _config.defaultCheckInterval,
            "HeartbeatFactory": _mixins.HeartbeatFactory,
            "HeartbeatProtocol": _mixins.HeartbeatProtocol,
            "TimeoutMixin": _timeout.TimeoutMixin,
            "IdleTracker": _tracker.IdleTracker,
            "IdleEntry": _tracker.IdleEntry,
            "Idler": _tracker.Idler,
            "HeartbeatWrappingFactory": _wrapping.HeartbeatWrappingFactory,
            "HeartbeatProtocolWrapper": _wrapping.HeartbeatProtocolWrapper,
        }
        for name, obj in expected.items():
            self.assertIs(getattr(heartbeat_twisted, name), obj, name)
            self.assertIn(name, heartbeat_twisted.__all__)

    def test_allDocumented(self) -> None:
        """
        Every public name, and every public method of a public class, says
        what it is for.
        """
        undocumented = []
        for name in heartbeat_twisted.__all__:
            obj = getattr(heartbeat_twisted, name)
            if name.startswith("__"):
                continue
            if not inspect.getdoc(obj):
                undocumented.append(name)
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if attr.startswith("_") or not callable(value):
                        continue
                    if not inspect.getdoc(value):
                        undocumented.append(f"{name}.{attr}")
        self.assertEqual(undocumented, [])
