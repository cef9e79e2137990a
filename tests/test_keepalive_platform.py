"""
Unit tests for the keepalive platform table: each platform's options found
from its socket module.
"""

from __future__ import annotations

from types import SimpleNamespace

from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import KeepAliveConfig, _keepaliveplatform
from heartbeat_twisted._keepalive import KeepAlivePlatform

from ._keepalivefakes import DARWIN, FREEBSD, LINUX, WINDOWS, platformFor


class PlatformTableTests(SynchronousTestCase):
    """
    L{KeepAlivePlatform.detect} finds each platform's options.
    """

    def test_linux(self) -> None:
        """
        Linux sets all four settings with C{setsockopt}.
        """
        platform = platformFor("linux", LINUX)
        self.assertEqual(
            platform,
            KeepAlivePlatform(
                name="linux",
                options={"idle": 4, "interval": 5, "count": 6, "userTimeout": 18},
                keepAliveVals=None,
                solSocket=1,
                soKeepAlive=9,
                ipprotoTCP=6,
                tcpInfo=11,
                soError=4,
            ),
        )
        self.assertEqual(platform.lacks(KeepAliveConfig(2, 1, 3, 3500)), ())

    def test_darwin(self) -> None:
        """
        macOS sets the idle time with C{TCP_KEEPALIVE} and has no user
        timeout.
        """
        platform = platformFor("darwin", DARWIN)
        self.assertEqual(
            platform.options, {"idle": 0x10, "interval": 0x101, "count": 0x102}
        )
        self.assertEqual(platform.keepAliveVals, None)
        self.assertEqual(platform.lacks(KeepAliveConfig(2, 1, 3)), ())
        self.assertEqual(platform.lacks(KeepAliveConfig(2, 1, 3, 0)), ("userTimeout",))

    def test_darwinOldPython(self) -> None:
        """
        A Python whose socket module lacks the macOS names still gets the
        option numbers from the system headers.
        """
        bare = SimpleNamespace(SOL_SOCKET=0xFFFF, SO_KEEPALIVE=0x8, IPPROTO_TCP=6)
        platform = platformFor("darwin", bare)
        self.assertEqual(
            platform.options, {"idle": 0x10, "interval": 0x101, "count": 0x102}
        )

    def test_windows(self) -> None:
        """
        Windows sets the idle time and interval with C{SIO_KEEPALIVE_VALS}
        and the count with C{TCP_KEEPCNT}; it has no user timeout.
        """
        platform = platformFor("win32", WINDOWS)
        self.assertEqual(platform.options, {"count": 16})
        self.assertEqual(platform.keepAliveVals, 0x98000004)
        self.assertEqual(platform.lacks(KeepAliveConfig(2, 1, 3)), ())
        self.assertEqual(platform.lacks(KeepAliveConfig(2, 1, 3, 10)), ("userTimeout",))

    def test_windowsWithoutCount(self) -> None:
        """
        A Windows without C{TCP_KEEPCNT} lacks the count (it is fixed at 10
        probes there).
        """
        module = SimpleNamespace(**vars(WINDOWS))
        del module.TCP_KEEPCNT
        platform = platformFor("win32", module)
        self.assertEqual(platform.options, {})
        self.assertEqual(platform.lacks(KeepAliveConfig(2, 1, 3)), ("count",))

    def test_other(self) -> None:
        """
        Another platform uses whichever of the Linux names its socket module
        has.
        """
        platform = platformFor("freebsd14", FREEBSD)
        self.assertEqual(
            platform.options, {"idle": 256, "interval": 512, "count": 1024}
        )
        self.assertEqual(
            platform.lacks(KeepAliveConfig(2, 1, 3, 100)), ("userTimeout",)
        )

    def test_currentOnce(self) -> None:
        """
        This process's platform is detected once and reused.
        """
        first = _keepaliveplatform.currentPlatform()
        self.assertIs(_keepaliveplatform.currentPlatform(), first)
        self.assertEqual(first, KeepAlivePlatform.detect())
