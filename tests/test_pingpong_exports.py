"""
The ping/pong names are public, and are the private modules' objects.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

import heartbeat_twisted
from heartbeat_twisted import _config, _pingpong


class ExportTests(SynchronousTestCase):
    def test_pingpongNames(self) -> None:
        for name in _pingpong.__all__:
            if name in ("MAX_TOKEN_LENGTH", "isToken"):
                continue
            self.assertIn(name, heartbeat_twisted.__all__)
            self.assertIs(getattr(heartbeat_twisted, name), getattr(_pingpong, name))

    def test_configNames(self) -> None:
        for name in ("PingConfig", "PingServerConfig"):
            self.assertIn(name, heartbeat_twisted.__all__)
            self.assertIs(getattr(heartbeat_twisted, name), getattr(_config, name))

    def test_allDocumented(self) -> None:
        for name in heartbeat_twisted.__all__:
            if name.startswith("__"):
                continue
            self.assertTrue(getattr(heartbeat_twisted, name).__doc__, name)
