"""
System tests with a real HAProxy in front of real C{twistd heartbeat}
processes: the PROXY protocol (v1 and v2) gives the server the client's
address; a server taken out by its health check gets no new clients; a
rolling restart moves every client to the other server within one
reconnect.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from ._fleet import HAProxy, Server
from ._peers import connectPeer
from ._pingnet import tempPath
from ._system import requireSystem


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
        self.assertIn("tcp-check expect string pong\n", config)
        path = tempPath(self, "documented.cfg")
        with open(path, "w") as f:
            f.write(config)
        checked = subprocess.run(
            ["haproxy", "-c", "-f", path], capture_output=True, text=True, timeout=30
        )
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
