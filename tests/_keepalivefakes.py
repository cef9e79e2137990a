"""
Stand-ins for the keepalive unit tests: other platforms' socket modules, a
socket that records its options, transports that hand it out.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted import _keepaliveplatform
from heartbeat_twisted._keepaliveplatform import KeepAlivePlatform

__all__ = [
    "DARWIN",
    "FREEBSD",
    "LINUX",
    "WINDOWS",
    "FakeSocket",
    "SocketTransport",
    "TLSLike",
    "fakeLinux",
    "platformFor",
]

# The numbers below are each platform's own (Linux uapi/linux/tcp.h, macOS
# netinet/tcp.h, Windows ws2ipdef.h / mstcpip.h), so a fake socket module
# can stand in for the real one of another platform.
LINUX = SimpleNamespace(
    SOL_SOCKET=1,
    SO_KEEPALIVE=9,
    SO_ERROR=4,
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
    to the errno that setting it raises.  C{soError} is the pending error
    that Linux's C{SO_ERROR} reports, and clears, as the kernel does.
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
        self.soError = 0
        self.errorReads = 0

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
        if (level, option) == (LINUX.SOL_SOCKET, LINUX.SO_ERROR):
            self.errorReads += 1
            code, self.soError = self.soError, 0
            return code
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
        self.reads = 0

    def getHandle(self) -> FakeSocket:
        return self.sock

    def doRead(self) -> None:
        """
        What the reactor calls when the socket is readable; counted.
        """
        self.reads += 1

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


def fakeLinux(case: SynchronousTestCase) -> KeepAlivePlatform:
    """
    Make the fake Linux this process's platform for C{case}, with a fresh
    log-once memory; return it.
    """
    platform = platformFor("linux", LINUX)
    case.patch(_keepaliveplatform, "_current", platform)
    case.patch(_keepaliveplatform, "_loggedOnce", set())
    return platform
