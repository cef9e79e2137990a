"""
The benchmark scripts still run: each one, with tiny sizes, prints its
table.  No timing is asserted; the figures themselves live in
bench/README.rst.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from ._system import inCI

BENCH = Path(__file__).resolve().parent.parent / "bench"


class BenchSmokeTests(SynchronousTestCase):
    """
    Run each script under C{bench/} with small arguments.
    """

    def setUp(self) -> None:
        if not BENCH.is_dir():
            raise self.skipTest(f"no bench directory at {BENCH}")

    def requireCompiler(self) -> None:
        """
        Skip unless gcc can build the C load generator (fail under CI).
        """
        if shutil.which("gcc") is not None and sys.platform.startswith("linux"):
            return
        why = "the C load generator needs gcc and Linux (epoll)"
        if inCI():
            self.fail(f"cannot run under CI=true: {why}")
        raise self.skipTest(why)

    def runBench(self, script: str, *args: str, timeout: float = 120) -> str:
        """
        Run C{bench/<script>} with C{args}; return its output, failing the
        test if it exits with an error.
        """
        result = subprocess.run(
            [sys.executable, str(BENCH / script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.assertEqual(
            result.returncode,
            0,
            f"{script} failed:\n{result.stdout}\n{result.stderr}",
        )
        self.assertIn("python:", result.stdout)
        return result.stdout

    def test_expiry(self) -> None:
        """
        C{expiry.py}: a few connections time out at once, each closed by
        the heartbeat, none early, no busy one lost; C{--help} works.
        """
        self.requireCompiler()
        out = self.runBench(
            "expiry.py",
            *("--expiring", "20", "--busy", "2", "--idle", "1"),
            *("--check-interval", "0.25", "--warmup", "0.2", "--ping-interval", "0.2"),
        )
        self.assertIn(
            "closed by the heartbeat: 20; not closed: 0; busy lost: 0; "
            "resets seen by the clients: 0",
            out,
        )
        self.assertIn("close window (FIN - last byte):", out)
        usage = subprocess.run(
            [sys.executable, str(BENCH / "expiry.py"), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(usage.returncode, 0, usage.stderr)
        self.assertIn("--expiring", usage.stdout)

    def test_help(self) -> None:
        """
        Every script answers C{--help}.
        """
        for script in (
            "tick.py",
            "memory.py",
            "chunk.py",
            "throughput.py",
            "loadgen.py",
            "compare.py",
            "scale.py",
        ):
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

    def test_closeyoung(self) -> None:
        """
        closeyoung.py counts the young objects the queued closes left.
        """
        out = self.runBench("closeyoung.py", "--connections", "50")
        self.assertIn("50 idle closes queued", out)
        self.assertRegex(out, r"young objects alive: [0-9]+, [0-9.]+ a close")

    def test_chunk(self) -> None:
        """
        chunk.py reports every variant.
        """
        out = self.runBench("chunk.py", "--calls", "1000", "--rounds", "2")
        self.assertIn("HeartbeatMixin", out)
        self.assertIn("TimeoutMixin (twisted)", out)

    def test_pingpath(self) -> None:
        """
        pingpath.py reports the answering path with no check, a synchronous
        check and an already-fired Deferred.
        """
        out = self.runBench("pingpath.py", "--pings", "200", "--repeat", "1")
        for case in ("no checks", "1 sync check", "1 fired Deferred"):
            self.assertRegex(out, rf"{case} +[0-9.]+ us/ping")

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

    def test_loadgen(self) -> None:
        """
        loadgen.py builds the C generator and drives a plain server in both
        modes; the fleet's silent share is counted.
        """
        self.requireCompiler()
        port = _freePort()
        server = subprocess.Popen(
            [sys.executable, str(BENCH / "_servers.py"), str(port)]
        )
        self.addCleanup(server.wait, 30)
        self.addCleanup(server.terminate)
        common = ["--port", str(port), "--server-pid", str(server.pid)]
        out = self.runBench(
            "loadgen.py", *common, "--connections", "5", "--duration", "0.5"
        )
        self.assertIn("closed: 5 connected", out)
        self.assertIn("server CPU", out)
        out = self.runBench(
            "loadgen.py",
            *common,
            "--mode",
            "fleet",
            "--connections",
            "20",
            "--processes",
            "2",
            "--sources",
            "2",
            "--period",
            "0.2",
            "--silent",
            "0.1",
            "--duration",
            "0.5",
        )
        self.assertIn("fleet: 20 connected", out)
        self.assertIn("busy closed: 0", out)

    def test_compare(self) -> None:
        """
        compare.py runs every section at tiny sizes and states each goal.
        """
        self.requireCompiler()
        out = self.runBench(
            "compare.py",
            "--variants",
            "heartbeat",
            "--rounds",
            "1",
            "--duration",
            "0.3",
            "--connections",
            "4",
            "--fleet",
            "20",
            "--fleet-period",
            "0.3",
            "--fleet-window",
            "0.3",
            "--fleet-rounds",
            "1",
            "--workers",
            "--profile",
            "--top",
            "3",
            timeout=300,
        )
        for text in (
            "throughput: closed loop",
            "fleet: 20 connections",
            "workers: closed loop",
            "profile: twistd heartbeat",
            "goal: defaults >= 1.4x plain",
            "goal: fleet CPU <= 0.8x plain",
        ):
            self.assertIn(text, out)

    def test_scale(self) -> None:
        """
        scale.py runs both servers with a silent share, checks the close
        window, times the heartbeat directly and draws its plots (when
        matplotlib is installed).
        """
        self.requireCompiler()
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            plots = ["--no-plots"]
        else:
            plots = ["--plots", tempfile.mkdtemp(prefix="hb-plots-")]
            self.addCleanup(shutil.rmtree, plots[1], True)
        out = self.runBench(
            "scale.py",
            "--connections",
            "40",
            "--idle",
            "1",
            "--period",
            "0.5",
            "--warmup",
            "1",
            "--window",
            "2",
            "--direct",
            "2000",
            *plots,
            timeout=300,
        )
        self.assertIn("twistd heartbeat", out)
        self.assertIn("plain (no heartbeat)", out)
        self.assertIn("goal at 40: no busy connection closed", out)
        self.assertIn("heartbeat CPU share", out)
        if plots[0] == "--plots":
            for name in ("close-times", "latency", "cpu-rss"):
                self.assertTrue(Path(plots[1], f"scale-{name}.png").exists(), name)


def _freePort() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
