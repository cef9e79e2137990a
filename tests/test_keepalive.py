"""
Unit tests for OS keepalive: the platform table, L{enableKeepAlive} on fake
sockets of each platform, the factory hook and the twistd options.
"""

from __future__ import annotations

import errno
import socket
from types import SimpleNamespace
from typing import Any

from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import (
    HeartbeatConfig,
    HeartbeatFactoryMixin,
    HeartbeatMixin,
    HeartbeatWrappingFactory,
    KeepAliveConfig,
    KeepAliveResult,
    KeepAliveTimedOut,
    _keepalive,
    enableKeepAlive,
    tap,
)
from heartbeat_twisted._keepalive import KeepAlivePlatform
from heartbeat_twisted.server._protocol import DemoFactory

from ._readme import runExample

# The numbers below are each platform's own (Linux uapi/linux/tcp.h, macOS
# netinet/tcp.h, Windows ws2ipdef.h / mstcpip.h), so a fake socket module
# can stand in for the real one of another platform.
LINUX = SimpleNamespace(
    SOL_SOCKET=1,
    SO_KEEPALIVE=9,
    IPPROTO_TCP=6,
    TCP_KEEPIDLE=4,
    TCP_KEEPINTVL=5,
    TCP_KEEPCNT=6,
    TCP_USER_TIMEOUT=18,
    TCP_INFO=11,
)
DARWIN = SimpleNamespace(
    SOL_SOCKET=0xFFFF,
    SO_KEEPALIVE=0x8,
    IPPROTO_TCP=6,
    TCP_KEEPALIVE=0x10,
    TCP_KEEPINTVL=0x101,
    TCP_KEEPCNT=0x102,
)
WINDOWS = SimpleNamespace(
    SOL_SOCKET=0xFFFF,
    SO_KEEPALIVE=0x8,
    IPPROTO_TCP=6,
    TCP_KEEPIDLE=3,
    TCP_KEEPINTVL=17,
    TCP_KEEPCNT=16,
    SIO_KEEPALIVE_VALS=0x98000004,
)
FREEBSD = SimpleNamespace(
    SOL_SOCKET=0xFFFF,
    SO_KEEPALIVE=0x8,
    IPPROTO_TCP=6,
    TCP_KEEPIDLE=256,
    TCP_KEEPINTVL=512,
    TCP_KEEPCNT=1024,
)


class FakeSocket:
    """
    A socket that records its options.  C{readBack} maps an option to what
    the "kernel" reports instead of what was set; C{refuse} maps an option
    to the errno that setting it raises.
    """

    def __init__(
        self,
        family: int = socket.AF_INET,
        readBack: dict[int, int] | None = None,
        refuse: dict[int, int] | None = None,
    ) -> None:
        self.family = family
        self.options: dict[tuple[int, int], int] = {}
        self.ioctls: list[tuple[int, Any]] = []
        self.readBack = readBack or {}
        self.refuse = refuse or {}
        self.closed = False
        # struct tcp_info: state, ca_state, retransmits, probes, ...
        self.tcpInfo = bytes([1, 0, 0, 0, 0, 0, 0, 0])

    def fileno(self) -> int:
        return -1 if self.closed else 7

    def setsockopt(self, level: int, option: int, value: int) -> None:
        if option in self.refuse:
            raise OSError(self.refuse[option], "refused")
        self.options[(level, option)] = value

    def getsockopt(self, level: int, option: int, size: int = 0) -> Any:
        if option in self.refuse:
            raise OSError(self.refuse[option], "refused")
        if size:
            return self.tcpInfo[:size]
        return self.readBack.get(option, self.options.get((level, option), 0))

    def ioctl(self, code: int, value: Any) -> None:
        self.ioctls.append((code, value))


class SocketTransport(StringTransport):
    """
    An in-memory transport whose C{getHandle} is a L{FakeSocket}.
    """

    def __init__(self, sock: FakeSocket) -> None:
        super().__init__()
        self.sock = sock
        self.lostReasons: list[Failure] = []

    def getHandle(self) -> FakeSocket:
        return self.sock

    def connectionLost(self, reason: Failure) -> None:
        """
        What the reactor calls when the connection is gone; recorded.
        """
        self.lostReasons.append(reason)


class TLSLike:
    """
    Like C{TLSMemoryBIOProtocol}: its handle is not a socket (an
    C{OpenSSL.SSL.Connection}); the TCP transport is its C{transport}.
    """

    def __init__(self, transport: object) -> None:
        self.transport = transport

    def getHandle(self) -> object:
        return object()


