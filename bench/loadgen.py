"""
The C load generator (C{bench/loadgen/loadgen.c}): build it, run one or
several of its processes against a server, and read their results along
with the server's CPU time and memory over the same window.

The generator is compiled with C{gcc} into C{bench/loadgen/build/}
(ignored by git) the first time it is needed and again whenever its source
changes.  One generator process is one epoll loop over nonblocking
sockets, so it costs a few microseconds per reply: far less than the Python
servers it drives (see C{bench/README.rst}).

As a script, it drives a server that is already listening::

    python bench/loadgen.py --port 6666 --mode closed --connections 100 \\
        --duration 10 --server-pid PID
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from _common import machineLines, positiveFloat, positiveInt

__all__ = [
    "LoadResult",
    "ProcessTree",
    "build",
    "buildError",
    "runLoad",
    "sourceAddresses",
    "waitListening",
]

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "loadgen" / "loadgen.c"
BUILD = HERE / "loadgen" / "build"
#: File descriptors one generator process may use (the machine's limit is
#: 20,000 a process); larger runs use several processes.
PER_PROCESS = 19_000
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def buildError() -> str | None:
    """
    Why the generator cannot be built here, or L{None} if it can.
    """
    if shutil.which("gcc") is None:
        return "gcc is not on PATH"
    if not sys.platform.startswith("linux"):
        return f"the generator uses epoll (Linux); this is {sys.platform}"
    return None


def build() -> Path:
    """
    Compile the generator if its binary is missing or older than its
    source; return the binary's path.
    """
    binary = BUILD / "loadgen"
    if binary.exists() and binary.stat().st_mtime >= SOURCE.stat().st_mtime:
        return binary
    why = buildError()
    if why is not None:
        raise RuntimeError(f"cannot build the load generator: {why}")
    BUILD.mkdir(parents=True, exist_ok=True)
    partial = BUILD / f"loadgen.{os.getpid()}"
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-Wextra", "-o", str(partial), str(SOURCE)],
        check=True,
    )
    partial.replace(binary)
    return binary


def waitListening(
    port: int,
    host: str = "127.0.0.1",
    timeout: float = 60,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    """
    Return once something accepts connections on C{host:port}; raise
    L{RuntimeError} after C{timeout} seconds, or as soon as C{alive()}
    (the server process still runs) is false.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or not alive():
                raise RuntimeError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.05)


def sourceAddresses(count: int) -> list[str]:
    """
    C{count} loopback source addresses, C{127.0.0.2} upwards (one address
    pair has only about 28,000 ephemeral ports).
    """
    return [f"127.0.0.{2 + index}" for index in range(count)]


