"""
Scale: many connections on one host, all pinging every C{--period}
seconds until the measured window opens, then a C{--silent} share sending
one more ping and nothing after it, against
C{twistd heartbeat --idle IDLE --workers W} (heartbeat on) and the plain
Twisted ping/pong server in as many C{SO_REUSEPORT} processes (heartbeat
off), driven by the C load generator from several processes and loopback
source addresses (a process may hold at most 20,000 descriptors; one
address pair has about 28,000 ports).

For each connection count: no busy connection may be closed, and every
silent one must be closed C{[idle, idle + checkInterval + 0.1]} seconds
after its last byte, measured at the client (the FIN); server CPU over the
window, resident memory per connection, ping latency.

Whole-process CPU is too noisy for the heartbeat's own share, so
C{--direct N} times it directly, in process, in thread CPU time (time
spent preempted by other processes is not counted): the per-chunk hook (a
protocol's C{dataReceived} with and without L{HeartbeatMixin}), and the
sweeps of an L{IdleTracker} holding N connections with the same traffic
(arriving over the first period), through the C{period} seconds from
C{idle} on, in which each connection meets one deadline: the steady
state; plus the bytes each connection adds (C{tracemalloc}).

Plots (with matplotlib, the C{bench} extra) go to C{--plots} (C{docs/}).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _common import machineLines, positiveFloat, positiveInt, table
from _servers import Server, freePort, limitsOff, plainArgv, priority, twistdArgv
from loadgen import PER_PROCESS, LoadResult, build, runLoad, sourceAddresses

HERE = Path(__file__).resolve().parent
PER_WORKER = 14_000  # connections per server process, leaving headroom


def counts(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"not a list of counts: {text!r}")
    return values


def runPoint(args: argparse.Namespace, variant: str, count: int) -> dict[str, Any]:
    workers = max(1, -(-count // PER_WORKER))
    port = freePort()
    endpoint = f"tcp:{port}:interface=127.0.0.1:backlog=4096"
    if variant == "on":
        options = ["--port", endpoint, "--idle", str(args.idle), *limitsOff()]
        if args.check_interval:
            options += ["--check-interval", str(args.check_interval)]
        if workers > 1:
            options += ["--workers", str(workers)]
        argv = twistdArgv("/dev/null", *options)
    else:
        argv = plainArgv(port, workers if workers > 1 else 0, 4096)
    server = Server(variant, argv, port)
    try:
        if workers > 1:
            deadline = time.monotonic() + 120
            while len(server.tree.leaves()) < workers and time.monotonic() < deadline:
                time.sleep(0.1)  # workers start; bounded
            time.sleep(3)  # let every worker bind before the storm
            server.baseRss = server.tree.rss()
        clients = max(1, -(-count // PER_PROCESS))
        window = args.window or args.period * 1.1 + args.idle + 5
        result = runLoad(
            port,
            count,
            mode="fleet",
            duration=window,
            warmup=args.warmup,
            processes=clients,
            sources=sourceAddresses(max(1, -(-count // 20_000) + 1)),
            period=args.period,
            jitter=0.1,
            silent=args.silent,
            server=server.tree,
            connectTimeout=600,
        )
    finally:
        server.stop()
    return summarizePoint(args, variant, count, workers, clients, result, server)


def summarizePoint(
    args: argparse.Namespace,
    variant: str,
    count: int,
    workers: int,
    clients: int,
    result: LoadResult,
    server: Server,
) -> dict[str, Any]:
    interval = args.check_interval or min(1.0, args.idle / 5)
    bound = args.idle + interval + 0.1
    silent = [s for kind, s in result.closeTimes if kind == "silent"]
    connected = result.total("connected")
    assert result.serverRssAtStart is not None
    return {
        "variant": variant,
        "count": count,
        "workers": workers,
        "clients": clients,
        "connected": connected,
        "failed": result.total("connect_failed"),
        "busyClosed": result.total("busy_closed"),
        "silentExpected": result.total("silent"),
        "silentClosed": len(silent),
        "inWindow": sum(1 for s in silent if args.idle <= s <= bound),
        "closeMin": min(silent, default=0.0),
        "closeMax": max(silent, default=0.0),
        "closeTimes": silent,
        "bound": bound,
        "cpu": (result.serverCpu or 0) / result.seconds * 100,
        "rssPerConnection": (result.serverRssAtStart - server.baseRss)
        / max(1, connected),
        "p50": result.percentile(0.5),
        "p99": result.percentile(0.99),
        "pings": result.replies,
    }


class _Owner:
    __slots__ = ("entry", "timeouts", "tracker")

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self.timeouts = 0
        self.entry = tracker.track(self)

    def heartbeatTimedOut(self) -> None:
        self.timeouts += 1
        self.tracker.untrack(self.entry)


def cpuPerCall(dataReceived: Any, calls: int) -> float:
    """
    Nanoseconds of this thread's CPU per call of C{dataReceived}, loop
    included: CPU time, so that time spent preempted by other processes on
    a shared machine is not counted.
    """
    data = b"ping\n"
    loop = range(calls)
    start = time.thread_time_ns()
    for _ in loop:
        dataReceived(data)
    return (time.thread_time_ns() - start) / calls


def direct(args: argparse.Namespace, count: int) -> list[str]:
    """
    The heartbeat's own cost at C{count} connections, timed in process.
    """
    from chunk import HeartbeatServerFactory, Plain, connect

    from memory import FreshClock, connections, heartbeatFactory, traced, trackerEntries
    from twisted.internet.protocol import Factory

    from heartbeat_twisted import HeartbeatConfig

    hooked = connect(HeartbeatServerFactory(heartbeatConfig=HeartbeatConfig(idle=60)))
    plain = connect(Factory.forProtocol(Plain))
    added = []
    for _ in range(7):
        with_ = cpuPerCall(hooked.dataReceived, 200_000)
        without = cpuPerCall(plain.dataReceived, 200_000)
        added.append(with_ - without)
    hookNs = statistics.median(added)

    interval = args.check_interval or min(1.0, args.idle / 5)
    runs = sorted(
        (sweepRun(args, count, interval) for _ in range(args.direct_runs)),
        key=lambda run: run["perSecond"],
    )
    run = runs[len(runs) // 2]
    sweepPerSecond = run["perSecond"]
    silent = run["silent"]
    pingsPerSecond = (count - silent) / args.period
    share = sweepPerSecond + hookNs * 1e-9 * pingsPerSecond
    spread = ", ".join(f"{r['perSecond'] * 1e6:.0f}" for r in runs)

    smaller = min(count, 100_000)
    entry = traced(trackerEntries(smaller)) / smaller
    mixin = (
        traced(connections(heartbeatFactory(FreshClock()), smaller))
        - traced(connections(lambda: Factory.forProtocol(Plain), smaller))
    ) / smaller
    tracemalloc.stop()
    return [
        f"direct timing at {count:,} connections ({silent:,} silent, the rest "
        f"pinging every {args.period:g} s: {pingsPerSecond:,.0f} pings/s), "
        f"idle {args.idle:g} s, sweep every {interval:g} s",
        f"  per-chunk hook: {hookNs:.0f} ns added per received chunk "
        f"(median of 7 x 200,000 calls)",
        f"  sweeps: {sweepPerSecond * 1e6:.0f} us of CPU per second on average, "
        f"the median of {len(runs)} runs ({spread}) (max tick "
        f"{run['maxTick'] / 1e6:.2f} ms, {run['maxVisits']:,} entries), "
        f"{run['ticks']} ticks timed of {run['seconds']} simulated (arrivals "
        f"spread over the first period); closed {run['silentClosed']:,} silent "
        f"and {run['busyClosed']} busy",
        f"  sweep work: {run['visitsPerSecond']:,.0f} entries visited per "
        f"second (re-filed or timed out), {run['perVisit']:.0f} ns of sweep CPU "
        f"per visit (ticks included); a tick with none due: {run['quiet']} "
        f"(median)",
        f"  heartbeat CPU share: {share * 100:.3f}% of a core "
        f"(goal < 0.2%: {'met' if share < 0.002 else 'NOT met'})",
        f"  memory: tracker entry {entry:.1f} B, HeartbeatMixin connection vs "
        f"plain {mixin:+.1f} B per connection (goal < 128 B: "
        f"{'met' if mixin < 128 else 'NOT met'})",
    ]


def sweepRun(args: argparse.Namespace, count: int, interval: float) -> dict[str, Any]:
    """
    One simulation of the sweeps of an L{IdleTracker} holding C{count}
    connections, in simulated time; the sweeps timed in thread CPU time.
    """
    from twisted.internet.task import Clock

    from heartbeat_twisted import HeartbeatConfig, IdleTracker

    clock = Clock()
    tracker = IdleTracker(
        HeartbeatConfig(idle=args.idle, checkInterval=interval), clock
    )
    rng = random.Random(1)
    silent = {
        i for i in range(count) if int((i + 1) * args.silent) > int(i * args.silent)
    }
    # Connections arrive over the first ping period (their first byte is
    # their arrival), then ping every period, +-10%; the silent share sends
    # nothing more.  Timed: the ticks of [idle, idle + period), where every
    # connection meets its first deadline once (the busy ones re-filed, the
    # silent ones timed out): the steady state, one visit per connection
    # per ping period.
    first = max(1, int(args.idle))
    seconds = first - 1 + max(1, round(args.period))
    due: list[list[int]] = [[] for _ in range(seconds + int(args.period * 2) + 2)]
    for index in range(count):
        due[int(rng.random() * args.period)].append(index)
    owners: list[_Owner | None] = [None] * count
    ticks: list[int] = []
    visits: list[int] = []
    gc.collect()
    for second in range(seconds):
        for index in due[second]:
            owner = owners[index]
            if owner is None:
                owners[index] = _Owner(tracker)
            else:
                tracker.touch(owner.entry)
            if index not in silent:
                gap = args.period * (1 + 0.1 * (2 * rng.random() - 1))
                due[second + max(1, round(gap))].append(index)
        visited = tracker.visited
        start = time.thread_time_ns()
        clock.advance(1.0)
        ticks.append(time.thread_time_ns() - start)
        visits.append(tracker.visited - visited)
    done = [o for o in owners if o is not None]
    if len(done) != count:
        raise RuntimeError(f"only {len(done)} of {count} connections arrived")
    steady = ticks[first - 1 :]  # the sweeps at idle, idle + 1, ...
    steadyVisits = visits[first - 1 :]
    quiet = [tick for tick, seen in zip(steady, steadyVisits, strict=True) if not seen]
    biggest = steady.index(max(steady))
    result = {
        "perSecond": statistics.fmean(steady) / 1e9,
        "perVisit": sum(steady) / max(1, sum(steadyVisits)),
        "visitsPerSecond": statistics.fmean(steadyVisits),
        "maxTick": max(steady),
        "maxVisits": steadyVisits[biggest],
        "quiet": f"{statistics.median(quiet) / 1e3:.0f} us" if quiet else "none",
        "ticks": len(steady),
        "seconds": seconds,
        "silent": len(silent),
        "silentClosed": sum(done[i].timeouts for i in silent),
        "busyClosed": sum(o.timeouts for i, o in enumerate(done) if i not in silent),
    }
    del owners, done, tracker
    gc.collect()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--connections", type=counts, default=counts("1000,10000,40000,100000")
    )
    parser.add_argument(
        "--variants",
        default="on,off",
        help="on (twistd heartbeat), off (plain); none: only the direct timing",
    )
    parser.add_argument("--idle", type=positiveFloat, default=45.0)
    parser.add_argument("--check-interval", type=positiveFloat, default=None)
    parser.add_argument("--period", type=positiveFloat, default=30.0)
    parser.add_argument("--silent", type=float, default=0.1)
    parser.add_argument(
        "--warmup",
        type=float,
        default=5.0,
        help="seconds between the last connection and the window, for the "
        "server to accept them all (default: 5)",
    )
    parser.add_argument(
        "--window",
        type=positiveFloat,
        default=None,
        help="seconds measured after all connected (default: 1.1 period + idle + 5)",
    )
    parser.add_argument(
        "--direct",
        type=int,
        default=None,
        help="connections for the direct timing (default: the largest count; 0: none)",
    )
    parser.add_argument(
        "--direct-runs",
        type=positiveInt,
        default=3,
        help="simulations of the sweeps in the direct timing; the median is reported",
    )
    parser.add_argument("--plots", type=Path, default=HERE.parent / "docs")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--priority",
        action="store_true",
        help="run at autogroup nice -20 (root; a shared machine)",
    )
    args = parser.parse_args(argv)
    build()
    variants = [v for v in args.variants.split(",") if v and v != "none"]
    points: list[dict[str, Any]] = []
    print("\n".join(machineLines()))
    with priority(args.priority):
        for count in args.connections:
            for variant in variants:
                points.append(runPoint(args, variant, count))
                print(f"  done: {variant} {count:,}", file=sys.stderr, flush=True)
        if points:
            report(args, points)
        size = max(args.connections) if args.direct is None else args.direct
        if size:
            print("\n".join(direct(args, size)))
    if points and not args.no_plots:
        plot(args, points)
    return 0


def report(args: argparse.Namespace, points: list[dict[str, Any]]) -> None:
    rows = []
    for p in points:
        rows.append(
            [
                "twistd heartbeat" if p["variant"] == "on" else "plain (no heartbeat)",
                f"{p['count']:,}",
                f"{p['workers']}/{p['clients']}",
                f"{p['connected']:,}",
                str(p["busyClosed"]),
                f"{p['silentClosed']:,}/{p['silentExpected']:,}",
                f"{p['inWindow']:,}" if p["variant"] == "on" else "-",
                f"{p['closeMin']:.2f}..{p['closeMax']:.2f}" if p["closeTimes"] else "-",
                f"{p['cpu']:.1f}",
                f"{p['rssPerConnection']:,.0f}",
                f"{p['p50']:.2f}/{p['p99']:.2f}",
            ]
        )
    print(
        f"\nfleet: {args.silent:.0%} silent (one ping in the window, then "
        f"nothing), the rest "
        f"pinging every {args.period:g} s +-10%, --idle {args.idle:g}; window "
        f"{args.window or args.period * 1.1 + args.idle + 5:g} s after all connected"
    )
    print(
        table(
            [
                "server",
                "connections",
                "workers/clients",
                "connected",
                "busy closed",
                "silent closed",
                "in window",
                "close s (min..max)",
                "CPU %",
                "RSS B/conn",
                "ping ms p50/p99",
            ],
            rows,
        )
    )
    for p in points:
        if p["variant"] != "on":
            continue
        ok = p["busyClosed"] == 0 and p["inWindow"] == p["silentExpected"]
        print(
            f"goal at {p['count']:,}: no busy connection closed, every silent one "
            f"in [{args.idle:g}, {p['bound']:.1f}] s: {'met' if ok else 'NOT met'}"
        )


def plot(args: argparse.Namespace, points: list[dict[str, Any]]) -> None:
    import _plots

    args.plots.mkdir(parents=True, exist_ok=True)
    names = {"on": "twistd heartbeat", "off": "plain Twisted"}
    byVariant: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        byVariant.setdefault(names[p["variant"]], []).append(p)
    countsSeen = sorted({p["count"] for p in points})
    on = [p for p in points if p["variant"] == "on"]
    if on:
        largest = max(on, key=lambda p: p["count"])
        if largest["closeTimes"]:
            _plots.closeTimes(
                args.plots / "scale-close-times.png",
                largest["closeTimes"],
                args.idle,
                largest["bound"],
                f"{largest['silentClosed']:,} silent connections of "
                f"{largest['count']:,}, --idle {args.idle:g}",
            )
    _plots.latency(
        args.plots / "scale-latency.png",
        countsSeen,
        {name: [(p["p50"], p["p99"]) for p in ps] for name, ps in byVariant.items()},
    )
    _plots.cpuAndMemory(
        args.plots / "scale-cpu-rss.png",
        countsSeen,
        {name: [p["cpu"] for p in ps] for name, ps in byVariant.items()},
        {name: [p["rssPerConnection"] for p in ps] for name, ps in byVariant.items()},
    )
    print(f"plots: {args.plots}/scale-*.png")


if __name__ == "__main__":
    raise SystemExit(main())
