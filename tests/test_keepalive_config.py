"""
Tests for L{heartbeat_twisted.KeepAliveConfig}: the kernel's bounds, the
error messages, C{deadAfter}.
"""

from __future__ import annotations

import attrs
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import KeepAliveConfig


class KeepAliveConfigTests(SynchronousTestCase):
    """
    L{KeepAliveConfig} accepts exactly what Linux accepts and names the
    field, the bound and the value otherwise.
    """

    def test_values(self) -> None:
        """
        The values given are kept; C{userTimeout} defaults to L{None}.
        """
        config = KeepAliveConfig(2, 1, 3)
        self.assertEqual(
            (config.idle, config.interval, config.count, config.userTimeout),
            (2, 1, 3, None),
        )
        self.assertEqual(KeepAliveConfig(2, 1, 3, userTimeout=3500).userTimeout, 3500)

    def test_bounds(self) -> None:
        """
        The kernel's limits are accepted at both ends: idle and interval
        1..32767 s, count 1..127, userTimeout from 0 ms.
        """
        low = KeepAliveConfig(1, 1, 1, userTimeout=0)
        high = KeepAliveConfig(32767, 32767, 127, userTimeout=2**31 - 1)
        self.assertEqual(attrs.astuple(low), (1, 1, 1, 0))
        self.assertEqual(attrs.astuple(high), (32767, 32767, 127, 2**31 - 1))

    def test_outOfBounds(self) -> None:
        """
        A value just outside a bound raises L{ValueError} naming the field,
        the bound and the value.
        """
        cases = [
            ({"idle": 0}, "'idle' must be in 1..32767: 0"),
            ({"idle": 32768}, "'idle' must be in 1..32767: 32768"),
            ({"interval": 0}, "'interval' must be in 1..32767: 0"),
            ({"interval": 32768}, "'interval' must be in 1..32767: 32768"),
            ({"count": 0}, "'count' must be in 1..127: 0"),
            ({"count": 128}, "'count' must be in 1..127: 128"),
            ({"userTimeout": -1}, "'userTimeout' must be in 0..2147483647: -1"),
            (
                {"userTimeout": 2**31},
                "'userTimeout' must be in 0..2147483647: 2147483648",
            ),
        ]
        for change, message in cases:
            values = {"idle": 2, "interval": 1, "count": 3, **change}
            error = self.assertRaises(ValueError, KeepAliveConfig, **values)
            self.assertEqual(str(error), message)

    def test_notWhole(self) -> None:
        """
        Seconds and counts must be integers (the socket options are): a
        float, a string or a bool is refused by name.
        """
        cases = [
            ((2.5, 1, 3), "'idle' must be a whole number: 2.5"),
            ((2, "1", 3), "'interval' must be a whole number: '1'"),
            ((2, 1, True), "'count' must be a whole number: True"),
        ]
        for args, message in cases:
            error = self.assertRaises(ValueError, KeepAliveConfig, *args)
            self.assertEqual(str(error), message)
        error = self.assertRaises(ValueError, KeepAliveConfig, 2, 1, 3, 1.5)
        self.assertEqual(str(error), "'userTimeout' must be a whole number: 1.5")

    def test_frozen(self) -> None:
        """
        A config cannot be changed in place; L{attrs.evolve} copies it, and
        validates the copy.
        """
        config = KeepAliveConfig(2, 1, 3)
        self.assertRaises(
            attrs.exceptions.FrozenInstanceError, setattr, config, "idle", 5
        )
        self.assertEqual(attrs.evolve(config, idle=5), KeepAliveConfig(5, 1, 3))
        self.assertRaises(ValueError, attrs.evolve, config, count=0)

    def test_deadAfter(self) -> None:
        """
        Without a user timeout a dead peer is reported C{idle + interval *
        count} seconds after the last activity; C{userTimeout=0} (the kernel
        default) does not change it.
        """
        self.assertEqual(KeepAliveConfig(2, 1, 3).deadAfter, 5.0)
        self.assertEqual(KeepAliveConfig(60, 10, 6).deadAfter, 120.0)
        self.assertEqual(KeepAliveConfig(2, 1, 3, userTimeout=0).deadAfter, 5.0)

    def test_deadAfterUserTimeout(self) -> None:
        """
        With a user timeout, the abort comes at the first probe check at or
        after it (checks at C{idle + interval * k}, C{k >= 1}), whatever
        C{count} says: the measured 2/1/9 with 3.5 s closed at about 4 s.
        """
        cases = [
            ((2, 1, 9, 3500), 4.0),  # checks at 3, 4: 4 is the first >= 3.5
            ((2, 1, 9, 4000), 4.0),  # exactly at a check
            ((2, 1, 9, 4001), 5.0),
            ((2, 1, 3, 20000), 20.0),  # beyond idle + interval * count
            ((2, 3, 3, 2500), 5.0),  # one probe must be outstanding
            ((10, 5, 3, 1000), 15.0),  # below idle: the first check after
            ((60, 10, 6, 125500), 130.0),
        ]
        for (idle, interval, count, userTimeout), seconds in cases:
            config = KeepAliveConfig(idle, interval, count, userTimeout)
            self.assertEqual((config, config.deadAfter), (config, seconds))
