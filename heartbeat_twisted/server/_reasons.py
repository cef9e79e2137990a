"""
How the server names why a connection closed, and whom: the words of its
C{close fd N: REASON} lines and metrics, and the peer's address as its log
lines show it.
"""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.python.failure import Failure

from .._closing import addressText
from .._mixins import HeartbeatMixin

__all__ = ["closeReason", "peerName"]


def closeReason(protocol: HeartbeatMixin, reason: Failure) -> str:
    """
    Say in a few words why a connection closed: C{"idle"} (closed by the
    heartbeat), C{"keepalive timeout"} (the kernel gave up on the peer),
    C{"peer closed"}, C{"peer reset"}, a ping/pong refusal
    (C{"too_many_pings"}, C{"line too long"}, ...), C{"slow reader"} (the
    bound on unsent output), or the error's own text.

    Twisted reports a reset (C{ECONNRESET}, C{EPIPE}) as a bare
    L{ConnectionLost}: without keepalive, that is what it means, and it is
    called C{"peer reset"}; with keepalive it may also be the kernel
    giving up (C{ETIMEDOUT}), so it stays C{"connection lost"}.
    """
    if protocol.heartbeatCloseReason is not None:
        return protocol.heartbeatCloseReason
    refused: str | None = getattr(protocol, "pingCloseReason", None)
    if refused is not None:
        return refused
    written: str | None = getattr(protocol, "writeCloseReason", None)
    if written is not None:
        return written
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
    if isinstance(error, ConnectionAborted):
        return "aborted"
    if isinstance(error, ConnectionLost):
        if getattr(protocol, "keepAliveResult", None) is None:
            return "peer reset"
        return "connection lost"
    return str(error) or type(error).__name__


def peerName(address: Any) -> str:
    """
    A peer address as a log shows it: C{HOST:PORT}, C{[HOST]:PORT} for
    IPv6, the path of a UNIX socket, else the address's own text.
    """
    return addressText(address)
