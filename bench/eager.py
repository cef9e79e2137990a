"""
Eager writes alone: a plain Twisted C{LineReceiver} ping/pong server
against the same server with L{EagerWriteMixin
<heartbeat_twisted.EagerWriteMixin>}, side by side in one run, driven by
the C load generator (C{bench/loadgen.py}) under a closed loop.

Both servers run at once, each in its own process pinned to the last CPU
(the generator gets the others); each round measures one server after the
other, the order rotating.  Reported per server: pongs per second, server
CPU per pong (user and system apart, from the kernel's per-process
counters that C{getrusage} also reads, over the measured window only) and
p50/p99 latency; and the ratios eager/plain taken within each round.

    python bench/eager.py --rounds 3 --duration 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from _common import machineLines, positiveFloat, positiveInt, summarize, table
from _servers import PYTHON, Server, freePort, priority
from loadgen import LoadResult, build, runLoad


def serve(kind: str, port: int) -> int:
    """
    The server: C{ping} answered by C{pong}, nothing else; with
    C{EagerWriteMixin} if C{kind} is C{"eager"}.  Runs until SIGTERM.
    """
    from twisted.internet import reactor
    from twisted.internet.protocol import Factory
    from twisted.protocols.basic import LineReceiver

    from heartbeat_twisted import EagerWriteMixin

    class Plain(LineReceiver):
        delimiter = b"\n"

        def lineReceived(self, line: bytes) -> None:
            if line == b"ping":
                self.sendLine(b"pong")

    class Eager(EagerWriteMixin, Plain):
        pass

    factory = Factory.forProtocol(Eager if kind == "eager" else Plain)
    factory.noisy = False
    reactor.listenTCP(port, factory, backlog=1024, interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    return 0


def start(kind: str, cpus: list[int]) -> Server:
    port = freePort()
    argv = [PYTHON, os.path.abspath(__file__), "--serve", kind, str(port)]
    return Server(kind, argv, port, cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Plain Twisted ping/pong vs the same with EagerWriteMixin, "
        "side by side, driven by the C load generator."
    )
    parser.add_argument("--connections", type=positiveInt, default=100)
    parser.add_argument(
        "--duration", type=positiveFloat, default=5.0, help="seconds per measurement"
    )
    parser.add_argument("--rounds", type=positiveInt, default=3)
    parser.add_argument(
        "--priority",
        action="store_true",
        help="run at autogroup nice -20 (root; a shared machine)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the eager server (cProfile) under the same load",
    )
    parser.add_argument("--top", type=positiveInt, default=15)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        return serve(args.serve[0], int(args.serve[1]))
    build()
    cpus = sorted(os.sched_getaffinity(0))
    serverCpus, clientCpus = (cpus[-1:], cpus[:-1]) if len(cpus) > 1 else ([], [])
    names = ["plain", "eager"]
    results: dict[str, list[LoadResult]] = {name: [] for name in names}
    with priority(args.priority):
        print("\n".join(machineLines()))
        print(f"run began {time.strftime('%H:%M:%S', time.gmtime())} UTC")
        servers = {name: start(name, serverCpus) for name in names}
        try:
            for index in range(args.rounds):
                order = names[index % 2 :] + names[: index % 2]
                for name in order:
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
    plain = results["plain"]
    rows = []
    for name in names:
        runs = results[name]
        rate = [r.rate for r in runs]
        cpu = [r.perReply(r.serverCpu) or 0.0 for r in runs]
        rows.append(
            [
                name,
                summarize(rate).format(",.0f"),
                summarize(
                    [r.rate / p.rate for r, p in zip(runs, plain, strict=True)]
                ).format(".2f"),
                summarize([r.perReply(r.serverUser) or 0.0 for r in runs]).format(
                    ".1f"
                ),
                summarize([r.perReply(r.serverSystem) or 0.0 for r in runs]).format(
                    ".1f"
                ),
                summarize(cpu).format(".1f"),
                summarize(
                    [
                        c / (p.perReply(p.serverCpu) or 1.0)
                        for c, p in zip(cpu, plain, strict=True)
                    ]
                ).format(".2f"),
                summarize([r.percentile(0.5) for r in runs]).format(".2f"),
                summarize([r.percentile(0.99) for r in runs]).format(".2f"),
                summarize([r.perReply(r.clientCpu) or 0.0 for r in runs]).format(".1f"),
            ]
        )
    print(
        f"\nclosed loop, {args.connections} connections, one ping in flight each; "
        f"{args.rounds} rounds of {args.duration:g} s per server, order rotating; "
        f"median [min..max]; ratios to plain in the same round"
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
                "loadgen us/pong",
            ],
            rows,
        )
    )
    if args.profile:
        profile(args, serverCpus, clientCpus)
    return 0


def profile(
    args: argparse.Namespace, serverCpus: list[int], clientCpus: list[int]
) -> None:
    """
    The eager server under C{cProfile} for one window: the functions that
    take the most time, in microseconds per pong (profiled, so inflated;
    the shares are what count).
    """
    import pstats
    import tempfile

    out = tempfile.mktemp(prefix="hb-eager-", suffix=".prof")
    port = freePort()
    argv = [PYTHON, "-m", "cProfile", "-o", out, os.path.abspath(__file__)]
    server = Server(
        "eager (profiled)", [*argv, "--serve", "eager", str(port)], port, serverCpus
    )
    try:
        result = runLoad(
            port,
            args.connections,
            duration=args.duration,
            warmup=1.0,
            server=server.tree,
            cpus=clientCpus,
        )
    finally:
        server.stop()
    try:
        stats = pstats.Stats(out)
    finally:
        if os.path.exists(out):
            os.unlink(out)
    entries: Any = stats.stats  # type: ignore[attr-defined]
    # Every ping of the whole run (warm-up included) is one lineReceived.
    pongs = max(
        [1]
        + [
            calls
            for (path, _, name), (_, calls, *_) in entries.items()
            if name == "lineReceived" and path.endswith("eager.py")
        ]
    )
    rows = []
    for (path, line, name), (_, calls, tottime, cumtime, _) in sorted(
        entries.items(), key=lambda item: -item[1][2]
    )[: args.top]:
        where = f"{os.path.basename(path)}:{line}" if line else path
        rows.append(
            [
                f"{name} ({where})",
                f"{calls / pongs:.2f}",
                f"{tottime / pongs * 1e6:.2f}",
                f"{cumtime / pongs * 1e6:.2f}",
            ]
        )
    print(
        f"\nprofile: eager server under cProfile ({result.rate:,.0f} pongs/s "
        f"profiled), {pongs:,} pongs in the whole run; top {args.top} by own time"
    )
    print(table(["function", "calls/pong", "own us/pong", "cum us/pong"], rows))


if __name__ == "__main__":
    sys.exit(main())
