"""
Per-chunk cost of recording activity: a protocol's C{dataReceived} called
in a loop, with and without the heartbeat hook, in nanoseconds per call.

Variants (the protocol body is the same empty C{dataReceived}):

  - C{plain}: a L{Protocol}.
  - C{HeartbeatMixin}: the mixin's class-level hook stores the time
    (C{entry.last = seconds()}) before the body runs.
  - C{TimeoutMixin (twisted)}: the body calls C{resetTimeout()}, which moves
    Twisted's L{DelayedCall}.
  - C{TimeoutMixin (ours)}: the body calls C{resetTimeout()}, a timestamp
    store.

The clock is the real reactor (not running): C{seconds()} is
C{time.time}.  Each round runs every variant once, in a rotating order; a
variant's added cost is its time minus plain's in the same round.

Run: C{python bench/chunk.py} (see C{--help}).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import machineLines, positiveInt, summarize, table
from twisted.internet import reactor as _reactor
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols import policies

from heartbeat_twisted import (
    HeartbeatConfig,
    HeartbeatFactoryMixin,
    HeartbeatMixin,
    TimeoutMixin,
)

reactor: Any = _reactor
IDLE = 200.0
DATA = b"ping\n"


class Transport:
    def loseConnection(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        pass

    def writeSequence(self, data: Any) -> None:
        pass


class Plain(Protocol):
    def dataReceived(self, data: bytes) -> None:
        pass


class WithHeartbeat(HeartbeatMixin, Protocol):
    def dataReceived(self, data: bytes) -> None:
        pass


class HeartbeatServerFactory(HeartbeatFactoryMixin, Factory):
    protocol = WithHeartbeat


class WithTwistedTimeout(policies.TimeoutMixin, Protocol):
    def connectionMade(self) -> None:
        self.setTimeout(IDLE)  # type: ignore[no-untyped-call]

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()  # type: ignore[no-untyped-call]


class WithOurTimeout(TimeoutMixin, Protocol):
    def connectionMade(self) -> None:
        self.setTimeout(IDLE)

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()


def connect(factory: Factory) -> Any:
    protocol: Any = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 0))
    protocol.makeConnection(Transport())
    return protocol


def timeCalls(dataReceived: Callable[[bytes], object], calls: int) -> float:
    """
    Nanoseconds per call of C{dataReceived(DATA)}, loop included.
    """
    data = DATA
    loop = range(calls)
    start = time.perf_counter_ns()
    for _ in loop:
        dataReceived(data)
    return (time.perf_counter_ns() - start) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Nanoseconds per received chunk: dataReceived with the heartbeat "
            "hook or a TimeoutMixin, next to a plain one."
        )
    )
    parser.add_argument(
        "--calls",
        type=positiveInt,
        default=200_000,
        help="calls per variant per round (default: 200000)",
    )
    parser.add_argument(
        "--rounds",
        type=positiveInt,
        default=15,
        help="interleaved rounds (default: 15)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    heartbeatFactory = HeartbeatServerFactory(
        heartbeatConfig=HeartbeatConfig(idle=IDLE), clock=reactor
    )
    protocols = {
        "plain": connect(Factory.forProtocol(Plain)),
        "HeartbeatMixin": connect(heartbeatFactory),
        "TimeoutMixin (twisted)": connect(Factory.forProtocol(WithTwistedTimeout)),
        "TimeoutMixin (ours)": connect(Factory.forProtocol(WithOurTimeout)),
    }
    names = list(protocols)
    perCall: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    gc.disable()
    try:
        for name in names:  # warm up
            timeCalls(protocols[name].dataReceived, min(args.calls, 10_000))
        for round in range(args.rounds):
            shift = round % len(names)
            for name in names[shift:] + names[:shift]:
                perCall[name].append(
                    timeCalls(protocols[name].dataReceived, args.calls)
                )
            if time.monotonic() - started > 600:
                sys.exit("chunk.py: stopped: over 600 s")
    finally:
        gc.enable()
    for protocol in protocols.values():
        protocol.connectionLost(None)

    print("\n".join(machineLines()))
    print(
        f"{args.calls:,} calls per variant per round, {args.rounds} rounds; "
        f"ns per call, median [min..max]"
    )
    plain = perCall["plain"]
    rows: list[list[str]] = []
    for name in names:
        added = [value - base for value, base in zip(perCall[name], plain, strict=True)]
        ratio = [value / base for value, base in zip(perCall[name], plain, strict=True)]
        rows.append(
            [
                name,
                summarize(perCall[name]).format(".1f"),
                summarize(added).format(".1f") if name != "plain" else "-",
                summarize(ratio).format(".2f") if name != "plain" else "-",
            ]
        )
    print(
        table(
            ["variant", "ns per chunk", "added vs plain (ns)", "x plain"],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