def platformFor(name: str, module: Any) -> KeepAlivePlatform:
    return KeepAlivePlatform.detect(name, module)


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
        first = _keepalive.currentPlatform()
        self.assertIs(_keepalive.currentPlatform(), first)
        self.assertEqual(first, KeepAlivePlatform.detect())


class EnableKeepAliveTests(SynchronousTestCase):
    """
    L{enableKeepAlive} sets the options and reports them as read back.
    """

    def setUp(self) -> None:
        self.patch(_keepalive, "_loggedOnce", set())

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


class TimeoutReportTests(SynchronousTestCase):
    """
    On Linux a connection the kernel dropped for unanswered probes is
    reported as L{KeepAliveTimedOut}; Twisted alone would say only
    L{ConnectionLost}.
    """

    def setUp(self) -> None:
        self.sock = FakeSocket()
        self.transport = SocketTransport(self.sock)
        self.result = enableKeepAlive(
            self.transport, KeepAliveConfig(2, 1, 3), platformFor("linux", LINUX)
        )

    def lose(self, reason: Exception, tcpInfo: list[int]) -> Failure:
        self.sock.tcpInfo = bytes(tcpInfo + [0] * 4)
        self.transport.connectionLost(Failure(reason))
        [lost] = self.transport.lostReasons
        return lost

    def test_timedOut(self) -> None:
        """
        Closed by the kernel (C{TCP_CLOSE}) with probes outstanding: the
        protocol gets a L{KeepAliveTimedOut}, a L{ConnectionLost} whose
        C{osError} is C{ETIMEDOUT}.
        """
        self.assertTrue(self.result.reportsTimeout)
        lost = self.lose(ConnectionLost(), [7, 0, 0, 3])
        self.assertIsInstance(lost.value, KeepAliveTimedOut)
        self.assertIsInstance(lost.value, ConnectionLost)
        self.assertEqual(lost.value.osError, errno.ETIMEDOUT)
        self.assertEqual(
            str(lost.value),
            "The kernel's keepalive probes went unanswered (ETIMEDOUT).",
        )

    def test_otherLosses(self) -> None:
        """
        A loss without outstanding probes, or while the socket is not yet
        closed, stays a plain L{ConnectionLost}.
        """
        for info in ([7, 0, 0, 0], [1, 0, 0, 2]):
            self.setUp()
            lost = self.lose(ConnectionLost(), info)
            self.assertIs(lost.type, ConnectionLost)

    def test_cleanCloses(self) -> None:
        """
        A clean close or an abort is passed on as it is, without asking the
        kernel.
        """
        for reason in (ConnectionDone(), ConnectionAborted()):
            self.setUp()
            self.sock.refuse = {11: errno.EBADF}
            lost = self.lose(reason, [7, 0, 0, 3])
            self.assertIs(lost.value, reason)

    def test_unreadable(self) -> None:
        """
        If C{TCP_INFO} cannot be read, the loss is passed on unchanged.
        """
        self.sock.refuse = {11: errno.EBADF}
        lost = self.lose(ConnectionLost(), [7, 0, 0, 3])
        self.assertIs(lost.type, ConnectionLost)

    def test_once(self) -> None:
        """
        Enabling twice hooks once; after the loss the transport's own
        C{connectionLost} is back.
        """
        enableKeepAlive(
            self.transport, KeepAliveConfig(2, 1, 3), platformFor("linux", LINUX)
        )
        self.assertIn("connectionLost", vars(self.transport))
        self.lose(ConnectionLost(), [7, 0, 0, 3])
        self.assertNotIn("connectionLost", vars(self.transport))

    def test_otherPlatforms(self) -> None:
        """
        Elsewhere the layout of C{TCP_INFO} is not known: nothing is hooked.
        """
        for name, module in [("darwin", DARWIN), ("win32", WINDOWS)]:
            transport = SocketTransport(FakeSocket())
            result = enableKeepAlive(
                transport, KeepAliveConfig(2, 1, 3), platformFor(name, module)
            )
            self.assertFalse(result.reportsTimeout)
            self.assertNotIn("connectionLost", vars(transport))


class KeepAliveProtocol(HeartbeatMixin, Protocol):
    pass


class KeepAliveFactory(HeartbeatFactoryMixin, Factory):
    protocol = KeepAliveProtocol


