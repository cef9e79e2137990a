"""
Helpers for the real-socket ping/pong tests: an event recorder whose
conditions can be waited on with a bounded timeout, a free port, a
temporary path.  (Raw clients are in L{tests._peers}, child processes in
L{tests._twistd}.)
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted.ping import (
    PingClientProtocol,
    PingEvents,
)

from ._waiting import Waitable


class RecordingEvents(PingEvents, Waitable):
    """
    Records C{(time, kind, value)} for every event of a client factory.
    """

    def __init__(self) -> None:
        Waitable.__init__(self)
        self.seen: list[tuple[float, str, Any]] = []
        self.protocol: PingClientProtocol | None = None

    def captured(self) -> str:
        return f"events: {self.seen!r}"

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

    def goAway(self, protocol: PingClientProtocol, reason: str, grace: float) -> None:
        self._add("goaway", (reason, grace))

    def disconnected(self, protocol: PingClientProtocol, reason: Failure) -> None:
        self._add("disconnected", reason.getErrorMessage())

    def retrying(self, delay: float, reason: Failure | None) -> None:
        self._add("retrying", delay)


def freePort() -> int:
    """
    A TCP port on 127.0.0.1 that was free a moment ago (for programs that
    must be told their port on the command line).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tempPath(case: SynchronousTestCase, name: str) -> str:
    """
    A path to a file C{name} in a fresh directory that the test's cleanup
    removes (unlike C{mktemp}, nothing is left in the directory the tests
    run from).
    """
    directory = tempfile.mkdtemp(prefix="hbt-pingpong-")
    case.addCleanup(shutil.rmtree, directory, True)
    return os.path.join(directory, name)
