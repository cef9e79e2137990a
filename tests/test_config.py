"""
Tests for L{heartbeat_twisted.HeartbeatConfig}.
"""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import (
    HeartbeatConfig,
)
from heartbeat_twisted._config import defaultCheckInterval


class HeartbeatConfigTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        config = HeartbeatConfig(idle=5)
        self.assertEqual(config.idle, 5.0)
        self.assertEqual(config.checkInterval, 1.0)
        self.assertFalse(config.countOutbound)
        self.assertEqual(config.closeGrace, 5.0)

    def test_defaultCheckIntervalIsAFifthOfIdle(self) -> None:
        self.assertEqual(HeartbeatConfig(idle=2).checkInterval, 0.4)
        self.assertEqual(HeartbeatConfig(idle=0.5).checkInterval, 0.1)

    def test_defaultCheckIntervalAtMostOneSecond(self) -> None:
        self.assertEqual(HeartbeatConfig(idle=300).checkInterval, 1.0)

    @given(st.floats(min_value=1e-6, max_value=1e9))
    def test_defaultLatenessBound(self, idle: float) -> None:
        """
        The default sweep period makes a close at most idle/5 and at most
        1 s late.
        """
        interval = defaultCheckInterval(idle)
        self.assertGreater(interval, 0)
        self.assertLessEqual(interval, idle / 5)
        self.assertLessEqual(interval, 1.0)
        self.assertEqual(HeartbeatConfig(idle=idle).checkInterval, interval)

    def test_explicitInterval(self) -> None:
        config = HeartbeatConfig(idle=5, checkInterval=5, countOutbound=True)
        self.assertEqual(config.checkInterval, 5.0)
        self.assertTrue(config.countOutbound)

    def assertRejected(self, message: str, **kwargs: object) -> None:
        error = self.assertRaises(ValueError, HeartbeatConfig, **kwargs)
        self.assertEqual(str(error), message)

    def test_idleMustBePositive(self) -> None:
        self.assertRejected("'idle' must be > 0: 0.0", idle=0)
        self.assertRejected("'idle' must be > 0: -1.0", idle=-1)

    def test_idleMustBeANumber(self) -> None:
        self.assertRejected("'idle' must be a number: '5'", idle="5")
        self.assertRejected("'idle' must be a number: True", idle=True)
        self.assertRejected("'idle' must be finite: inf", idle=float("inf"))
        self.assertRejected("'idle' must be finite: nan", idle=float("nan"))

    def test_checkIntervalBounds(self) -> None:
        self.assertRejected(
            "'checkInterval' must be > 0 and <= idle (5.0): 6", idle=5, checkInterval=6
        )
        self.assertRejected(
            "'checkInterval' must be > 0 and <= idle (5.0): 0", idle=5, checkInterval=0
        )

    def test_closeGrace(self) -> None:
        self.assertEqual(HeartbeatConfig(idle=1, closeGrace=0).closeGrace, 0.0)
        self.assertRejected("'closeGrace' must be >= 0: -1", idle=1, closeGrace=-1)

    def test_countOutboundMustBeABool(self) -> None:
        self.assertRejected(
            "'countOutbound' must be a bool: 1", idle=1, countOutbound=1
        )

    def test_frozen(self) -> None:
        config = HeartbeatConfig(idle=5)
        self.assertRaises(
            attrs.exceptions.FrozenInstanceError, setattr, config, "idle", 1
        )

    def test_evolveValidates(self) -> None:
        config = HeartbeatConfig(idle=5)
        self.assertEqual(attrs.evolve(config, idle=10).idle, 10.0)
        self.assertRaises(ValueError, attrs.evolve, config, idle=-1)

    def test_equality(self) -> None:
        self.assertEqual(HeartbeatConfig(idle=5), HeartbeatConfig(5, 1.0))
        self.assertNotEqual(HeartbeatConfig(idle=5), HeartbeatConfig(idle=6))
