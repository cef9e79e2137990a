"""
Memory per tracked connection, measured with L{tracemalloc}: ours next to a
Twisted L{DelayedCall} per connection.

Variants, each for C{--connections} connections, in interleaved rounds:

  - C{tracker entry}: what L{IdleTracker.track} allocates per connection:
    the L{IdleEntry}, its slot in a deadline bucket and its timestamp (a
    float, fresh per connection as C{time.time()} makes it).  The owners
    exist before the measurement starts; the connections are tracked over
    100 sweeps, so they fill 100 buckets as in a running server.
  - C{DelayedCall}: one C{reactor.callLater(idle, f)} per connection, the
    cost of a per-connection timer (the global reactor, not running; the
    calls are cancelled afterwards).
  - C{+HeartbeatMixin}, C{+TimeoutMixin (twisted)}, C{+TimeoutMixin
    (ours)}: a whole connected protocol with the mixin, minus the same
    protocol without it, so what the mixin adds to each connection,
    attributes included.

Run: C{python bench/memory.py} (see C{--help}).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from _common import machineLines, positiveInt, summarize, table
from twisted.internet import reactor as _reactor
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.protocols import policies

from heartbeat_twisted import (
    HeartbeatConfig,
    HeartbeatFactoryMixin,
    HeartbeatMixin,
    IdleTracker,
    TimeoutMixin,
)
from heartbeat_twisted._tracker import IdleEntry

reactor: Any = _reactor
IDLE = 200.0
INTERVAL = 1.0
SPREAD = 100  # sweeps over which the connections are tracked


class FreshClock(Clock):
    """
    A L{Clock} whose C{seconds()} returns a new float each call, as
    C{time.time()} (the reactor's C{seconds}) does; a plain L{Clock} returns
    one shared float, which would hide the timestamp's cost.
    """

    def seconds(self) -> float:
        return self.rightNow + 0.0


class Owner:
    __slots__ = ()

    def heartbeatTimedOut(self) -> None:
        pass


class Transport:
    """
    The least a protocol needs from a transport here; one is shared by all
    connections, so it costs nothing per connection.
    """

    def loseConnection(self) -> None:
        pass

    def abortConnection(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        pass

    def writeSequence(self, data: Any) -> None:
        pass

    def getPeer(self) -> None:
        return None


TRANSPORT = Transport()


class Plain(Protocol):
    pass


class WithHeartbeat(HeartbeatMixin, Protocol):
    pass


class HeartbeatServerFactory(HeartbeatFactoryMixin, Factory):
    protocol = WithHeartbeat


class WithTwistedTimeout(policies.TimeoutMixin, Protocol):
    def connectionMade(self) -> None:
        self.setTimeout(IDLE)  # type: ignore[no-untyped-call]


class WithOurTimeout(TimeoutMixin, Protocol):
    def connectionMade(self) -> None:
        self.setTimeout(IDLE)


def traced(build: Callable[[], Callable[[], None]]) -> int:
    """
    Bytes allocated by C{build()} and still held once it returns.

    C{build} returns a function that releases what it built; it is called
    after the measurement.
    """
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        release = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    release()
    gc.collect()
    return after - before


def trackerEntries(count: int) -> Callable[[], Callable[[], None]]:
    owners = [Owner() for _ in range(count)]
    # Filled in place: the list that holds the results is not counted.
    placeholder = IdleEntry(Owner(), 0.0)
    entries: list[IdleEntry] = [placeholder] * count

    def build() -> Callable[[], None]:
        clock = FreshClock()
        tracker = IdleTracker(HeartbeatConfig(idle=IDLE, checkInterval=INTERVAL), clock)
        step = max(1, count // SPREAD)
        for index, owner in enumerate(owners):
            entries[index] = tracker.track(owner)
            if index % step == step - 1:
                clock.advance(INTERVAL)

        def release() -> None:
            # Free them now, not while the next round is traced (their
            # floats would be recycled from the free list, uncounted).
            for index, entry in enumerate(entries):
                tracker.untrack(entry)
                entries[index] = placeholder

        return release

    return build


def delayedCalls(count: int) -> Callable[[], Callable[[], None]]:
    calls: list[IDelayedCall | None] = [None] * count

    def build() -> Callable[[], None]:
        callLater = reactor.callLater
        for index in range(count):
            calls[index] = callLater(IDLE, _noop)

        def release() -> None:
            for index, call in enumerate(calls):
                assert call is not None
                call.cancel()
                calls[index] = None
            # Let the reactor drop the cancelled calls from its lists.
            reactor.runUntilCurrent()

        return release

    return build


def _noop() -> None:
    pass


def connections(
    makeFactory: Callable[[], Factory], count: int
) -> Callable[[], Callable[[], None]]:
    protocols: list[Any] = [None] * count
    address = IPv4Address("TCP", "127.0.0.1", 0)

    def build() -> Callable[[], None]:
        factory = makeFactory()
        for index in range(count):
            protocol: Any = factory.buildProtocol(address)
            protocol.makeConnection(TRANSPORT)
            protocols[index] = protocol

        def release() -> None:
            for index, protocol in enumerate(protocols):
                protocol.connectionLost(None)
                protocols[index] = None
            reactor.runUntilCurrent()

        return release

    return build


def heartbeatFactory(clock: IReactorTime) -> Callable[[], Factory]:
    def make() -> Factory:
        return HeartbeatServerFactory(
            heartbeatConfig=HeartbeatConfig(idle=IDLE, checkInterval=INTERVAL),
            clock=clock,
        )

    return make


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Memory per tracked connection (tracemalloc): IdleTracker's "
            "entry, a DelayedCall, and what each mixin adds to a protocol."
        )
    )
    parser.add_argument(
        "--connections",
        type=positiveInt,
        default=100_000,
        help="connections per variant (default: 100000)",
    )
    parser.add_argument(
        "--rounds",
        type=positiveInt,
        default=3,
        help="interleaved rounds (default: 3)",
    )
    args = parser.parse_args(argv)
    count: int = args.connections
    started = time.monotonic()

    # The reactor's seconds() is time.time: a fresh float per call, as in
    # production.  It is not run; its timed calls are cancelled.
    variants: dict[str, Callable[[], Callable[[], None]]] = {
        "tracker entry": trackerEntries(count),
        "DelayedCall": delayedCalls(count),
        "plain Protocol": connections(lambda: Factory.forProtocol(Plain), count),
        "HeartbeatMixin": connections(heartbeatFactory(reactor), count),
        "TimeoutMixin (twisted)": connections(
            lambda: Factory.forProtocol(WithTwistedTimeout), count
        ),
        "TimeoutMixin (ours)": connections(
            lambda: Factory.forProtocol(WithOurTimeout), count
        ),
    }
    names = list(variants)
    results: dict[str, list[float]] = {name: [] for name in names}
    for round in range(args.rounds):
        # Rotate the order each round.
        shift = round % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(traced(variants[name]) / count)
        if time.monotonic() - started > 600:
            sys.exit("memory.py: stopped: over 600 s")

    plain = summarize(results["plain Protocol"]).median
    print("\n".join(machineLines()))
    print(
        f"{count:,} connections per variant, {args.rounds} rounds; "
        f"bytes per connection, median [min..max]"
    )
    sample = IdleEntry(Owner(), time.time())
    print(
        f"parts of a tracker entry: IdleEntry {sys.getsizeof(sample)} B "
        f"(GC header included), timestamp float {sys.getsizeof(sample.last)} B, "
        f"bucket slot 8 B (plus list over-allocation)"
    )
    rows: list[list[str]] = []
    delayed = summarize(results["DelayedCall"]).median
    for name in names:
        values = results[name]
        summary = summarize(values)
        if name in ("tracker entry", "DelayedCall", "plain Protocol"):
            what = "per connection"
            added = summary
        else:
            what = "added to a plain Protocol"
            added = summarize([value - plain for value in values])
        rows.append(
            [
                name,
                what,
                added.format(".1f"),
                f"{added.median / delayed:.2f}",
            ]
        )
    print(table(["variant", "measures", "bytes", "x DelayedCall"], rows))
    entry = summarize(results["tracker entry"]).median
    met = "met" if entry < 128 else "MISSED"
    print(
        f"goal: tracker entry under 128 B: {met} ({entry:.1f} B; "
        f"a DelayedCall {delayed:.1f} B)"
    )
    mixin = summarize([value - plain for value in results["HeartbeatMixin"]]).median
    print(
        f"goal: HeartbeatMixin adds under 128 B per connection, entry included: "
        f"{'met' if mixin < 128 else 'MISSED'} ({mixin:.1f} B)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