class ProcessTree:
    """
    CPU time and resident memory of a process and its descendants (the
    workers of C{twistd heartbeat --workers N}), read from C{/proc}.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def pids(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def leaves(self) -> list[int]:
        """
        The processes that do the work: the workers if there are any,
        else the process itself.
        """
        pids = self.pids()
        return pids[1:] if len(pids) > 1 else pids

    def cpu(self) -> tuple[float, float]:
        """
        C{(user, system)} CPU seconds of the whole tree so far.
        """
        user = system = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            user += int(fields[11]) / TICK
            system += int(fields[12]) / TICK
        return user, system

    def rss(self) -> int:
        """
        Resident bytes of the whole tree now.
        """
        total = 0
        for pid in self.pids():
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            except OSError:
                continue
        return total


class LoadResult:
    """
    What the generator processes measured in one window, summed, with the
    server's CPU over the same window.

    @ivar replies: Reply lines received in the window.
    @ivar seconds: The window's length.
    @ivar latency: Round-trip latency histogram, microseconds to count.
    @ivar closeTimes: C{("silent" or "busy", seconds)} for each connection
        the server closed: from its last sent byte to the FIN seen here.
    @ivar serverUser: Server user CPU seconds in the window (also
        C{serverSystem}); L{None} without a server pid.
    @ivar serverRssAtStart: Server resident bytes as the window opens
        (C{serverRss}: as it closes).
    @ivar raw: Each process's own JSON result.
    """

    def __init__(self) -> None:
        self.replies = 0
        self.seconds = 0.0
        self.latency: dict[int, int] = {}
        self.closeTimes: list[tuple[str, float]] = []
        self.serverUser: float | None = None
        self.serverSystem: float | None = None
        self.serverRss: int | None = None
        self.serverRssAtStart: int | None = None
        self.raw: list[dict[str, Any]] = []

    def total(self, key: str) -> int:
        """
        The sum of C{key} over the processes.
        """
        return sum(int(one[key]) for one in self.raw)

    @property
    def rate(self) -> float:
        """
        Replies per second.
        """
        return self.replies / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """
        The C{q} quantile of the latency, in milliseconds.
        """
        count = sum(self.latency.values())
        if not count:
            return 0.0
        want = min(count - 1, int(q * count))
        seen = 0
        for micros in sorted(self.latency):
            seen += self.latency[micros]
            if seen > want:
                return micros / 1000
        return max(self.latency) / 1000

    @property
    def serverCpu(self) -> float | None:
        """
        Server CPU seconds (user + system) in the window.
        """
        if self.serverUser is None or self.serverSystem is None:
            return None
        return self.serverUser + self.serverSystem

    @property
    def clientCpu(self) -> float:
        """
        The generator processes' CPU seconds in the window.
        """
        return sum(float(one["cpu_s"]) for one in self.raw)

    def perReply(self, seconds: float | None) -> float | None:
        """
        C{seconds} of CPU per reply, in microseconds.
        """
        if seconds is None or not self.replies:
            return None
        return seconds / self.replies * 1e6


def _readLines(process: subprocess.Popen[str], timeout: float) -> Iterable[str]:
    stdout: IO[str] | None = process.stdout
    assert stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise RuntimeError(f"load generator silent for {timeout} s")
            line = stdout.readline()
            if not line:
                return
            yield line.strip()


def _expect(process: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    for line in _readLines(process, timeout):
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"load generator ended before {prefix!r}")


def runLoad(
    port: int,
    connections: int,
    mode: str = "closed",
    duration: float = 5.0,
    warmup: float = 1.0,
    processes: int | None = None,
    sources: Sequence[str] = (),
    period: float = 5.0,
    jitter: float = 0.1,
    silent: float = 0.0,
    server: ProcessTree | None = None,
    cpus: Sequence[int] = (),
    connectTimeout: float = 120.0,
    workDir: Path | None = None,
) -> LoadResult:
    """
    Run C{processes} generator processes (enough for C{connections} at
    L{PER_PROCESS} each by default) against C{127.0.0.1:port}, open one
    window C{warmup} seconds after every connection is up, and return what
    they measured in it, with C{server}'s CPU time over the window and
    its memory at the window's end.

    @param cpus: CPUs the generators may run on (all if empty).
    @param sources: Source addresses, shared round robin.
    """
    binary = build()
    if processes is None:
        processes = max(1, -(-connections // PER_PROCESS))
    shares = [connections // processes] * processes
    for index in range(connections % processes):
        shares[index] += 1
    tmp = workDir or Path(os.environ.get("TMPDIR", "/tmp"))
    stamp = f"{os.getpid()}-{time.monotonic_ns()}"
    files = [
        (tmp / f"hb-lat-{stamp}-{i}", tmp / f"hb-close-{stamp}-{i}")
        for i in range(processes)
    ]
    running: list[subprocess.Popen[str]] = []
    result = LoadResult()
    try:
        for index, share in enumerate(shares):
            argv = [
                str(binary),
                "--port", str(port),
                "--connections", str(share),
                "--mode", mode,
                "--duration", str(duration),
                "--period", str(period),
                "--jitter", str(jitter),
                "--silent", str(silent),
                "--seed", str(index + 1),
                "--go", "stdin",
                "--connect-timeout", str(connectTimeout),
                "--histogram", str(files[index][0]),
                "--close-times", str(files[index][1]),
            ]  # fmt: skip
            if sources:
                argv += ["--sources", ",".join(sources)]
            process = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            running.append(process)
            if cpus:
                os.sched_setaffinity(process.pid, cpus)
        for process in running:
            _expect(process, "connected", connectTimeout + 30)
        time.sleep(warmup)  # a fixed warm-up, not synchronisation
        before = server.cpu() if server else None
        if server is not None:
            result.serverRssAtStart = server.rss()
        for process in running:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in running:
            _expect(process, "end", duration + 60)
        if server is not None and before is not None:
            after = server.cpu()
            result.serverUser = after[0] - before[0]
            result.serverSystem = after[1] - before[1]
            result.serverRss = server.rss()
        for process in running:
            result.raw.append(json.loads(_expect(process, "{", 60)))
            process.wait(60)
        result.replies = result.total("replies")
        result.seconds = duration
        for latency, closes in files:
            for line in latency.read_text().splitlines():
                micros, count = line.split()
                result.latency[int(micros)] = result.latency.get(int(micros), 0) + int(
                    count
                )
            for line in closes.read_text().splitlines():
                kind, seconds = line.split()
                result.closeTimes.append((kind, float(seconds)))
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()
                process.wait(10)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        for paths in files:
            for path in paths:
                path.unlink(missing_ok=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Drive a listening ping/pong server with the C load generator."
    )
    parser.add_argument("--port", type=positiveInt, required=True)
    parser.add_argument("--mode", choices=["closed", "fleet"], default="closed")
    parser.add_argument("--connections", type=positiveInt, default=100)
    parser.add_argument("--processes", type=positiveInt, default=None)
    parser.add_argument(
        "--sources",
        type=positiveInt,
        default=0,
        help="loopback source addresses to spread over",
    )
    parser.add_argument("--duration", type=positiveFloat, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--period", type=positiveFloat, default=5.0)
    parser.add_argument("--silent", type=float, default=0.0)
    parser.add_argument(
        "--server-pid",
        type=positiveInt,
        default=None,
        help="report this process tree's CPU in the window",
    )
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args(argv)
    binary = build()
    if args.build_only:
        print(binary)
        return 0
    waitListening(args.port)
    result = runLoad(
        args.port,
        args.connections,
        mode=args.mode,
        duration=args.duration,
        warmup=args.warmup,
        processes=args.processes,
        sources=sourceAddresses(args.sources),
        period=args.period,
        silent=args.silent,
        server=ProcessTree(args.server_pid) if args.server_pid else None,
    )
    print("\n".join(machineLines()))
    print(
        f"{args.mode}: {result.total('connected'):,} connected, "
        f"{result.replies:,} replies in {result.seconds:.1f} s = "
        f"{result.rate:,.0f}/s; latency p50 {result.percentile(0.5):.3f} ms, "
        f"p99 {result.percentile(0.99):.3f} ms"
    )
    print(
        f"load generator CPU {result.clientCpu / result.seconds:.0%} of a core, "
        f"{result.perReply(result.clientCpu) or 0:.2f} us per reply"
    )
    if result.serverCpu is not None:
        print(
            f"server CPU {result.serverCpu / result.seconds:.0%} of a core, "
            f"{result.perReply(result.serverUser) or 0:.2f} us user + "
            f"{result.perReply(result.serverSystem) or 0:.2f} us sys per reply"
        )
    closes = [seconds for kind, seconds in result.closeTimes if kind == "silent"]
    if closes:
        low, high = min(closes), max(closes)
        print(f"silent closed: {len(closes)}, after {low:.3f}..{high:.3f} s")
    print(f"busy closed: {result.total('busy_closed')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