class FactoryHookTests(SynchronousTestCase):
    """
    A L{HeartbeatFactoryMixin} with a L{KeepAliveConfig} turns keepalive on for
    every connection.
    """

    def setUp(self) -> None:
        self.patch(_keepalive, "_loggedOnce", set())
        self.patch(_keepalive, "_current", platformFor("linux", LINUX))

    def connect(self, factory: Any, transport: StringTransport) -> Any:
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(transport)
        return protocol

    def test_applied(self) -> None:
        """
        Each connection gets the settings; its C{keepAliveResult} says what
        the socket took.  It is still tracked by the idle heartbeat.
        """
        factory = KeepAliveFactory(
            heartbeatConfig=HeartbeatConfig(idle=5),
            clock=Clock(),
            keepAlive=KeepAliveConfig(2, 1, 3),
        )
        sockets = [FakeSocket(), FakeSocket()]
        protocols = [self.connect(factory, SocketTransport(s)) for s in sockets]
        for sock, protocol in zip(sockets, protocols):
            self.assertEqual(sock.options[(6, 6)], 3)
            self.assertEqual(protocol.keepAliveResult.count, 3)
        self.assertEqual(len(factory.heartbeatTracker), 2)

    def test_classAttribute(self) -> None:
        """
        C{keepAliveConfig} can be a class attribute.
        """

        class Configured(KeepAliveFactory):
            heartbeatConfig = HeartbeatConfig(idle=5)
            keepAliveConfig = KeepAliveConfig(9, 8, 7)

        factory = Configured(clock=Clock())
        protocol = self.connect(factory, SocketTransport(FakeSocket()))
        self.assertEqual(protocol.keepAliveResult.settings()["idle"], 9)

    def test_notAsked(self) -> None:
        """
        Without a config nothing is set and C{keepAliveResult} is L{None}.
        """
        sock = FakeSocket()
        factory = KeepAliveFactory(
            heartbeatConfig=HeartbeatConfig(idle=5), clock=Clock()
        )
        protocol = self.connect(factory, SocketTransport(sock))
        self.assertEqual(sock.options, {})
        self.assertIsNone(protocol.keepAliveResult)

    def test_notApplicableLoggedOnce(self) -> None:
        """
        Connections without a TCP socket get a "not applicable" result; the
        reason is logged once, not once per connection.
        """
        factory = KeepAliveFactory(
            heartbeatConfig=HeartbeatConfig(idle=5),
            clock=Clock(),
            keepAlive=KeepAliveConfig(2, 1, 3),
        )
        with capturedLogs() as events:
            protocols = [self.connect(factory, StringTransport()) for _ in range(3)]
        self.assertEqual(
            [p.keepAliveResult.applicable for p in protocols], [False, False, False]
        )
        reasons = [e["reason"] for e in events if "reason" in e]
        self.assertEqual(reasons, ["StringTransport has no TCP socket"])

    def test_refusedIsLogged(self) -> None:
        """
        If the kernel refuses a setting, the failure is logged and the
        connection goes on, tracked.
        """
        factory = KeepAliveFactory(
            heartbeatConfig=HeartbeatConfig(idle=5),
            clock=Clock(),
            keepAlive=KeepAliveConfig(2, 1, 3),
        )
        with capturedLogs() as events:
            protocol = self.connect(
                factory, SocketTransport(FakeSocket(refuse={6: errno.EINVAL}))
            )
        self.assertIsNone(protocol.keepAliveResult)
        failures = [e for e in events if "log_failure" in e]
        self.assertEqual(len(failures), 1)
        self.assertEqual(failures[0]["log_failure"].value.errno, errno.EINVAL)
        self.assertEqual(len(factory.heartbeatTracker), 1)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_badConfig(self) -> None:
        """
        C{keepAlive} must be a L{KeepAliveConfig}.
        """
        error = self.assertRaises(
            TypeError,
            KeepAliveFactory,
            heartbeatConfig=HeartbeatConfig(idle=5),
            keepAlive=(2, 1, 3),
        )
        self.assertEqual(
            str(error), "keepAlive must be a KeepAliveConfig or None: (2, 1, 3)"
        )

    def test_wrapping(self) -> None:
        """
        L{HeartbeatWrappingFactory} takes C{keepAlive} and applies it to the
        connection under the wrapped protocol.
        """
        factory = HeartbeatWrappingFactory(
            Factory.forProtocol(Protocol),
            HeartbeatConfig(idle=5),
            clock=Clock(),
            keepAlive=KeepAliveConfig(2, 1, 4),
        )
        sock = FakeSocket()
        protocol = self.connect(factory, SocketTransport(sock))
        self.assertEqual(sock.options[(6, 6)], 4)
        self.assertEqual(protocol.keepAliveResult.count, 4)


