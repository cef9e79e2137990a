"""
C{--reuse-port}: listen with C{SO_REUSEPORT}, so several processes serve
one port and the kernel spreads new connections among them (by a hash of
the address pair: evenly only on average).  Twisted's endpoints have no
such option, so the socket is made here and handed to the reactor with
C{adoptStreamPort}.
"""

from __future__ import annotations

import re
import socket
import sys
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IListeningPort, IProtocolFactory

__all__ = [
    "ReusePortService",
    "parseListenAddress",
    "reusePortSocket",
    "workersUnsupported",
]


def workersUnsupported(platform: str | None = None) -> str | None:
    """
    Why C{--reuse-port} and C{--workers} cannot run here, or L{None} if they
    can (Linux: C{SO_REUSEPORT} spreads connections, C{PR_SET_PDEATHSIG}
    stops the workers with their supervisor).
    """
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return f"needs Linux (SO_REUSEPORT and PR_SET_PDEATHSIG); this is {platform}"
    if not hasattr(socket, "SO_REUSEPORT"):
        return "this Python has no socket.SO_REUSEPORT"
    return None


_UNESCAPED_COLON = re.compile(r"(?<!\\):")


def parseListenAddress(endpoint: str) -> tuple[int, str, int]:
    """
    The C{(port, interface, backlog)} of a C{tcp:} or C{tcp6:} server
    endpoint string (C{interface} C{""} for all addresses; C{backlog} 50,
    Twisted's default, unless given).

    @raise ValueError: For any other kind of endpoint, or a bad value.
    """
    kind, *fields = _UNESCAPED_COLON.split(endpoint)
    if kind not in ("tcp", "tcp6") or not fields:
        raise ValueError(f"needs a tcp: endpoint, not {endpoint!r}")
    positional: list[str] = []
    named = {"interface": "::" if kind == "tcp6" else "", "backlog": "50"}
    for field in fields:
        field = field.replace("\\:", ":")
        key, equals, value = field.partition("=")
        if not equals:
            positional.append(field)
        elif key in ("port", "interface", "backlog"):
            named[key] = value
        else:
            raise ValueError(f"unsupported endpoint argument {key!r} in {endpoint!r}")
    if positional:
        named["port"] = positional[0]
    port, backlog = named.get("port", ""), named["backlog"]
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"bad port in {endpoint!r}")
    if not backlog.isdigit() or int(backlog) < 1:
        raise ValueError(f"bad backlog in {endpoint!r}")
    return int(port), named["interface"], int(backlog)


def reusePortSocket(interface: str, port: int, backlog: int) -> socket.socket:
    """
    A non-blocking listening TCP socket on C{interface}:C{port} with
    C{SO_REUSEADDR} and C{SO_REUSEPORT} set (IPv6 if C{interface} holds a
    colon).
    """
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((interface, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class ReusePortService(Service):
    """
    Listen on a C{tcp:} endpoint with C{SO_REUSEPORT} while running.

    @ivar port: The listening port while running, else L{None}.
    """

    def __init__(self, endpoint: str, factory: IProtocolFactory, reactor: Any) -> None:
        self.address = parseListenAddress(endpoint)
        self.factory = factory
        self.reactor = reactor
        self.port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        """
        Bind before privileges are dropped (a low port needs them).
        """
        port, interface, backlog = self.address
        sock = reusePortSocket(interface, port, backlog)
        try:
            self.port = self.reactor.adoptStreamPort(
                sock.fileno(), sock.family, self.factory
            )
        finally:
            sock.close()  # the port holds its own duplicate
        Service.privilegedStartService(self)  # type: ignore[no-untyped-call]

    def startService(self) -> None:
        if self.port is None:
            self.privilegedStartService()
        Service.startService(self)  # type: ignore[no-untyped-call]

    def stopService(self) -> defer.Deferred[None] | None:
        Service.stopService(self)  # type: ignore[no-untyped-call]
        port, self.port = self.port, None
        if port is None:
            return None
        stopped: Any = port.stopListening()
        return defer.maybeDeferred(lambda: stopped)
