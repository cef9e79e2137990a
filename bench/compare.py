"""
Plain Twisted against C{twistd heartbeat}, side by side in one run, driven
by the C load generator (C{bench/loadgen.py}).

- throughput: each server in turn, the order rotating each round, under a
  closed loop of C{--connections} connections with one C{ping} in flight
  each; pongs per second, server CPU per pong (user and system apart) and
  latency percentiles.  The servers are pinned to the last CPU, the
  generator to the others.
- fleet: C{--fleet} connections, each pinging every C{--fleet-period}
  seconds; the server's CPU share over the window, and its memory per
  connection.
- workers (C{--workers}): C{twistd heartbeat} as one process and as
  C{--workers 2}, unpinned (the generator shares the cores, so CPU per pong
  is the figure to judge).
- profile (C{--profile}): C{twistd --profiler cprofile} under the closed
  loop; the functions that take the most time per pong.

The server options that differ from the defaults: C{--ping-rate 0} (no
flood limit: a closed loop pings far faster than the default limit
allows), a listen backlog of 1,024
(for the fleet's connection storm) and, in the fleet, C{--idle 15} (the
default 5 s would close clients that ping every 5 s) and no per-address
connection limits (the fleet comes from one address).
"""

from __future__ import annotations

import argparse
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import machineLines, positiveFloat, positiveInt, summarize, table
from _servers import (
    Server,
    freePort,
    hasOption,
    limitsOff,
    plainArgv,
    priority,
    twistdArgv,
)
from loadgen import LoadResult, build, runLoad

HERE = Path(__file__).resolve().parent
CLOSED_LOOP = ["--ping-rate", "0"]


def variants(checkFile: str) -> dict[str, Callable[[int, str], list[str]]]:
    """
    Name to C{argv(port, logfile)} for every server this tree can run.
    """
    eagerOff = ["--no-eager-writes"] if hasOption("--no-eager-writes") else None

    def heartbeat(*extra: str) -> Callable[[int, str], list[str]]:
        def argv(port: int, logfile: str) -> list[str]:
            return twistdArgv(
                logfile,
                "--port",
                f"tcp:{port}:interface=127.0.0.1:backlog=1024",
                *CLOSED_LOOP,
                *extra,
            )

        return argv

    found: dict[str, Callable[[int, str], list[str]]] = {
        "plain": lambda port, _: plainArgv(port),
        "heartbeat": heartbeat(),
    }
    if eagerOff is not None:
        found["heartbeat, eager off"] = heartbeat(*eagerOff)
        found["heartbeat, eager off, 1 check"] = heartbeat(
            *eagerOff, "--health-check-file", checkFile
        )
    found["heartbeat, 1 check"] = heartbeat("--health-check-file", checkFile)
    return found


def start(name: str, argv: Callable[[int, str], list[str]], cpus: list[int]) -> Server:
    port = freePort()
    logfile = os.path.join(tempfile.gettempdir(), f"hb-compare-{os.getpid()}.log")
    return Server(name, argv(port, logfile), port, cpus)


def throughput(
    args: argparse.Namespace, found: dict[str, Callable[[int, str], list[str]]]
) -> dict[str, list[LoadResult]]:
    cpus = sorted(os.sched_getaffinity(0))
    serverCpus, clientCpus = (cpus[-1:], cpus[:-1]) if len(cpus) > 1 else ([], [])
    names = list(found)
    results: dict[str, list[LoadResult]] = {name: [] for name in names}
    servers: dict[str, Server] = {}
    try:
        for name in names:  # inside the try: a failed start stops the others
            servers[name] = start(name, found[name], serverCpus)
        for index in range(args.rounds):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                results[name].append(
                    runLoad(
                        servers[name].port,
                        args.connections,
                        duration=args.duration,
                        warmup=1.0,
                        server=servers[name].tree,
                        cpus=clientCpus,
                    )
                )
    finally:
        for server in servers.values():
            server.stop()
    rows = []
    plain = results["plain"]
    for name in names:
        runs = results[name]
        rate = summarize([r.rate for r in runs])
        ratio = summarize([r.rate / p.rate for r, p in zip(runs, plain, strict=True)])
        user = summarize([r.perReply(r.serverUser) or 0 for r in runs])
        system = summarize([r.perReply(r.serverSystem) or 0 for r in runs])
        total = [r.perReply(r.serverCpu) or 0 for r in runs]
        cpuRatio = summarize(
            [
                t / (p.perReply(p.serverCpu) or 1)
                for t, p in zip(total, plain, strict=True)
            ]
        )
        busy = summarize([(r.serverCpu or 0) / r.seconds * 100 for r in runs])
        client = summarize([r.perReply(r.clientCpu) or 0 for r in runs])
        rows.append(
            [
                name,
                rate.format(",.0f"),
                ratio.format(".2f"),
                user.format(".1f"),
                system.format(".1f"),
                summarize(total).format(".1f"),
                cpuRatio.format(".2f"),
                f"{statistics.median(r.percentile(0.5) for r in runs):.2f}",
                f"{statistics.median(r.percentile(0.99) for r in runs):.2f}",
                busy.format(".0f"),
                client.format(".1f"),
            ]
        )
    print(
        f"\nthroughput: closed loop, {args.connections} connections, one ping in "
        f"flight each; {args.rounds} rounds of {args.duration:g} s per server, "
        f"order rotating; median [min..max]; ratios to plain in the same round"
    )
    print(
        table(
            [
                "server",
                "pongs/s",
                "x plain",
                "user us/pong",
                "sys us/pong",
                "CPU us/pong",
                "x plain",
                "p50 ms",
                "p99 ms",
                "server CPU %",
                "loadgen us/pong",
            ],
            rows,
        )
    )
    return results


