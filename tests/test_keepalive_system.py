"""
System tests: the kernel's keepalive against C{twistd -n heartbeat}, each
scenario in a network namespace of its own, with real probes, an iptables
DROP rule (the seed's experiment), an iptables rule that answers probes
with a reset, and a SIGSTOPped peer.

They need root, iproute2, iptables, tcpdump and netcat-openbsd: outside CI
they are skipped with the reason, under C{CI=true} they fail instead.  The
five scenarios run at the same time, so the test takes about as long as the
longest one (some 8 s).  The figures measured are logged
(C{_trial_temp/test.log} under trial: C{grep measured}).
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks
from twisted.logger import Logger
from twisted.trial.unittest import TestCase

from ._system import NetworkNamespace, requireSystem
from ._twistd import ChildProcess, twistdArgv

PORT = 6666

# Allowed error of a kernel timer as seen from here: the keepalive timer's
# slack, the reactor noticing, and the log line written and read here.
SLACK = 0.6


class Scenario:
    """
    One namespace with a C{twistd -n heartbeat} server on 127.0.0.1:6666 and
    the processes a scenario starts in it; everything is stopped and deleted
    by the test's cleanup.
    """

    def __init__(self, case: TestCase, name: str) -> None:
        self.case = case
        self.name = name
        self.ns = NetworkNamespace(case)
        self.server: ChildProcess | None = None

    def spawn(self, *argv: str) -> ChildProcess:
        """
        Start C{argv} inside the namespace (C{ip netns exec} execs it, so the
        child's pid is the program's); stopped at cleanup.
        """
        return ChildProcess(
            self.case, self.ns.command(*argv), label=f"{argv[0]} in {self.name}"
        )

    @inlineCallbacks
    def startServer(self, *options: str) -> Generator[Deferred[Any], Any, None]:
        """
        Run C{twistd -n heartbeat} with C{options} and wait until it listens
        (five start at once: on a loaded machine that can take a while).
        """
        self.server = self.spawn(
            *twistdArgv(
                "heartbeat", "--port", f"tcp:{PORT}:interface=127.0.0.1", *options
            )
        )
        yield self.server.waitFor(r"starting on \d+", 40)

    @inlineCallbacks
    def connect(self) -> Generator[Deferred[Any], Any, tuple[float, ChildProcess]]:
        """
        Connect an idle C{nc} client; return C{(time it was started, its
        process)} once the server logged the connection.
        """
        assert self.server is not None
        started = reactor.seconds()
        client = self.spawn("nc", "127.0.0.1", str(PORT))
        yield self.server.waitFor(r"Client: Connect 1\b", 5)
        return started, client

    @inlineCallbacks
    def closed(
        self, timeout: float
    ) -> Generator[Deferred[Any], Any, tuple[float, str]]:
        """
        Wait for C{close fd 1: REASON}; return C{(when, REASON)}.
        """
        assert self.server is not None
        yield self.server.waitFor(r"close fd 1: ", timeout)
        found = self.server.search(r"close fd 1: ([^\n]+)")
        assert found is not None
        when, match = found
        return when, match.group(1).strip()

    @inlineCallbacks
    def closedAfterDrop(self) -> Generator[Deferred[Any], Any, tuple[float, str]]:
        """
        Connect an idle client, then drop its packets; return C{(seconds
        from its start to the server's close, the close's reason)}.
        """
        started, _ = yield self.connect()
        self.ns.run(
            "iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(PORT), "-j", "DROP"
        )
        when, reason = yield self.closed(15)
        return when - started, reason


class KeepAliveKernelTests(TestCase):
    """
    What the kernel does with the settings C{twistd heartbeat} gives it.
    """

    timeout = 90
    log = Logger()

    def setUp(self) -> None:
        requireSystem(
            self, "ip", "iptables", "tcpdump", "nc", "ps", root=True, netns=True
        )

    def measured(self, scenario: str, **figures: float) -> None:
        self.log.info(
            "measured {scenario}: {figures}",
            scenario=scenario,
            figures=", ".join(f"{k}={v:.3f}" for k, v in figures.items()),
        )

    @inlineCallbacks
    def answeredProbes(self) -> Generator[Deferred[Any], Any, None]:
        """
        4a: on an idle connection whose peer answers, the kernel probes
        every C{keepidle} seconds (2), not every C{keepinterval} (1), and the
        connection outlives C{idle + interval * count} (5 s).
        """
        s = Scenario(self, "probes")
        yield s.startServer(
            "--idle", "60", "--keepidle", "2", "--keepinterval", "1", "--keepcount", "3"
        )
        tcpdump = s.spawn("tcpdump", "-i", "lo", "-nn", "-tt", "-l", f"tcp port {PORT}")
        yield tcpdump.waitFor("listening on", 10)
        yield s.connect()
        server = re.compile(rf"^(\d+\.\d+) IP 127\.0\.0\.1\.{PORT} > .* Flags \[\.\],")
        client = re.compile(
            rf"^(\d+\.\d+) IP 127\.0\.0\.1\.\d+ > 127\.0\.0\.1\.{PORT}: "
        )

        def probes() -> list[float] | None:
            times = [float(m.group(1)) for m in map(server.match, tcpdump.lines) if m]
            return times if len(times) >= 3 else None

        times = yield tcpdump.waitUntil(probes, 12, "three probes")
        lines = tcpdump.lines
        synAck = next(float(line.split()[0]) for line in lines if "Flags [S.]" in line)
        spacing = [b - a for a, b in zip([synAck, *times], times[:3])]
        self.measured(
            "4a answered probes (keepidle=2 keepinterval=1 keepcount=3)",
            **{f"probe{i + 1}": gap for i, gap in enumerate(spacing)},
        )
        for gap in spacing:
            self.assertTrue(
                2.0 - 0.05 <= gap <= 2.0 + SLACK, f"probe spacing {spacing}"
            )
        answers = [m for m in map(client.match, lines) if m]
        self.assertGreaterEqual(len(answers), 1 + 3, "the peer's kernel answers")
        assert s.server is not None
        self.assertNotIn("close fd", "\n".join(s.server.lines))

    @inlineCallbacks
    def deadPeer(self) -> Generator[Deferred[Any], Any, None]:
        """
        4b, the seed's experiment: drop the client's packets once it is
        connected; the server closes the connection as C{keepalive timeout}
        about C{idle + interval * count} = 5 s after the last activity.
        """
        s = Scenario(self, "dead")
        yield s.startServer(
            "--idle", "60", "--keepidle", "2", "--keepinterval", "1", "--keepcount", "3"
        )
        elapsed, reason = yield s.closedAfterDrop()
        self.measured("4b dead peer (2/1/3, expected 5 s)", close=elapsed)
        self.assertEqual(reason, "keepalive timeout")
        self.assertTrue(5.0 - 0.05 <= elapsed <= 5.0 + SLACK, f"closed after {elapsed}")

    @inlineCallbacks
    def userTimeout(self) -> Generator[Deferred[Any], Any, None]:
        """
        4c: with C{--user-timeout 3500} the abort comes at the first probe
        at or after 3.5 s (4 s: probes go at 2, 3, 4 s), not after
        C{idle + interval * count} = 11 s.
        """
        s = Scenario(self, "user")
        yield s.startServer(
            "--idle", "60", "--keepidle", "2", "--keepinterval", "1",
            "--keepcount", "9", "--user-timeout", "3500",
        )  # fmt: skip
        elapsed, reason = yield s.closedAfterDrop()
        self.measured("4c user timeout (2/1/9, user timeout 3.5 s)", close=elapsed)
        self.assertEqual(reason, "keepalive timeout")
        self.assertTrue(3.5 <= elapsed <= 4.0 + SLACK, f"closed after {elapsed}")

    @inlineCallbacks
    def resetPeer(self) -> Generator[Deferred[Any], Any, None]:
        """
        4e: the peer answers the first probe with a reset, as a host that
        lost the connection's state does (here an iptables C{REJECT
        --reject-with tcp-reset} on the server's packets to it): the server
        closes the connection as C{peer reset} at the first probe, C{idle}
        = 2 s after the last activity, not as a keepalive timeout.
        """
        s = Scenario(self, "reset")
        yield s.startServer(
            "--idle", "60", "--keepidle", "2", "--keepinterval", "1", "--keepcount", "3"
        )
        started, _ = yield s.connect()
        s.ns.run(
            "iptables", "-A", "INPUT", "-p", "tcp", "--sport", str(PORT),
            "-j", "REJECT", "--reject-with", "tcp-reset",
        )  # fmt: skip
        when, reason = yield s.closed(15)
        elapsed = when - started
        self.measured(
            "4e probe answered by a reset (2/1/3, expected 2 s)", close=elapsed
        )
        self.assertEqual(reason, "peer reset")
        self.assertTrue(2.0 - 0.05 <= elapsed <= 2.0 + SLACK, f"closed after {elapsed}")

    @inlineCallbacks
    def stoppedPeer(self) -> Generator[Deferred[Any], Any, None]:
        """
        4d: a SIGSTOPped peer process: its kernel still answers the probes,
        so keepalive (which would give up after 1 + 1 * 2 = 3 s) never
        closes the connection; the idle heartbeat does, at 6 s.
        """
        s = Scenario(self, "stopped")
        yield s.startServer(
            "--idle", "6", "--check-interval", "0.5",
            "--keepidle", "1", "--keepinterval", "1", "--keepcount", "2",
        )  # fmt: skip
        started, client = yield s.connect()
        client.signal("STOP")
        when, reason = yield s.closed(15)
        elapsed = when - started
        self.measured("4d stopped peer (keepalive 1/1/2, idle 6)", close=elapsed)
        self.assertEqual(reason, "idle")
        self.assertTrue(6.0 <= elapsed <= 6.5 + SLACK, f"closed after {elapsed}")
        state = s.ns.run("ps", "-o", "state=", "-p", str(client.pid)).strip()
        self.assertEqual(state, "T", "the peer was stopped all along")

    @inlineCallbacks
    def test_kernel(self) -> Generator[Deferred[Any], Any, None]:
        """
        The five scenarios, at the same time, each in its own namespace.
        """
        results = yield DeferredList(
            [
                self.answeredProbes(),
                self.deadPeer(),
                self.userTimeout(),
                self.resetPeer(),
                self.stoppedPeer(),
            ],
            consumeErrors=True,
        )
        failures = [failure for ok, failure in results if not ok]
        for failure in failures[1:]:
            self.log.failure("another scenario failed too", failure)
        if failures:
            failures[0].raiseException()
