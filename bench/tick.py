"""
Cost of one sweep (tick) of L{IdleTracker} with many tracked connections,
next to a naive sweep that scans every connection.

No sockets: the owners are small objects, the time is a L{task.Clock}, and a
tick is C{clock.advance(checkInterval)}, which runs the tracker's
L{LoopingCall} exactly as a reactor would.  The naive sweep is a plain
function called directly (no L{LoopingCall}, which favours it a little).

Layout: C{idle} is 200 s and C{checkInterval} 1 s; the connections are
tracked in 100 equal groups, one group per second, so their deadlines fall
in 100 consecutive sweeps.  Three phases follow, each measured over
C{--ticks} ticks, our tick and the naive sweep alternating tick by tick:

  - C{0% due}: ticks before any deadline; no bucket is due.
  - C{1% due, silent}: each tick, 1% of the connections reach their
    deadline having received nothing: C{heartbeatTimedOut()} is called on
    each (the owner stays open, so it is filed again).
  - C{1% due, active}: every connection saw activity since it was filed;
    each tick visits 1% of them and re-files them lazily.  The naive sweep
    scans everything and finds nothing.

Run: C{python bench/tick.py} (see C{--help}).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

from _common import machineLines, positiveFloat, positiveInt, summarize, table
from twisted.internet.task import Clock

from heartbeat_twisted import (
    HeartbeatConfig,
    IdleTracker,
)
from heartbeat_twisted._tracker import IdleEntry

IDLE = 200.0
INTERVAL = 1.0
GROUPS = 100  # one group of connections per sweep: 1 group = 1% due


class Owner:
    """
    A tracked connection that only counts its time-outs.
    """

    __slots__ = ("timeouts",)

    def __init__(self) -> None:
        self.timeouts = 0

    def heartbeatTimedOut(self) -> None:
        self.timeouts += 1


class NaiveTracker:
    """
    The simple alternative: every tick looks at every connection.
    """

    def __init__(self, idle: float) -> None:
        self.idle = idle
        self.entries: list[IdleEntry] = []
        self.lastExpired = 0

    def track(self, owner: Owner, now: float) -> IdleEntry:
        entry = IdleEntry(owner, now)
        self.entries.append(entry)
        return entry

    def sweep(self, now: float) -> None:
        idle = self.idle
        expired = [
            entry
            for entry in self.entries
            if entry.owner is not None and entry.last + idle <= now
        ]
        for entry in expired:
            owner = entry.owner
            if owner is not None:
                entry.last = now
                owner.heartbeatTimedOut()
        self.lastExpired = len(expired)


class Deadline:
    """
    A wall-clock limit for the whole run.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            sys.exit(f"tick.py: stopped: over --max-seconds ({self.seconds:g} s)")


class Row:
    """
    One phase's figures: times in microseconds per tick.
    """

    def __init__(
        self,
        size: int,
        phase: str,
        visited: int,
        ours: list[float],
        naive: list[float],
    ) -> None:
        self.size = size
        self.phase = phase
        self.visited = visited
        self.ours = summarize(ours)
        self.naive = summarize(naive)
        self.ratio = summarize([n / o for n, o in zip(naive, ours, strict=True)])


class CacheFlusher:
    """
    Evict the CPU caches before each timed call, so that our tick and the
    naive sweep both start cold, as a tick does in a busy server (and
    neither profits from, or pays for, what the other left in the cache).
    """

    def __init__(self, megabytes: int) -> None:
        self.buffer = bytearray(megabytes * 1024 * 1024)

    def __call__(self) -> None:
        if self.buffer:
            self.buffer[:] = bytes(self.buffer)


