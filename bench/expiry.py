"""
Many connections timing out at once: what it costs the reactor, how each
close is timed, and what busy connections alongside feel.

One server process (a protocol with L{HeartbeatMixin} that echoes the
busy connections' pings, logging to /dev/null through twisted.logger as a
real server would) and two or more client processes, each one process of
the C load generator (C{bench/loadgen/loadgen.c}, mode C{expiry}), so that
the clients cost a few microseconds per FIN, not as much as the server
per close (the server may hold at most 20,000 descriptors, and so may each
client):

  - every client opens its share of C{--expiring} connections, keeps them
    alive (a byte every C{idle / 3}), then, on a common "go", sends one
    last byte on each (spread evenly over C{--spread} seconds) and falls
    silent; it notes when it sent that byte and when it sees the server's
    FIN (or a reset, counted apart), both on C{CLOCK_MONOTONIC}, which
    all processes of the machine share;
  - every client also keeps its share of C{--busy} connections pinging
    (echoed) every C{--ping-interval} seconds, and notes each round trip.

The server measures its reactor lag (a 2 ms probe timer: how late it
runs), the time spent in C{heartbeatTimedOut} per close, its CPU time
while the expiry runs, less the busy traffic's CPU rate measured before,
and, per connection, when it read the last byte and when it timed the
connection out; so each close window splits into the server reading the
last byte, the time-out after C{idle} (the sweep's grid and its queue),
and the close reaching the client.  C{--profile PATH} profiles the server
during the expiry.

Reported: the close window (FIN seen by the client minus its last byte;
goal within C{[idle, idle + checkInterval + 0.25 s]} at 10,000 and + 0.5 s
at 18,000), the reactor's worst lag during the expiry (goal: under 20 ms),
the cost per close, and the busy clients' p99 round trip during the
expiry next to before it.

Run: C{python bench/expiry.py} (short default run, 2,000 expiring and 200
busy); the recorded figures: C{--expiring 10000 --busy 1000} and
C{--expiring 18000 --busy 1000} (see bench/README.rst).  The script raises
its soft C{RLIMIT_NOFILE} to the hard limit where it needs to.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

import loadgen
from _common import machineLines, positiveFloat, positiveInt

HOST = "127.0.0.1"


def raiseFileLimit(needed: int) -> None:
    """
    Raise the soft descriptor limit to the hard one; fail if it is short.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise SystemExit(f"needs {needed} descriptors; the limit is {soft}")


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# The server


