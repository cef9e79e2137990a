"""
Logs for machines: one JSON object per event, where twistd would write
its text lines (C{--logfile}, with its rotation on C{SIGUSR1} and at
1 MB, or stdout with C{-n}).

Two ways to ask for it::

    twistd --logger heartbeat_twisted.server.jsonLogger heartbeat ...
    twistd heartbeat --log-format json ...
"""

from __future__ import annotations

import getopt
import signal
import sys
from collections.abc import Sequence
from typing import IO, Any

from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    eventAsJSON,
    formatEvent,
)
from twisted.python import logfile

__all__ = ["jsonLogObserver", "jsonLogger", "twistdLogFile"]


def _asJSON(event: dict[str, Any]) -> str:
    event = dict(event)
    # Twisted's legacy events keep their raw message parts here; the
    # formatted text is what a reader wants.
    event["message"] = formatEvent(event)
    return eventAsJSON(event) + "\n"


def jsonLogObserver(outFile: IO[Any]) -> ILogObserver:
    """
    An observer that writes each event to C{outFile} as one line of JSON
    (L{eventAsJSON}, so L{twisted.logger.eventsFromJSONLogFile} reads it
    back), with the formatted text under C{"message"} beside the event's
    own fields (C{fd}, C{peer}, C{reason}, C{log_level}, C{log_time}, ...).
    """
    return FileLogObserver(outFile, _asJSON)


def twistdLogFile(argv: Sequence[str] | None = None) -> IO[Any]:
    """
    The file twistd's own options (C{argv}; this process's if L{None}) say
    to log to: C{--logfile PATH} as a L{logfile.LogFile} (rotated at 1 MB
    and on C{SIGUSR1}, as twistd does), stdout for C{--logfile -} or
    C{--nodaemon} without a log file, C{twistd.log} otherwise.
    """
    from twisted.scripts.twistd import ServerOptions  # type: ignore[attr-defined]

    options = ServerOptions()  # type: ignore[no-untyped-call]
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        parsed, _ = getopt.getopt(args, options.shortOpt, options.longOpt)
    except getopt.GetoptError:
        parsed = []
    path = ""
    nodaemon = False
    for flag, value in parsed:
        name = flag.lstrip("-")
        name = options.synonyms.get(name, name)
        if name == "logfile":
            path = value
        elif name == "nodaemon":
            nodaemon = True
    if path == "-" or (nodaemon and not path):
        return sys.stdout
    logFile: Any = logfile.LogFile.fromFullPath(  # type: ignore[no-untyped-call]
        path or "twistd.log"
    )
    if not signal.getsignal(signal.SIGUSR1):

        def rotate(number: int, frame: object) -> None:
            from twisted.internet import reactor

            reactor.callFromThread(logFile.rotate)  # type: ignore[attr-defined]

        signal.signal(signal.SIGUSR1, rotate)
    result: IO[Any] = logFile
    return result


def jsonLogger() -> ILogObserver:
    """
    A log observer factory for twistd's C{--logger} option: JSON lines
    (L{jsonLogObserver}) to the file twistd's C{--logfile} names, rotated
    as twistd rotates its own (L{twistdLogFile}).
    """
    return jsonLogObserver(twistdLogFile())
