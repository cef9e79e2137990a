"""
The demo server behind C{twistd heartbeat}: the seed's Swoole experiment,
in Twisted.
"""

from __future__ import annotations

import errno
from collections import Counter
from typing import Any

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from ._mixins import HeartbeatFactory, HeartbeatProtocol

__all__ = ["DemoFactory", "DemoProtocol", "closeReason"]


def closeReason(protocol: HeartbeatProtocol, reason: Failure) -> str:
    """
    Say in a few words why a connection closed: C{"idle"} (closed by the
    heartbeat), C{"keepalive timeout"} (the kernel gave up on the peer),
    C{"peer closed"}, C{"peer reset"}, or the error's own text.
    """
    if protocol.heartbeatCloseReason is not None:
        return protocol.heartbeatCloseReason
    error: Any = reason.value
    if isinstance(error, ConnectionDone):
        return "peer closed"
    code = getattr(error, "osError", None)
    if code is None and error.args and isinstance(error.args[0], int):
        code = error.args[0]
    if code == errno.ETIMEDOUT:
        return "keepalive timeout"
    if code in (errno.ECONNRESET, errno.EPIPE):
        return "peer reset"
    if isinstance(error, ConnectionLost):
        return "connection lost"
    return str(error) or type(error).__name__


class DemoProtocol(HeartbeatProtocol, LineReceiver):
    """
    Logs C{Client: Connect N}, every payload it receives, and
    C{close fd N: REASON}; answers the line C{ping} (or C{ping TOKEN}) with
    C{pong} (C{pong TOKEN}).  Lines end with C{\\n}; a C{\\r} before it is
    ignored, so C{nc} and telnet both work.
    """

    delimiter = b"\n"
    number = 0
    _log = Logger()

    def _demoFactory(self) -> DemoFactory:
        factory = self.factory
        assert isinstance(factory, DemoFactory)
        return factory

    def connectionMade(self) -> None:
        self.number = self._demoFactory().connected(self)
        self._log.info(
            "Client: Connect {fd}",
            fd=self.number,
            peer=str(self.transport.getPeer()) if self.transport else "?",
        )

    def dataReceived(self, data: bytes) -> None:
        self._log.info("receive fd {fd}: {payload!r}", fd=self.number, payload=data)
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    def lineReceived(self, line: bytes) -> None:
        words = line.rstrip(b"\r").split(None, 1)
        if words and words[0] == b"ping":
            self.sendLine(b" ".join([b"pong", *words[1:]]))  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        why = closeReason(self, reason)
        self._demoFactory().disconnected(self, why)
        self._log.info("close fd {fd}: {reason}", fd=self.number, reason=why)


class DemoFactory(HeartbeatFactory, Factory[DemoProtocol]):
    """
    Builds L{DemoProtocol}s and counts them.

    @ivar opened: Connections made so far (the next C{fd} is this plus one).
    @ivar live: Connections open now.
    @ivar closed: Closed connections by reason.
    """

    protocol = DemoProtocol
    noisy = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened = 0
        self.live = 0
        self.closed: Counter[str] = Counter()

    def connected(self, protocol: DemoProtocol) -> int:
        """
        Count a new connection; return its number.
        """
        self.opened += 1
        self.live += 1
        return self.opened

    def disconnected(self, protocol: DemoProtocol, reason: str) -> None:
        """
        Count a closed connection under C{reason}.
        """
        self.live -= 1
        self.closed[reason] += 1
