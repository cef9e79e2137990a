"""
Tests for C{--log-format json} and the C{jsonLogger} observer factory,
with a real C{twistd} logging to a file with C{--logfile} and rotating it.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase

from ._peers import connectPeer
from ._twistd import ChildProcess


def waitForFile(
    path: Path, condition: Callable[[list[dict[str, Any]]], Any], timeout: float
) -> Deferred[Any]:
    """
    Fire with the first true C{condition(events)}, where C{events} are the
    JSON objects in C{path} so far; check every 50 ms, fail after
    C{timeout} seconds.
    """
    d: Deferred[Any] = Deferred()
    deadline = reactor.seconds() + timeout  # type: ignore[attr-defined]

    def check() -> None:
        text = path.read_text() if path.exists() else ""
        events = [json.loads(line) for line in text.splitlines() if line]
        value = condition(events)
        if value:
            loop.stop()
            d.callback(value)
        elif reactor.seconds() > deadline:  # type: ignore[attr-defined]
            loop.stop()
            d.errback(AssertionError(f"not within {timeout} s in {path}:\n{text}"))

    loop = task.LoopingCall(check)
    loop.start(0.05)
    return d


def _first(events: list[dict[str, Any]], fmt: str, **fields: Any) -> Any:
    for event in events:
        if event.get("log_format") == fmt and all(
            event.get(k) == v for k, v in fields.items()
        ):
            return event
    return None


class JSONLogTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="hbt-logs-"))
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.log = self.directory / "twistd.log"

    def twistd(self, before: list[str], after: list[str]) -> ChildProcess:
        argv = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            f"--logfile={self.log}",
            *before,
            "heartbeat",
            "--port",
            "tcp:0:interface=127.0.0.1",
            *after,
        ]
        return ChildProcess(self, argv, "twistd")

    @inlineCallbacks
    def connectionEvents(self) -> Any:
        """
        Connect, ping, close; return the connect and close events.
        """
        started = yield waitForFile(
            self.log,
            lambda events: [e for e in events if "starting on" in e.get("message", "")],
            20,
        )
        port = self.port = int(started[0]["message"].rsplit(" ", 1)[1])
        peer = yield connectPeer(port)
        peer.send(b"ping\n")
        yield peer.expect(b"pong\n")
        local = peer.transport.getHost().port
        peer.transport.loseConnection()
        closed = yield waitForFile(
            self.log,
            lambda events: _first(events, "close fd {fd}: {reason}", fd=1),
            10,
        )
        events = [json.loads(line) for line in self.log.read_text().splitlines()]
        connected = _first(events, "Client: Connect {fd} from {peer}", fd=1)
        return connected, closed, local

    @inlineCallbacks
    def test_logFormatJSON(self) -> Any:
        """
        With C{--log-format json}, every line of twistd's log file is one
        JSON object with the event's fields; the file rotates on SIGUSR1
        and JSON goes on in the new one.
        """
        child = self.twistd([], ["--log-format", "json"])
        connected, closed, local = yield self.connectionEvents()
        self.assertTrue(
            connected["message"].startswith("Client: Connect 1 from 127.0.0.1:")
        )
        self.assertTrue(connected["peer"].endswith(f":{local}"), connected)
        self.assertEqual(
            (closed["fd"], closed["reason"], closed["message"]),
            (1, "peer closed", "close fd 1: peer closed"),
        )
        self.assertIn("log_time", closed)
        child.signal("USR1")
        rotated = self.log.with_name("twistd.log.1")
        yield waitForFile(
            rotated, lambda events: _first(events, "close fd {fd}: {reason}"), 10
        )
        peer = yield connectPeer(self.port)
        self.addCleanup(peer.transport.abortConnection)
        again = yield waitForFile(
            self.log,
            lambda events: _first(events, "Client: Connect {fd} from {peer}"),
            10,
        )
        self.assertEqual(again["fd"], 2)

    @inlineCallbacks
    def test_loggerOption(self) -> Any:
        """
        twistd's own C{--logger heartbeat_twisted.server.jsonLogger} writes
        the same JSON lines to C{--logfile}.
        """
        self.twistd(["--logger", "heartbeat_twisted.server.jsonLogger"], [])
        connected, closed, _ = yield self.connectionEvents()
        self.assertEqual(connected["fd"], 1)
        self.assertEqual(closed["reason"], "peer closed")
