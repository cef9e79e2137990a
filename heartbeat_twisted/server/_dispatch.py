"""
Event dispatch without the legacy logging context, for the reactor that
C{twistd heartbeat} owns.

Twisted's epoll and poll reactors run every event inside
C{twisted.python.log.callWithLogger}: two C{callWithContext} calls, two
C{getContext} and a C{currentContext} per event, so that a legacy
C{log.msg} made while handling it is tagged with the connection's log
prefix.  For a ping/pong server that is about a fifth of the Python work
per pong, and the server makes no legacy log call: its protocols log
with C{twisted.logger}, whose events never read that context.

L{dispatchDirectly} makes the reactor call C{doRead} (or C{doWrite})
directly for the events that dominate (readable, or writable, and
nothing else) on a connection of the server's own protocols (a
L{tcp.Server<twisted.internet.tcp.Server>} whose protocol's class is one
of those given, so TLS and the metrics page keep Twisted's path).
Everything else (hang-up and error events, both directions at once,
other selectables) goes through Twisted's own dispatch, in the logging
context, unchanged; and when such a read or write raises or reports the
connection lost, the error is logged and the connection dropped exactly
as Twisted's C{_doReadOrWrite} does, inside C{callWithLogger}, so those
log lines keep their prefix.

This module reads the reactor's internals (C{_poller}, C{_selectables},
C{_doReadOrWrite}, C{_disconnectSelectable}, C{_POLL_IN}, C{_POLL_OUT}), the same from
Twisted 22.4 to the newest release; it is used only on the exact
C{EPollReactor} and C{PollReactor} classes whose C{doPoll} is Twisted's
own (tests/test_dispatch.py pins that the behaviour is Twisted's).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Collection
from typing import Any

from twisted.internet import tcp
from twisted.python import log
from twisted.python.failure import Failure

__all__ = ["dispatchDirectly"]


def _reactorClasses() -> dict[type, str]:
    found: dict[type, str] = {}
    try:
        from twisted.internet.epollreactor import EPollReactor
    except ImportError:  # not Linux
        pass
    else:
        found[EPollReactor] = "epoll"
    try:
        from twisted.internet.pollreactor import PollReactor
    except ImportError:  # no poll() (Windows)
        pass
    else:
        found[PollReactor] = "poll"
    return found


def _failed(reactor: Any, selectable: Any, failure: Failure) -> None:
    # What _doReadOrWrite does with an exception from fileno() or doRead()
    # (its inRead is still False then), run inside callWithLogger as there.
    err: Callable[..., None] = log.err
    err(failure)
    reactor._disconnectSelectable(selectable, failure.value, False)


def dispatchDirectly(reactor: Any, protocols: Collection[type]) -> str | None:
    """
    Make C{reactor} call C{doRead} and C{doWrite} without the legacy
    logging context for a connection whose protocol's class is in
    C{protocols}.

    @param reactor: The reactor this process owns.
    @param protocols: The protocol classes (exact classes) whose events may
        skip the context: classes that make no legacy C{log.msg} call.
    @return: The reactor's name (C{"epoll"}, C{"poll"}) if done, else
        L{None} (any other reactor, or one whose C{doPoll} is not
        Twisted's own): nothing is changed then.
    """
    kind = type(reactor)
    name = _reactorClasses().get(kind)
    if name is None or getattr(kind, "doIteration", None) is not kind.doPoll:
        return None
    if "doIteration" in vars(reactor):
        return None  # someone else already replaced it
    ours = frozenset(protocols)
    poller = reactor._poller
    selectables: dict[int, Any] = reactor._selectables
    general: Callable[[Any, int, int], None] = reactor._doReadOrWrite
    pollIn: int = reactor._POLL_IN
    pollOut: int = reactor._POLL_OUT
    server: Any = tcp.Server
    callWithLogger: Callable[..., Any] = log.callWithLogger

    def dispatch(events: list[tuple[int, int]]) -> None:
        for fd, event in events:
            selectable: Any = selectables.get(fd)
            if selectable is None:
                continue
            if (
                (event != pollIn and event != pollOut)
                or selectable.__class__ is not server
                or selectable.protocol.__class__ not in ours
            ):
                callWithLogger(selectable, general, selectable, fd, event)
                continue
            try:
                if selectable.fileno() == -1:
                    closed = True
                else:
                    closed = False
                    reading = event == pollIn
                    why = selectable.doRead() if reading else selectable.doWrite()
            except BaseException:
                failure = Failure()  # type: ignore[no-untyped-call]
                callWithLogger(selectable, _failed, reactor, selectable, failure)
                continue
            if closed:
                # Twisted's own path drops it (its _NO_FILEDESC).
                callWithLogger(selectable, general, selectable, fd, event)
            elif why:
                callWithLogger(
                    selectable, reactor._disconnectSelectable, selectable, why, reading
                )

    if name == "epoll":

        def doPoll(timeout: float | None) -> None:
            try:
                events = poller.poll(
                    -1 if timeout is None else timeout, len(selectables)
                )
            except OSError as e:
                if e.errno == errno.EINTR:
                    return
                raise
            dispatch(events)

    else:

        def doPoll(timeout: float | None) -> None:
            try:
                events = poller.poll(None if timeout is None else int(timeout * 1000))
            except OSError as e:
                if e.args[0] == errno.EINTR:
                    return
                raise
            dispatch(events)

    reactor.doIteration = doPoll
    return name
