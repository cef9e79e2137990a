"""
Run C{twistd -n heartbeat} as a child process in a test, and wait (with a
bound) for lines in its log.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

__all__ = ["TwistdProcess", "twistdArgv"]


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


class TwistdProcess(protocol.ProcessProtocol):
    """
    A child process whose output lines are kept, and can be waited for.

    @ivar lines: Every output line so far (stdout and stderr, decoded).
    @ivar exitCode: The exit code once ended (C{-1} if killed by a signal).
    """

    def __init__(self, case: TestCase, argv: list[str], **env: str) -> None:
        self.lines: list[str] = []
        self._partial = b""
        self._waiting: list[tuple[re.Pattern[str], defer.Deferred[re.Match[str]]]] = []
        self._enders: list[defer.Deferred[int | None]] = []
        self.exitCode: int | None = None
        self.running = True
        environ = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.transport: Any = reactor.spawnProcess(  # type: ignore[attr-defined]
            self, argv[0], argv, env=environ
        )
        case.addCleanup(self.stop)

    @property
    def pid(self) -> int:
        """
        The child's process id.
        """
        return int(self.transport.pid)

    def outReceived(self, data: bytes) -> None:
        self._partial += data
        *complete, self._partial = self._partial.split(b"\n")
        for raw in complete:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            for entry in list(self._waiting):
                match = entry[0].search(line)
                if match is not None:
                    self._waiting.remove(entry)
                    entry[1].callback(match)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.running = False
        if self._partial:
            self.outReceived(b"\n")
        value = reason.value
        if isinstance(value, ProcessDone):
            self.exitCode = 0
        elif isinstance(value, ProcessTerminated):
            self.exitCode = value.exitCode if value.exitCode is not None else -1
        for pattern, waiting in self._waiting:
            waiting.errback(
                AssertionError(
                    f"process ended before printing {pattern.pattern!r}; "
                    f"output:\n" + "\n".join(self.lines)
                )
            )
        self._waiting.clear()
        enders, self._enders = self._enders, []
        for ender in enders:
            ender.callback(self.exitCode)

    def whenEnded(self) -> defer.Deferred[int | None]:
        """
        Fire with the exit code when the process has ended.
        """
        if not self.running:
            return defer.succeed(self.exitCode)
        ender: defer.Deferred[int | None] = defer.Deferred()
        self._enders.append(ender)
        return ender

    def waitFor(
        self, pattern: str, timeout: float = 10
    ) -> defer.Deferred[re.Match[str]]:
        """
        Fire with the match of the first line (already printed or still to
        come) that matches C{pattern}; fail after C{timeout} seconds.
        """
        compiled = re.compile(pattern)
        for line in self.lines:
            match = compiled.search(line)
            if match is not None:
                return defer.succeed(match)
        if not self.running:
            return defer.fail(
                AssertionError(
                    f"process ended without printing {pattern!r}; output:\n"
                    + "\n".join(self.lines)
                )
            )
        waiting: defer.Deferred[re.Match[str]] = defer.Deferred()
        self._waiting.append((compiled, waiting))

        def timedOut(failure: Failure) -> Failure:
            failure.trap(defer.TimeoutError)
            raise AssertionError(
                f"no line matching {pattern!r} within {timeout} s; output:\n"
                + "\n".join(self.lines)
            )

        waiting.addTimeout(timeout, reactor)
        return waiting.addErrback(timedOut)

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

        return self.whenEnded().addCallback(ended)
