"""
Guards and fixtures for system tests: network namespaces, iptables, HAProxy,
signals to whole processes.

Outside CI a system test that cannot run here is skipped with the reason;
with C{CI=true} it fails instead, so CI cannot pass by skipping.

C{HEARTBEAT_SYSTEM_TESTS=skip} skips every system test, also under CI: CI
sets it only for its extra runs (other Pythons, other Twisteds, the asyncio
reactor), whose main run has already run them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from unittest import SkipTest

from twisted.trial.unittest import SynchronousTestCase

__all__ = ["SWITCH", "NetworkNamespace", "inCI", "requireSystem"]

SWITCH = "HEARTBEAT_SYSTEM_TESTS"


def inCI() -> bool:
    """
    Whether this run is CI's (C{CI=true}), where system tests must run.
    """
    return os.environ.get("CI", "").lower() == "true"


def _cannotRun(
    commands: tuple[str, ...], root: bool, netns: bool, paths: tuple[str, ...]
) -> str | None:
    if root and os.geteuid() != 0:
        return "needs root"
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        return f"needs {', '.join(missing)} on PATH (Debian packages: see .ci/run)"
    absent = [p for p in paths if not os.path.exists(p)]
    if absent:
        return f"needs {', '.join(absent)} (Debian packages: see .ci/run)"
    if netns:
        probe = f"hbt-probe-{os.getpid()}"
        made = subprocess.run(
            ["ip", "netns", "add", probe], capture_output=True, text=True
        )
        if made.returncode != 0:
            return f"cannot make a network namespace: {made.stderr.strip()}"
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def requireSystem(
    case: SynchronousTestCase,
    *commands: str,
    root: bool = True,
    netns: bool = False,
    paths: tuple[str, ...] = (),
) -> None:
    """
    Skip C{case} (fail it under CI) unless this machine can run it.

    @param commands: Programs the test runs (for example C{"iptables"}).
    @param root: Whether it needs root.
    @param netns: Whether it makes network namespaces.
    @param paths: Files it needs (for example C{"/usr/bin/python3"}).
    """
    if os.environ.get(SWITCH, "").lower() == "skip":
        raise SkipTest(f"system tests switched off ({SWITCH}=skip)")
    why = _cannotRun(commands, root, netns, paths)
    if why is None:
        return
    if inCI():
        case.fail(f"system test cannot run under CI=true: {why}")
    raise SkipTest(why)


_names = itertools.count(1)


class NetworkNamespace:
    """
    A network namespace of the test's own, with loopback up, deleted by the
    test's cleanup.  Traffic in it stays in it.
    """

    def __init__(self, case: SynchronousTestCase) -> None:
        self.name = f"hbt-{os.getpid()}-{next(_names)}"
        self.run("ip", "netns", "add", self.name, inside=False)
        case.addCleanup(self.run, "ip", "netns", "del", self.name, inside=False)
        self.run("ip", "link", "set", "lo", "up")

    def command(self, *argv: str) -> list[str]:
        """
        The argv that runs C{argv} inside this namespace.
        """
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, inside: bool = True) -> str:
        """
        Run C{argv} (inside the namespace by default) and return its output;
        raise if it fails.
        """
        full = self.command(*argv) if inside else list(argv)
        done = subprocess.run(full, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(full)} exited {done.returncode}: {done.stderr.strip()}"
            )
        return done.stdout