def measure(
    size: int, ticks: int, deadline: Deadline, flush: CacheFlusher
) -> list[Row]:
    """
    Build the layout for C{size} connections and measure the three phases.
    """
    clock = Clock()
    tracker = IdleTracker(HeartbeatConfig(idle=IDLE, checkInterval=INTERVAL), clock)
    naive = NaiveTracker(IDLE)
    perGroup = size // GROUPS
    ours: list[IdleEntry] = []
    for _ in range(GROUPS):
        now = clock.seconds()
        for _ in range(perGroup):
            ours.append(tracker.track(Owner()))
            naive.track(Owner(), now)
        clock.advance(INTERVAL)
        deadline.check()
    tracked = len(tracker)
    gc.collect()

    def phase(name: str, expectVisited: int, expectNaive: int) -> Row:
        ourTimes: list[float] = []
        naiveTimes: list[float] = []
        clockNs = time.perf_counter_ns
        visited = -1
        # Tick 0 warms up and is not recorded.
        for tick in range(ticks + 1):
            deadline.check()
            # Our tick runs at "now + INTERVAL"; the naive sweep sees the
            # same time.  Alternate which goes first.
            target = clock.seconds() + INTERVAL
            for which in (tick % 2, 1 - tick % 2):
                flush()
                start = clockNs()
                if which == 0:
                    clock.advance(INTERVAL)
                    elapsed = clockNs() - start
                    times = ourTimes
                else:
                    naive.sweep(target)
                    elapsed = clockNs() - start
                    times = naiveTimes
                if tick:
                    times.append(elapsed / 1000.0)
            if tracker.lastVisited != expectVisited:
                raise AssertionError(
                    f"{name}: tick visited {tracker.lastVisited}, "
                    f"expected {expectVisited}"
                )
            if naive.lastExpired != expectNaive:
                raise AssertionError(
                    f"{name}: naive sweep expired {naive.lastExpired}, "
                    f"expected {expectNaive}"
                )
            visited = tracker.lastVisited
        return Row(size, name, visited, ourTimes, naiveTimes)

    rows: list[Row] = []
    gc.disable()
    try:
        # Deadlines are at IDLE .. IDLE + GROUPS - 1; we are at GROUPS.
        rows.append(phase("0% due", 0, 0))
        while clock.seconds() < IDLE - INTERVAL:
            clock.advance(INTERVAL)
        timedOutBefore = tracker.timedOut
        rows.append(phase("1% due, silent", perGroup, perGroup))
        if tracker.timedOut - timedOutBefore != perGroup * (ticks + 1):
            raise AssertionError("silent phase: not every due entry timed out")
        # Every connection received something a moment ago.
        now = clock.seconds()
        for entry in ours:
            entry.last = now
        for entry in naive.entries:
            entry.last = now
        timedOutBefore = tracker.timedOut
        rows.append(phase("1% due, active", perGroup, 0))
        if tracker.timedOut != timedOutBefore:
            raise AssertionError("active phase: an active entry timed out")
    finally:
        gc.enable()
    assert len(tracker) == tracked
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Cost of one IdleTracker tick with many tracked connections "
            "(0%% and 1%% due), next to a naive full scan.  No sockets."
        )
    )
    parser.add_argument(
        "--sizes",
        type=positiveInt,
        nargs="+",
        default=[10_000, 100_000, 1_000_000],
        metavar="N",
        help="numbers of tracked connections, multiples of 100 "
        "(default: 10000 100000 1000000)",
    )
    parser.add_argument(
        "--ticks",
        type=positiveInt,
        default=30,
        help="ticks measured per phase, at most 45 (default: 30)",
    )
    parser.add_argument(
        "--max-seconds",
        type=positiveFloat,
        default=600.0,
        help="give up after this many seconds (default: 600)",
    )
    parser.add_argument(
        "--flush-mb",
        type=int,
        default=64,
        metavar="MB",
        help="megabytes copied before each timed call to evict the caches; "
        "0 measures warm (default: 64)",
    )
    args = parser.parse_args(argv)
    if args.flush_mb < 0:
        parser.error("--flush-mb: must be >= 0")
    flush = CacheFlusher(args.flush_mb)
    if args.ticks > 45:
        parser.error("--ticks: at most 45 (the layout has 100 due sweeps)")
    for size in args.sizes:
        if size % GROUPS:
            parser.error(f"--sizes: {size} is not a multiple of {GROUPS}")
    deadline = Deadline(args.max_seconds)

    print("\n".join(machineLines()))
    print(
        f"idle {IDLE:g} s, checkInterval {INTERVAL:g} s, {args.ticks} ticks "
        f"per phase; caches flushed before each timed call "
        f"({args.flush_mb} MB); gc disabled while timing; "
        f"times in microseconds, median [min..max]"
    )
    rows: list[Row] = []
    for size in args.sizes:
        rows.extend(measure(size, args.ticks, deadline, flush))
        gc.collect()
    cells = [
        [
            f"{row.size:,}",
            row.phase,
            f"{row.visited:,}",
            row.ours.format(".1f"),
            row.naive.format(".0f"),
            row.ratio.format(".0f"),
        ]
        for row in rows
    ]
    print(
        table(
            [
                "tracked",
                "phase",
                "visited/tick",
                "our tick (us)",
                "naive scan (us)",
                "naive/ours",
            ],
            cells,
        )
    )
    for row in rows:
        if row.phase == "0% due" and row.size == 1_000_000:
            met = "met" if row.ours.median < 1000.0 else "MISSED"
            print(
                f"goal: 1M tracked, none due, tick under 1 ms: {met} "
                f"(median {row.ours.median:.1f} us, max {row.ours.high:.1f} us)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
