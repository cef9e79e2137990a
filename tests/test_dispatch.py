"""
Read dispatch without the legacy logging context
(L{heartbeat_twisted.server._dispatch}): on epoll and poll, reads of the
given protocols skip it, everything else keeps Twisted's path, and errors,
closes and their log lines are Twisted's; on select and asyncio nothing
changes.  Each test drives a reactor of its own over real loopback
sockets, a bounded number of iterations.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet.protocol import Factory, Protocol
from twisted.internet.selectreactor import SelectReactor
from twisted.python import context, log
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from heartbeat_twisted.server._dispatch import _reactorClasses, dispatchDirectly
from heartbeat_twisted.server._proxylisten import ProxyHeaderFactory
from heartbeat_twisted.server._service import dispatchedProtocols


def systemNow() -> str:
    """
    The legacy logging context's C{system}: what a C{log.msg} made now
    would be tagged with.
    """
    system: str = context.get(log.ILogContext)["system"]
    return system


class Recording(Protocol):
    """
    Answers C{ping} chunks with C{pong}, records the logging context of
    each read and how the connection ended; C{boom} raises.
    """

    def connectionMade(self) -> None:
        self.systems: list[str] = []
        self.ended: list[Any] = []
        self.halfClosed = False

    def dataReceived(self, data: bytes) -> None:
        self.systems.append(systemNow())
        if data == b"boom":
            raise RuntimeError("boom")
        self.transport.write(b"pong\n" * (20000 if data == b"bye" else 1))  # type: ignore[union-attr]
        if data == b"bye":
            self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.ended.append(reason.type)


class Other(Recording):
    """
    Not given to L{dispatchDirectly}: keeps Twisted's path.
    """


class DirectReadsMixin:
    """
    The tests, for the reactor class C{reactorName} names.
    """

    reactorName = ""

    def reactor(self) -> Any:
        classes = {name: cls for cls, name in _reactorClasses().items()}
        if self.reactorName not in classes:
            raise SkipTest(f"no {self.reactorName} reactor here")
        reactor = classes[self.reactorName]()
        case: Any = self
        case.addCleanup(self.closeReactor, reactor)
        return reactor

    def closeReactor(self, reactor: Any) -> None:
        reactor.iterate(0)  # the stopped ports close their sockets
        reactor.disconnectAll()
        reactor.iterate(0)
        waker = getattr(reactor, "waker", None)
        if waker is not None:
            waker.connectionLost(None)
        close = getattr(reactor._poller, "close", None)  # epoll's; poll has none
        if close is not None:
            close()

    def serve(
        self, reactor: Any, protocol: type[Protocol]
    ) -> tuple[socket.socket, Any]:
        """
        Listen on C{reactor}, connect a blocking client; the client socket
        and the server's protocol once accepted.
        """
        built: list[Any] = []

        def build() -> Protocol:
            instance = protocol()
            built.append(instance)
            return instance

        port = reactor.listenTCP(0, Factory.forProtocol(build), interface="127.0.0.1")
        case: Any = self
        case.addCleanup(port.stopListening)
        client = socket.create_connection(("127.0.0.1", port.getHost().port), 5)
        case.addCleanup(client.close)
        until(reactor, lambda: bool(built))
        return client, built[0]

    def test_installed(self) -> None:
        """
        On epoll and poll the reactor's iteration is replaced; a second
        call changes nothing.
        """
        reactor = self.reactor()
        case: Any = self
        case.assertEqual(dispatchDirectly(reactor, [Recording]), self.reactorName)
        case.assertIn("doIteration", vars(reactor))
        case.assertIsNone(dispatchDirectly(reactor, [Recording]))

    def test_readsWithoutContext(self) -> None:
        """
        A read of a given protocol runs without the logging context and is
        answered; another protocol's read keeps it.
        """
        reactor = self.reactor()
        dispatchDirectly(reactor, [Recording])
        case: Any = self
        for protocol, direct in [(Recording, True), (Other, False)]:
            client, server = self.serve(reactor, protocol)
            for _ in range(3):
                client.sendall(b"ping")
                case.assertEqual(receive(reactor, client, 5), b"pong\n")
            expected = "-" if direct else server.transport.logstr
            case.assertEqual(server.systems, [expected] * 3)

    def test_proxiedReadsWithoutContext(self) -> None:
        """
        Behind a PROXY header (a C{haproxy:} port of C{twistd heartbeat}),
        the server's reads skip the context too, and its protocol sees the
        client's address from the header.
        """
        reactor = self.reactor()
        dispatchDirectly(reactor, dispatchedProtocols(Recording))
        built: list[Any] = []

        def build() -> Protocol:
            built.append(Recording())
            return built[-1]

        factory = ProxyHeaderFactory(Factory.forProtocol(build), clock=reactor)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        case: Any = self
        case.addCleanup(port.stopListening)
        client = socket.create_connection(("127.0.0.1", port.getHost().port), 5)
        case.addCleanup(client.close)
        client.sendall(b"PROXY TCP4 192.0.2.7 192.0.2.1 40000 6666\r\nping")
        case.assertEqual(receive(reactor, client, 5), b"pong\n")
        client.sendall(b"ping")
        case.assertEqual(receive(reactor, client, 5), b"pong\n")
        (server,) = built
        case.assertEqual(server.transport.getPeer().host, "192.0.2.7")
        # The first ping came with the header, in the wrapper's own read.
        case.assertEqual(server.systems, ["-", "-"])

    def test_peerCloses(self) -> None:
        """
        A peer's clean close is a clean close; a reset is a lost
        connection, as on Twisted's own path.
        """
        from twisted.internet.error import ConnectionDone, ConnectionLost

        reactor = self.reactor()
        dispatchDirectly(reactor, [Recording])
        case: Any = self
        client, server = self.serve(reactor, Recording)
        client.close()
        until(reactor, lambda: bool(server.ended))
        case.assertEqual(server.ended, [ConnectionDone])
        client, server = self.serve(reactor, Recording)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        client.close()
        until(reactor, lambda: bool(server.ended))
        case.assertEqual(server.ended, [ConnectionLost])

    def test_closeAfterWrites(self) -> None:
        """
        C{loseConnection} right after writing more than one send takes
        delivers everything, then closes cleanly (Twisted's C{doWrite}
        finishes the close).
        """
        from twisted.internet.error import ConnectionDone

        reactor = self.reactor()
        dispatchDirectly(reactor, [Recording])
        case: Any = self
        client, server = self.serve(reactor, Recording)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.sendall(b"bye")
        case.assertEqual(receive(reactor, client, 100000), b"pong\n" * 20000)
        until(reactor, lambda: bool(server.ended))
        case.assertEqual(server.ended, [ConnectionDone])
        case.assertEqual(receive(reactor, client, 1, eof=True), b"")

    def test_errorInRead(self) -> None:
        """
        An exception in C{dataReceived} is logged with the connection's log
        prefix and loses the connection, as Twisted's own path does.
        """
        reactor = self.reactor()
        dispatchDirectly(reactor, [Recording])
        events: list[dict[str, Any]] = []
        log.addObserver(events.append)
        case: Any = self
        case.addCleanup(log.removeObserver, events.append)
        client, server = self.serve(reactor, Recording)
        client.sendall(b"boom")
        until(reactor, lambda: bool(server.ended))
        case.assertEqual(server.ended, [RuntimeError])
        errors = [e for e in events if e.get("isError")]
        case.assertEqual(len(errors), 1)
        case.assertEqual(errors[0]["system"], server.transport.logstr)
        case.assertEqual(len(case.flushLoggedErrors(RuntimeError)), 1)


def until(reactor: Any, done: Callable[[], bool], turns: int = 500) -> None:
    """
    Iterate C{reactor} until C{done()}, at most C{turns} times (10 ms
    each at most).
    """
    for _ in range(turns):
        if done():
            return
        reactor.iterate(0.01)
    raise AssertionError("condition not met within the bounded iterations")


def receive(reactor: Any, client: socket.socket, size: int, eof: bool = False) -> bytes:
    """
    Iterate C{reactor} until C{client} received C{size} bytes (or, with
    C{eof}, the end of the stream).
    """
    client.setblocking(False)
    got = b""

    def read() -> bool:
        nonlocal got
        try:
            chunk = client.recv(size - len(got))
        except BlockingIOError:
            return False
        if eof and not chunk:
            return True
        got += chunk
        return len(got) >= size

    until(reactor, read)
    return got


class EPollTests(DirectReadsMixin, SynchronousTestCase):
    reactorName = "epoll"


class PollTests(DirectReadsMixin, SynchronousTestCase):
    reactorName = "poll"


class OtherReactorTests(SynchronousTestCase):
    def test_selectAndAsyncioUnchanged(self) -> None:
        """
        The select and asyncio reactors, and a subclass of epoll's or
        poll's that has its own C{doPoll}, keep Twisted's dispatch.
        """
        select = SelectReactor()
        self.addCleanup(select.waker.connectionLost, None)
        self.assertIsNone(dispatchDirectly(select, [Recording]))
        self.assertNotIn("doIteration", vars(select))
        from twisted.internet.asyncioreactor import AsyncioSelectorReactor

        loop = asyncio.new_event_loop()
        self.addCleanup(loop.close)
        running = AsyncioSelectorReactor(loop)
        self.assertIsNone(dispatchDirectly(running, [Recording]))
        self.assertNotIn("doIteration", vars(running))
        for cls in _reactorClasses():

            class Own(cls):  # type: ignore[misc, valid-type]
                def doPoll(self, timeout: float | None) -> None:
                    cls.doPoll(self, timeout)

                doIteration = doPoll

            own = Own()
            self.assertIsNone(dispatchDirectly(own, [Recording]))
            own.waker.connectionLost(None)
            getattr(own._poller, "close", lambda: None)()