def serve(args: argparse.Namespace) -> int:
    raiseFileLimit(args.expiring + args.busy + 64)
    from twisted.internet import reactor
    from twisted.internet.protocol import Factory, Protocol
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from heartbeat_twisted import HeartbeatConfig, HeartbeatMixin

    devnull = open(os.devnull, "w")
    globalLogBeginner.beginLoggingTo(
        [textFileLogObserver(devnull)], redirectStandardIO=False
    )
    config = HeartbeatConfig(idle=args.idle, checkInterval=args.check_interval)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    state: dict[str, Any] = {
        "closes": 0,
        "timedOut": 0,
        "inTimedOut": 0.0,
        "firstTimedOut": None,
        "lastLost": None,
        "cpuAtFirst": None,
        "cpuAtLast": None,
        # Flat arrays of floats, not a tuple per sample or per close: the
        # measurement must not feed the garbage collector what it measures.
        "lags": array("d"),
        "connKeys": [],
        "conns": array("d"),
    }

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    class Echo(HeartbeatMixin, Protocol):
        heartbeatConfig = config

        lastRead = 0.0
        timedOutAt = 0.0
        peerKey = ""

        def connectionMade(self) -> None:
            peer = self.transport.getPeer()  # type: ignore[union-attr]
            self.peerKey = f"{peer.host}:{peer.port}"

        def dataReceived(self, data: bytes) -> None:
            self.lastRead = time.monotonic()
            if b"p" in data:
                # Only the busy connections' pings are answered: echoing
                # 18,000 last bytes in half a second made the server read
                # them late, which counted against the close window.
                self.transport.write(data)  # type: ignore[union-attr]

        def heartbeatTimedOut(self) -> None:
            began = time.process_time()
            self.timedOutAt = time.monotonic()
            if state["firstTimedOut"] is None:
                state["firstTimedOut"] = time.monotonic()
                state["cpuAtFirst"] = cpu()
                if profiler is not None:
                    profiler.enable()
            super().heartbeatTimedOut()
            state["inTimedOut"] += time.process_time() - began
            state["timedOut"] += 1

        def connectionLost(self, reason: object = None) -> None:
            if self.heartbeatCloseReason != "idle":
                return
            state["closes"] += 1
            state["lastLost"] = now = time.monotonic()
            state["connKeys"].append(self.peerKey)
            state["conns"].extend((self.lastRead, self.timedOutAt, now))
            if state["closes"] == args.expiring:
                state["cpuAtLast"] = cpu()
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(args.profile)
                reactor.callLater(1.0, finish)  # type: ignore[attr-defined]

    expected = [time.monotonic() + 0.002, time.process_time()]
    gcStarted = [0.0]
    state["gcs"] = []

    def gcWatch(phase: str, info: dict[str, int]) -> None:
        # Python's own collector pauses the reactor too: note each pause.
        if phase == "start":
            gcStarted[0] = time.perf_counter()
        else:
            pause = time.perf_counter() - gcStarted[0]
            state["gcs"].append((time.monotonic(), info["generation"], pause))

    gc.callbacks.append(gcWatch)

    def probe() -> None:
        # How late this timer runs (wall), and how much CPU this process
        # spent since the last one: on a shared machine a late timer may
        # only mean that the process was not running.
        now, used = time.monotonic(), time.process_time()
        state["lags"].extend((now, now - expected[0], used - expected[1]))
        expected[0] = time.monotonic() + 0.002
        expected[1] = used
        reactor.callLater(0.002, probe)  # type: ignore[attr-defined]

    baseline: dict[str, float] = {}

    def markBaseline(which: str) -> None:
        baseline[which] = cpu()
        baseline[which + "At"] = time.monotonic()

    def finish() -> None:
        trackers = {id(c.heartbeatTracker()): c.heartbeatTracker() for c in live[:1]}
        tracker = next(iter(trackers.values()), None)
        report = {
            key: state[key]
            for key in (
                "closes",
                "timedOut",
                "inTimedOut",
                "firstTimedOut",
                "lastLost",
                "cpuAtFirst",
                "cpuAtLast",
                "gcs",
            )
        }
        lags, conns = state["lags"], state["conns"]
        report["lags"] = [lags[i : i + 3].tolist() for i in range(0, len(lags), 3)]
        report["conns"] = {
            key: conns[3 * i : 3 * i + 3].tolist()
            for i, key in enumerate(state["connKeys"])
        }
        report["baseline"] = baseline
        if tracker is not None:
            report["tracker"] = {
                "turns": tracker.turns,
                "stalls": tracker.stalls,
                "ticks": tracker.ticks,
            }
        print(json.dumps(report), flush=True)
        reactor.stop()  # type: ignore[attr-defined]

    live: list[Echo] = []

    class Tracking(Factory):
        protocol = Echo

        def buildProtocol(self, addr: Any) -> Any:
            protocol = super().buildProtocol(addr)
            if not live:
                live.append(protocol)  # type: ignore[arg-type]
            return protocol

    port = reactor.listenTCP(  # type: ignore[attr-defined]
        0, Tracking(), backlog=4096, interface=HOST
    )
    print(f"port {port.getHost().port}", flush=True)

    def command() -> None:
        line = sys.stdin.readline().strip()
        if line == "go":
            if args.gc_freeze:
                # What a server can do once its connections are up: move
                # the objects alive now out of the collector's way.
                gc.freeze()
            # Once the last bytes are in, only the busy traffic flows until
            # the first time-out: that is the baseline.
            later = reactor.callLater  # type: ignore[attr-defined]
            later(0.5, markBaseline, "quiet")

    reactor.addReader(Stdin(command))  # type: ignore[attr-defined]
    reactor.callLater(0.002, probe)  # type: ignore[attr-defined]
    reactor.callLater(args.limit, finish)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    return 0


