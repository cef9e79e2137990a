"""
The hardening bench scripts keep working, at tiny sizes (no timings
asserted: figures live in bench/README.rst).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import TestCase

BENCH = Path(__file__).resolve().parent.parent / "bench"


class HardeningBenchSmokeTests(TestCase):
    def runBench(self, *argv: str) -> str:
        done = subprocess.run(
            [sys.executable, str(BENCH / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            timeout=180,
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        return done.stdout

    def test_framing(self) -> None:
        out = self.runBench(
            "framing.py", "--pongs", "200", "--rounds", "1", "--line", "1000"
        )
        self.assertIn("ServerProtocol", out)
        self.assertIn("LineFraming", out)

    def test_soak(self) -> None:
        out = self.runBench(
            "soak.py",
            *("--minutes", "0.05", "--flood", "40", "--unread-mb", "1", "--good", "2"),
            *("--settle", "0"),
        )
        self.assertIn("server descriptors", out)
        self.assertIn("slowloris", out)
