"""
The README's examples for the tracker and the testing helpers, run.
"""

from __future__ import annotations

import unittest

from twisted.trial.unittest import SynchronousTestCase

from ._readme import runExample


class TrackerExampleTests(SynchronousTestCase):
    def test_sessionsExpire(self) -> None:
        example = runExample("example-tracker")
        clock, tracker, Session = (
            example["clock"],
            example["tracker"],
            example["Session"],
        )
        busy, idle = Session(), Session()
        for _ in range(15):
            clock.advance(1)
            busy.used()
        self.assertFalse(busy.expired)
        self.assertTrue(idle.expired)
        self.assertEqual(len(tracker), 1)


class TestingExampleTests(SynchronousTestCase):
    def test_exampleTestPasses(self) -> None:
        QuietTests = runExample("example-testing")["QuietTests"]
        result = unittest.TestResult()
        QuietTests("test_closedAfterIdle").run(result)
        self.assertEqual((result.testsRun, result.errors, result.failures), (1, [], []))
