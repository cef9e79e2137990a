"""
Why the kernel dropped a connection that L{enableKeepAlive} tuned: its
probes went unanswered (a timeout) or the peer answered one with a reset.

Twisted's TCP transport turns every socket error into a bare
L{ConnectionLost}: its C{recv} consumes the kernel's errno and drops it.
On a transport that L{enableKeepAlive} tuned (Linux), two small
per-connection hooks keep it:

  - C{doRead}: when the connection has been quiet long enough for a probe
    to be due (half the keepalive idle time since the last read), the
    socket's pending error (C{SO_ERROR}) is read before Twisted's C{recv}
    would consume it.  C{ETIMEDOUT} with probes outstanding becomes
    L{KeepAliveTimedOut}, C{ECONNRESET} becomes L{PeerReset}.  A busy
    connection pays one clock read per read, no system call.
  - C{connectionLost}: if the error was consumed anyway (the connection
    read data less than half the idle time before, which only a reactor
    stall can make coincide with a keepalive failure), C{TCP_INFO} still
    tells that the kernel closed the socket with probes outstanding, which
    is reported as L{KeepAliveTimedOut}; there, a reset cannot be told
    from a timeout.
"""

from __future__ import annotations

import errno
import os
import time
from typing import Any

from twisted.internet.error import ConnectionLost
from twisted.python.failure import Failure

from ._keepaliveplatform import KeepAlivePlatform

__all__ = ["KeepAliveTimedOut", "PeerReset", "watchLosses"]

# Linux's TCP_CLOSE, the first byte of struct tcp_info once the kernel has
# dropped the connection; the fourth byte is tcpi_probes, the unanswered
# probes (keepalive or zero window) outstanding when it did.
_TCP_CLOSE = 7

# The clock of the doRead gate: real elapsed time between two reads of the
# same socket, as the kernel's keepalive timer counts it.
_now = time.monotonic

_MARK = "_keepAliveWatch"


class KeepAliveTimedOut(ConnectionLost):
    """
    The kernel dropped the connection because its keepalive probes went
    unanswered (C{ETIMEDOUT}): the peer vanished or the path to it is cut.

    A L{ConnectionLost}, so code that checks for that still works.

    @ivar osError: C{errno.ETIMEDOUT}.
    """

    MESSAGE = "The kernel's keepalive probes went unanswered (ETIMEDOUT)"
    osError = errno.ETIMEDOUT


class PeerReset(ConnectionLost):
    """
    The peer reset the connection (C{ECONNRESET}): for example it answered
    a keepalive probe with a reset because it no longer knows the
    connection (it restarted, or a firewall rejects it).  The peer's host
    is reachable; it is not a keepalive timeout.

    A L{ConnectionLost}, so code that checks for that still works.

    @ivar osError: C{errno.ECONNRESET}.
    """

    MESSAGE = "The peer reset the connection (ECONNRESET)"
    osError = errno.ECONNRESET


def _probesUnanswered(sock: Any, platform: KeepAlivePlatform) -> bool:
    """
    Whether the kernel closed C{sock} with probes outstanding (Linux).
    """
    assert platform.tcpInfo is not None
    try:
        info = sock.getsockopt(platform.ipprotoTCP, platform.tcpInfo, 8)
    except OSError:
        return False
    return len(info) >= 4 and info[0] == _TCP_CLOSE and info[3] > 0


def lossFor(code: int, sock: Any, platform: KeepAlivePlatform) -> ConnectionLost:
    """
    The loss to report for the socket error C{code}.
    """
    if code == errno.ECONNRESET:
        return PeerReset()
    if code == errno.ETIMEDOUT and _probesUnanswered(sock, platform):
        return KeepAliveTimedOut()
    name = errno.errorcode.get(code, str(code))
    return ConnectionLost(f"{os.strerror(code)} ({name})")


def watchLosses(
    owner: Any, sock: Any, platform: KeepAlivePlatform, idle: int | None
) -> bool:
    """
    Make C{owner} (the TCP transport that owns C{sock}; the reactor calls
    its C{doRead} and C{connectionLost}) report a keepalive timeout as
    L{KeepAliveTimedOut} and a reset as L{PeerReset}.  Both hooks are
    per-instance attributes, removed when the connection is lost.

    @param idle: The keepalive idle time in effect (seconds), for the
        C{doRead} gate; L{None} to check the error on every read.
    @return: Whether the losses are watched (C{owner} has a
        C{connectionLost} that can be hooked).
    """
    original = getattr(owner, "connectionLost", None)
    if original is None or getattr(original, _MARK, False):
        return original is not None
    originalRead = getattr(owner, "doRead", None)

    def connectionLost(reason: Failure) -> Any:
        # Drop the per-instance hooks first: it breaks the reference cycles
        # and makes a second call go straight to the original.
        hooks = vars(owner)
        hooks.pop("connectionLost", None)
        hooks.pop("doRead", None)
        if reason.type is ConnectionLost and _probesUnanswered(sock, platform):
            reason = Failure(KeepAliveTimedOut())  # type: ignore[no-untyped-call]
        return original(reason)

    setattr(connectionLost, _MARK, True)
    try:
        owner.connectionLost = connectionLost
    except AttributeError:
        return False
    if callable(originalRead):
        owner.doRead = _gatedRead(originalRead, sock, platform, idle)
    return True


def _gatedRead(
    original: Any, sock: Any, platform: KeepAlivePlatform, idle: int | None
) -> Any:
    """
    A C{doRead} that, after a quiet spell of at least half C{idle}, reads
    the socket's pending error before C{original} (Twisted's) would consume
    it, and returns the loss it means (the reactor then calls
    C{connectionLost} with it).
    """
    quietFor = 0.0 if idle is None else idle / 2.0
    last = _now()
    solSocket, soError = platform.solSocket, platform.soError

    def doRead() -> Any:
        nonlocal last
        now = _now()
        quiet, last = now - last, now
        if quiet >= quietFor:
            try:
                code = sock.getsockopt(solSocket, soError)
            except OSError:
                code = 0
            if code:
                return lossFor(code, sock, platform)
        return original()

    return doRead
