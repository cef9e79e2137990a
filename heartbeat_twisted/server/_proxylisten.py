"""
Listening behind a proxy that speaks the PROXY protocol (HAProxy's
C{send-proxy} / C{send-proxy-v2}): the wrapped factory builds its protocol
only once the header has been read, with the client's own address, so
everything a factory or protocol decides on the peer (limits per address,
the connect line) sees the client and not the proxy.

Twisted's own C{haproxy:} endpoint builds and connects the protocol before
the header arrives; C{twistd heartbeat} uses this module for its
C{haproxy:} endpoint strings instead (L{proxiedDescription}).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHandshakeListener,
    ILoggingContext,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import directlyProvides, implementer, providedBy

from .._time import resolveClock
from ._protocol import peerName
from ._proxyheader import (
    DEFAULT_MAX_HEADER_SIZE,
    HeaderParser,
    ProxyHeader,
    ProxyHeaderError,
)

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "PROXY_PREFIX",
    "ProxyHeaderEndpoint",
    "ProxyHeaderFactory",
    "proxiedDescription",
]

#: Seconds a connection has to deliver its PROXY header (HAProxy sends it
#: at once, with the connection).
DEFAULT_HEADER_TIMEOUT = 5.0

#: The endpoint-string prefix of a PROXY-protocol port.
PROXY_PREFIX = "haproxy:"


def proxiedDescription(description: str) -> str | None:
    """
    The endpoint string under a C{haproxy:} one (C{"haproxy:tcp:6666"}
    gives C{"tcp:6666"}), or L{None} if C{description} is not one.
    """
    if description.startswith(PROXY_PREFIX):
        return description[len(PROXY_PREFIX) :]
    return None


@implementer(IProtocol, IHandshakeListener)
class HeaderFirst(Protocol):
    """
    One connection behind the proxy: the protocol of the real transport
    until the header is read, then the transport of the wrapped protocol
    (which sees the header's addresses).  Every write, close and producer
    call passes straight to the real transport, found as C{.transport}
    (the write path walks that chain).
    """

    factory: ProxyHeaderFactory
    wrappedProtocol: IProtocol | None = None
    _timer: IDelayedCall | None = None
    _handshake = False
    _closing = False

    def __init__(self, parser: HeaderParser) -> None:
        self._parser: HeaderParser | None = parser
        self._header: ProxyHeader | None = None

    def logPrefix(self) -> str:
        wrapped = self.wrappedProtocol
        if ILoggingContext.providedBy(wrapped):
            prefix: str = wrapped.logPrefix()
            return prefix
        return f"{type(self.factory.wrappedFactory).__name__} (PROXY)"

    # The protocol side, facing the real transport.

    def makeConnection(self, transport: Any) -> None:
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)  # type: ignore[no-untyped-call]

    def connectionMade(self) -> None:
        factory = self.factory
        self._timer = factory.clock.callLater(factory.headerTimeout, self._timedOut)

    def dataReceived(self, data: bytes) -> None:
        wrapped = self.wrappedProtocol
        if wrapped is not None:
            wrapped.dataReceived(data)
            return
        parser = self._parser
        if parser is None:
            return
        try:
            parsed = parser.feed(data)
        except ProxyHeaderError as e:
            self._fail(e.reason, str(e))
            return
        if parsed is None:
            return
        self._parser = None
        self._stopTimer()
        header, rest = parsed
        self._header = header
        protocol = self.factory.wrappedFactory.buildProtocol(self.getPeer())
        if protocol is None:
            self._closing = True
            self._real().abortConnection()
            return
        self.wrappedProtocol = protocol
        protocol.makeConnection(self)  # type: ignore[arg-type]
        if self._handshake and IHandshakeListener.providedBy(protocol):
            protocol.handshakeCompleted()
        if rest and not self._closing:
            protocol.dataReceived(rest)

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake under this connection (C{haproxy:ssl:}) is done:
        tell the wrapped protocol, now or once it is connected.
        """
        self._handshake = True
        wrapped = self.wrappedProtocol
        if wrapped is not None and IHandshakeListener.providedBy(wrapped):
            wrapped.handshakeCompleted()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._stopTimer()
        wrapped = self.wrappedProtocol
        if wrapped is not None:
            wrapped.connectionLost(reason)
        elif self._parser is not None:
            self._parser = None
            self.factory.failed("closed before header", None, self)

    def _timedOut(self) -> None:
        self._timer = None
        self._fail("header timeout", "no complete header")

    def _fail(self, reason: str, detail: str) -> None:
        self._parser = None
        self._stopTimer()
        self._closing = True
        self.factory.failed(reason, detail, self)
        self._real().abortConnection()

    def _stopTimer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    # The transport side, facing the wrapped protocol.

    def _real(self) -> Any:
        return self.transport

    def getPeer(self) -> IAddress:
        """
        The client's address from the header; the proxy's own for a LOCAL
        or C{UNKNOWN} header.
        """
        header = self._header
        if header is not None and header.source is not None:
            return header.source
        peer: IAddress = self._real().getPeer()
        return peer

    def getHost(self) -> IAddress:
        """
        The address the client connected to, from the header; this end's
        own for a LOCAL or C{UNKNOWN} header.
        """
        header = self._header
        if header is not None and header.destination is not None:
            return header.destination
        host: IAddress = self._real().getHost()
        return host

    def write(self, data: bytes) -> None:
        self._real().write(data)

    def writeSequence(self, data: Any) -> None:
        self._real().writeSequence(data)

    def loseConnection(self) -> None:
        self._closing = True
        self._real().loseConnection()

    def abortConnection(self) -> None:
        self._closing = True
        self._real().abortConnection()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._real().registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._real().unregisterProducer()

    def pauseProducing(self) -> None:
        self._real().pauseProducing()

    def resumeProducing(self) -> None:
        self._real().resumeProducing()

    def stopProducing(self) -> None:
        self._real().stopProducing()

    def __getattr__(self, name: str) -> Any:
        # The rest of the transport's interface (getHandle, setTcpNoDelay,
        # ...), as twisted.protocols.policies.ProtocolWrapper passes it on.
        if name.startswith("__") or "transport" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["transport"], name)


