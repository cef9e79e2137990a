"""
L{SweepEngine}: how an L{IdleTracker<heartbeat_twisted.IdleTracker>}'s
sweep runs: the deadline buckets, the periodic tick, and the hand-out of
what is due within each reactor turn's budget.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._config import HeartbeatConfig
from ._entries import ActivityStamp, Deadline, IdleEntry, newStamp
from ._time import StallGuard, decisionSeconds, resolveClock

__all__ = ["SweepEngine"]

#: Float rounding allowed in sweep arithmetic, as a fraction of the sweep
#: period (a deadline that is a whole number of periods away is due at that
#: sweep, not the one after).
_ROUNDING = 1e-6


class SweepEngine:
    """
    The sweep behind L{IdleTracker<heartbeat_twisted.IdleTracker>} (which
    documents what it promises): entries and deadlines filed in buckets by
    sweep number, one L{LoopingCall} that takes the due buckets, and the
    work through them within each reactor turn's budget.
    """

    _log = Logger()
    #: Time-outs handed out per reactor turn, at most.
    maxPerTurn = 200
    #: Seconds of time-outs per reactor turn, about: the closes they start
    #: cost the reactor about as much again when they complete (in the
    #: turn's I/O phase), so a turn stays well under 20 ms.
    turnBudget = 0.004

    def __init__(
        self,
        config: HeartbeatConfig,
        clock: IReactorTime | None = None,
        seconds: Callable[[], float] | None = None,
    ) -> None:
        """
        @param config: The default idle time and the sweep period.
        @param clock: The scheduler; the global reactor if L{None}.
        @param seconds: The time source to decide on; by default
            L{decisionSeconds}C{(clock)}.
        """
        self.config = config
        self.clock: IReactorTime = resolveClock(clock)
        self.seconds: Callable[[], float] = (
            seconds if seconds is not None else decisionSeconds(self.clock)
        )
        self._idle = config.idle
        self._interval = config.checkInterval
        self._buckets: dict[int, list[IdleEntry]] = {}
        self._keys: list[int] = []
        self._callBuckets: dict[int, list[Deadline]] = {}
        self._callKeys: list[int] = []
        # Due buckets, taken by a sweep and worked through within each
        # turn's budget: [entries, position, bucket, recent] (entries: the
        # bucket, or on the second pass the recently due ones it put in
        # recent), [key, bucket, position] (deadlines).
        self._pending: deque[list[Any]] = deque()
        self._pendingCalls: deque[list[Any]] = deque()
        # Entries due between two sweeps, for a timed turn: (when, cursor).
        self._later: list[tuple[float, list[Any]]] = []
        self._slack = config.checkInterval * _ROUNDING
        self.stamp: ActivityStamp = newStamp(0.0)
        self._start = 0.0
        self._current = 0
        self._count = 0
        self._calls = 0
        self._loop: LoopingCall | None = None
        self._guard: StallGuard | None = None
        self._turn: Any = None
        self._timed = False
        self._deferrals = 0
        self._batch = 0
        self.ticks = 0
        self.lastSweepSeconds: float | None = None
        self.visited = 0
        self.lastVisited = 0
        self.timedOut = 0
        self.stalls = 0
        self.turns = 0

    # Filing

    def _keyFor(self, deadline: float) -> int:
        """
        The index of the first sweep at or after C{deadline}, and never the
        sweep that ran last (or an earlier one).
        """
        key = math.ceil((deadline - self._start) / self._interval)
        return key if key > self._current else self._current + 1

    def _file(self, entry: IdleEntry, deadline: float) -> None:
        """
        File C{entry} under the last sweep at or before C{deadline} (a
        deadline between two sweeps is then kept by a timed turn), and
        never under the sweep that ran last.
        """
        key = math.floor((deadline - self._start) / self._interval + _ROUNDING)
        if key <= self._current:
            key = self._current + 1
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = []
            heapq.heappush(self._keys, key)
        bucket.append(entry)
        entry.bucket = bucket

    def fileDeadline(self, call: Deadline) -> None:
        """
        File C{call} under the first sweep at or after its time (a
        L{Deadline} calls this when it is made or moved).
        """
        key = call.key = self._keyFor(call.time)
        bucket = self._callBuckets.get(key)
        if bucket is None:
            bucket = self._callBuckets[key] = []
            heapq.heappush(self._callKeys, key)
        bucket.append(call)

    def deadlineCancelled(self) -> None:
        """
        A L{Deadline} of this tracker was cancelled: count it out.
        """
        self._calls -= 1
        self._sleepIfDone()

    # The sweep

    def _wake(self, now: float) -> None:
        if self._loop is None:
            self._start = now
            self._current = 0
            self.stamp = newStamp(now + self._interval)
            self._guard = StallGuard(self._interval, self.seconds)
            self._startLoop()

    def _startLoop(self) -> None:
        loop = self._loop = LoopingCall(self._tick)
        loop.clock = self.clock
        assert self._guard is not None
        self._guard.expect(self._interval)
        loop.start(self._interval, now=False).addErrback(self._tickFailed, loop)

    def _tickFailed(self, failure: Failure, loop: LoopingCall) -> None:
        """
        The sweep itself raised: say so, and sweep on.
        """
        self._log.failure("idle sweep failed; restarting it", failure)
        if self._loop is loop:
            self._startLoop()

    def _sleepIfDone(self) -> None:
        if self._count or self._calls:
            return
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()
        turn, self._turn = self._turn, None
        if turn is not None and turn.active():
            turn.cancel()
        self._timed = False
        self._later.clear()
        # Only untracked entries and cancelled calls can be left.
        self._buckets.clear()
        self._keys.clear()
        self._callBuckets.clear()
        self._callKeys.clear()
        self._pending.clear()
        self._pendingCalls.clear()

    def _tick(self) -> None:
        """
        One sweep: take the buckets that are due, then work through them
        (re-file what saw activity, time out what is due) now, or next turn
        if this sweep ran late (the reactor stalled) or a follow-up turn is
        pending.
        """
        guard = self._guard
        assert guard is not None
        late = guard.late()
        guard.expect(self._interval)
        self._collect(self.seconds())
        turn = self._turn
        if turn is not None:
            if not self._timed:
                return  # a follow-up turn comes first
            # A turn timed for entries due before this sweep: this sweep
            # takes them (and times the next such turn).
            self._turn = None
            if turn.active():
                turn.cancel()
        if late:
            self.stalls += 1
            self._nextTurn()
        else:
            self._handOut()

    def _collect(self, now: float) -> None:
        """
        Take the buckets of every sweep up to this one; cheap (one step per
        bucket): their entries are looked at by L{_handOut}.
        """
        # Which sweep this is; the tolerance absorbs float error in the
        # schedule (an entry visited a hair early is simply re-filed).
        current = math.floor((now - self._start) / self._interval + 1e-9)
        if current > self._current:
            # The stamp handed out until now stood for this sweep: the
            # activity it records was no later than now.
            self.stamp.end = now
            self.stamp = newStamp(self._start + (current + 1) * self._interval)
            self._current = current
        current = self._current
        keys = self._keys
        while keys and keys[0] <= current:
            key = heapq.heappop(keys)
            bucket = self._buckets.pop(key)
            self._pending.append([bucket, 0, bucket, []])
        callKeys = self._callKeys
        while callKeys and callKeys[0] <= current:
            key = heapq.heappop(callKeys)
            self._pendingCalls.append([key, self._callBuckets.pop(key), 0])
        self.ticks += 1
        self.lastVisited = 0

    def _nextTurn(self, delay: float = 0.0) -> None:
        """
        Go on in the reactor's next turn, after its next I/O poll, or
        C{delay} seconds from now (a timed turn, which a sweep replaces).
        """
        assert self._guard is not None
        self._guard.expect(delay)
        self._timed = delay > 0
        self._turn = self.clock.callLater(delay, self._followUp)

    def _followUp(self) -> None:
        self._turn = None
        self._timed = False
        self.turns += 1
        assert self._guard is not None
        if self._guard.late() and self._deferrals < 2:
            # This turn, too, ran late: read once more before deciding.
            self._deferrals += 1
            self.stalls += 1
            self._nextTurn()
            return
        self._deferrals = 0
        self._handOut()

    def _handOut(self) -> None:
        """Work through what L{_collect} took, timed for C{lastSweepSeconds}."""
        began = time.perf_counter()
        try:
            self._handOutWork()
        finally:
            self.lastSweepSeconds = time.perf_counter() - began

    def _handOutWork(self) -> None:
        """
        Work through the taken buckets, within this turn's budget: run the
        due deadlines, re-file entries that saw activity, time out the
        silent ones (on this turn's time: each may have seen activity since
        its bucket was taken); keep the entries due before the next sweep
        for a turn timed for them; queue a follow-up turn for the rest.
        """
        now = self.seconds()
        began = time.perf_counter()
        budget = self.turnBudget
        limit = self.maxPerTurn
        start = self._start
        interval = self._interval
        current = self._current
        buckets = self._buckets
        keys = self._keys
        floor = math.floor
        rounding = _ROUNDING
        clock = time.perf_counter
        due = now + self._slack
        # Where the entries of each stamp go (with the config's idle): busy
        # entries share few stamps, so most are re-filed by one lookup.
        idle = self._idle
        refiled: dict[float, list[IdleEntry]] = {}
        done = visited = 0
        exhausted = False
        calls = self._pendingCalls
        while calls and not exhausted:
            cursor = calls[0]
            key, bucket, position = cursor
            while position < len(bucket):
                call = bucket[position]
                position += 1
                if call.key != key or not call.active():
                    continue
                if call.time > now:
                    self.fileDeadline(call)
                    continue
                call.called = True
                self._calls -= 1
                done += 1
                try:
                    if call.kw:
                        call.func(*call.args, **call.kw)
                    else:
                        call.func(*call.args)
                except Exception:
                    self._log.failure("deadline {call!r} failed", call=call.func)
                if done >= limit or (not done % 32 and clock() - began > budget):
                    exhausted = True
                    break
            cursor[2] = position
            if position >= len(bucket) and calls and calls[0] is cursor:
                calls.popleft()
        pending = self._pending
        if self._later:
            self._takeLater(due)
        # Entries due before the next sweep: kept for a timed turn (this
        # list is their bucket meanwhile).
        soon: list[IdleEntry] = []
        soonAt = math.inf
        # Due for less than half a sweep period: handed out in a second
        # pass over the bucket, after the longer overdue (a bucket holds a
        # period's worth of deadlines, and may take many turns).
        recently = now - interval / 2
        while pending and not exhausted:
            cursor = pending[0]
            items, position, bucket, recent = cursor
            end = len(items)
            while position < end and not exhausted:
                # In slices of 256, timing the turn between slices.
                stop = position + 256 if position + 256 < end else end
                # Copying the slice touches each entry in one C loop, which
                # lets the CPU fetch many at once from memory (entries left
                # alone for an idle period are far out of its cache); the
                # Python loop then finds them there.
                for index, entry in enumerate(items[position:stop], position):
                    if entry.bucket is not bucket:
                        continue  # untracked, or filed again elsewhere
                    last = entry.last
                    if entry.idle is idle:
                        laterBucket = refiled.get(last)
                        if laterBucket is not None:
                            laterBucket.append(entry)
                            entry.bucket = laterBucket
                            continue
                    deadline = last + entry.idle
                    if deadline <= due:
                        # A stamp's sweep may have run late: the activity
                        # it records may be as late as that run (or now).
                        ran = getattr(last, "end", None)
                        if ran is not None:
                            deadline = (ran if ran < now else now) + entry.idle
                    if deadline > due:
                        # Lazy re-arm: activity since filing; file under the
                        # last sweep at or before the new deadline (_file
                        # inlined), or keep it for a timed turn.
                        later = floor((deadline - start) / interval + rounding)
                        if later <= current:
                            soon.append(entry)
                            entry.bucket = soon
                            if deadline < soonAt:
                                soonAt = deadline
                            continue
                        laterBucket = buckets.get(later)
                        if laterBucket is None:
                            laterBucket = buckets[later] = []
                            heapq.heappush(keys, later)
                        if entry.idle is idle and deadline == last + idle:
                            refiled[last] = laterBucket
                        laterBucket.append(entry)
                        entry.bucket = laterBucket
                        continue
                    if recent is not None and deadline > recently:
                        recent.append(entry)
                        continue
                    owner = entry.owner
                    if owner is None:
                        continue
                    done += 1
                    self.timedOut += 1
                    self._batch += 1
                    try:
                        owner.heartbeatTimedOut()
                    except Exception:
                        self._log.failure(
                            "heartbeatTimedOut of {owner!r} failed", owner=owner
                        )
                    if entry.bucket is bucket:
                        # It stays open: count its silence afresh.
                        entry.last = now
                        self._file(entry, now + entry.idle)
                    if done >= limit or (not done % 32 and clock() - began > budget):
                        exhausted = True
                        stop = index + 1
                        break
                if recent is not None:
                    visited += stop - position  # each entry counted once
                position = stop
                if clock() - began > budget:
                    exhausted = True
            cursor[1] = position
            if position >= end and pending and pending[0] is cursor:
                pending.popleft()
                if recent:
                    pending.appendleft([recent, 0, bucket, None])
        if soon:
            self._later.append((soonAt, [soon, 0, soon, None]))
        self.visited += visited
        self.lastVisited += visited
        if (calls or pending) and self._loop is not None:
            self._nextTurn()
            return
        if self._batch:
            self._log.info(
                "idle sweep: {count} connections timed out", count=self._batch
            )
            self._batch = 0
        self._sleepIfDone()
        if self._later and self._loop is not None:
            self._nextTurn(max(0.0, min(at for at, _ in self._later) - now))

    def _takeLater(self, due: float) -> None:
        """
        Move the entries kept for a timed turn that are due by C{due} into
        the work of this turn.
        """
        later = self._later
        self._pending.extend(cursor for at, cursor in later if at <= due)
        later[:] = [(at, cursor) for at, cursor in later if at > due]
