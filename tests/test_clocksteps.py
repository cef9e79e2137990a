"""
Issue 10.2, as a system test: C{twistd heartbeat} under libfaketime, its
wall clock stepped while its monotonic clock runs on.
"""

from __future__ import annotations

import glob
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from ._peers import connectPeer
from ._system import inCI, requireSystem
from ._twistd import ChildProcess, twistdArgv

IDLE = 2.0
INTERVAL = 0.25


def faketimeLibrary() -> str | None:
    """
    The path of libfaketime (Debian package C{libfaketime}, pulled in by
    C{faketime}), or L{None}.
    """
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    return found[0] if found else None


class ClockStepTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        requireSystem(self, "faketime", root=False)
        library = faketimeLibrary()
        if library is None:
            why = "libfaketime.so.1 not found under /usr/lib/*/faketime/"
            if inCI():
                self.fail(why)
            self.skipTest(why)
        self.library = library
        directory = Path(tempfile.mkdtemp(prefix="hbt-faketime-"))
        self.addCleanup(shutil.rmtree, directory, True)
        self.offset = directory / "faketime.rc"
        self.step("+0")

    def step(self, offset: str) -> None:
        """
        Set the server's wall clock to the real time plus C{offset} (read
        on every call: C{FAKETIME_NO_CACHE}).
        """
        self.offset.write_text(offset + "\n")

    @defer.inlineCallbacks
    def test_wallClockSteps(self) -> Generator[Any, Any, None]:
        """
        A +120 s step closes nothing early: a client pinging every 0.6 s
        stays, a silent one is closed only after C{idle}.  After a -1 h
        step a new silent client is still closed after C{idle}, not an
        hour later.
        """
        server = ChildProcess(
            self,
            twistdArgv(
                "heartbeat",
                "--port",
                "tcp:0:interface=127.0.0.1",
                "--idle",
                str(IDLE),
                "--check-interval",
                str(INTERVAL),
            ),
            "twistd heartbeat under libfaketime",
            LD_PRELOAD=self.library,
            FAKETIME_TIMESTAMP_FILE=str(self.offset),
            FAKETIME_NO_CACHE="1",
            FAKETIME_DONT_FAKE_MONOTONIC="1",
            FAKETIME_DONT_RESET="1",
        )
        port = yield server.listeningPort()
        busy = yield connectPeer(port)
        # Slower than the server's ping-flood limit.
        sender = task.LoopingCall(busy.send, b"ping\n")
        sender.start(0.6)
        self.addCleanup(lambda: sender.running and sender.stop())
        self.addCleanup(lambda: busy.transport.loseConnection())
        silent = yield connectPeer(port)
        self.step("+120")
        yield silent.whenLost(timeout=IDLE + 8)
        self.assertGreaterEqual(silent.lostAt - silent.madeAt, IDLE)
        self.assertIsNone(busy.reason)
        self.step("-3600")
        late = yield connectPeer(port)
        yield late.whenLost(timeout=IDLE + 8)
        self.assertGreaterEqual(late.lostAt - late.madeAt, IDLE)
        # The busy client outlived both, through both steps.
        yield task.deferLater(reactor, 0, lambda: None)
        self.assertIsNone(busy.reason)
        self.assertGreater(reactor.seconds() - busy.madeAt, 2 * IDLE)
        self.assertEqual(server.containing("close fd 1"), [])
