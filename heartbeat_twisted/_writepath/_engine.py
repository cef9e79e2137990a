"""
The write path of one TCP connection: what left the process, how much is
still unsent, and sending at once when nothing is.

This is the one module that reads Twisted's transport internals
(C{twisted.internet.tcp.Connection} and C{abstract.FileDescriptor}:
C{dataBuffer}, C{offset}, C{_tempDataLen}, C{producer},
C{streamingProducer}, C{producerPaused}, C{connected}, C{disconnecting},
C{_writeDisconnecting}, C{_aborting}, C{TLS}, C{socket}, C{writeSomeData},
C{connectionLost}).  They are the same from Twisted 22.4 to the newest
release; tests/test_writepath*.py pin what this module relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from errno import ENOBUFS
from typing import Any

from twisted.internet import tcp
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from .._closing import peerText
from ._shadow import Shadow, shadowOf

__all__ = ["WritePath", "tcpConnectionUnder", "writePathFor"]

_KEY = "_heartbeatWritePath"
_log = Logger()

#: The methods eager sends stand in for: a subclass that overrides any of
#: them (a UNIX socket passing descriptors, say) keeps Twisted's own path.
_OWN = (
    ("write", tcp.Connection.write),
    ("writeSequence", tcp.Connection.writeSequence),
    ("writeSomeData", tcp.Connection.writeSomeData),
)


def tcpConnectionUnder(transport: object) -> tcp.Connection | None:
    """
    The L{tcp.Connection} that carries C{transport}: the transport itself,
    or the one under a wrapper's C{.transport} chain (TLS's
    C{TLSMemoryBIOProtocol}, a C{ProtocolWrapper}); L{None} for any other
    transport (in memory, IOCP, a process, ...).
    """
    current: object = transport
    for _ in range(16):
        if isinstance(current, tcp.Connection):
            return current
        below = getattr(current, "transport", None)
        if below is None or below is current:
            return None
        current = below
    return None


def writePathFor(transport: object) -> WritePath | None:
    """
    The L{WritePath} of the TCP connection that carries C{transport}, made
    on first use; L{None} if C{transport} is not carried by a
    L{tcp.Connection} (then what leaves the process cannot be seen).
    """
    connection = tcpConnectionUnder(transport)
    if connection is None:
        return None
    own: dict[str, Any] = connection.__dict__
    path = own.get(_KEY)
    if path is None:
        if not connection.connected or connection.disconnected:
            return None
        path = own[_KEY] = WritePath(connection)
    assert isinstance(path, WritePath)
    return path


class WritePath:
    """
    The write path of one L{tcp.Connection}, installed once (see
    L{writePathFor}) and gone with the connection.

    It sees the bytes that leave the process (what the kernel accepts,
    from Twisted's own sends and from eager ones) and tells
    L{observeProgress} observers; it bounds the bytes written but not yet
    sent (L{bound}); and it can send at once (L{eager}).

    Every write to the connection passes through it, including the
    ciphertext of a TLS layer above it, so eager sends and the bound
    apply below TLS.  A connection that switched to TLS itself
    (C{startTLS}) keeps Twisted's path for its writes.

    @ivar canSendEagerly: Whether eager sends are possible on this
        connection (a L{tcp.Connection} whose write methods are Twisted's
        own and not shadowed by someone else); L{eager} does nothing if not.
    @ivar bytesSent: Bytes accepted by the kernel since the path was made.
    @ivar maxUnsent: The bound on unsent bytes, or L{None} for none.
    @ivar lowWater: Reading resumes when unsent bytes fall to this.
    @ivar closeReason: C{"slow reader"} once the bound aborted the
        connection, else L{None}.
    """

    _eager = False
    maxUnsent: int | None = None
    lowWater = 0
    closeReason: str | None = None

    def __init__(self, connection: tcp.Connection) -> None:
        self.connection = connection
        self.bytesSent = 0
        self._observers: list[Callable[[int], None]] = []
        self._above = False
        self._paused = False
        self._graceCall: IDelayedCall | None = None
        self._onSlowReader: Callable[[], None] | None = None
        own = connection.__dict__
        shadow = shadowOf(connection)
        assert isinstance(shadow, Shadow)
        self._shadow = shadow
        cls = type(connection)
        self.canSendEagerly = (
            not shadow.foreign
            and "writeSomeData" not in own
            and all(getattr(cls, name) is method for name, method in _OWN)
        )
        self._socket: Any = connection.socket
        self._writeSomeData = connection.writeSomeData
        self._connectionLost = connection.connectionLost
        own["writeSomeData"] = self._wroteSome
        own["connectionLost"] = self._lost
        shadow.engine = self
        shadow.refresh()

    @property
    def eager(self) -> bool:
        """
        Send at once when nothing is unsent (see L{write}); setting it has
        no effect unless L{canSendEagerly}.
        """
        return self._eager

    @eager.setter
    def eager(self, value: bool) -> None:
        self._eager = bool(value) and self.canSendEagerly

    # What is unsent.

    def unsent(self) -> int:
        """
        Bytes written to the connection and not yet accepted by the kernel.
        """
        c: Any = self.connection
        unsent: int = len(c.dataBuffer) - c.offset + c._tempDataLen
        return unsent

    def _canSendNow(self) -> bool:
        """
        Whether Twisted itself would have nothing to wait for: connected,
        not closing, not TLS through C{startTLS}, nothing unsent, no
        producer paused and none that Twisted must ask for more.  L{write}
        makes the same test inline.
        """
        c: Any = self.connection
        return bool(
            c.connected
            and not c._tempDataLen
            and len(c.dataBuffer) == c.offset
            and not (
                c.disconnecting
                or c._writeDisconnecting
                or c._aborting
                or c.TLS
                or c.producerPaused
            )
            and (c.producer is None or c.streamingProducer)
        )

    # Progress.

    def observeProgress(self, observer: Callable[[int], None]) -> Callable[[], None]:
        """
        Call C{observer(count)} each time the kernel accepts C{count > 0}
        bytes of this connection's output (its send buffer drained that
        much, or an eager send went out).

        @return: The function that stops this observer.
        """
        observers = self._observers
        observers.append(observer)

        def stop() -> None:
            if observer in observers:
                observers.remove(observer)

        return stop

    def _left(self, count: int) -> None:
        self.bytesSent += count
        if self._observers:
            self._tell(count)

    def _tell(self, count: int) -> None:
        for each in self._observers:
            each(count)

    # The shadows.

    def write(self, data: bytes) -> None:
        """
        Stand-in for the connection's C{write}: if L{eager} and Twisted
        would have nothing to wait for, send at once; whatever the kernel
        does not take (all of it, if not eager) goes through Twisted's own
        C{write}.  Never raises for a socket error: Twisted's next send
        meets it and loses the connection as it would have.
        """
        # The test of _canSendNow and the send of _send, inline: this runs
        # once per reply, and each Python call is a measurable share of it.
        # Closing, aborting, startTLS and a paused producer are all rare:
        # one "or" chain tests them, after the common "nothing unsent".
        c: Any = self.connection
        if (
            self._eager
            and data.__class__ is bytes
            and data
            and c.connected
            and not c._tempDataLen
            and c.offset == len(c.dataBuffer)
            and not (
                c.disconnecting
                or c._writeDisconnecting
                or c._aborting
                or c.TLS
                or c.producerPaused
            )
            and (c.producer is None or c.streamingProducer)
        ):
            try:
                sent: int = self._socket.send(data)
            except OSError as e:
                sent = self._sendFailed(e)
            if sent:
                self.bytesSent += sent
                if self._observers:
                    self._tell(sent)
                if sent == len(data):
                    return
                data = data[sent:]
        self._shadow.write(data)
        maxUnsent = self.maxUnsent
        if (
            maxUnsent is not None
            and not self._above
            and c._tempDataLen + len(c.dataBuffer) - c.offset > maxUnsent
        ):
            self._checkAbove()

    def writeSequence(self, data: Any) -> None:
        """
        Stand-in for the connection's C{writeSequence}, as L{write}.
        """
        if (
            self._eager
            and data.__class__ in (list, tuple)
            and all(each.__class__ is bytes for each in data)
            and self._canSendNow()
        ):
            joined = b"".join(data)
            if joined:
                sent = self._send(joined)
                if sent < len(joined):
                    self._shadow.write(joined[sent:])
                    if self.maxUnsent is not None and not self._above:
                        self._checkAbove()
            return
        self._shadow.writeSequence(data)
        if self.maxUnsent is not None and not self._above:
            self._checkAbove()

    def _send(self, data: bytes) -> int:
        try:
            sent: int = self._socket.send(data)
        except OSError as e:
            return self._sendFailed(e)
        if sent:
            self._left(sent)
        return sent

    def _sendFailed(self, error: OSError) -> int:
        """
        An eager C{send} raised C{error}: nothing was sent.  A full buffer
        or an interrupted call is not an error (Twisted sends later);
        neither is C{ENOBUFS}, as in Twisted.  Any other error is left to
        Twisted: the data is buffered, and its next send meets the error.
        """
        if isinstance(error, BlockingIOError | InterruptedError):
            return 0
        if error.errno == ENOBUFS:  # as Twisted: nothing sent, try again later
            return 0
        # Stop reading first, so that the read side (whose error this send
        # just consumed) does not report a clean close instead of the lost
        # connection Twisted would report.
        connection: Any = self.connection
        connection.stopReading()
        return 0

    def _wroteSome(self, data: bytes) -> Any:
        """
        Stand-in for the connection's C{writeSomeData}: count what the
        kernel took.
        """
        result = self._writeSomeData(data)
        if result.__class__ is int and result > 0:
            self.bytesSent += result
            if self._observers:
                self._tell(result)
            if self._above and self.unsent() - result <= self.lowWater:
                self._below()
        return result

    def _lost(self, reason: Any) -> Any:
        """
        Stand-in for the connection's C{connectionLost}: detach afterwards.
        """
        try:
            return self._connectionLost(reason)
        finally:
            self.detach()

    def detach(self) -> None:
        """
        Stop everything: cancel the grace timer, forget observers, and let
        the connection's own methods show through again.
        """
        self._cancelGrace()
        self._observers.clear()
        self._eager = False
        self.maxUnsent = None
        own = self.connection.__dict__
        if own.get(_KEY) is self:
            del own[_KEY]
        for name in ("writeSomeData", "connectionLost"):
            own.pop(name, None)
        if self._shadow.engine is self:
            self._shadow.engine = None
            self._shadow.refresh()

    # The bound.

    def bound(
        self,
        maxUnsent: int,
        grace: float,
        clock: IReactorTime,
        onSlowReader: Callable[[], None] | None = None,
        lowWater: int | None = None,
    ) -> None:
        """
        Bound the unsent output: above C{maxUnsent} bytes, stop reading
        from the peer (C{pauseProducing}); at C{lowWater} bytes or fewer
        (default C{maxUnsent // 2}), read again.  If it has not come down
        to C{lowWater} C{grace} seconds after it went above, set
        L{closeReason} to C{"slow reader"} and call C{onSlowReader()}
        (default: abort the connection).

        Unsent output can exceed C{maxUnsent} by at most the one write
        that took it over.
        """
        if maxUnsent < 1:
            raise ValueError(f"'maxUnsent' must be >= 1: {maxUnsent!r}")
        if lowWater is None:
            lowWater = maxUnsent // 2
        if not 0 <= lowWater < maxUnsent:
            raise ValueError(
                f"'lowWater' must be in 0..{maxUnsent - 1} (below maxUnsent): "
                f"{lowWater!r}"
            )
        if grace < 0:
            raise ValueError(f"'grace' must be >= 0: {grace!r}")
        self.maxUnsent, self.lowWater = maxUnsent, lowWater
        self._grace, self._clock, self._onSlowReader = grace, clock, onSlowReader
        self._checkAbove()

    def _checkAbove(self) -> None:
        maxUnsent = self.maxUnsent
        if maxUnsent is None or self._above or self.unsent() <= maxUnsent:
            return
        self._above = True
        connection: Any = self.connection
        if connection.connected and not connection.disconnecting:
            connection.pauseProducing()
            self._paused = True
        self._graceCall = self._clock.callLater(self._grace, self._slow)

    def _below(self) -> None:
        self._above = False
        self._cancelGrace()
        if self._paused:
            self._paused = False
            connection: Any = self.connection
            connection.resumeProducing()

    def _cancelGrace(self) -> None:
        call, self._graceCall = self._graceCall, None
        if call is not None and call.active():
            call.cancel()

    def _slow(self) -> None:
        self._graceCall = None
        self.closeReason = "slow reader"
        _log.warn(
            "aborting {peer}: {unsent} bytes unsent, above {limit} for {grace} s",
            peer=peerText(self.connection),
            unsent=self.unsent(),
            limit=self.maxUnsent,
            grace=self._grace,
            reason="slow reader",
        )
        if self._onSlowReader is not None:
            self._onSlowReader()
        else:
            connection: Any = self.connection
            connection.abortConnection()
