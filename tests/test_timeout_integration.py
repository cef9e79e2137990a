"""
L{heartbeat_twisted.TimeoutMixin} on real loopback connections: a timed-out
TLS connection whose peer is silent is gone after a bounded grace; a
reactor stall does not time out a busy connection.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from twisted.internet import endpoints, reactor
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from heartbeat_twisted import TimeoutMixin

from ._peers import Peer, connectPeer
from ._tls import tlsOptions
from ._waiting import Waitable

# Seconds without data after the first byte, and the close grace: short, so
# the test is quick.
TIMEOUT = 0.2
GRACE = 0.3
# How long past TIMEOUT + GRACE the test waits for the loss before failing.
SLACK = 5.0


@implementer(IPushProducer)
class QuietProducer:
    """
    A streaming producer with nothing to send.
    """

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class TimedServer(TimeoutMixin, Protocol):
    """
    Times out C{TIMEOUT} seconds after its last data, with Twisted's
    default reaction (close); optionally with a producer registered.
    """

    timeoutCloseGrace = GRACE
    factory: TimedFactory

    def connectionMade(self) -> None:
        # The TCP socket under the TLS layer, kept to check it is closed.
        self.socket = self.transport.transport.getHandle()  # type: ignore[union-attr]
        if self.factory.withProducer:
            self.transport.registerProducer(QuietProducer(), True)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        if self.timeOut is None:
            self.setTimeout(TIMEOUT)
            self.factory.received.callback(self)
        self.resetTimeout()

    def connectionLost(self, reason: Failure) -> None:
        self.factory.reason = reason
        self.factory.lost.callback(None)


class TimedFactory(Factory):
    protocol = TimedServer

    def __init__(self, withProducer: bool) -> None:
        self.withProducer = withProducer
        self.received: Deferred[TimedServer] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None


class Greeter(Peer):
    """
    Sends one line, then stays connected.
    """

    def connectionMade(self) -> None:
        super().connectionMade()
        self.send(b"hello\n")


class TLSTimeoutTests(TestCase):
    """
    After C{timeoutConnection} over TLS, a peer that stays silent and does
    not read cannot keep the connection open: it is aborted after
    C{timeoutCloseGrace}, with or without a registered producer.  With
    Twisted's own mixin it stays open for as long as the peer does.
    """

    timeout = 20

    @inlineCallbacks
    def silentPeer(self, withProducer: bool) -> Any:
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        serverOptions, clientOptions = tlsOptions()
        factory = TimedFactory(withProducer)
        port = yield endpoints.SSL4ServerEndpoint(
            reactor, 0, serverOptions, interface="127.0.0.1"
        ).listen(factory)
        self.addCleanup(port.stopListening)
        host = port.getHost()
        client = Greeter()
        yield endpoints.connectProtocol(
            endpoints.SSL4ClientEndpoint(reactor, host.host, host.port, clientOptions),
            client,
        )

        def closeClient() -> Deferred[Any]:
            client.transport.abortConnection()  # type: ignore[union-attr]
            return client.whenLost()

        self.addCleanup(closeClient)
        server = yield factory.received
        # From now on the client neither sends nor reads: the server's TLS
        # close_notify is never answered.
        client.transport.transport.pauseProducing()  # type: ignore[union-attr]
        yield factory.lost.addTimeout(TIMEOUT + GRACE + SLACK, reactor)
        assert factory.reason is not None
        # TLS reports an abort as a non-clean loss.
        self.assertTrue(factory.reason.check(ConnectionLost), factory.reason)
        self.assertEqual(
            [e["reason"] for e in events if e.get("grace") == GRACE], ["timeout"]
        )
        self.assertEqual(server.socket.fileno(), -1, "the descriptor is closed")
        self.assertIsNone(client.reason, "the client kept its connection open")

    def test_silentPeer(self) -> Any:
        """
        Without a producer.
        """
        return self.silentPeer(withProducer=False)

    def test_silentPeerWithProducer(self) -> Any:
        """
        With a streaming producer registered (TLS then does not even start
        its shutdown while the producer is registered).
        """
        return self.silentPeer(withProducer=True)


class StallServer(TimeoutMixin, Protocol):
    """
    Times out after C{STALL_TIMEOUT} s without data; the line C{stall}
    blocks the whole reactor for C{STALL} s inside C{dataReceived} (a
    handler that blocks), after which due timers run before the next poll.
    """

    factory: StallFactory

    def connectionMade(self) -> None:
        self.received = 0
        self.lost = False
        self.setTimeout(STALL_TIMEOUT)
        self.factory.made.append(self)

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        if data == b"stall":
            self.setTimeout(None)
            time.sleep(STALL)  # the stall itself, not a wait for something
            self.factory.stalled.callback(None)
            return
        self.received += len(data)
        self.factory.changed()

    def connectionLost(self, reason: Failure) -> None:
        self.lost = True
        self.factory.changed()


class StallFactory(Factory, Waitable):
    protocol = StallServer

    def __init__(self) -> None:
        Waitable.__init__(self)
        self.made: list[StallServer] = []
        self.stalled: Deferred[None] = Deferred()


STALL_TIMEOUT = 1.0
STALL = 1.5


def sendEvery(
    port: int, interval: float, stop: threading.Event, limit: float
) -> threading.Thread:
    """
    A client in a thread of its own (it keeps sending while the reactor's
    thread is blocked): one byte every C{interval} s until C{stop} is set,
    for at most C{limit} s.
    """
    sock = socket.create_connection(("127.0.0.1", port))

    def run() -> None:
        deadline = time.monotonic() + limit
        with sock:
            while not stop.is_set() and time.monotonic() < deadline:
                sock.sendall(b".")
                stop.wait(interval)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


class StallTests(TestCase):
    """
    A reactor stall longer than the timeout does not time out a connection
    whose data arrived during the stall; a silent one still times out.
    """

    timeout = 20

    @inlineCallbacks
    def test_stall(self) -> Any:
        """
        C{setTimeout(1)}, a client sending every 0.1 s, another handler
        blocking the reactor for 1.5 s: the busy connection survives, the
        silent one times out.
        """
        factory = StallFactory()
        port = yield endpoints.TCP4ServerEndpoint(
            reactor, 0, interface="127.0.0.1"
        ).listen(factory)
        self.addCleanup(port.stopListening)
        portNumber = port.getHost().port
        silent = yield connectPeer(portNumber)
        staller = yield connectPeer(portNumber)
        stop = threading.Event()
        busyThread = sendEvery(portNumber, 0.1, stop, limit=10)

        def cleanup() -> Deferred[Any]:
            stop.set()
            busyThread.join(5)
            for peer in (silent, staller):
                peer.transport.abortConnection()  # type: ignore[union-attr]
            return DeferredList([silent.whenLost(), staller.whenLost()])

        self.addCleanup(cleanup)
        yield factory.waitUntil(lambda: len(factory.made) == 3, 5, "3 connections")
        silentServer, stallerServer, busyServer = factory.made
        # A few bytes through, then the stall.
        yield factory.waitUntil(lambda: busyServer.received >= 3, 5, "busy data")
        staller.send(b"stall")
        yield factory.stalled
        before = busyServer.received
        yield factory.waitUntil(lambda: silentServer.lost, 5, "the silent timeout")
        yield factory.waitUntil(
            lambda: busyServer.lost or busyServer.received >= before + 5,
            5,
            "busy data after the stall",
        )
        self.assertFalse(busyServer.lost, "the busy connection was timed out")
        self.assertTrue(silentServer.lost)
        self.assertFalse(stallerServer.lost)
