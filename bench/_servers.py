"""
Servers for the load-generator benchmarks (C{compare.py}, C{scale.py}):
a plain Twisted C{LineReceiver} ping/pong server and C{twistd heartbeat},
each in its own process, started, pinned, measured and stopped here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from loadgen import ProcessTree, waitListening

__all__ = [
    "Server",
    "freePort",
    "hasOption",
    "limitsOff",
    "plainArgv",
    "priority",
    "servePlain",
    "twistdArgv",
]

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def freePort() -> int:
    """
    A TCP port that was free on 127.0.0.1 a moment ago.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def twistdArgv(logfile: str, *options: str) -> list[str]:
    """
    C{twistd -n heartbeat OPTIONS} on this Python, logging to C{logfile}.
    """
    return [
        PYTHON,
        "-c",
        "from twisted.scripts.twistd import run; run()",
        "-n",
        "--pidfile=",
        f"--logfile={logfile}",
        "heartbeat",
        *options,
    ]


_help: str | None = None


def hasOption(option: str) -> bool:
    """
    Whether this tree's C{twistd heartbeat} has C{option} (so the scripts
    run on trees from before and after an option lands).
    """
    global _help
    if _help is None:
        _help = subprocess.run(
            [*twistdArgv("-")[:-1], "heartbeat", "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    return option in _help


def limitsOff() -> list[str]:
    """
    The C{twistd heartbeat} options that lift its per-address connection
    limits (a benchmark opens thousands of connections from a few loopback
    addresses), for the limits this tree has.
    """
    options = []
    for option in ("--max-connections-per-ip", "--connection-rate"):
        if hasOption(option):
            options += [option, "0"]
    return options


def servePlain(port: int, backlog: int = 1024, workers: int = 0) -> int:
    """
    The plain Twisted server: C{ping} answered by C{pong}, nothing else.
    Runs until SIGTERM.  With C{workers}, runs that many copies of itself
    that share the port with C{SO_REUSEPORT} (and stop with this one).
    """
    if workers:
        return _plainWorkers(port, backlog, workers)
    from twisted.internet import reactor
    from twisted.internet.protocol import Factory
    from twisted.protocols.basic import LineReceiver

    class Plain(LineReceiver):
        delimiter = b"\n"

        def lineReceived(self, line: bytes) -> None:
            if line == b"ping":
                self.sendLine(b"pong")

    factory = Factory.forProtocol(Plain)
    factory.noisy = False
    if os.environ.get("HB_BENCH_REUSE_PORT"):
        from heartbeat_twisted.server._reuseport import ReusePortService
        from heartbeat_twisted.server._workers import dieWithParent

        dieWithParent(int(os.environ["HB_BENCH_REUSE_PORT"]))
        service = ReusePortService(
            f"tcp:{port}:interface=127.0.0.1:backlog={backlog}", factory, reactor
        )
        service.startService()
    else:
        reactor.listenTCP(port, factory, backlog=backlog, interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    return 0


def _plainWorkers(port: int, backlog: int, workers: int) -> int:
    env = {**os.environ, "HB_BENCH_REUSE_PORT": str(os.getpid())}
    children = [
        subprocess.Popen(
            [PYTHON, str(HERE / "_servers.py"), str(port), str(backlog)], env=env
        )
        for _ in range(workers)
    ]
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    for child in children:
        child.terminate()
    for child in children:
        child.wait(30)
    return 0


class Server:
    """
    One server process, pinned to C{cpus} (all if empty).

    @ivar tree: Its CPU and memory, workers included.
    @ivar baseRss: Its resident memory once listening, before any load.
    """

    def __init__(
        self, name: str, argv: Sequence[str], port: int, cpus: Sequence[int] = ()
    ) -> None:
        self.name = name
        self.port = port
        self.logdir = tempfile.mkdtemp(prefix="hb-bench-")
        self.log = open(os.path.join(self.logdir, "out"), "wb")
        self.process = subprocess.Popen(
            list(argv), stdout=self.log, stderr=subprocess.STDOUT
        )
        if cpus:
            os.sched_setaffinity(self.process.pid, cpus)
        self.tree = ProcessTree(self.process.pid)
        try:
            waitListening(port, timeout=120, alive=lambda: self.process.poll() is None)
        except Exception:
            output = self.output()
            self.stop()
            raise RuntimeError(f"{name}: not listening; output:\n{output}") from None
        self.baseRss = self.tree.rss()

    def output(self) -> str:
        self.log.flush()
        return Path(self.logdir, "out").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()
        for name in os.listdir(self.logdir):
            os.unlink(os.path.join(self.logdir, name))
        os.rmdir(self.logdir)


def plainArgv(port: int, workers: int = 0, backlog: int = 1024) -> list[str]:
    """
    The plain server's command line (see L{servePlain}).
    """
    return [PYTHON, str(HERE / "_servers.py"), str(port), str(backlog), str(workers)]


class priority:
    """
    With C{enabled}, run the benchmark's session at scheduler priority
    -20 (its Linux autogroup's nice value) until the block ends: on a
    machine shared with other jobs, the only way the server gets a whole
    core.  Needs root; restores the old value on exit.
    """

    PATH = "/proc/self/autogroup"

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.old: str | None = None

    def __enter__(self) -> priority:
        if self.enabled:
            text = Path(self.PATH).read_text()
            self.old = text.split("nice")[-1].strip()
            Path(self.PATH).write_text("-20")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.old is not None:
            Path(self.PATH).write_text(self.old)


if __name__ == "__main__":
    raise SystemExit(servePlain(*(int(arg) for arg in sys.argv[1:])))
