"""
The wheel ships the plugin: build it, install it into a fresh virtualenv,
and ask that virtualenv's twistd; and it installs over Debian's packaged
Twisted (C{python3-twisted}) with nothing from PyPI.

(An editable install finds the plugin through the source tree, so it would
hide a wheel that forgot to ship C{twisted/plugins}.)
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Generator
from importlib.metadata import version
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ._peers import connectPeer
from ._system import requireSystem
from ._twistd import ChildProcess

ROOT = Path(__file__).resolve().parent.parent

# Debian's own interpreter and its packaged Twisted (python3-twisted,
# python3-venv): see docs/compatibility.rst.
DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_TWISTD = "/usr/bin/twistd3"
DEBIAN_SITE = "/usr/lib/python3/dist-packages"


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


@functools.cache
def _builtWheel() -> Path:
    dist = Path(tempfile.mkdtemp(prefix="hbt-dist-"))
    atexit.register(shutil.rmtree, dist, True)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT)
    [wheel] = dist.glob("heartbeat_twisted-*.whl")
    return wheel


def buildWheel(case: SynchronousTestCase) -> tuple[Path, Path]:
    """
    This checkout's wheel (built once per test run) and a fresh directory
    for the test, which its cleanup removes.

    @return: The directory and the wheel.
    """
    work = Path(tempfile.mkdtemp(prefix="hbt-wheel-"))
    case.addCleanup(shutil.rmtree, work, True)
    return work, _builtWheel()


class WheelTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.work, self.wheel = buildWheel(self)

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
        """
        The wheel, installed with the Twisted, attrs and zope.interface this
        suite runs on (the floor versions in CI's floor run), gives twistd
        the plugin.
        """
        venv = self.work / "venv"
        run(sys.executable, "-m", "venv", venv)
        same = [
            f"{name}=={version(name)}"
            for name in ("twisted", "attrs", "zope.interface")
        ]
        run(venv / "bin" / "pip", "install", "-q", self.wheel, *same)
        # Run from an empty folder so that nothing from the source tree is
        # importable.
        empty = self.work / "empty"
        empty.mkdir()
        helpText = run(venv / "bin" / "twistd", "--help", cwd=empty)
        self.assertRegex(helpText, r"\n\s+heartbeat\s")
        usage = run(venv / "bin" / "twistd", "heartbeat", "--help", cwd=empty)
        self.assertIn("--idle", usage)


class DebianTwistedTests(TestCase):
    """
    Debian 12's way: C{python3-twisted} from apt, the wheel in a virtualenv
    made with C{--system-site-packages}.  A system test: it needs Debian's
    interpreter and packages, which CI installs.
    """

    timeout = 300

    @defer.inlineCallbacks
    def test_twistdOverDebianTwisted(self) -> Generator[Any, Any, None]:
        """
        The wheel installs with C{--no-index}, so every dependency is
        Debian's (our floors are at most Debian 12's versions), and
        C{twistd -n heartbeat} run by the virtualenv's interpreter answers
        C{ping} with C{pong} on Debian's Twisted.
        """
        requireSystem(
            self,
            root=False,
            paths=(DEBIAN_PYTHON, DEBIAN_TWISTD, f"{DEBIAN_SITE}/twisted"),
        )
        work, wheel = buildWheel(self)
        venv = work / "venv"
        run(DEBIAN_PYTHON, "-m", "venv", "--system-site-packages", venv)
        python = venv / "bin" / "python"
        run(python, "-m", "pip", "install", "-q", "--no-index", wheel)
        where = run(
            python,
            "-c",
            "import twisted, attr, zope.interface, heartbeat_twisted\n"
            "for m in (twisted, attr, zope.interface, heartbeat_twisted):\n"
            "    print(m.__name__, m.__file__)",
            cwd=work,
        ).splitlines()
        self.assertEqual(
            [line.split()[1].startswith(DEBIAN_SITE) for line in where],
            [True, True, True, False],
            where,
        )
        debianVersion = run(
            DEBIAN_PYTHON, "-c", "import twisted; print(twisted.__version__)"
        ).strip()
        server = ChildProcess(
            self,
            [
                str(python),
                DEBIAN_TWISTD,
                "-n",
                "--pidfile=",
                "--logfile=-",
                "heartbeat",
                "--port",
                "tcp:0:interface=127.0.0.1",
            ],
            label="twistd over Debian's Twisted",
        )
        port = yield server.listeningPort()
        peer = yield connectPeer(port)
        peer.send(b"ping\n")
        yield peer.expect(b"pong\n")
        yield server.waitFor(rf"twistd {debianVersion} \({venv}/bin/python")
