"""
Starting C{twistd heartbeat} and keeping it up: a startup error ends the
process with one line naming the option and the problem (not a traceback),
and SIGHUP, which would kill it without a word, is logged and ignored.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

__all__ = ["HangupService", "describeListenError"]

_log = Logger()


def describeListenError(port: str, error: BaseException) -> str:
    """
    One line saying why C{--port PORT} could not listen: raise
    C{SystemExit} with it, and twistd exits with status 1 and that line
    instead of a traceback.
    """
    cause: Any = error
    if isinstance(error, CannotListenError):
        cause = error.socketError
    code = getattr(cause, "errno", None)
    if code == errno.EADDRINUSE:
        problem = "the address is already in use (is another server running?)"
    elif code == errno.EACCES:
        problem = "permission denied (ports below 1024 need privileges)"
    elif code == errno.EADDRNOTAVAIL:
        problem = "the interface address is not one of this host's"
    elif code == errno.ENOENT:
        where = os.path.dirname(os.fsdecode(getattr(cause, "filename2", None) or ""))
        problem = (
            f"the directory {where} does not exist"
            if where
            else "a directory in the path does not exist"
        )
    else:
        strerror = getattr(cause, "strerror", None)
        problem = strerror or str(cause) or type(cause).__name__
    return f"--port {port}: cannot listen: {problem}"


class HangupService(Service):
    """
    While running, SIGHUP is logged and ignored: twistd rotates its log on
    SIGUSR1, and a hangup of the terminal must not end a server without a
    word.  Add it to the server's service when it runs on the real reactor.

    @param installSignal: Installs a signal handler (C{signal.signal} by
        default; tests pass their own).
    """

    def __init__(self, installSignal: Callable[[int, Any], Any] | None = None) -> None:
        self._install = installSignal or signal.signal
        self._previous: Any = None

    def startService(self) -> None:
        Service.startService(self)  # type: ignore[no-untyped-call]
        if hasattr(signal, "SIGHUP"):
            self._previous = self._install(signal.SIGHUP, self._hungUp)
            _log.info("SIGHUP will be logged and ignored (stop with SIGTERM)")

    def stopService(self) -> Any:
        if self._previous is not None:
            self._install(signal.SIGHUP, self._previous)
            self._previous = None
        return Service.stopService(self)  # type: ignore[no-untyped-call]

    def _hungUp(self, number: int, frame: Any) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(  # type: ignore[attr-defined]
            _log.warn, "SIGHUP received: ignored (stop with SIGTERM)"
        )
