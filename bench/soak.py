"""
The attacks of tests/test_hostile.py at full size against a real
C{twistd heartbeat}, with well-behaved clients pinging throughout.

Each attack runs in client processes of its own (raw non-blocking sockets,
one selector loop each), from loopback source addresses of its own; the
server runs with C{--limit-loopback} so the per-address limits apply:

- flood: C{--flood} connections (default 20,000) over 4 processes and 20
  source addresses, each sending a blank line every 2 s;
- unread: one client pings as fast as it can and never reads, until it is
  closed or has sent C{--unread-mb} MB (50) (the server runs with
  C{--ping-rate 0}: no flood limit, as in the issue);
- long line: 1 MB in 100-byte pieces, again and again;
- slowloris: 200 connections sending one byte every 0.5 s;
- good: 50 clients pinging every second, each pong's latency recorded.

The attacking processes run at niceness C{--nice} (10): they stand in for
other machines, and on this one should not take the CPU from the server
and the measuring client first (C{--nice 0} lets them compete).

Recorded: the server's descriptors and RSS before, at most and after,
its log's growth (rotated files included), the good clients' latency
percentiles and losses; what explains them: the server's CPU and the
time it waited, runnable, for a CPU, the reactor lag probe, the CPU of
the client processes, the measuring loop's own longest stall, and the
pongs over 1 s by 10 s of the run.  With C{--probe}, a sitecustomize in
the server measures its longest reactor turn, accept batch, timed calls
and garbage collections.

    python bench/soak.py                 # about a minute
    python bench/soak.py --minutes 10    # the long run
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from _common import machineLines, positiveFloat, positiveInt, table

HERE = os.path.dirname(os.path.abspath(__file__))


#: With --probe: a sitecustomize for the server process that measures,
#: without changing it, what a reactor turn costs: the longest turn (in
#: CPU, and its wall time), the longest run of timed calls, the most
#: connections one accept batch took, and the garbage collector's pauses.
PROBE = """
import atexit, gc, json, os, time
from twisted.internet import base, tcp
from twisted.python import log

now = time.perf_counter
stats = {
    "turnMaxCpu": 0.0, "turnMaxWall": 0.0, "turnsOver100msCpu": 0,
    "turnsOver1sCpu": 0,
    "timedMax": 0.0, "acceptMax": 0, "acceptMaxSeconds": 0.0,
    "gcCount": [0, 0, 0], "gcSeconds": [0.0, 0.0, 0.0], "gcMax": [0.0, 0.0, 0.0],
}

def timeTurns(reactor):
    # Wrap the reactor's own doIteration (the server may have replaced it
    # with its direct dispatch by now): each turn's CPU, which the poll's
    # wait does not add to, and its wall time.
    inner = reactor.doIteration
    def doIteration(timeout):
        wall, cpu = now(), time.thread_time()
        inner(timeout)
        cpu, wall = time.thread_time() - cpu, now() - wall
        if cpu > stats["turnMaxCpu"]:
            stats["turnMaxCpu"], stats["turnMaxWall"] = cpu, wall
        stats["turnsOver100msCpu"] += cpu > 0.1
        stats["turnsOver1sCpu"] += cpu > 1
    reactor.doIteration = doIteration

runTimed = base.ReactorBase.runUntilCurrent
def runUntilCurrent(self):
    if "doIteration" not in stats:
        stats["doIteration"] = type(self.doIteration).__name__
        timeTurns(self)
    start = now()
    runTimed(self)
    stats["timedMax"] = max(stats["timedMax"], now() - start)
base.ReactorBase.runUntilCurrent = runUntilCurrent

accept = tcp.Port.doRead
def doRead(self):
    before, start = self.sessionno, now()
    try:
        return accept(self)
    finally:
        if self.sessionno - before > stats["acceptMax"]:
            stats["acceptMax"] = self.sessionno - before
            stats["acceptMaxSeconds"] = now() - start
tcp.Port.doRead = doRead

began = [0.0, 0.0]
stats["gcCpu"] = [0.0, 0.0, 0.0]
def collected(phase, info):
    if phase == "start":
        began[:] = [now(), time.thread_time()]
        return
    took, g = now() - began[0], info["generation"]
    stats["gcCount"][g] += 1
    stats["gcSeconds"][g] += took
    stats["gcCpu"][g] += time.thread_time() - began[1]
    stats["gcMax"][g] = max(stats["gcMax"][g], took)
gc.callbacks.append(collected)


@atexit.register
def write():
    with open(os.environ["HB_SOAK_PROBE"], "w") as f:
        json.dump(stats, f)
