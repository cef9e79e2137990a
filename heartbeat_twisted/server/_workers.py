"""
All cores for C{twistd heartbeat}: C{--workers N} (see L{_reuseport} for
C{--reuse-port}, which the workers use).

C{--workers N} makes C{twistd heartbeat} a supervisor: it listens on
nothing itself and runs N worker processes, each a C{twistd -n heartbeat
--reuse-port} with the same options and the environment variable
C{HEARTBEAT_WORKER} set to its number (1..N).  A worker whose supervisor
dies gets C{SIGTERM} from the kernel (C{PR_SET_PDEATHSIG}); a worker that
exits while the supervisor runs is logged and restarted, after a delay that
doubles while it keeps failing early.  Each worker's log lines carry
C{worker N} in their system field, and the metrics read the same variable.
Linux only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, protocol
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.logger import ILogObserver, Logger, LogPublisher, globalLogPublisher
from twisted.python.failure import Failure
from twisted.python.reflect import accumulateClassList
from zope.interface import implementer

from ._reuseport import parseListenAddress, workersUnsupported

__all__ = [
    "WORKER_ENVIRONMENT",
    "WorkerSupervisor",
    "becomeWorker",
    "dieWithParent",
    "supervisorLogfile",
    "tagLogsWithWorker",
    "workerArgv",
    "workerNumber",
    "workersFromOptions",
]

#: The environment variable that tells a worker its number (1..N); unset
#: in a server that is not a worker.  The metrics label their samples with it.
WORKER_ENVIRONMENT = "HEARTBEAT_WORKER"

_log = Logger()


def workerNumber(environ: Mapping[str, str] | None = None) -> int | None:
    """
    This process's worker number from C{HEARTBEAT_WORKER}, or L{None} when
    it is not a worker (unset, empty or not a positive whole number).
    """
    value = (os.environ if environ is None else environ).get(WORKER_ENVIRONMENT, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def tagLogsWithWorker(number: int, publisher: LogPublisher | None = None) -> None:
    """
    Put C{worker N} at the front of the system field of every event
    C{publisher} (the global one by default) sends to the observers added
    after this call, such as twistd's log file: in the classic text format
    C{[worker 2 heartbeat_twisted.server._protocol.DemoProtocol#info]}.
    The event also gets C{heartbeat_worker=N}.
    (An observer that changes the event is the one place where the system
    field of every line, Twisted's own included, can be set: twistd adds
    its log file after the plugin made its service.)
    """
    target = globalLogPublisher if publisher is None else publisher

    @implementer(ILogObserver)
    def tag(event: dict[str, Any]) -> None:
        if "heartbeat_worker" in event:
            return
        event["heartbeat_worker"] = number
        system = event.get("log_system")
        if system is None:
            level = event.get("log_level")
            name = "-" if level is None else level.name
            system = f"{event.get('log_namespace', '-')}#{name}"
        event["log_system"] = f"worker {number} {system}"

    target.addObserver(tag)


_REACTOR_NAMES = {
    "twisted.internet.epollreactor": "epoll",
    "twisted.internet.pollreactor": "poll",
    "twisted.internet.selectreactor": "select",
    "twisted.internet.asyncioreactor": "asyncio",
}


def workerArgv(options: Any, reactor: Any, logfile: str | None = None) -> list[str]:
    """
    The command line of one worker: C{twistd -n heartbeat} on this Python,
    with the reactor in use, every option of C{options} that differs from
    its default (C{--workers} left out) and C{--reuse-port}.

    @param options: The supervisor's parsed C{heartbeat} options.
    @param logfile: Where the worker logs (C{{worker}} in it becomes the
        worker's number); stdout (C{-}) if L{None}.
    """
    argv = [
        sys.executable,
        "-c",
        "from twisted.scripts.twistd import run; run()",
        "-n",
        "--pidfile=",
        f"--logfile={logfile or '-'}",
    ]
    name = _REACTOR_NAMES.get(type(reactor).__module__)
    if name is not None:
        argv.append(f"--reactor={name}")
    argv.append("heartbeat")
    argv += [f"--port={port}" for port in options["port"]]
    parameters: list[Any] = []
    accumulateClassList(type(options), "optParameters", parameters)  # type: ignore[no-untyped-call]
    for long, _, default, *_ in parameters:
        value = options[long]
        if long != "workers" and value is not None and value != default:
            argv.append(f"--{long}={value}")
    for long, *_ in options.optFlags:
        if options[long] and long != "reuse-port":
            argv.append(f"--{long}")
    argv.append("--reuse-port")
    return argv


_PR_SET_PDEATHSIG = 1


def dieWithParent(parent: int, sig: int = signal.SIGTERM) -> None:
    """
    Ask the kernel to send C{sig} to this process when its parent dies
    (Linux C{prctl(PR_SET_PDEATHSIG)}), and send it now if the parent,
    whose pid was C{parent}, is already gone.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


def becomeWorker(environ: Mapping[str, str] | None = None) -> int | None:
    """
    In a worker (C{HEARTBEAT_WORKER} set): tag the logs with its number
    and arrange to stop with the supervisor.  Return the number, or
    L{None} (doing nothing) in a server that is not a worker.
    """
    environ = os.environ if environ is None else environ
    number = workerNumber(environ)
    if number is None:
        return None
    tagLogsWithWorker(number)
    supervisor = environ.get("HEARTBEAT_SUPERVISOR", "")
    if supervisor.isdigit():
        dieWithParent(int(supervisor))
    return number


def workersFromOptions(options: Any) -> int | None:
    """
    Check C{--workers} and C{--reuse-port}; return the number of workers,
    or L{None} for a single process.

    @raise UsageError: For a bad count, a platform without
        C{SO_REUSEPORT}, or an endpoint other than C{tcp:} with a fixed
        port.
    """
    from twisted.python.usage import UsageError

    value = options["workers"]
    reusePort = options["reuse-port"]
    if value is None and not reusePort:
        return None
    count: int | None = None
    if value is not None:
        text = str(value).strip()
        if not text.isdigit() or not 1 <= int(text) <= 256:
            raise UsageError(f"--workers must be a whole number in 1..256: {value!r}")
        count = int(text)
    option = "--workers" if count is not None else "--reuse-port"
    why = workersUnsupported()
    if why is not None:
        raise UsageError(f"{option} {why}")
    try:
        # A haproxy: port is the tcp: one under the PROXY header.
        endpoint = options.endpoint.removeprefix("haproxy:")
        port, _, _ = parseListenAddress(endpoint)
    except ValueError as e:
        raise UsageError(f"{option}: --port {e}") from None
    if count is not None and port == 0:
        raise UsageError("--workers needs a fixed port, not 0")
    return count


def supervisorLogfile(options: Any) -> str | None:
    """
    Where the workers log: to the supervisor's stdout (L{None}) when
    C{twistd -n} logs there, to the same device when it logs to one (such
    as C{/dev/null}), else to C{LOGFILE.worker-N} next to the supervisor's
    log file.
    """
    parent = getattr(options, "parent", None)
    if parent is None:
        return None
    try:
        nodaemon, logfile = parent["nodaemon"], parent["logfile"]
    except KeyError:
        return None
    if logfile == "-" or (nodaemon and not logfile):
        return None
    if logfile and os.path.exists(logfile) and not os.path.isfile(logfile):
        return str(logfile)  # a device such as /dev/null: share it
    return f"{logfile or 'twistd.log'}.worker-{{worker}}"


class _Worker(protocol.ProcessProtocol):
    def __init__(self, supervisor: WorkerSupervisor, number: int) -> None:
        self.supervisor = supervisor
        self.number = number
        self.startedAt = 0.0
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.transport: Any = None

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(None)
        self.supervisor.workerEnded(self, reason)


class WorkerSupervisor(Service):
    """
    Run C{count} worker processes; restart one that exits while this
    service runs; stop them all when it stops (C{SIGTERM}, then C{SIGKILL}
    after C{stopGrace} seconds).

    @param argv: The worker's command line (C{argv[0]} the program).
    @param childFDs: What the workers inherit (by default stdin is closed
        and stdout and stderr are this process's own, so their logs go
        where a C{twistd -n} supervisor's go).
    @ivar workers: The running workers by number.
    @ivar restarts: Restarts so far by worker number.
    """

    stopGrace = 10.0
    minimumRestartDelay = 0.5
    maximumRestartDelay = 30.0

    def __init__(
        self,
        count: int,
        argv: Sequence[str],
        reactor: Any,
        environ: Mapping[str, str] | None = None,
        childFDs: Mapping[int, Any] | None = None,
    ) -> None:
        self.count = count
        self.argv = list(argv)
        self.reactor = reactor
        self.environ = dict(os.environ if environ is None else environ)
        self.childFDs = dict(childFDs or {0: "w", 1: 1, 2: 2})
        self.workers: dict[int, _Worker] = {}
        self.restarts: dict[int, int] = {}
        self._delays: dict[int, float] = {}
        self._pending: dict[int, Any] = {}

    def startService(self) -> None:
        Service.startService(self)  # type: ignore[no-untyped-call]
        for number in range(1, self.count + 1):
            self.spawn(number)

    def spawn(self, number: int) -> None:
        """
        Start worker C{number}.
        """
        self._pending.pop(number, None)
        worker = _Worker(self, number)
        env = {
            **self.environ,
            WORKER_ENVIRONMENT: str(number),
            "HEARTBEAT_SUPERVISOR": str(os.getpid()),
        }
        argv = [arg.replace("{worker}", str(number)) for arg in self.argv]
        worker.startedAt = self.reactor.seconds()
        worker.transport = self.reactor.spawnProcess(
            worker, argv[0], argv, env=env, childFDs=self.childFDs
        )
        self.workers[number] = worker
        _log.info(
            "worker {worker} started (pid {pid})",
            worker=number,
            pid=worker.transport.pid,
        )

    def workerEnded(self, worker: _Worker, reason: Failure) -> None:
        """
        Log why C{worker} ended; restart it if this service still runs.
        """
        if self.workers.get(worker.number) is worker:
            del self.workers[worker.number]
        value = reason.value
        how = "exited"
        if isinstance(value, ProcessTerminated):
            how = (
                f"killed by signal {value.signal}"
                if value.signal is not None
                else f"exited with code {value.exitCode}"
            )
        elif isinstance(value, ProcessDone):
            how = "exited with code 0"
        if not self.running:
            _log.info("worker {worker} stopped: {how}", worker=worker.number, how=how)
            return
        ranFor = self.reactor.seconds() - worker.startedAt
        delay = self._delays.get(worker.number, 0.0)
        delay = (
            self.minimumRestartDelay
            if ranFor > 10.0
            else min(
                self.maximumRestartDelay,
                max(self.minimumRestartDelay, 2 * delay),
            )
        )
        self._delays[worker.number] = delay
        self.restarts[worker.number] = self.restarts.get(worker.number, 0) + 1
        _log.warn(
            "worker {worker} {how} after {ranFor:.1f} s; restarting in {delay} s",
            worker=worker.number,
            how=how,
            ranFor=ranFor,
            delay=delay,
        )
        self._pending[worker.number] = self.reactor.callLater(
            delay, self.spawn, worker.number
        )

    def stopService(self) -> defer.Deferred[Any]:
        """
        Stop every worker; fire when all have ended.
        """
        Service.stopService(self)  # type: ignore[no-untyped-call]
        for call in self._pending.values():
            if call.active():
                call.cancel()
        self._pending.clear()
        ended = []
        for worker in list(self.workers.values()):
            ended.append(worker.ended)
            _signal(worker, "TERM")
            killer = self.reactor.callLater(self.stopGrace, _signal, worker, "KILL")
            worker.ended.addBoth(_cancelling(killer))
        return defer.DeferredList(ended)


def _signal(worker: _Worker, name: str) -> None:
    try:
        worker.transport.signalProcess(name)
    except Exception:
        pass  # already gone


def _cancelling(call: Any) -> Callable[[Any], Any]:
    def cancel(result: Any) -> Any:
        if call.active():
            call.cancel()
        return result

    return cancel