def fleet(
    args: argparse.Namespace,
    names: list[str],
    found: dict[str, Callable[[int, str], list[str]]],
) -> None:
    rows = []
    shares: dict[str, list[float]] = {name: [] for name in names}
    perConnection: dict[str, list[float]] = {name: [] for name in names}
    for index in range(args.fleet_rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            argv = found[name]
            if name != "plain":
                base = argv

                def argv(port: int, log: str, base: Callable = base) -> list[str]:  # type: ignore[type-arg]
                    return [*base(port, log), "--idle", "15", *limitsOff()]

            server = start(name, argv, [])
            try:
                result = runLoad(
                    server.port,
                    args.fleet,
                    mode="fleet",
                    duration=args.fleet_window,
                    warmup=args.fleet_period,
                    period=args.fleet_period,
                    server=server.tree,
                )
            finally:
                server.stop()
            if result.total("busy_closed") or result.total("connect_failed"):
                print(f"warning: {name}: {result.raw}", file=sys.stderr)
            shares[name].append((result.serverCpu or 0) / result.seconds * 100)
            assert result.serverRss is not None
            perConnection[name].append((result.serverRss - server.baseRss) / args.fleet)
    plain = shares["plain"]
    for name in names:
        ratio = summarize(
            [_ratio(s, p) for s, p in zip(shares[name], plain, strict=True)]
        )
        rows.append(
            [
                name,
                summarize(shares[name]).format(".1f"),
                ratio.format(".2f"),
                summarize(perConnection[name]).format(",.0f"),
            ]
        )
    print(
        f"\nfleet: {args.fleet:,} connections, a ping every {args.fleet_period:g} s "
        f"(+-10%) each; server CPU over a {args.fleet_window:g} s window after "
        f"one period of warm-up; {args.fleet_rounds} rounds"
    )
    print(table(["server", "CPU % of a core", "x plain", "RSS B/conn"], rows))
    if "heartbeat" in shares:
        ratio = statistics.median(
            _ratio(s, p) for s, p in zip(shares["heartbeat"], plain, strict=True)
        )
        verdict = "met" if ratio <= 0.8 else "NOT met"
        print(f"goal: fleet CPU <= 0.8x plain: {verdict} ({ratio:.2f}x)")


def _ratio(value: float, base: float) -> float:
    """
    C{value / base}, or NaN for a base of 0 (a window too short for the
    kernel's 10 ms CPU accounting).
    """
    return value / base if base else float("nan")


def workers(args: argparse.Namespace) -> None:
    def heartbeat(*extra: str) -> Callable[[int, str], list[str]]:
        return lambda port, log: twistdArgv(
            log, "--port", f"tcp:{port}:interface=127.0.0.1", *CLOSED_LOOP, *extra
        )

    found = {"1 process": heartbeat(), "--workers 2": heartbeat("--workers", "2")}
    results: dict[str, list[LoadResult]] = {name: [] for name in found}
    servers: dict[str, Server] = {}
    try:
        for name, argv in found.items():
            servers[name] = start(name, argv, [])
        for index in range(args.rounds):
            names = list(found)
            for name in names[index % 2 :] + names[: index % 2]:
                results[name].append(
                    runLoad(
                        servers[name].port,
                        args.connections * 2,
                        duration=args.duration,
                        server=servers[name].tree,
                    )
                )
    finally:
        for server in servers.values():
            server.stop()
    rows = []
    for name, runs in results.items():
        rows.append(
            [
                name,
                summarize([r.rate for r in runs]).format(",.0f"),
                summarize([r.perReply(r.serverCpu) or 0 for r in runs]).format(".1f"),
                summarize([(r.serverCpu or 0) / r.seconds * 100 for r in runs]).format(
                    ".0f"
                ),
                f"{statistics.median(r.percentile(0.99) for r in runs):.2f}",
            ]
        )
    print(
        f"\nworkers: closed loop, {args.connections * 2} connections, nothing "
        f"pinned (server and generator share the {os.cpu_count()} CPUs)"
    )
    print(table(["server", "pongs/s", "CPU us/pong", "server CPU %", "p99 ms"], rows))


def profile(args: argparse.Namespace) -> None:
    output = os.path.join(tempfile.gettempdir(), f"hb-profile-{os.getpid()}")
    port = freePort()
    argv = twistdArgv(
        "/dev/null", "--port", f"tcp:{port}:interface=127.0.0.1", *CLOSED_LOOP
    )
    argv[3:3] = ["--profile", output, "--profiler", "cprofile", "--savestats"]
    server = Server("heartbeat (cProfile)", argv, port)
    try:
        result = runLoad(port, args.connections, duration=args.duration)
    finally:
        server.stop()
    stats = pstats.Stats(output)
    os.unlink(output)
    pongs = result.total("all_replies")
    entries = sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: item[1][2],
        reverse=True,
    )
    total = sum(entry[1][2] for entry in entries)
    rows = []
    for (path, line, function), (_, calls, tottime, _, _) in entries[: args.top]:
        where = f"{Path(path).parent.name}/{Path(path).name}:{line}" if line else path
        rows.append(
            [
                f"{function} ({where})"[:90],
                f"{calls / max(pongs, 1):.2f}",
                f"{tottime / max(pongs, 1) * 1e6:.2f}",
                f"{tottime / total:.1%}",
            ]
        )
    print(
        f"\nprofile: twistd heartbeat under cProfile, closed loop, "
        f"{args.connections} connections, {pongs:,} pongs over the whole run "
        f"(the profiler slows everything several times: read the shares)"
    )
    print(table(["function (self time)", "calls/pong", "us/pong", "share"], rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Plain Twisted vs twistd heartbeat, side by side, driven by "
        "the C load generator."
    )
    parser.add_argument("--connections", type=positiveInt, default=100)
    parser.add_argument(
        "--duration",
        type=positiveFloat,
        default=5.0,
        help="seconds measured per server per round",
    )
    parser.add_argument("--rounds", type=positiveInt, default=3)
    parser.add_argument(
        "--fleet", type=int, default=15000, help="fleet connections (0: no fleet run)"
    )
    parser.add_argument("--fleet-period", type=positiveFloat, default=5.0)
    parser.add_argument("--fleet-window", type=positiveFloat, default=20.0)
    parser.add_argument("--fleet-rounds", type=positiveInt, default=2)
    parser.add_argument(
        "--workers",
        action="store_true",
        help="also compare one process with --workers 2",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile twistd heartbeat under load",
    )
    parser.add_argument("--top", type=positiveInt, default=25)
    parser.add_argument("--only-throughput", action="store_true")
    parser.add_argument(
        "--variants",
        default="",
        help="comma-separated server names to run (default: all; plain always)",
    )
    parser.add_argument(
        "--priority",
        action="store_true",
        help="run at autogroup nice -20 (root; a shared machine)",
    )
    args = parser.parse_args(argv)
    build()
    with (
        tempfile.NamedTemporaryFile(prefix="hb-health-") as check,
        priority(args.priority),
    ):
        began = time.strftime("%H:%M:%S", time.gmtime())
        print("\n".join(machineLines()))
        found = variants(check.name)
        if args.variants:
            wanted = {"plain", *args.variants.split(",")}
            found = {name: argv for name, argv in found.items() if name in wanted}
        print(f"servers: {', '.join(found)}; run began {began} UTC")
        results = throughput(args, found)
        if args.fleet and not args.only_throughput:
            fleetNames = [n for n in found if "check" not in n]
            fleet(args, fleetNames, found)
        if args.workers:
            workers(args)
        if args.profile:
            profile(args)
        goals(results)
    return 0


def goals(results: dict[str, list[LoadResult]]) -> None:
    """
    The issue's targets against this run's medians of per-round ratios.
    """
    plain = results["plain"]

    def ratios(name: str) -> tuple[float, float]:
        runs = results[name]
        rate = statistics.median(
            r.rate / p.rate for r, p in zip(runs, plain, strict=True)
        )
        cpu = statistics.median(
            (r.perReply(r.serverCpu) or 0) / (p.perReply(p.serverCpu) or 1)
            for r, p in zip(runs, plain, strict=True)
        )
        return rate, cpu

    print()
    if "heartbeat" not in results:
        return
    rate, cpu = ratios("heartbeat")
    verdict = "met" if rate >= 1.4 and cpu <= 0.7 else "NOT met"
    print(
        f"goal: defaults >= 1.4x plain pongs/s and <= 0.7x CPU/pong: {verdict} "
        f"({rate:.2f}x, {cpu:.2f}x)"
    )
    for name, bound in (
        ("heartbeat, eager off", 0.05),
        ("heartbeat, eager off, 1 check", 0.10),
    ):
        if name not in results:
            print(
                f"goal: {name} within {bound:.0%}: not measured (no --no-eager-writes)"
            )
            continue
        rate, cpu = ratios(name)
        ok = rate >= 1 - bound and cpu <= 1 + bound
        print(
            f"goal: {name} within {bound:.0%} of plain: "
            f"{'met' if ok else 'NOT met'} ({rate:.2f}x pongs/s, {cpu:.2f}x CPU/pong)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