@implementer(IProtocolFactory, ILoggingContext)
class ProxyHeaderFactory(Factory):
    """
    Wraps a factory for a port behind a PROXY-protocol proxy: each
    connection is held until its header is read (within C{headerTimeout}
    seconds and C{maxHeaderSize} bytes), then the wrapped factory's
    C{buildProtocol} gets the client's address (L{None} closes the
    connection at once) and the protocol a transport whose C{getPeer()}
    and C{getHost()} are the header's addresses (the proxy's own for a
    LOCAL header, such as a health check's).  Bytes after the header reach
    the protocol as its first data.

    A connection whose header is bad, too long or late is aborted, counted
    in C{failures} by reason, and logged in one line if C{mayLog()}
    allows it.

    @ivar wrappedFactory: The factory of the protocols behind the header.
    @ivar failures: Connections closed without a good header, by reason:
        the parser's (C{"not a PROXY header"}, C{"header too long"},
        C{"bad v1 header"}, C{"bad v2 header"}), C{"header timeout"}, and
        C{"closed before header"} (counted, not logged: a peer that left
        early, such as a plain TCP health check).
    """

    _log = Logger()

    def __init__(
        self,
        wrappedFactory: IProtocolFactory,
        clock: IReactorTime | None = None,
        headerTimeout: float = DEFAULT_HEADER_TIMEOUT,
        maxHeaderSize: int = DEFAULT_MAX_HEADER_SIZE,
        mayLog: Callable[[], bool] | None = None,
        failures: Counter[str] | None = None,
    ) -> None:
        """
        @param clock: Runs the header timeouts; the global reactor if
            L{None}.
        @param headerTimeout: Seconds from accept to a complete header;
            > 0.
        @param maxHeaderSize: The longest v2 header accepted, in bytes
            (v1 headers are at most 107 by the specification).
        @param mayLog: Asked before each failure's log line (a log
            budget); always yes if L{None}.
        @param failures: The counter to count failures in (shared by
            several ports); a new one if L{None}.
        """
        if not headerTimeout > 0:
            raise ValueError(f"'headerTimeout' must be > 0: {headerTimeout!r}")
        HeaderParser(maxHeaderSize)  # validates the bound
        self.wrappedFactory = wrappedFactory
        self.clock: Any = resolveClock(clock)
        self.headerTimeout = headerTimeout
        self.maxHeaderSize = maxHeaderSize
        self._mayLog = mayLog
        self.failures: Counter[str] = failures if failures is not None else Counter()

    def logPrefix(self) -> str:
        """
        The wrapped factory's log prefix, marked C{(PROXY)}.
        """
        wrapped = self.wrappedFactory
        if ILoggingContext.providedBy(wrapped):
            prefix = wrapped.logPrefix()
        else:
            prefix = type(wrapped).__name__
        return f"{prefix} (PROXY)"

    def doStart(self) -> None:
        self.wrappedFactory.doStart()

    def doStop(self) -> None:
        self.wrappedFactory.doStop()

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        protocol = HeaderFirst(HeaderParser(self.maxHeaderSize))
        protocol.factory = self
        return protocol

    def failed(self, reason: str, detail: str | None, connection: Any) -> None:
        """
        Count (and, with a detail, log) one connection closed without a
        good header.
        """
        self.failures[reason] += 1
        if detail is None:
            return
        if self._mayLog is None or self._mayLog():
            self._log.warn(
                "closed {peer}: PROXY {reason} ({detail})",
                peer=peerName(connection.transport.getPeer()),
                reason=reason,
                detail=detail,
            )


@implementer(IStreamServerEndpoint)
class ProxyHeaderEndpoint:
    """
    A server endpoint that listens on C{endpoint} with every connection
    behind L{ProxyHeaderFactory} (the options are its own).
    """

    def __init__(self, endpoint: IStreamServerEndpoint, **options: Any) -> None:
        self._endpoint = endpoint
        self._options = options

    def listen(self, protocolFactory: IProtocolFactory) -> Any:
        """
        Listen with C{protocolFactory} behind the PROXY header.
        """
        return self._endpoint.listen(
            ProxyHeaderFactory(protocolFactory, **self._options)
        )
