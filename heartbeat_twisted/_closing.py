"""
The one way this library closes a connection on purpose: C{loseConnection},
then C{abortConnection} if it is still open after a grace.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

__all__ = [
    "CloseSoon",
    "Scheduler",
    "abortNow",
    "closeGracefully",
    "closed",
    "isClosing",
    "mayLog",
    "peerText",
]


class Scheduler(Protocol):
    """
    What can keep an abort timer: a reactor, a L{task.Clock
    <twisted.internet.task.Clock>}, or an L{IdleTracker
    <heartbeat_twisted.IdleTracker>} (whose sweep keeps it, at no reactor
    cost: use it when many connections close at once).
    """

    def callLater(
        self, delay: float, func: Callable[..., object], /, *args: object, **kw: object
    ) -> Any:
        """
        Call C{func} C{delay} seconds from now; return something with
        C{active()} and C{cancel()}.
        """


class CloseSoon(Protocol):
    """
    A cheaper close to try first (see L{closeGracefully}), such as the
    write path's C{closeSoon}.
    """

    def __call__(
        self, transport: Any, otherwise: Callable[..., object], /, *args: object
    ) -> bool:
        """
        Take the close of C{transport} on, if it can.

        @param otherwise: Called with C{args} if the close must flush after
            all (it arms the abort); given apart from its arguments, not as
            one C{functools.partial}, so that a close queued for later
            leaves no object of its own behind.
        @return: Whether it took the close on.
        """


def addressText(address: Any) -> str:
    """
    An address as a log line shows it: C{HOST:PORT}, C{[HOST]:PORT} for
    IPv6, the path of a UNIX socket, else the address's own text.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if isinstance(host, str) and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    if name is not None:
        return os.fsdecode(name) if isinstance(name, bytes) else str(name)
    return str(address)


def peerText(transport: Any) -> str:
    """
    The peer's address as L{addressText} shows it, or C{"?"} if the
    transport cannot say.
    """
    getPeer = getattr(transport, "getPeer", None)
    try:
        return addressText(getPeer()) if getPeer is not None else "?"
    except Exception:
        return "?"


_CLOSING = "_heartbeatClosing"
_log = Logger()


def closeGracefully(
    owner: object,
    transport: Any,
    grace: float,
    clock: IReactorTime | Scheduler,
    reason: str,
    atOnce: CloseSoon | None = None,
) -> bool:
    """
    Close C{transport} cleanly (what was written is still sent), and abort
    it if it is still open C{grace} seconds later, so that a peer that
    stopped reading cannot hold a closed connection open.

    The abort timer is kept on C{owner} (the protocol) and armed before
    C{loseConnection}, since a transport may report the loss at once;
    L{closed} cancels it, and every mixin of this library calls L{closed}
    from its C{connectionLost}, so no timer outlives its connection.

    @param clock: Keeps the abort timer: a reactor, or an L{IdleTracker
        <heartbeat_twisted.IdleTracker>} (see L{Scheduler}).
    @param reason: Why it is closed, for the log line of an abort.
    @param atOnce: A cheaper close to try first (the write path's
        C{closeSoon}, for a TCP connection with nothing unsent: it closes
        in the next reactor turn and needs no abort, since nothing is left
        to flush); it calls back to arm the abort if the connection was
        written to meanwhile and must flush first.
    @return: C{False} if C{owner} is already closing (nothing is done).
    """
    if getattr(owner, _CLOSING, None) is not None:
        return False
    if atOnce is not None and atOnce(
        transport, _armAbort, owner, transport, grace, clock, reason
    ):
        setattr(owner, _CLOSING, False)
        return True
    call: Any = None
    if getattr(transport, "abortConnection", None) is not None:
        # One partial, not a closure and its cells, per close when thousands
        # close at once; a bare (delay, func) scheduler, such as
        # TimeoutMixin.callLater, takes it too.
        call = clock.callLater(grace, partial(_abort, owner, transport, grace, reason))
    setattr(owner, _CLOSING, call if call is not None else False)
    transport.loseConnection()
    return True


def _armAbort(
    owner: object,
    transport: Any,
    grace: float,
    clock: IReactorTime | Scheduler,
    reason: str,
) -> None:
    """
    A close that C{atOnce} took on must flush first after all: bound the
    flush with the abort of L{closeGracefully}.
    """
    if getattr(owner, _CLOSING, None) is False:
        call = clock.callLater(grace, partial(_abort, owner, transport, grace, reason))
        setattr(owner, _CLOSING, call)


def _abort(owner: object, transport: Any, grace: float, reason: str) -> None:
    """
    The grace of L{closeGracefully} is over and the connection still open.
    """
    setattr(owner, _CLOSING, False)
    if mayLog(owner):
        _log.warn(
            "aborting {peer}: still open {grace} s after a close ({reason})",
            peer=peerText(transport),
            grace=grace,
            reason=reason,
        )
    transport.abortConnection()


def mayLog(owner: object) -> bool:
    """
    Whether a line about closing C{owner}'s connection may be logged: what
    its C{heartbeatMayLog()} says, if it has one (a server that faces the
    internet keeps such lines within a budget), else C{True}.
    """
    allow = getattr(owner, "heartbeatMayLog", None)
    return True if allow is None else bool(allow())


def abortNow(owner: object, transport: Any) -> None:
    """
    Abort C{transport} at once (C{loseConnection} if it cannot abort), for
    a connection that must not live on: a misconfigured one, or one whose
    time-out handler raised.  A pending graceful close is superseded.
    """
    closed(owner)
    setattr(owner, _CLOSING, False)
    abort = getattr(transport, "abortConnection", None)
    if abort is not None:
        abort()
    elif transport is not None:
        transport.loseConnection()


def isClosing(owner: object) -> bool:
    """
    Whether L{closeGracefully} was called for C{owner}.
    """
    return getattr(owner, _CLOSING, None) is not None


def closed(owner: object) -> None:
    """
    C{owner}'s connection is gone: cancel its pending abort, if any.
    """
    call = getattr(owner, _CLOSING, None)
    if call:
        if call.active():
            call.cancel()
        setattr(owner, _CLOSING, False)
