"""
Run a child process in a test (C{twistd -n heartbeat}, the client command,
HAProxy, ...) and wait, with a bound, for lines of its output.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from ._waiting import Waitable

__all__ = ["ChildProcess", "twistdArgv"]


def twistdArgv(*options: str) -> list[str]:
    """
    The argv that runs this interpreter's C{twistd -n} with C{options}
    (no pidfile, log to stdout).
    """
    return [
        sys.executable,
        "-c",
        "from twisted.scripts.twistd import run; run()",
        "-n",
        "--pidfile=",
        "--logfile=-",
        *options,
    ]


class ChildProcess(protocol.ProcessProtocol, Waitable):
    """
    A child process whose output lines are kept with the time each arrived,
    and can be waited for; the test's cleanup stops it.

    @ivar label: What the process is, for failure messages.
    @ivar stamped: Every output line so far (stdout and stderr, decoded) as
        C{(reactor.seconds() when it arrived, line)}.
    @ivar exitCode: The exit code once ended (C{-1} if killed by a signal).
    """

    def __init__(
        self, case: TestCase, argv: list[str], label: str = "", **env: str
    ) -> None:
        Waitable.__init__(self)
        self.label = label
        self.stamped: list[tuple[float, str]] = []
        self._partial: dict[int, bytes] = {}
        self._received: dict[int, bytes] = {}
        self.exitCode: int | None = None
        self.running = True
        environ = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        program = shutil.which(argv[0]) or argv[0]
        self.transport: Any = reactor.spawnProcess(  # type: ignore[attr-defined]
            self, program, argv, env=environ
        )
        case.addCleanup(self.stop)

    @property
    def pid(self) -> int:
        """
        The child's process id.
        """
        return int(self.transport.pid)

    @property
    def lines(self) -> list[str]:
        """
        Every output line so far, without the times.
        """
        return [line for _, line in self.stamped]

    def captured(self) -> str:
        source = f"output of {self.label}" if self.label else "output"
        return f"{source}:\n" + "\n".join(self.lines)

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self._received[childFD] = self._received.get(childFD, b"") + data
        buffered = self._partial.get(childFD, b"") + data
        *complete, self._partial[childFD] = buffered.split(b"\n")
        now = reactor.seconds()  # type: ignore[attr-defined]
        for raw in complete:
            self.stamped.append((now, raw.decode("utf-8", "replace")))
        self.changed()

    def processEnded(self, reason: Failure) -> None:
        for childFD, rest in list(self._partial.items()):
            if rest:
                self.childDataReceived(childFD, b"\n")
        value = reason.value
        if isinstance(value, ProcessDone):
            self.exitCode = 0
        elif isinstance(value, ProcessTerminated):
            self.exitCode = value.exitCode if value.exitCode is not None else -1
        self.running = False
        self.finished("process ended")

    def output(self, childFD: int) -> str:
        """
        All the text received so far on one stream (1: stdout, 2: stderr).
        """
        return self._received.get(childFD, b"").decode("utf-8", "replace")

    def matching(self, prefix: str) -> list[tuple[float, str]]:
        """
        The stamped lines that start with C{prefix}.
        """
        return [(t, line) for t, line in self.stamped if line.startswith(prefix)]

    def containing(self, text: str) -> list[tuple[float, str]]:
        """
        The stamped lines that contain C{text}.
        """
        return [(t, line) for t, line in self.stamped if text in line]

    def search(self, pattern: str) -> tuple[float, re.Match[str]] | None:
        """
        The time and match of the first line that matches C{pattern}.
        """
        compiled = re.compile(pattern)
        for t, line in self.stamped:
            match = compiled.search(line)
            if match is not None:
                return t, match
        return None

    def whenEnded(self, timeout: float = 30) -> defer.Deferred[int | None]:
        """
        Fire with the exit code when the process has ended; fail after
        C{timeout} seconds.
        """
        ended = self.waitUntil(
            lambda: (self.exitCode,) if not self.running else None,
            timeout,
            "exit",
        )
        return ended.addCallback(lambda code: code[0])

    def waitFor(
        self, pattern: str, timeout: float = 10
    ) -> defer.Deferred[re.Match[str]]:
        """
        Fire with the match of the first line (already printed or still to
        come) that matches C{pattern}; fail, showing the output, after
        C{timeout} seconds or when the process ends first.
        """
        found = self.waitUntil(
            lambda: self.search(pattern), timeout, f"line matching {pattern!r}"
        )
        return found.addCallback(lambda stampedMatch: stampedMatch[1])

    def listeningPort(self, timeout: float = 15) -> defer.Deferred[int]:
        """
        Fire with the TCP port the demo server listens on (read from its
        C{... starting on PORT} log line).
        """
        found = self.waitFor(r"starting on (\d+)", timeout)
        return found.addCallback(lambda match: int(match.group(1)))

    def signal(self, name: str) -> None:
        """
        Send the child a signal (C{"STOP"}, C{"CONT"}, C{"TERM"}, ...).
        """
        os.kill(self.pid, getattr(signal, f"SIG{name}"))

    def stop(self) -> defer.Deferred[int | None]:
        """
        End the process (SIGCONT, then SIGTERM, then SIGKILL if it lingers)
        and fire when it has ended.
        """
        if not self.running:
            return defer.succeed(self.exitCode)
        for name in ("CONT", "TERM"):
            try:
                self.signal(name)
            except ProcessLookupError:
                break
        killer = reactor.callLater(  # type: ignore[attr-defined]
            10, lambda: self.running and self.signal("KILL")
        )

        def ended(code: int | None) -> int | None:
            if killer.active():
                killer.cancel()
            return code

        return self.whenEnded(20).addBoth(ended)