class OptionsTests(SynchronousTestCase):
    """
    The twistd options C{--keepalive}, C{--keepidle}, C{--keepinterval},
    C{--keepcount} and C{--user-timeout}.
    """

    def parse(self, *argv: str) -> tap.Options:
        options = tap.Options()
        options.parseOptions(list(argv))
        return options

    def test_off(self) -> None:
        """
        Without any keepalive option, keepalive is left alone.
        """
        self.assertIsNone(self.parse().keepAliveConfig)

    def test_defaults(self) -> None:
        """
        C{--keepalive} alone uses the seed's 4/1/5.
        """
        self.assertEqual(
            self.parse("--keepalive").keepAliveConfig, KeepAliveConfig(4, 1, 5)
        )

    def test_values(self) -> None:
        """
        Each option sets its field; any of them turns keepalive on.
        """
        options = self.parse(
            "--keepidle", "2", "--keepinterval", "1", "--keepcount", "3",
            "--user-timeout", "3500",
        )  # fmt: skip
        self.assertEqual(options.keepAliveConfig, KeepAliveConfig(2, 1, 3, 3500))
        self.assertEqual(
            self.parse("--keepcount", "9").keepAliveConfig, KeepAliveConfig(4, 1, 9)
        )

    def test_badValues(self) -> None:
        """
        A bad value is a usage error naming the option, bound and value.
        """
        cases = [
            (["--keepidle", "0"], "--keepidle must be in 1..32767: 0"),
            (["--keepinterval", "40000"], "--keepinterval must be in 1..32767: 40000"),
            (["--keepcount", "128"], "--keepcount must be in 1..127: 128"),
            (["--keepcount", "x"], "--keepcount must be a whole number: 'x'"),
            (["--keepidle", "1.5"], "--keepidle must be a whole number: '1.5'"),
            (
                ["--user-timeout", "-1"],
                "--user-timeout must be in 0..2147483647: -1",
            ),
        ]
        for argv, message in cases:
            error = self.assertRaises(usage.UsageError, self.parse, *argv)
            self.assertEqual(str(error), message)

    def test_makeService(self) -> None:
        """
        The demo factory gets the keepalive config.
        """
        options = self.parse("--port", "tcp:0:interface=127.0.0.1", "--keepidle", "2")
        service: Any = tap.makeService(options)
        factory = service.factory
        self.assertIsInstance(factory, DemoFactory)
        self.assertEqual(factory.keepAliveConfig, KeepAliveConfig(2, 1, 5))


class ReadmeExampleTests(SynchronousTestCase):
    """
    The README's OS keepalive example works as written.
    """

    def test_example(self) -> None:
        """
        Its factory applies the example's settings to each connection.
        """
        self.patch(_keepalive, "_current", platformFor("linux", LINUX))
        namespace = runExample("example-keepalive")
        factory = namespace["factory"]
        factory.heartbeatClock = Clock()
        protocol = factory.buildProtocol(None)
        sock = FakeSocket()
        protocol.makeConnection(SocketTransport(sock))
        self.assertEqual(
            protocol.keepAliveResult.settings(),
            {"idle": 60, "interval": 10, "count": 6, "userTimeout": 0},
        )
        self.assertEqual(factory.keepAliveConfig.deadAfter, 120.0)
        client = namespace["Client"]()
        client.makeConnection(SocketTransport(FakeSocket()))
        self.assertEqual(client.keepAlive.settings()["count"], 6)


class DemoCloseReasonTests(SynchronousTestCase):
    """
    The demo server names a keepalive timeout in its close log.
    """

    def test_keepAliveTimeout(self) -> None:
        """
        A L{KeepAliveTimedOut} loss is logged as C{close fd N: keepalive
        timeout}.
        """
        self.patch(_keepalive, "_current", platformFor("linux", LINUX))
        factory = DemoFactory(
            heartbeatConfig=HeartbeatConfig(idle=60),
            clock=Clock(),
            keepAlive=KeepAliveConfig(2, 1, 3),
        )
        protocol = factory.buildProtocol(None)
        transport = SocketTransport(FakeSocket())
        protocol.makeConnection(transport)
        transport.sock.tcpInfo = bytes([7, 0, 0, 3, 0, 0, 0, 0])
        with capturedLogs() as events:
            transport.connectionLost(Failure(ConnectionLost()))
            protocol.connectionLost(transport.lostReasons[0])
        closes = [e for e in events if e.get("log_format", "").startswith("close fd")]
        self.assertEqual(
            [(e["fd"], e["reason"]) for e in closes], [(1, "keepalive timeout")]
        )
        self.assertEqual(factory.closed["keepalive timeout"], 1)
