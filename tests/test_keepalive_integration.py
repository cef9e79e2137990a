"""
Integration tests for OS keepalive: real loopback connections (TCP over IPv4
and IPv6, TLS, a UNIX socket) through the real reactor, each checked with
C{getsockopt} on the kernel's socket.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import endpoints, reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from heartbeat_twisted import (
    HeartbeatConfig,
    HeartbeatFactoryMixin,
    HeartbeatMixin,
    KeepAliveConfig,
    enableKeepAlive,
)
from heartbeat_twisted._keepalive import currentPlatform

from ._peers import Peer
from ._tls import tlsOptions

SERVER = KeepAliveConfig(idle=7, interval=3, count=4, userTimeout=9000)
CLIENT = KeepAliveConfig(idle=11, interval=5, count=2)


class Echo(HeartbeatMixin, Protocol):
    """
    Echoes; tells the factory when it is connected and when it is gone.
    """

    def connectionMade(self) -> None:
        self.factory.made.callback(self)

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)

    def connectionLost(self, reason: Failure) -> None:
        self.factory.lost.callback(None)


class EchoFactory(HeartbeatFactoryMixin, Factory):
    protocol = Echo

    def __init__(self) -> None:
        super().__init__(
            heartbeatConfig=HeartbeatConfig(idle=60), keepAliveConfig=SERVER
        )
        self.made: Deferred[Echo] = Deferred()
        self.lost: Deferred[None] = Deferred()


class Client(Peer):
    """
    A raw client that turns keepalive on for its own side and sends
    C{hello} (through TLS, when there is TLS).
    """

    def connectionMade(self) -> None:
        super().connectionMade()
        self.keepAlive = enableKeepAlive(self.transport, CLIENT)
        self.send(b"hello")


def kernelSettings(transport: Any) -> dict[str, int]:
    """
    The keepalive settings of the TCP socket under C{transport} (or of the
    socket C{transport}), asked of the kernel directly.
    """
    if isinstance(transport, socket.socket):
        sock = transport
    else:
        while not isinstance(
            getattr(transport, "getHandle", lambda: None)(), socket.socket
        ):
            transport = transport.transport
        sock = transport.getHandle()
    platform = currentPlatform()
    settings = {
        field: sock.getsockopt(platform.ipprotoTCP, option)
        for field, option in platform.options.items()
    }
    settings["enabled"] = sock.getsockopt(platform.solSocket, platform.soKeepAlive)
    return settings


def expected(config: KeepAliveConfig) -> dict[str, int]:
    """
    What L{kernelSettings} should find for C{config} on this platform.
    """
    platform = currentPlatform()
    wanted = {field: getattr(config, field) or 0 for field in platform.options}
    return {**wanted, "enabled": 1}


class StartTLSServer(Protocol):
    """
    Plain text until the line C{STARTTLS} (answered C{OK} in plain text),
    then TLS; on the first TLS bytes it turns keepalive on and echoes.
    """

    factory: StartTLSFactory
    tls = False
    result: Any = None

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        if not self.tls:
            if data == b"STARTTLS\n":
                self.tls = True
                self.transport.write(b"OK\n")
                self.transport.startTLS(self.factory.options)  # type: ignore[attr-defined]
            return
        if self.result is None:
            self.result = enableKeepAlive(self.transport, SERVER)
            self.factory.ready.callback(self)
        self.transport.write(data)


class StartTLSFactory(Factory):
    protocol = StartTLSServer

    def __init__(self, options: Any) -> None:
        self.options = options
        self.ready: Deferred[StartTLSServer] = Deferred()


class StartTLSClient(Peer):
    """
    Asks for STARTTLS, switches to TLS on C{OK}, then turns keepalive on
    for its own side and sends C{hello}.
    """

    def __init__(self, options: Any) -> None:
        super().__init__()
        self.options = options
        self.tls = False

    def connectionMade(self) -> None:
        super().connectionMade()
        self.send(b"STARTTLS\n")

    def dataReceived(self, data: bytes) -> None:
        if not self.tls and data == b"OK\n":
            self.tls = True
            self.transport.startTLS(self.options)  # type: ignore[union-attr]
            self.keepAlive = enableKeepAlive(self.transport, CLIENT)
            self.send(b"hello")
            return
        super().dataReceived(data)


class KeepAliveLoopbackTests(TestCase):
    """
    The factory's keepalive reaches the kernel on real connections, and
    L{enableKeepAlive} works on the client side too.
    """

    timeout = 20

    @inlineCallbacks
    def connect(self, server: Any, client: Any) -> Any:
        """
        Listen on C{server}, connect with C{client}, wait for the echo;
        return C{(server protocol, client protocol)}.  Cleanup closes both
        and stops listening.
        """
        factory = EchoFactory()
        port = yield server.listen(factory)
        self.addCleanup(port.stopListening)
        protocol = Client()
        endpoint = client(port.getHost())
        yield endpoints.connectProtocol(endpoint, protocol)

        def close() -> Deferred[Any]:
            protocol.transport.loseConnection()
            return protocol.whenLost().addCallback(lambda _: factory.lost)

        self.addCleanup(close)
        accepted = yield factory.made
        echoed = yield protocol.expect(b"hello")
        self.assertEqual(echoed, b"hello")
        return accepted, protocol

    def checkBothSides(self, accepted: Echo, client: Client) -> None:
        self.assertTrue(accepted.keepAliveResult.applicable)
        self.assertEqual(
            accepted.keepAliveResult.settings(),
            {k: v for k, v in expected(SERVER).items() if k != "enabled"},
        )
        self.assertEqual(kernelSettings(accepted.transport), expected(SERVER))
        self.assertEqual(
            accepted.keepAliveResult.reportsTimeout,
            currentPlatform().tcpInfo is not None,
        )
        self.assertTrue(client.keepAlive.enabled)
        self.assertEqual(kernelSettings(client.transport), expected(CLIENT))
        self.assertEqual(client.keepAlive.count, CLIENT.count)

    @inlineCallbacks
    def test_ipv4(self) -> Any:
        """
        Over IPv4, the accepted connection has the factory's settings and
        the client's has its own, in the kernel.
        """
        accepted, client = yield self.connect(
            endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
            lambda host: endpoints.TCP4ClientEndpoint(reactor, host.host, host.port),
        )
        self.checkBothSides(accepted, client)

    @inlineCallbacks
    def test_ipv6(self) -> Any:
        """
        Over IPv6 likewise.
        """
        try:
            probe = socket.socket(socket.AF_INET6)
            probe.bind(("::1", 0))
            probe.close()
        except OSError as e:
            raise SkipTest(f"no IPv6 loopback here: {e}") from None
        accepted, client = yield self.connect(
            endpoints.TCP6ServerEndpoint(reactor, 0, interface="::1"),
            lambda host: endpoints.TCP6ClientEndpoint(reactor, host.host, host.port),
        )
        self.assertEqual(accepted.transport.getHandle().family, socket.AF_INET6)
        self.checkBothSides(accepted, client)

    @inlineCallbacks
    def test_tls(self) -> Any:
        """
        Through TLS, the TCP socket under C{TLSMemoryBIOProtocol} gets the
        settings, on both sides, and the TLS connection works.
        """
        serverOptions, clientOptions = tlsOptions()
        accepted, client = yield self.connect(
            endpoints.SSL4ServerEndpoint(
                reactor, 0, serverOptions, interface="127.0.0.1"
            ),
            lambda host: endpoints.SSL4ClientEndpoint(
                reactor, host.host, host.port, clientOptions
            ),
        )
        self.assertIsInstance(accepted.transport, TLSMemoryBIOProtocol)
        self.assertIsInstance(client.transport, TLSMemoryBIOProtocol)
        self.checkBothSides(accepted, client)

    @inlineCallbacks
    def test_unix(self) -> Any:
        """
        A UNIX socket connection gets a "not applicable" result, logs no
        error, and works.
        """
        directory = Path(tempfile.mkdtemp(prefix="hbt-"))
        self.addCleanup(directory.rmdir)
        path = str(directory / "s")
        accepted, client = yield self.connect(
            endpoints.UNIXServerEndpoint(reactor, path),
            lambda host: endpoints.UNIXClientEndpoint(reactor, path),
        )
        self.assertFalse(accepted.keepAliveResult.applicable)
        self.assertEqual(accepted.keepAliveResult.reason, "Server is not TCP (AF_UNIX)")
        self.assertFalse(client.keepAlive.applicable)
        self.assertEqual(client.keepAlive.reason, "Client is not TCP (AF_UNIX)")

    @inlineCallbacks
    def test_startTLS(self) -> Any:
        """
        After STARTTLS (C{transport.startTLS}, which makes the TCP
        transport's C{getHandle()} return the TLS connection), the socket
        is still found: both sides get their settings in the kernel, and
        the TLS connection works.
        """
        serverOptions, clientOptions = tlsOptions()
        factory = StartTLSFactory(serverOptions)
        port = yield endpoints.TCP4ServerEndpoint(
            reactor, 0, interface="127.0.0.1"
        ).listen(factory)
        self.addCleanup(port.stopListening)
        client = StartTLSClient(clientOptions)
        yield endpoints.connectProtocol(
            endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port),
            client,
        )

        def close() -> Deferred[Any]:
            client.transport.abortConnection()  # type: ignore[union-attr]
            return client.whenLost()

        self.addCleanup(close)
        server = yield factory.ready
        echoed = yield client.expect(b"hello")
        self.assertEqual(echoed, b"hello")
        self.assertTrue(server.result.applicable, server.result.reason)
        self.assertEqual(
            server.result.settings(),
            {k: v for k, v in expected(SERVER).items() if k != "enabled"},
        )
        self.assertEqual(
            server.result.reportsTimeout, currentPlatform().tcpInfo is not None
        )
        self.assertEqual(kernelSettings(server.transport.socket), expected(SERVER))
        self.assertTrue(client.keepAlive.applicable, client.keepAlive.reason)
        self.assertEqual(kernelSettings(client.transport.socket), expected(CLIENT))
