"""
The server's own line framing: a replacement for
L{LineReceiver<twisted.protocols.basic.LineReceiver>} whose work
is linear in the bytes received, whatever the line limit.

L{LineReceiver<twisted.protocols.basic.LineReceiver>} appends every chunk to its buffer
(a copy of the whole
buffer) and splits the whole buffer again, so a long line sent in small
pieces costs time quadratic in its length (2.6 CPU seconds for one 1 MB
line in 100-byte pieces).  L{LineFraming} searches for the delimiter only
in the bytes just received and keeps an unfinished line in a C{bytearray},
so each received byte is searched once and copied at most twice.  A chunk
that holds whole lines (one C{ping}, say) is sliced without any buffer.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import Protocol

__all__ = ["LineFraming"]


class LineFraming(Protocol):
    """
    Split received bytes into lines ending in L{delimiter} and hand each,
    without its delimiter, to L{lineReceived}; a line longer than
    C{MAX_LENGTH} bytes goes to L{lineLengthExceeded} instead and no more
    lines are read from that connection.

    The names are L{LineReceiver<twisted.protocols.basic.LineReceiver>}'s (C{delimiter},
    C{MAX_LENGTH},
    C{lineReceived}, C{lineLengthExceeded}, C{sendLine}), so mixins written
    for it work unchanged; raw mode and C{pauseProducing} of the protocol
    are not offered (pause the transport instead).  Like
    L{LineReceiver<twisted.protocols.basic.LineReceiver>},
    no further line of a chunk is handled once the transport is closing.

    @ivar partialSince: C{clock.seconds()} (as given to C{framingClock})
        when the unfinished line now buffered began, or L{None} if there is
        none; lets a subclass close a line that never completes.
    @ivar framingWork: Bytes searched plus bytes copied on behalf of
        unfinished lines (chunks of whole lines are not counted): at most
        three times the bytes received, whatever their split.  Tests assert
        on it; nothing else reads it.
    """

    delimiter = b"\n"
    MAX_LENGTH = 16384
    partialSince: float | None = None
    framingWork = 0
    _partial: bytearray | None = None

    def framingNow(self) -> float:
        """
        The time an unfinished line starts at, for L{partialSince}.
        Override to use a clock; the default returns C{0.0}.
        """
        return 0.0

    def lineReceived(self, line: bytes) -> Any:
        """
        Called with each complete line, without its delimiter.
        """
        raise NotImplementedError

    def lineLengthExceeded(self, line: bytes) -> Any:
        """
        Called, with what was received of it, when a line is longer than
        C{MAX_LENGTH}; the default closes the connection.
        """
        transport: Any = self.transport
        return transport.loseConnection()

    def sendLine(self, line: bytes) -> Any:
        """
        Write C{line} and the delimiter.
        """
        transport: Any = self.transport
        return transport.write(line + self.delimiter)

    def dataReceived(self, data: bytes) -> Any:
        """
        Find the lines in C{data}; buffer an unfinished one.
        """
        if self._partial is None:
            # The hot path: a chunk that is exactly one whole line.
            delimiter = self.delimiter
            end = data.find(delimiter)
            if 0 <= end == len(data) - len(delimiter) and end <= self.MAX_LENGTH:
                return self.lineReceived(data[:end])
        return self._framingSplit(data)

    def _framingSplit(self, data: bytes) -> Any:
        delimiter = self.delimiter
        start = 0
        partial = self._partial
        if partial is not None:
            end = data.find(delimiter)
            if end < 0:
                partial += data
                self.framingWork += 2 * len(data)
                if len(partial) > self.MAX_LENGTH:
                    return self._exceeded()
                return None
            partial += data[:end]
            self.framingWork += 2 * end + len(partial)
            if len(partial) > self.MAX_LENGTH:
                return self._exceeded()
            self._partial = None
            self.partialSince = None
            why = self.lineReceived(bytes(partial))
            if why or self._framingStopped():
                return why
            start = end + len(delimiter)
        limit = self.MAX_LENGTH
        while True:
            end = data.find(delimiter, start)
            if end < 0:
                break
            if end - start > limit:
                self._partial = bytearray(data[start:end])
                return self._exceeded()
            why = self.lineReceived(data[start:end])
            if why or self._framingStopped():
                return why
            start = end + len(delimiter)
        rest = len(data) - start
        if rest:
            self._partial = bytearray(data[start:] if start else data)
            self.framingWork += 2 * rest
            self.partialSince = self.framingNow()
            if rest > limit:
                return self._exceeded()
        return None

    def _framingStopped(self) -> bool:
        transport: Any = self.transport
        return transport is None or bool(transport.disconnecting)

    def _exceeded(self) -> Any:
        partial = self._partial
        self._partial = None
        self.partialSince = None
        # What was received of the line: at most MAX_LENGTH plus one chunk.
        return self.lineLengthExceeded(bytes(partial or b""))

    def takePartialLine(self) -> bytes:
        """
        Remove and return the unfinished line (no delimiter yet), or C{b""}:
        for a protocol that handles a last line when the peer half-closes.
        """
        partial = self._partial
        self._partial = None
        self.partialSince = None
        return bytes(partial) if partial else b""

    # LineReceiver keeps its unfinished line in _buffer, and mixins written
    # for it (PingAnswerMixin.readConnectionLost) read and clear it there.
    @property
    def _buffer(self) -> bytes:
        partial = self._partial
        return bytes(partial) if partial else b""

    @_buffer.setter
    def _buffer(self, value: bytes) -> None:
        # partialSince is None exactly when no line is buffered: the
        # server's hot path relies on it.
        self._partial = bytearray(value) if value else None
        self.partialSince = self.framingNow() if value else None
