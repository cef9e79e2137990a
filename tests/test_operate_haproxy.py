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

from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from ._fleet import HAProxy, Server
from ._peers import connectPeer
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
            # Twisted's PROXY wrapper starts the protocol before the header
            # arrives, so the connect line still has HAProxy's address; the
            # close line has the client's.
            closed = yield server.process.waitUntil(
                lambda address=address: server.closes().get(address),
                10,
                f"the close of {address} (PROXY v{version})",
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