"""


def connect(source: str, port: int) -> socket.socket | None:
    sock = socket.socket()
    sock.setblocking(False)
    try:
        sock.bind((source, 0))
        sock.connect_ex(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


def runGood(port: int, count: int, seconds: float) -> dict[str, Any]:
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), 10, ("127.0.0.3", 0))
        sock.setblocking(False)
        socks.append(sock)
        selector.register(sock, selectors.EVENT_READ)
    sentAt: dict[socket.socket, float] = {}
    latencies: list[float] = []
    slow: list[tuple[float, float]] = []
    lost = 0
    start = time.monotonic()
    end = start + seconds
    nextPing = {s: time.monotonic() + i / count for i, s in enumerate(socks)}
    # The measuring loop's own stalls (a starved client process): the
    # longest gap between two of its turns, and when.
    stall = (0.0, 0.0)
    last = start
    while time.monotonic() < end and socks:
        now = time.monotonic()
        if now - last > stall[0]:
            stall = (now - last, last - start)
        last = now
        for sock in socks:
            if now >= nextPing[sock] and sock not in sentAt:
                sock.send(b"ping\n")
                sentAt[sock] = now
                nextPing[sock] = now + 1.0
        for key, _ in selector.select(0.01):
            sock = key.fileobj  # type: ignore[assignment]
            data = sock.recv(4096)
            if not data:
                lost += 1
                selector.unregister(sock)
                socks.remove(sock)
                continue
            if b"pong" in data and sock in sentAt:
                sent = sentAt.pop(sock)
                latencies.append(time.monotonic() - sent)
                if latencies[-1] > 1:
                    slow.append((round(sent - start, 2), round(latencies[-1], 3)))
    # Late pongs count at what they have waited so far.
    latencies += [time.monotonic() - t for t in sentAt.values()]
    return {
        "latencies": latencies,
        "lost": lost,
        "clients": count,
        "slow": slow,
        "stall": [round(stall[0], 3), round(stall[1], 2)],
    }


def runFlood(
    port: int, count: int, sources: list[str], seconds: float
) -> dict[str, Any]:
    selector = selectors.DefaultSelector()
    open_: set[socket.socket] = set()
    failed = closed = 0
    end = time.monotonic() + seconds
    made = 0
    nextTrickle = time.monotonic() + 2
    while time.monotonic() < end:
        while made < count and len(open_) < count:
            sock = connect(sources[made % len(sources)], port)
            made += 1
            if sock is None:
                failed += 1
                continue
            open_.add(sock)
            selector.register(sock, selectors.EVENT_READ)
            if made % 500 == 0:
                break
        if time.monotonic() >= nextTrickle:
            nextTrickle = time.monotonic() + 2
            for sock in list(open_):
                try:
                    sock.send(b"\n")
                except OSError:
                    pass
        for key, _ in selector.select(0.05):
            sock = key.fileobj  # type: ignore[assignment]
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                closed += 1
                selector.unregister(sock)
                open_.discard(sock)
                sock.close()
    return {
        "attempted": made,
        "closedByServer": closed,
        "failed": failed,
        "stillOpen": len(open_),
    }


def runUnread(port: int, megabytes: int, seconds: float) -> dict[str, Any]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.2.1", 0))
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(1)
    chunk = b"ping\n" * 20000
    sent = 0
    start = time.monotonic()
    closedAfter = None
    while sent < megabytes * 1_000_000 and time.monotonic() - start < seconds:
        try:
            sent += sock.send(chunk)
        except TimeoutError:
            continue
        except OSError:
            closedAfter = time.monotonic() - start
            break
    return {"sent": sent, "closedAfter": closedAfter}


def runLongLine(port: int, seconds: float) -> dict[str, Any]:
    rounds = rejected = failed = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            sock = socket.create_connection(("127.0.0.1", port), 10, ("127.0.2.2", 0))
        except OSError:
            failed += 1
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rounds += 1
        try:
            for _ in range(10000):
                sock.send(b"z" * 100)
        except OSError:
            pass
        sock.settimeout(5)
        try:
            if b"line_too_long" in sock.recv(4096):
                rejected += 1
        except OSError:
            pass
        sock.close()
    return {"lines": rounds, "rejected": rejected, "connectFailed": failed}


def runSlowloris(port: int, count: int, seconds: float) -> dict[str, Any]:
    socks = [connect("127.0.2.3", port) for _ in range(count)]
    alive = [s for s in socks if s is not None]
    closed = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and alive:
        for sock in list(alive):
            try:
                sock.send(b"x")
            except OSError:
                closed += 1
                alive.remove(sock)
        time.sleep(0.5)
    return {"connections": count, "closedByServer": closed}


def serverFigures(pid: int) -> tuple[int, int]:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    return fds, rss


def serverCpu(pid: int) -> float:
    """
    The CPU seconds (user and system) the server has used.
    """
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runQueueWait(pid: int) -> float:
    """
    Seconds the process has waited, runnable, for a CPU (schedstat).
    """
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def serverLag(metricsPort: int) -> float | None:
    """
    The server's latest reactor lag probe (its metrics page), in seconds.
    """
    import urllib.request

    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{metricsPort}/metrics", timeout=5
        ) as page:
            text = page.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("heartbeat_reactor_lag_seconds"):
            return float(line.rsplit(" ", 1)[1])
    return None


def logFiles(path: str) -> list[str]:
    """
    The log and the files twistd rotated it into (C{PATH.1}, ... every
    1,000,000 bytes).
    """
    import glob

    return [path, *glob.glob(glob.escape(path) + ".*")]


def logSize(path: str) -> int:
    """
    The bytes logged so far, rotated files included.
    """
    return sum(os.path.getsize(name) for name in logFiles(path))


def logKinds(path: str) -> dict[str, int]:
    """
    The log's lines by kind (their text with numbers and addresses
    blanked), rotated files included.
    """
    import collections
    import re

    kinds: collections.Counter[str] = collections.Counter()
    for name in logFiles(path):
        with open(name, errors="replace") as f:
            for line in f:
                text = line.split("] ", 1)[-1]
                kinds[re.sub(r"[\d.:\[\]]+", "N", text)[:60].strip()] += 1
    return dict(kinds.most_common(8))


def role(args: argparse.Namespace) -> None:
    seconds = args.seconds
    if args.role != "good" and args.nice:
        # Attackers stand in for other machines: on this one they should
        # not take the CPU from the server and the measuring client first.
        os.nice(args.nice)
    if args.role == "good":
        result = runGood(args.port, args.count, seconds)
    elif args.role == "flood":
        result = runFlood(args.port, args.count, args.sources.split(","), seconds)
    elif args.role == "unread":
        result = runUnread(args.port, args.count, seconds)
    elif args.role == "longline":
        result = runLongLine(args.port, seconds)
    else:
        result = runSlowloris(args.port, args.count, seconds)
    result["cpu"] = round(time.process_time(), 1)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--minutes", type=positiveFloat, default=1.0)
    parser.add_argument("--flood", type=positiveInt, default=20000)
    parser.add_argument("--unread-mb", type=positiveInt, default=50)
    parser.add_argument("--good", type=positiveInt, default=50)
    parser.add_argument(
        "--settle",
        type=float,
        default=7.0,
        help="seconds to wait after the run before the 'after' figures",
    )
    parser.add_argument(
        "--server-option",
        action="append",
        default=[],
        help="one more option for twistd heartbeat (repeat), e.g. "
        "--server-option=--log-rate=10",
    )
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="profile the server (cProfile stats to PATH; slows it down)",
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="measure the server's longest reactor turn, accept batch and "
        "GC pauses (a sitecustomize in the server process)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=10,
        help="niceness of the attacking processes (they stand in for other "
        "machines; 0 lets them compete with the server for the CPU) "
        "[default: 10]",
    )
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sources", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        role(args)
        return
    for line in machineLines():
        print(line)
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "twistd.log")
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        number = port.getsockname()[1]
        port.close()
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        metricsPort = port.getsockname()[1]
        port.close()
        environment = dict(os.environ)
        probeOut = os.path.join(tmp, "probe.json")
        if args.probe:
            os.mkdir(os.path.join(tmp, "probe"))
            with open(os.path.join(tmp, "probe", "sitecustomize.py"), "w") as f:
                f.write(PROBE)
            environment["PYTHONPATH"] = os.pathsep.join(
                [os.path.join(tmp, "probe"), environment.get("PYTHONPATH", "")]
            )
            environment["HB_SOAK_PROBE"] = probeOut
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from twisted.scripts.twistd import run; run()",
                "-n",
                "--pidfile=",
                f"--logfile={log}",
                *(
                    [f"--profile={args.profile}", "--profiler=cprofile", "--savestats"]
                    if args.profile
                    else []
                ),
                "heartbeat",
                "--port",
                f"tcp:{number}:interface=127.0.0.1",
                "--limit-loopback",
                "--ping-rate",
                "0",
                "--metrics-port",
                str(metricsPort),
                *args.server_option,
            ],
            env=environment,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", number), 1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            time.sleep(0.5)
            before = serverFigures(server.pid)
            logBefore = logSize(log)

            outputs: dict[Any, str] = {}

            def spawn(name: str, count: int, extra: list[str] = ()) -> Any:  # type: ignore[assignment]
                # Each role prints its result to a file: a pipe would fill
                # up (the good clients' latencies of a long run) while
                # nothing reads it, and the role would block on exit.
                path = os.path.join(tmp, f"role-{len(outputs)}.json")
                with open(path, "w") as out:
                    process = subprocess.Popen(
                        [
                            sys.executable,
                            __file__,
                            "--role",
                            name,
                            "--port",
                            str(number),
                            "--count",
                            str(count),
                            "--seconds",
                            str(seconds),
                            "--nice",
                            str(args.nice),
                            *extra,
                        ],
                        stdout=out,
                    )
                outputs[process] = path
                return process

            def result(process: Any) -> Any:
                process.wait()
                with open(outputs[process]) as f:
                    return json.load(f)

            good = spawn("good", args.good)
            time.sleep(1)
            per = args.flood // 4
            attackers = {
                f"flood {n}": spawn(
                    "flood",
                    per,
                    [
                        "--sources",
                        ",".join(f"127.0.1.{5 * n + k + 1}" for k in range(5)),
                    ],
                )
                for n in range(4)
            }
            attackers["unread"] = spawn("unread", args.unread_mb)
            attackers["long line"] = spawn("longline", 0)
            attackers["slowloris"] = spawn("slowloris", 200)
            peak = before
            cpuBefore = serverCpu(server.pid)
            waitBefore = runQueueWait(server.pid)
            loadBefore = os.getloadavg()[0]
            started = time.monotonic()
            lags: list[tuple[float, float]] = []
            while good.poll() is None:
                fds, rss = serverFigures(server.pid)
                peak = (max(peak[0], fds), max(peak[1], rss))
                lag = serverLag(metricsPort)
                if lag is not None:
                    lags.append((lag, time.monotonic() - started))
                time.sleep(1)
            cpu = serverCpu(server.pid) - cpuBefore
            waited = runQueueWait(server.pid) - waitBefore
            loadAfter = os.getloadavg()[0]
            elapsed = time.monotonic() - started
            results = {name: result(p) for name, p in attackers.items()}
            goodResult = result(good)
            time.sleep(args.settle)  # past --idle: the flood's leftovers close
            after = serverFigures(server.pid)
            logAfter = logSize(log)
            kinds = logKinds(log)
        finally:
            server.terminate()
            server.wait(30)
            probe = None
            if args.probe and os.path.exists(probeOut):
                with open(probeOut) as f:
                    probe = json.load(f)
    latencies = sorted(goodResult["latencies"])

    def pct(p: float) -> str:
        return (
            f"{latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000:.1f}"
        )

    print(
        f"\nsoak: {args.minutes:g} min, flood {args.flood}, unread {args.unread_mb} MB"
    )
    print(
        table(
            ["figure", "before", "peak", "after"],
            [
                ["server descriptors", str(before[0]), str(peak[0]), str(after[0])],
                [
                    "server RSS (MB)",
                    f"{before[1] / 1024:.1f}",
                    f"{peak[1] / 1024:.1f}",
                    f"{after[1] / 1024:.1f}",
                ],
                ["log (KB)", f"{logBefore / 1024:.1f}", "", f"{logAfter / 1024:.1f}"],
            ],
        )
    )
    print(
        table(
            ["good clients", "pongs", "p50 ms", "p99 ms", "max ms", "lost"],
            [
                [
                    str(goodResult["clients"]),
                    str(len(latencies)),
                    pct(0.5),
                    pct(0.99),
                    pct(1.0),
                    str(goodResult["lost"]),
                ]
            ],
        )
    )
    worstLag = max(lags, default=(0.0, 0.0))
    print(
        f"server: CPU {cpu:.1f} s in {elapsed:.0f} s ({100 * cpu / elapsed:.0f}% "
        f"of one core); reactor lag probes: worst {worstLag[0] * 1000:.0f} ms "
        f"at {worstLag[1]:.0f} s, {sum(1 for lag, _ in lags if lag > 1)} of "
        f"{len(lags)} over 1 s; waited {waited:.1f} s for a CPU (runnable); "
        f"load {loadBefore:.1f} before, {loadAfter:.1f} at the end"
    )
    attackCpu = sum(r.get("cpu", 0) for r in results.values())
    print(
        f"client processes' CPU: attackers {attackCpu:.1f} s, "
        f"good clients {goodResult.get('cpu', 0):.1f} s"
    )
    stall, at = goodResult["stall"]
    slowBySpell: dict[int, int] = {}
    for sentAt, _ in goodResult["slow"]:
        spell = int(sentAt // 10) * 10
        slowBySpell[spell] = slowBySpell.get(spell, 0) + 1
    print(
        f"good clients' own loop: longest stall {stall * 1000:.0f} ms at {at:.0f} s; "
        f"{len(goodResult['slow'])} pongs over 1 s, by 10 s of the run "
        f"(start: count): {slowBySpell}"
    )
    if probe is not None:
        print(f"server probe: {json.dumps(probe)}")
    for name, result in results.items():
        print(f"{name}: {json.dumps(result)}")
    print("log lines by kind:", json.dumps(kinds))


if __name__ == "__main__":
    main()
