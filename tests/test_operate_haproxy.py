"""
System tests with a real HAProxy in front of real C{twistd heartbeat}
processes: the PROXY protocol (v1 and v2) gives the server the client's
address; a server taken out by its health check gets no new clients; a
rolling restart moves every client to the other server within one
reconnect.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial.unittest import TestCase

from ._fleet import HAProxy, Server
from ._peers import Peer, connectPeer
from ._pingnet import tempPath
from ._system import requireSystem
from ._twistd import ChildProcess


class ProxyProtocolTests(TestCase):
    timeout = 60

    @inlineCallbacks
    def test_clientAddress(self) -> Any:
        """
        Through HAProxy with C{send-proxy} (v1) and C{send-proxy-v2}, the
        server's close line carries the client's own address and port, not
        HAProxy's.
        """
        requireSystem(self, "haproxy", root=False)
        server = yield Server(self, "a").started()
        proxy = yield HAProxy(
            self, [[("a", server.port, 1)], [("a", server.port, 2)]]
        ).started()
        for version, front in zip((1, 2), proxy.fronts):
            peer = yield connectPeer(front)
            self.addCleanup(peer.transport.abortConnection)
            peer.send(b"ping v%d\n" % version)
            yield peer.expect(b"pong v%d\n" % version)
            address = f"127.0.0.1:{peer.transport.getHost().port}"
            peer.transport.loseConnection()
            # The protocol starts once the header is read: the connect
            # line has the client's address, as the close line does.
            yield server.waitForPeer(address)
            closed = yield server.process.waitUntil(
                lambda address=address: server.closes().get(address),
                10,
                f"the close of {address} (PROXY v{version})",
            )
            self.assertEqual(closed, "peer closed")

    @inlineCallbacks
    def test_limitPerClient(self) -> Any:
        """
        With C{--max-connections-per-ip 2} behind C{send-proxy}, the limit
        counts each client's own address: a third client from 127.0.0.2 is
        refused while one from 127.0.0.3 is admitted, and the connect,
        refusal and close lines name the clients, not HAProxy.
        """
        requireSystem(self, "haproxy", root=False)
        server = yield Server(
            self, "a", "--max-connections-per-ip", "2", "--limit-loopback"
        ).started()
        proxy = yield HAProxy(self, [[("a", server.port, 1)]]).started()
        (front,) = proxy.fronts

        def connectFrom(source: str) -> Any:
            endpoint = TCP4ClientEndpoint(
                reactor, "127.0.0.1", front, timeout=10, bindAddress=(source, 0)
            )
            return connectProtocol(endpoint, Peer())

        admitted = []
        for source in ("127.0.0.2", "127.0.0.2"):
            peer = yield connectFrom(source)
            self.addCleanup(peer.transport.abortConnection)
            peer.send(b"ping\n")
            yield peer.expect(b"pong\n")
            admitted.append(peer)
        third = yield connectFrom("127.0.0.2")
        self.addCleanup(third.transport.abortConnection)
        thirdPort = third.transport.getHost().port
        received = yield third.waitUntil(
            lambda: b"\n" in third.received, 10, "the refusal line"
        )
        self.assertTrue(received)
        self.assertTrue(third.received.startswith(b"error too_many_connections"))
        other = yield connectFrom("127.0.0.3")
        self.addCleanup(other.transport.abortConnection)
        other.send(b"ping\n")
        yield other.expect(b"pong\n")
        refused = yield server.process.waitUntil(
            lambda: server.peers("refused {peer}: {reason}"), 10, "the refusal"
        )
        self.assertEqual(refused, [f"127.0.0.2:{thirdPort}"])
        expected = [
            f"127.0.0.2:{admitted[0].transport.getHost().port}",
            f"127.0.0.2:{admitted[1].transport.getHost().port}",
            f"127.0.0.3:{other.transport.getHost().port}",
        ]
        yield server.waitForPeer(expected[-1])
        # (HAProxy.started's own probe came from 127.0.0.1.)
        self.assertEqual(
            [p for p in server.peers() if not p.startswith("127.0.0.1:")], expected
        )
        admitted[0].transport.loseConnection()
        closed = yield server.process.waitUntil(
            lambda: server.closes().get(expected[0]), 10, "the close line"
        )
        self.assertEqual(closed, "peer closed")


def documentedConfig() -> str:
    """
    The haproxy.cfg of docs/operations.rst (the literal block after the
    C{.. haproxy.cfg} comment).
    """
    text = (Path(__file__).parent.parent / "docs" / "operations.rst").read_text()
    after = text.split(".. haproxy.cfg", 1)[1].split("::\n\n", 1)[1]
    lines = []
    for line in after.splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "\n".join(lines).strip() + "\n"


class DocumentedConfigTests(TestCase):
    def test_valid(self) -> None:
        """
        HAProxy accepts the documented configuration as it is.
        """
        requireSystem(self, "haproxy", root=False)
        config = documentedConfig()
        self.assertIn("tcp-check send ping\\n\n", config)
        self.assertIn("tcp-check expect rstring ^pong\n", config)
        path = tempPath(self, "documented.cfg")
        with open(path, "w") as f:
            f.write(config)
        checked = subprocess.run(
            ["haproxy", "-c", "-f", path], capture_output=True, text=True, timeout=30
        )
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)


class FleetTests(TestCase):
    """
    Two servers behind HAProxy, which checks them with a ping: one taken
    out by its health check gets no new clients; stopped (SIGTERM), it
    tells its clients to go, and they reconnect through HAProxy to the
    other within a second.
    """

    timeout = 150

    def client(self, number: int, front: int) -> ChildProcess:
        """
        A C{heartbeat-client} process connecting from 127.0.0.C{number},
        so the servers' close lines (PROXY protocol) say which client it is.
        """
        endpoint = f"tcp:host=127.0.0.1:port={front}:bindAddress=127.0.0.{number}"
        return ChildProcess(
            self,
            [
                sys.executable,
                "-m",
                "heartbeat_twisted.client",
                endpoint,
                "--interval",
                "1",
                "--timeout",
                "2",
            ],
            f"client {number}",
        )

    @inlineCallbacks
    def test_takeOutAndRestart(self) -> Any:
        requireSystem(self, "haproxy", root=False)
        options = ("--idle", "10", "--drain-delay", "1", "--drain-grace", "5")
        a = Server(self, "a", *options)
        b = Server(self, "b", *options)
        yield a.started()
        yield b.started()
        proxy = yield HAProxy(
            self,
            [[("a", a.port, 2), ("b", b.port, 2)]],
            check="check inter 200ms fall 2 rise 2",
        ).started()
        (front,) = proxy.fronts
        first = {n: self.client(n, front) for n in range(11, 15)}
        for client in first.values():
            yield client.waitFor(r"^rtt ", 40)

        # Take a out: HAProxy sees its pings fail and marks it down.
        os.remove(a.healthFile)
        yield proxy.process.waitFor(r"Server b0/a is DOWN", 15)
        later = {n: self.client(n, front) for n in range(15, 17)}
        for client in later.values():
            yield client.waitFor(r"^rtt ", 40)

        # Restart a: it drains, its clients go to b.
        a.process.signal("TERM")
        code = yield a.process.whenEnded(30)
        self.assertEqual(code, 0, a.process.captured())
        moved = {
            n
            for n in range(11, 17)
            if any(
                peer.startswith(f"127.0.0.{n}:") and reason == "shutdown"
                for peer, reason in a.closes().items()
            )
        }
        self.assertTrue(moved, a.process.captured())
        self.assertTrue(moved <= set(first), f"new clients went to a: {moved}")
        clients = {**first, **later}
        for n in moved:
            client = clients[n]
            told = yield client.waitFor(r"^goaway from .* within 5 s: shutdown", 10)
            self.assertTrue(told)
            # One reconnect, and pinging again through HAProxy (to b).
            yield client.waitUntil(
                lambda client=client: len(client.matching("connected ")) >= 2,
                10,
                "a second connection",
            )
        for n, client in clients.items():
            self.assertEqual(
                [line for line in client.lines if line.startswith("dead")], [], n
            )
            connects = client.matching("connected ")
            lost = client.matching("disconnected ")
            self.assertEqual(len(connects), 1 + len(lost), client.captured())
            for (downAt, _), (upAt, _) in zip(lost, connects[1:]):
                self.assertLess(upAt - downAt, 1.5, client.captured())
        self.assertNotIn("shutdown", set(b.closes().values()))
