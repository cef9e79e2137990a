"""
A scriptable raw TCP client for real-socket tests.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from ._waiting import Waitable

__all__ = ["Peer", "connectPeer", "waitListening"]


class Peer(Protocol, Waitable):
    """
    Keeps what it receives; lets a test wait (with a bound) for bytes, for
    the end, or for any condition on it.

    @ivar received: All bytes received.
    @ivar madeAt: C{reactor.seconds()} when the connection was made.
    @ivar lostAt: C{reactor.seconds()} when the connection was lost.
    @ivar reason: Why it was lost.
    @ivar lastSentAt: C{reactor.seconds()} of the last L{send}.
    """

    def __init__(self) -> None:
        Waitable.__init__(self)
        self.received = b""
        self.madeAt: float | None = None
        self.lostAt: float | None = None
        self.reason: Failure | None = None
        self.lastSentAt: float | None = None

    def captured(self) -> str:
        return f"received {self.received!r}"

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
        self.changed()

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.lostAt = reactor.seconds()  # type: ignore[attr-defined]
        self.reason = reason
        self.finished("connection lost")

    def expect(self, data: bytes, timeout: float = 5) -> Deferred[bytes]:
        """
        Fire with all received bytes once C{data} is among them (now or
        later); fail after C{timeout} seconds or when the connection is lost
        first.
        """
        return self.waitUntil(
            lambda: self.received if data in self.received else None,
            timeout,
            repr(data),
        )

    def whenLost(self, timeout: float = 10, what: str = "close") -> Deferred[Peer]:
        """
        Fire with this peer once its connection is lost (the reason is in
        L{reason}); fail after C{timeout} seconds.
        """
        return self.waitUntil(
            lambda: self if self.reason is not None else None, timeout, what
        )


def connectPeer(port: int, host: str = "127.0.0.1") -> Deferred[Peer]:
    """
    Connect a new L{Peer} to C{host:port}.
    """
    return connectProtocol(TCP4ClientEndpoint(reactor, host, port), Peer())


@inlineCallbacks
def waitListening(port: int, timeout: float) -> Any:
    """
    Retry every 50 ms until something accepts connections on
    127.0.0.1:C{port}; fail after C{timeout} seconds.
    """
    deadline = reactor.seconds() + timeout  # type: ignore[attr-defined]
    while True:
        try:
            peer = yield connectPeer(port)
        except Exception:
            if reactor.seconds() > deadline:  # type: ignore[attr-defined]
                raise
            yield task.deferLater(reactor, 0.05, lambda: None)
        else:
            peer.transport.loseConnection()
            return
