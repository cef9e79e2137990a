"""
A scriptable TCP client for real-socket tests.
"""

from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

__all__ = ["Peer", "connectPeer"]


class Peer(Protocol):
    """
    Keeps what it receives; lets a test wait for bytes or for the end.

    @ivar received: All bytes received.
    @ivar lostAt: C{reactor.seconds()} when the connection was lost.
    @ivar reason: Why it was lost.
    @ivar lastSentAt: C{reactor.seconds()} of the last L{send}.
    """

    def __init__(self) -> None:
        self.received = b""
        self.lostAt: float | None = None
        self.reason: Failure | None = None
        self.lastSentAt: float | None = None
        self._lost: list[defer.Deferred[Peer]] = []
        self._expecting: list[tuple[bytes, defer.Deferred[bytes]]] = []

    def connectionMade(self) -> None:
        self.madeAt = reactor.seconds()  # type: ignore[attr-defined]
        self.lastSentAt = self.madeAt

    def send(self, data: bytes) -> None:
        """
        Write C{data} and note when.
        """
        assert self.transport is not None
        self.transport.write(data)
        self.lastSentAt = reactor.seconds()  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        for entry in list(self._expecting):
            if entry[0] in self.received:
                self._expecting.remove(entry)
                entry[1].callback(self.received)

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.lostAt = reactor.seconds()  # type: ignore[attr-defined]
        self.reason = reason
        waiting, self._lost = self._lost, []
        for d in waiting:
            d.callback(self)
        for _, d in self._expecting:
            d.errback(AssertionError(f"connection lost; received {self.received!r}"))
        self._expecting.clear()

    def expect(self, data: bytes, timeout: float = 5) -> defer.Deferred[bytes]:
        """
        Fire once C{data} has been received (now or later); fail after
        C{timeout} seconds.
        """
        if data in self.received:
            return defer.succeed(self.received)
        d: defer.Deferred[bytes] = defer.Deferred()
        self._expecting.append((data, d))
        return d.addTimeout(timeout, reactor)

    def whenLost(self, timeout: float = 10) -> defer.Deferred[Peer]:
        """
        Fire with this peer once its connection is lost (the reason is in
        L{reason}); fail after C{timeout} seconds.
        """
        if self.reason is not None:
            return defer.succeed(self)
        d: defer.Deferred[Peer] = defer.Deferred()
        self._lost.append(d)
        return d.addTimeout(timeout, reactor)


def connectPeer(port: int, host: str = "127.0.0.1") -> defer.Deferred[Peer]:
    """
    Connect a new L{Peer} to C{host:port}.
    """
    return connectProtocol(TCP4ClientEndpoint(reactor, host, port), Peer())
