"""
bench/eager.py still runs: tiny sizes, both servers reported.  No timing
is asserted; the figures live in bench/README.rst.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from . import test_bench_smoke


class EagerBenchTests(SynchronousTestCase):
    def test_eager(self) -> None:
        test_bench_smoke.BenchSmokeTests.requireCompiler(self)  # type: ignore[arg-type]
        out = test_bench_smoke.BenchSmokeTests.runBench(
            self,  # type: ignore[arg-type]
            "eager.py",
            "--rounds",
            "1",
            "--duration",
            "0.3",
            "--connections",
            "4",
        )
        self.assertIn("closed loop, 4 connections", out)
        for server in ("plain ", "eager "):
            self.assertIn(f"\n{server}", out)
