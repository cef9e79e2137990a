"""
The wheel ships the plugin: build it, install it into a fresh virtualenv,
and ask that virtualenv's twistd.

(An editable install finds the plugin through the source tree, so it would
hide a wheel that forgot to ship C{twisted/plugins}.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout + done.stderr


class WheelTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="hbt-wheel-"))
        self.addCleanup(run, "rm", "-rf", self.work)
        run(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            self.work / "dist",
            ROOT,
        )
        [self.wheel] = (self.work / "dist").glob("heartbeat_twisted-*.whl")

    def test_contents(self) -> None:
        names = set(zipfile.ZipFile(self.wheel).namelist())
        self.assertIn("twisted/plugins/heartbeat_twisted_plugin.py", names)
        self.assertIn("heartbeat_twisted/py.typed", names)
        for forbidden in (
            "twisted/__init__.py",
            "twisted/plugins/__init__.py",
            "twisted/plugins/dropin.cache",
        ):
            self.assertNotIn(forbidden, names)

    def test_twistdFindsPluginFromWheel(self) -> None:
        venv = self.work / "venv"
        run(sys.executable, "-m", "venv", venv)
        run(venv / "bin" / "pip", "install", "-q", self.wheel)
        # Run from an empty folder so that nothing from the source tree is
        # importable.
        empty = self.work / "empty"
        empty.mkdir()
        helpText = run(venv / "bin" / "twistd", "--help", cwd=empty)
        self.assertRegex(helpText, r"\n\s+heartbeat\s")
        usage = run(venv / "bin" / "twistd", "heartbeat", "--help", cwd=empty)
        self.assertIn("--idle", usage)
