"""
The protocol and factory of the server behind C{twistd heartbeat}: the
seed's Swoole experiment, in Twisted.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from typing import Any

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from .._mixins import HeartbeatFactoryMixin, HeartbeatMixin
from ..ping._answering import PingAnswerMixin
from ..ping._config import HealthCheck, PingServerConfig
from ..ping._health import HealthCheckError

__all__ = [
    "DemoFactory",
    "DemoProtocol",
    "closeReason",
    "fileHealthCheck",
]


def closeReason(protocol: HeartbeatMixin, reason: Failure) -> str:
    """
    Say in a few words why a connection closed: C{"idle"} (closed by the
    heartbeat), C{"keepalive timeout"} (the kernel gave up on the peer),
    C{"peer closed"}, C{"peer reset"}, a ping/pong refusal
    (C{"too_many_pings"}, C{"line too long"}, ...), or the error's own text.
    """
    if protocol.heartbeatCloseReason is not None:
        return protocol.heartbeatCloseReason
    refused: str | None = getattr(protocol, "pingCloseReason", None)
    if refused is not None:
        return refused
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


class DemoProtocol(HeartbeatMixin, PingAnswerMixin, LineReceiver):
    """
    Logs C{Client: Connect N}, every payload it receives, and
    C{close fd N: REASON}; answers the line C{ping} (or C{ping TOKEN}) with
    C{pong} (C{pong TOKEN}) once its factory's health checks pass, as
    L{PingAnswerMixin} does (which also refuses floods, over-long lines
    and binary data).  Lines end with C{\\n}; a C{\\r} before it is ignored,
    so C{nc} and telnet both work.
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

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        why = closeReason(self, reason)
        self._demoFactory().disconnected(self, why)
        self._log.info("close fd {fd}: {reason}", fd=self.number, reason=why)


class DemoFactory(HeartbeatFactoryMixin, Factory):
    """
    Builds L{DemoProtocol}s and counts them.

    @ivar opened: Connections made so far (the next C{fd} is this plus one).
    @ivar live: Connections open now.
    @ivar closed: Closed connections by reason.
    @ivar pingServerConfig: Ping limits and health checks (the defaults if
        L{None}); the counters are C{pingCounters} once a client connected.
    """

    protocol = DemoProtocol
    noisy = False
    pingServerConfig: PingServerConfig | None = None

    def __init__(
        self,
        *args: Any,
        pingServerConfig: PingServerConfig | None = None,
        pingResponder: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if pingServerConfig is not None:
            self.pingServerConfig = pingServerConfig
        if pingResponder is not None:
            # Deprecated: the answering mixin warns when it finds it.
            self.pingResponder = pingResponder
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


def fileHealthCheck(path: str) -> HealthCheck:
    """
    A health check named C{file} that passes while C{path} exists: the demo
    hook behind C{twistd heartbeat --health-check-file PATH}.  Create or
    remove the file to make the server answer C{pong} or
    C{error unhealthy ... :file: PATH does not exist}.
    """

    def check() -> None:
        if not os.path.exists(path):
            raise HealthCheckError(f"{path} does not exist")

    return HealthCheck("file", check, timeout=1.0)
