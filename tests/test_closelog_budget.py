"""
Lines the library logs about closing a connection (a ping/pong refusal, an
abort after the close grace) stay within the server's log budget.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from heartbeat_twisted._closing import mayLog
from heartbeat_twisted.server._service import makeService
from heartbeat_twisted.tap import Options
from heartbeat_twisted.testing import connect


class CloseLinesBudgetTests(SynchronousTestCase):
    def test_refusalsWithinBudget(self) -> None:
        """
        200 clients refused in one second for binary data log at most the
        budget's lines, not one refusal line each.
        """
        options = Options()
        options.parseOptions(["--port", "tcp:0", "--log-rate", "10"])
        clock = Clock()
        service: Any = makeService(options, reactor=clock)  # type: ignore[arg-type]
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        for _ in range(200):
            connect(service.factory).receive(b"\x00\x01\n")
        refusals = [e for e in events if "closing {peer}" in e.get("log_format", "")]
        self.assertEqual(service.factory.pingCounters.refused["binary data"], 200)
        self.assertLessEqual(len(refusals), 10)
        everything = [
            e for e in events if e.get("log_namespace", "").startswith("heartbeat")
        ]
        self.assertLessEqual(len(everything), 12)

    def test_withoutHookEverythingLogs(self) -> None:
        """
        An owner without C{heartbeatMayLog} (a library user's protocol)
        logs every line.
        """
        self.assertTrue(mayLog(object()))

        class Quiet:
            def heartbeatMayLog(self) -> bool:
                return False

        self.assertFalse(mayLog(Quiet()))
