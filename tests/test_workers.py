"""
C{--reuse-port} and C{--workers N}: option checks, the worker command line,
log tagging, the supervisor in simulated time, two sockets on one port, and
a real C{twistd heartbeat --workers 2} whose workers both serve, restart
after a crash, and stop with their supervisor.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Generator
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import LogLevel, LogPublisher, formatEventAsClassicLogText
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from heartbeat_twisted.server import _workers
from heartbeat_twisted.server._limits import defaultBacklog
from heartbeat_twisted.server._options import Options
from heartbeat_twisted.server._reuseport import (
    ReusePortService,
    parseListenAddress,
    workersUnsupported,
)
from heartbeat_twisted.server._service import HeartbeatService, makeService
from heartbeat_twisted.server._workers import (
    WORKER_ENVIRONMENT,
    WorkerSupervisor,
    supervisorLogfile,
    tagLogsWithWorker,
    workerArgv,
    workerNumber,
)

from ._peers import connectPeer
from ._system import requireSystem
from ._twistd import ChildProcess, twistdArgv


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionTests(SynchronousTestCase):
    def test_workerNumber(self) -> None:
        """
        C{HEARTBEAT_WORKER} holds a worker's number; anything else means
        "not a worker".
        """
        self.assertEqual(workerNumber({WORKER_ENVIRONMENT: "3"}), 3)
        for value in ("", "0", "-1", "x", "1.5"):
            self.assertIsNone(workerNumber({WORKER_ENVIRONMENT: value}), value)
        self.assertIsNone(workerNumber({}))

    def test_platform(self) -> None:
        """
        Only Linux is supported, and the refusal says so.
        """
        self.assertIsNone(workersUnsupported("linux"))
        self.assertEqual(
            workersUnsupported("darwin"),
            "needs Linux (SO_REUSEPORT and PR_SET_PDEATHSIG); this is darwin",
        )

    def test_notLinux(self) -> None:
        """
        Elsewhere C{--workers} and C{--reuse-port} are usage errors.
        """
        self.patch(_workers, "workersUnsupported", lambda: "needs Linux; this is x")
        for argv in (["--workers", "2"], ["--reuse-port"]):
            error = self.assertRaises(usage.UsageError, parse, *argv)
            self.assertEqual(str(error), f"{argv[0]} needs Linux; this is x")

    def test_parseListenAddress(self) -> None:
        self.assertEqual(parseListenAddress("tcp:6666"), (6666, "", 50))
        self.assertEqual(
            parseListenAddress("tcp:port=0:interface=127.0.0.1:backlog=9"),
            (0, "127.0.0.1", 9),
        )
        self.assertEqual(
            parseListenAddress(r"tcp6:80:interface=\:\:1"), (80, "::1", 50)
        )
        self.assertEqual(parseListenAddress("tcp6:80"), (80, "::", 50))
        for bad in ("unix:/tmp/x", "ssl:443", "tcp:", "tcp:x", "tcp:1:backlog=0"):
            self.assertRaises(ValueError, parseListenAddress, bad)

    def test_badWorkers(self) -> None:
        """
        C{--workers} takes 1..256, a C{tcp:} endpoint and a fixed port.
        """
        cases = {
            ("--workers", "0"): "--workers must be a whole number in 1..256: '0'",
            ("--workers", "x"): "--workers must be a whole number in 1..256: 'x'",
            ("--workers", "2", "--port", "0"): "--workers needs a fixed port, not 0",
            ("--workers", "2", "--port", "unix:/tmp/s"): (
                "--workers: --port needs a tcp: endpoint, not 'unix:/tmp/s'"
            ),
        }
        for argv, message in cases.items():
            error = self.assertRaises(usage.UsageError, parse, *argv)
            self.assertEqual(str(error), message)

    def test_defaults(self) -> None:
        """
        Without the options the server is one process, as before.
        """
        options = parse()
        self.assertIsNone(options.workers)
        self.assertFalse(options["reuse-port"])
        self.assertEqual(parse("--reuse-port").workers, None)
        self.assertEqual(parse("--workers", "3").workers, 3)

    def test_workerArgv(self) -> None:
        """
        A worker runs C{twistd -n heartbeat} on this Python with the
        supervisor's reactor, every changed option but C{--workers}, and
        C{--reuse-port}.
        """
        options = parse(
            "--workers", "2", "--port", "7000", "--idle", "9", "--keepalive"
        )
        argv = workerArgv(options, reactor, "x.log.worker-{worker}")
        self.assertIn("--logfile=x.log.worker-{worker}", argv)
        # The suite runs on epoll, or on asyncio in CI's asyncio run.
        running = {
            "twisted.internet.epollreactor": "epoll",
            "twisted.internet.asyncioreactor": "asyncio",
        }[type(reactor).__module__]
        self.assertIn(f"--reactor={running}", argv)
        tail = argv[argv.index("heartbeat") + 1 :]
        self.assertEqual(
            tail, ["--port=7000", "--idle=9", "--keepalive", "--reuse-port"]
        )

    def test_workerLogfile(self) -> None:
        """
        Workers log to the supervisor's stdout, to the same device, or to a
        file of their own next to its log file.
        """

        def logfile(**parent: Any) -> str | None:
            options = parse("--workers", "2")
            options.parent = {"nodaemon": True, "logfile": None, **parent}
            return supervisorLogfile(options)

        self.assertIsNone(logfile())
        self.assertIsNone(logfile(logfile="-"))
        self.assertEqual(logfile(logfile="/dev/null"), "/dev/null")
        self.assertEqual(logfile(logfile="x.log"), "x.log.worker-{worker}")
        self.assertEqual(logfile(nodaemon=False), "twistd.log.worker-{worker}")

    def test_makeService(self) -> None:
        """
        C{--workers} makes a supervisor; C{--reuse-port} a listener of its
        own.
        """
        service = makeService(parse("--workers", "2", "--port", "7000"))
        self.assertIsInstance(service, WorkerSupervisor)
        self.assertEqual(service.count, 2)
        listener = makeService(parse("--reuse-port", "--port", "7000"))
        self.assertIsInstance(listener, HeartbeatService)
        # --backlog's default reaches the listener (docs/hardening.rst).
        self.assertEqual(listener.endpoints, [f"tcp:7000:backlog={defaultBacklog()}"])


class TagTests(SynchronousTestCase):
    def test_tagged(self) -> None:
        """
        Every event gets C{worker N} in front of its system field, which the
        classic text format prints.
        """
        publisher = LogPublisher()
        tagLogsWithWorker(4, publisher)
        seen: list[dict[str, Any]] = []
        publisher.addObserver(seen.append)
        publisher(
            {
                "log_format": "hello",
                "log_namespace": "ns",
                "log_level": LogLevel.info,
                "log_time": 0.0,
            }
        )
        publisher({"log_format": "x", "log_system": "Port,3", "log_time": 0.0})
        self.assertEqual(seen[0]["log_system"], "worker 4 ns#info")
        self.assertEqual(seen[1]["log_system"], "worker 4 Port,3")
        self.assertEqual(seen[0]["heartbeat_worker"], 4)
        text = formatEventAsClassicLogText(seen[0])
        assert text is not None
        self.assertIn("[worker 4 ns#info] hello", text)


class FakeProcess:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.signals: list[str] = []

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)


class FakeReactor(task.Clock):
    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[Any, list[str], dict[str, str], FakeProcess]] = []

    def spawnProcess(
        self, proto: Any, program: str, argv: list[str], env: Any, childFDs: Any
    ) -> FakeProcess:
        process = FakeProcess(1000 + len(self.spawned))
        self.spawned.append((proto, argv, env, process))
        return process


class SupervisorTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.supervisor = WorkerSupervisor(
            2, ["prog", "--log=w{worker}"], self.reactor, environ={"A": "1"}
        )
        self.supervisor.startService()

    def test_spawn(self) -> None:
        """
        Each worker gets its number in C{HEARTBEAT_WORKER} (and in its
        command line where asked), and the supervisor's pid.
        """
        self.assertEqual(len(self.reactor.spawned), 2)
        for number, (_, argv, env, _) in enumerate(self.reactor.spawned, 1):
            self.assertEqual(env[WORKER_ENVIRONMENT], str(number))
            self.assertEqual(env["HEARTBEAT_SUPERVISOR"], str(os.getpid()))
            self.assertEqual(env["A"], "1")
            self.assertEqual(argv, ["prog", f"--log=w{number}"])

    def test_restart(self) -> None:
        """
        A worker that dies is restarted after a delay that doubles while it
        keeps dying early and starts again from the minimum after a long
        run.
        """
        crash = Failure(ProcessTerminated(signal=9))
        for expected in (0.5, 1.0, 2.0):
            proto = self.reactor.spawned[-1][0]
            self.assertEqual(proto.number, 2)
            proto.processEnded(crash)
            self.assertEqual(set(self.supervisor.workers), {1})
            self.reactor.advance(expected - 0.001)
            self.assertEqual(set(self.supervisor.workers), {1})
            self.reactor.advance(0.001)
            self.assertEqual(set(self.supervisor.workers), {1, 2})
        self.assertEqual(self.supervisor.restarts, {2: 3})
        self.reactor.advance(11)
        self.reactor.spawned[-1][0].processEnded(crash)
        self.reactor.advance(0.5)
        self.assertEqual(set(self.supervisor.workers), {1, 2})

    def test_stop(self) -> None:
        """
        Stopping sends SIGTERM to every worker, SIGKILL to one still there
        after the grace, cancels a pending restart and fires once all ended.
        """
        first, second = (entry[0] for entry in self.reactor.spawned)
        first.processEnded(Failure(ProcessTerminated(exitCode=3)))
        second = self.reactor.spawned[1][0]
        stopped = self.supervisor.stopService()
        self.assertEqual(self.reactor.spawned[1][3].signals, ["TERM"])
        self.reactor.advance(self.supervisor.stopGrace)
        self.assertEqual(self.reactor.spawned[1][3].signals, ["TERM", "KILL"])
        self.assertNoResult(stopped)
        second.processEnded(Failure(ProcessDone(0)))
        self.successResultOf(stopped)
        self.reactor.advance(60)
        self.assertEqual(len(self.reactor.spawned), 2)
        self.assertEqual(self.reactor.getDelayedCalls(), [])


class ReusePortTests(TestCase):
    def test_twoListeners(self) -> None:
        """
        Two services listen on one port at once, and a connection is
        accepted.
        """
        factory = Factory.forProtocol(Protocol)
        first = ReusePortService("tcp:0:interface=127.0.0.1", factory, reactor)
        first.startService()
        self.addCleanup(first.stopService)
        assert first.port is not None
        port = first.port.getHost().port  # type: ignore[attr-defined]
        second = ReusePortService(f"tcp:{port}:interface=127.0.0.1", factory, reactor)
        second.startService()
        self.addCleanup(second.stopService)
        assert second.port is not None
        self.assertEqual(second.port.getHost().port, port)  # type: ignore[attr-defined]
        return connectPeer(port).addCallback(
            lambda peer: peer.transport.loseConnection()
        )


def freePort() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@defer.inlineCallbacks
def waitGone(pids: list[int], timeout: float) -> Generator[Any, Any, None]:
    deadline = reactor.seconds() + timeout  # type: ignore[attr-defined]
    while not all(gone(pid) for pid in pids):
        if reactor.seconds() > deadline:  # type: ignore[attr-defined]
            raise AssertionError(f"still running after {timeout} s: {pids}")
        yield task.deferLater(reactor, 0.05, lambda: None)


class WorkersSystemTests(TestCase):
    """
    A real C{twistd heartbeat --workers 2}.
    """

    timeout = 180

    def setUp(self) -> None:
        requireSystem(self, root=False)
        if workersUnsupported() is not None:
            raise self.skipTest(str(workersUnsupported()))

    @defer.inlineCallbacks
    def test_bothServe(self) -> Generator[Any, Any, None]:
        """
        Both workers answer pings on the one port (their log lines say
        which one served each connection); a killed worker is restarted and
        logged; killing the supervisor stops the workers.
        """
        port = freePort()
        server = ChildProcess(
            self,
            twistdArgv(
                "heartbeat",
                "--workers",
                "2",
                "--port",
                f"tcp:{port}:interface=127.0.0.1",
            ),
            label="twistd heartbeat --workers 2",
        )
        pids = {}
        for number in (1, 2):
            match = yield server.waitFor(rf"worker {number} started \(pid (\d+)\)", 60)
            pids[number] = int(match.group(1))
        for number in (1, 2):
            yield server.waitFor(rf"\[worker {number} .*starting on {port}", 60)
        peers = []
        for _ in range(40):
            peer = yield connectPeer(port)
            peers.append(peer)
            peer.send(b"ping\n")
        for peer in peers:
            yield peer.expect(b"pong\n", 30)
            peer.transport.loseConnection()
        for number in (1, 2):
            yield server.waitFor(rf"\[worker {number} .*Client: Connect 1\b", 30)
        connected = server.containing("Client: Connect")
        self.assertEqual(len(connected), 40)

        os.kill(pids[1], 9)
        yield server.waitFor(r"worker 1 killed by signal 9 after .* restarting in", 30)
        yield server.waitUntil(
            lambda: len(server.containing("worker 1 started")) == 2,
            30,
            "worker 1 restarted",
        )
        restarted = [
            int(line.rsplit("pid ", 1)[1].rstrip(")"))
            for _, line in server.containing("worker 1 started")
        ]
        self.assertEqual(restarted[0], pids[1])
        self.assertNotEqual(restarted[1], pids[1])

        server.signal("KILL")
        yield server.whenEnded()
        yield waitGone([restarted[1], pids[2]], 20)
