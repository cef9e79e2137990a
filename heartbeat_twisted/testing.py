"""
Helpers for testing your own heartbeat protocols with trial, in simulated
time and without sockets::

    from twisted.internet.task import Clock
    from twisted.trial.unittest import SynchronousTestCase
    from heartbeat_twisted import HeartbeatConfig
    from heartbeat_twisted.testing import connect

    class ChatTests(SynchronousTestCase):
        def test_idleClose(self):
            clock = Clock()
            factory = ChatFactory(heartbeatConfig=HeartbeatConfig(idle=30),
                                  clock=clock)
            connection = connect(factory)
            clock.advance(30)
            self.assertTrue(connection.closed)
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
)
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

__all__ = ["Connection", "HeartbeatStringTransport", "TurnClock", "connect"]


class TurnClock(Clock):
    """
    A L{Clock} that runs like a reactor's turn: each L{advance} runs the
    calls that were due when it began, and calls scheduled while it runs
    (C{callLater(0)} included) wait for the next L{advance}, as the reactor
    keeps them for after its next I/O poll.  Deliver data between two
    advances to model what that poll reads::

        clock.advance(3)          # a late sweep: it waits one turn
        connection.receive(b"x")  # what the reactor reads meanwhile
        clock.advance(0)          # the next turn decides
    """

    def advance(self, amount: float) -> None:
        """
        Move time on by C{amount} and run, in time order, the calls due
        then, once.
        """
        self.rightNow += amount
        due = sorted(
            (call for call in self.calls if call.getTime() <= self.rightNow),
            key=lambda call: call.getTime(),
        )
        for call in due:
            if call not in self.calls:
                continue  # cancelled by an earlier call of this turn
            self.calls.remove(call)
            call.called = 1
            call.func(*call.args, **call.kw)


class HeartbeatStringTransport(StringTransport):
    """
    A L{StringTransport} that, like a real one, tells its protocol when it
    is closed: C{loseConnection} delivers C{connectionLost(ConnectionDone)}
    and C{abortConnection} delivers C{connectionLost(ConnectionAborted)},
    each once.  Set L{lingering} to make C{loseConnection} only mark the
    transport as closing, as a socket does while a peer is not reading.

    @ivar lost: The reason delivered to the protocol, or L{None}.
    @ivar lingering: If C{True}, C{loseConnection} does not complete.
    """

    protocol: IProtocol | None = None
    lost: Failure | None = None
    lingering = False
    _aborting = False

    def loseConnection(self) -> None:
        """
        Close cleanly: the protocol hears C{ConnectionDone}, unless
        L{lingering}.
        """
        super().loseConnection()  # type: ignore[no-untyped-call]
        if not (self.lingering or self._aborting):
            self._lose(ConnectionDone("closed cleanly"))

    def abortConnection(self) -> None:
        """
        Close at once: the protocol hears C{ConnectionAborted}.
        """
        # StringTransport aborts through loseConnection: not a clean close.
        self._aborting = True
        super().abortConnection()  # type: ignore[no-untyped-call]
        self._lose(ConnectionAborted("aborted"))

    def _lose(self, error: Exception) -> None:
        if self.lost is not None or self.protocol is None:
            return
        self.lost = Failure(error)  # type: ignore[no-untyped-call]
        self.protocol.connectionLost(self.lost)


@attrs.define
class Connection:
    """
    A protocol connected to a L{HeartbeatStringTransport}.

    @ivar protocol: The protocol the factory built.
    @ivar transport: Its transport; C{transport.value()} is what it wrote.
    """

    protocol: Any
    transport: HeartbeatStringTransport

    @property
    def closed(self) -> bool:
        """
        Whether the protocol was told the connection is lost.
        """
        return self.transport.lost is not None

    def receive(self, data: bytes) -> None:
        """
        Deliver C{data} to the protocol as received bytes.
        """
        self.protocol.dataReceived(data)

    def peerClosed(self) -> None:
        """
        The peer closed the connection: the protocol hears C{ConnectionDone}.
        """
        self.transport._lose(ConnectionDone("peer closed"))


def connect(
    factory: IProtocolFactory,
    peer: IAddress | None = None,
    lingering: bool = False,
    clock: IReactorTime | None = None,
) -> Connection:
    """
    Build a protocol from C{factory} and connect it to a new
    L{HeartbeatStringTransport}, as a listening port does for an accepted
    connection.

    @param peer: The remote address (default C{127.0.0.1:40000}).
    @param lingering: See L{HeartbeatStringTransport.lingering}.
    @param clock: The clock for a protocol configured on its class (its
        C{heartbeatClock}); a factory mixin keeps its own C{heartbeatClock}.
    @raise ValueError: If the factory builds no protocol.
    """
    if peer is None:
        peer = IPv4Address("TCP", "127.0.0.1", 40000)
    protocol = factory.buildProtocol(peer)
    if protocol is None:
        raise ValueError(f"{factory!r} built no protocol for {peer!r}")
    transport = HeartbeatStringTransport(peerAddress=peer)  # type: ignore[no-untyped-call]
    transport.protocol = protocol
    transport.lingering = lingering
    if clock is not None:
        setattr(protocol, "heartbeatClock", clock)  # noqa: B010
    protocol.makeConnection(transport)
    return Connection(protocol, transport)
