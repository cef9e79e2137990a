"""
The benchmark scripts still run: each one, with tiny sizes, prints its
table.  No timing is asserted; the figures themselves live in
bench/README.rst.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

BENCH = Path(__file__).resolve().parent.parent / "bench"


class BenchSmokeTests(SynchronousTestCase):
    """
    Run each script under C{bench/} with small arguments.
    """

    def setUp(self) -> None:
        if not BENCH.is_dir():
            raise self.skipTest(f"no bench directory at {BENCH}")

    def runBench(self, script: str, *args: str) -> str:
        """
        Run C{bench/<script>} with C{args}; return its output, failing the
        test if it exits with an error.
        """
        result = subprocess.run(
            [sys.executable, str(BENCH / script), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(
            result.returncode,
            0,
            f"{script} failed:\n{result.stdout}\n{result.stderr}",
        )
        self.assertIn("python:", result.stdout)
        return result.stdout

    def test_help(self) -> None:
        """
        Every script answers C{--help}.
        """
        for script in ("tick.py", "memory.py", "chunk.py", "throughput.py"):
            result = subprocess.run(
                [sys.executable, str(BENCH / script), "--help"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("usage:", result.stdout)

    def test_tick(self) -> None:
        """
        tick.py reports every phase for the size it was given.
        """
        out = self.runBench(
            "tick.py", "--sizes", "500", "--ticks", "2", "--flush-mb", "1"
        )
        for phase in ("0% due", "1% due, silent", "1% due, active"):
            self.assertIn(phase, out)
        self.assertIn("naive/ours", out)

    def test_tickRejectsBadSize(self) -> None:
        """
        tick.py refuses a size its layout cannot split into 100 groups.
        """
        result = subprocess.run(
            [sys.executable, str(BENCH / "tick.py"), "--sizes", "150"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 2)
        self.assertIn("not a multiple of 100", result.stderr)

    def test_memory(self) -> None:
        """
        memory.py reports the tracker entry and a DelayedCall.
        """
        out = self.runBench("memory.py", "--connections", "300", "--rounds", "1")
        self.assertIn("tracker entry", out)
        self.assertIn("DelayedCall", out)
        self.assertIn("goal: tracker entry under 128 B", out)

    def test_chunk(self) -> None:
        """
        chunk.py reports every variant.
        """
        out = self.runBench("chunk.py", "--calls", "1000", "--rounds", "2")
        self.assertIn("HeartbeatMixin", out)
        self.assertIn("TimeoutMixin (twisted)", out)

    def test_throughput(self) -> None:
        """
        throughput.py starts its servers, drives them and reports every
        variant; the servers exit when it is done.
        """
        out = self.runBench(
            "throughput.py",
            "--rounds",
            "1",
            "--messages",
            "20",
            "--connections",
            "2",
            "--max-seconds",
            "60",
        )
        for variant in ("plain", "HeartbeatMixin", "TimeoutMixin (ours)"):
            self.assertIn(variant, out)
        self.assertIn("goal: HeartbeatMixin within 1% of plain", out)
