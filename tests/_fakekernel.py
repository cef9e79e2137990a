"""
A real L{tcp.Connection} over a fake kernel socket, driven by hand: the
write path's unit tests see Twisted's own buffering and sends, in
simulated time.
"""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

__all__ = ["FakeSocket", "Recorder", "connected"]


class FakeSocket:
    """
    A socket whose send buffer has C{room} bytes free.

    @ivar sent: What the kernel accepted, in order.
    @ivar error: If set, every C{send} raises it (a reset peer).
    """

    def __init__(self, room: int = 1 << 30) -> None:
        self.room = room
        self.sent = b""
        self.sends = 0
        self.error: OSError | None = None
        self.closed = False

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return 99

    def send(self, data: Any) -> int:
        self.sends += 1
        if self.error is not None:
            raise self.error
        count = min(len(data), self.room)
        if not count:
            raise BlockingIOError(errno.EAGAIN, "would block")
        self.room -= count
        self.sent += bytes(data[:count])
        return count

    def drain(self, count: int) -> None:
        """
        The peer read C{count} bytes: that much room again.
        """
        self.room += count

    def setsockopt(self, *args: Any) -> None:
        pass

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def getpeername(self) -> tuple[str, int]:
        return ("127.0.0.1", 40000)


class Recorder(Protocol):
    """
    Records received data and the reason of the loss.
    """

    def __init__(self) -> None:
        self.received = b""
        self.lost: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.lost = reason


class Kernel:
    """
    The fake kernel and reactor of one connection.
    """

    def __init__(self, protocol: Protocol, room: int) -> None:
        self.reactor = MemoryReactorClock()
        self.socket = FakeSocket(room)
        self.connection = tcp.Connection(self.socket, protocol, self.reactor)  # type: ignore[arg-type]
        self.connection.connected = 1
        self.connection.getPeer = lambda: "peer"  # type: ignore[method-assign]
        self.protocol = protocol

    def writing(self) -> bool:
        """
        Whether the connection waits for the socket to be writable.
        """
        return self.connection in self.reactor.getWriters()

    def reading(self) -> bool:
        return self.connection in self.reactor.getReaders()

    def turn(self) -> Any:
        """
        One reactor turn in which the socket is writable: C{doWrite} if the
        connection asked for it, and a loss as the reactor reports it.
        """
        if not self.writing():
            return None
        why = self.connection.doWrite()
        if why:
            self.connection.connectionLost(Failure(why))
        return why


def connected(protocol: Protocol | None = None, room: int = 1 << 30) -> Kernel:
    """
    Connect C{protocol} (a L{Recorder} if L{None}) to a fake kernel with
    C{room} bytes of send buffer.
    """
    if protocol is None:
        protocol = Recorder()
    kernel = Kernel(protocol, room)
    kernel.connection.startReading()
    protocol.makeConnection(kernel.connection)
    return kernel
