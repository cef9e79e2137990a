"""
Integration tests over real loopback sockets: C{twistd heartbeat}'s
service on a C{haproxy:} port, a test client playing the proxy (it sends
the PROXY header itself, so no HAProxy is needed).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from heartbeat_twisted._writepath import tcpConnectionUnder, writePathFor
from heartbeat_twisted.server import makeService
from heartbeat_twisted.server._proxylisten import ProxyHeaderFactory
from heartbeat_twisted.tap import Options

from ._peers import Peer, connectPeer


def serve(case: TestCase, *argv: str) -> Any:
    options = Options()
    options.parseOptions(["--port", "haproxy:tcp:0:interface=127.0.0.1", *argv])
    service: Any = makeService(options, reactor=reactor)  # type: ignore[arg-type]
    service.startService()
    case.addCleanup(service.stopService)
    return service


def header(source: str, port: int = 40000) -> bytes:
    return f"PROXY TCP4 {source} 127.0.0.1 {port} 6666\r\n".encode()


class ProxyServiceTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def test_clientAddress(self) -> Any:
        """
        The server's protocol sees the header's address and keeps the
        write path (eager sends, bounded unsent output) of the TCP
        connection under the wrapper; the per-address limit counts the
        header's address; a client that sends no header is closed and
        counted in the metrics.
        """
        service = serve(self, "--max-connections-per-ip", "1", "--limit-loopback")
        (port,) = service.ports
        self.assertIsInstance(port.factory, ProxyHeaderFactory)
        number = port.getHost().port
        first = yield connectPeer(number)
        self.addCleanup(first.transport.abortConnection)
        first.send(header("192.0.2.1") + b"ping a\n")
        yield first.expect(b"pong a\n")
        (protocol,) = service.factory.connections.connections
        self.assertEqual(
            protocol.transport.getPeer(), IPv4Address("TCP", "192.0.2.1", 40000)
        )
        path = writePathFor(protocol.transport)
        assert path is not None
        self.assertIs(path, writePathFor(tcpConnectionUnder(protocol.transport)))
        self.assertTrue(path.eager)
        self.assertIsNotNone(path.maxUnsent)

        second = yield connectPeer(number)
        second.send(header("192.0.2.1", 40001))
        yield second.whenLost(10, "the refusal")
        self.assertTrue(second.received.startswith(b"error too_many_connections"))
        third = yield connectPeer(number)
        self.addCleanup(third.transport.abortConnection)
        third.send(header("192.0.2.2") + b"ping c\n")
        yield third.expect(b"pong c\n")

        plain = yield connectPeer(number)
        plain.send(b"ping\n")
        yield plain.whenLost(10, "the close")
        self.assertEqual(plain.received, b"")
        values = service.metrics.values()
        self.assertEqual(
            values[
                'heartbeat_proxy_header_failures_total{reason="not a PROXY header"}'
            ],
            1,
        )
        self.assertEqual(values["heartbeat_connections_open"], 2)

    @inlineCallbacks
    def test_reusePort(self) -> Any:
        """
        C{--reuse-port} (as C{--workers} runs it) listens behind the header
        too.
        """
        service = serve(self, "--reuse-port")
        (port,) = service.ports
        self.assertIsInstance(port.factory, ProxyHeaderFactory)
        peer = yield connectPeer(port.getHost().port)
        self.addCleanup(peer.transport.abortConnection)
        peer.send(header("192.0.2.3") + b"ping\n")
        yield peer.expect(b"pong\n")
        (protocol,) = service.factory.connections.connections
        self.assertEqual(protocol.transport.getPeer().host, "192.0.2.3")


class ProxyTLSTests(TestCase):
    """
    C{haproxy:ssl:} keeps Twisted's order: TLS on the socket, the PROXY
    header first inside it.  The TLS handshake deadline is met (the
    handshake is done before the header can arrive) and the protocol sees
    the header's address.
    """

    timeout = 30

    @inlineCallbacks
    def test_tls(self) -> Any:
        from cryptography.hazmat.primitives import serialization
        from twisted.internet import endpoints

        from ._tls import selfSigned

        directory = Path(tempfile.mkdtemp(prefix="hbt-proxy-"))
        self.addCleanup(shutil.rmtree, directory, True)
        cert, key = selfSigned()
        certPath, keyPath = directory / "cert.pem", directory / "key.pem"
        certPath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keyPath.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        options = Options()
        options.parseOptions(
            [
                "--port",
                f"haproxy:ssl:0:interface=127.0.0.1:certKey={certPath}"
                f":privateKey={keyPath}",
                "--tls-handshake-timeout",
                "0.5",
            ]
        )
        service: Any = makeService(options, reactor=reactor)  # type: ignore[arg-type]
        service.startService()
        self.addCleanup(service.stopService)
        (port,) = service.ports
        client = endpoints.clientFromString(
            reactor, f"ssl:host=127.0.0.1:port={port.getHost().port}"
        )
        peer = yield endpoints.connectProtocol(client, Peer())
        self.addCleanup(peer.transport.loseConnection)
        peer.send(header("192.0.2.4") + b"ping t1\n")
        yield peer.expect(b"pong t1\n")
        (protocol,) = service.factory.connections.connections
        self.assertEqual(protocol.transport.getPeer().host, "192.0.2.4")
        # Past the handshake deadline: still open, still answering.
        yield task.deferLater(reactor, 0.7, lambda: None)
        peer.send(b"ping t2\n")
        received = yield peer.expect(b"pong t2\n")
        self.assertIn(b"pong t2\n", received)
