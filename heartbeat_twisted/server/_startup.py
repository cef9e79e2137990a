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

from twisted.application.service import IService, MultiService
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

__all__ = ["StartupGuard", "describeListenError"]

_log = Logger()


def describeListenError(port: str, error: BaseException) -> str:
    """
    One line saying why C{--port PORT} could not listen.
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


class StartupGuard(MultiService):
    """
    Runs one service; if starting it fails, the process exits with status 1
    and one line (L{SystemExit} with the text twistd prints) instead of a
    traceback.  While running, SIGHUP is logged and ignored (if
    C{hangup} is set, as for the real reactor): twistd rotates its log on
    SIGUSR1, and a hangup of the terminal must not end a server silently.

    Attributes it does not have are the guarded service's (C{factory}).

    @ivar service: The service to start.
    @param port: The C{--port} value, for the message.
    @param hangup: Whether to log and ignore SIGHUP while running.
    @param installSignal: Installs a signal handler (L{signal.signal} by
        default; tests pass their own).
    """

    def __init__(
        self,
        service: IService,
        port: str,
        hangup: bool = True,
        installSignal: Callable[[int, Any], Any] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        service.setServiceParent(self)  # type: ignore[no-untyped-call]
        self.service = service
        self.port = port
        self._hangup = hangup
        self._install = installSignal or signal.signal
        self._previous: Any = None

    def __getattr__(self, name: str) -> Any:
        # The guarded service's own attributes (its factory, its address).
        if name.startswith("__") or name == "service":
            raise AttributeError(name)
        return getattr(self.service, name)

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()  # type: ignore[no-untyped-call]
        except Exception as e:
            raise SystemExit(describeListenError(self.port, e)) from None

    def startService(self) -> None:
        try:
            super().startService()  # type: ignore[no-untyped-call]
        except Exception as e:
            raise SystemExit(describeListenError(self.port, e)) from None
        if self._hangup and hasattr(signal, "SIGHUP"):
            self._previous = self._install(signal.SIGHUP, self._hungUp)
            _log.info("SIGHUP will be logged and ignored (stop with SIGTERM)")

    def stopService(self) -> Any:
        if self._previous is not None:
            self._install(signal.SIGHUP, self._previous)
            self._previous = None
        return super().stopService()  # type: ignore[no-untyped-call]

    def _hungUp(self, number: int, frame: Any) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(  # type: ignore[attr-defined]
            _log.warn, "SIGHUP received: ignored (stop with SIGTERM)"
        )
