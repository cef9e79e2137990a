"""
Putting the write path on a connection: L{installWritePath} for a server
that wants eager sends and bounded output in one call, and
L{EagerWriteMixin} for any protocol that wants eager sends.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from .._hooks import callsFirst, hookMethod
from .._time import resolveClock
from ._engine import WritePath, writePathFor

__all__ = ["EagerWriteMixin", "installWritePath"]

_log = Logger()
_MARK = "_eagerWriteHooked"
_warned: set[str] = set()


def _cannot(transport: object) -> None:
    kind = type(transport).__qualname__
    if kind not in _warned:
        _warned.add(kind)
        _log.info(
            "write path: {kind} is not carried by a Twisted TCP connection; "
            "its writes take their own path",
            kind=kind,
        )


def installWritePath(
    protocol: Any,
    clock: IReactorTime | None = None,
    eager: bool = True,
    maxUnsent: int | None = None,
    grace: float = 10.0,
) -> WritePath | None:
    """
    Put the write path on C{protocol}'s connection (call it from
    C{connectionMade}, or later).

    @param eager: Send at once when nothing is unsent (see
        L{EagerWriteMixin}).
    @param maxUnsent: Stop reading from the peer while more than this many
        bytes are written and unsent, read again at half of it; abort the
        connection if it stays above for C{grace} seconds, with
        C{protocol.writeCloseReason} set to C{"slow reader"} first.
        L{None}: no bound.
    @param grace: Seconds, see C{maxUnsent}.
    @param clock: For the grace (the global reactor if L{None}).
    @return: The connection's L{WritePath}, or L{None} if the transport is
        not carried by a Twisted TCP connection (nothing is changed then).
    """
    transport = protocol.transport
    path = writePathFor(transport)
    if path is None:
        _cannot(transport)
        return None
    path.eager = eager
    if maxUnsent is not None:

        def slowReader() -> None:
            protocol.writeCloseReason = "slow reader"
            transport.abortConnection()

        path.bound(maxUnsent, grace, resolveClock(clock), slowReader)
    return path


class EagerWriteMixin:
    """
    Protocol mixin: send what the protocol writes at once, as asyncio's
    transports do, instead of on the reactor's next turn.

    Twisted's TCP transport never sends in C{write()}: it buffers, asks the
    reactor to watch the socket for writability, sends on the next turn and
    stops watching (on Linux two C{epoll_ctl} calls per reply).  With this
    mixin, a write sends at once when the connection holds nothing unsent,
    is connected and not closing, and has no paused producer (nor a pull
    producer that Twisted must ask for more); whatever the kernel does not
    take goes through Twisted's own buffering, so producers are paused and
    resumed, C{loseConnection} flushes and errors are reported exactly as
    without it.  The bytes the peer receives and when the connection
    closes do not change::

        class Echo(EagerWriteMixin, Protocol):
            def dataReceived(self, data):
                self.transport.write(data)

    It works on Twisted's TCP connections (C{twisted.internet.tcp}, any
    reactor built on it: epoll, poll, select, asyncio) and below TLS
    (the ciphertext is sent at once).  On any other transport, or a TCP
    connection that switched to TLS with C{startTLS}, writes take
    Twisted's own path.

    Trade-off: a reply goes out at once, so many small writes in one
    reactor turn are many C{send} calls where Twisted would have made one;
    gather them with C{writeSequence}.

    @cvar eagerWrites: Set to C{False} on a class or an instance (before
        the connection is made) to keep Twisted's own path.
    """

    eagerWrites = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hookMethod(cls, "makeConnection", _MARK, callsFirst("_eagerWriteStart", True))

    def _eagerWriteStart(self, transport: Any) -> None:
        if not self.eagerWrites:
            return
        path = writePathFor(transport)
        if path is None:
            _cannot(transport)
        else:
            path.eager = True