class Stdin:
    """
    The server's standard input, as a reactor reader: one command a line.
    """

    def __init__(self, command: Any) -> None:
        self.command = command

    def fileno(self) -> int:
        return sys.stdin.fileno()

    def doRead(self) -> None:
        self.command()

    def connectionLost(self, reason: object) -> None:
        pass

    def logPrefix(self) -> str:
        return "stdin"


# A client: the C load generator (bench/loadgen/loadgen.c, mode "expiry")


def startClient(
    args: argparse.Namespace, port: int, index: int, work: Path
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """
    Start one load generator process: its share of the expiring and busy
    connections, from its own source address.
    """
    expiring = share(args.expiring, args.clients, index)
    busy = share(args.busy, args.clients, index)
    source = f"127.0.0.{2 + index}"
    files = {"fins": work / f"fins-{index}", "rtts": work / f"rtts-{index}"}
    argv = [
        str(loadgen.build()),
        "--host", HOST,
        "--port", str(port),
        "--sources", source,
        "--mode", "expiry",
        "--connections", str(expiring + busy),
        "--expiring", str(expiring),
        "--keep", str(args.idle / 3),
        "--spread", str(args.spread),
        "--period", str(args.ping_interval),
        "--jitter", "0",
        "--go", "stdin",
        "--duration", str(args.limit),
        "--connect-timeout", "120",
        "--fins", str(files["fins"]),
        "--rtt-times", str(files["rtts"]),
    ]  # fmt: skip
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    return process, {"source": source, "busy": busy, **files}


def clientResult(
    process: subprocess.Popen[str], info: dict[str, Any]
) -> dict[str, Any]:
    """
    What one load generator saw: per expiring connection its last byte and
    the FIN (CLOCK_MONOTONIC, which every process of the machine shares),
    each busy ping's round trip, and its own CPU time from its first FIN to
    its last.
    """
    out = process.communicate(timeout=30)[0]
    summary = json.loads(next(line for line in out.splitlines() if line[:1] == "{"))
    conns: dict[str, tuple[float, float]] = {}
    for line in info["fins"].read_text().splitlines():
        port, sent, fin = line.split()
        conns[f"{info['source']}:{port}"] = (float(sent), float(fin))
    rtts = [
        (float(sent), float(rtt))
        for sent, rtt in (
            line.split() for line in info["rtts"].read_text().splitlines()
        )
    ]
    return {
        "windows": [fin - sent for sent, fin in conns.values() if fin and sent],
        "unclosed": sum(1 for _, fin in conns.values() if not fin),
        "conns": conns,
        "rtts": rtts,
        "busyLost": int(summary["busy_closed"]),
        "resets": int(summary["resets"]),
        "cpuFins": float(summary["cpu_fins_s"]),
    }


# The run


def spawn(args: argparse.Namespace) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--idle",
            str(args.idle),
            "--check-interval",
            str(args.check_interval),
            "--limit",
            str(args.limit),
            "--expiring",
            str(args.expiring),
            "--busy",
            str(args.busy),
            *(["--gc-freeze"] if args.gc_freeze else []),
            *(["--profile", args.profile] if args.profile else []),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def run(args: argparse.Namespace) -> int:
    if args.expiring + args.busy + 64 > 20_000:
        raise SystemExit("the server may hold at most 20,000 descriptors")
    raiseFileLimit(args.expiring + args.busy + 64)  # the generators inherit it
    loadgen.build()
    server = spawn(args)
    assert server.stdout is not None and server.stdin is not None
    port = int(server.stdout.readline().split()[1])
    clients: list[tuple[subprocess.Popen[str], dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="hb-expiry-") as work:
        try:
            for index in range(args.clients):
                clients.append(startClient(args, port, index, Path(work)))
            for process, _ in clients:
                assert process.stdout is not None
                line = process.stdout.readline().split()
                if line[:1] != ["connected"] or line[3:4] != ["0"]:
                    raise SystemExit(f"a client did not connect: {line}")
            time.sleep(args.warmup)  # let the busy pings settle
            server.stdin.write("go\n")
            server.stdin.flush()
            for process, _ in clients:
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            for process, _ in clients:
                process.wait(timeout=args.limit + 30)
            results = [clientResult(process, info) for process, info in clients]
            report = json.loads(server.communicate(timeout=args.limit + 30)[0])
        finally:
            for process in [*(p for p, _ in clients), server]:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    show(args, results, report)
    return 0


def show(
    args: argparse.Namespace, results: list[dict[str, Any]], report: dict[str, Any]
) -> None:
    windows = [w for r in results for w in r["windows"]]
    unclosed = sum(r["unclosed"] for r in results)
    busyLost = sum(r["busyLost"] for r in results)
    slack = 0.25 if args.expiring <= 10_000 else 0.5
    high = args.idle + args.check_interval + slack
    inside = sum(1 for w in windows if args.idle <= w <= high)
    first = report["firstTimedOut"]
    last = report["lastLost"]
    base = report["baseline"]

    def expiring(t: float) -> bool:
        return bool(first and last and first - 0.1 <= t <= last + 0.1)

    def calm(t: float) -> bool:
        return bool(first and base["quietAt"] <= t < first - 0.1)

    lags = [lag for t, lag, _ in report["lags"] if expiring(t)]
    works = [work for t, _, work in report["lags"] if expiring(t)]
    calmLags = [lag for t, lag, _ in report["lags"] if calm(t)]
    calmWorks = [work for t, _, work in report["lags"] if calm(t)]
    rtts = [rtt for r in results for t, rtt in r["rtts"]]
    during = [rtt for r in results for t, rtt in r["rtts"] if expiring(t)]
    before = [rtt for r in results for t, rtt in r["rtts"] if calm(t)]
    rate = ((report["cpuAtFirst"] or 0) - base["quiet"]) / max(
        1e-9, (first or 0) - base["quietAt"]
    )
    closes = report["closes"]
    cpuWindow = (report["cpuAtLast"] or 0) - (report["cpuAtFirst"] or 0)
    span = (last or 0) - (first or 0)
    perClose = (cpuWindow - rate * span) / max(1, closes)
    ms = 1000
    for line in machineLines():
        print(line)
    print(f"load:    {os.getloadavg()[0]:.1f} (1 min average, this shared machine)")
    print(
        f"expiry: {args.expiring} expiring + {args.busy} busy connections, "
        f"{args.clients} client processes; idle {args.idle} s, checkInterval "
        f"{args.check_interval} s, pings every {args.ping_interval} s"
        + f"; last bytes spread over {args.spread} s"
        + ("; server gc.freeze() at go" if args.gc_freeze else "")
    )
    resets = sum(r["resets"] for r in results)
    print(
        f"closed by the heartbeat: {closes}; not closed: {unclosed}; "
        f"busy lost: {busyLost}; resets seen by the clients: {resets}"
    )
    print(
        f"close window (FIN - last byte): min {min(windows):.3f} s, p50 "
        f"{percentile(windows, 0.5):.3f}, p99 {percentile(windows, 0.99):.3f}, "
        f"max {max(windows):.3f}; within [{args.idle}, {high:.2f}]: "
        f"{inside}/{len(windows)}"
    )
    print(
        f"expiry took {span * ms:.0f} ms (first time-out to last close); "
        f"tracker: {report.get('tracker')}"
    )
    print(
        f"reactor lag (2 ms probe timer, wall) during expiry: max "
        f"{max(lags, default=0) * ms:.1f} ms, p99 {percentile(lags, 0.99) * ms:.1f}"
        f" ms; busy traffic alone: max {max(calmLags, default=0) * ms:.1f} ms, "
        f"p99 {percentile(calmLags, 0.99) * ms:.1f} ms"
    )
    print(
        f"server CPU between two probe runs (its longest stretch of work "
        f"between timers) during expiry: max {max(works, default=0) * ms:.1f} ms,"
        f" p99 {percentile(works, 0.99) * ms:.1f} ms; busy traffic alone: max "
        f"{max(calmWorks, default=0) * ms:.1f} ms"
    )
    pauses = [(g, pause) for t, g, pause in report["gcs"] if expiring(t)]
    print(
        f"Python GC during expiry: {len(pauses)} collections, longest "
        f"{max((p for _, p in pauses), default=0) * ms:.1f} ms (generation "
        f"{max(pauses, key=lambda gp: gp[1], default=(None, 0))[0]})"
    )
    print(
        f"cost per close (CPU): "
        f"{report['inTimedOut'] / max(1, report['timedOut']) * 1e6:.1f} us in "
        f"heartbeatTimedOut; {perClose * 1e6:.1f} us of server CPU in all "
        f"(window CPU {cpuWindow * ms:.0f} ms less busy traffic at "
        f"{rate * 100:.0f}% of a core)"
    )
    # Where each close's time went: the server reading the last byte late,
    # the sweep (its grid, then its queue of time-outs), then the close
    # reaching the client as a FIN.
    parts: dict[str, list[float]] = {"read": [], "sweep": [], "queue": [], "fin": []}
    for r in results:
        for name, (sent, fin) in r["conns"].items():
            seen = report["conns"].get(name)
            if not (seen and sent and fin):
                continue
            read, out, _ = seen
            parts["read"].append(read - sent)
            # The first sweep at or after the deadline can be up to one
            # checkInterval after it; the rest is the queue of time-outs.
            parts["sweep"].append(out - (read + args.idle))
            parts["fin"].append(fin - out)
    late = parts["sweep"]
    print(
        "where the time went (s), p50 / p99 / max: "
        + "; ".join(
            f"{label} {percentile(values, 0.5):.3f} / {percentile(values, 0.99):.3f}"
            f" / {max(values, default=0):.3f}"
            for label, values in (
                ("last byte read by the server", parts["read"]),
                ("time-out after idle", late),
                ("time-out to FIN", parts["fin"]),
            )
        )
    )
    clientCpu = [r["cpuFins"] for r in results]
    fins = sum(len(r["windows"]) for r in results)
    print(
        "client CPU from its first FIN to its last: "
        + ", ".join(f"{c * ms:.0f} ms" for c in clientCpu)
        + f" ({sum(clientCpu) / max(1, fins) * 1e6:.1f} us per FIN)"
    )
    print(
        f"busy round trip: p99 {percentile(during, 0.99) * ms:.1f} ms during "
        f"expiry ({len(during)} pings), {percentile(before, 0.99) * ms:.1f} ms "
        f"before ({len(before)}); all: p50 {percentile(rtts, 0.5) * ms:.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # The two internal roles are hidden; a hidden option in a mutually
    # exclusive group breaks --help on Python 3.11's argparse.
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--expiring", type=positiveInt, default=2000)
    parser.add_argument("--busy", type=int, default=200)
    parser.add_argument("--clients", type=positiveInt, default=2)
    parser.add_argument("--idle", type=positiveFloat, default=3.0)
    parser.add_argument("--check-interval", type=positiveFloat, default=0.5)
    parser.add_argument("--ping-interval", type=positiveFloat, default=1.0)
    parser.add_argument("--warmup", type=positiveFloat, default=1.0)
    parser.add_argument(
        "--spread",
        type=positiveFloat,
        default=0.5,
        help="seconds over which the expiring connections send their last byte",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="the server calls gc.freeze() once all connections are up",
    )
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="profile the server (cProfile) from its first time-out to its "
        "last close, into PATH; slows it down",
    )
    parser.add_argument(
        "--limit", type=positiveFloat, default=40.0, help="seconds, at most"
    )
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
