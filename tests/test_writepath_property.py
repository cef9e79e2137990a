"""
For random write sequences, the peer receives the same bytes, and the
connection closes the same way, with and without eager writes: Twisted's
own L{tcp.Connection} over a real loopback socket pair with small kernel
buffers, its reactor turns driven by hand.
"""

from __future__ import annotations

import socket
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import main, tcp
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted._writepath import writePathFor

from ._fakekernel import Recorder

sizes = st.integers(min_value=0, max_value=40000)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), sizes),
        st.tuples(st.just("writeSequence"), st.lists(sizes, max_size=4)),
        st.tuples(st.just("turn"), st.just(0)),
        st.tuples(st.just("read"), st.integers(min_value=1, max_value=70000)),
    ),
    max_size=30,
)


def socketPair(sendBuffer: int) -> tuple[socket.socket, socket.socket]:
    """
    C{(server, client)}: a connected loopback TCP pair, the server's send
    buffer and the client's receive buffer small.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sendBuffer)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sendBuffer)
    client.setblocking(False)
    return server, client


def readSome(client: socket.socket, limit: int) -> bytes:
    try:
        return client.recv(limit)
    except BlockingIOError:
        return b""


def run(eager: bool, ops: list[tuple[str, Any]], sendBuffer: int) -> tuple[bytes, Any]:
    """
    Play C{ops} on a connection; close it cleanly; return what the peer
    received and how the connection ended.
    """
    server, client = socketPair(sendBuffer)
    reactor = MemoryReactorClock()
    connection = tcp.Connection(server, Recorder(), reactor)  # type: ignore[arg-type]
    connection.connected = 1
    connection.protocol.makeConnection(connection)
    path = writePathFor(connection)
    assert path is not None
    path.eager = eager
    received = []
    index = 0

    def turn() -> Any:
        if connection in reactor.getWriters():
            return connection.doWrite()
        return None

    try:
        for op, arg in ops:
            if op == "write":
                connection.write(bytes([index % 251]) * arg)
                index += 1
            elif op == "writeSequence":
                connection.writeSequence(
                    [bytes([(index + n) % 251]) * size for n, size in enumerate(arg)]
                )
                index += len(arg)
            elif op == "turn":
                turn()
            else:
                received.append(readSome(client, arg))
        connection.loseConnection()
        why = None
        for _ in range(100000):
            why = turn()
            received.append(readSome(client, 1 << 20))
            if why is not None:
                break
        connection.connectionLost(Failure(why))
        client.setblocking(True)
        client.settimeout(5)
        while True:
            data = client.recv(1 << 20)
            if not data:
                break
            received.append(data)
        return b"".join(received), why
    finally:
        client.close()
        server.close()


def expected(ops: list[tuple[str, Any]]) -> bytes:
    out = []
    index = 0
    for op, arg in ops:
        if op == "write":
            out.append(bytes([index % 251]) * arg)
            index += 1
        elif op == "writeSequence":
            out.extend(bytes([(index + n) % 251]) * size for n, size in enumerate(arg))
            index += len(arg)
    return b"".join(out)


class SameBytesTests(SynchronousTestCase):
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(ops=operations, sendBuffer=st.sampled_from([2048, 8192, 65536]))
    def test_sameBytesAndClose(
        self, ops: list[tuple[str, Any]], sendBuffer: int
    ) -> None:
        want = expected(ops)
        plain, plainEnd = run(False, ops, sendBuffer)
        eager, eagerEnd = run(True, ops, sendBuffer)
        self.assertEqual(len(plain), len(want))
        self.assertEqual(plain, want)
        self.assertEqual(eager, want)
        self.assertIs(plainEnd, main.CONNECTION_DONE)
        self.assertIs(eagerEnd, main.CONNECTION_DONE)
