"""
Helpers for the real-socket ping/pong tests: event recorders whose
conditions can be waited on with a bounded timeout, a raw client, a child
process whose output lines can be waited on.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from heartbeat_twisted import PingClientProtocol, PingEvents

from ._waiting import Waitable


class RecordingEvents(PingEvents, Waitable):
    """
    Records C{(time, kind, value)} for every event of a client factory.
    """

    def __init__(self) -> None:
        Waitable.__init__(self)
        self.seen: list[tuple[float, str, Any]] = []
        self.protocol: PingClientProtocol | None = None

    def _add(self, kind: str, value: Any) -> None:
        self.seen.append((reactor.seconds(), kind, value))
        self.changed()

    def count(self, kind: str) -> int:
        return sum(1 for _, k, _ in self.seen if k == kind)

    def times(self, kind: str) -> list[float]:
        return [t for t, k, _ in self.seen if k == kind]

    def connected(self, protocol: PingClientProtocol) -> None:
        self.protocol = protocol
        self._add("connected", None)

    def roundTrip(self, protocol: PingClientProtocol, rtt: float) -> None:
        self._add("rtt", rtt)

    def unhealthy(self, protocol: PingClientProtocol, report: str) -> None:
        self._add("unhealthy", report)

    def dead(self, protocol: PingClientProtocol, waited: float) -> None:
        self._add("dead", waited)

    def peerError(self, protocol: PingClientProtocol, text: str) -> None:
        self._add("error", text)

    def disconnected(self, protocol: PingClientProtocol, reason: Failure) -> None:
        self._add("disconnected", reason.getErrorMessage())


def freePort() -> int:
    """
    A TCP port on 127.0.0.1 that was free a moment ago (for programs that
    must be told their port on the command line).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child(ProcessProtocol, Waitable):
    """
    A child process whose output lines are recorded with their arrival
    times; the test's cleanup kills it.
    """

    def __init__(self) -> None:
        Waitable.__init__(self)
        self.lines: list[tuple[float, str]] = []
        self.errors = b""
        self._partial = b""
        self.ended: Deferred[None] = Deferred()
        self.pid: int | None = None

    def outReceived(self, data: bytes) -> None:
        self._partial += data
        *complete, self._partial = self._partial.split(b"\n")
        now = reactor.seconds()
        for line in complete:
            self.lines.append((now, line.decode("utf-8", "replace")))
        self.changed()

    def errReceived(self, data: bytes) -> None:
        self.errors += data
        self.changed()

    def processEnded(self, reason: Failure) -> None:
        self.pid = None
        self.ended.callback(None)

    def matching(self, prefix: str) -> list[tuple[float, str]]:
        return [(t, line) for t, line in self.lines if line.startswith(prefix)]

    def containing(self, text: str) -> list[tuple[float, str]]:
        return [(t, line) for t, line in self.lines if text in line]

    def signal(self, number: int) -> None:
        if self.pid is not None:
            os.kill(self.pid, number)


def spawn(case: TestCase, *argv: str, python: bool = True) -> Child:
    """
    Run C{python argv...} with this interpreter (or the program C{argv[0]}
    if not C{python}); kill it (and wait for it) in the test's cleanup.
    """
    child = Child()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if python:
        argv = (sys.executable, *argv)
    else:
        argv = (shutil.which(argv[0]) or argv[0], *argv[1:])
    transport = reactor.spawnProcess(child, argv[0], list(argv), env=env)
    child.pid = transport.pid

    def stop() -> Deferred[None] | None:
        if child.pid is None:
            return None
        try:
            os.kill(child.pid, signal.SIGCONT)
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return child.ended

    case.addCleanup(stop)
    return child


def twistdArgv(*options: str) -> list[str]:
    """
    The arguments after C{python} that run C{twistd -n heartbeat OPTIONS},
    with no pid file.
    """
    return [
        "-c",
        "from twisted.scripts.twistd import run; run()",
        "-n",
        "--pidfile=",
        "heartbeat",
        *options,
    ]


def tempPath(case: SynchronousTestCase, name: str) -> str:
    """
    A path to a file C{name} in a fresh directory that the test's cleanup
    removes (unlike C{mktemp}, nothing is left in the directory the tests
    run from).
    """
    directory = tempfile.mkdtemp(prefix="hbt-pingpong-")
    case.addCleanup(shutil.rmtree, directory, True)
    return os.path.join(directory, name)
