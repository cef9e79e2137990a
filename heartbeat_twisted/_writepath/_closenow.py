"""
Closing an idle TCP connection without waiting for it to become writable.

C{loseConnection} on a L{tcp.Connection} stops reading, registers the
socket for writing and waits for the reactor to report it writable; only
then (an epoll event, C{doWrite}, an empty C{send}) does it see that
nothing is left to send and close.  A connection that timed out idle
usually has nothing unsent, so that round trip is pure cost: two more
C{epoll_ctl} calls, an empty C{send} and an event dispatch per close, which
add up when a sweep times out thousands.

L{closeSoon} closes such a connection in the reactor's next turn instead,
exactly as the reactor would after the last write (C{connectionLost}
with L{ConnectionDone<twisted.internet.error.ConnectionDone>}: the
socket is shut down and closed, so the peer sees a FIN, never a reset),
for the connections queued in one turn together
(within a time budget per turn).
Anything written meanwhile is not lost: the close then goes Twisted's own
way (flush, then close), and the caller is told so it can arm its abort.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from twisted.internet import main, tcp
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["closeSoon"]

_log = Logger()
#: The reason the reactor gives after the last write of a closing
#: connection: one shared L{Failure}, as Twisted's own reactor shares it.
_DONE = Failure(main.CONNECTION_DONE)  # type: ignore[no-untyped-call]
#: Connections to close in the next turn, per reactor, flat: for each,
#: the connection, what to call if it cannot close then, how many
#: arguments to call it with, and those arguments, as consecutive items
#: of one list (no tuple or partial per close: when thousands are queued,
#: each object left alive until its turn is one more for CPython's young
#: garbage collections to walk).
_queues: dict[int, list[Any]] = {}
#: Seconds of closes per reactor turn, about (each costs tens of
#: microseconds, most of it the kernel's FIN): with the sweep's own
#: C{turnBudget}, what keeps a reactor turn well under 20 ms while
#: thousands close.
turnBudget = 0.004


def _idle(c: Any) -> bool:
    """
    Whether a Twisted TCP connection has nothing to wait for before it can
    close: open, not closing, nothing unsent, no producer, no TLS.
    """
    return bool(
        c.connected
        and not c.disconnecting
        and not c._writeDisconnecting
        and not c._writeDisconnected
        and not c._aborting
        and not c.TLS
        and c.producer is None
        and not c._tempDataLen
        and len(c.dataBuffer) == c.offset
    )


def closeSoon(
    transport: object, otherwise: Callable[..., object], *args: object
) -> bool:
    """
    Close C{transport} in the reactor's next turn if it is a Twisted TCP
    connection with nothing to wait for (see the module docstring).

    From now on the connection reads nothing and counts as closing
    (C{loseConnection} does nothing more); it may still be written to.  If
    it was written to, or registered a producer, before its turn comes,
    Twisted's own close takes over (it flushes first) and
    C{otherwise(*args)} is called then, so the caller can bound the flush
    with an abort.  (Pass the function and its arguments, not a
    C{functools.partial}: the queue keeps them as they are.)

    @return: C{False} if C{transport} cannot be closed this way (a TLS or
        wrapped transport, a UNIX socket, output unsent, a producer, a
        half-closed or closing connection): nothing was done; use
        C{loseConnection}.
    """
    if not isinstance(transport, tcp.Connection) or not _idle(transport):
        return False
    c: Any = transport
    c.stopReading()
    c.disconnecting = True
    reactor = c.reactor
    key = id(reactor)
    queue = _queues.get(key)
    if queue is None:
        queue = _queues[key] = []
        reactor.callLater(0, _closeQueued, reactor, key)
    queue += (c, otherwise, len(args), *args)
    return True


def _closeQueued(reactor: Any, key: int) -> None:
    """
    Close what L{closeSoon} queued for one reactor, within
    L{turnBudget}: what is left waits for the reactor's next turn (after
    its next I/O poll), ahead of what is queued meanwhile.
    """
    queue = _queues.pop(key, [])
    began = perf_counter()
    index = closes = 0
    end = len(queue)
    while index < end:
        if not closes % 16 and closes and perf_counter() - began > turnBudget:
            later = _queues.get(key)
            if later is None:
                _queues[key] = queue[index:]
                reactor.callLater(0, _closeQueued, reactor, key)
            else:
                later[:0] = queue[index:]
            return
        c = queue[index]
        otherwise = queue[index + 1]
        first = index + 3
        index = first + queue[index + 2]
        closes += 1
        if not c.connected or c._aborting:
            continue  # lost meanwhile (aborted, or a send failed)
        try:
            if (
                c.producer is None
                and not c._tempDataLen
                and len(c.dataBuffer) == c.offset
                and not c._writeDisconnecting
            ):
                c.connectionLost(_DONE)
            else:
                # Written to meanwhile: flush, then close (Twisted's way).
                c.startWriting()
                otherwise(*queue[first:index])
        except Exception:
            _log.failure("closing {connection!r}", connection=c)
