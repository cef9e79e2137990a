"""
Unit tests for L{enableKeepAlive} on fake sockets of each platform: what
it sets, what it reads back, where it finds the socket.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import (
    KeepAliveConfig,
    KeepAliveResult,
    _keepaliveplatform,
    enableKeepAlive,
)

from ._keepalivefakes import (
    DARWIN,
    LINUX,
    WINDOWS,
    FakeSocket,
    SocketTransport,
    TLSLike,
    platformFor,
)


class TLSStarted(SocketTransport):
    """
    Like Twisted's TCP transport after C{startTLS}: C{getHandle()} is the
    TLS connection; the socket is still its C{socket}.
    """

    def __init__(self, sock: FakeSocket) -> None:
        super().__init__(sock)
        self.socket = sock

    def getHandle(self) -> Any:
        return object()


class EnableKeepAliveTests(SynchronousTestCase):
    """
    L{enableKeepAlive} sets the options and reports them as read back.
    """

    def setUp(self) -> None:
        self.patch(_keepaliveplatform, "_loggedOnce", set())

    def test_linux(self) -> None:
        """
        On Linux all four options are set and read back, and
        C{SO_KEEPALIVE} is on.
        """
        sock = FakeSocket()
        result = enableKeepAlive(
            SocketTransport(sock),
            KeepAliveConfig(2, 1, 3, userTimeout=3500),
            platformFor("linux", LINUX),
        )
        self.assertEqual(
            sock.options, {(1, 9): 1, (6, 4): 2, (6, 5): 1, (6, 6): 3, (6, 18): 3500}
        )
        self.assertEqual(
            result,
            KeepAliveResult(
                applicable=True,
                enabled=True,
                idle=2,
                interval=1,
                count=3,
                userTimeout=3500,
                platform="linux",
                reportsTimeout=True,
            ),
        )
        self.assertEqual(
            result.settings(),
            {"idle": 2, "interval": 1, "count": 3, "userTimeout": 3500},
        )

    def test_readBack(self) -> None:
        """
        The result carries what the socket reports, not what was asked; a
        user timeout left alone is read back too.
        """
        sock = FakeSocket(readBack={4: 7200, 18: 0})
        result = enableKeepAlive(
            SocketTransport(sock), KeepAliveConfig(2, 1, 3), platformFor("linux", LINUX)
        )
        self.assertNotIn((6, 18), sock.options)
        self.assertEqual((result.idle, result.userTimeout), (7200, 0))

    def test_darwin(self) -> None:
        """
        On macOS the idle time goes to C{TCP_KEEPALIVE}; an asked-for user
        timeout is reported unsupported and logged once per process.
        """
        platform = platformFor("darwin", DARWIN)
        config = KeepAliveConfig(2, 1, 3, userTimeout=3500)
        with capturedLogs() as events:
            sock = FakeSocket()
            result = enableKeepAlive(SocketTransport(sock), config, platform)
            enableKeepAlive(SocketTransport(FakeSocket()), config, platform)
        self.assertEqual(
            sock.options, {(0xFFFF, 8): 1, (6, 0x10): 2, (6, 0x101): 1, (6, 0x102): 3}
        )
        self.assertEqual(result.settings(), {"idle": 2, "interval": 1, "count": 3})
        self.assertEqual(result.unsupported, ("userTimeout",))
        warnings = [e for e in events if e.get("option") == "TCP_USER_TIMEOUT"]
        self.assertEqual(len(warnings), 1)
        self.assertEqual(warnings[0]["log_level"], LogLevel.warn)
        self.assertEqual(
            (warnings[0]["platform"], warnings[0]["field"], warnings[0]["value"]),
            ("darwin", "userTimeout", 3500),
        )

    def test_windows(self) -> None:
        """
        On Windows the idle time and interval go through
        C{SIO_KEEPALIVE_VALS} in milliseconds and are reported unverified
        (the ioctl cannot be read back); the count is a socket option.
        """
        sock = FakeSocket()
        result = enableKeepAlive(
            SocketTransport(sock),
            KeepAliveConfig(2, 1, 3),
            platformFor("win32", WINDOWS),
        )
        self.assertEqual(sock.ioctls, [(0x98000004, (1, 2000, 1000))])
        self.assertEqual(sock.options, {(0xFFFF, 8): 1, (6, 16): 3})
        self.assertEqual(result.settings(), {"idle": 2, "interval": 1, "count": 3})
        self.assertEqual(result.unverified, ("idle", "interval"))
        self.assertEqual(result.unsupported, ())

    def test_windowsRefusesCount(self) -> None:
        """
        A Windows that defines C{TCP_KEEPCNT} but refuses it
        (C{WSAENOPROTOOPT}) gets the count reported unsupported, logged.
        """
        sock = FakeSocket(refuse={16: 10042})
        with capturedLogs() as events:
            result = enableKeepAlive(
                SocketTransport(sock),
                KeepAliveConfig(2, 1, 3),
                platformFor("win32", WINDOWS),
            )
        self.assertEqual(result.unsupported, ("count",))
        self.assertIsNone(result.count)
        self.assertEqual(
            [e["option"] for e in events if "option" in e], ["TCP_KEEPCNT"]
        )

    def test_otherErrorsRaise(self) -> None:
        """
        An error other than "no such option" is not hidden.
        """
        sock = FakeSocket(refuse={5: errno.EINVAL})
        error = self.assertRaises(
            OSError,
            enableKeepAlive,
            SocketTransport(sock),
            KeepAliveConfig(2, 1, 3),
            platformFor("linux", LINUX),
        )
        self.assertEqual(error.errno, errno.EINVAL)

    def test_ipv6(self) -> None:
        """
        An IPv6 TCP socket is as good as an IPv4 one.
        """
        result = enableKeepAlive(
            SocketTransport(FakeSocket(family=socket.AF_INET6)),
            KeepAliveConfig(2, 1, 3),
            platformFor("linux", LINUX),
        )
        self.assertTrue(result.applicable)
        self.assertEqual(result.count, 3)

    def test_underTLS(self) -> None:
        """
        Under a TLS-like wrapper whose handle is not a socket, the TCP
        transport below is found.
        """
        sock = FakeSocket()
        result = enableKeepAlive(
            TLSLike(SocketTransport(sock)),
            KeepAliveConfig(2, 1, 3),
            platformFor("linux", LINUX),
        )
        self.assertEqual(result.idle, 2)
        self.assertEqual(sock.options[(6, 4)], 2)

    def test_afterStartTLS(self) -> None:
        """
        A TCP transport that started TLS (its C{getHandle()} now returns
        the TLS connection) still has its socket found, as its C{socket}.
        """
        sock = FakeSocket()
        transport = TLSStarted(sock)
        result = enableKeepAlive(
            transport, KeepAliveConfig(2, 1, 3), platformFor("linux", LINUX)
        )
        self.assertEqual(result.idle, 2)
        self.assertEqual(sock.options[(6, 4)], 2)
        self.assertTrue(result.reportsTimeout)
        self.assertIn("connectionLost", vars(transport))

    def test_underProtocolWrapper(self) -> None:
        """
        A protocol wrapped by a L{ProtocolWrapper} (its transport) reaches
        the socket too.
        """
        sock = FakeSocket()
        wrapper = ProtocolWrapper(
            WrappingFactory(Factory.forProtocol(Protocol)), Protocol()
        )
        wrapper.makeConnection(SocketTransport(sock))
        result = enableKeepAlive(
            wrapper, KeepAliveConfig(3, 2, 1), platformFor("linux", LINUX)
        )
        self.assertEqual(result.settings()["idle"], 3)
        # The loss is watched where the reactor reports it first: on the
        # TCP transport, not on the wrapper.
        self.assertTrue(result.reportsTimeout)
        self.assertIn("connectionLost", vars(wrapper.transport))
        self.assertNotIn("connectionLost", vars(wrapper))

    def test_notApplicable(self) -> None:
        """
        An in-memory transport, a UNIX socket and a closed socket get a
        result with the reason, not an exception, and nothing is set.
        """
        unix = FakeSocket(family=socket.AF_UNIX)
        closed = FakeSocket()
        closed.closed = True
        config = KeepAliveConfig(2, 1, 3)
        platform = platformFor("linux", LINUX)
        self.assertEqual(
            enableKeepAlive(StringTransport(), config, platform),
            KeepAliveResult.notApplicable("StringTransport has no TCP socket", "linux"),
        )
        result = enableKeepAlive(SocketTransport(unix), config, platform)
        self.assertEqual(
            (result.applicable, result.reason),
            (False, "SocketTransport is not TCP (AF_UNIX)"),
        )
        result = enableKeepAlive(SocketTransport(closed), config, platform)
        self.assertEqual(result.reason, "SocketTransport's socket is closed")
        self.assertEqual(result.settings(), {})
        self.assertEqual((unix.options, closed.options), ({}, {}))
