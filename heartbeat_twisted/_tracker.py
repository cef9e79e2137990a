"""
L{IdleTracker}: one periodic sweep that finds the silent connections among
any number of tracked ones.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ._config import HeartbeatConfig

__all__ = ["IdleEntry", "IdleTracker", "Idler"]


class Idler(Protocol):
    """
    What an L{IdleTracker} tracks: anything that can be told it timed out.
    """

    def heartbeatTimedOut(self) -> None:
        """
        Nothing was received for C{idle} seconds.
        """


class IdleEntry:
    """
    One tracked connection: its owner and the time of its last activity.

    The tracker keeps entries in deadline buckets and re-files them lazily;
    recording activity is just C{entry.last = now}.

    @ivar owner: The tracked object, or L{None} once it is no longer tracked.
    @ivar last: L{IReactorTime.seconds} of the last activity.
    """

    __slots__ = ("last", "owner")

    def __init__(self, owner: Idler, last: float) -> None:
        self.owner: Idler | None = owner
        self.last = last

    def __repr__(self) -> str:
        return f"<IdleEntry owner={self.owner!r} last={self.last!r}>"


class IdleTracker:
    """
    Close (or otherwise handle) connections that have been silent for
    C{config.idle} seconds, with a single L{LoopingCall} for all of them.

    Costs:
      - recording activity (L{touch}, or C{entry.last = now}) is one store;
      - a sweep visits only the entries whose bucket is due: each entry is
        filed under the first sweep at or after its deadline, and an entry
        that saw activity since it was filed is re-filed then (once per
        C{idle} at most), never on each received chunk;
      - the L{LoopingCall} runs only while something is tracked.

    Timing: an entry whose owner received nothing since C{t} gets
    C{heartbeatTimedOut()} at the first sweep at or after C{t + idle}: never
    before C{t + idle}, and no later than C{t + idle + checkInterval} (given
    a clock that runs the sweeps on time).  If the owner is still tracked
    after that call (it chose not to close), its silence is counted afresh.

    @ivar ticks: Sweeps run so far.
    @ivar visited: Entries looked at by all sweeps so far.
    @ivar lastVisited: Entries looked at by the latest sweep.
    @ivar timedOut: Times C{heartbeatTimedOut} was called.
    """

    _log = Logger()

    def __init__(
        self, config: HeartbeatConfig, clock: IReactorTime | None = None
    ) -> None:
        """
        @param config: The idle time and the sweep period.
        @param clock: The time source and scheduler; the global reactor if
            L{None}.
        """
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        assert clock is not None
        self.config = config
        self.clock: IReactorTime = clock
        self.seconds: Callable[[], float] = clock.seconds
        self._idle = config.idle
        self._interval = config.checkInterval
        self._buckets: dict[int, list[IdleEntry]] = {}
        self._keys: list[int] = []
        self._start = 0.0
        self._count = 0
        self._loop: LoopingCall | None = None
        self.ticks = 0
        self.visited = 0
        self.lastVisited = 0
        self.timedOut = 0

    def __len__(self) -> int:
        """
        The number of tracked entries.
        """
        return self._count

    @property
    def running(self) -> bool:
        """
        Whether the sweep is scheduled (it is exactly while C{len(self) > 0}).
        """
        return self._loop is not None

    def track(self, owner: Idler) -> IdleEntry:
        """
        Start tracking C{owner}; its silence counts from now.

        @return: The entry: pass it to L{touch} and L{untrack}.
        """
        now = self.seconds()
        if self._loop is None:
            self._startSweeping(now)
        entry = IdleEntry(owner, now)
        self._bucket(self._key(now + self._idle)).append(entry)
        self._count += 1
        return entry

    def touch(self, entry: IdleEntry) -> None:
        """
        Record activity on C{entry} now.
        """
        entry.last = self.seconds()

    def untrack(self, entry: IdleEntry) -> None:
        """
        Stop tracking C{entry}.  Idempotent.

        The entry leaves its bucket lazily, but it lets go of its owner at
        once, and when nothing is left tracked the sweep stops.
        """
        if entry.owner is None:
            return
        entry.owner = None
        self._count -= 1
        if self._count == 0:
            self._stopSweeping()

    def _key(self, deadline: float) -> int:
        """
        The index of the first sweep at or after C{deadline}.
        """
        return math.ceil((deadline - self._start) / self._interval)

    def _bucket(self, key: int) -> list[IdleEntry]:
        """
        The bucket of sweep C{key}, made (and its key queued) if need be.
        """
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = []
            heapq.heappush(self._keys, key)
        return bucket

    def _startSweeping(self, now: float) -> None:
        self._start = now
        loop = self._loop = LoopingCall(self._sweep)
        loop.clock = self.clock
        loop.start(self._interval, now=False)

    def _stopSweeping(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()
        # Only untracked entries can be left: drop them with their buckets.
        self._buckets.clear()
        self._keys.clear()

    def _sweep(self) -> None:
        """
        One tick: handle every entry filed under a sweep index that is due.
        """
        now = self.seconds()
        idle = self._idle
        # Which sweep this is; the tolerance absorbs float error in the
        # schedule (an entry visited a hair early is simply re-filed).
        current = math.floor((now - self._start) / self._interval + 1e-9)
        keys = self._keys
        buckets = self._buckets
        start = self._start
        interval = self._interval
        ceil = math.ceil
        expired: list[IdleEntry] = []
        visited = 0
        while keys and keys[0] <= current:
            bucket = buckets.pop(heapq.heappop(keys))
            visited += len(bucket)
            for entry in bucket:
                if entry.owner is None:
                    continue
                deadline = entry.last + idle
                if deadline <= now:
                    expired.append(entry)
                    continue
                # Lazy re-arm: activity since filing; file under the sweep
                # at or after the new deadline (_bucket inlined: hot loop).
                key = ceil((deadline - start) / interval)
                if key <= current:
                    key = current + 1
                later = buckets.get(key)
                if later is None:
                    later = buckets[key] = []
                    heapq.heappush(keys, key)
                later.append(entry)
        self.ticks += 1
        self.visited += visited
        self.lastVisited = visited
        if not expired:
            return
        # Count their silence afresh, in case an owner stays open: all of
        # them share one new deadline, so one bucket.
        for entry in expired:
            entry.last = now
        self._bucket(max(self._key(now + idle), current + 1)).extend(expired)
        for entry in expired:
            owner = entry.owner
            if owner is None:
                # Untracked by an earlier callback of this same sweep.
                continue
            self.timedOut += 1
            try:
                owner.heartbeatTimedOut()
            except Exception:
                self._log.failure("heartbeatTimedOut of {owner!r} failed", owner=owner)
