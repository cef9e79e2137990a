"""
Throughput of a ping-pong (echo) server over loopback, with and without the
heartbeat, next to Twisted's TimeoutMixin and ours.

Every variant is the same echo protocol (C{dataReceived} writes the chunk
back) in its own server process:

  - C{plain}: a L{Protocol}.
  - C{HeartbeatMixin}: mixed in, with a L{HeartbeatFactoryMixin}
    (C{idle} 60 s, so nothing times out; the sweep runs every second).
  - C{HeartbeatWrappingFactory}: the plain factory, wrapped.
  - C{TimeoutMixin (twisted)}: C{setTimeout(60)} on connect,
    C{resetTimeout()} per chunk, C{setTimeout(None)} on close.
  - C{TimeoutMixin (ours)}: the same with L{heartbeat_twisted.TimeoutMixin}.

This script is the client.  It starts one server per variant (this same
file with C{--serve}, run by C{sys.executable}), then runs sessions in
rounds, every variant once per round in a rotating order.  A session opens
C{--connections} connections to one server and does C{--messages} round
trips on each, all connections in lockstep: one message in flight per
connection, so every message is one C{dataReceived} on the server.  It
measures the session's wall time (messages per second) and the server
reports the CPU time it spent in the session (microseconds per message).
Ratios are taken against plain within each round.

The servers listen on 127.0.0.1 only, on ports the kernel picks; they exit
when this script closes their stdin, or after C{--max-seconds}.

Run: C{python bench/throughput.py} (see C{--help}).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from _common import (
    machineLines,
    meanInterval,
    positiveFloat,
    positiveInt,
    summarize,
    table,
)

VARIANTS = [
    "plain",
    "HeartbeatMixin",
    "HeartbeatWrappingFactory",
    "TimeoutMixin (twisted)",
    "TimeoutMixin (ours)",
]
# With --floor: what the heartbeat's per-chunk work is made of, each part
# alone, written inline in a plain echo protocol.
FLOOR_VARIANTS = [
    "plain + clock read",
    "plain + wrapper",
]
IDLE = 60.0
HOST = "127.0.0.1"


# The server side.


def cpuSeconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve(variant: str, maxSeconds: float) -> int:
    """
    Run the echo server for C{variant} until stdin closes or C{maxSeconds}
    pass.  Prints C{PORT <n>}, then one JSON line per session.
    """
    from twisted.internet import reactor as _reactor
    from twisted.internet import stdio
    from twisted.internet.protocol import Factory, Protocol
    from twisted.protocols import policies

    from heartbeat_twisted import (
        HeartbeatConfig,
        HeartbeatFactoryMixin,
        HeartbeatMixin,
        HeartbeatWrappingFactory,
        TimeoutMixin,
    )

    reactor: Any = _reactor

    class Session:
        """
        Counts open connections; a session runs from the first connection
        to the moment none is left.
        """

        def __init__(self) -> None:
            self.open = 0
            self.cpu = 0.0
            self.wall = 0.0

        def opened(self) -> None:
            if self.open == 0:
                self.cpu = cpuSeconds()
                self.wall = time.perf_counter()
            self.open += 1

        def closed(self) -> None:
            self.open -= 1
            if self.open == 0:
                report = {
                    "cpu": cpuSeconds() - self.cpu,
                    "wall": time.perf_counter() - self.wall,
                }
                print(json.dumps(report), flush=True)

    session = Session()

    class Echo(Protocol):
        def connectionMade(self) -> None:
            transport: Any = self.transport
            transport.setTcpNoDelay(True)
            session.opened()

        def dataReceived(self, data: bytes) -> None:
            self.transport.write(data)  # type: ignore[union-attr]

        def connectionLost(self, reason: Any = None) -> None:
            session.closed()

    class HeartbeatEcho(HeartbeatMixin, Echo):
        pass

    class HeartbeatEchoFactory(HeartbeatFactoryMixin, Factory):
        protocol = HeartbeatEcho

    class TwistedTimeoutEcho(policies.TimeoutMixin, Echo):
        def connectionMade(self) -> None:
            self.setTimeout(IDLE)  # type: ignore[no-untyped-call]
            Echo.connectionMade(self)

        def dataReceived(self, data: bytes) -> None:
            self.resetTimeout()  # type: ignore[no-untyped-call]
            self.transport.write(data)  # type: ignore[union-attr]

        def connectionLost(self, reason: Any = None) -> None:
            self.setTimeout(None)  # type: ignore[no-untyped-call]
            Echo.connectionLost(self, reason)

    class OurTimeoutEcho(TimeoutMixin, Echo):
        def connectionMade(self) -> None:
            self.setTimeout(IDLE)
            Echo.connectionMade(self)

        def dataReceived(self, data: bytes) -> None:
            self.resetTimeout()
            self.transport.write(data)  # type: ignore[union-attr]

    class Stamp:
        __slots__ = ("last",)

        def __init__(self) -> None:
            self.last = 0.0

    class ClockReadEcho(Echo):
        """
        The least any heartbeat can do per chunk: read the clock, store it.
        """

        _stamp = Stamp()
        _seconds = reactor.seconds

        def dataReceived(self, data: bytes) -> None:
            self._stamp.last = self._seconds()
            self.transport.write(data)  # type: ignore[union-attr]

    def passThrough(original: Callable[..., Any]) -> Callable[..., Any]:
        def dataReceived(self: Any, data: bytes) -> Any:
            return original(self, data)

        return dataReceived

    class WrappedEcho(Echo):
        """
        A class-level wrapper around dataReceived that does nothing else.
        """

    WrappedEcho.dataReceived = passThrough(Echo.dataReceived)  # type: ignore[method-assign]

    config = HeartbeatConfig(idle=IDLE)
    factory: Any
    if variant == "plain + clock read":
        factory = Factory.forProtocol(ClockReadEcho)
    elif variant == "plain + wrapper":
        factory = Factory.forProtocol(WrappedEcho)
    elif variant == "plain":
        factory = Factory.forProtocol(Echo)
    elif variant == "HeartbeatMixin":
        factory = HeartbeatEchoFactory(heartbeatConfig=config)
    elif variant == "HeartbeatWrappingFactory":
        factory = HeartbeatWrappingFactory(Factory.forProtocol(Echo), config)
    elif variant == "TimeoutMixin (twisted)":
        factory = Factory.forProtocol(TwistedTimeoutEcho)
    elif variant == "TimeoutMixin (ours)":
        factory = Factory.forProtocol(OurTimeoutEcho)
    else:
        raise ValueError(f"unknown variant: {variant!r}")
    factory.noisy = False

    class StopOnEOF(Protocol):
        def connectionLost(self, reason: Any = None) -> None:
            if reactor.running:
                reactor.stop()

    port = reactor.listenTCP(0, factory, interface=HOST)
    print(f"PORT {port.getHost().port}", flush=True)
    stdio.StandardIO(StopOnEOF())  # type: ignore[no-untyped-call]
    reactor.callLater(maxSeconds, reactor.stop)
    reactor.run()
    return 0


# The client side.


class Server:
    """
    One server process, as seen from the client.
    """

    def __init__(self, variant: str, maxSeconds: float) -> None:
        self.variant = variant
        self.port = 0
        self.process = subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--serve",
                variant,
                "--max-seconds",
                str(maxSeconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def waitReady(self) -> None:
        """
        Wait for the server to say which port it listens on.
        """
        line = self.readLine(30.0)
        if not line.startswith("PORT "):
            raise RuntimeError(f"{self.variant}: server said {line!r}")
        self.port = int(line.split()[1])

    def readLine(self, timeout: float) -> str:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise RuntimeError(f"{self.variant}: server silent for {timeout} s")
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"{self.variant}: server exited")
        return line.strip()

    def sessionCpu(self) -> float:
        """
        The server CPU seconds of the session that just ended.
        """
        return float(json.loads(self.readLine(30.0))["cpu"])

    def stop(self) -> None:
        stdin = self.process.stdin
        if stdin is not None:
            stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        stdout = self.process.stdout
        if stdout is not None:
            stdout.close()


def pingPong(
    servers: list[Server], connections: int, messages: int, size: int
) -> float:
    """
    C{messages} round trips on each of C{connections} connections to each
    of C{servers}, all connections in lockstep (one message in flight on
    each), interleaved message by message across the servers, the server
    that goes first rotating.

    @return: The wall time of the round trips, in seconds.
    """
    payload = b"p" * (size - 1) + b"\n"
    groups: list[list[socket.socket]] = []
    try:
        for server in servers:
            group: list[socket.socket] = []
            groups.append(group)
            for _ in range(connections):
                sock = socket.create_connection((HOST, server.port), timeout=10)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                group.append(sock)
        count = len(groups)
        start = time.perf_counter()
        for message in range(messages):
            shift = message % count
            order = groups[shift:] + groups[:shift]
            for group in order:
                for sock in group:
                    sock.sendall(payload)
            for group in order:
                for sock in group:
                    received = sock.recv(size)
                    while len(received) < size:
                        more = sock.recv(size - len(received))
                        if not more:
                            raise RuntimeError("a server closed a connection")
                        received += more
        return time.perf_counter() - start
    finally:
        for group in groups:
            for sock in group:
                sock.close()


class Round:
    """
    One round's figures for every variant.

    @ivar cpu: Server CPU microseconds per message, all servers driven at
        once.
    @ivar rate: Round trips per second, each server driven alone.
    """

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.rate: dict[str, float] = {}


def runRound(
    variants: list[str],
    index: int,
    connections: int,
    messages: int,
    size: int,
    maxSeconds: float,
    serverCpus: list[int],
) -> Round:
    """
    Start a fresh server per variant, measure, stop them.
    """
    shift = index % len(variants)
    variants = variants[shift:] + variants[:shift]
    servers = [Server(variant, maxSeconds) for variant in variants]
    result = Round()
    try:
        for server in servers:
            server.waitReady()
            if serverCpus:
                os.sched_setaffinity(server.process.pid, serverCpus)
        total = connections * messages
        # Warm up.
        pingPong(servers, connections, max(1, messages // 10), size)
        for server in servers:
            server.sessionCpu()
        # All at once: the CPU cost per message.
        pingPong(servers, connections, messages, size)
        for server in servers:
            result.cpu[server.variant] = server.sessionCpu() / total * 1e6
        # One at a time: the round trips per second.
        for server in servers:
            wall = pingPong([server], connections, messages, size)
            server.sessionCpu()
            result.rate[server.variant] = total / wall
    finally:
        for server in servers:
            server.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Echo round trips over loopback: plain vs the heartbeat mixin vs "
            "TimeoutMixins, one server process each, fresh every round."
        )
    )
    parser.add_argument(
        "--connections",
        type=positiveInt,
        default=8,
        help="connections per server (default: 8)",
    )
    parser.add_argument(
        "--messages",
        type=positiveInt,
        default=1500,
        help="round trips per connection per session (default: 1500)",
    )
    parser.add_argument(
        "--size",
        type=positiveInt,
        default=32,
        help="bytes per message (default: 32)",
    )
    parser.add_argument(
        "--rounds",
        type=positiveInt,
        default=40,
        help="rounds, each with fresh servers (default: 40)",
    )
    parser.add_argument(
        "--max-seconds",
        type=positiveFloat,
        default=900.0,
        help="servers and client give up after this long (default: 900)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also run a plain echo with only a clock read per chunk, and "
        "one with only a pass-through wrapper (the parts of the hook)",
    )
    parser.add_argument(
        "--serve", choices=VARIANTS + FLOOR_VARIANTS, help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    if args.serve:
        return serve(args.serve, args.max_seconds)
    if args.connections > 1000:
        parser.error("--connections: at most 1000")

    # With two CPUs or more: the servers on the last, the client on the rest.
    serverCpus = cpus[-1:] if len(cpus) > 1 else []
    if serverCpus:
        os.sched_setaffinity(0, cpus[:-1])
    variants = VARIANTS + (FLOOR_VARIANTS if args.floor else [])
    deadline = time.monotonic() + args.max_seconds
    rounds: list[Round] = []
    for index in range(args.rounds):
        remaining = deadline - time.monotonic()
        if remaining < 1:
            sys.exit("throughput.py: stopped: over --max-seconds")
        rounds.append(
            runRound(
                variants,
                index,
                args.connections,
                args.messages,
                args.size,
                remaining,
                serverCpus,
            )
        )

    print("\n".join(machineLines()))
    print(
        f"{args.connections} connections per server, {args.messages:,} round "
        f"trips of {args.size} B on each per session, {args.rounds} rounds "
        f"with fresh servers; median [min..max] over rounds; ratios to plain "
        f"in the same round"
    )
    rows: list[list[str]] = []
    cpuRatios: dict[str, list[float]] = {}
    for variant in variants:
        cpu = summarize([r.cpu[variant] for r in rounds])
        cpuRatios[variant] = [r.cpu[variant] / r.cpu["plain"] for r in rounds]
        cpuRatio = summarize(cpuRatios[variant])
        mean, low, high = meanInterval(cpuRatios[variant])
        rate = summarize([r.rate[variant] for r in rounds])
        rateRatio = summarize([r.rate[variant] / r.rate["plain"] for r in rounds])
        rows.append(
            [
                variant,
                cpu.format(".2f"),
                cpuRatio.format(".3f"),
                f"{mean:.3f} [{low:.3f}..{high:.3f}]",
                rate.format(",.0f"),
                rateRatio.format(".3f"),
            ]
        )
    print(
        table(
            [
                "server",
                "CPU us/msg (shared)",
                "CPU x plain",
                "mean, 95% CI",
                "round trips/s (alone)",
                "x plain",
            ],
            rows,
        )
    )
    ratios = cpuRatios["HeartbeatMixin"]
    mean, low, high = meanInterval(ratios)
    if high <= 1.01:
        verdict = "met"
    elif low > 1.01:
        verdict = "MISSED"
    else:
        verdict = "not resolved by this run (the interval straddles 1.01)"
    print(
        f"goal: HeartbeatMixin within 1% of plain: {verdict}; server CPU "
        f"per message x plain: median {summarize(ratios).median:.3f}, mean "
        f"{mean:.3f}, 95% CI [{low:.3f}..{high:.3f}]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
