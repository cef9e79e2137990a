"""
Declared support equals tested support: the floors in C{pyproject.toml} are
the versions CI's floor run installs, the Python classifiers match
C{requires-python}, and the twistd plugin serves under the asyncio reactor.

See docs/compatibility.rst for what runs where.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Generator
from pathlib import Path
from typing import Any
from unittest import SkipTest

from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ._peers import connectPeer
from ._twistd import ChildProcess, twistdArgv

ROOT = Path(__file__).resolve().parent.parent
FLOOR_PINS = ROOT / ".ci" / "floor.txt"
SUPPORTED_PYTHONS = ["3.11", "3.12", "3.13"]

# Set by CI's extra runs to the reactor class the run must be on.
EXPECT_REACTOR = "HEARTBEAT_EXPECT_REACTOR"


def _project() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, Any] = tomllib.load(f)["project"]
    return project


def _floors() -> dict[str, str]:
    """
    Each runtime dependency's declared floor, by lowercase name.
    """
    floors = {}
    for requirement in _project()["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)>=([0-9.]+)", requirement)
        assert match is not None, f"no plain floor: {requirement!r}"
        floors[match.group(1).lower()] = match.group(2)
    return floors


def _release(version: str) -> tuple[int, ...]:
    """
    C{"22.4.0"} and C{"22.4"} alike as C{(22, 4)}.
    """
    parts = [int(part) for part in version.split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


class DeclaredVersionsTests(SynchronousTestCase):
    def test_floorsArePinnedInCI(self) -> None:
        """
        CI's floor run pins every runtime dependency to exactly its declared
        floor, so the floor is tested, not just stated.
        """
        pins = {}
        for line in FLOOR_PINS.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                name, _, pinned = line.partition("==")
                pins[name.strip().lower()] = pinned.strip()
        floors = _floors()
        self.assertEqual(sorted(pins), sorted(floors))
        for name, floor in floors.items():
            self.assertEqual(_release(pins[name]), _release(floor), name)
        self.assertIn(".ci/floor.txt", (ROOT / ".ci" / "run").read_text())

    def test_pythonClassifiers(self) -> None:
        """
        The classifiers name exactly the Pythons CI runs, from the one
        C{requires-python} states.
        """
        project = _project()
        self.assertEqual(project["requires-python"], f">={SUPPORTED_PYTHONS[0]}")
        prefix = "Programming Language :: Python :: "
        versions = [
            c.removeprefix(prefix)
            for c in project["classifiers"]
            if re.fullmatch(re.escape(prefix) + r"3\.\d+", c)
        ]
        self.assertEqual(versions, SUPPORTED_PYTHONS)
        ci = (ROOT / ".ci" / "run").read_text()
        for version in SUPPORTED_PYTHONS:
            self.assertIn(f"$(python_for {version})", ci)
        self.assertIn(f"{sys.version_info.major}.{sys.version_info.minor}", versions)

    def test_reactorOfThisRun(self) -> None:
        """
        The suite runs on the reactor CI asks for (its asyncio run), else on
        the platform's default (epoll on Linux).
        """
        expected = os.environ.get(EXPECT_REACTOR)
        if expected is None:
            if not sys.platform.startswith("linux"):
                raise SkipTest(f"no expected default reactor on {sys.platform}")
            expected = "twisted.internet.epollreactor.EPollReactor"
        running = f"{type(reactor).__module__}.{type(reactor).__qualname__}"
        self.assertEqual(running, expected)


class AsyncioTwistdTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_pluginServesUnderAsyncioReactor(self) -> Generator[Any, Any, None]:
        """
        C{twistd -n --reactor asyncio heartbeat} runs on asyncio's event
        loop and answers C{ping} with C{pong}.
        """
        server = ChildProcess(
            self,
            twistdArgv(
                "--reactor=asyncio",
                "heartbeat",
                "--port",
                "tcp:0:interface=127.0.0.1",
            ),
            label="twistd --reactor asyncio",
        )
        port = yield server.listeningPort()
        yield server.waitFor(
            r"reactor class: twisted\.internet\.asyncioreactor\.AsyncioSelectorReactor"
        )
        peer = yield connectPeer(port)
        peer.send(b"ping token-3\n")
        yield peer.expect(b"pong token-3\n")
