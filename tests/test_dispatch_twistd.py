"""
C{twistd heartbeat} under each reactor the project supports (epoll, poll,
select, asyncio): the same answers, refusals and log lines, whether it
dispatches its connections' events itself (epoll, poll) or leaves them to
Twisted (select, asyncio).
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import SkipTest, TestCase

from heartbeat_twisted.server._dispatch import _reactorClasses

from ._peers import connectPeer
from ._twistd import ChildProcess, twistdArgv

#: The reactors, and what the server does with each.
REACTORS = ["epoll", "poll", "select", "asyncio"]
# A log line's timestamp; then the system field, which must stay.
_STAMP = re.compile(r"^\S+ ")
# A peer's port number, which differs between runs.
_PORT = re.compile(r"127\.0\.0\.1(:|', port=)\d+")


class ReactorTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_sameUnderEveryReactor(self) -> Generator[Any, Any, None]:
        """
        Under each reactor the server answers a plain ping (the hot path),
        a ping with a token and a bad line, refuses binary data and closes
        the connection, and logs the connect, refusal and close lines in
        the same words with the same system field.
        """
        present = {name for name in _reactorClasses().values()}
        if not {"epoll", "poll"} <= present:
            raise SkipTest("needs the epoll and poll reactors (Linux)")
        servers = {
            name: ChildProcess(
                self,
                twistdArgv(
                    f"--reactor={name}",
                    "heartbeat",
                    "--port",
                    "tcp:0:interface=127.0.0.1",
                    "--ping-rate",
                    "0",
                ),
                label=f"twistd --reactor {name}",
            )
            for name in REACTORS
        }
        logged = {}
        for name, server in servers.items():
            port = yield server.listeningPort()
            peer = yield connectPeer(port)
            peer.send(b"ping\n")
            yield peer.expect(b"pong\n")
            peer.send(b"ping 7\r\nhello\n")
            yield peer.expect(
                b"pong\npong 7\nerror unknown_command :unknown command 'hello'; "
                b"try: ping\n"
            )
            peer.send(b"\x01\n")
            yield peer.whenLost()
            yield server.waitFor(r"close fd 1: binary data")
            logged[name] = [
                _STAMP.sub("", line)
                for _, line in server.stamped
                if "Client: Connect" in line or "closing " in line or "close fd" in line
            ]
        expected = [_PORT.sub("PEER", line) for line in logged["epoll"]]
        self.assertEqual(len(expected), 3, expected)
        self.assertTrue(expected[0].startswith("["), expected)
        for name in REACTORS:
            lines = [_PORT.sub("PEER", line) for line in logged[name]]
            self.assertEqual(lines, expected, name)
